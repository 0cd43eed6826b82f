package main

import (
	"cmp"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/llm/openaitest"
	"github.com/convosphere/convosphere/store/postgres"
	"github.com/convosphere/convosphere/store/postgres/pgtest"
)

// TestPostgresRestartDuringIngestion stops PostgreSQL while Slack events
// arrive: deliveries get 503 (so Slack retries them) instead of a 200 for
// an event that was not stored, and once the database is back every event
// is answered exactly once.
func TestPostgresRestartDuringIngestion(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a PostgreSQL server")
	}
	pg := pgtest.StartServer(t)
	db, err := postgres.Open(t.Context(), postgres.Config{URL: pg.URL()})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAssistant(t.Context(), &engine.Assistant{Name: "Guide", IsDefault: true}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	fake := &replicaSlack{}
	m := mustSlackBot(t, fake, false, func(cfg *config.Config) {
		cfg.Database.URL = pg.URL()
		cfg.Engine.TurnTimeout = 3 * time.Second
		cfg.RateLimits = config.RateLimits{}
	})

	const events = 60
	var refused atomic.Int32 // deliveries answered 5xx or not at all while the database was down
	var wg sync.WaitGroup
	acked := make(chan int, events)
	for i := range events {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 40 * time.Millisecond) // spread over ~2.4 s
			body := mentionBody(fmt.Sprintf("EvPG%02d", i), 100+i)
			for retry := 0; ; retry++ { // as Slack does: again until a 200
				code, err := postSlack(m.Addr(), body, retry)
				if err == nil && code == http.StatusOK {
					acked <- i
					return
				}
				refused.Add(1)
				if retry > 200 {
					t.Errorf("event %d never acknowledged (last: %d %v)", i, code, err)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	for range events / 3 {
		<-acked
	}
	pg.Stop()
	time.Sleep(1500 * time.Millisecond)
	pg.Start()
	wg.Wait()
	if refused.Load() == 0 {
		t.Error("no delivery was refused while the database was down: the restart did not happen during ingestion")
	}

	deadline := time.Now().Add(60 * time.Second)
	for len(distinct(fake.snapshot())) < events && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	answers := fake.snapshot()
	if got := len(distinct(answers)); got != events {
		t.Fatalf("%d of %d events answered after the restart", got, events)
	}
	if len(answers) != events {
		t.Errorf("%d answers for %d events: some were answered twice", len(answers), events)
	}
}

// TestModelFaults runs the bot's real wiring against an OpenAI-compatible
// model that fails in each way a hosted one does. Each question gets one
// message in its thread: the user first sees the reason (and what was
// written so far), and when the model works again the event's retry edits
// that same message into the whole answer — never a second message.
func TestModelFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for retries")
	}
	const full = "Deploy with make run, then open the console."
	tests := []struct {
		name     string
		replies  []openaitest.Reply
		retries  int    // llm.max_retries
		interim  string // what the user sees before the retry (empty: the answer at once)
		minDelay time.Duration
		stall    time.Duration // engine.stall_timeout; default 1s
	}{
		{"500", []openaitest.Reply{{Status: 500, ErrorMessage: "upstream exploded"}}, 0,
			"The language model is unavailable right now", 0, 0},
		{"429 with Retry-After is waited for", []openaitest.Reply{{Status: 429, ErrorMessage: "slow down", RetryAfter: "1"}}, 1,
			"", time.Second, 5 * time.Second},
		{"stall mid-stream keeps the partial answer", []openaitest.Reply{{Chunks: []string{"Deploy with ", "make run"}, Interrupt: openaitest.Stall, InterruptAfter: 1}}, 0,
			"Deploy with", 0, 0},
		{"time out", []openaitest.Reply{{Text: full, Delay: 4 * time.Second}}, 0,
			"took too long", 0, 10 * time.Second},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			llm := openaitest.NewServer(t)
			llm.Script(append(tt.replies, openaitest.Reply{Chunks: []string{"Deploy with make run, ", "then open the console."}})...)
			fake := &replicaSlack{}
			m := mustSlackBot(t, fake, true, func(cfg *config.Config) {
				cfg.LLM.BaseURL, cfg.LLM.Model, cfg.LLM.MaxRetries = llm.BaseURL(), "fault-model", tt.retries
				cfg.Engine.StallTimeout, cfg.Engine.TurnTimeout = cmp.Or(tt.stall, time.Second), 2*time.Second
			})
			start := time.Now()
			if code, err := postSlack(m.Addr(), mentionBody(fmt.Sprintf("EvFault%d", i), i+1), 0); err != nil || code != http.StatusOK {
				t.Fatalf("delivery: %d %v", code, err)
			}
			deadline := time.Now().Add(30 * time.Second)
			var first string
			for time.Now().Before(deadline) {
				if as := fake.snapshot(); len(as) > 0 {
					if first == "" {
						first = as[0].text
					}
					if fake.text("1800000000.000001") != "" && strings.HasPrefix(fake.text("1800000000.000001"), full) {
						break
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
			answers := fake.snapshot()
			for _, r := range llm.Requests() {
				t.Logf("model request: %s", r.LastUserMessage())
			}
			if len(answers) != 1 {
				t.Fatalf("%d messages posted, want exactly 1: %+v", len(answers), answers)
			}
			if got := fake.text("1800000000.000001"); !strings.HasPrefix(got, full) {
				t.Fatalf("the message ends as %q, want the whole answer", got)
			}
			if tt.interim != "" && !strings.Contains(first, tt.interim) {
				t.Errorf("the user first saw %q, want it to contain %q", first, tt.interim)
			}
			if tt.interim == "" && fake.edits > 0 && !strings.HasPrefix(first, "Deploy") {
				t.Errorf("the user first saw %q, want the answer", first)
			}
			if d := time.Since(start); d < tt.minDelay {
				t.Errorf("answered after %v, before the Retry-After of %v", d, tt.minDelay)
			}
		})
	}
}

// weaviateServer runs scripts/weaviate.sh with a state directory of the
// test's own: a private Weaviate that the test may stop and start.
type weaviateServer struct {
	t   *testing.T
	dir string
	url string
}

func startWeaviate(t *testing.T) *weaviateServer {
	t.Helper()
	if os.Getenv("CONVOSPHERE_TEST_WEAVIATE_URL") == "" && os.Getenv("CONVOSPHERE_REQUIRE_SERVERS") == "" {
		t.Skip("no Weaviate here: run scripts/services.sh start (it builds weaviate-server)")
	}
	w := &weaviateServer{t: t, dir: t.TempDir()}
	w.run("start")
	t.Cleanup(func() { w.run("stop") })
	return w
}

func (w *weaviateServer) run(cmd string) {
	w.t.Helper()
	c := exec.Command(filepath.Join("..", "..", "scripts", "weaviate.sh"), cmd)
	c.Env = append(os.Environ(), "CONVOSPHERE_SERVICES_DIR="+w.dir, "CONVOSPHERE_WEAVIATE_PORT=")
	out, err := c.Output()
	if err != nil {
		w.t.Fatalf("scripts/weaviate.sh %s: %v", cmd, err)
	}
	if _, url, ok := strings.Cut(strings.TrimSpace(string(out)), "CONVOSPHERE_TEST_WEAVIATE_URL="); ok {
		w.url = url
	}
}

// TestWeaviateStops stops the Weaviate knowledge index under the bot.
// Without a language model the answer is quoted from the knowledge base,
// so a question asked meanwhile gets one message saying it waits for the
// index, which the event's retry edits into the answer once Weaviate is
// back. Nothing is posted twice.
func TestWeaviateStops(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and stops a Weaviate server")
	}
	wv := startWeaviate(t)
	docs := t.TempDir()
	if err := os.WriteFile(filepath.Join(docs, "deploy.md"), []byte("# Deploying\n\nRun make run to start the console and the bot on the embedded store.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fake := &replicaSlack{}
	m := mustSlackBot(t, fake, false, func(cfg *config.Config) {
		cfg.Weaviate.URL = wv.url
		cfg.Weaviate.Collection = "FaultTest"
	})
	if err := m.App.SeedDemo(t.Context(), docs); err != nil {
		t.Fatal(err)
	}
	waitText := func(ts string, ok func(string) bool, within time.Duration) string {
		t.Helper()
		deadline := time.Now().Add(within)
		for time.Now().Before(deadline) {
			if s := fake.text(ts); ok(s) {
				return s
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("message %s says %q", ts, fake.text(ts))
		return ""
	}
	quoted := func(s string) bool { return strings.Contains(s, "make run") }

	if code, err := postSlack(m.Addr(), mentionText("EvW1", 1, "How do I start the console?"), 0); err != nil || code != 200 {
		t.Fatalf("delivery: %d %v", code, err)
	}
	waitText("1800000000.000001", quoted, 20*time.Second)

	wv.run("stop")
	if code, err := postSlack(m.Addr(), mentionText("EvW2", 2, "How do I start the bot?"), 0); err != nil || code != 200 {
		t.Fatalf("delivery: %d %v", code, err)
	}
	waitText("1800000000.000002", func(s string) bool { return strings.Contains(s, "knowledge base cannot be searched right now") }, 20*time.Second)

	wv.run("start")
	waitText("1800000000.000002", quoted, 60*time.Second)
	if n := len(fake.snapshot()); n != 2 {
		t.Errorf("%d messages posted for 2 questions", n)
	}
}

// TestSlackAPIFaults: Slack's Web API refuses to post the answer for a
// while (5xx, or 429 with Retry-After). The answer is posted once it
// accepts again — exactly one message.
func TestSlackAPIFaults(t *testing.T) {
	tests := []struct {
		name   string
		status int
		fails  int
	}{
		{"503 twice", http.StatusServiceUnavailable, 2},
		{"500 once", http.StatusInternalServerError, 1},
		{"429 with Retry-After", http.StatusTooManyRequests, 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &replicaSlack{failPosts: tt.fails, failStatus: tt.status}
			m := mustSlackBot(t, fake, true, nil)
			if code, err := postSlack(m.Addr(), mentionBody(fmt.Sprintf("EvAPI%d", i), i+1), 0); err != nil || code != http.StatusOK {
				t.Fatalf("delivery: %d %v", code, err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for len(fake.snapshot()) == 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(500 * time.Millisecond)
			if as := fake.snapshot(); len(as) != 1 || as[0].eventID != fmt.Sprintf("EvAPI%d", i) || strings.TrimSpace(as[0].text) == "" {
				t.Fatalf("posted %+v, want exactly one answer", as)
			}
		})
	}
}
