package engine

import "context"

// Wakeup wakes idle inbox workers when an event is stored, so that a new
// message is claimed at once instead of at the workers' next poll (up to
// WorkerConfig.PollInterval later, a quarter of a second by default, on
// every message). Polling stays: it finds events stored by other
// replicas, retries coming due and expired leases.
type Wakeup struct{ ch chan struct{} }

// NewWakeup returns a Wakeup with nothing pending.
func NewWakeup() *Wakeup { return &Wakeup{ch: make(chan struct{}, 1)} }

// Notify wakes one idle worker, now or when one next waits. Notifications
// coalesce: a worker that wakes claims until the inbox has nothing ready,
// and wakes another as it goes.
func (w *Wakeup) Notify() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

// WakeOnEnqueue returns s whose Enqueue notifies w when it stored a new
// event (a duplicate delivery wakes nobody).
func WakeOnEnqueue(s Store, w *Wakeup) Store { return &wakingStore{Store: s, w: w} }

type wakingStore struct {
	Store
	w *Wakeup
}

func (s *wakingStore) Enqueue(ctx context.Context, e *InboxEvent) (bool, error) {
	inserted, err := s.Store.Enqueue(ctx, e)
	if inserted && err == nil {
		s.w.Notify()
	}
	return inserted, err
}
