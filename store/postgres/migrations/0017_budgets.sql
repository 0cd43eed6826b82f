-- Token and cost budgets per assistant, channel or chat user and UTC day
-- or month (engine.Budget). max_cost_usd is in US dollars; 0 is no limit.
CREATE TABLE budgets (
	id             text COLLATE "C" PRIMARY KEY,
	scope          text COLLATE "C" NOT NULL,
	target         text COLLATE "C" NOT NULL,
	period         text COLLATE "C" NOT NULL,
	max_tokens     bigint NOT NULL DEFAULT 0,
	max_cost_usd   double precision NOT NULL DEFAULT 0,
	action         text NOT NULL,
	fallback_model text NOT NULL DEFAULT '',
	created_at     timestamptz NOT NULL,
	updated_at     timestamptz NOT NULL
);
-- A budget's usage sums the tokens per model of its target's turns since
-- the period began: these indexes find one assistant's, channel's or
-- user's turns of a period and cover every column the sum reads, so a
-- check reads only that target's entries, not the whole period's traces.
CREATE INDEX traces_budget_assistant ON traces (assistant_id, started_at) INCLUDE (outcome, model, tokens_in, tokens_out);
CREATE INDEX traces_budget_channel ON traces (platform, channel_id, started_at) INCLUDE (outcome, model, tokens_in, tokens_out);
CREATE INDEX traces_budget_user ON traces (platform, user_id, started_at) INCLUDE (outcome, model, tokens_in, tokens_out);
