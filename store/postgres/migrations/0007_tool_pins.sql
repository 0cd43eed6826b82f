-- Tools an admin enabled, pinned to a hash of their name, description and
-- input schema.
CREATE TABLE tool_pins (
	tool      text COLLATE "C" PRIMARY KEY,
	hash      text NOT NULL,
	pinned_by text NOT NULL,
	pinned_at timestamptz NOT NULL
);
