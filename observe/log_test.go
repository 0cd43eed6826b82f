package observe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
	"github.com/convosphere/convosphere/observe"
)

func TestLogHandler(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, SpanID: trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}})
	withSpan := trace.ContextWithSpanContext(context.Background(), sc)
	withEvent := observe.WithEvent(context.Background(), engine.PlatformSlack, "Ev9")
	both := observe.WithEvent(withSpan, engine.PlatformSlack, "Ev9")
	tests := []struct {
		name string
		log  func(*slog.Logger)
		want map[string]any // keys that must be there (nil value: must not be there)
	}{
		{"no context", func(l *slog.Logger) { l.Info("hello") },
			map[string]any{"otel_trace_id": nil, "event_id": nil}},
		{"span", func(l *slog.Logger) { l.InfoContext(withSpan, "hello") },
			map[string]any{"otel_trace_id": "0102030405060708090a0b0c0d0e0f10", "otel_span_id": "0102030405060708", "event_id": nil}},
		{"event", func(l *slog.Logger) { l.InfoContext(withEvent, "hello") },
			map[string]any{"event_id": "Ev9", "otel_trace_id": nil}},
		{"span and event", func(l *slog.Logger) { l.WarnContext(both, "hello", "error", "boom") },
			map[string]any{"event_id": "Ev9", "otel_trace_id": "0102030405060708090a0b0c0d0e0f10", "error": "boom"}},
		{"the logger names the event", func(l *slog.Logger) { l.With("event_id", "Ev9").InfoContext(both, "hello") },
			map[string]any{"event_id": "Ev9"}},
		{"the record names the event", func(l *slog.Logger) { l.InfoContext(both, "hello", "event_id", "Ev9") },
			map[string]any{"event_id": "Ev9"}},
		{"in a group", func(l *slog.Logger) { l.WithGroup("g").InfoContext(withEvent, "hello", "k", "v") },
			map[string]any{"g": map[string]any{"k": "v", "event_id": "Ev9"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(slog.New(observe.LogHandler(slog.NewJSONHandler(&buf, nil))))
			line := strings.TrimSpace(buf.String())
			if n := strings.Count(line, `"event_id"`); n > 1 {
				t.Errorf("event_id written %d times: %s", n, line)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(line), &got); err != nil {
				t.Fatalf("%v: %s", err, line)
			}
			for k, want := range tt.want {
				v, ok := got[k]
				switch {
				case want == nil && ok:
					t.Errorf("%s = %v, want none: %s", k, v, line)
				case want != nil && !jsonEqual(v, want):
					t.Errorf("%s = %v, want %v: %s", k, v, want, line)
				}
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// TestLogsCarryIDsNotBodies runs turns through the real engine and a
// worker logging JSON at debug level, with tracing on: a knowledge search
// that fails and a model that fails once (both logged), then an answer.
// The records of the event carry its event id and trace id; neither the
// question nor the answer appears anywhere in the logs.
func TestLogsCarryIDsNotBodies(t *testing.T) {
	const question, answer = "Where is the XYZZY-QUESTION-7 launch code?", "PLUGH-ANSWER-9 is in the vault."
	var buf syncBuffer
	logger := slog.New(observe.LogHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	f := mustFixture(t, engine.WorkerConfig{}, logger)
	f.retriever.Err = engine.Errorf(engine.EUNAVAILABLE, "The index is down.")
	f.model.Script(
		enginetest.Reply{Err: engine.Errorf(engine.EUNAVAILABLE, "The model is down.")},
		enginetest.Reply{Chunks: strings.SplitAfter(answer, " ")},
	)
	f.enqueue(t, "EvLog", question)
	f.process(t) // fails: retried after a backoff of a millisecond or two
	deadline := time.Now().Add(5 * time.Second)
	for len(f.replier.Finished()) < 2 && time.Now().Before(deadline) {
		if _, err := f.worker.ProcessOne(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if got := f.replier.Finished(); len(got) != 2 || got[1].Text != answer {
		t.Fatalf("answers %+v, want a failure then the answer", got)
	}

	logs := buf.String()
	for _, secret := range []string{"XYZZY", "PLUGH"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain a message body (%s):\n%s", secret, logs)
		}
	}
	tid, _ := observe.EventTraceIDs(engine.PlatformSlack, "EvLog")
	records := map[string]map[string]any{}
	for line := range strings.SplitSeq(strings.TrimSpace(logs), "\n") {
		if n := strings.Count(line, `"event_id"`); n > 1 {
			t.Errorf("event_id written %d times: %s", n, line)
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		records[rec["msg"].(string)] = rec
	}
	for _, msg := range []string{"retrieve passages", "inbox event will be retried"} {
		rec, ok := records[msg]
		if !ok {
			t.Errorf("no %q record in the logs:\n%s", msg, logs)
			continue
		}
		if rec["event_id"] != "EvLog" || rec["otel_trace_id"] != tid.String() {
			t.Errorf("%q: event_id %v otel_trace_id %v, want EvLog and %s", msg, rec["event_id"], rec["otel_trace_id"], tid)
		}
	}
}
