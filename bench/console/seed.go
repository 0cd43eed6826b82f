package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
)

// seedDays is the span of the generated conversations.
const seedDays = 90

// Dataset describes the seeded database.
type Dataset struct {
	Messages      int64       `json:"messages"` // turns
	Conversations int64       `json:"conversations"`
	Traces        int64       `json:"traces"`
	Feedback      int64       `json:"feedback"`
	ToolCalls     int64       `json:"tool_calls"`
	From          time.Time   `json:"from"` // the first and last turn
	To            time.Time   `json:"to"`
	SeededAt      time.Time   `json:"seeded_at,omitzero"`
	SeedSeconds   float64     `json:"seed_seconds,omitempty"` // 0: not known (a reused database seeded by an older bench)
	SeedSteps     []SeedStep  `json:"seed_steps,omitempty"`
	Reused        bool        `json:"reused,omitempty"`
	DatabaseBytes int64       `json:"database_bytes"`
	Tables        []TableSize `json:"tables"`
	// Conversation is the one the conversation pages show, and its turns.
	Conversation      string `json:"conversation"`
	ConversationTurns int    `json:"conversation_turns"`
}

// SeedStep is one timed statement of the seeding.
type SeedStep struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	Rows    int64   `json:"rows"`
}

// TableSize is a table's rows and its size with indexes and TOAST.
type TableSize struct {
	Name  string `json:"name"`
	Rows  int64  `json:"rows"`
	Bytes int64  `json:"bytes"`
}

// seedInfo is what the seed leaves in the database's comment, so that a
// run with -reuse can report how the database was made.
type seedInfo struct {
	Bench       string     `json:"bench"`
	Messages    int64      `json:"messages"`
	SeededAt    time.Time  `json:"seeded_at"`
	SeedSeconds float64    `json:"seed_seconds"`
	SeedSteps   []SeedStep `json:"seed_steps"`
}

// columnsUsed are the columns the seed writes (from migrations 0001–0009);
// every other column must have a default.
var columnsUsed = map[string][]string{
	"users":           {"id", "name", "name_key", "display_name", "role", "password_hash", "created_at", "updated_at"},
	"knowledge_bases": {"id", "name", "description", "created_at", "updated_at"},
	"assistants": {"id", "name", "name_key", "description", "system_prompt", "model", "temperature", "knowledge_bases",
		"tools", "bindings", "retrieval", "is_default", "created_at", "updated_at"},
	"conversations": {"id", "assistant_id", "platform", "channel_id", "thread_id", "user_id", "title", "created_at", "updated_at"},
	"turns":         {"id", "conversation_id", "role", "user_id", "user_name", "content", "citations", "event_id", "trace_id", "outcome", "created_at"},
	"traces": {"id", "event_id", "conversation_id", "assistant_id", "assistant_name", "platform", "channel_id", "user_id", "model",
		"tokens_in", "tokens_out", "passages", "steps", "outcome", "error", "started_at", "duration_ns", "retrieval"},
	"feedback": {"trace_id", "platform", "user_id", "rating", "comment", "created_at", "updated_at"},
	"tool_calls": {"id", "trace_id", "assistant_id", "assistant_name", "platform", "user_id", "tool", "arguments_hash", "outcome",
		"duration_ns", "created_at"},
}

