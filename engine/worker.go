package engine

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Handler answers one message; *Engine implements it.
type Handler interface {
	Handle(ctx context.Context, msg Message, r Replier) (*Answer, error)
}

// ReplierFactory makes the replier that answers an inbox event on its
// platform. Adapters implement it; the replier uses the Outbox so that a
// retried event edits its earlier messages instead of posting again.
type ReplierFactory interface {
	Replier(ctx context.Context, ev *InboxEvent, msg Message) (Replier, error)
}

// MessagePreparer is implemented by replier factories that complete a
// message before it is answered, with what the platform knows and the ack
// path had no time to ask (the user's name, the thread's earlier messages).
// A failure is logged and the message answered as it is.
type MessagePreparer interface {
	PrepareMessage(ctx context.Context, ev *InboxEvent, msg *Message) error
}

// DeadLetterNotifier is implemented by replier factories that can tell the
// user, in the thread, that their message will not be answered after all.
type DeadLetterNotifier interface {
	NotifyDeadLetter(ctx context.Context, ev *InboxEvent, msg Message, reason string) error
}

// WorkerConfig tunes the inbox workers.
type WorkerConfig struct {
	Owner        string        // lease owner name; default a random id
	Concurrency  int           // events handled at once; default 4
	Lease        time.Duration // how long a claim lasts; default 5m (longer than a turn)
	PollInterval time.Duration // wait when the inbox is empty; default 250ms
	MaxAttempts  int           // attempts before dead-lettering; default 5
	BackoffBase  time.Duration // first retry delay; default 2s, doubled per attempt with jitter
	BackoffMax   time.Duration // default 2m
	// ShutdownGrace is how long the events in hand may take to finish once
	// the worker is asked to stop; then their turns are interrupted (the
	// partial answer is shown with a note) and handed back to the inbox,
	// for another replica to finish. 0: they always finish.
	ShutdownGrace time.Duration
}

