package engine

import "context"

// EventObserver follows the inbox events a worker handles, for metrics,
// traces and logs (package observe implements it). It is optional:
// WorkerDeps.Observer may be nil.
type EventObserver interface {
	// StartEvent is called once ev is claimed. The worker handles the
	// event with the returned context and calls end when it is done, with
	// the error ProcessOne returns (nil when the event was completed,
	// retried or dead-lettered as planned).
	StartEvent(ctx context.Context, ev *InboxEvent) (_ context.Context, end func(err error))
}