// checkSchema fails when the migrated schema lacks a column the seed
// writes, or has a required column (NOT NULL, no default) it does not.
func checkSchema(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, `SELECT table_name, column_name, is_nullable = 'NO' AND column_default IS NULL
			AND is_identity = 'NO' AND is_generated = 'NEVER'
		FROM information_schema.columns WHERE table_schema = current_schema()`)
	if err != nil {
		return err
	}
	have := map[string]map[string]bool{} // table: column: required
	for rows.Next() {
		var table, column string
		var required bool
		if err := rows.Scan(&table, &column, &required); err != nil {
			return err
		}
		if have[table] == nil {
			have[table] = map[string]bool{}
		}
		have[table][column] = required
	}
	if err := rows.Err(); err != nil {
		return err
	}
	var problems []string
	for _, table := range slices.Sorted(mapsKeys(columnsUsed)) {
		cols := have[table]
		if cols == nil {
			problems = append(problems, "table "+table+" is missing")
			continue
		}
		for _, c := range columnsUsed[table] {
			if _, ok := cols[c]; !ok {
				problems = append(problems, fmt.Sprintf("%s.%s is missing", table, c))
			}
		}
		for _, c := range slices.Sorted(mapsKeys(cols)) {
			if cols[c] && !slices.Contains(columnsUsed[table], c) {
				problems = append(problems, fmt.Sprintf("%s.%s is required (NOT NULL without a default) and the seed does not write it", table, c))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("the migrated schema does not fit the seed (bench/console/seed.go): %s", strings.Join(problems, "; "))
	}
	return nil
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// seeder runs the seed's statements on one connection (temporary tables
// live in its session) and times them.
type seeder struct {
	conn  *pgx.Conn
	steps []SeedStep
}

func (s *seeder) exec(ctx context.Context, name, sql string, args ...any) error {
	t0 := time.Now()
	tag, err := s.conn.Exec(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("seed %s: %w", name, err)
	}
	step := SeedStep{Name: name, Seconds: time.Since(t0).Seconds(), Rows: tag.RowsAffected()}
	s.steps = append(s.steps, step)
	if step.Rows > 0 {
		benchkit.Logf("seed: %s: %d rows in %.1fs", name, step.Rows, step.Seconds)
	} else {
		benchkit.Logf("seed: %s in %.1fs", name, step.Seconds)
	}
	return nil
}

func (s *seeder) copy(ctx context.Context, table string, columns []string, rows [][]any) error {
	t0 := time.Now()
	n, err := s.conn.CopyFrom(ctx, pgx.Identifier{table}, columns, pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("seed %s: %w", table, err)
	}
	s.steps = append(s.steps, SeedStep{Name: table, Seconds: time.Since(t0).Seconds(), Rows: n})
	return nil
}

// seed fills the migrated database at dbURL with about messages turns
// over the seedDays days before end, and returns the timed steps.
func seed(ctx context.Context, dbURL string, messages int64, end time.Time) ([]SeedStep, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := checkSchema(ctx, conn); err != nil {
		return nil, err
	}
	var n int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM turns`).Scan(&n); err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, fmt.Errorf("the database already has %d turns: seed a fresh one", n)
	}
	s := &seeder{conn: conn}
	w := newWorld()
	end = end.UTC().Truncate(time.Second)

	for _, q := range []string{
		`SET synchronous_commit = off`, `SET temp_buffers = '512MB'`, `SET work_mem = '256MB'`, `SET maintenance_work_mem = '512MB'`,
		// rnd is a deterministic pseudo-random number in [0, 1) for a key
		// and a salt, so that a seed makes the same data every time.
		`CREATE FUNCTION pg_temp.rnd(k bigint, salt integer) RETURNS double precision
			LANGUAGE sql IMMUTABLE PARALLEL SAFE
			AS $$ SELECT (hashint8(k * 1000003 + salt) & 2147483647)::double precision / 2147483648 $$`,
		// at is t + ns nanoseconds as the stores write times in JSON
		// (RFC 3339, UTC, microseconds).
		`CREATE FUNCTION pg_temp.at(t timestamptz, ns bigint) RETURNS text
			LANGUAGE sql STABLE
			AS $$ SELECT to_char((t + make_interval(secs => ns / 1e9)) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') $$`,
		`CREATE TEMP TABLE bench_assistant (idx int PRIMARY KEY, id text, name text, model text, has_kb boolean, tools text[])`,
		`CREATE TEMP TABLE bench_channel (platform text, idx int, channel_id text, assistant_idx int, PRIMARY KEY (platform, idx))`,
		`CREATE TEMP TABLE bench_user (platform text, idx int, user_id text, user_name text, dm_channel text, PRIMARY KEY (platform, idx))`,
		`CREATE TEMP TABLE pool_passage (assistant_idx int, i int, ref jsonb, cite jsonb, PRIMARY KEY (assistant_idx, i))`,
		`CREATE TEMP TABLE pool_question (i int PRIMARY KEY, body text)`,
		`CREATE TEMP TABLE pool_answer (i int PRIMARY KEY, body text)`,
		`CREATE TEMP TABLE pool_quote (i int PRIMARY KEY, body text)`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("seed: %s: %w", strings.Fields(q)[0], err)
		}
	}

	// The cast, into the real tables and the temporary ones.
	created := end.Add(-(seedDays + 30) * 24 * time.Hour)
	var rows [][]any
	for i, u := range w.ConsoleUsers {
		at := created.Add(time.Duration(i) * 24 * time.Hour)
		rows = append(rows, []any{u.ID, u.Name, strings.ToLower(u.Name), u.DisplayName, u.Role, "", at, at})
	}
	if err := s.copy(ctx, "users", columnsUsed["users"], rows); err != nil {
		return nil, err
	}
	rows = nil
	for _, name := range slices.Sorted(mapsKeys(w.KnowledgeBases)) {
		rows = append(rows, []any{hexID("kb/", name), name, w.KnowledgeBases[name], created, created})
	}
	if err := s.copy(ctx, "knowledge_bases", columnsUsed["knowledge_bases"], rows); err != nil {
		return nil, err
	}
	rows = nil
	var assistants [][]any
	for _, a := range w.Assistants {
		kbs, _ := json.Marshal(append([]string{}, a.KnowledgeBases...))
		tools, _ := json.Marshal(append([]string{}, a.Tools...))
		retrieval := "{}"
		if len(a.KnowledgeBases) > 0 {
			retrieval = `{"limit":5}`
		}
		rows = append(rows, []any{a.ID, a.Name, strings.ToLower(a.Name), a.Description,
			"You are " + a.Name + ". " + a.Description + " Cite the passages you use.", a.Model, 0.2, string(kbs), string(tools),
			w.bindings(a.Idx), retrieval, a.Idx == 0, created, created})
		assistants = append(assistants, []any{a.Idx, a.ID, a.Name, a.Model, len(a.KnowledgeBases) > 0, a.Tools})
	}
	if err := s.copy(ctx, "assistants", columnsUsed["assistants"], rows); err != nil {
		return nil, err
	}
	if err := s.copy(ctx, "bench_assistant", []string{"idx", "id", "name", "model", "has_kb", "tools"}, assistants); err != nil {
		return nil, err
	}
	rows = nil
	for _, c := range w.Channels {
		rows = append(rows, []any{c.Platform, c.Idx, c.ChannelID, c.Assistant})
	}
	if err := s.copy(ctx, "bench_channel", []string{"platform", "idx", "channel_id", "assistant_idx"}, rows); err != nil {
		return nil, err
	}
	rows = nil
	for _, u := range w.Users {
		rows = append(rows, []any{u.Platform, u.Idx, u.UserID, u.UserName, u.DMChannel})
	}
	if err := s.copy(ctx, "bench_user", []string{"platform", "idx", "user_id", "user_name", "dm_channel"}, rows); err != nil {
		return nil, err
	}
	rows = nil
	for _, p := range w.Passages {
		rows = append(rows, []any{p.Assistant, p.Idx, p.Ref, p.Cite})
	}
	if err := s.copy(ctx, "pool_passage", []string{"assistant_idx", "i", "ref", "cite"}, rows); err != nil {
		return nil, err
	}
	for table, pool := range map[string][]pooled{"pool_question": w.Questions, "pool_answer": w.Answers, "pool_quote": w.Quotes} {
		rows = nil
		for _, p := range pool {
			rows = append(rows, []any{p.Idx, p.Body})
		}
		if err := s.copy(ctx, table, []string{"i", "body"}, rows); err != nil {
			return nil, err
		}
	}

	// The plan: conversations with 1 to 40 question-and-answer pairs
	// (exponential, mean about 5), pairs numbered p across conversations;
	// about 4% of the questions fail (no answer turn, as the engine does),
	// and pairs are taken until the turns make messages.
	maxConversations := messages/8 + 100
	if err := s.exec(ctx, "plan conversations", `CREATE TEMP TABLE plan_conv AS
		WITH b AS (
			SELECT c, least(1 + floor(-ln(1 - pg_temp.rnd(c, 1)) * 4.5)::int, 40) AS pairs
			FROM generate_series(0, $1::bigint - 1) AS c
		)
		SELECT c, pairs, (sum(pairs) OVER (ORDER BY c) - pairs)::bigint AS first_pair FROM b`, maxConversations); err != nil {
		return nil, err
	}
	if err := s.exec(ctx, "plan pairs", `CREATE TEMP TABLE plan_pair AS
		WITH x AS (
			SELECT pc.c, k, pc.first_pair + k AS p,
				CASE WHEN pg_temp.rnd(pc.first_pair + k, 2) < 0.04 THEN 1 ELSE 2 END AS nturns
			FROM plan_conv pc CROSS JOIN LATERAL generate_series(0, pc.pairs - 1) AS k
			WHERE pc.first_pair < $1::bigint
		), y AS (
			SELECT x.*, sum(nturns) OVER (ORDER BY p) AS cum FROM x
		)
		SELECT c, k, p, CASE WHEN cum > $1::bigint THEN 1 ELSE nturns END AS nturns FROM y WHERE cum - nturns < $1::bigint`,
		messages); err != nil {
		return nil, err
	}
	// Each conversation's platform (45% Slack, 20% Discord, 15%
	// Mattermost, 20% the console's Playground), user and channel (some
	// users and channels much busier than others; 15% in DMs, which the
	// default assistant answers), the channel's assistant and a start
	// within the seedDays days.
	if err := s.exec(ctx, "plan conversation details", `CREATE TEMP TABLE conv AS
		WITH nu AS (
			SELECT platform, count(*) AS n FROM bench_user GROUP BY platform
		), nc AS (
			SELECT platform, count(*) AS n FROM bench_channel GROUP BY platform
		), pc AS (
			SELECT c, count(*)::int AS pairs FROM plan_pair GROUP BY c
		), r AS MATERIALIZED (
			SELECT c, pairs,
				CASE WHEN pg_temp.rnd(c, 3) < 0.45 THEN 'slack' WHEN pg_temp.rnd(c, 3) < 0.65 THEN 'discord'
					WHEN pg_temp.rnd(c, 3) < 0.80 THEN 'mattermost' ELSE 'console' END AS platform,
				pg_temp.rnd(c, 6) < 0.15 AS dm,
				$1::timestamptz - interval '8 hours' - pg_temp.rnd(c, 7) * ($2::int * interval '1 day' - interval '8 hours') AS started
			FROM pc
		), ri AS MATERIALIZED (
			SELECT r.*, floor(power(pg_temp.rnd(r.c, 4), 1.8) * nu.n)::int AS user_idx,
				floor(power(pg_temp.rnd(r.c, 5), 1.6) * nc.n)::int AS channel_idx
			FROM r JOIN nu ON nu.platform = r.platform JOIN nc ON nc.platform = r.platform
		)
		SELECT r.c, r.pairs, r.platform, r.started, substr(md5('conversation/' || r.c), 1, 26) AS id,
			u.user_id, u.user_name,
			CASE WHEN r.platform = 'console' THEN 'user:' || u.user_id WHEN r.dm THEN u.dm_channel ELSE ch.channel_id END AS channel_id,
			CASE r.platform
				WHEN 'slack' THEN extract(epoch FROM r.started)::bigint || '.' || lpad((r.c % 1000000)::text, 6, '0')
				WHEN 'discord' THEN ((((extract(epoch FROM r.started) * 1000)::bigint - 1420070400000) << 22) + r.c % 4194304)::text
				ELSE substr(md5('thread/' || r.c), 1, 26) END AS thread_id,
			CASE WHEN r.dm AND r.platform <> 'console' THEN 0 ELSE ch.assistant_idx END AS assistant_idx
		FROM ri r
		JOIN bench_user u ON u.platform = r.platform AND u.idx = r.user_idx
		JOIN bench_channel ch ON ch.platform = r.platform AND ch.idx = r.channel_idx`,
		end, seedDays); err != nil {
		return nil, err
	}
	// Each question: when it was asked (a pair every 5 to 8 minutes), the
	// outcome (failed 4%, then no_answer 7%, interrupted 1%, extractive
	// 3% for assistants with knowledge, answered), and the steps' times in
	// nanoseconds: the model's dominates.
	if err := s.exec(ctx, "plan questions", `CREATE TEMP TABLE plan_answer AS
		WITH b AS (
			SELECT pp.p, pp.k, pp.c, cv.id AS conversation_id, cv.platform, cv.channel_id, cv.user_id, cv.user_name,
				a.idx AS assistant_idx, a.id AS assistant_id, a.name AS assistant_name, a.model, a.has_kb, a.tools,
				substr(md5('trace/' || pp.p), 1, 26) AS trace_id,
				CASE cv.platform WHEN 'slack' THEN 'Ev0' || upper(substr(md5('event/' || pp.p), 1, 9))
					WHEN 'discord' THEN (1200000000000000000 + pp.p)::text
					ELSE substr(md5('event/' || pp.p), 1, 26) END AS event_id,
				cv.started + pp.k * interval '5 minutes' + pg_temp.rnd(pp.p, 11) * interval '3 minutes' AS asked_at,
				CASE WHEN pp.nturns = 1 THEN 'failed'
					WHEN pg_temp.rnd(pp.p, 12) < 0.07 THEN 'no_answer'
					WHEN pg_temp.rnd(pp.p, 12) < 0.08 THEN 'interrupted'
					WHEN pg_temp.rnd(pp.p, 12) < 0.11 AND a.has_kb THEN 'extractive'
					ELSE 'answered' END AS outcome,
				(2e6 + pg_temp.rnd(pp.p, 13) * 8e6)::bigint AS d_recv,
				(5e5 + pg_temp.rnd(pp.p, 14) * 4e6)::bigint AS d_ack,
				(1e6 + pg_temp.rnd(pp.p, 15) * 6e6)::bigint AS d_hist,
				CASE WHEN a.has_kb THEN (15e6 + power(pg_temp.rnd(pp.p, 16), 2) * 150e6)::bigint ELSE 0 END AS d_ret,
				CASE WHEN cardinality(a.tools) > 0 AND pg_temp.rnd(pp.p, 17) < 0.12
					THEN (150e6 + pg_temp.rnd(pp.p, 18) * 2.5e9)::bigint ELSE 0 END AS d_tool,
				(60e6 + pg_temp.rnd(pp.p, 19) * 300e6)::bigint AS d_post,
				floor(pg_temp.rnd(pp.p, 20) * 1000)::int AS question,
				floor(pg_temp.rnd(pp.p, 21) * 1000)::int AS answer,
				floor(pg_temp.rnd(pp.p, 22) * 200)::int AS quote,
				floor(pg_temp.rnd(pp.p, 23) * 60)::int AS pass1,
				floor(pg_temp.rnd(pp.p, 24) * 60)::int AS pass2,
				floor(pg_temp.rnd(pp.p, 25) * 60)::int AS pass3
			FROM plan_pair pp JOIN conv cv ON cv.c = pp.c JOIN bench_assistant a ON a.idx = cv.assistant_idx
		), m AS (
			SELECT b.*,
				CASE outcome
					WHEN 'failed' THEN CASE WHEN pg_temp.rnd(p, 30) < 0.5 THEN 30e9 ELSE 3e8 + pg_temp.rnd(p, 31) * 2e9 END
					WHEN 'no_answer' THEN 0
					ELSE 7e8 + power(pg_temp.rnd(p, 32), 2) * 20e9 END::bigint AS d_model
			FROM b
		)
		SELECT m.*, d_recv + d_ack + d_hist + d_ret + d_model + d_tool + d_post AS d_total,
			CASE WHEN outcome IN ('failed', 'no_answer') THEN 0 ELSE 350 + floor(pg_temp.rnd(p, 33) * 3500)::int END AS tokens_in,
			CASE WHEN outcome IN ('failed', 'no_answer') THEN 0 ELSE 40 + floor(power(pg_temp.rnd(p, 34), 1.5) * 900)::int END AS tokens_out,
			asked_at + make_interval(secs => (d_recv + d_ack + d_hist + d_ret + d_model + d_tool + d_post) / 1e9) AS answered_at
		FROM m`); err != nil {
		return nil, err
	}

	// The rows, each table in time order as the engine writes them.
	if err := s.exec(ctx, "conversations", `INSERT INTO conversations
			(id, assistant_id, platform, channel_id, thread_id, user_id, title, created_at, updated_at)
		SELECT cv.id, a.id, cv.platform, cv.channel_id, cv.thread_id, cv.user_id,
			CASE WHEN length(t.body) > 80 THEN left(t.body, 79) || '…' ELSE t.body END,
			f.asked_at, l.last_at
		FROM conv cv
		JOIN bench_assistant a ON a.idx = cv.assistant_idx
		JOIN plan_answer f ON f.c = cv.c AND f.k = 0
		JOIN LATERAL (SELECT regexp_replace(q.body, '\s+', ' ', 'g') AS body FROM pool_question q WHERE q.i = f.question) t ON true
		JOIN (SELECT c, max(answered_at) AS last_at FROM plan_answer GROUP BY c) l ON l.c = cv.c
		ORDER BY f.asked_at`); err != nil {
		return nil, err
	}
	if err := s.exec(ctx, "turns", `INSERT INTO turns
			(id, conversation_id, role, user_id, user_name, content, citations, event_id, trace_id, outcome, created_at)
		SELECT id, conversation_id, role, user_id, user_name, content, citations, event_id, trace_id, outcome, created_at FROM (
			SELECT substr(md5('turn/' || pa.p || '/q'), 1, 26) AS id, pa.conversation_id, 'user' AS role, pa.user_id, pa.user_name,
				q.body AS content, 'null'::jsonb AS citations, pa.event_id, pa.trace_id, '' AS outcome, pa.asked_at AS created_at
			FROM plan_answer pa JOIN pool_question q ON q.i = pa.question
			UNION ALL
			SELECT substr(md5('turn/' || pa.p || '/a'), 1, 26), pa.conversation_id, 'assistant', '', '',
				CASE pa.outcome
					WHEN 'no_answer' THEN $1
					WHEN 'extractive' THEN qt.body
					WHEN 'interrupted' THEN left(an.body, length(an.body) / 2) || E'\n\n_The answer was interrupted: the language model stopped responding._'
					ELSE an.body END,
				CASE WHEN pa.outcome IN ('answered', 'extractive') AND pa.has_kb THEN
					jsonb_build_array(p1.cite || '{"index":1}', p2.cite || '{"index":2}') ELSE 'null' END,
				pa.event_id, pa.trace_id, pa.outcome, pa.answered_at
			FROM plan_answer pa
			JOIN pool_answer an ON an.i = pa.answer
			JOIN pool_quote qt ON qt.i = pa.quote
			LEFT JOIN pool_passage p1 ON p1.assistant_idx = pa.assistant_idx AND p1.i = pa.pass1
			LEFT JOIN pool_passage p2 ON p2.assistant_idx = pa.assistant_idx AND p2.i = pa.pass2
			WHERE pa.outcome <> 'failed'
		) t ORDER BY created_at`, w.NoAnswer); err != nil {
		return nil, err
	}
	if err := s.exec(ctx, "traces", `INSERT INTO traces
			(id, event_id, conversation_id, assistant_id, assistant_name, platform, channel_id, user_id, model,
			tokens_in, tokens_out, passages, steps, outcome, error, started_at, duration_ns, retrieval)
		SELECT pa.trace_id, pa.event_id, pa.conversation_id, pa.assistant_id, pa.assistant_name, pa.platform, pa.channel_id,
			pa.user_id, pa.model, pa.tokens_in, pa.tokens_out,
			CASE WHEN pa.has_kb AND pa.outcome <> 'no_answer' THEN jsonb_build_array(p1.ref, p2.ref, p3.ref) ELSE 'null' END,
			jsonb_build_array(
				jsonb_build_object('name', 'received', 'started_at', pg_temp.at(pa.asked_at, 0), 'duration_ns', pa.d_recv),
				jsonb_build_object('name', 'acknowledged', 'started_at', pg_temp.at(pa.asked_at, pa.d_recv), 'duration_ns', pa.d_ack),
				jsonb_build_object('name', 'assistant', 'started_at', pg_temp.at(pa.asked_at, pa.d_recv + pa.d_ack), 'duration_ns', 120000,
					'detail', pa.assistant_name),
				jsonb_build_object('name', 'history', 'started_at', pg_temp.at(pa.asked_at, pa.d_recv + pa.d_ack), 'duration_ns', pa.d_hist,
					'detail', (2 * pa.k) || ' turns'))
			|| CASE WHEN pa.has_kb THEN jsonb_build_array(jsonb_build_object('name', 'retrieval',
					'started_at', pg_temp.at(pa.asked_at, pa.d_recv + pa.d_ack + pa.d_hist), 'duration_ns', pa.d_ret,
					'detail', CASE WHEN pa.outcome = 'no_answer' THEN '0 passages' ELSE '3 passages' END)) ELSE '[]' END
			|| CASE WHEN pa.d_model > 0 THEN jsonb_build_array(jsonb_strip_nulls(jsonb_build_object('name', 'model',
					'started_at', pg_temp.at(pa.asked_at, pa.d_recv + pa.d_ack + pa.d_hist + pa.d_ret), 'duration_ns', pa.d_model,
					'detail', pa.model || ', ' || pa.tokens_in || ' tokens in, ' || pa.tokens_out || ' out',
					'error', CASE WHEN pa.outcome = 'failed' THEN ($1::text[])[1 + pa.p % cardinality($1::text[])] END))) ELSE '[]' END
			|| CASE WHEN pa.d_tool > 0 THEN jsonb_build_array(jsonb_build_object('name', 'tools',
					'started_at', pg_temp.at(pa.asked_at, pa.d_recv + pa.d_ack + pa.d_hist + pa.d_ret + pa.d_model), 'duration_ns', pa.d_tool,
					'detail', pa.tools[1 + pa.p % cardinality(pa.tools)])) ELSE '[]' END
			|| jsonb_build_array(jsonb_build_object('name', 'posted',
					'started_at', pg_temp.at(pa.asked_at, pa.d_total - pa.d_post), 'duration_ns', pa.d_post,
					'detail', CASE WHEN pa.outcome = 'failed' THEN 'error message posted' ELSE 'answer posted' END)),
			pa.outcome,
			CASE WHEN pa.outcome = 'failed' THEN ($1::text[])[1 + pa.p % cardinality($1::text[])] ELSE '' END,
			pa.asked_at, pa.d_total,
			CASE WHEN pa.has_kb THEN '{"backend":"embedded","mode":"hybrid","fusion":"rrf","rrf_k":60,"limit":5,"min_score":0,"rerank":false}'::jsonb
				ELSE 'null' END
		FROM plan_answer pa
		LEFT JOIN pool_passage p1 ON p1.assistant_idx = pa.assistant_idx AND p1.i = pa.pass1
		LEFT JOIN pool_passage p2 ON p2.assistant_idx = pa.assistant_idx AND p2.i = pa.pass2
		LEFT JOIN pool_passage p3 ON p3.assistant_idx = pa.assistant_idx AND p3.i = pa.pass3
		ORDER BY pa.asked_at`, w.Errors); err != nil {
		return nil, err
	}
	// Ratings of 3.5% of the answers (a fifth of them, and every rated
	// no_answer, thumbs down; half of those with a comment).
	if err := s.exec(ctx, "feedback", `INSERT INTO feedback (trace_id, platform, user_id, rating, comment, created_at, updated_at)
		SELECT trace_id, platform, user_id, rating,
			CASE WHEN rating < 0 AND pg_temp.rnd(p, 42) < 0.5 THEN ($1::text[])[1 + floor(pg_temp.rnd(p, 43) * cardinality($1::text[]))::int] ELSE '' END,
			at, at
		FROM (
			SELECT trace_id, platform, user_id, p,
				CASE WHEN outcome = 'no_answer' OR pg_temp.rnd(p, 41) < 0.2 THEN -1 ELSE 1 END AS rating,
				answered_at + pg_temp.rnd(p, 44) * interval '30 minutes' + interval '5 seconds' AS at
			FROM plan_answer WHERE outcome <> 'failed' AND pg_temp.rnd(p, 40) < 0.035
		) f ORDER BY at`, w.Comments); err != nil {
		return nil, err
	}
	if err := s.exec(ctx, "tool calls", `INSERT INTO tool_calls
			(id, trace_id, assistant_id, assistant_name, platform, user_id, tool, arguments_hash, outcome, duration_ns, created_at)
		SELECT substr(md5('tool-call/' || p), 1, 26), trace_id, assistant_id, assistant_name, platform, user_id,
			tools[1 + p % cardinality(tools)], encode(sha256(convert_to('arguments/' || p, 'UTF8')), 'hex'),
			CASE WHEN pg_temp.rnd(p, 50) < 0.9 THEN 'ok' WHEN pg_temp.rnd(p, 50) < 0.96 THEN 'error' ELSE 'timeout' END,
			d_tool, asked_at + make_interval(secs => (d_recv + d_ack + d_hist + d_ret + d_model) / 1e9)
		FROM plan_answer WHERE d_tool > 0 ORDER BY asked_at`); err != nil {
		return nil, err
	}
	for _, t := range []string{"plan_answer", "conv", "plan_pair", "plan_conv"} {
		if _, err := conn.Exec(ctx, "DROP TABLE "+t); err != nil {
			return nil, err
		}
	}
	// As a database that has been running for a while: statistics and the
	// visibility map up to date.
	if err := s.exec(ctx, "vacuum analyze", `VACUUM (ANALYZE) users, knowledge_bases, assistants, conversations, turns, traces, feedback, tool_calls`); err != nil {
		return nil, err
	}
	return s.steps, nil
}

// recordSeed keeps info in the database's comment.
func recordSeed(ctx context.Context, dbURL string, info seedInfo) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	var name string
	if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&name); err != nil {
		return err
	}
	// COMMENT takes no parameters: a standard string literal.
	_, err = conn.Exec(ctx, "COMMENT ON DATABASE "+pgx.Identifier{name}.Sanitize()+" IS '"+strings.ReplaceAll(string(b), "'", "''")+"'")
	return err
}

