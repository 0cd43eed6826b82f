package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convosphere/convosphere/engine"
)

// assistantJSON holds the JSON columns of an assistant.
type assistantJSON struct {
	knowledgeBases, tools, toolPolicy, bindings, retrieval []byte
}

// encodeAssistant encodes a's JSON columns. An empty tool policy is stored
// as {} and read back nil, so it becomes nil in a too.
func encodeAssistant(a *engine.Assistant) (assistantJSON, error) {
	var (
		j   assistantJSON
		err error
	)
	if len(a.ToolPolicy) == 0 {
		a.ToolPolicy = nil
		j.toolPolicy = []byte(`{}`)
	} else if j.toolPolicy, err = json.Marshal(a.ToolPolicy); err != nil {
		return j, fmt.Errorf("encode tool policy: %w", err)
	}
	if j.knowledgeBases, err = json.Marshal(a.KnowledgeBases); err != nil {
		return j, fmt.Errorf("encode knowledge bases: %w", err)
	}
	if j.tools, err = json.Marshal(a.Tools); err != nil {
		return j, fmt.Errorf("encode tools: %w", err)
	}
	if j.bindings, err = json.Marshal(a.Bindings); err != nil {
		return j, fmt.Errorf("encode bindings: %w", err)
	}
	if j.retrieval, err = json.Marshal(a.Retrieval); err != nil {
		return j, fmt.Errorf("encode retrieval: %w", err)
	}
	return j, nil
}

// clearDefault makes a the only default assistant when it is one. The table
// lock (which does not block readers) makes concurrent writers that each set
// a default take turns, so the last one wins instead of failing.
func clearDefault(ctx context.Context, tx pgx.Tx, a *engine.Assistant) error {
	if !a.IsDefault {
		return nil
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE assistants IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("lock assistants: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE assistants SET is_default = false WHERE is_default AND id <> $1`, a.ID); err != nil {
		return fmt.Errorf("clear default assistant: %w", err)
	}
	return nil
}

// CreateAssistant stores a; ECONFLICT when the name is taken (ignoring
// case). When a is the default, the others stop being it.
func (db *DB) CreateAssistant(ctx context.Context, a *engine.Assistant) error {
	if err := a.Normalize(now()); err != nil {
		return err
	}
	j, err := encodeAssistant(a)
	if err != nil {
		return err
	}
	err = db.tx(ctx, func(tx pgx.Tx) error {
		if err := clearDefault(ctx, tx, a); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO assistants (id, name, name_key, description, system_prompt,
			model, temperature, max_output_tokens, knowledge_bases, tools, tool_policy, bindings, retrieval, is_default,
			created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
			a.ID, a.Name, nameKey(a.Name), a.Description, a.SystemPrompt, a.Model, a.Temperature, a.MaxOutputTokens,
			j.knowledgeBases, j.tools, j.toolPolicy, j.bindings, j.retrieval, a.IsDefault, a.CreatedAt, a.UpdatedAt)
		return err
	})
	switch {
	case violates(err, codeUniqueViolation, "assistants_name_unique"):
		return a.NameTakenError(err)
	case duplicate(err):
		return engine.WrapError(engine.ECONFLICT, err, "Assistant %q already exists.", a.ID)
	case err != nil:
		return fmt.Errorf("create assistant: %w", err)
	}
	return nil
}

// UpdateAssistant stores every field of a but CreatedAt, which it fills in.
func (db *DB) UpdateAssistant(ctx context.Context, a *engine.Assistant) error {
	if err := a.Validate(); err != nil {
		return err
	}
	j, err := encodeAssistant(a)
	if err != nil {
		return err
	}
	at := now()
	var created time.Time
	err = db.tx(ctx, func(tx pgx.Tx) error {
		if err := clearDefault(ctx, tx, a); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `UPDATE assistants SET name = $1, name_key = $2, description = $3,
			system_prompt = $4, model = $5, temperature = $6, max_output_tokens = $7, knowledge_bases = $8, tools = $9,
			tool_policy = $10, bindings = $11, retrieval = $12, is_default = $13, updated_at = $14 WHERE id = $15 RETURNING created_at`,
			a.Name, nameKey(a.Name), a.Description, a.SystemPrompt, a.Model, a.Temperature, a.MaxOutputTokens,
			j.knowledgeBases, j.tools, j.toolPolicy, j.bindings, j.retrieval, a.IsDefault, at, a.ID,
		).Scan(timeCol{&created})
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return notFound("Assistant", a.ID)
	case violates(err, codeUniqueViolation, "assistants_name_unique"):
		return a.NameTakenError(err)
	case err != nil:
		return fmt.Errorf("update assistant: %w", err)
	}
	a.CreatedAt, a.UpdatedAt = created, at
	return nil
}

// DeleteAssistant deletes the assistant with the id; ENOTFOUND when missing.
// Its conversations and traces are kept.
func (db *DB) DeleteAssistant(ctx context.Context, id string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM assistants WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete assistant: %w", err)
	}
	return affected(tag, "Assistant", id)
}

