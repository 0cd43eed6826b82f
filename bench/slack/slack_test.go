package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
)

// Slack's worked example in "Verifying requests from Slack"
// (https://api.slack.com/authentication/verifying-requests-from-slack): a
// slash command body whose token is xyzz0WbapA4vBCDEFasx0q6G.
func TestSignatureMatchesSlacksExample(t *testing.T) {
	const (
		secret = "8f742231b10e8888abcd99yyyzzz85a5"
		ts     = "1531420618"
		body   = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
		want   = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
	)
	if got := signature(secret, ts, []byte(body)); got != want {
		t.Fatalf("signature = %s, want %s", got, want)
	}
	// A reused signer gives the same answer every time.
	s := newSigner(secret)
	for range 3 {
		if got := s.sign(ts, []byte(body)); got != want {
			t.Fatalf("reused signer = %s, want %s", got, want)
		}
	}
	if got := s.sign("1531420619", []byte(body)); got == want {
		t.Fatal("another timestamp gave the same signature")
	}
}

func TestPayloadsAreDistinctAppMentions(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	m := newPayloadMaker(now)
	ids := map[string]bool{}
	tss := map[string]bool{}
	for _, n := range []uint64{1, 2, 3, 999_999, 1_000_000, 1_000_001, 123_456_789} {
		b := m.Append(nil, n, now)
		var ev eventCallback
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("payload %d is not JSON: %v\n%s", n, err, b)
		}
		if ev.Type != "event_callback" || ev.Event.Type != "app_mention" || ev.TeamID != benchTeam ||
			ev.Event.Channel != benchChannel || ev.EventTime.String() != "1700000000" ||
			len(ev.Authorizations) != 1 || ev.Authorizations[0].UserID != benchBotUser || !ev.Authorizations[0].IsBot {
			t.Errorf("payload %d: %+v", n, ev)
		}
		if !strings.HasPrefix(ev.Event.Text, "<@U0BOT> question ") || !strings.Contains(string(b), `"text":"<@U0BOT> question`) {
			t.Errorf("payload %d text: %q (want the mention unescaped)", n, ev.Event.Text)
		}
		if !strings.HasPrefix(ev.EventID, "Ev") || ids[ev.EventID] {
			t.Errorf("payload %d event_id %q repeated or malformed", n, ev.EventID)
		}
		if ev.Event.TS != ev.Event.EventTS || tss[ev.Event.TS] || !strings.Contains(ev.Event.TS, ".") {
			t.Errorf("payload %d ts %q / event_ts %q", n, ev.Event.TS, ev.Event.EventTS)
		}
		if !strings.HasPrefix(ev.Event.User, "U") {
			t.Errorf("payload %d user %q", n, ev.Event.User)
		}
		ids[ev.EventID], tss[ev.Event.TS] = true, true
	}
	// Another run (a later start) has other event ids.
	other := newPayloadMaker(now.Add(time.Second))
	var a, b eventCallback
	_ = json.Unmarshal(m.Append(nil, 1, now), &a)
	_ = json.Unmarshal(other.Append(nil, 1, now), &b)
	if a.EventID == b.EventID {
		t.Errorf("two runs share event id %s", a.EventID)
	}
}

func TestWriteReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	if err := os.WriteFile(path, []byte("# Benchmarks\n\n## Retrieval\n\nother benchmark\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := &Run{Date: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), Command: "go run ./bench/slack -out docs/benchmarks.md",
		Go: "go1.26.8", Node: "v20.20.2", Bolt: "5.1.0", Concurrency: 32, Warmup: "2s", Duration: "20s",
		Results: []*Result{
			{System: systemEmbedded, Requests: 200_000, RPS: 10_000, Latency: benchkit.Latency{P50: 2, P99: 8, Max: 30}, PeakRSSBytes: 30 << 20,
				StubCalls: map[string]int{"chat.postMessage": 12}},
			{System: systemPostgres, Requests: 60_000, RPS: 3_000, Latency: benchkit.Latency{P50: 9, P99: 25, Max: 80}, PeakRSSBytes: 40 << 20},
			{System: systemBolt, Requests: 40_000, RPS: 2_000, Latency: benchkit.Latency{P50: 15, P99: 30, Max: 90}, PeakRSSBytes: 100 << 20},
		}}
	if err := writeReport(path, run); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	doc := string(b)
	for _, want := range []string{
		"## Retrieval\n\nother benchmark\n",
		"## Slack event acknowledgement",
		"| convosphere-embedded | 200000 | 10000 | 2.00 | 8.00 | 30.0 | 0 | 30.0 |",
		"convosphere-embedded throughput ≥ 5× Bolt's: 10000 vs 2000 requests/s (5.0×): met",
		"convosphere-postgres throughput ≥ 5× Bolt's: 3000 vs 2000 requests/s (1.5×): **not met**",
		"convosphere-embedded p99 ack < 10 ms: 8.00 ms: met",
		"convosphere-postgres p99 ack < 10 ms: 25.0 ms: **not met**",
		"convosphere-embedded peak RSS < 1/3 of Bolt's: 30 MiB vs 100 MiB: met",
		"convosphere-postgres peak RSS < 1/3 of Bolt's: 40 MiB vs 100 MiB: **not met**",
		"chat.postMessage calls the stub saw by 2s after the load (information only, not a target): 12",
		"- Command: `go run ./bench/slack -out docs/benchmarks.md`",
		"Node v20.20.2, @slack/bolt 5.1.0",
		"2026-11-26T12:00:00Z",
		"<!-- bench/slack data " + `{"date":"2026-11-26T12:00:00Z"`,
		"![Slack event acknowledgement latency](img/slack-ack.svg)",
		"![Slack events acknowledged per second](img/slack-throughput.svg)",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("missing %q in:\n%s", want, doc)
		}
	}
	for file, want := range map[string]string{
		"slack-ack.svg":        "convosphere-embedded p50 2.00 ms, p99 8.00 ms; convosphere-postgres p50 9.00 ms, p99 25.0 ms; bolt p50 15.0 ms, p99 30.0 ms.",
		"slack-throughput.svg": "convosphere-embedded 10000 requests/s; convosphere-postgres 3000 requests/s; bolt 2000 requests/s.",
	} {
		svg, err := os.ReadFile(filepath.Join(filepath.Dir(path), "img", file))
		if err != nil || !strings.Contains(string(svg), `role="img"`) || !strings.Contains(string(svg), want) {
			t.Errorf("%s: %v, want a desc with %q:\n%s", file, err, want, svg)
		}
	}
	// A failed system is shown but not judged.
	run.Results[0].Failed = "404"
	run.Results[0].Errors, run.Results[0].WarmupErrors, run.Results[0].WarmupRequests = 0, 275, 275
	run.Results[0].Requests = 0
	if err := writeReport(path, run); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	doc = string(b)
	if strings.Count(doc, "## Slack event acknowledgement") != 1 || !strings.Contains(doc, "| convosphere-embedded | 0 | – | – | – | – | 275 of 275, warm-up included (failed) |") ||
		strings.Contains(doc, "convosphere-embedded p99 ack") {
		t.Errorf("rewrite with a failure:\n%s", doc)
	}
}

