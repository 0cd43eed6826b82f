-- Users' ratings of answers: one per user (platform and user id) and trace.
-- The foreign key makes saving feedback for an unknown trace fail in the
-- same statement; SaveTrace updates a trace in place (ON CONFLICT DO UPDATE,
-- never REPLACE, which would delete the row and its feedback with it).
-- The primary key serves the lookups by trace and the cascade.
CREATE TABLE feedback (
	trace_id   TEXT NOT NULL REFERENCES traces (id) ON DELETE CASCADE,
	platform   TEXT NOT NULL,
	user_id    TEXT NOT NULL,
	rating     INTEGER NOT NULL CONSTRAINT feedback_rating_valid CHECK (rating IN (-1, 1)),
	comment    TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	PRIMARY KEY (trace_id, platform, user_id)
) STRICT;
