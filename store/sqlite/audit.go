package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/convosphere/convosphere/engine"
)

const auditColumns = `id, at, actor_id, actor_name, action, target, detail, status, ip, user_agent`

// RecordAudit stores an audit entry.
func (db *DB) RecordAudit(ctx context.Context, e *engine.AuditEntry) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if e.ID == "" {
		e.ID = engine.NewID()
	}
	if e.At.IsZero() {
		e.At = now()
	}
	e.At = engine.StoredTime(e.At)
	_, err := db.w.ExecContext(ctx, `INSERT INTO audit_log (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, encTime(e.At), e.ActorID, e.ActorName, e.Action, e.Target, e.Detail, e.Status, e.IP, e.UserAgent)
	if err != nil {
		return fmt.Errorf("record audit entry: %w", err)
	}
	return nil
}

// ListAudit lists audit entries, newest first.
func (db *DB) ListAudit(ctx context.Context, f engine.AuditFilter) ([]*engine.AuditEntry, error) {
	var (
		where []string
		args  []any
	)
	if f.Actor != "" {
		where = append(where, `(actor_id = ? OR lower(actor_name) = lower(?))`)
		args = append(args, f.Actor, f.Actor)
	}
	if f.ActionPrefix != "" {
		where = append(where, `substr(action, 1, length(?)) = ?`)
		args = append(args, f.ActionPrefix, f.ActionPrefix)
	}
	if f.Target != "" {
		where = append(where, `instr(lower(target), lower(?)) > 0`)
		args = append(args, f.Target)
	}
	if !f.Since.IsZero() {
		where = append(where, `at >= ?`)
		args = append(args, encTime(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, `at < ?`)
		args = append(args, encTime(f.Until))
	}
	if f.FailuresOnly {
		where = append(where, `status >= 400`)
	}
	if !f.BeforeAt.IsZero() && f.BeforeID != "" {
		at := encTime(f.BeforeAt)
		where = append(where, `(at < ? OR (at = ? AND id < ?))`)
		args = append(args, at, at, f.BeforeID)
	}
	q := `SELECT ` + auditColumns + ` FROM audit_log`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	if f.Limit <= 0 {
		f.Limit = engine.DefaultAuditLimit
	}
	q += ` ORDER BY at DESC, id DESC LIMIT ? OFFSET ?`
	args = append(args, f.Limit, max(f.Offset, 0))
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	list, err := collect(rows, func(s scanner) (*engine.AuditEntry, error) {
		var e engine.AuditEntry
		return &e, s.Scan(&e.ID, timeCol{&e.At}, &e.ActorID, &e.ActorName, &e.Action, &e.Target, &e.Detail, &e.Status, &e.IP, &e.UserAgent)
	})
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	return list, nil
}