func (c *WorkerConfig) setDefaults() {
	if c.Owner == "" {
		c.Owner = "worker-" + NewID()
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	if c.Lease == 0 {
		c.Lease = 5 * time.Minute
	}
	if c.PollInterval == 0 {
		c.PollInterval = 250 * time.Millisecond
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if c.BackoffBase == 0 {
		c.BackoffBase = 2 * time.Second
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 2 * time.Minute
	}
}

// WorkerDeps are the worker's collaborators.
type WorkerDeps struct {
	Inbox    Inbox
	Handler  Handler
	Repliers map[Platform]ReplierFactory
	Logger   *slog.Logger
	Observer EventObserver // optional: follows each claimed event (metrics, traces, logs)
	Wakeup   *Wakeup       // optional: wakes idle workers when an event is stored (see WakeOnEnqueue)
}

// Worker claims inbox events and answers them.
type Worker struct {
	cfg  WorkerConfig
	deps WorkerDeps
	log  *slog.Logger
}

// NewWorker returns a worker or an error naming what is missing.
func NewWorker(cfg WorkerConfig, deps WorkerDeps) (*Worker, error) {
	cfg.setDefaults()
	if cfg.Concurrency < 0 || cfg.MaxAttempts < 0 || cfg.Lease < 0 {
		return nil, Errorf(EINVALID, "worker: concurrency, attempts and lease must not be negative")
	}
	if deps.Inbox == nil || deps.Handler == nil {
		return nil, Errorf(EINVALID, "worker: inbox and handler are required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Worker{cfg: cfg, deps: deps, log: log.With("component", "worker", "owner", cfg.Owner)}, nil
}

// Run handles events until ctx ends, then waits for the events in hand.
func (w *Worker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range w.cfg.Concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				worked, err := w.ProcessOne(ctx)
				if err != nil {
					w.log.ErrorContext(ctx, "process inbox event", "error", err)
				}
				if !worked || err != nil {
					w.idle(ctx, err == nil)
				} else if w.deps.Wakeup != nil {
					// More may be ready: another idle worker looks too.
					w.deps.Wakeup.Notify()
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// idle waits for the next poll, or (wakeable: the inbox answered) until
// an event is stored.
func (w *Worker) idle(ctx context.Context, wakeable bool) {
	var wake <-chan struct{}
	if wakeable && w.deps.Wakeup != nil {
		wake = w.deps.Wakeup.ch
	}
	t := time.NewTimer(w.cfg.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-wake:
	}
}

// ProcessOne claims and handles one event. It reports whether there was one.
func (w *Worker) ProcessOne(ctx context.Context) (_ bool, err error) {
	ev, err := w.deps.Inbox.Claim(ctx, w.cfg.Owner, w.cfg.Lease)
	if IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if w.deps.Observer != nil {
		var end func(error)
		ctx, end = w.deps.Observer.StartEvent(ctx, ev)
		defer func() { end(err) }()
	}
	// The turn goes on when the worker is asked to stop, for up to
	// ShutdownGrace; then it is interrupted and handed back below.
	hctx, stop := w.handleContext(ctx)
	defer stop()
	log := w.log.With("event_id", ev.EventID, "platform", ev.Platform, "attempt", ev.Attempts)

	var msg Message
	if err := json.Unmarshal(ev.Payload, &msg); err != nil {
		log.ErrorContext(ctx, "decode inbox event", "error", err)
		return true, w.deps.Inbox.DeadLetter(hctx, ev.ID, w.cfg.Owner, "decode payload: "+err.Error())
	}
	factory := w.deps.Repliers[ev.Platform]
	if factory == nil {
		log.ErrorContext(ctx, "no adapter for platform")
		return true, w.deps.Inbox.DeadLetter(hctx, ev.ID, w.cfg.Owner, "no adapter is configured for platform "+string(ev.Platform))
	}
	if p, ok := factory.(MessagePreparer); ok {
		if err := p.PrepareMessage(hctx, ev, &msg); err != nil {
			log.WarnContext(ctx, "prepare message", "error", err)
		}
	}
	r, err := factory.Replier(hctx, ev, msg)
	if err != nil {
		return true, w.retryOrDead(hctx, log, ev, msg, err)
	}
	_, err = w.deps.Handler.Handle(hctx, msg, r)
	if errors.Is(context.Cause(hctx), ErrShutdown) {
		// Another replica (or this one after its restart) takes it at
		// once, and edits the partial answer into the whole one.
		log.InfoContext(hctx, "inbox event handed back at shutdown")
		return true, w.deps.Inbox.Retry(context.WithoutCancel(hctx), ev.ID, w.cfg.Owner, time.Now(), "handed back at shutdown")
	}
	switch ErrorCode(err) {
	case "", EINVALID, ETOOLARGE, ENOTFOUND, EFORBIDDEN, EUNAUTHORIZED, ECONFLICT, ERATELIMITED:
		// Answered, or rejected with the reason shown to the user (or,
		// over a rate limit, told once already): done.
		if err := w.deps.Inbox.Complete(hctx, ev.ID, w.cfg.Owner); err != nil {
			return true, WrapError(ErrorCode(err), err, "complete inbox event")
		}
		return true, nil
	}
	return true, w.retryOrDead(hctx, log, ev, msg, err)
}

// handleContext is the context of one turn: it outlives ctx (the
// worker's) by ShutdownGrace, then ends with the cause ErrShutdown.
func (w *Worker) handleContext(ctx context.Context) (context.Context, func()) {
	hctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	if w.cfg.ShutdownGrace <= 0 {
		return hctx, func() { cancel(nil) }
	}
	var timer *time.Timer
	var mu sync.Mutex
	stopWatch := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		timer = time.AfterFunc(w.cfg.ShutdownGrace, func() { cancel(ErrShutdown) })
	})
	return hctx, func() {
		stopWatch()
		mu.Lock()
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel(nil)
	}
}

// retryOrDead schedules another attempt with jittered exponential backoff,
// or gives up after MaxAttempts, telling the user through the adapter when
// it can (DeadLetterNotifier). The engine's notice has usually told them
// why already; a retry edits that notice into the answer.
func (w *Worker) retryOrDead(ctx context.Context, log *slog.Logger, ev *InboxEvent, msg Message, cause error) error {
	if ev.Attempts >= w.cfg.MaxAttempts {
		log.ErrorContext(ctx, "inbox event dead-lettered", "error", cause)
		if n, ok := w.deps.Repliers[ev.Platform].(DeadLetterNotifier); ok {
			if err := n.NotifyDeadLetter(ctx, ev, msg, ErrorMessage(cause)); err != nil {
				log.ErrorContext(ctx, "tell the user the message was dead-lettered", "error", err)
			}
		}
		return w.deps.Inbox.DeadLetter(ctx, ev.ID, w.cfg.Owner, cause.Error())
	}
	delay := w.cfg.BackoffBase << min(ev.Attempts-1, 16)
	if delay > w.cfg.BackoffMax || delay <= 0 {
		delay = w.cfg.BackoffMax
	}
	delay = delay/2 + rand.N(delay/2+1)
	log.WarnContext(ctx, "inbox event will be retried", "error", cause, "retry_in_ms", delay.Milliseconds())
	return w.deps.Inbox.Retry(ctx, ev.ID, w.cfg.Owner, time.Now().Add(delay), cause.Error())
}
