-- MCP servers configured in the console; the JSON columns hold args, env
-- and headers.
CREATE TABLE tool_servers (
	name       text COLLATE "C" PRIMARY KEY,
	transport  text NOT NULL,
	command    text NOT NULL,
	args       text NOT NULL,
	env        text NOT NULL,
	url        text NOT NULL,
	headers    text NOT NULL,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL
);
