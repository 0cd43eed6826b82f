-- Ids are compared byte for byte (COLLATE "C") everywhere: conversations.id
-- and traces.id already were, but the columns that point at them used the
-- database's default collation, so a join or a correlated subquery such as
-- turns.conversation_id = conversations.id could not use the indexes
-- (measured by bench/console: the conversation list scanned every turn per
-- row). The indexes on these columns are rebuilt with the new collation.
ALTER TABLE turns ALTER COLUMN conversation_id TYPE text COLLATE "C";
ALTER TABLE turns ALTER COLUMN trace_id TYPE text COLLATE "C";
ALTER TABLE traces ALTER COLUMN conversation_id TYPE text COLLATE "C";
ALTER TABLE tool_calls ALTER COLUMN trace_id TYPE text COLLATE "C";
ALTER TABLE tool_approvals ALTER COLUMN trace_id TYPE text COLLATE "C";
ALTER TABLE tool_approvals ALTER COLUMN conversation_id TYPE text COLLATE "C";
