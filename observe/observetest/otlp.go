package observetest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// OTLPReceiver is an OTLP/HTTP trace receiver for tests: it decodes the
// protobuf export requests and keeps their spans.
type OTLPReceiver struct {
	*httptest.Server

	mu        sync.Mutex
	status    int
	paths     []string
	resources []*tracepb.ResourceSpans
}

// NewOTLPReceiver starts a receiver that answers every export with
// status (0: 200 and an empty export response); it stops with the test.
func NewOTLPReceiver(tb testing.TB, status int) *OTLPReceiver {
	tb.Helper()
	r := &OTLPReceiver{status: status}
	r.Server = httptest.NewServer(http.HandlerFunc(r.export))
	tb.Cleanup(r.Close)
	return r
}

func (r *OTLPReceiver) export(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil || req.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want a protobuf body", http.StatusUnsupportedMediaType)
		return
	}
	var export coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &export); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.paths = append(r.paths, req.URL.Path)
	r.resources = append(r.resources, export.ResourceSpans...)
	status := r.status
	r.mu.Unlock()
	if status != 0 && status != http.StatusOK {
		http.Error(w, "refused", status)
		return
	}
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// Paths returns the URL paths the exports were sent to.
func (r *OTLPReceiver) Paths() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.paths...)
}

// ReceivedSpan is a span as received, with its resource's service.name.
type ReceivedSpan struct {
	*tracepb.Span
	Service string
}

// Attr returns the span's attribute key as text ("" when missing).
func (s ReceivedSpan) Attr(key string) string {
	for _, a := range s.Attributes {
		if a.Key != key {
			continue
		}
		switch v := a.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			return v.StringValue
		case *commonpb.AnyValue_IntValue:
			return strconv.FormatInt(v.IntValue, 10)
		case *commonpb.AnyValue_BoolValue:
			return strconv.FormatBool(v.BoolValue)
		case *commonpb.AnyValue_DoubleValue:
			return strconv.FormatFloat(v.DoubleValue, 'g', -1, 64)
		}
	}
	return ""
}

// Spans returns the received spans by name.
func (r *OTLPReceiver) Spans() map[string][]ReceivedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]ReceivedSpan{}
	for _, rs := range r.resources {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				out[s.Name] = append(out[s.Name], ReceivedSpan{Span: s, Service: service})
			}
		}
	}
	return out
}
