package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/convosphere/convosphere/engine"
)

// LinkIdentity stores id, replacing the link of the same (Platform,
// ChatUserID), and sets its CreatedAt to now; ENOTFOUND when the console
// user does not exist (the foreign key checks it in the same statement).
func (db *DB) LinkIdentity(ctx context.Context, id *engine.Identity) error {
	if id.Platform == "" || id.ChatUserID == "" || id.UserID == "" {
		return engine.Errorf(engine.EINVALID, "An identity needs a platform, a chat user id and a console user.")
	}
	at := now()
	_, err := db.pool.Exec(ctx, `INSERT INTO identities (platform, chat_user_id, user_id, created_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (platform, chat_user_id) DO UPDATE SET user_id = excluded.user_id, created_at = excluded.created_at`,
		string(id.Platform), id.ChatUserID, id.UserID, at)
	switch {
	case violates(err, codeForeignKeyViolation, "identities_user_id_fkey"):
		return engine.WrapError(engine.ENOTFOUND, err, "User %q was not found.", id.UserID)
	case err != nil:
		return fmt.Errorf("link identity: %w", err)
	}
	id.CreatedAt = at
	return nil
}

// UnlinkIdentity removes the link of a chat user; ENOTFOUND when there is none.
func (db *DB) UnlinkIdentity(ctx context.Context, platform engine.Platform, chatUserID string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM identities WHERE platform = $1 AND chat_user_id = $2`, string(platform), chatUserID)
	if err != nil {
		return fmt.Errorf("unlink identity: %w", err)
	}
	return affected(tag, "Identity", string(platform)+":"+chatUserID)
}

// UserByIdentity returns the console user linked to a chat user; ENOTFOUND
// when there is none.
func (db *DB) UserByIdentity(ctx context.Context, platform engine.Platform, chatUserID string) (*engine.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users
		WHERE id = (SELECT user_id FROM identities WHERE platform = $1 AND chat_user_id = $2)`, string(platform), chatUserID))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, engine.Errorf(engine.ENOTFOUND, "No console user is linked to %s user %q.", platform, chatUserID)
	case err != nil:
		return nil, fmt.Errorf("get user by identity: %w", err)
	}
	return u, nil
}

// IdentitiesOf lists the chat users linked to a console user, by platform
// and chat user id.
func (db *DB) IdentitiesOf(ctx context.Context, userID string) ([]*engine.Identity, error) {
	rows, err := db.pool.Query(ctx, `SELECT platform, chat_user_id, user_id, created_at FROM identities
		WHERE user_id = $1 ORDER BY platform, chat_user_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list identities: %w", err)
	}
	list, err := collect(rows, func(s scanner) (*engine.Identity, error) {
		var id engine.Identity
		if err := s.Scan(&id.Platform, &id.ChatUserID, &id.UserID, timeCol{&id.CreatedAt}); err != nil {
			return nil, err
		}
		return &id, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list identities: %w", err)
	}
	return list, nil
}
