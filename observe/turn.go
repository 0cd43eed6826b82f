package observe

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/convosphere/convosphere/engine"
)

// Handler returns h with its turns observed: a turn span (a child of the
// event's span in a worker, a root span in the console), the replies
// counted by platform and outcome, the time from the message's receipt to
// its first words and to its final reply, and the turn's errors by kind.
func (o *Observer) Handler(h engine.Handler) engine.Handler { return &handler{next: h, o: o} }

type handler struct {
	next engine.Handler
	o    *Observer
}

func (h *handler) Handle(ctx context.Context, msg engine.Message, r engine.Replier) (*engine.Answer, error) {
	platform := msg.Thread.Channel.Platform
	if _, _, ok := EventFrom(ctx); !ok && msg.ID != "" {
		ctx = WithEvent(ctx, platform, msg.ID)
	}
	ctx, span := h.o.tracer.Start(ctx, "turn", trace.WithAttributes(
		attrPlatform.String(label(platform)), attrResume.Bool(msg.Resume != nil)))
	defer span.End()
	now := time.Now()
	received := msg.ReceivedAt
	if received.IsZero() || received.After(now) {
		received = now
	}
	ans, err := h.next.Handle(ctx, msg, h.o.replier(r, label(platform), received))
	if ans != nil {
		span.SetAttributes(attrOutcome.String(string(ans.Outcome)), attrTraceID.String(ans.TraceID))
	}
	if err != nil {
		h.o.m.fail("turn", err)
		setError(span, err)
	}
	return ans, err
}

// replier wraps a turn's replier to time its first update and its finish.
// It keeps the optional StatusReporter of the replier it wraps.
func (o *Observer) replier(r engine.Replier, platform string, received time.Time) engine.Replier {
	w := &replier{next: r, o: o, platform: platform, received: received}
	if s, ok := r.(engine.StatusReporter); ok {
		return statusReplier{replier: w, status: s}
	}
	return w
}

type replier struct {
	next     engine.Replier
	o        *Observer
	platform string
	received time.Time
	first    sync.Once
}

func (r *replier) Update(ctx context.Context, u engine.Update) error {
	r.first.Do(func() {
		r.o.m.replyFirstUpdate.WithLabelValues(r.platform).Observe(time.Since(r.received).Seconds())
	})
	return r.next.Update(ctx, u)
}

func (r *replier) Finish(ctx context.Context, a engine.Answer) error {
	err := r.next.Finish(ctx, a)
	outcome := string(a.Outcome)
	if outcome == "" {
		outcome = "unknown"
	}
	r.o.m.replies.WithLabelValues(r.platform, outcome).Inc()
	r.o.m.replySeconds.WithLabelValues(r.platform, outcome).Observe(time.Since(r.received).Seconds())
	if err != nil {
		r.o.m.fail("reply", err)
	}
	return err
}

type statusReplier struct {
	*replier
	status engine.StatusReporter
}

func (r statusReplier) Status(ctx context.Context, status string) error {
	return r.status.Status(ctx, status)
}
