package observe

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/convosphere/convosphere/engine"
)

// Span attributes.
const (
	attrPlatform  = attribute.Key("convosphere.platform")
	attrEventID   = attribute.Key("convosphere.event_id")
	attrDuplicate = attribute.Key("convosphere.inbox.duplicate")
	attrResult    = attribute.Key("convosphere.inbox.result")
	attrAttempt   = attribute.Key("convosphere.inbox.attempt")
	attrOutcome   = attribute.Key("convosphere.outcome")
	attrTraceID   = attribute.Key("convosphere.trace_id") // the engine's trace, as the console shows it
	attrResume    = attribute.Key("convosphere.resume")
	attrErrorType = attribute.Key("error.type")
)

// One trace per inbound event: its receipt (event.receive, in the replica
// whose adapter got it) and every attempt at answering it (event.process,
// in whichever replica's worker claims it, maybe minutes later) share a
// trace whose id is derived from the event's (platform, id). The receive
// span of the first delivery has a derived span id too, and the process
// spans (and later duplicate deliveries) are its children: no trace
// context needs to be stored with the event.

// EventTraceIDs returns the trace id of the event's trace and the span id
// of its first receipt.
func EventTraceIDs(platform engine.Platform, eventID string) (trace.TraceID, trace.SpanID) {
	sum := sha256.Sum256([]byte("convosphere-event\x00" + string(platform) + "\x00" + eventID))
	var tid trace.TraceID
	var sid trace.SpanID
	copy(tid[:], sum[:16])
	copy(sid[:], sum[16:24])
	if !tid.IsValid() { // all zeros is invalid; a hash of it is as good as any other
		tid[15] = 1
	}
	if !sid.IsValid() {
		sid[7] = 1
	}
	return tid, sid
}

// eventParent is the span context of the event's first receipt, as a
// remote parent: sampled when the sampler samples the event's trace, so
// every replica decides the same.
func (o *Observer) eventParent(platform engine.Platform, eventID string) trace.SpanContext {
	tid, sid := EventTraceIDs(platform, eventID)
	var flags trace.TraceFlags
	res := o.sampler.ShouldSample(sdktrace.SamplingParameters{ParentContext: context.Background(), TraceID: tid, Name: "event.receive"})
	if res.Decision == sdktrace.RecordAndSample {
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: true})
}

// fixedIDsKey carries the ids the next root span must take.
type fixedIDsKey struct{}

type fixedIDs struct {
	trace trace.TraceID
	span  trace.SpanID
}

// idGenerator makes random ids, except for a root span started with a
// context carrying fixedIDs.
type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if f, ok := ctx.Value(fixedIDsKey{}).(fixedIDs); ok {
		return f.trace, f.span
	}
	var tid trace.TraceID
	for !tid.IsValid() {
		binary.BigEndian.PutUint64(tid[:8], rand.Uint64())
		binary.BigEndian.PutUint64(tid[8:], rand.Uint64())
	}
	return tid, randomSpanID()
}

func (idGenerator) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return randomSpanID() }

func randomSpanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		binary.BigEndian.PutUint64(sid[:], rand.Uint64())
	}
	return sid
}

// engineCode is err's engine error code ("" for nil).
func engineCode(err error) string { return engine.ErrorCode(err) }

// setError marks span as failed with the error's code and its message for
// users (never the cause, which may quote what a provider sent back).
func setError(span trace.Span, err error) {
	span.SetAttributes(attrErrorType.String(engineCode(err)))
	span.SetStatus(codes.Error, engine.ErrorMessage(err))
}
