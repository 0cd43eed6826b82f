package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/convosphere/convosphere/engine"
)

// errorOutcomeList is engine.ErrorOutcomes as an SQL list of literals, written
// as the traces_error_outcome index's predicate is, so that SQLite can use
// that partial index.
var errorOutcomeList = literalList(engine.ErrorOutcomes)

// literalList quotes values as SQL string literals, comma-separated.
func literalList[T ~string](values []T) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = "'" + strings.ReplaceAll(string(v), "'", "''") + "'"
	}
	return strings.Join(quoted, ", ")
}

// whereCond is one condition of a WHERE clause with its arguments.
type whereCond struct {
	cond string
	args []any
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

// conversationStatsBatch is how many conversations one ConversationStats query reads.
const conversationStatsBatch = 500

// ConversationStats returns the stats of the conversations with the ids,
// by id; unknown ids are left out.
func (db *DB) ConversationStats(ctx context.Context, ids []string) (map[string]engine.ConversationStats, error) {
	stats := make(map[string]engine.ConversationStats, len(ids))
	for start := 0; start < len(ids); start += conversationStatsBatch {
		batch := ids[start:min(start+conversationStatsBatch, len(ids))]
		args := make([]any, 0, len(batch)+3)
		args = append(args, string(engine.TurnUser), int(engine.RatingUp), int(engine.RatingDown))
		for _, id := range batch {
			args = append(args, id)
		}
		rows, err := db.r.QueryContext(ctx, `SELECT c.id,
			(SELECT count(*) FROM turns WHERE conversation_id = c.id),
			COALESCE((SELECT user_name FROM turns WHERE conversation_id = c.id AND role = ?1 AND user_name <> ''
				ORDER BY created_at, seq LIMIT 1), ''),
			COALESCE((SELECT outcome FROM traces WHERE conversation_id = c.id ORDER BY started_at DESC, id DESC LIMIT 1), ''),
			(SELECT count(*) FROM traces WHERE conversation_id = c.id AND outcome IN (`+errorOutcomeList+`)),
			(SELECT count(*) FROM traces t JOIN feedback fb ON fb.trace_id = t.id WHERE t.conversation_id = c.id AND fb.rating = ?2),
			(SELECT count(*) FROM traces t JOIN feedback fb ON fb.trace_id = t.id WHERE t.conversation_id = c.id AND fb.rating = ?3)
			FROM conversations c WHERE c.id IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(batch)), ", ")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("conversation stats: %w", err)
		}
		err = func() error {
			defer rows.Close()
			for rows.Next() {
				var (
					id string
					s  engine.ConversationStats
				)
				if err := rows.Scan(&id, &s.Turns, &s.UserName, &s.LastOutcome, &s.Errors, &s.FeedbackUp, &s.FeedbackDown); err != nil {
					return err
				}
				stats[id] = s
			}
			return rows.Err()
		}()
		if err != nil {
			return nil, fmt.Errorf("conversation stats: %w", err)
		}
	}
	return stats, nil
}

// ConversationFeedback lists the feedback on the conversation's traces,
// oldest first (ties in platform and user order).
func (db *DB) ConversationFeedback(ctx context.Context, conversationID string) ([]*engine.Feedback, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT fb.trace_id, fb.platform, fb.user_id, fb.rating, fb.comment, fb.created_at, fb.updated_at
		FROM feedback fb JOIN traces t ON t.id = fb.trace_id WHERE t.conversation_id = ?
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
