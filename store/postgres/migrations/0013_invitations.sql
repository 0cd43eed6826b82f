-- Invitation links (only the hash of each token is stored) and when each
-- console user last signed in.

CREATE TABLE invitations (
	id         text COLLATE "C" PRIMARY KEY,
	user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	token_hash text NOT NULL CONSTRAINT invitations_token_hash_unique UNIQUE,
	created_by text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	used_at    timestamptz
);
CREATE INDEX invitations_user_id ON invitations (user_id);

CREATE TABLE sign_ins (
	user_id text PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	at      timestamptz NOT NULL
);
