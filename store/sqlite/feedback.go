package sqlite

import (
	"context"
	"fmt"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/convosphere/convosphere/engine"
)

// SaveFeedback stores f, replacing the same user's earlier rating of the
// trace (keeping its CreatedAt), and fills f with the stored record;
// ENOTFOUND when the trace does not exist (the foreign key checks it in the
// same statement).
func (db *DB) SaveFeedback(ctx context.Context, f *engine.Feedback) error {
	if err := f.Normalize(now()); err != nil {
		return err
	}
	var createdAt time.Time
	err := db.w.QueryRowContext(ctx, `INSERT INTO feedback (trace_id, platform, user_id, rating, comment, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (trace_id, platform, user_id) DO UPDATE SET rating = excluded.rating, comment = excluded.comment,
			updated_at = excluded.updated_at
		RETURNING created_at`,
		f.TraceID, string(f.Platform), f.UserID, int(f.Rating), f.Comment, encTime(f.CreatedAt), encTime(f.UpdatedAt),
	).Scan(timeCol{&createdAt})
	switch {
	case violates(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY, ""):
		return engine.WrapError(engine.ENOTFOUND, err, "Trace %q was not found: only an answer can be rated.", f.TraceID)
	case err != nil:
		return fmt.Errorf("save feedback: %w", err)
	}
	f.CreatedAt = createdAt
	return nil
}

func scanFeedback(s scanner) (*engine.Feedback, error) {
	var (
		f      engine.Feedback
		rating int
	)
	if err := s.Scan(&f.TraceID, &f.Platform, &f.UserID, &rating, &f.Comment, timeCol{&f.CreatedAt}, timeCol{&f.UpdatedAt}); err != nil {
		return nil, err
	}
	f.Rating = engine.Rating(rating)
	return &f, nil
}

// FeedbackForTrace returns the trace's feedback, oldest first (ties in
// platform and user order).
func (db *DB) FeedbackForTrace(ctx context.Context, traceID string) ([]*engine.Feedback, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT trace_id, platform, user_id, rating, comment, created_at, updated_at
		FROM feedback WHERE trace_id = ? ORDER BY created_at, platform, user_id`, traceID)
	if err != nil {
		return nil, fmt.Errorf("list feedback: %w", err)
	}
	list, err := collect(rows, scanFeedback)
	if err != nil {
		return nil, fmt.Errorf("list feedback: %w", err)
	}
	return list, nil
}
