-- The audit of tool calls: who asked, which tool, a hash of the arguments,
-- how long and how it ended.
CREATE TABLE tool_calls (
	id             text COLLATE "C" PRIMARY KEY,
	trace_id       text NOT NULL,
	assistant_id   text NOT NULL,
	assistant_name text NOT NULL,
	platform       text NOT NULL,
	user_id        text NOT NULL,
	tool           text NOT NULL,
	arguments_hash text NOT NULL,
	outcome        text NOT NULL,
	duration_ns    bigint NOT NULL,
	created_at     timestamptz NOT NULL
);
CREATE INDEX tool_calls_created_at ON tool_calls (created_at);
