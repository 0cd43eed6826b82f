-- The console's audit log: who changed what and when, including refused
-- attempts and sign-ins. Nothing deletes from it automatically.
CREATE TABLE audit_log (
	id         TEXT PRIMARY KEY,
	at         TEXT NOT NULL,
	actor_id   TEXT NOT NULL,
	actor_name TEXT NOT NULL,
	action     TEXT NOT NULL,
	target     TEXT NOT NULL,
	detail     TEXT NOT NULL,
	status     INTEGER NOT NULL,
	ip         TEXT NOT NULL,
	user_agent TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_at ON audit_log (at, id);
