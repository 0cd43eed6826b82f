package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/convosphere/convosphere/engine"
)

// CreateUser stores u; ECONFLICT when the name is taken (ignoring case).
func (db *DB) CreateUser(ctx context.Context, u *engine.User) error {
	if err := u.Normalize(now()); err != nil {
		return err
	}
	_, err := db.w.ExecContext(ctx, `INSERT INTO users
		(id, name, name_key, display_name, role, password_hash, disabled, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Name, nameKey(u.Name), u.DisplayName, string(u.Role), u.PasswordHash, u.Disabled,
		encTime(u.CreatedAt), encTime(u.UpdatedAt))
	switch {
	case violates(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE, "users.name_key"):
		return u.NameTakenError(err)
	case duplicate(err):
		return engine.WrapError(engine.ECONFLICT, err, "User %q already exists.", u.ID)
	case err != nil:
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

// UpdateUser stores every field of u but CreatedAt, which it fills in.
func (db *DB) UpdateUser(ctx context.Context, u *engine.User) error {
	if err := u.Validate(); err != nil {
		return err
	}
	at := now()
	var created time.Time
	err := db.w.QueryRowContext(ctx, `UPDATE users SET name = ?, name_key = ?, display_name = ?, role = ?,
		password_hash = ?, disabled = ?, updated_at = ? WHERE id = ? RETURNING created_at`,
		u.Name, nameKey(u.Name), u.DisplayName, string(u.Role), u.PasswordHash, u.Disabled, encTime(at), u.ID,
	).Scan(timeCol{&created})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return notFound("User", u.ID)
	case violates(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE, "users.name_key"):
		return u.NameTakenError(err)
	case err != nil:
		return fmt.Errorf("update user: %w", err)
	}
	u.CreatedAt, u.UpdatedAt = created, at
	return nil
}

const userColumns = `id, name, display_name, role, password_hash, disabled, created_at, updated_at`

func scanUser(s scanner) (*engine.User, error) {
	var u engine.User
	err := s.Scan(&u.ID, &u.Name, &u.DisplayName, &u.Role, &u.PasswordHash, &u.Disabled,
		timeCol{&u.CreatedAt}, timeCol{&u.UpdatedAt})
	if err != nil {
		return nil, err
	}
	return &u, nil
}

func (db *DB) user(ctx context.Context, where, arg, what string) (*engine.User, error) {
	u, err := scanUser(db.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE `+where, arg))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, notFound("User", what)
	case err != nil:
		return nil, fmt.Errorf("get user: %w", err)
	}
	return u, nil
}

// UserByID returns the user with the id.
func (db *DB) UserByID(ctx context.Context, id string) (*engine.User, error) {
	return db.user(ctx, `id = ?`, id, id)
}

// UserByName returns the user with the name, ignoring case.
func (db *DB) UserByName(ctx context.Context, name string) (*engine.User, error) {
	return db.user(ctx, `name_key = ?`, nameKey(strings.TrimSpace(name)), name)
}

