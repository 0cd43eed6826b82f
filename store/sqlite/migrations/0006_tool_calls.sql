-- The audit of tool calls: who asked, which tool, a hash of the arguments,
-- how long and how it ended.
CREATE TABLE tool_calls (
	id             TEXT PRIMARY KEY,
	trace_id       TEXT NOT NULL,
	assistant_id   TEXT NOT NULL,
	assistant_name TEXT NOT NULL,
	platform       TEXT NOT NULL,
	user_id        TEXT NOT NULL,
	tool           TEXT NOT NULL,
	arguments_hash TEXT NOT NULL,
	outcome        TEXT NOT NULL,
	duration_ns    INTEGER NOT NULL,
	created_at     TEXT NOT NULL
) STRICT;
CREATE INDEX tool_calls_created_at ON tool_calls (created_at);
