package observe_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/observe"
	"github.com/convosphere/convosphere/observe/observetest"
)

// TestOTLPExport sends an event's receipt and handling to a real OTLP/HTTP
// receiver: the spans arrive at /v1/traces as protobuf, in the event's
// trace, the handling under the receipt, named after the service.
func TestOTLPExport(t *testing.T) {
	recv := observetest.NewOTLPReceiver(t, 0)
	o, err := observe.New(observe.Config{Service: "convosphere-bot", Version: "test", OTLPEndpoint: recv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Tracing() {
		t.Fatal("tracing is off with an OTLP endpoint")
	}
	ctx := context.Background()
	if _, err := o.Store(mustStore(t)).Enqueue(ctx, &engine.InboxEvent{Platform: engine.PlatformMattermost, EventID: "post1", ThreadKey: "k", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	_, end := o.StartEvent(ctx, &engine.InboxEvent{Platform: engine.PlatformMattermost, EventID: "post1", Attempts: 1})
	end(engine.Errorf(engine.EUNAVAILABLE, "The database is down."))
	if err := o.Close(); err != nil { // flushes
		t.Fatal(err)
	}

	spans := recv.Spans()
	if paths := recv.Paths(); len(paths) == 0 || paths[0] != "/v1/traces" {
		t.Fatalf("exports to %v, want /v1/traces", paths)
	}
	for name, list := range spans {
		for _, s := range list {
			if s.Service != "convosphere-bot" {
				t.Errorf("%s: service.name %q, want convosphere-bot", name, s.Service)
			}
		}
	}
	tid, sid := observe.EventTraceIDs(engine.PlatformMattermost, "post1")
	receive, process := spans["event.receive"], spans["event.process"]
	if len(receive) != 1 || len(process) != 1 {
		t.Fatalf("spans %v, want one event.receive and one event.process", spans)
	}
	if !bytes.Equal(receive[0].TraceId, tid[:]) || !bytes.Equal(receive[0].SpanId, sid[:]) || len(receive[0].ParentSpanId) != 0 ||
		receive[0].Kind != tracepb.Span_SPAN_KIND_PRODUCER {
		t.Errorf("event.receive %x/%x parent %x kind %v, want %s/%s, a root producer span", receive[0].TraceId, receive[0].SpanId, receive[0].ParentSpanId, receive[0].Kind, tid, sid)
	}
	p := process[0]
	if !bytes.Equal(p.TraceId, tid[:]) || !bytes.Equal(p.ParentSpanId, sid[:]) || p.Kind != tracepb.Span_SPAN_KIND_CONSUMER {
		t.Errorf("event.process %x parent %x kind %v, want trace %s under %s, a consumer span", p.TraceId, p.ParentSpanId, p.Kind, tid, sid)
	}
	if p.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR || p.GetStatus().GetMessage() != "The database is down." {
		t.Errorf("event.process status %v, want the error's message", p.GetStatus())
	}
}

// TestOTLPExportFailureIsLogged: a receiver that refuses the spans is
// reported in the process's log, not on stderr, and closing does not fail.
func TestOTLPExportFailureIsLogged(t *testing.T) {
	recv := observetest.NewOTLPReceiver(t, http.StatusBadRequest) // not retried
	var logs syncBuffer
	o, err := observe.New(observe.Config{OTLPEndpoint: recv.URL + "/custom/path"}, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	_, end := o.StartEvent(context.Background(), &engine.InboxEvent{Platform: engine.PlatformSlack, EventID: "E1", Attempts: 1})
	end(nil)
	if err := o.Close(); err != nil {
		t.Errorf("Close = %v, want the failure logged only", err)
	}
	if paths := recv.Paths(); len(paths) != 1 || paths[0] != "/custom/path" {
		t.Errorf("exports to %v, want the endpoint's own path", paths)
	}
	if !strings.Contains(logs.String(), "export traces failed") || !strings.Contains(logs.String(), `"dropped_spans":1`) {
		t.Errorf("logs do not report the failed export:\n%s", logs.String())
	}
}
