package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/convosphere/convosphere/engine"
)

const budgetColumns = `id, scope, target, period, max_tokens, max_cost_usd, action, fallback_model, created_at, updated_at`

// SaveBudget validates b and inserts it, or replaces the budget with the
// same ID keeping its CreatedAt.
func (db *DB) SaveBudget(ctx context.Context, b *engine.Budget) error {
	if err := b.Validate(); err != nil {
		return err
	}
	if b.ID == "" {
		b.ID = engine.NewID()
	}
	b.UpdatedAt = now()
	err := db.pool.QueryRow(ctx, `INSERT INTO budgets (`+budgetColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
		ON CONFLICT (id) DO UPDATE SET scope = excluded.scope, target = excluded.target, period = excluded.period,
			max_tokens = excluded.max_tokens, max_cost_usd = excluded.max_cost_usd, action = excluded.action,
			fallback_model = excluded.fallback_model, updated_at = excluded.updated_at
		RETURNING created_at`,
		b.ID, string(b.Scope), b.Target, string(b.Period), b.MaxTokens, b.MaxCostUSD, string(b.Action), b.FallbackModel,
		b.UpdatedAt).Scan(timeCol{&b.CreatedAt})
	if err != nil {
		return fmt.Errorf("save budget: %w", err)
	}
	return nil
}

// DeleteBudget removes a budget.
func (db *DB) DeleteBudget(ctx context.Context, id string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM budgets WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete budget: %w", err)
	}
	return affected(tag, "Budget", id)
}

// ListBudgets lists the budgets by scope, target, period, then id (byte
// order: the columns are COLLATE "C").
func (db *DB) ListBudgets(ctx context.Context) ([]*engine.Budget, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+budgetColumns+` FROM budgets ORDER BY scope, target, period, id`)
	if err != nil {
		return nil, fmt.Errorf("list budgets: %w", err)
	}
	list, err := collect(rows, func(sc scanner) (*engine.Budget, error) {
		var b engine.Budget
		return &b, sc.Scan(&b.ID, &b.Scope, &b.Target, &b.Period, &b.MaxTokens, &b.MaxCostUSD, &b.Action, &b.FallbackModel,
			timeCol{&b.CreatedAt}, timeCol{&b.UpdatedAt})
	})
	if err != nil {
		return nil, fmt.Errorf("list budgets: %w", err)
	}
	return list, nil
}

// budgetWhere selects a scope's target from $2 on: its condition and
// arguments (the traces_budget_* indexes of migration 0017 serve each).
// An empty condition selects nothing.
func budgetWhere(scope engine.BudgetScope, target string) (string, []any, error) {
	switch scope {
	case engine.BudgetScopeAssistant:
		return `assistant_id = $2`, []any{target}, nil
	case engine.BudgetScopeChannel, engine.BudgetScopeUser:
		platform, id, ok := strings.Cut(target, ":")
		if !ok || platform == "" || id == "" {
			return "", nil, nil
		}
		col := `channel_id`
		if scope == engine.BudgetScopeUser {
			col = `user_id`
		}
		return `platform = $2 AND ` + col + ` = $3`, []any{platform, id}, nil
	}
	return "", nil, engine.Errorf(engine.EINVALID, "Budget scope %q is unknown: use assistant, channel or user.", scope)
}

// BudgetTokens sums the tokens per model of a target's turns since since.
func (db *DB) BudgetTokens(ctx context.Context, scope engine.BudgetScope, target string, since time.Time) ([]engine.ModelTokens, error) {
	where, args, err := budgetWhere(scope, target)
	if err != nil {
		return nil, err
	}
	list := []engine.ModelTokens{}
	if where == "" {
		return list, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT model, COUNT(*), SUM(tokens_in), SUM(tokens_out) FROM traces
		WHERE `+where+` AND started_at >= $1 AND outcome <> 'awaiting_approval'
		GROUP BY model ORDER BY model COLLATE "C"`, append([]any{since}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("budget tokens: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var m engine.ModelTokens
		if err := rows.Scan(&m.Model, &m.Messages, &m.TokensIn, &m.TokensOut); err != nil {
			return nil, fmt.Errorf("budget tokens: %w", err)
		}
		list = append(list, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("budget tokens: %w", err)
	}
	return list, nil
}
