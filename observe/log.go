package observe

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"

	"github.com/convosphere/convosphere/engine"
)

// Log attribute keys added by LogHandler. The trace ids are prefixed:
// trace_id already names the engine's trace (the one the console shows)
// in the engine's log records.
const (
	LogEventID     = "event_id"
	LogOTelTraceID = "otel_trace_id"
	LogOTelSpanID  = "otel_span_id"
)

type eventKey struct{}

type event struct {
	platform engine.Platform
	id       string
}

// WithEvent returns ctx marked as handling the platform's event id: log
// records written with it carry event_id, and the inbox decorator counts
// the event's result under its platform.
func WithEvent(ctx context.Context, platform engine.Platform, eventID string) context.Context {
	return context.WithValue(ctx, eventKey{}, event{platform: platform, id: eventID})
}

// EventFrom returns the event ctx is handling, if any.
func EventFrom(ctx context.Context) (platform engine.Platform, eventID string, ok bool) {
	e, ok := ctx.Value(eventKey{}).(event)
	return e.platform, e.id, ok
}

// LogHandler wraps h so that each record logged with a context carries the
// ids of the context's span (otel_trace_id, otel_span_id, when tracing is
// on) and of the event being handled (event_id, unless the record or the
// logger has one already). It adds nothing else: in particular no message
// text.
func LogHandler(h slog.Handler) slog.Handler { return &logHandler{next: h} }

type logHandler struct {
	next       slog.Handler
	hasEventID bool // the logger's attributes name the event already
	grouped    bool // attributes added from now on go into a group
}

func (h *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil {
		return h.next.Handle(ctx, r)
	}
	var extra []slog.Attr
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		extra = append(extra, slog.String(LogOTelTraceID, sc.TraceID().String()), slog.String(LogOTelSpanID, sc.SpanID().String()))
	}
	if _, id, ok := EventFrom(ctx); ok && id != "" && !h.hasEventID && !recordHas(r, LogEventID) {
		extra = append(extra, slog.String(LogEventID, id))
	}
	if len(extra) > 0 {
		r = r.Clone()
		r.AddAttrs(extra...)
	}
	return h.next.Handle(ctx, r)
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	has := h.hasEventID
	if !h.grouped {
		for _, a := range attrs {
			has = has || a.Key == LogEventID
		}
	}
	return &logHandler{next: h.next.WithAttrs(attrs), hasEventID: has, grouped: h.grouped}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &logHandler{next: h.next.WithGroup(name), hasEventID: h.hasEventID, grouped: true}
}

func recordHas(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}
