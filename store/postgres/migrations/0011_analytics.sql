-- Analytics (the console's dashboard and analytics pages) aggregate the
-- finished turns of a time range by UTC day. This index finds the range
-- and covers every column the aggregates read, so they scan the index
-- only (once vacuum has marked the pages all-visible) instead of the
-- trace rows with their JSON steps and passages.
CREATE INDEX traces_analytics ON traces (started_at)
	INCLUDE (id, platform, outcome, duration_ns, conversation_id, assistant_id, assistant_name, channel_id, user_id,
		model, tokens_in, tokens_out);
-- It serves every query traces_started_at (0001) served.
DROP INDEX traces_started_at;
-- Unanswered questions join a trace to the user turn that asked it
-- (traces.id is COLLATE "C", so the join compares in "C").
CREATE INDEX turns_trace_id ON turns (trace_id COLLATE "C") WHERE role = 'user';