// describe reads the dataset of the database at dbURL: its counts, sizes,
// time span, how it was seeded (from its comment) and a conversation of
// about 20 turns for the conversation pages.
func describe(ctx context.Context, dbURL string) (*Dataset, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	d := &Dataset{}
	var comment *string
	if err := conn.QueryRow(ctx, `SELECT shobj_description(oid, 'pg_database'), pg_database_size(oid)
		FROM pg_database WHERE datname = current_database()`).Scan(&comment, &d.DatabaseBytes); err != nil {
		return nil, err
	}
	if comment != nil {
		var info seedInfo
		if json.Unmarshal([]byte(*comment), &info) == nil && info.Bench == "bench/console" {
			d.SeededAt, d.SeedSeconds, d.SeedSteps = info.SeededAt, info.SeedSeconds, info.SeedSteps
		}
	}
	rows, err := conn.Query(ctx, `SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY pg_total_relation_size(c.oid) DESC, c.relname`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var t TableSize
		if err := rows.Scan(&t.Name, &t.Rows, &t.Bytes); err != nil {
			return nil, err
		}
		d.Tables = append(d.Tables, t)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Exact counts of the tables that matter (reltuples is an estimate,
	// -1 before the first ANALYZE).
	for i, t := range d.Tables {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{t.Name}.Sanitize()).Scan(&n); err != nil {
			return nil, err
		}
		d.Tables[i].Rows = n
		switch t.Name {
		case "turns":
			d.Messages = n
		case "conversations":
			d.Conversations = n
		case "traces":
			d.Traces = n
		case "feedback":
			d.Feedback = n
		case "tool_calls":
			d.ToolCalls = n
		}
	}
	if d.Messages == 0 {
		return d, errors.New("the database has no turns: it was not seeded")
	}
	if err := conn.QueryRow(ctx, `SELECT min(created_at), max(created_at) FROM turns`).Scan(&d.From, &d.To); err != nil {
		return nil, err
	}
	// The conversation with 20 turns (or the nearest count) updated last.
	err = conn.QueryRow(ctx, `SELECT t.conversation_id, t.n FROM (
			SELECT conversation_id, count(*)::int AS n FROM turns GROUP BY conversation_id
		) t JOIN conversations c ON c.id = t.conversation_id
		ORDER BY abs(t.n - 20), c.updated_at DESC LIMIT 1`).Scan(&d.Conversation, &d.ConversationTurns)
	if err != nil {
		return nil, fmt.Errorf("choose a conversation: %w", err)
	}
	d.From, d.To = d.From.UTC(), d.To.UTC()
	return d, nil
}
