package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/convosphere/convosphere/engine"
)

// DefaultConversationLimit is how many conversations ListConversations
// returns when the filter sets no limit.
const DefaultConversationLimit = engine.DefaultConversationLimit

const conversationColumns = `id, assistant_id, platform, channel_id, thread_id, user_id, title, created_at, updated_at`

// conversationOfThread selects the conversation of a (platform, channel_id,
// thread_id): a lookup of the conversations_thread_unique index.
const conversationOfThread = `SELECT ` + conversationColumns + ` FROM conversations
	WHERE platform = ? AND channel_id = ? AND thread_id = ?`

func scanConversation(s scanner) (*engine.Conversation, error) {
	var c engine.Conversation
	err := s.Scan(&c.ID, &c.AssistantID, &c.Platform, &c.ChannelID, &c.ThreadID, &c.UserID, &c.Title,
		timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// EnsureConversation finds the conversation of c's (Platform, ChannelID,
// ThreadID) or creates it from c, and fills c with the stored record.
func (db *DB) EnsureConversation(ctx context.Context, c *engine.Conversation) error {
	if err := c.Normalize(now()); err != nil {
		return err
	}
	// Most messages continue a thread: look without taking the write lock.
	stored, err := scanConversation(db.r.QueryRowContext(ctx, conversationOfThread, string(c.Platform), c.ChannelID, c.ThreadID))
	switch {
	case err == nil:
		*c = *stored
		return nil
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("ensure conversation: %w", err)
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO conversations
			(id, assistant_id, platform, channel_id, thread_id, user_id, title, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (platform, channel_id, thread_id) DO NOTHING`,
			c.ID, c.AssistantID, string(c.Platform), c.ChannelID, c.ThreadID, c.UserID, c.Title,
			encTime(c.CreatedAt), encTime(c.UpdatedAt))
		if err != nil {
			return err
		}
		stored, err = scanConversation(tx.QueryRowContext(ctx, conversationOfThread, string(c.Platform), c.ChannelID, c.ThreadID))
		return err
	})
	switch {
	case duplicate(err):
		return engine.WrapError(engine.ECONFLICT, err, "Conversation %q already exists in another thread.", c.ID)
	case err != nil:
		return fmt.Errorf("ensure conversation: %w", err)
	}
	*c = *stored
	return nil
}

// ConversationByID returns the conversation with the id.
func (db *DB) ConversationByID(ctx context.Context, id string) (*engine.Conversation, error) {
	c, err := scanConversation(db.r.QueryRowContext(ctx, `SELECT `+conversationColumns+` FROM conversations WHERE id = ?`, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, notFound("Conversation", id)
	case err != nil:
		return nil, fmt.Errorf("get conversation: %w", err)
	}
	return c, nil
}

// ConversationByThread returns the conversation of the thread without
// creating it; ENOTFOUND when there is none.
func (db *DB) ConversationByThread(ctx context.Context, platform engine.Platform, channelID, threadID string) (*engine.Conversation, error) {
	c, err := scanConversation(db.r.QueryRowContext(ctx, conversationOfThread, string(platform), channelID, threadID))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, engine.Errorf(engine.ENOTFOUND, "No conversation was found in thread %q of channel %q on %s.", threadID, channelID, platform)
	case err != nil:
		return nil, fmt.Errorf("get conversation of thread: %w", err)
	}
	return c, nil
}

// ListConversations returns the conversations matching every set field of
// f, most recently updated first. Since and Until bound UpdatedAt
// (Since <= UpdatedAt < Until); Feedback and Errors look at the ratings
// and outcomes of the conversation's traces (conversation_filter.go).
func (db *DB) ListConversations(ctx context.Context, f engine.ConversationFilter) ([]*engine.Conversation, error) {
	f.Normalize()
	if err := f.Validate(); err != nil {
		return nil, err
	}
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	if f.Platform != "" {
		add(`platform = ?`, string(f.Platform))
	}
	if f.AssistantID != "" {
		add(`assistant_id = ?`, f.AssistantID)
	}
	if f.UserID != "" {
		add(`user_id = ?`, f.UserID)
	}
	if f.ChannelID != "" {
		add(`channel_id = ?`, f.ChannelID)
	}
	if !f.Since.IsZero() {
		add(`updated_at >= ?`, encTime(f.Since))
	}
	if !f.Until.IsZero() {
		add(`updated_at < ?`, encTime(f.Until))
	}
	for _, c := range conversationReportConditions(f) {
		where = append(where, c.cond)
		args = append(args, c.args...)
	}
	q := `SELECT ` + conversationColumns + ` FROM conversations`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?`
	args = append(args, f.Limit, f.Offset)
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	list, err := collect(rows, scanConversation)
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	return list, nil
}

// AddTurn stores t and bumps its conversation's UpdatedAt; ENOTFOUND when
// the conversation does not exist.
func (db *DB) AddTurn(ctx context.Context, t *engine.Turn) error {
	at := now()
	if err := t.Normalize(at); err != nil {
		return err
	}
	citations, err := json.Marshal(t.Citations)
	if err != nil {
		return fmt.Errorf("encode citations: %w", err)
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE conversations SET updated_at = ? WHERE id = ?`, encTime(at), t.ConversationID)
		if err != nil {
			return err
		}
		if err := affected(res, "Conversation", t.ConversationID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO turns (id, conversation_id, role, user_id, user_name, content,
			citations, event_id, trace_id, outcome, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.ConversationID, string(t.Role), t.UserID, t.UserName, t.Content, string(citations), t.EventID,
			t.TraceID, string(t.Outcome), encTime(t.CreatedAt))
		return err
	})
	switch {
	case engine.IsNotFound(err):
		return err
	case duplicate(err):
		return engine.WrapError(engine.ECONFLICT, err, "Turn %q already exists.", t.ID)
	case err != nil:
		return fmt.Errorf("add turn: %w", err)
	}
	return nil
}

func scanTurn(s scanner) (*engine.Turn, error) {
	var (
		t         engine.Turn
		citations []byte
	)
	if err := s.Scan(&t.ID, &t.ConversationID, &t.Role, &t.UserID, &t.UserName, &t.Content, &citations,
		&t.EventID, &t.TraceID, &t.Outcome, timeCol{&t.CreatedAt}); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(citations, &t.Citations); err != nil {
		return nil, fmt.Errorf("decode citations of turn %s: %w", t.ID, err)
	}
	return &t, nil
}

// Turns returns the newest limit turns of the conversation (all when
// limit <= 0) in chronological order. A conversation without turns, or
// none at all, has an empty history.
func (db *DB) Turns(ctx context.Context, conversationID string, limit int) ([]*engine.Turn, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := db.r.QueryContext(ctx, `SELECT id, conversation_id, role, user_id, user_name, content, citations,
		event_id, trace_id, outcome, created_at FROM (
			SELECT * FROM turns WHERE conversation_id = ? ORDER BY created_at DESC, seq DESC LIMIT ?
		) ORDER BY created_at, seq`, conversationID, limit)
	if err != nil {
		return nil, fmt.Errorf("list turns: %w", err)
	}
	turns, err := collect(rows, scanTurn)
	if err != nil {
		return nil, fmt.Errorf("list turns: %w", err)
	}
	return turns, nil
}
