package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/convosphere/convosphere/engine"
)

// CreateInvitation stores inv and deletes the user's other unused
// invitations in the same transaction; ENOTFOUND when the user does not
// exist.
func (db *DB) CreateInvitation(ctx context.Context, inv *engine.Invitation) error {
	if err := inv.Normalize(now()); err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM invitations WHERE user_id = ? AND used_at IS NULL`, inv.UserID); err != nil {
			return fmt.Errorf("delete earlier invitations: %w", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO invitations (id, user_id, token_hash, created_by, created_at, expires_at, used_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, inv.ID, inv.UserID, inv.TokenHash, inv.CreatedBy,
			encTime(inv.CreatedAt), encTime(inv.ExpiresAt), encNullTime(inv.UsedAt))
		switch {
		case violates(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY, ""):
			return engine.WrapError(engine.ENOTFOUND, err, "User %q was not found.", inv.UserID)
		case duplicate(err):
			return engine.WrapError(engine.ECONFLICT, err, "The invitation already exists.")
		case err != nil:
			return fmt.Errorf("create invitation: %w", err)
		}
		return nil
	})
}

const invitationColumns = `id, user_id, token_hash, created_by, created_at, expires_at, used_at`

func scanInvitation(s scanner) (*engine.Invitation, error) {
	var inv engine.Invitation
	err := s.Scan(&inv.ID, &inv.UserID, &inv.TokenHash, &inv.CreatedBy,
		timeCol{&inv.CreatedAt}, timeCol{&inv.ExpiresAt}, timeCol{&inv.UsedAt})
	if err != nil {
		return nil, err
	}
	return &inv, nil
}

func invitationWhere(ctx context.Context, q queryer, where, arg string) (*engine.Invitation, error) {
	inv, err := scanInvitation(q.QueryRowContext(ctx, `SELECT `+invitationColumns+` FROM invitations WHERE `+where, arg))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, engine.Errorf(engine.ENOTFOUND, "The invitation was not found.")
	case err != nil:
		return nil, fmt.Errorf("get invitation: %w", err)
	}
	return inv, nil
}

// InvitationByTokenHash returns the invitation with the token hash, used
// and expired ones too.
func (db *DB) InvitationByTokenHash(ctx context.Context, hash string) (*engine.Invitation, error) {
	return invitationWhere(ctx, db.r, `token_hash = ?`, hash)
}

// ListInvitations lists the unused invitations, newest first.
func (db *DB) ListInvitations(ctx context.Context) ([]*engine.Invitation, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+invitationColumns+` FROM invitations
		WHERE used_at IS NULL ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list invitations: %w", err)
	}
	list, err := collect(rows, scanInvitation)
	if err != nil {
		return nil, fmt.Errorf("list invitations: %w", err)
	}
	return list, nil
}

// AcceptInvitation marks the invitation used, sets its user's password
// hash and deletes the user's sessions, in one transaction.
func (db *DB) AcceptInvitation(ctx context.Context, id, passwordHash string, at time.Time) error {
	if passwordHash == "" {
		return engine.Errorf(engine.EINVALID, "Accepting an invitation needs a password hash.")
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		var userID string
		err := tx.QueryRowContext(ctx, `UPDATE invitations SET used_at = ?
			WHERE id = ? AND used_at IS NULL AND expires_at > ? RETURNING user_id`,
			encTime(at), id, encTime(at)).Scan(&userID)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			inv, err := invitationWhere(ctx, tx, `id = ?`, id)
			if err != nil {
				return err
			}
			return engine.Errorf(engine.ECONFLICT, "The invitation is %s.", inv.State(at))
		case err != nil:
			return fmt.Errorf("use invitation: %w", err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`,
			passwordHash, encTime(now()), userID)
		if err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		if err := affected(res, "User", userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID); err != nil {
			return fmt.Errorf("delete user sessions: %w", err)
		}
		return nil
	})
}

// RecordSignIn records when the user last signed in.
func (db *DB) RecordSignIn(ctx context.Context, userID string, at time.Time) error {
	_, err := db.w.ExecContext(ctx, `INSERT INTO sign_ins (user_id, at) VALUES (?, ?)
		ON CONFLICT (user_id) DO UPDATE SET at = excluded.at`, userID, encTime(at))
	switch {
	case violates(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY, ""):
		return engine.WrapError(engine.ENOTFOUND, err, "User %q was not found.", userID)
	case err != nil:
		return fmt.Errorf("record sign-in: %w", err)
	}
	return nil
}

// LastSignIns returns when each user last signed in, by user id.
func (db *DB) LastSignIns(ctx context.Context) (map[string]time.Time, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT user_id, at FROM sign_ins`)
	if err != nil {
		return nil, fmt.Errorf("list sign-ins: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var (
			id string
			at time.Time
		)
		if err := rows.Scan(&id, timeCol{&at}); err != nil {
			return nil, fmt.Errorf("list sign-ins: %w", err)
		}
		out[id] = at
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sign-ins: %w", err)
	}
	return out, nil
}
