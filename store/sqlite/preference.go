package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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
