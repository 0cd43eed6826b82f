-- Tool approvals ("ask" policies) and the links between chat users and
-- console users.

-- allow, ask or deny per tool: an object of engine.ToolMode by tool name.
ALTER TABLE assistants ADD COLUMN tool_policy jsonb NOT NULL DEFAULT '{}';

-- Turns waiting for a person to approve the tool calls the model asked for.
-- state is the engine's encoding of the turn; thread, chat_user and calls
-- are JSON text (engine.Thread, engine.ChatUser, array of engine.ToolCall),
-- kept byte for byte.
CREATE TABLE tool_approvals (
	id              text COLLATE "C" PRIMARY KEY,
	trace_id        text NOT NULL DEFAULT '',
	event_id        text NOT NULL DEFAULT '',
	assistant_id    text NOT NULL DEFAULT '',
	assistant_name  text NOT NULL DEFAULT '',
	conversation_id text NOT NULL DEFAULT '',
	thread          text NOT NULL,
	chat_user       text NOT NULL,
	calls           text NOT NULL,
	state           bytea NOT NULL,
	status          text NOT NULL,
	decided_by      text NOT NULL DEFAULT '',
	decided_at      timestamptz,
	created_at      timestamptz NOT NULL,
	expires_at      timestamptz
);
CREATE INDEX tool_approvals_status ON tool_approvals (status, created_at);
CREATE INDEX tool_approvals_created_at ON tool_approvals (created_at);

-- A chat user (platform, chat_user_id) linked to a console user.
CREATE TABLE identities (
	platform     text COLLATE "C" NOT NULL,
	chat_user_id text COLLATE "C" NOT NULL,
	user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at   timestamptz NOT NULL,
	PRIMARY KEY (platform, chat_user_id)
);
CREATE INDEX identities_user_id ON identities (user_id, platform, chat_user_id);
