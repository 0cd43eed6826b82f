-- Users' ratings of answers: one per user (platform and user id) and trace.
-- The foreign key makes saving feedback for an unknown trace fail in the
-- same statement; SaveTrace updates a trace in place (ON CONFLICT DO
-- UPDATE), so replacing a trace keeps its feedback. The primary key serves
-- the lookups by trace and the cascade; the "C" collation (that of
-- traces.id) keeps the listing's tie order the byte order SQLite uses.
CREATE TABLE feedback (
	trace_id   text COLLATE "C" NOT NULL CONSTRAINT feedback_trace_id_fkey REFERENCES traces (id) ON DELETE CASCADE,
	platform   text COLLATE "C" NOT NULL,
	user_id    text COLLATE "C" NOT NULL,
	rating     smallint NOT NULL CONSTRAINT feedback_rating_valid CHECK (rating IN (-1, 1)),
	comment    text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	CONSTRAINT feedback_pkey PRIMARY KEY (trace_id, platform, user_id)
);
