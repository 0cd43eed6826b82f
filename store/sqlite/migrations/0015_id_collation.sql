-- PostgreSQL's migration 0015 gives the id columns one collation; SQLite
-- compares text byte for byte already (BINARY), so there is nothing to do.
-- The file keeps the two stores' migration versions in step.
SELECT 1;
