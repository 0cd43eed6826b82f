-- Chat users' small settings, such as the assistant a Discord user picked
-- for a channel.
CREATE TABLE preferences (
	platform   text COLLATE "C" NOT NULL,
	user_id    text COLLATE "C" NOT NULL,
	key        text COLLATE "C" NOT NULL,
	value      text NOT NULL,
	updated_at timestamptz NOT NULL,
	PRIMARY KEY (platform, user_id, key)
);
