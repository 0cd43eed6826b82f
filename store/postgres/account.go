package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convosphere/convosphere/engine"
)

// CreateInvitation stores inv and deletes the user's other unused
// invitations in the same transaction; ENOTFOUND when the user does not
// exist.
func (db *DB) CreateInvitation(ctx context.Context, inv *engine.Invitation) error {
	if err := inv.Normalize(now()); err != nil {
		return err
	}
	return db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM invitations WHERE user_id = $1 AND used_at IS NULL`, inv.UserID); err != nil {
			return fmt.Errorf("delete earlier invitations: %w", err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO invitations (id, user_id, token_hash, created_by, created_at, expires_at, used_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, inv.ID, inv.UserID, inv.TokenHash, inv.CreatedBy,
			inv.CreatedAt, inv.ExpiresAt, nullTime(inv.UsedAt))
		switch {
		case violates(err, codeForeignKeyViolation, "invitations_user_id_fkey"):
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
	inv, err := scanInvitation(q.QueryRow(ctx, `SELECT `+invitationColumns+` FROM invitations WHERE `+where, arg))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, engine.Errorf(engine.ENOTFOUND, "The invitation was not found.")
	case err != nil:
		return nil, fmt.Errorf("get invitation: %w", err)
	}
	return inv, nil
}

// InvitationByTokenHash returns the invitation with the token hash, used
// and expired ones too.
func (db *DB) InvitationByTokenHash(ctx context.Context, hash string) (*engine.Invitation, error) {
	return invitationWhere(ctx, db.pool, `token_hash = $1`, hash)
}

// ListInvitations lists the unused invitations, newest first.
func (db *DB) ListInvitations(ctx context.Context) ([]*engine.Invitation, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+invitationColumns+` FROM invitations
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
	at = engine.StoredTime(at)
	return db.tx(ctx, func(tx pgx.Tx) error {
		var userID string
		err := tx.QueryRow(ctx, `UPDATE invitations SET used_at = $1
			WHERE id = $2 AND used_at IS NULL AND expires_at > $1 RETURNING user_id`, at, id).Scan(&userID)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			inv, err := invitationWhere(ctx, tx, `id = $1`, id)
			if err != nil {
				return err
			}
			return engine.Errorf(engine.ECONFLICT, "The invitation is %s.", inv.State(at))
		case err != nil:
			return fmt.Errorf("use invitation: %w", err)
		}
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3`,
			passwordHash, now(), userID)
		if err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		if err := affected(tag, "User", userID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID); err != nil {
			return fmt.Errorf("delete user sessions: %w", err)
		}
		return nil
	})
}

// RecordSignIn records when the user last signed in.
func (db *DB) RecordSignIn(ctx context.Context, userID string, at time.Time) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO sign_ins (user_id, at) VALUES ($1, $2)
		ON CONFLICT (user_id) DO UPDATE SET at = excluded.at`, userID, engine.StoredTime(at))
	switch {
	case violates(err, codeForeignKeyViolation, "sign_ins_user_id_fkey"):
		return engine.WrapError(engine.ENOTFOUND, err, "User %q was not found.", userID)
	case err != nil:
		return fmt.Errorf("record sign-in: %w", err)
	}
	return nil
}

// LastSignIns returns when each user last signed in, by user id.
func (db *DB) LastSignIns(ctx context.Context) (map[string]time.Time, error) {
	rows, err := db.pool.Query(ctx, `SELECT user_id, at FROM sign_ins`)
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
