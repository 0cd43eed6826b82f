-- Analytics (the console's dashboard and analytics pages) aggregate the
-- finished turns of a time range by UTC day. This index finds the range
-- and holds every column the aggregates read, so they never read the
-- trace rows with their JSON steps and passages (about three times
-- faster over a month of a busy deployment).
CREATE INDEX traces_analytics ON traces (started_at, outcome, platform, duration_ns, conversation_id, id, assistant_id,
	assistant_name, channel_id, user_id, model, tokens_in, tokens_out);
-- It serves every query traces_started_at (0001) served.
DROP INDEX traces_started_at;
-- Unanswered questions join a trace to the user turn that asked it.
CREATE INDEX turns_trace_id ON turns (trace_id) WHERE role = 'user';
