-- Tool approvals ("ask" policies) and the links between chat users and
-- console users.

-- allow, ask or deny per tool: a JSON object of engine.ToolMode by tool name.
ALTER TABLE assistants ADD COLUMN tool_policy TEXT NOT NULL DEFAULT '{}';

-- Turns waiting for a person to approve the tool calls the model asked for.
-- state is the engine's encoding of the turn; thread, chat_user and calls
-- are JSON (engine.Thread, engine.ChatUser, array of engine.ToolCall).
CREATE TABLE tool_approvals (
	id              TEXT PRIMARY KEY,
	trace_id        TEXT NOT NULL DEFAULT '',
	event_id        TEXT NOT NULL DEFAULT '',
	assistant_id    TEXT NOT NULL DEFAULT '',
	assistant_name  TEXT NOT NULL DEFAULT '',
	conversation_id TEXT NOT NULL DEFAULT '',
	thread          TEXT NOT NULL,
	chat_user       TEXT NOT NULL,
	calls           TEXT NOT NULL,
	state           BLOB NOT NULL,
	status          TEXT NOT NULL,
	decided_by      TEXT NOT NULL DEFAULT '',
	decided_at      TEXT,
	created_at      TEXT NOT NULL,
	expires_at      TEXT
) STRICT;
CREATE INDEX tool_approvals_status ON tool_approvals (status, created_at);
CREATE INDEX tool_approvals_created_at ON tool_approvals (created_at);

-- A chat user (platform, chat_user_id) linked to a console user.
CREATE TABLE identities (
	platform     TEXT NOT NULL,
	chat_user_id TEXT NOT NULL,
	user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at   TEXT NOT NULL,
	PRIMARY KEY (platform, chat_user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX identities_user_id ON identities (user_id, platform, chat_user_id);
