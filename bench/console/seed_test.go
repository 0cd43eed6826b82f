package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/store/postgres"
)

// migratedDatabase is a fresh database on the test server, migrated by
// the store, dropped when t ends.
func migratedDatabase(t *testing.T) string {
	t.Helper()
	base := os.Getenv("CONVOSPHERE_TEST_POSTGRES_URL")
	if base == "" {
		const msg = "CONVOSPHERE_TEST_POSTGRES_URL is not set: run scripts/services.sh postgres and export the line it prints"
		if os.Getenv("CONVOSPHERE_REQUIRE_SERVERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	url, drop, err := benchkit.FreshDatabase(t.Context(), base, "convosphere_bench_console_test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	db, err := postgres.Open(t.Context(), postgres.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return url
}

// The seed makes what it says, and the store reads it back.
func TestSeed(t *testing.T) {
	url := migratedDatabase(t)
	ctx := t.Context()
	end := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	steps, err := seed(ctx, url, 3001, end)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) == 0 {
		t.Fatal("no steps")
	}
	if err := recordSeed(ctx, url, seedInfo{Bench: "bench/console", Messages: 3001, SeededAt: end, SeedSeconds: 1.5, SeedSteps: steps}); err != nil {
		t.Fatal(err)
	}
	d, err := describe(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if d.Messages != 3001 || d.Conversations < 200 || d.Conversations > 500 || d.Traces < 1400 || d.SeedSeconds != 1.5 ||
		d.From.Before(end.Add(-(seedDays+1)*24*time.Hour)) || d.To.After(end) || d.ConversationTurns < 15 || d.ConversationTurns > 25 {
		t.Errorf("dataset: %+v", d)
	}
	if d.Feedback == 0 || d.ToolCalls == 0 {
		t.Errorf("no feedback (%d) or tool calls (%d)", d.Feedback, d.ToolCalls)
	}

	// A second seed of the same database is refused.
	if _, err := seed(ctx, url, 10, end); err == nil || !strings.Contains(err.Error(), "already has") {
		t.Errorf("second seed: %v", err)
	}

	db, err := postgres.Open(ctx, postgres.Config{URL: url, SkipMigrations: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := db.ConversationByID(ctx, d.Conversation)
	if err != nil {
		t.Fatal(err)
	}
	turns, err := db.Turns(ctx, c.ID, 100)
	if err != nil || len(turns) != d.ConversationTurns {
		t.Fatalf("turns: %d, %v", len(turns), err)
	}
	if turns[0].Role != engine.TurnUser || turns[0].Content == "" || c.Title == "" {
		t.Errorf("first turn %+v, title %q", turns[0], c.Title)
	}
	for i := 1; i < len(turns); i++ {
		if turns[i].CreatedAt.Before(turns[i-1].CreatedAt) {
			t.Errorf("turn %d is older than turn %d", i, i-1)
		}
	}
	traces, err := db.ListTraces(ctx, c.ID)
	if err != nil || len(traces) == 0 {
		t.Fatalf("traces: %d, %v", len(traces), err)
	}
	for _, tr := range traces {
		if len(tr.Steps) < 5 || tr.Steps[0].Name != engine.StepReceived || tr.Steps[len(tr.Steps)-1].Name != engine.StepPosted ||
			tr.Steps[0].StartedAt.IsZero() || tr.Duration <= 0 || tr.Outcome == "" {
			t.Errorf("trace %+v", tr)
		}
	}
	list, err := db.ListConversations(ctx, engine.ConversationFilter{Platform: engine.PlatformSlack, Limit: 5})
	if err != nil || len(list) != 5 {
		t.Fatalf("slack conversations: %d, %v", len(list), err)
	}
	as, err := db.ListAssistants(ctx)
	if err != nil || len(as) != 6 {
		t.Fatalf("assistants: %d, %v", len(as), err)
	}
}

// A schema with a required column the seed does not know fails clearly.
func TestCheckSchema(t *testing.T) {
	url := migratedDatabase(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := checkSchema(ctx, conn); err != nil {
		t.Fatalf("the migrated schema: %v", err)
	}
	if _, err := conn.Exec(ctx, `ALTER TABLE traces ADD COLUMN cost integer NOT NULL`); err != nil {
		t.Fatal(err)
	}
	if err := checkSchema(ctx, conn); err == nil || !strings.Contains(err.Error(), "traces.cost is required") {
		t.Errorf("checkSchema = %v", err)
	}
}
