-- The console's conversations: the tool calls of a trace, and the
-- conversations with a turn that went wrong (engine.ErrorOutcomes).
CREATE INDEX tool_calls_trace_id ON tool_calls (trace_id);
CREATE INDEX traces_error_outcome ON traces (conversation_id) WHERE outcome IN ('failed', 'interrupted', 'rejected');
