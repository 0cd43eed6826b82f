package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/convosphere/convosphere/engine"
)

// CreateApproval stores ap and fills it with the stored record (see
// engine.ToolApproval.Normalize); ECONFLICT when its ID is taken.
func (db *DB) CreateApproval(ctx context.Context, ap *engine.ToolApproval) error {
	if err := ap.Normalize(now()); err != nil {
		return err
	}
	thread, err := json.Marshal(ap.Thread)
	if err != nil {
		return fmt.Errorf("encode approval thread: %w", err)
	}
	user, err := json.Marshal(ap.User)
	if err != nil {
		return fmt.Errorf("encode approval user: %w", err)
	}
	calls, err := json.Marshal(ap.Calls)
	if err != nil {
		return fmt.Errorf("encode approval calls: %w", err)
	}
	_, err = db.w.ExecContext(ctx, `INSERT INTO tool_approvals (id, trace_id, event_id, assistant_id, assistant_name,
		conversation_id, thread, chat_user, calls, state, status, decided_by, decided_at, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ap.ID, ap.TraceID, ap.EventID, ap.AssistantID, ap.AssistantName, ap.ConversationID,
		string(thread), string(user), string(calls), ap.State, string(ap.Status), ap.DecidedBy,
		encNullTime(ap.DecidedAt), encTime(ap.CreatedAt), encNullTime(ap.ExpiresAt))
	switch {
	case violates(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, ""):
		return engine.WrapError(engine.ECONFLICT, err, "Approval %q already exists.", ap.ID)
	case err != nil:
		return fmt.Errorf("create approval: %w", err)
	}
	return nil
}

const approvalColumns = `id, trace_id, event_id, assistant_id, assistant_name, conversation_id, thread, chat_user,
	calls, state, status, decided_by, decided_at, created_at, expires_at`

func scanApproval(s scanner) (*engine.ToolApproval, error) {
	var (
		ap                  engine.ToolApproval
		thread, user, calls string
	)
	err := s.Scan(&ap.ID, &ap.TraceID, &ap.EventID, &ap.AssistantID, &ap.AssistantName, &ap.ConversationID,
		&thread, &user, &calls, &ap.State, &ap.Status, &ap.DecidedBy,
		timeCol{&ap.DecidedAt}, timeCol{&ap.CreatedAt}, timeCol{&ap.ExpiresAt})
	if err != nil {
		return nil, err
	}
	if ap.State == nil {
		ap.State = []byte{}
	}
	if err := errors.Join(
		json.Unmarshal([]byte(thread), &ap.Thread),
		json.Unmarshal([]byte(user), &ap.User),
		json.Unmarshal([]byte(calls), &ap.Calls),
	); err != nil {
		return nil, fmt.Errorf("decode approval %s: %w", ap.ID, err)
	}
	return &ap, nil
}

// ApprovalByID returns the approval with the id.
func (db *DB) ApprovalByID(ctx context.Context, id string) (*engine.ToolApproval, error) {
	return approvalByID(ctx, db.r, id)
}

// queryer is a connection pool or a transaction.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func approvalByID(ctx context.Context, q queryer, id string) (*engine.ToolApproval, error) {
	ap, err := scanApproval(q.QueryRowContext(ctx, `SELECT `+approvalColumns+` FROM tool_approvals WHERE id = ?`, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, notFound("Approval", id)
	case err != nil:
		return nil, fmt.Errorf("get approval: %w", err)
	}
	return ap, nil
}

// DecideApproval moves a pending approval to status, recording who decided
// and when (at; now when zero), and in the same transaction enqueues resume
// (when not nil) as Enqueue would, unless its (Platform, EventID) is stored
// already; resume is filled in when it is inserted. When the approval is no
// longer pending it returns the stored approval and an ECONFLICT error;
// ENOTFOUND when there is none.
func (db *DB) DecideApproval(ctx context.Context, id string, status engine.ApprovalStatus, decidedBy string, at time.Time,
	resume *engine.InboxEvent) (*engine.ToolApproval, error) {
	if status != engine.ApprovalApproved && status != engine.ApprovalRejected && status != engine.ApprovalExpired {
		return nil, engine.Errorf(engine.EINVALID, "An approval is decided as approved, rejected or expired, not %q.", status)
	}
	at = engine.StoredTime(at)
	if at.IsZero() {
		at = now()
	}
	var (
		ap       *engine.ToolApproval
		decided  bool
		enqueued engine.InboxEvent
	)
	if resume != nil {
		enqueued = *resume
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		var err error
		ap, err = scanApproval(tx.QueryRowContext(ctx, `UPDATE tool_approvals SET status = ?, decided_by = ?, decided_at = ?
			WHERE id = ? AND status = 'pending' RETURNING `+approvalColumns,
			string(status), decidedBy, encTime(at), id))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			ap, err = approvalByID(ctx, tx, id)
			return err
		case err != nil:
			return fmt.Errorf("decide approval: %w", err)
		}
		decided = true
		if resume == nil {
			return nil
		}
		_, err = enqueueTx(ctx, tx, &enqueued)
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case !decided:
		return ap, engine.Errorf(engine.ECONFLICT, "Approval %q is already %s.", id, ap.Status)
	}
	if resume != nil {
		*resume = enqueued
	}
	return ap, nil
}

// ListApprovals lists approvals newest first (by CreatedAt, then ID), of
// f.Status when set, at most f.Limit (default 100).
func (db *DB) ListApprovals(ctx context.Context, f engine.ApprovalFilter) ([]*engine.ToolApproval, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q := `SELECT ` + approvalColumns + ` FROM tool_approvals`
	var (
		args  []any
		where []string
	)
	if f.Status != "" {
		where = append(where, `status = ?`)
		args = append(args, string(f.Status))
	}
	if f.EventID != "" {
		where = append(where, `event_id = ?`)
		args = append(args, f.EventID)
	}
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, f.Limit)
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	list, err := collect(rows, scanApproval)
	if err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	return list, nil
}
