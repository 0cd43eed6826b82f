package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/convosphere/convosphere/engine"
)

// DefaultConversationLimit is how many conversations ListConversations
// returns when the filter sets no limit.
const DefaultConversationLimit = engine.DefaultConversationLimit

const conversationColumns = `id, assistant_id, platform, channel_id, thread_id, user_id, title, created_at, updated_at`

func scanConversation(s scanner) (*engine.Conversation, error) {
	var c engine.Conversation
	err := s.Scan(&c.ID, &c.AssistantID, &c.Platform, &c.ChannelID, &c.ThreadID, &c.UserID, &c.Title,
		timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// conversationOfThread returns the conversation of a (platform, channel_id,
// thread_id): a lookup of the conversations_thread_unique index.
func (db *DB) conversationOfThread(ctx context.Context, platform engine.Platform, channelID, threadID string) (*engine.Conversation, error) {
	return scanConversation(db.pool.QueryRow(ctx, `SELECT `+conversationColumns+` FROM conversations
		WHERE platform = $1 AND channel_id = $2 AND thread_id = $3`, string(platform), channelID, threadID))
}

// EnsureConversation finds the conversation of c's (Platform, ChannelID,
// ThreadID) or creates it from c, and fills c with the stored record.
func (db *DB) EnsureConversation(ctx context.Context, c *engine.Conversation) error {
	if err := c.Normalize(now()); err != nil {
		return err
	}
	stored, err := db.conversationOfThread(ctx, c.Platform, c.ChannelID, c.ThreadID)
	switch {
	case err == nil:
		*c = *stored
		return nil
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("ensure conversation: %w", err)
	}
	// When another writer inserts the thread first, DO NOTHING waits for it
	// to commit, and the next statement sees its row.
	_, err = db.pool.Exec(ctx, `INSERT INTO conversations
		(id, assistant_id, platform, channel_id, thread_id, user_id, title, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (platform, channel_id, thread_id) DO NOTHING`,
		c.ID, c.AssistantID, string(c.Platform), c.ChannelID, c.ThreadID, c.UserID, c.Title, c.CreatedAt, c.UpdatedAt)
	switch {
	case duplicate(err):
		return engine.WrapError(engine.ECONFLICT, err, "Conversation %q already exists in another thread.", c.ID)
	case err != nil:
		return fmt.Errorf("ensure conversation: %w", err)
	}
	stored, err = db.conversationOfThread(ctx, c.Platform, c.ChannelID, c.ThreadID)
	if err != nil {
		return fmt.Errorf("ensure conversation: %w", err)
	}
	*c = *stored
	return nil
}

// ConversationByID returns the conversation with the id.
func (db *DB) ConversationByID(ctx context.Context, id string) (*engine.Conversation, error) {
	c, err := scanConversation(db.pool.QueryRow(ctx, `SELECT `+conversationColumns+` FROM conversations WHERE id = $1`, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, notFound("Conversation", id)
	case err != nil:
		return nil, fmt.Errorf("get conversation: %w", err)
	}
	return c, nil
}

// ConversationByThread returns the conversation of the thread without
// creating it; ENOTFOUND when there is none.
func (db *DB) ConversationByThread(ctx context.Context, platform engine.Platform, channelID, threadID string) (*engine.Conversation, error) {
	c, err := db.conversationOfThread(ctx, platform, channelID, threadID)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
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
		args = append(args, arg)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
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
		add(`updated_at >= ?`, f.Since)
	}
	if !f.Until.IsZero() {
		add(`updated_at < ?`, f.Until)
	}
	for _, c := range conversationReportConditions(f) {
		where = append(where, numberPlaceholders(c.cond, len(args)))
		args = append(args, c.args...)
	}
	q := `SELECT ` + conversationColumns + ` FROM conversations`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	args = append(args, f.Limit, f.Offset)
	q += fmt.Sprintf(` ORDER BY updated_at DESC, id DESC LIMIT $%d OFFSET $%d`, len(args)-1, len(args))
	rows, err := db.pool.Query(ctx, q, args...)
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
	err = db.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE conversations SET updated_at = $1 WHERE id = $2`, at, t.ConversationID)
		if err != nil {
			return err
		}
		if err := affected(tag, "Conversation", t.ConversationID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO turns (id, conversation_id, role, user_id, user_name, content,
			citations, event_id, trace_id, outcome, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			t.ID, t.ConversationID, string(t.Role), t.UserID, t.UserName, t.Content, citations, t.EventID,
			t.TraceID, string(t.Outcome), t.CreatedAt)
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
	var lim any // NULL: no limit
	if limit > 0 {
		lim = limit
	}
	rows, err := db.pool.Query(ctx, `SELECT id, conversation_id, role, user_id, user_name, content, citations,
		event_id, trace_id, outcome, created_at FROM (
			SELECT * FROM turns WHERE conversation_id = $1 ORDER BY created_at DESC, seq DESC LIMIT $2
		) newest ORDER BY created_at, seq`, conversationID, lim)
	if err != nil {
		return nil, fmt.Errorf("list turns: %w", err)
	}
	turns, err := collect(rows, scanTurn)
	if err != nil {
		return nil, fmt.Errorf("list turns: %w", err)
	}
	return turns, nil
}
