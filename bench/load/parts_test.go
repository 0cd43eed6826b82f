package main

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/llm/openai"
)

func TestSummariseRSS(t *testing.T) {
	var flat, leak []rssSample
	for i := range 100 {
		s := float64(i)
		flat = append(flat, rssSample{s, int64(60+i%5) << 20})
		leak = append(leak, rssSample{s, int64(60+i) << 20})
	}
	m := summariseRSS(flat, 10, 90)
	if !m.Bounded || m.Samples != 80 || m.FirstHalfMax != 64<<20 || m.SecondHalfMax != 64<<20 || m.StartBytes != 60<<20 {
		t.Errorf("flat: %+v", m)
	}
	m = summariseRSS(leak, 10, 90)
	if m.Bounded || m.FirstHalfMax != 109<<20 || m.SecondHalfMax != 149<<20 || m.MaxBytes != 149<<20 || m.EndBytes != 149<<20 {
		t.Errorf("leak: %+v", m)
	}
	if m.GrowthPercent < 36 || m.GrowthPercent > 37 {
		t.Errorf("leak growth %.2f%%, want 36.7%%", m.GrowthPercent)
	}
	if math.Abs(m.TrendMiBPerMin-60) > 1e-6 { // 1 MiB a second
		t.Errorf("leak trend %v MiB/min, want 60", m.TrendMiBPerMin)
	}
	if m := summariseRSS(flat, 10, 90); math.Abs(m.TrendMiBPerMin) > 1 {
		t.Errorf("flat trend %v MiB/min, want about 0", m.TrendMiBPerMin)
	}
	if m := summariseRSS(flat, 200, 300); m.Samples != 0 || m.Bounded {
		t.Errorf("no samples in the window: %+v", m)
	}
}

func TestSplitTrace(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tr := &engine.Trace{Outcome: engine.OutcomeAnswered, Duration: ms(2500), Steps: []engine.TraceStep{
		{Name: engine.StepReceived, Duration: ms(200)},
		{Name: engine.StepAssistant, Duration: ms(1)},
		{Name: engine.StepHistory, Duration: ms(2)},
		{Name: engine.StepRetrieval, Duration: ms(1)},
		{Name: engine.StepModel, Duration: ms(1200)},
		{Name: engine.StepTools, Duration: ms(30)},
		{Name: engine.StepModel, Duration: ms(1000)},
		{Name: engine.StepPosted, Duration: ms(3)},
	}}
	tt, ok := splitTrace(tr)
	if !ok || tt.Received != ms(200) || tt.Model != ms(2200) || tt.Posted != ms(3) || tt.Engine != ms(100) {
		t.Errorf("splitTrace = %+v, %v; want engine 2500-200-2200 = 100ms", tt, ok)
	}
	for name, tr := range map[string]*engine.Trace{
		"no model step": {Outcome: engine.OutcomeRejected, Duration: ms(5), Steps: []engine.TraceStep{{Name: engine.StepPosted, Duration: ms(1)}}},
		"failed":        {Outcome: engine.OutcomeFailed, Duration: ms(50), Steps: []engine.TraceStep{{Name: engine.StepModel, Duration: ms(40)}}},
	} {
		if _, ok := splitTrace(tr); ok {
			t.Errorf("%s: counted as an answer", name)
		}
	}
	o := summariseTraces([]*engine.Trace{tr, {Outcome: engine.OutcomeFailed, Error: "model down", Duration: ms(9)}})
	if o.Traces != 2 || o.Answered != 1 || o.Engine.P50 != 100 || o.EngineNoPost.P50 != 97 || o.Errors != 1 ||
		o.Outcomes["answered"] != 1 || o.Outcomes["failed"] != 1 || o.Steps[engine.StepModel].P50 != 2200 {
		t.Errorf("summariseTraces = %+v", o)
	}
}