func TestStubAnswers(t *testing.T) {
	s, err := startStub()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	post := func(method string, form url.Values) map[string]any {
		t.Helper()
		resp, err := http.PostForm(s.APIURL()+method, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		if out["ok"] != true {
			t.Fatalf("%s: %v", method, out)
		}
		return out
	}
	if a := post("auth.test", nil); a["user_id"] != benchBotUser || a["bot_id"] != benchBotID || a["team_id"] != benchTeam {
		t.Errorf("auth.test: %v", a)
	}
	p1 := post("chat.postMessage", url.Values{"channel": {"C1"}, "text": {"hi"}})
	p2 := post("chat.postMessage", url.Values{"channel": {"C1"}, "text": {"hi"}})
	if p1["channel"] != "C1" || p1["ts"] == "" || p1["ts"] == p2["ts"] {
		t.Errorf("chat.postMessage: %v, %v", p1, p2)
	}
	if u := post("chat.update", url.Values{"channel": {"C1"}, "ts": {"1.000001"}}); u["ts"] != "1.000001" {
		t.Errorf("chat.update: %v", u)
	}
	if r := post("conversations.replies", nil); r["messages"] == nil {
		t.Errorf("conversations.replies: %v", r)
	}
	if u := post("users.info", url.Values{"user": {"U9"}}); u["user"].(map[string]any)["id"] != "U9" {
		t.Errorf("users.info: %v", u)
	}
	post("reactions.add", nil)
	// JSON bodies, as some clients send them.
	req := httptest.NewRequest(http.MethodPost, "/api/chat.startStream", strings.NewReader(`{"channel":"C2","thread_ts":"1.2"}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if !strings.Contains(rec.Body.String(), `"channel":"C2"`) {
		t.Errorf("chat.startStream: %s", rec.Body)
	}
	calls := s.Calls()
	if calls["chat.postMessage"] != 2 || calls["auth.test"] != 1 || calls["reactions.add"] != 1 || calls["chat.startStream"] != 1 {
		t.Errorf("calls = %v", calls)
	}
	s.Reset()
	if len(s.Calls()) != 0 {
		t.Error("Reset kept calls")
	}
}

func TestParseSystems(t *testing.T) {
	got, err := parseSystems("bolt, convosphere-embedded")
	if err != nil || strings.Join(got, ",") != "convosphere-embedded,bolt" {
		t.Errorf("parseSystems = %v, %v", got, err)
	}
	if _, err := parseSystems("weaviate"); err == nil {
		t.Error("unknown system accepted")
	}
	if _, err := parseSystems(" , "); err == nil {
		t.Error("empty list accepted")
	}
}

// runLoad signs what it sends, counts requests, and stops early when more
// than 1% fail.
func TestRunLoad(t *testing.T) {
	const secret = "test-secret"
	var seen sync.Map
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts := r.Header.Get("X-Slack-Request-Timestamp")
		if r.URL.Path != eventsPath || r.Header.Get("X-Slack-Signature") != signature(secret, ts, body) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var ev eventCallback
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, dup := seen.LoadOrStore(ev.EventID, true); dup {
			http.Error(w, "duplicate "+ev.EventID, http.StatusConflict)
			return
		}
	}))
	defer ok.Close()
	res, err := runLoad(context.Background(), loadConfig{URL: ok.URL + eventsPath, Secret: secret, Concurrency: 4,
		Requests: 400, Maker: newPayloadMaker(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 400 || res.Errors != 0 || len(res.Latencies) != 400 || res.Aborted != "" || res.Seconds <= 0 {
		t.Fatalf("ok server: %+v", res)
	}

	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	start := time.Now()
	res, err = runLoad(context.Background(), loadConfig{URL: notFound.URL + eventsPath, Secret: secret, Concurrency: 4,
		Duration: time.Minute, Maker: newPayloadMaker(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	if res.Aborted == "" || res.ErrorsBy["404 Not Found"] == 0 || !strings.Contains(res.FirstBody, "404 page not found") {
		t.Fatalf("404 server: %+v", res)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %s to give up on a server that answers 404", time.Since(start))
	}
}

func TestBudget(t *testing.T) {
	run := &Run{Machine: benchkit.Machine{Cores: 2},
		StoreFloor: &StoreFloor{Concurrency: 32, Events: 300_000, Seconds: 10, EventsPerSec: 30_000, CPUCores: 0.75, CPUMicrosPerEvt: 25},
		Results: []*Result{
			{System: systemBolt, RPS: 8_000},
			// 40,000 requests/s on 1 core: 25 µs each; clients 0.8 cores: 20 µs each.
			{System: systemGoMinimal, RPS: 40_000, CPUCores: 1, ClientCPUCores: 0.8},
		}}
	got := strings.Join(budget(run), "\n")
	for _, want := range []string{
		"5× Bolt's rate is 40000 acks/s",
		"the clients need 0.80 cores (20.0 µs per request",
		"acks 1.00 cores (go-minimal: 25.0 µs per request)",
		"inbox write alone 1.00 cores (store floor: 25.0 µs per event)",
		"2.80 cores, more than the machine's 2",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("budget lacks %q:\n%s", want, got)
		}
	}
	// Without the reference or the floor there is nothing to work out.
	run.StoreFloor = nil
	if b := budget(run); b != nil {
		t.Errorf("budget without a store floor = %q, want none", b)
	}
	if n := floorNote(&StoreFloor{Concurrency: 32, Events: 10, EventsPerSec: 1, CPUCores: 0.5, CPUMicrosPerEvt: 20}); !strings.Contains(n, "20.0 µs of CPU per event") {
		t.Errorf("floorNote = %q", n)
	}
}

func TestStoreFloor(t *testing.T) {
	f := measureStoreFloor(t.Context(), t.TempDir(), 4, 300*time.Millisecond)
	if f.Failed != "" || f.Events == 0 || f.CPUMicrosPerEvt <= 0 {
		t.Fatalf("store floor = %+v, want events stored and a CPU cost", f)
	}
}

func TestMedianRound(t *testing.T) {
	rounds := []*Result{
		{System: systemEmbedded, Round: 1, RPS: 9_000},
		{System: systemEmbedded, Round: 2, RPS: 11_000},
		{System: systemEmbedded, Round: 3, RPS: 10_000},
	}
	if got := medianRound(rounds); got.Round != 3 {
		t.Errorf("median of 9000, 11000, 10000 requests/s: round %d, want 3", got.Round)
	}
	if got := medianRound(rounds[:2]); got.Round != 1 {
		t.Errorf("median of two: round %d, want the slower (1)", got.Round)
	}
	rounds[2].Failed = "404"
	if got := medianRound(rounds); got.Round != 1 {
		t.Errorf("with round 3 failed: round %d, want 1 (the slower of the two that ran)", got.Round)
	}
	failed := []*Result{{Round: 1, Failed: "x"}, {Round: 2, Failed: "y"}}
	if got := medianRound(failed); got.Round != 2 {
		t.Errorf("all failed: round %d, want the last", got.Round)
	}
	run := &Run{Results: []*Result{rounds[0]}, Rounds: rounds}
	notes := strings.Join(roundNotes(run), "\n")
	if !strings.Contains(notes, "9000/s, p99 0.00 ms") || !strings.Contains(notes, "round 3 failed") || !strings.Contains(notes, "the table shows round 1") {
		t.Errorf("round notes: %s", notes)
	}
}
