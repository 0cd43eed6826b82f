package observe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
	"github.com/convosphere/convosphere/observe"
	"github.com/convosphere/convosphere/observe/observetest"
	"github.com/convosphere/convosphere/store/sqlite"
)

// fixture is a worker answering from a real engine over a real SQLite
// store, every collaborator decorated by one observer with an in-memory
// span exporter.
type fixture struct {
	o         *observe.Observer
	spans     *tracetest.InMemoryExporter
	raw       engine.Store // the store itself
	store     engine.Store // the store observed
	model     *enginetest.Model
	tools     *enginetest.ToolSet
	retriever *enginetest.Retriever
	replier   *enginetest.Replier
	engine    *engine.Engine
	worker    *engine.Worker
}

func mustObserver(tb testing.TB, cfg observe.Config) (*observe.Observer, *tracetest.InMemoryExporter) {
	tb.Helper()
	exp := tracetest.NewInMemoryExporter()
	if cfg.Exporter == nil && cfg.OTLPEndpoint == "" {
		cfg.Exporter = exp
	}
	o, err := observe.New(cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = o.Close() })
	return o, exp
}

func mustStore(tb testing.TB) engine.Store {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(tb.TempDir(), "test.db")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

func mustFixture(tb testing.TB, wcfg engine.WorkerConfig, logger *slog.Logger) *fixture {
	tb.Helper()
	ctx := context.Background()
	f := &fixture{
		raw:     mustStore(tb),
		model:   enginetest.NewModel(),
		replier: &enginetest.Replier{},
		tools: &enginetest.ToolSet{
			Specs:   []engine.ToolSpec{{Name: "everything__get-sum", Description: "Adds two numbers.", InputSchema: json.RawMessage(`{"type":"object"}`)}},
			Results: map[string]engine.ToolResult{"everything__get-sum": {Content: "42", Outcome: engine.ToolOK}},
		},
		retriever: &enginetest.Retriever{Passages: []engine.Passage{
			{ID: "p1", KnowledgeBase: "docs", Document: "deploy.md", Title: "Deploy", Text: "Run make deploy.", Score: 0.9},
		}},
	}
	f.o, f.spans = mustObserver(tb, observe.Config{Service: "convosphere-test"})
	f.store = f.o.Store(f.raw)
	a := &engine.Assistant{Name: "Guide", SystemPrompt: "You are the guide.", KnowledgeBases: []string{"docs"},
		Tools: []string{"everything__get-sum"}, IsDefault: true}
	if err := f.raw.CreateAssistant(ctx, a); err != nil {
		tb.Fatal(err)
	}
	var err error
	f.engine, err = engine.New(engine.Config{}, engine.Deps{
		Assistants: f.store, Conversations: f.store, Traces: f.store, ToolAudit: f.store,
		Model: f.o.Model(f.model), Retriever: f.o.Retriever(f.retriever), Tools: f.o.Tools(f.tools), Logger: logger,
	})
	if err != nil {
		tb.Fatal(err)
	}
	if wcfg.BackoffBase == 0 {
		wcfg.BackoffBase, wcfg.BackoffMax = time.Millisecond, 2*time.Millisecond
	}
	f.worker, err = engine.NewWorker(wcfg, engine.WorkerDeps{
		Inbox: f.store, Handler: f.o.Handler(f.engine), Observer: f.o, Logger: logger,
		Repliers: map[engine.Platform]engine.ReplierFactory{engine.PlatformSlack: factory{f.replier}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

type factory struct{ r engine.Replier }

func (f factory) Replier(context.Context, *engine.InboxEvent, engine.Message) (engine.Replier, error) {
	return f.r, nil
}

// enqueue writes a Slack message to the observed inbox, as an adapter
// does, and reports whether it was new.
func (f *fixture) enqueue(tb testing.TB, eventID, text string) bool {
	tb.Helper()
	msg := engine.Message{ID: eventID, Thread: engine.Thread{Channel: engine.Channel{Platform: engine.PlatformSlack, ID: "C1"}, ID: "T1"},
		User: engine.ChatUser{ID: "U1", Name: "ada"}, Text: text, ReceivedAt: time.Now()}
	payload, _ := json.Marshal(msg)
	inserted, err := f.store.Enqueue(context.Background(), &engine.InboxEvent{Platform: engine.PlatformSlack, EventID: eventID,
		ThreadKey: msg.Thread.Key(), Payload: payload})
	if err != nil {
		tb.Fatal(err)
	}
	return inserted
}

func (f *fixture) process(tb testing.TB) {
	tb.Helper()
	worked, err := f.worker.ProcessOne(context.Background())
	if err != nil || !worked {
		tb.Fatalf("ProcessOne = %v, %v; want an event handled", worked, err)
	}
}

func (f *fixture) metrics(tb testing.TB) observetest.Families {
	tb.Helper()
	return observetest.Gather(tb, f.o.Registry())
}

func (f *fixture) ended(tb testing.TB) []tracetest.SpanStub {
	tb.Helper()
	if err := f.o.Flush(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return f.spans.GetSpans()
}

// spansNamed returns the spans called name.
func spansNamed(spans []tracetest.SpanStub, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func attr(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value.Emit()
		}
	}
	return ""
}

// TestEventThroughDecorators delivers one Slack event twice and lets a
// worker answer it with a knowledge search, a tool call and two model
// calls: every counter moves by what happened, and every span lands in
// the event's one trace, the worker's spans under the first receipt.
func TestEventThroughDecorators(t *testing.T) {
	f := mustFixture(t, engine.WorkerConfig{}, nil)
	f.model.Script(
		enginetest.Reply{ToolCalls: []engine.ToolCall{{ID: "c1", Name: "everything__get-sum", Arguments: `{"a":20,"b":22}`}}, Usage: engine.Usage{InputTokens: 100, OutputTokens: 5}},
		enginetest.Reply{Chunks: []string{"The sum ", "is 42."}, Usage: engine.Usage{InputTokens: 150, OutputTokens: 6}},
	)
	if !f.enqueue(t, "Ev1", "What is 20 + 22?") || f.enqueue(t, "Ev1", "What is 20 + 22?") {
		t.Fatal("the first delivery was not new, or the second was")
	}
	f.process(t)
	if got := f.replier.Finished(); len(got) != 1 || got[0].Text != "The sum is 42." || got[0].Outcome != engine.OutcomeAnswered {
		t.Fatalf("answers %+v", got)
	}
	if len(f.replier.Statuses()) == 0 {
		t.Error("the replier's statuses were lost behind the decorator")
	}

	m := f.metrics(t)
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"convosphere_events_received_total", []string{"platform", "slack"}, 2},
		{"convosphere_events_acknowledged_total", []string{"platform", "slack"}, 1},
		{"convosphere_events_deduplicated_total", []string{"platform", "slack"}, 1},
		{"convosphere_events_processed_total", []string{"platform", "slack", "result", "completed"}, 1},
		{"convosphere_events_in_flight", []string{"platform", "slack"}, 0},
		{"convosphere_event_wait_seconds", []string{"platform", "slack"}, 1},
		{"convosphere_event_processing_seconds", []string{"platform", "slack"}, 1},
		{"convosphere_replies_total", []string{"platform", "slack", "outcome", "answered"}, 1},
		{"convosphere_reply_duration_seconds", []string{"platform", "slack", "outcome", "answered"}, 1},
		{"convosphere_reply_first_update_seconds", []string{"platform", "slack"}, 1},
		{"convosphere_model_requests_total", []string{"model", "scripted", "outcome", "ok"}, 2},
		{"convosphere_model_tokens_total", []string{"model", "scripted", "type", "input"}, 250},
		{"convosphere_model_tokens_total", []string{"model", "scripted", "type", "output"}, 11},
		{"convosphere_model_first_token_seconds", []string{"model", "scripted"}, 2},
		{"convosphere_model_duration_seconds", []string{"model", "scripted", "outcome", "ok"}, 2},
		{"convosphere_tool_calls_total", []string{"server", "everything", "outcome", "ok"}, 1},
		{"convosphere_tool_call_duration_seconds", []string{"server", "everything"}, 1},
		{"convosphere_retrieval_duration_seconds", []string{"outcome", "ok"}, 1},
	}
	for _, tt := range tests {
		if got := m.Value(tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v = %v, want %v (series: %v)", tt.name, tt.labels, got, tt.want, m.Series(tt.name))
		}
	}
	if s := m.Series("convosphere_errors_total"); len(s) != 0 {
		t.Errorf("errors counted for an answered event: %v", s)
	}

	spans := f.ended(t)
	tid, sid := observe.EventTraceIDs(engine.PlatformSlack, "Ev1")
	receipts := spansNamed(spans, "event.receive")
	if len(receipts) != 2 {
		t.Fatalf("%d event.receive spans, want 2", len(receipts))
	}
	first, dup := receipts[0], receipts[1]
	if first.SpanContext.TraceID() != tid || first.SpanContext.SpanID() != sid || first.Parent.IsValid() || attr(first, "convosphere.inbox.duplicate") != "false" {
		t.Errorf("first receipt %s/%s parent %v duplicate %s; want the event's ids %s/%s, a root", first.SpanContext.TraceID(), first.SpanContext.SpanID(), first.Parent.SpanID(), attr(first, "convosphere.inbox.duplicate"), tid, sid)
	}
	if dup.SpanContext.TraceID() != tid || dup.Parent.SpanID() != sid || attr(dup, "convosphere.inbox.duplicate") != "true" {
		t.Errorf("duplicate receipt in trace %s under %s, want trace %s under the first receipt %s", dup.SpanContext.TraceID(), dup.Parent.SpanID(), tid, sid)
	}
	process := spansNamed(spans, "event.process")
	if len(process) != 1 || process[0].SpanContext.TraceID() != tid || process[0].Parent.SpanID() != sid ||
		attr(process[0], "convosphere.inbox.result") != observe.ResultCompleted || attr(process[0], "convosphere.event_id") != "Ev1" {
		t.Fatalf("event.process spans %+v, want one under the first receipt, completed", process)
	}
	turn := spansNamed(spans, "turn")
	if len(turn) != 1 || turn[0].Parent.SpanID() != process[0].SpanContext.SpanID() || attr(turn[0], "convosphere.outcome") != "answered" || attr(turn[0], "convosphere.trace_id") == "" {
		t.Fatalf("turn spans %+v, want one under event.process, answered, naming the engine's trace", turn)
	}
	for name, n := range map[string]int{"knowledge.retrieve": 1, "model.stream": 2, "tool.call": 1} {
		got := spansNamed(spans, name)
		if len(got) != n {
			t.Errorf("%d %s spans, want %d", len(got), name, n)
		}
		for _, s := range got {
			if s.Parent.SpanID() != turn[0].SpanContext.SpanID() || s.SpanContext.TraceID() != tid {
				t.Errorf("%s is not a child of the turn in the event's trace", name)
			}
		}
	}
	if s := spansNamed(spans, "model.stream"); len(s) == 2 && (attr(s[1], "gen_ai.usage.input_tokens") != "150" || attr(s[1], "gen_ai.request.model") != "scripted") {
		t.Errorf("model.stream attributes %v", s[1].Attributes)
	}
	if s := spansNamed(spans, "tool.call"); len(s) == 1 && (attr(s[0], "convosphere.tool.server") != "everything" || attr(s[0], "convosphere.tool.outcome") != "ok") {
		t.Errorf("tool.call attributes %v", s[0].Attributes)
	}
}

// TestWorkerResults: each way an event ends is counted once, with the
// turn's outcome and the errors by component and kind.
func TestWorkerResults(t *testing.T) {
	down := engine.Errorf(engine.EUNAVAILABLE, "The model is down.")
	tests := []struct {
		name        string
		text        string
		reply       enginetest.Reply
		maxAttempts int
		result      string
		outcome     engine.Outcome
		errors      [][]string // component, kind of the errors counted once
	}{
		{"answered", "Hello?", enginetest.Reply{Chunks: []string{"Hi."}}, 3, observe.ResultCompleted, engine.OutcomeAnswered, nil},
		{"rejected input completes", "   ", enginetest.Reply{}, 3, observe.ResultCompleted, engine.OutcomeRejected,
			[][]string{{"turn", engine.EINVALID}}},
		{"model down is retried", "Hello?", enginetest.Reply{Err: down}, 3, observe.ResultRetried, engine.OutcomeFailed,
			[][]string{{"turn", engine.EUNAVAILABLE}, {"model", engine.EUNAVAILABLE}}},
		{"last attempt is dead-lettered", "Hello?", enginetest.Reply{Err: down}, 1, observe.ResultDeadLettered, engine.OutcomeFailed,
			[][]string{{"turn", engine.EUNAVAILABLE}, {"model", engine.EUNAVAILABLE}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFixture(t, engine.WorkerConfig{MaxAttempts: tt.maxAttempts}, nil)
			f.model.Script(tt.reply)
			f.enqueue(t, "Ev1", tt.text)
			f.process(t)
			m := f.metrics(t)
			for _, result := range []string{observe.ResultCompleted, observe.ResultRetried, observe.ResultDeadLettered} {
				want := 0.0
				if result == tt.result {
					want = 1
				}
				if got := m.Value("convosphere_events_processed_total", "platform", "slack", "result", result); got != want {
					t.Errorf("events_processed_total{result=%s} = %v, want %v", result, got, want)
				}
			}
			if got := m.Value("convosphere_replies_total", "platform", "slack", "outcome", string(tt.outcome)); got != 1 {
				t.Errorf("replies_total{outcome=%s} = %v, want 1 (series %v)", tt.outcome, got, m.Series("convosphere_replies_total"))
			}
			if got := len(m.Series("convosphere_errors_total")); got != len(tt.errors) {
				t.Errorf("errors_total series %v, want %v", m.Series("convosphere_errors_total"), tt.errors)
			}
			for _, e := range tt.errors {
				if got := m.Value("convosphere_errors_total", "component", e[0], "kind", e[1]); got != 1 {
					t.Errorf("errors_total{component=%s,kind=%s} = %v, want 1", e[0], e[1], got)
				}
			}
			process := spansNamed(f.ended(t), "event.process")
			if len(process) != 1 || attr(process[0], "convosphere.inbox.result") != tt.result {
				t.Errorf("event.process spans %+v, want one with result %s", process, tt.result)
			}
		})
	}
}

// TestTraceAcrossReplicas: the replica that receives an event and the
// one that handles it (later, and again on a retry) export spans of one
// trace, the handling under the receipt, with nothing stored but the event.
func TestTraceAcrossReplicas(t *testing.T) {
	raw := mustStore(t)
	receiver, recvSpans := mustObserver(t, observe.Config{Service: "bot-a"})
	worker, workSpans := mustObserver(t, observe.Config{Service: "bot-b"})
	ctx := context.Background()
	if _, err := receiver.Store(raw).Enqueue(ctx, &engine.InboxEvent{Platform: engine.PlatformDiscord, EventID: "123", ThreadKey: "k", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	inbox := worker.Store(raw)
	for attempt := 1; attempt <= 2; attempt++ {
		ev, err := inbox.Claim(ctx, "b", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		hctx, end := worker.StartEvent(ctx, ev)
		if attempt == 1 {
			err = inbox.Retry(hctx, ev.ID, "b", time.Now(), "try again")
		} else {
			err = inbox.Complete(hctx, ev.ID, "b")
		}
		end(err)
		if err != nil {
			t.Fatal(err)
		}
	}
	_ = receiver.Flush(ctx)
	_ = worker.Flush(ctx)
	tid, sid := observe.EventTraceIDs(engine.PlatformDiscord, "123")
	recv := recvSpans.GetSpans()
	if len(recv) != 1 || recv[0].SpanContext.TraceID() != tid || recv[0].SpanContext.SpanID() != sid {
		t.Fatalf("receiver spans %+v, want the receipt with the event's ids", recv)
	}
	work := spansNamed(workSpans.GetSpans(), "event.process")
	if len(work) != 2 {
		t.Fatalf("%d event.process spans, want 2 (an attempt and its retry)", len(work))
	}
	for i, s := range work {
		if s.SpanContext.TraceID() != tid || s.Parent.SpanID() != sid || !s.Parent.IsRemote() {
			t.Errorf("attempt %d: trace %s parent %s, want trace %s under the receipt %s", i+1, s.SpanContext.TraceID(), s.Parent.SpanID(), tid, sid)
		}
		if got, want := attr(s, "convosphere.inbox.attempt"), []string{"1", "2"}[i]; got != want {
			t.Errorf("attempt %d recorded as %s", i+1, got)
		}
	}
	if res := recv[0].Resource.Attributes(); !hasAttr(res, "service.name", "bot-a") {
		t.Errorf("receiver resource %v lacks service.name bot-a", res)
	}
}

// TestSamplingAgreesAcrossReplicas: at a ratio of one half, the replica
// that receives and the one that handles keep the same events' spans.
func TestSamplingAgreesAcrossReplicas(t *testing.T) {
	receiver, recvSpans := mustObserver(t, observe.Config{SampleRatio: 0.5})
	worker, workSpans := mustObserver(t, observe.Config{SampleRatio: 0.5})
	inbox := receiver.Store(mustStore(t))
	ctx := context.Background()
	const n = 200
	for i := range n {
		id := fmt.Sprintf("ev-%d", i)
		if _, err := inbox.Enqueue(ctx, &engine.InboxEvent{Platform: engine.PlatformSlack, EventID: id, ThreadKey: id, Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		_, end := worker.StartEvent(ctx, &engine.InboxEvent{Platform: engine.PlatformSlack, EventID: id, Attempts: 1})
		end(nil)
	}
	_ = receiver.Flush(ctx)
	_ = worker.Flush(ctx)
	events := func(spans []tracetest.SpanStub) map[string]bool {
		out := map[string]bool{}
		for _, s := range spans {
			out[attr(s, "convosphere.event_id")] = true
		}
		return out
	}
	recv, work := events(recvSpans.GetSpans()), events(workSpans.GetSpans())
	if len(recv) < n/4 || len(recv) > 3*n/4 {
		t.Errorf("%d of %d events sampled at ratio 0.5", len(recv), n)
	}
	for id := range recv {
		if !work[id] {
			t.Errorf("event %s: received span sampled, handling span not", id)
		}
	}
	if len(work) != len(recv) {
		t.Errorf("%d events traced by the worker, %d by the receiver", len(work), len(recv))
	}
}

func hasAttr(attrs []attribute.KeyValue, key, value string) bool {
	for _, a := range attrs {
		if string(a.Key) == key && a.Value.Emit() == value {
			return true
		}
	}
	return false
}

// syncBuffer is a bytes.Buffer safe for the loggers of concurrent goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
