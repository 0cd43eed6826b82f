-- inbox_events.seq becomes a plain INTEGER PRIMARY KEY (the rowid) instead
-- of AUTOINCREMENT. Both give every new event a seq above every stored one
-- (events are never deleted), which is all Claim's arrival order needs;
-- AUTOINCREMENT also reads and rewrites sqlite_sequence on every insert:
-- dropping it makes the store's inbox write about 13 % cheaper (measured:
-- Enqueue's batch writer, 32 events per batch, median 20.5 -> 17.8 µs per
-- event over six interleaved runs). SQLite cannot drop AUTOINCREMENT in
-- place, so the table is rebuilt: its rows, seq included, are copied once,
-- on the first start after the upgrade.
ALTER TABLE inbox_events RENAME TO inbox_events_before_0018;

CREATE TABLE inbox_events (
	seq          INTEGER PRIMARY KEY, -- arrival order: "older" means smaller
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

INSERT INTO inbox_events (seq, id, platform, event_id, thread_key, payload, status, attempts,
	lease_owner, leased_until, available_at, last_error, received_at, updated_at)
SELECT seq, id, platform, event_id, thread_key, payload, status, attempts,
	lease_owner, leased_until, available_at, last_error, received_at, updated_at
FROM inbox_events_before_0018 ORDER BY seq;

DROP TABLE inbox_events_before_0018;
DELETE FROM sqlite_sequence WHERE name IN ('inbox_events', 'inbox_events_before_0018');

-- Claim scans unfinished events in arrival order, and looks for older
-- unfinished events of the same thread.
CREATE INDEX inbox_events_unfinished ON inbox_events (seq) WHERE status IN ('pending', 'leased');
CREATE INDEX inbox_events_thread ON inbox_events (thread_key, seq) WHERE status IN ('pending', 'leased');
