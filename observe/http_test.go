package observe_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/convosphere/convosphere/observe"
	"github.com/convosphere/convosphere/observe/observetest"
)

func TestHTTPMetrics(t *testing.T) {
	o, _ := mustObserver(t, observe.Config{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "x" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("POST /stream", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		w.(http.Flusher).Flush()
	})
	h := o.HTTP(mux, nil)
	requests := []struct {
		method, path string
		code         int
	}{
		{"GET", "/items/1", 200},
		{"GET", "/items/2", 200},
		{"GET", "/items/x", 404},
		{"POST", "/stream", 202},
		{"GET", "/nowhere", 404},
		{"BREW", "/items/1", 405},
	}
	for _, r := range requests {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(r.method, r.path, nil))
		if w.Code != r.code {
			t.Fatalf("%s %s = %d, want %d", r.method, r.path, w.Code, r.code)
		}
		if r.path == "/stream" && !w.Flushed {
			t.Error("the flush did not reach the response writer")
		}
	}
	m := observetest.Gather(t, o.Registry())
	tests := []struct {
		route, method, code string
		want                float64
	}{
		{"GET /items/{id}", "GET", "200", 2},
		{"GET /items/{id}", "GET", "404", 1},
		{"POST /stream", "POST", "202", 1},
		{"other", "GET", "404", 1},
		{"other", "other", "405", 1},
	}
	for _, tt := range tests {
		if got := m.Value("convosphere_http_requests_total", "route", tt.route, "method", tt.method, "code", tt.code); got != tt.want {
			t.Errorf("http_requests_total{route=%q,method=%s,code=%s} = %v, want %v (series %v)", tt.route, tt.method, tt.code, got, tt.want, m.Series("convosphere_http_requests_total"))
		}
	}
	if got := m.Value("convosphere_http_request_duration_seconds", "route", "GET /items/{id}", "method", "GET"); got != 3 {
		t.Errorf("%v durations of GET /items/{id}, want 3", got)
	}
}

func TestRouteByPrefix(t *testing.T) {
	route := observe.RouteByPrefix("/api/v1/chat", "/api/", "/static/", "/")
	tests := []struct{ path, want string }{
		{"/api/v1/chat", "/api/v1/chat"},
		{"/api/v1/chat/stream", "/api/v1/chat"},
		{"/api/v1/users/42", "/api/"},
		{"/static/app.css", "/static/"},
		{"/conversations/01J", "/"},
	}
	for _, tt := range tests {
		if got := route(httptest.NewRequest("GET", tt.path, nil)); got != tt.want {
			t.Errorf("route(%s) = %q, want %q", tt.path, got, tt.want)
		}
	}
	if got := observe.RouteByPrefix("/api/")(httptest.NewRequest("GET", "/x", nil)); got != "other" {
		t.Errorf("unmatched route = %q, want other", got)
	}
}

// TestHTTPTakesUpCallersTrace: with tracing on, a request's traceparent
// becomes the parent of what the handler does; with tracing off it is
// ignored.
func TestHTTPTakesUpCallersTrace(t *testing.T) {
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tracing := range []bool{true, false} {
		cfg := observe.Config{}
		var o *observe.Observer
		if tracing {
			o, _ = mustObserver(t, cfg)
		} else {
			var err error
			if o, err = observe.New(cfg, nil); err != nil {
				t.Fatal(err)
			}
		}
		var got trace.SpanContext
		h := o.HTTP(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			got = trace.SpanContextFromContext(r.Context())
		}), nil)
		req := httptest.NewRequest("POST", "/api/v1/chat", nil)
		req.Header.Set("traceparent", traceparent)
		h.ServeHTTP(httptest.NewRecorder(), req)
		if tracing && (got.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || !got.IsRemote()) {
			t.Errorf("tracing on: span context %v, want the caller's trace", got)
		}
		if !tracing && got.IsValid() {
			t.Errorf("tracing off: span context %v, want none", got)
		}
	}
}
