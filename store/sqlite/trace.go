package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// SaveTrace inserts t or replaces the trace with its ID. It fills in an
// empty ID and a zero StartedAt.
func (db *DB) SaveTrace(ctx context.Context, t *engine.Trace) error {
	t.Normalize(now())
	passages, err := json.Marshal(t.Passages)
	if err != nil {
		return fmt.Errorf("encode trace passages: %w", err)
	}
	steps, err := json.Marshal(t.StoredSteps())
	if err != nil {
		return fmt.Errorf("encode trace steps: %w", err)
	}
	retrieval, err := json.Marshal(t.Retrieval)
	if err != nil {
		return fmt.Errorf("encode trace retrieval: %w", err)
	}
	_, err = db.w.ExecContext(ctx, `INSERT INTO traces (id, event_id, conversation_id, assistant_id, assistant_name,
		platform, channel_id, user_id, model, tokens_in, tokens_out, passages, steps, outcome, error, started_at,
		duration_ns, retrieval) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id, conversation_id = excluded.conversation_id,
			assistant_id = excluded.assistant_id, assistant_name = excluded.assistant_name,
			platform = excluded.platform, channel_id = excluded.channel_id, user_id = excluded.user_id,
			model = excluded.model, tokens_in = excluded.tokens_in, tokens_out = excluded.tokens_out,
			passages = excluded.passages, steps = excluded.steps, outcome = excluded.outcome,
			error = excluded.error, started_at = excluded.started_at, duration_ns = excluded.duration_ns,
			retrieval = excluded.retrieval`,
		t.ID, t.EventID, t.ConversationID, t.AssistantID, t.AssistantName, string(t.Platform), t.ChannelID, t.UserID,
		t.Model, t.TokensIn, t.TokensOut, string(passages), string(steps), string(t.Outcome), t.Error,
		encTime(t.StartedAt), int64(t.Duration), string(retrieval))
	if err != nil {
		return fmt.Errorf("save trace: %w", err)
	}
	return nil
}

const traceColumns = `id, event_id, conversation_id, assistant_id, assistant_name, platform, channel_id, user_id,
	model, tokens_in, tokens_out, passages, steps, outcome, error, started_at, duration_ns, retrieval`

func scanTrace(s scanner) (*engine.Trace, error) {
	var (
		t                          engine.Trace
		passages, steps, retrieval []byte
		duration                   int64
	)
	err := s.Scan(&t.ID, &t.EventID, &t.ConversationID, &t.AssistantID, &t.AssistantName, &t.Platform, &t.ChannelID,
		&t.UserID, &t.Model, &t.TokensIn, &t.TokensOut, &passages, &steps, &t.Outcome, &t.Error,
		timeCol{&t.StartedAt}, &duration, &retrieval)
	if err != nil {
		return nil, err
	}
	t.Duration = time.Duration(duration)
	if err := errors.Join(json.Unmarshal(passages, &t.Passages), json.Unmarshal(steps, &t.Steps),
		json.Unmarshal(retrieval, &t.Retrieval)); err != nil {
		return nil, fmt.Errorf("decode trace %s: %w", t.ID, err)
	}
	t.Steps = t.StoredSteps()
	return &t, nil
}

// TraceByID returns the trace with the id.
func (db *DB) TraceByID(ctx context.Context, id string) (*engine.Trace, error) {
	t, err := scanTrace(db.r.QueryRowContext(ctx, `SELECT `+traceColumns+` FROM traces WHERE id = ?`, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, notFound("Trace", id)
	case err != nil:
		return nil, fmt.Errorf("get trace: %w", err)
	}
	return t, nil
}

// ListTraces returns the traces of the conversation, oldest first.
func (db *DB) ListTraces(ctx context.Context, conversationID string) ([]*engine.Trace, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+traceColumns+` FROM traces WHERE conversation_id = ?
		ORDER BY started_at, id`, conversationID)
	if err != nil {
		return nil, fmt.Errorf("list traces: %w", err)
	}
	list, err := collect(rows, scanTrace)
	if err != nil {
		return nil, fmt.Errorf("list traces: %w", err)
	}
	return list, nil
}
