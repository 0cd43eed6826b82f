-- Sessions remember when they were last used, for the console's idle
-- timeout; existing sessions count as used when they were created.
ALTER TABLE sessions ADD COLUMN last_seen_at timestamptz;
UPDATE sessions SET last_seen_at = created_at;
ALTER TABLE sessions ALTER COLUMN last_seen_at SET NOT NULL;
CREATE INDEX sessions_last_seen_at ON sessions (last_seen_at);
