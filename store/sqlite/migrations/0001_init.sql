-- ConvoSphere schema, version 1 (SQLite).
-- Times are TEXT in UTC, fixed width (2006-01-02T15:04:05.000000Z), so they
-- sort and compare as strings. name_key columns hold the lowercased name and
-- make names unique regardless of case.

CREATE TABLE users (
	id            TEXT PRIMARY KEY,
	name          TEXT NOT NULL,
	name_key      TEXT NOT NULL CONSTRAINT users_name_unique UNIQUE,
	display_name  TEXT NOT NULL DEFAULT '',
	role          TEXT NOT NULL,
	password_hash TEXT NOT NULL DEFAULT '',
	disabled      INTEGER NOT NULL DEFAULT 0,
	created_at    TEXT NOT NULL,
	updated_at    TEXT NOT NULL
) STRICT;

CREATE TABLE sessions (
	id         TEXT PRIMARY KEY,
	user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	token_hash TEXT NOT NULL UNIQUE,
	created_at TEXT NOT NULL,
	expires_at TEXT NOT NULL
) STRICT;
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE api_tokens (
	id           TEXT PRIMARY KEY,
	user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name         TEXT NOT NULL,
	token_hash   TEXT NOT NULL UNIQUE,
	created_at   TEXT NOT NULL,
	last_used_at TEXT
) STRICT;
CREATE INDEX api_tokens_user_id ON api_tokens (user_id);

CREATE TABLE assistants (
	id                TEXT PRIMARY KEY,
	name              TEXT NOT NULL,
	name_key          TEXT NOT NULL CONSTRAINT assistants_name_unique UNIQUE,
	description       TEXT NOT NULL DEFAULT '',
	system_prompt     TEXT NOT NULL DEFAULT '',
	model             TEXT NOT NULL DEFAULT '',
	temperature       REAL NOT NULL DEFAULT 0,
	max_output_tokens INTEGER NOT NULL DEFAULT 0,
	knowledge_bases   TEXT NOT NULL DEFAULT '[]', -- JSON array of names
	tools             TEXT NOT NULL DEFAULT '[]', -- JSON array of names
	bindings          TEXT NOT NULL DEFAULT '[]', -- JSON array of engine.Binding
	retrieval         TEXT NOT NULL DEFAULT '{}', -- JSON engine.RetrievalSettings
	is_default        INTEGER NOT NULL DEFAULT 0,
	created_at        TEXT NOT NULL,
	updated_at        TEXT NOT NULL
) STRICT;
-- At most one default assistant; the store clears the others in the same
-- transaction, this index is the safety net.
CREATE UNIQUE INDEX assistants_one_default ON assistants (is_default) WHERE is_default = 1;

CREATE TABLE conversations (
	id           TEXT PRIMARY KEY,
	assistant_id TEXT NOT NULL DEFAULT '',
	platform     TEXT NOT NULL,
	channel_id   TEXT NOT NULL,
	thread_id    TEXT NOT NULL,
	user_id      TEXT NOT NULL DEFAULT '',
	title        TEXT NOT NULL DEFAULT '',
	created_at   TEXT NOT NULL,
	updated_at   TEXT NOT NULL,
	CONSTRAINT conversations_thread_unique UNIQUE (platform, channel_id, thread_id)
) STRICT;
CREATE INDEX conversations_updated_at ON conversations (updated_at);
CREATE INDEX conversations_assistant_id ON conversations (assistant_id, updated_at);

CREATE TABLE turns (
	seq             INTEGER PRIMARY KEY, -- insertion order, breaks created_at ties
	id              TEXT NOT NULL UNIQUE,
	conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	role            TEXT NOT NULL,
	user_id         TEXT NOT NULL DEFAULT '',
	user_name       TEXT NOT NULL DEFAULT '',
	content         TEXT NOT NULL,
	citations       TEXT NOT NULL DEFAULT 'null', -- JSON array of engine.Citation
	event_id        TEXT NOT NULL DEFAULT '',
	trace_id        TEXT NOT NULL DEFAULT '',
	outcome         TEXT NOT NULL DEFAULT '',
	created_at      TEXT NOT NULL
) STRICT;
CREATE INDEX turns_conversation_id ON turns (conversation_id, created_at, seq);

