-- Chat users' small settings, such as the assistant a Discord user picked
-- for a channel.
CREATE TABLE preferences (
	platform   TEXT NOT NULL,
	user_id    TEXT NOT NULL,
	key        TEXT NOT NULL,
	value      TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	PRIMARY KEY (platform, user_id, key)
) STRICT;
