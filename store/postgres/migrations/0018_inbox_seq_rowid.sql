-- SQLite's migration 0018 rebuilds inbox_events without AUTOINCREMENT;
-- PostgreSQL's seq is an identity column already, so there is nothing to
-- do. The file keeps the two stores' migration versions in step.
SELECT 1;