CREATE TABLE traces (
	id             TEXT PRIMARY KEY,
	event_id       TEXT NOT NULL DEFAULT '',
	conversation_id TEXT NOT NULL DEFAULT '',
	assistant_id   TEXT NOT NULL DEFAULT '',
	assistant_name TEXT NOT NULL DEFAULT '',
	platform       TEXT NOT NULL DEFAULT '',
	channel_id     TEXT NOT NULL DEFAULT '',
	user_id        TEXT NOT NULL DEFAULT '',
	model          TEXT NOT NULL DEFAULT '',
	tokens_in      INTEGER NOT NULL DEFAULT 0,
	tokens_out     INTEGER NOT NULL DEFAULT 0,
	passages       TEXT NOT NULL DEFAULT 'null', -- JSON array of engine.PassageRef
	steps          TEXT NOT NULL DEFAULT 'null', -- JSON array of engine.TraceStep
	outcome        TEXT NOT NULL DEFAULT '',
	error          TEXT NOT NULL DEFAULT '',
	started_at     TEXT NOT NULL,
	duration_ns    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX traces_conversation_id ON traces (conversation_id, started_at);
CREATE INDEX traces_started_at ON traces (started_at);

CREATE TABLE knowledge_bases (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL CONSTRAINT knowledge_bases_name_unique UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	created_at  TEXT NOT NULL,
	updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE documents (
	id                TEXT PRIMARY KEY,
	knowledge_base_id TEXT NOT NULL REFERENCES knowledge_bases (id) ON DELETE CASCADE,
	source            TEXT NOT NULL,
	title             TEXT NOT NULL DEFAULT '',
	content_type      TEXT NOT NULL DEFAULT '',
	content           BLOB NOT NULL, -- the original bytes
	sha256            TEXT NOT NULL DEFAULT '',
	size              INTEGER NOT NULL DEFAULT 0,
	status            TEXT NOT NULL,
	error             TEXT NOT NULL DEFAULT '',
	chunks            INTEGER NOT NULL DEFAULT 0,
	created_at        TEXT NOT NULL,
	updated_at        TEXT NOT NULL,
	CONSTRAINT documents_source_unique UNIQUE (knowledge_base_id, source)
) STRICT;

CREATE TABLE inbox_events (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT, -- arrival order: "older" means smaller
	id           TEXT NOT NULL UNIQUE,
	platform     TEXT NOT NULL,
	event_id     TEXT NOT NULL,
	thread_key   TEXT NOT NULL,
	payload      BLOB NOT NULL,
	status       TEXT NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	lease_owner  TEXT NOT NULL DEFAULT '',
	leased_until TEXT,
	available_at TEXT NOT NULL,
	last_error   TEXT NOT NULL DEFAULT '',
	received_at  TEXT NOT NULL,
	updated_at   TEXT NOT NULL,
	CONSTRAINT inbox_events_event_unique UNIQUE (platform, event_id)
) STRICT;
-- Claim scans unfinished events in arrival order, and looks for older
-- unfinished events of the same thread.
CREATE INDEX inbox_events_unfinished ON inbox_events (seq) WHERE status IN ('pending', 'leased');
CREATE INDEX inbox_events_thread ON inbox_events (thread_key, seq) WHERE status IN ('pending', 'leased');

CREATE TABLE outbound_messages (
	platform   TEXT NOT NULL,
	event_id   TEXT NOT NULL,
	part       INTEGER NOT NULL,
	channel_id TEXT NOT NULL DEFAULT '',
	message_id TEXT NOT NULL,
	created_at TEXT NOT NULL,
	PRIMARY KEY (platform, event_id, part)
) STRICT, WITHOUT ROWID;
