package observe

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/convosphere/convosphere/engine"
)

// Model call outcomes counted by model_requests_total.
const (
	ModelOK       = "ok"
	ModelError    = "error"
	ModelCanceled = "canceled" // the stream ended without a final event, or its reader left
)

// GenAI span attributes (OpenTelemetry semantic conventions).
const (
	attrGenAIOperation    = attribute.Key("gen_ai.operation.name")
	attrGenAIRequestModel = attribute.Key("gen_ai.request.model")
	attrGenAIModel        = attribute.Key("gen_ai.response.model")
	attrGenAIInputTokens  = attribute.Key("gen_ai.usage.input_tokens")
	attrGenAIOutputTokens = attribute.Key("gen_ai.usage.output_tokens")
)

// Model returns lm with its calls observed: counted by model and outcome,
// tokens counted from the stream's usage events, the time to the first
// token and of the whole call measured, errors counted by kind, and a
// model.stream span per call. It keeps lm's engine.ModelNamer.
func (o *Observer) Model(lm engine.LanguageModel) engine.LanguageModel { return &model{next: lm, o: o} }

type model struct {
	next engine.LanguageModel
	o    *Observer
}

// DefaultModel implements engine.ModelNamer.
func (m *model) DefaultModel() string {
	if n, ok := m.next.(engine.ModelNamer); ok {
		return n.DefaultModel()
	}
	return ""
}

func (m *model) Stream(ctx context.Context, req engine.ChatRequest) (<-chan engine.StreamEvent, error) {
	name := req.Model
	if name == "" {
		name = m.DefaultModel()
	}
	if name == "" {
		name = "default"
	}
	ctx, span := m.o.tracer.Start(ctx, "model.stream", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attrGenAIOperation.String("chat"), attrGenAIRequestModel.String(name)))
	c := &modelCall{o: m.o, name: name, span: span, start: time.Now()}
	in, err := m.next.Stream(ctx, req)
	if err != nil {
		c.end(ModelError, err)
		return nil, err
	}
	out := make(chan engine.StreamEvent)
	go c.relay(ctx, in, out)
	return out, nil
}

// modelCall is one observed model call.
type modelCall struct {
	o     *Observer
	name  string
	span  trace.Span
	start time.Time

	firstSeen bool
	usage     engine.Usage
	model     string
}

// relay forwards in to out, watching the events go by. The call is
// recorded before its final event (done or error) is passed on, so it is
// counted by the time the reader sees the end. When ctx ends before the
// stream does, relay stops forwarding and drains in (the provider closes
// it once it sees ctx end).
func (c *modelCall) relay(ctx context.Context, in <-chan engine.StreamEvent, out chan<- engine.StreamEvent) {
	defer close(out)
	ended := false
	defer func() {
		if !ended {
			c.end(ModelCanceled, ctx.Err())
		}
	}()
	for ev := range in {
		c.watch(ev)
		switch {
		case ended: // nothing comes after the final event
		case ev.Kind == engine.EventDone:
			ended = true
			c.end(ModelOK, nil)
		case ev.Kind == engine.EventError:
			ended = true
			c.end(ModelError, ev.Err)
		}
		select {
		case out <- ev:
		case <-ctx.Done():
			go func() {
				for range in {
				}
			}()
			return
		}
	}
}

func (c *modelCall) watch(ev engine.StreamEvent) {
	if ev.Model != "" {
		c.model = ev.Model
	}
	switch ev.Kind {
	case engine.EventText, engine.EventToolCall:
		if !c.firstSeen {
			c.firstSeen = true
			c.o.m.modelFirstToken.WithLabelValues(c.name).Observe(time.Since(c.start).Seconds())
		}
	case engine.EventUsage:
		c.usage = ev.Usage // the latest report counts, as in the engine
	}
}

func (c *modelCall) end(outcome string, err error) {
	m := c.o.m
	m.modelRequests.WithLabelValues(c.name, outcome).Inc()
	m.modelSeconds.WithLabelValues(c.name, outcome).Observe(time.Since(c.start).Seconds())
	if c.usage.InputTokens > 0 {
		m.modelTokens.WithLabelValues(c.name, "input").Add(float64(c.usage.InputTokens))
	}
	if c.usage.OutputTokens > 0 {
		m.modelTokens.WithLabelValues(c.name, "output").Add(float64(c.usage.OutputTokens))
	}
	c.span.SetAttributes(attrGenAIInputTokens.Int(c.usage.InputTokens), attrGenAIOutputTokens.Int(c.usage.OutputTokens))
	if c.model != "" {
		c.span.SetAttributes(attrGenAIModel.String(c.model))
	}
	if outcome == ModelError {
		m.fail("model", err)
		setError(c.span, err)
	}
	c.span.End()
}
