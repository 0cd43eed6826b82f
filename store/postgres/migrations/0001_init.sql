-- ConvoSphere schema, version 1 (PostgreSQL).
-- Times are timestamptz written in UTC with microsecond precision. name_key
-- columns hold the lowercased name and make names unique regardless of case.
-- Columns that listings sort by use the "C" collation, so the order is the
-- byte order SQLite uses too, whatever the database's locale.

CREATE TABLE users (
	id            text PRIMARY KEY,
	name          text NOT NULL,
	name_key      text COLLATE "C" NOT NULL CONSTRAINT users_name_unique UNIQUE,
	display_name  text NOT NULL DEFAULT '',
	role          text NOT NULL,
	password_hash text NOT NULL DEFAULT '',
	disabled      boolean NOT NULL DEFAULT false,
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL
);

CREATE TABLE sessions (
	id         text PRIMARY KEY,
	user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	token_hash text NOT NULL CONSTRAINT sessions_token_hash_unique UNIQUE,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE api_tokens (
	id           text COLLATE "C" PRIMARY KEY,
	user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name         text NOT NULL,
	token_hash   text NOT NULL CONSTRAINT api_tokens_token_hash_unique UNIQUE,
	created_at   timestamptz NOT NULL,
	last_used_at timestamptz
);
CREATE INDEX api_tokens_user_id ON api_tokens (user_id);

CREATE TABLE assistants (
	id                text COLLATE "C" PRIMARY KEY,
	name              text NOT NULL,
	name_key          text COLLATE "C" NOT NULL CONSTRAINT assistants_name_unique UNIQUE,
	description       text NOT NULL DEFAULT '',
	system_prompt     text NOT NULL DEFAULT '',
	model             text NOT NULL DEFAULT '',
	temperature       double precision NOT NULL DEFAULT 0,
	max_output_tokens integer NOT NULL DEFAULT 0,
	knowledge_bases   jsonb NOT NULL DEFAULT '[]', -- array of names
	tools             jsonb NOT NULL DEFAULT '[]', -- array of names
	bindings          jsonb NOT NULL DEFAULT '[]', -- array of engine.Binding
	retrieval         jsonb NOT NULL DEFAULT '{}', -- engine.RetrievalSettings
	is_default        boolean NOT NULL DEFAULT false,
	created_at        timestamptz NOT NULL,
	updated_at        timestamptz NOT NULL
);
-- At most one default assistant; the store clears the others in the same
-- transaction, this index is the safety net.
CREATE UNIQUE INDEX assistants_one_default ON assistants (is_default) WHERE is_default;

CREATE TABLE conversations (
	id           text COLLATE "C" PRIMARY KEY,
	assistant_id text NOT NULL DEFAULT '',
	platform     text NOT NULL,
	channel_id   text NOT NULL,
	thread_id    text NOT NULL,
	user_id      text NOT NULL DEFAULT '',
	title        text NOT NULL DEFAULT '',
	created_at   timestamptz NOT NULL,
	updated_at   timestamptz NOT NULL,
	CONSTRAINT conversations_thread_unique UNIQUE (platform, channel_id, thread_id)
);
CREATE INDEX conversations_updated_at ON conversations (updated_at);
CREATE INDEX conversations_assistant_id ON conversations (assistant_id, updated_at);

CREATE TABLE turns (
	seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- breaks created_at ties
	id              text NOT NULL CONSTRAINT turns_id_unique UNIQUE,
	conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	role            text NOT NULL,
	user_id         text NOT NULL DEFAULT '',
	user_name       text NOT NULL DEFAULT '',
	content         text NOT NULL,
	citations       jsonb NOT NULL DEFAULT 'null', -- array of engine.Citation
	event_id        text NOT NULL DEFAULT '',
	trace_id        text NOT NULL DEFAULT '',
	outcome         text NOT NULL DEFAULT '',
	created_at      timestamptz NOT NULL
);
CREATE INDEX turns_conversation_id ON turns (conversation_id, created_at, seq);

CREATE TABLE traces (
	id              text COLLATE "C" PRIMARY KEY,
	event_id        text NOT NULL DEFAULT '',
	conversation_id text NOT NULL DEFAULT '',
	assistant_id    text NOT NULL DEFAULT '',
	assistant_name  text NOT NULL DEFAULT '',
	platform        text NOT NULL DEFAULT '',
	channel_id      text NOT NULL DEFAULT '',
	user_id         text NOT NULL DEFAULT '',
	model           text NOT NULL DEFAULT '',
	tokens_in       integer NOT NULL DEFAULT 0,
	tokens_out      integer NOT NULL DEFAULT 0,
	passages        jsonb NOT NULL DEFAULT 'null', -- array of engine.PassageRef
	steps           jsonb NOT NULL DEFAULT 'null', -- array of engine.TraceStep
	outcome         text NOT NULL DEFAULT '',
	error           text NOT NULL DEFAULT '',
	started_at      timestamptz NOT NULL,
	duration_ns     bigint NOT NULL DEFAULT 0
);
CREATE INDEX traces_conversation_id ON traces (conversation_id, started_at);
CREATE INDEX traces_started_at ON traces (started_at);

CREATE TABLE knowledge_bases (
	id          text PRIMARY KEY,
	name        text COLLATE "C" NOT NULL CONSTRAINT knowledge_bases_name_unique UNIQUE,
	description text NOT NULL DEFAULT '',
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL
);

CREATE TABLE documents (
	id                text PRIMARY KEY,
	knowledge_base_id text NOT NULL REFERENCES knowledge_bases (id) ON DELETE CASCADE,
	source            text COLLATE "C" NOT NULL,
	title             text NOT NULL DEFAULT '',
	content_type      text NOT NULL DEFAULT '',
	content           bytea NOT NULL, -- the original bytes
	sha256            text NOT NULL DEFAULT '',
	size              bigint NOT NULL DEFAULT 0,
	status            text NOT NULL,
	error             text NOT NULL DEFAULT '',
	chunks            integer NOT NULL DEFAULT 0,
	created_at        timestamptz NOT NULL,
	updated_at        timestamptz NOT NULL,
	CONSTRAINT documents_source_unique UNIQUE (knowledge_base_id, source)
);

CREATE TABLE inbox_events (
	seq          bigint GENERATED ALWAYS AS IDENTITY, -- arrival order: "older" means smaller
	id           text PRIMARY KEY,
	platform     text NOT NULL,
	event_id     text NOT NULL,
	thread_key   text NOT NULL,
	payload      bytea NOT NULL,
	status       text NOT NULL,
	attempts     integer NOT NULL DEFAULT 0,
	lease_owner  text NOT NULL DEFAULT '',
	leased_until timestamptz,
	available_at timestamptz NOT NULL,
	last_error   text NOT NULL DEFAULT '',
	received_at  timestamptz NOT NULL,
	updated_at   timestamptz NOT NULL,
	CONSTRAINT inbox_events_event_unique UNIQUE (platform, event_id),
	CONSTRAINT inbox_events_seq_unique UNIQUE (seq)
);
-- Claim scans unfinished events in arrival order, and looks for older
-- unfinished events of the same thread.
CREATE INDEX inbox_events_unfinished ON inbox_events (seq) WHERE status IN ('pending', 'leased');
CREATE INDEX inbox_events_thread ON inbox_events (thread_key, seq) WHERE status IN ('pending', 'leased');

CREATE TABLE outbound_messages (
	platform   text NOT NULL,
	event_id   text NOT NULL,
	part       integer NOT NULL,
	channel_id text NOT NULL DEFAULT '',
	message_id text NOT NULL,
	created_at timestamptz NOT NULL,
	PRIMARY KEY (platform, event_id, part)
);
