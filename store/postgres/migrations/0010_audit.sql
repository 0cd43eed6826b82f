-- The console's audit log: who changed what and when, including refused
-- attempts and sign-ins. Nothing deletes from it automatically.
CREATE TABLE audit_log (
	id         text COLLATE "C" PRIMARY KEY,
	at         timestamptz NOT NULL,
	actor_id   text NOT NULL,
	actor_name text NOT NULL,
	action     text COLLATE "C" NOT NULL,
	target     text NOT NULL,
	detail     text NOT NULL,
	status     integer NOT NULL,
	ip         text NOT NULL,
	user_agent text NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at, id);