// TestModelStreams reads the scripted model through the bot's own
// OpenAI-compatible provider: the answer streams in tokens at about the
// configured rate, ends with answerEnd, and reports its usage.
func TestModelStreams(t *testing.T) {
	m, err := startModel(modelConfig{TokensPerSec: 500, FirstToken: 20 * time.Millisecond, MinTokens: 20, MaxTokens: 30})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p, err := openai.New(openai.Config{BaseURL: m.URL, Model: "bench-model", APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	req := engine.ChatRequest{Messages: []engine.ChatMessage{{Role: engine.RoleSystem, Content: "be brief"}, {Role: engine.RoleUser, Content: "How do I deploy?"}}}
	start := time.Now()
	events, err := p.Stream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	var usage engine.Usage
	chunks, done := 0, false
	for ev := range events {
		switch ev.Kind {
		case engine.EventText:
			chunks++
			text.WriteString(ev.Text)
		case engine.EventUsage:
			usage = ev.Usage
		case engine.EventDone:
			done = true
		case engine.EventError:
			t.Fatal(ev.Err)
		}
	}
	took := time.Since(start)
	if !done || chunks < 20 || chunks > 30 || !strings.HasSuffix(text.String(), " [1]. "+answerEnd) {
		t.Fatalf("done %v, %d chunks, text %q", done, chunks, text.String())
	}
	if usage.OutputTokens != chunks || usage.InputTokens != 6 {
		t.Errorf("usage %+v, want %d output tokens and 6 input words", usage, chunks)
	}
	// 20 ms to the first token, then 2 ms per token.
	if least := 20*time.Millisecond + time.Duration(chunks-1)*2*time.Millisecond; took < least {
		t.Errorf("streamed in %v, faster than the configured %v", took, least)
	}
	// The same conversation gets the same answer (a retried question).
	if a, b := scriptedAnswer("2:q", 60, 120), scriptedAnswer("2:q", 60, 120); strings.Join(a, "") != strings.Join(b, "") || len(a) < 60 || len(a) > 120 {
		t.Errorf("scripted answers differ or have the wrong length: %d, %d tokens", len(a), len(b))
	}
	if m.requests.Load() != 1 || m.tokens.Load() != int64(chunks) || m.active.Load() != 0 {
		t.Errorf("counters: %d requests, %d tokens, %d active", m.requests.Load(), m.tokens.Load(), m.active.Load())
	}
}

// TestSlackFakeAttributes: an answer posted with its metadata is the
// event's message; the edit that shows the last sentence completes it;
// conversations.replies returns the metadata for a retry.
func TestSlackFakeAttributes(t *testing.T) {
	f := &slackFake{baseTS: 1_800_000_000}
	l := newLedger()
	f.reset(l)
	rec := l.add(platSlack, "Ev1", "slack:C1/1.1", 0)
	l.sent(rec, time.Now())
	srv := httptest.NewServer(f)
	defer srv.Close()
	post := func(method string, form url.Values) string {
		t.Helper()
		resp, err := http.PostForm(srv.URL+"/api/"+method, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return b.String()
	}
	out := post("chat.postMessage", url.Values{"channel": {"C1"}, "thread_ts": {"1.1"}, "text": {"Deploy the"},
		"metadata": {`{"event_type":"convosphere_answer","event_payload":{"event_id":"Ev1","part":0}}`}})
	if !strings.Contains(out, `"ts":"1800000000.000001"`) {
		t.Fatalf("chat.postMessage answered %s", out)
	}
	post("chat.postMessage", url.Values{"channel": {"C1"}, "text": {"no metadata"}})
	if rec.Messages != 1 || rec.FirstVisible.IsZero() || !rec.Complete.IsZero() {
		t.Fatalf("after the post: %+v", rec)
	}
	post("chat.update", url.Values{"channel": {"C1"}, "ts": {"1800000000.000001"}, "text": {"Deploy the bot. " + answerEnd}})
	if rec.Complete.IsZero() {
		t.Error("the edit showing the end did not complete the answer")
	}
	replies := post("conversations.replies", url.Values{"channel": {"C1"}, "ts": {"1.1"}})
	if !strings.Contains(replies, `"event_id":"Ev1"`) || !strings.Contains(replies, `"event_type":"convosphere_answer"`) {
		t.Errorf("conversations.replies %s lacks the answer's metadata", replies)
	}
	if d := l.summarise(platSlack); d.ExactlyOne != 1 || d.Stray != 1 || d.Answered != 1 {
		t.Errorf("summary %+v", d)
	}
	if out := post("chat.startStream", url.Values{"channel": {"C1"}}); !strings.Contains(out, "unknown_method") {
		t.Errorf("chat.startStream answered %s", out)
	}
}

func TestStatBusySeconds(t *testing.T) {
	stat := []byte("cpu  1000 50 300 9000 200 10 40 0 0 0\ncpu0 500 25 150 4500 100 5 20 0 0 0\n")
	if got := statBusySeconds(stat); got != 14 { // (1000+50+300+10+40+0)/100, idle and iowait left out
		t.Errorf("statBusySeconds = %v, want 14", got)
	}
	for _, bad := range []string{"", "intr 1 2 3", "cpu 1 2 x 4 5 6 7 8"} {
		if got := statBusySeconds([]byte(bad)); got != -1 {
			t.Errorf("statBusySeconds(%q) = %v, want -1", bad, got)
		}
	}
	if machineBusySeconds() < 0 {
		t.Error("cannot read /proc/stat")
	}
}

func TestRuntimeMetrics(t *testing.T) {
	text := "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 233\n" +
		"go_memstats_heap_inuse_bytes 7.29088e+06\ngo_memstats_heap_inuse_bytes_total 1\n" +
		`http_requests_total{route="/slack/events"} 12` + "\n"
	g := gauges(strings.NewReader(text), "go_goroutines", "go_memstats_heap_inuse_bytes", "missing")
	if len(g) != 2 || g["go_goroutines"] != 233 || g["go_memstats_heap_inuse_bytes"] != 7290880 {
		t.Errorf("gauges = %v", g)
	}
	st := summariseRuntime([]runtimeSample{{1, 10, 20}, {5, 30, 250}, {9, 20, 240}, {20, 99, 999}}, 2, 15)
	if st != (runtimeStats{Samples: 2, HeapStart: 30, HeapMax: 30, HeapEnd: 20, GoroutinesStart: 250, GoroutinesMax: 250, GoroutinesEnd: 240}) {
		t.Errorf("summariseRuntime = %+v", st)
	}
}
