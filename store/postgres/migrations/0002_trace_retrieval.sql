-- What a turn's knowledge search applied (engine.AppliedSettings as JSON; null when none ran).
ALTER TABLE traces ADD COLUMN retrieval jsonb NOT NULL DEFAULT 'null';
