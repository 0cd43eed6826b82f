package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// SetPreference stores p, replacing the value of the same key; an empty
// value deletes the preference.
func (db *DB) SetPreference(ctx context.Context, p *engine.Preference) error {
	if err := p.Validate(); err != nil {
		return err
	}
	p.UpdatedAt = now()
	var err error
	if p.Value == "" {
		_, err = db.w.ExecContext(ctx, `DELETE FROM preferences WHERE platform = ? AND user_id = ? AND key = ?`,
			string(p.Platform), p.UserID, p.Key)
	} else {
		_, err = db.w.ExecContext(ctx, `INSERT INTO preferences (platform, user_id, key, value, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (platform, user_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
			string(p.Platform), p.UserID, p.Key, p.Value, encTime(p.UpdatedAt))
	}
	if err != nil {
		return fmt.Errorf("set preference: %w", err)
	}
	return nil
}

// Preference returns a stored preference; ENOTFOUND when there is none.
func (db *DB) Preference(ctx context.Context, platform engine.Platform, userID, key string) (*engine.Preference, error) {
	p := engine.Preference{Platform: platform, UserID: userID, Key: key}
	err := db.r.QueryRowContext(ctx, `SELECT value, updated_at FROM preferences WHERE platform = ? AND user_id = ? AND key = ?`,
		string(platform), userID, key).Scan(&p.Value, timeCol{&p.UpdatedAt})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, notFound("Preference", key)
	case err != nil:
		return nil, fmt.Errorf("read preference: %w", err)
	}
	return &p, nil
}

// SetPlatformStatus records a platform's connection state.
func (db *DB) SetPlatformStatus(ctx context.Context, s *engine.PlatformStatus) error {
	if s.Platform == "" || s.State == "" {
		return engine.Errorf(engine.EINVALID, "A platform status needs a platform and a state.")
	}
	s.UpdatedAt = now()
	_, err := db.w.ExecContext(ctx, `INSERT INTO platform_status (platform, state, detail, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (platform) DO UPDATE SET state = excluded.state, detail = excluded.detail, updated_at = excluded.updated_at`,
		string(s.Platform), s.State, s.Detail, encTime(s.UpdatedAt))
	if err != nil {
		return fmt.Errorf("set platform status: %w", err)
	}
	return nil
}

// PlatformStatuses lists the platforms' last states.
func (db *DB) PlatformStatuses(ctx context.Context) ([]*engine.PlatformStatus, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT platform, state, detail, updated_at FROM platform_status ORDER BY platform`)
	if err != nil {
		return nil, fmt.Errorf("list platform status: %w", err)
	}
	list, err := collect(rows, func(s scanner) (*engine.PlatformStatus, error) {
		var st engine.PlatformStatus
		return &st, s.Scan(&st.Platform, &st.State, &st.Detail, timeCol{&st.UpdatedAt})
	})
	if err != nil {
		return nil, fmt.Errorf("list platform status: %w", err)
	}
	return list, nil
}

// RecordToolCall stores a tool call's audit record.
func (db *DB) RecordToolCall(ctx context.Context, r *engine.ToolCallRecord) error {
	if r.ID == "" {
		r.ID = engine.NewID()
	}
	r.CreatedAt = now()
	_, err := db.w.ExecContext(ctx, `INSERT INTO tool_calls (id, trace_id, assistant_id, assistant_name, platform, user_id, tool,
		arguments_hash, outcome, duration_ns, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.TraceID, r.AssistantID, r.AssistantName, string(r.Platform), r.UserID, r.Tool, r.ArgumentsHash, r.Outcome,
		int64(r.Duration), encTime(r.CreatedAt))
	if err != nil {
		return fmt.Errorf("record tool call: %w", err)
	}
	return nil
}

// ListToolCalls lists audit records, newest first.
func (db *DB) ListToolCalls(ctx context.Context, f engine.ToolCallFilter) ([]*engine.ToolCallRecord, error) {
	q := `SELECT id, trace_id, assistant_id, assistant_name, platform, user_id, tool, arguments_hash, outcome, duration_ns, created_at
		FROM tool_calls WHERE 1 = 1`
	var args []any
	if f.AssistantID != "" {
		q += ` AND assistant_id = ?`
		args = append(args, f.AssistantID)
	}
	if f.Tool != "" {
		q += ` AND tool = ?`
		args = append(args, f.Tool)
	}
	if f.TraceID != "" {
		q += ` AND trace_id = ?`
		args = append(args, f.TraceID)
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q += ` ORDER BY created_at DESC, id LIMIT ?`
	args = append(args, f.Limit)
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list tool calls: %w", err)
	}
	list, err := collect(rows, func(s scanner) (*engine.ToolCallRecord, error) {
		var r engine.ToolCallRecord
		var d int64
		err := s.Scan(&r.ID, &r.TraceID, &r.AssistantID, &r.AssistantName, &r.Platform, &r.UserID, &r.Tool, &r.ArgumentsHash, &r.Outcome, &d, timeCol{&r.CreatedAt})
		r.Duration = time.Duration(d)
		return &r, err
	})
	if err != nil {
		return nil, fmt.Errorf("list tool calls: %w", err)
	}
	return list, nil
}

// SetToolPin stores a pin, replacing the tool's earlier one.
func (db *DB) SetToolPin(ctx context.Context, p *engine.ToolPin) error {
	if p.Tool == "" || p.Hash == "" {
		return engine.Errorf(engine.EINVALID, "A tool pin needs the tool and its hash.")
	}
	p.PinnedAt = now()
	_, err := db.w.ExecContext(ctx, `INSERT INTO tool_pins (tool, hash, pinned_by, pinned_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (tool) DO UPDATE SET hash = excluded.hash, pinned_by = excluded.pinned_by, pinned_at = excluded.pinned_at`,
		p.Tool, p.Hash, p.PinnedBy, encTime(p.PinnedAt))
	if err != nil {
		return fmt.Errorf("set tool pin: %w", err)
	}
	return nil
}

// DeleteToolPin removes a pin: the tool is disabled.
func (db *DB) DeleteToolPin(ctx context.Context, tool string) error {
	res, err := db.w.ExecContext(ctx, `DELETE FROM tool_pins WHERE tool = ?`, tool)
	if err != nil {
		return fmt.Errorf("delete tool pin: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return notFound("Tool pin", tool)
	}
	return nil
}

// ToolPins lists the pins by tool.
func (db *DB) ToolPins(ctx context.Context) ([]*engine.ToolPin, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT tool, hash, pinned_by, pinned_at FROM tool_pins ORDER BY tool`)
	if err != nil {
		return nil, fmt.Errorf("list tool pins: %w", err)
	}
	list, err := collect(rows, func(s scanner) (*engine.ToolPin, error) {
		var p engine.ToolPin
		return &p, s.Scan(&p.Tool, &p.Hash, &p.PinnedBy, timeCol{&p.PinnedAt})
	})
	if err != nil {
		return nil, fmt.Errorf("list tool pins: %w", err)
	}
	return list, nil
}
