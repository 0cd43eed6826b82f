-- The last connection state of each platform adapter, for the console.
CREATE TABLE platform_status (
	platform   TEXT PRIMARY KEY,
	state      TEXT NOT NULL,
	detail     TEXT NOT NULL,
	updated_at TEXT NOT NULL
) STRICT;
