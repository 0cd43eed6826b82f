package observe

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/convosphere/convosphere/engine"
)

// Inbox results counted by events_processed_total.
const (
	ResultCompleted    = "completed"
	ResultRetried      = "retried"
	ResultDeadLettered = "dead_lettered"
)

// Store returns s with its durable inbox observed: every Enqueue is
// counted (received, then acknowledged or deduplicated) and traced as the
// event's receipt, and the workers' Complete, Retry and DeadLetter are
// counted by result. Everything else passes through.
func (o *Observer) Store(s engine.Store) engine.Store { return &store{Store: s, o: o} }

type store struct {
	engine.Store
	o *Observer
}

func (s *store) Enqueue(ctx context.Context, e *engine.InboxEvent) (bool, error) {
	start := time.Now()
	inserted, err := s.Store.Enqueue(ctx, e)
	s.o.received(ctx, e, start, inserted, err)
	return inserted, err
}

func (s *store) Complete(ctx context.Context, id, owner string) error {
	err := s.Store.Complete(ctx, id, owner)
	s.o.settled(ctx, ResultCompleted, err)
	return err
}

func (s *store) Retry(ctx context.Context, id, owner string, at time.Time, errMsg string) error {
	err := s.Store.Retry(ctx, id, owner, at, errMsg)
	s.o.settled(ctx, ResultRetried, err)
	return err
}

func (s *store) DeadLetter(ctx context.Context, id, owner, errMsg string) error {
	err := s.Store.DeadLetter(ctx, id, owner, errMsg)
	s.o.settled(ctx, ResultDeadLettered, err)
	return err
}

// received counts and traces one delivery of an event. The span is made
// once the store has answered, because only then is it known whether this
// is the event's first receipt (which takes the event's derived span id)
// or a duplicate (a child of the first).
func (o *Observer) received(ctx context.Context, e *engine.InboxEvent, start time.Time, inserted bool, err error) {
	p := label(e.Platform)
	o.m.eventsReceived.WithLabelValues(p).Inc()
	switch {
	case err != nil:
		o.m.fail("inbox", err)
	case inserted:
		o.m.eventsAcknowledged.WithLabelValues(p).Inc()
	default:
		o.m.eventsDeduplicated.WithLabelValues(p).Inc()
	}
	if o.provider == nil {
		return
	}
	opts := []trace.SpanStartOption{
		trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attrPlatform.String(p), attrEventID.String(e.EventID), attrDuplicate.Bool(err == nil && !inserted)),
	}
	sctx := ctx
	if err == nil && inserted {
		tid, sid := EventTraceIDs(e.Platform, e.EventID)
		sctx = context.WithValue(ctx, fixedIDsKey{}, fixedIDs{trace: tid, span: sid})
		opts = append(opts, trace.WithNewRoot())
	} else {
		sctx = trace.ContextWithRemoteSpanContext(ctx, o.eventParent(e.Platform, e.EventID))
	}
	_, span := o.tracer.Start(sctx, "event.receive", opts...)
	if err != nil {
		setError(span, err)
	}
	span.End()
}

// settled counts a worker's result for the event of ctx (see StartEvent).
// A failure to record it is counted once, as the worker's error.
func (o *Observer) settled(ctx context.Context, result string, err error) {
	platform, _, _ := EventFrom(ctx)
	span := trace.SpanFromContext(ctx)
	if err != nil { // the worker returns it: counted by StartEvent's end
		setError(span, err)
		return
	}
	o.m.eventsProcessed.WithLabelValues(label(platform), result).Inc()
	span.SetAttributes(attrResult.String(result))
}

var _ engine.EventObserver = (*Observer)(nil)

// StartEvent implements engine.EventObserver: it times the event's wait
// in the inbox and its handling, marks the context with the event (for
// logs and the inbox's result) and starts the event.process span, a
// child of the event's receipt.
func (o *Observer) StartEvent(ctx context.Context, ev *engine.InboxEvent) (context.Context, func(error)) {
	p := label(ev.Platform)
	start := time.Now()
	if !ev.AvailableAt.IsZero() {
		o.m.eventWait.WithLabelValues(p).Observe(max(0, start.Sub(ev.AvailableAt).Seconds()))
	}
	inFlight := o.m.eventsInFlight.WithLabelValues(p)
	inFlight.Inc()
	ctx = WithEvent(ctx, ev.Platform, ev.EventID)
	if o.provider != nil {
		ctx = trace.ContextWithRemoteSpanContext(ctx, o.eventParent(ev.Platform, ev.EventID))
	}
	ctx, span := o.tracer.Start(ctx, "event.process", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attrPlatform.String(p), attrEventID.String(ev.EventID), attrAttempt.Int(ev.Attempts)))
	return ctx, func(err error) {
		inFlight.Dec()
		o.m.eventProcessing.WithLabelValues(p).Observe(time.Since(start).Seconds())
		if err != nil {
			o.m.fail("worker", err)
			setError(span, err)
		}
		span.End()
	}
}
