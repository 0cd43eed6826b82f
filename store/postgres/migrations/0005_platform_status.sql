-- The last connection state of each platform adapter, for the console.
CREATE TABLE platform_status (
	platform   text COLLATE "C" PRIMARY KEY,
	state      text NOT NULL,
	detail     text NOT NULL,
	updated_at timestamptz NOT NULL
);