// ListUsers returns every user ordered by name.
func (db *DB) ListUsers(ctx context.Context) ([]*engine.User, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY name_key`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	users, err := collect(rows, scanUser)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// CountUsers returns how many users there are.
func (db *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// CreateSession stores s; ENOTFOUND when its user does not exist.
func (db *DB) CreateSession(ctx context.Context, s *engine.Session) error {
	if err := s.Normalize(now()); err != nil {
		return err
	}
	_, err := db.w.ExecContext(ctx, `INSERT INTO sessions (id, user_id, token_hash, created_at, expires_at, last_seen_at)
		VALUES (?, ?, ?, ?, ?, ?)`, s.ID, s.UserID, s.TokenHash, encTime(s.CreatedAt), encTime(s.ExpiresAt), encTime(s.LastSeenAt))
	switch {
	case violates(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY, ""):
		return engine.WrapError(engine.ENOTFOUND, err, "User %q was not found.", s.UserID)
	case duplicate(err):
		return engine.WrapError(engine.ECONFLICT, err, "The session already exists.")
	case err != nil:
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// SessionByTokenHash returns the unexpired session with the token hash;
// ENOTFOUND when it is missing or expired.
func (db *DB) SessionByTokenHash(ctx context.Context, hash string) (*engine.Session, error) {
	var s engine.Session
	err := db.r.QueryRowContext(ctx, `SELECT id, user_id, token_hash, created_at, expires_at, last_seen_at
		FROM sessions WHERE token_hash = ? AND expires_at > ?`, hash, encTime(now()),
	).Scan(&s.ID, &s.UserID, &s.TokenHash, timeCol{&s.CreatedAt}, timeCol{&s.ExpiresAt}, timeCol{&s.LastSeenAt})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, engine.Errorf(engine.ENOTFOUND, "The session was not found or has expired: sign in again.")
	case err != nil:
		return nil, fmt.Errorf("get session: %w", err)
	}
	return &s, nil
}

// TouchSession records that the session was used at at.
func (db *DB) TouchSession(ctx context.Context, id string, at time.Time) error {
	res, err := db.w.ExecContext(ctx, `UPDATE sessions SET last_seen_at = ? WHERE id = ?`, encTime(engine.StoredTime(at)), id)
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return affected(res, "Session", id)
}

// PurgeSessions deletes expired sessions and those idle since idleSince.
func (db *DB) PurgeSessions(ctx context.Context, idleSince time.Time) (int, error) {
	res, err := db.w.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at < ?`,
		encTime(now()), encTime(engine.StoredTime(idleSince)))
	if err != nil {
		return 0, fmt.Errorf("purge sessions: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// DeleteSession deletes the session with the id; ENOTFOUND when missing.
func (db *DB) DeleteSession(ctx context.Context, id string) error {
	res, err := db.w.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return affected(res, "Session", id)
}

// DeleteUserSessions deletes every session of the user (none is not an error).
func (db *DB) DeleteUserSessions(ctx context.Context, userID string) error {
	if _, err := db.w.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("delete user sessions: %w", err)
	}
	return nil
}

// CreateAPIToken stores t; ENOTFOUND when its user does not exist.
func (db *DB) CreateAPIToken(ctx context.Context, t *engine.APIToken) error {
	if err := t.Normalize(now()); err != nil {
		return err
	}
	_, err := db.w.ExecContext(ctx, `INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, last_used_at)
		VALUES (?, ?, ?, ?, ?, ?)`, t.ID, t.UserID, t.Name, t.TokenHash, encTime(t.CreatedAt), encNullTime(t.LastUsedAt))
	switch {
	case violates(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY, ""):
		return engine.WrapError(engine.ENOTFOUND, err, "User %q was not found.", t.UserID)
	case duplicate(err):
		return engine.WrapError(engine.ECONFLICT, err, "The API token already exists.")
	case err != nil:
		return fmt.Errorf("create api token: %w", err)
	}
	return nil
}

const apiTokenColumns = `id, user_id, name, token_hash, created_at, last_used_at`

func scanAPIToken(s scanner) (*engine.APIToken, error) {
	var t engine.APIToken
	if err := s.Scan(&t.ID, &t.UserID, &t.Name, &t.TokenHash, timeCol{&t.CreatedAt}, timeCol{&t.LastUsedAt}); err != nil {
		return nil, err
	}
	return &t, nil
}

// APITokenByHash returns the API token with the hash.
func (db *DB) APITokenByHash(ctx context.Context, hash string) (*engine.APIToken, error) {
	t, err := scanAPIToken(db.r.QueryRowContext(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens WHERE token_hash = ?`, hash))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, engine.Errorf(engine.ENOTFOUND, "The API token was not found.")
	case err != nil:
		return nil, fmt.Errorf("get api token: %w", err)
	}
	return t, nil
}

// ListAPITokens returns the user's API tokens (every user's when userID is
// empty), oldest first.
func (db *DB) ListAPITokens(ctx context.Context, userID string) ([]*engine.APIToken, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens
		WHERE ? = '' OR user_id = ? ORDER BY created_at, id`, userID, userID)
	if err != nil {
		return nil, fmt.Errorf("list api tokens: %w", err)
	}
	tokens, err := collect(rows, scanAPIToken)
	if err != nil {
		return nil, fmt.Errorf("list api tokens: %w", err)
	}
	return tokens, nil
}

// DeleteAPIToken deletes the API token with the id; ENOTFOUND when missing.
func (db *DB) DeleteAPIToken(ctx context.Context, id string) error {
	res, err := db.w.ExecContext(ctx, `DELETE FROM api_tokens WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete api token: %w", err)
	}
	return affected(res, "API token", id)
}

// TouchAPIToken records when the token was last used.
func (db *DB) TouchAPIToken(ctx context.Context, id string, at time.Time) error {
	res, err := db.w.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`, encNullTime(at), id)
	if err != nil {
		return fmt.Errorf("touch api token: %w", err)
	}
	return affected(res, "API token", id)
}