const assistantColumns = `id, name, description, system_prompt, model, temperature, max_output_tokens,
	knowledge_bases, tools, tool_policy, bindings, retrieval, is_default, created_at, updated_at`

func scanAssistant(s scanner) (*engine.Assistant, error) {
	var (
		a engine.Assistant
		j assistantJSON
	)
	err := s.Scan(&a.ID, &a.Name, &a.Description, &a.SystemPrompt, &a.Model, &a.Temperature, &a.MaxOutputTokens,
		&j.knowledgeBases, &j.tools, &j.toolPolicy, &j.bindings, &j.retrieval, &a.IsDefault, timeCol{&a.CreatedAt}, timeCol{&a.UpdatedAt})
	if err != nil {
		return nil, err
	}
	if err := errors.Join(
		json.Unmarshal(j.knowledgeBases, &a.KnowledgeBases),
		json.Unmarshal(j.tools, &a.Tools),
		json.Unmarshal(j.toolPolicy, &a.ToolPolicy),
		json.Unmarshal(j.bindings, &a.Bindings),
		json.Unmarshal(j.retrieval, &a.Retrieval),
	); err != nil {
		return nil, fmt.Errorf("decode assistant %s: %w", a.ID, err)
	}
	if len(a.ToolPolicy) == 0 {
		a.ToolPolicy = nil
	}
	return &a, nil
}

func (db *DB) assistant(ctx context.Context, where, arg, what string) (*engine.Assistant, error) {
	a, err := scanAssistant(db.pool.QueryRow(ctx, `SELECT `+assistantColumns+` FROM assistants WHERE `+where, arg))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, notFound("Assistant", what)
	case err != nil:
		return nil, fmt.Errorf("get assistant: %w", err)
	}
	return a, nil
}

// AssistantByID returns the assistant with the id.
func (db *DB) AssistantByID(ctx context.Context, id string) (*engine.Assistant, error) {
	return db.assistant(ctx, `id = $1`, id, id)
}

// AssistantByName returns the assistant with the name, ignoring case.
func (db *DB) AssistantByName(ctx context.Context, name string) (*engine.Assistant, error) {
	return db.assistant(ctx, `name_key = $1`, nameKey(strings.TrimSpace(name)), name)
}

// ListAssistants returns every assistant ordered by name.
func (db *DB) ListAssistants(ctx context.Context) ([]*engine.Assistant, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+assistantColumns+` FROM assistants ORDER BY name_key, id`)
	if err != nil {
		return nil, fmt.Errorf("list assistants: %w", err)
	}
	list, err := collect(rows, scanAssistant)
	if err != nil {
		return nil, fmt.Errorf("list assistants: %w", err)
	}
	return list, nil
}
