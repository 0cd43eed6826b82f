package postgres

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
	_, err := db.pool.Exec(ctx, `INSERT INTO audit_log (`+auditColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		e.ID, e.At, e.ActorID, e.ActorName, e.Action, e.Target, e.Detail, e.Status, e.IP, e.UserAgent)
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
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Actor != "" {
		p := arg(f.Actor)
		where = append(where, `(actor_id = `+p+` OR lower(actor_name) = lower(`+p+`))`)
	}
	if f.ActionPrefix != "" {
		p := arg(f.ActionPrefix)
		where = append(where, `left(action, char_length(`+p+`)) = `+p)
	}
	if f.Target != "" {
		where = append(where, `strpos(lower(target), lower(`+arg(f.Target)+`)) > 0`)
	}
	if !f.Since.IsZero() {
		where = append(where, `at >= `+arg(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, `at < `+arg(f.Until))
	}
	if f.FailuresOnly {
		where = append(where, `status >= 400`)
	}
	if !f.BeforeAt.IsZero() && f.BeforeID != "" {
		at, id := arg(engine.StoredTime(f.BeforeAt)), arg(f.BeforeID)
		where = append(where, `(at < `+at+` OR (at = `+at+` AND id < `+id+`))`)
	}
	q := `SELECT ` + auditColumns + ` FROM audit_log`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	if f.Limit <= 0 {
		f.Limit = engine.DefaultAuditLimit
	}
	q += ` ORDER BY at DESC, id DESC LIMIT ` + arg(f.Limit) + ` OFFSET ` + arg(max(f.Offset, 0))
	rows, err := db.pool.Query(ctx, q, args...)
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
