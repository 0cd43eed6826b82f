package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/store/postgres"
)

// TestClaimPlanWithABacklog: the claim must walk the unfinished events in
// arrival order and stop at the first it can take, whatever the table's
// statistics say. PostgreSQL caches a generic plan for a prepared
// statement; made while few events were unfinished (statistics of a quiet
// inbox), it read and sorted every unfinished event on each claim: with a
// burst's backlog of 100k events, 1.5 s per claim (auto_explain during
// bench/slack), with the PostgreSQL server's CPU gone and acks stalled.
// Here the statistics say the inbox is nearly empty while 30,000 events
// wait, and the claim's generic plan, built as Claim runs it, is checked.
func TestClaimPlanWithABacklog(t *testing.T) {
	url, schema := mustSchema(t)
	db := mustOpenSchema(t, url, schema, false)
	ctx := t.Context()
	for _, id := range []string{"Q1", "Q2", "Q3"} {
		if _, err := db.Enqueue(ctx, &engine.InboxEvent{Platform: engine.PlatformSlack, EventID: id}); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	run := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	run(`SET search_path = ` + pgx.Identifier{schema}.Sanitize())
	run(`ANALYZE inbox_events`) // statistics of a quiet inbox

	// explain shows the plan that a prepared claim statement, named name,
	// runs with the settings, as Claim runs it: in a transaction that sets
	// them, with the generic plan PostgreSQL caches for the statement. The
	// first call prepares the statement; later calls reuse the cached plan.
	explain := func(name string, settings []string) string {
		t.Helper()
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.Background())
		for _, s := range append(settings, `SET LOCAL plan_cache_mode = force_generic_plan`) {
			if _, err := tx.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		var prepared bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_prepared_statements WHERE name = $1)`, name).Scan(&prepared); err != nil {
			t.Fatal(err)
		}
		if !prepared {
			if _, err := tx.Exec(ctx, `PREPARE `+name+`(text, timestamptz, timestamptz) AS `+postgres.ClaimSQL); err != nil {
				t.Fatal(err)
			}
		}
		rows, err := tx.Query(ctx, `EXPLAIN EXECUTE `+name+`('w', now() + interval '1 hour', now())`)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(lines, "\n")
	}
	// Plans made while the inbox is quiet, as a bot's connections make them.
	explain("claim_pinned", postgres.ClaimSettings)
	explain("claim_free", nil)

	// A burst: 30,000 events wait; the statistics have not caught up.
	run(`INSERT INTO inbox_events (id, platform, event_id, thread_key, payload, status, available_at, received_at, updated_at)
		SELECT 'B' || n, 'slack', 'EvB' || n, 'slack:C1:' || n, '\x7b7d', 'pending', now(), now(), now()
		FROM generate_series(1, 30000) AS n`)

	plan := explain("claim_pinned", postgres.ClaimSettings)
	if !strings.Contains(plan, "Index Scan using inbox_events_unfinished") {
		t.Errorf("the claim does not walk inbox_events_unfinished in order:\n%s", plan)
	}
	for _, bad := range []string{"Sort", "Bitmap", "Seq Scan", "Hash"} {
		if strings.Contains(plan, bad) {
			t.Errorf("the claim's plan has a %s, which reads every unfinished event:\n%s", bad, plan)
		}
	}
	t.Logf("the claim's cached plan without its settings, for comparison:\n%s", explain("claim_free", nil))

	// And the claims themselves: in order, each taking the oldest.
	for _, want := range []string{"Q1", "Q2", "Q3", "EvB1"} {
		e, err := db.Claim(ctx, "w", time.Hour)
		if err != nil || e.EventID != want {
			t.Fatalf("Claim = %v, %v; want %s", e, err, want)
		}
	}
}
