-- Invitation links (only the hash of each token is stored) and when each
-- console user last signed in.

CREATE TABLE invitations (
	id         TEXT PRIMARY KEY,
	user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	token_hash TEXT NOT NULL UNIQUE,
	created_by TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL,
	expires_at TEXT NOT NULL,
	used_at    TEXT
) STRICT;
CREATE INDEX invitations_user_id ON invitations (user_id);

CREATE TABLE sign_ins (
	user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	at      TEXT NOT NULL
) STRICT, WITHOUT ROWID;
