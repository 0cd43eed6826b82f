package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/convosphere/convosphere/engine"
)

// errorOutcomeList is engine.ErrorOutcomes as an SQL list of literals, written
// as the traces_error_outcome index's predicate is, so that the planner can
// use that partial index.
var errorOutcomeList = literalList(engine.ErrorOutcomes)

// literalList quotes values as SQL string literals, comma-separated.
func literalList[T ~string](values []T) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = "'" + strings.ReplaceAll(string(v), "'", "''") + "'"
	}
	return strings.Join(quoted, ", ")
}

// whereCond is one condition of a WHERE clause with its arguments, each
// written as ? (numbered when added to a query).
type whereCond struct {
	cond string
	args []any
}

// numberPlaceholders replaces each ? of cond with $n, counting on from n arguments
// already in the query.
func numberPlaceholders(cond string, n int) string {
	var b strings.Builder
	for _, r := range cond {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ratedTraceQuery matches a rated trace of the conversation in the outer query.
const ratedTraceQuery = `SELECT 1 FROM traces t JOIN feedback fb ON fb.trace_id = t.id WHERE t.conversation_id = conversations.id`

// conversationReportConditions returns the conditions of the filter's fields that look
// beyond the conversations table: the ratings of its answers and the
// outcomes of its traces.
func conversationReportConditions(f engine.ConversationFilter) []whereCond {
	var conds []whereCond
	switch f.Feedback {
	case engine.RatedUp:
		conds = append(conds, whereCond{`EXISTS (` + ratedTraceQuery + ` AND fb.rating = ?)`, []any{int(engine.RatingUp)}})
	case engine.RatedDown:
		conds = append(conds, whereCond{`EXISTS (` + ratedTraceQuery + ` AND fb.rating = ?)`, []any{int(engine.RatingDown)}})
	case engine.Rated:
		conds = append(conds, whereCond{`EXISTS (` + ratedTraceQuery + `)`, nil})
	case engine.NotRated:
		conds = append(conds, whereCond{`NOT EXISTS (` + ratedTraceQuery + `)`, nil})
	}
	if f.Errors {
		conds = append(conds, whereCond{`EXISTS (SELECT 1 FROM traces t WHERE t.conversation_id = conversations.id
			AND t.outcome IN (` + errorOutcomeList + `))`, nil})
	}
	return conds
}

// ConversationStats returns the stats of the conversations with the ids,
// by id; unknown ids are left out.
func (db *DB) ConversationStats(ctx context.Context, ids []string) (map[string]engine.ConversationStats, error) {
	stats := make(map[string]engine.ConversationStats, len(ids))
	if len(ids) == 0 {
		return stats, nil
	}
	// The ratings are counted in one pass over the conversation's traces
	// (a lateral join), not one pass per rating: the listing asks for 50
	// to 200 conversations at a time.
	rows, err := db.pool.Query(ctx, `SELECT c.id,
		(SELECT count(*) FROM turns WHERE conversation_id = c.id),
		COALESCE((SELECT user_name FROM turns WHERE conversation_id = c.id AND role = $2 AND user_name <> ''
			ORDER BY created_at, seq LIMIT 1), ''),
		COALESCE((SELECT outcome FROM traces WHERE conversation_id = c.id ORDER BY started_at DESC, id DESC LIMIT 1), ''),
		(SELECT count(*) FROM traces WHERE conversation_id = c.id AND outcome IN (`+errorOutcomeList+`)),
		rated.up, rated.down
		FROM conversations c, LATERAL (
			SELECT count(*) FILTER (WHERE fb.rating = $3) AS up, count(*) FILTER (WHERE fb.rating = $4) AS down
			FROM traces t JOIN feedback fb ON fb.trace_id = t.id WHERE t.conversation_id = c.id
		) rated
		WHERE c.id = ANY($1)`,
		ids, string(engine.TurnUser), int(engine.RatingUp), int(engine.RatingDown))
	if err != nil {
		return nil, fmt.Errorf("conversation stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id                    string
			s                     engine.ConversationStats
			turns, errs, up, down int64
			userName, lastOutcome string
		)
		if err := rows.Scan(&id, &turns, &userName, &lastOutcome, &errs, &up, &down); err != nil {
			return nil, fmt.Errorf("conversation stats: %w", err)
		}
		s.Turns, s.Errors, s.FeedbackUp, s.FeedbackDown = int(turns), int(errs), int(up), int(down)
		s.UserName, s.LastOutcome = userName, engine.Outcome(lastOutcome)
		stats[id] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("conversation stats: %w", err)
	}
	return stats, nil
}

// ConversationFeedback lists the feedback on the conversation's traces,
// oldest first (ties in platform and user order).
func (db *DB) ConversationFeedback(ctx context.Context, conversationID string) ([]*engine.Feedback, error) {
	rows, err := db.pool.Query(ctx, `SELECT fb.trace_id, fb.platform, fb.user_id, fb.rating, fb.comment, fb.created_at, fb.updated_at
		FROM feedback fb JOIN traces t ON t.id = fb.trace_id WHERE t.conversation_id = $1
		ORDER BY fb.created_at, fb.platform, fb.user_id, fb.trace_id`, conversationID)
	if err != nil {
		return nil, fmt.Errorf("list conversation feedback: %w", err)
	}
	list, err := collect(rows, scanFeedback)
	if err != nil {
		return nil, fmt.Errorf("list conversation feedback: %w", err)
	}
	return list, nil
}
