-- Tools an admin enabled, pinned to a hash of their name, description and
-- input schema.
CREATE TABLE tool_pins (
	tool      TEXT PRIMARY KEY,
	hash      TEXT NOT NULL,
	pinned_by TEXT NOT NULL,
	pinned_at TEXT NOT NULL
) STRICT;
