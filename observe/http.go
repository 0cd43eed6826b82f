package observe

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"
)

// HTTP returns next with its requests counted and timed by route, method
// and status code. When tracing is on, a caller's W3C trace context
// (traceparent) is taken up, so a turn asked for over HTTP joins the
// caller's trace. route names a request's route once next has served it
// (a bounded set of names); nil uses the pattern an http.ServeMux matched
// (Request.Pattern).
func (o *Observer) HTTP(next http.Handler, route func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if o.provider != nil {
			r = r.WithContext(o.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		name := ""
		if route != nil {
			name = route(r)
		} else {
			name = r.Pattern // set by http.ServeMux on the request it served
		}
		if name == "" {
			name = "other"
		}
		method := r.Method
		switch method {
		case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
			http.MethodDelete, http.MethodOptions:
		default:
			method = "other"
		}
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		o.m.httpRequests.WithLabelValues(name, method, strconv.Itoa(code)).Inc()
		o.m.httpSeconds.WithLabelValues(name, method).Observe(time.Since(start).Seconds())
	})
}

// RouteByPrefix names a request after the first of prefixes its path
// starts with, "other" when none does: a bounded route label for handlers
// that route themselves (the console's gin router).
func RouteByPrefix(prefixes ...string) func(*http.Request) string {
	return func(r *http.Request) string {
		for _, p := range prefixes {
			if strings.HasPrefix(r.URL.Path, p) {
				return p
			}
		}
		return "other"
	}
}

// statusWriter records the status code of a response. It keeps the
// Flusher and Hijacker of the writer it wraps (streamed answers, MCP).
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher.
func (w *statusWriter) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}

// Unwrap lets http.ResponseController reach the wrapped writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
