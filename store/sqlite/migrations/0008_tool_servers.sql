-- MCP servers configured in the console; the JSON columns hold args, env
-- and headers.
CREATE TABLE tool_servers (
	name       TEXT PRIMARY KEY,
	transport  TEXT NOT NULL,
	command    TEXT NOT NULL,
	args       TEXT NOT NULL,
	env        TEXT NOT NULL,
	url        TEXT NOT NULL,
	headers    TEXT NOT NULL,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
) STRICT;
