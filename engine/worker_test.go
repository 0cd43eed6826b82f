package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
)

type errHandler struct {
	mu    sync.Mutex
	errs  []error
	calls int
}

func (h *errHandler) Handle(ctx context.Context, msg engine.Message, r engine.Replier) (*engine.Answer, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	var err error
	if len(h.errs) > 0 {
		err, h.errs = h.errs[0], h.errs[1:]
	}
	_ = r.Finish(ctx, engine.Answer{Text: "answer"})
	return &engine.Answer{}, err
}

type factory struct{ replier *enginetest.Replier }

func (f factory) Replier(context.Context, *engine.InboxEvent, engine.Message) (engine.Replier, error) {
	return f.replier, nil
}

func mustEnqueue(tb testing.TB, inbox engine.Inbox, platform engine.Platform, eventID, text string) *engine.InboxEvent {
	tb.Helper()
	msg := slackMessage("T-"+eventID, text)
	msg.ID = eventID
	payload, _ := json.Marshal(msg)
	ev := &engine.InboxEvent{Platform: platform, EventID: eventID, ThreadKey: msg.Thread.Key(), Payload: payload}
	inserted, err := inbox.Enqueue(context.Background(), ev)
	if err != nil || !inserted {
		tb.Fatalf("enqueue %s: inserted=%v err=%v", eventID, inserted, err)
	}
	return ev
}

func TestWorkerOutcomes(t *testing.T) {
	tests := []struct {
		name        string
		platform    engine.Platform
		errs        []error
		maxAttempts int
		runs        int
		status      engine.EventStatus
		calls       int
	}{
		{"answered", engine.PlatformSlack, nil, 3, 1, engine.EventDoneSt, 1},
		{"rejected input is done", engine.PlatformSlack, []error{engine.Errorf(engine.EINVALID, "empty")}, 3, 1, engine.EventDoneSt, 1},
		{"rate limited is done (told once, never retried)", engine.PlatformSlack, []error{engine.Errorf(engine.ERATELIMITED, "slow down")}, 3, 1, engine.EventDoneSt, 1},
		{"unavailable is retried", engine.PlatformSlack, []error{engine.Errorf(engine.EUNAVAILABLE, "down")}, 3, 1, engine.EventPending, 1},
		{"retried then answered", engine.PlatformSlack, []error{engine.Errorf(engine.EUNAVAILABLE, "down")}, 3, 2, engine.EventDoneSt, 2},
		{"dead after max attempts", engine.PlatformSlack, []error{engine.Errorf(engine.ETIMEOUT, "slow"), engine.Errorf(engine.ETIMEOUT, "slow")}, 2, 2, engine.EventDead, 2},
		{"no adapter for platform", engine.PlatformDiscord, nil, 3, 1, engine.EventDead, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFixture(t, engine.Config{})
			h := &errHandler{errs: tt.errs}
			w, err := engine.NewWorker(engine.WorkerConfig{MaxAttempts: tt.maxAttempts, BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond}, engine.WorkerDeps{
				Inbox: f.store, Handler: h, Repliers: map[engine.Platform]engine.ReplierFactory{engine.PlatformSlack: factory{&enginetest.Replier{}}},
			})
			if err != nil {
				t.Fatal(err)
			}
			ev := mustEnqueue(t, f.store, tt.platform, "E1", "hello")
			for i := range tt.runs {
				time.Sleep(5 * time.Millisecond) // past the backoff
				worked, err := w.ProcessOne(context.Background())
				if err != nil || !worked {
					t.Fatalf("run %d: worked=%v err=%v", i, worked, err)
				}
			}
			got, err := f.store.InboxEventByID(context.Background(), ev.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.status || h.calls != tt.calls {
				t.Fatalf("status %s after %d handler calls; want %s after %d (last error %q)", got.Status, h.calls, tt.status, tt.calls, got.LastError)
			}
		})
	}
}

func TestWorkerRunAnswersEveryEventOnce(t *testing.T) {
	f := mustFixture(t, engine.Config{})
	replier := &enginetest.Replier{}
	w, err := engine.NewWorker(engine.WorkerConfig{Concurrency: 3, PollInterval: 5 * time.Millisecond}, engine.WorkerDeps{
		Inbox: f.store, Handler: f.engine, Repliers: map[engine.Platform]engine.ReplierFactory{engine.PlatformSlack: factory{replier}},
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 12
	for i := range n {
		mustEnqueue(t, f.store, engine.PlatformSlack, "E"+string(rune('a'+i)), "question")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(replier.Finished()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if got := len(replier.Finished()); got != n {
		t.Fatalf("answered %d events, want %d", got, n)
	}
	if worked, err := w.ProcessOne(context.Background()); worked || err != nil {
		t.Fatalf("events left in the inbox: worked=%v err=%v", worked, err)
	}
}

// hookFactory prepares messages and records dead-letter notices.
type hookFactory struct {
	factory
	mu       sync.Mutex
	prepared []string
	dead     []string
}

func (f *hookFactory) PrepareMessage(_ context.Context, _ *engine.InboxEvent, msg *engine.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prepared = append(f.prepared, msg.ID)
	msg.User.Name = "Ada"
	msg.ThreadContext = []engine.ThreadLine{{User: "Bob", Text: "earlier"}}
	return nil
}

func (f *hookFactory) NotifyDeadLetter(_ context.Context, ev *engine.InboxEvent, _ engine.Message, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dead = append(f.dead, ev.EventID+": "+reason)
	return nil
}

// msgHandler records the messages it answers.
type msgHandler struct {
	errHandler
	msgs []engine.Message
}

func (h *msgHandler) Handle(ctx context.Context, msg engine.Message, r engine.Replier) (*engine.Answer, error) {
	h.mu.Lock()
	h.msgs = append(h.msgs, msg)
	h.mu.Unlock()
	return h.errHandler.Handle(ctx, msg, r)
}

func TestWorkerHooks(t *testing.T) {
	f := mustFixture(t, engine.Config{})
	hooks := &hookFactory{factory: factory{&enginetest.Replier{}}}
	h := &msgHandler{errHandler: errHandler{errs: []error{engine.Errorf(engine.EUNAVAILABLE, "The model is down.")}}}
	w, err := engine.NewWorker(engine.WorkerConfig{MaxAttempts: 1}, engine.WorkerDeps{
		Inbox: f.store, Handler: h, Repliers: map[engine.Platform]engine.ReplierFactory{engine.PlatformSlack: hooks},
	})
	if err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, f.store, engine.PlatformSlack, "E1", "hello")
	if _, err := w.ProcessOne(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(h.msgs) != 1 || h.msgs[0].User.Name != "Ada" || len(h.msgs[0].ThreadContext) != 1 {
		t.Errorf("handled %+v, want the prepared message", h.msgs)
	}
	if len(hooks.dead) != 1 || hooks.dead[0] != "E1: The model is down." {
		t.Errorf("dead-letter notices %q, want one for E1 with the reason", hooks.dead)
	}
}

// A turn still running ShutdownGrace after the worker was told to stop is
// interrupted: the partial answer is shown with a note, and the event is
// handed back so that a second worker (another replica) finishes it.
func TestWorkerHandsBackAtShutdown(t *testing.T) {
	f := mustFixture(t, engine.Config{})
	f.model.Script(enginetest.Reply{Chunks: []string{"The first half of the answer"}, Stall: true})
	first := &enginetest.Replier{}
	w, err := engine.NewWorker(engine.WorkerConfig{Concurrency: 1, PollInterval: 5 * time.Millisecond, ShutdownGrace: 200 * time.Millisecond},
		engine.WorkerDeps{Inbox: f.store, Handler: f.engine, Repliers: map[engine.Platform]engine.ReplierFactory{engine.PlatformSlack: factory{first}}})
	if err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, f.store, engine.PlatformSlack, "Ev-shutdown", "a long question")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(first.Updates()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if len(first.Updates()) == 0 {
		t.Fatal("the answer never started")
	}
	stopped := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the worker did not stop after its shutdown grace")
	}
	if waited := time.Since(stopped); waited < 200*time.Millisecond {
		t.Errorf("the turn was interrupted after %v, before its grace of 200ms", waited)
	}
	fin := first.Finished()
	if len(fin) != 1 || fin[0].Outcome != engine.OutcomeInterrupted || fin[0].Text != "The first half of the answer" ||
		!strings.Contains(fin[0].Notice, "restarted while answering; the answer continues in a moment") {
		t.Fatalf("finished = %+v, want the partial answer with the restart note", fin)
	}

	// The event is back in the inbox, available now: another worker ends it.
	f.model.Script(enginetest.Reply{Chunks: []string{"The whole answer."}})
	second := &enginetest.Replier{}
	w2, err := engine.NewWorker(engine.WorkerConfig{Concurrency: 1}, engine.WorkerDeps{Inbox: f.store, Handler: f.engine,
		Repliers: map[engine.Platform]engine.ReplierFactory{engine.PlatformSlack: factory{second}}})
	if err != nil {
		t.Fatal(err)
	}
	if worked, err := w2.ProcessOne(t.Context()); !worked || err != nil {
		t.Fatalf("the handed-back event was not claimable at once: worked=%v err=%v", worked, err)
	}
	if fin := second.Finished(); len(fin) != 1 || fin[0].Text != "The whole answer." || fin[0].Outcome != engine.OutcomeAnswered {
		t.Fatalf("second worker finished %+v", fin)
	}
}

// TestWorkerWakesOnEnqueue: with a poll interval far longer than the test,
// events stored through WakeOnEnqueue are answered at once, a burst by
// every worker, and a duplicate delivery wakes nobody.
func TestWorkerWakesOnEnqueue(t *testing.T) {
	f := mustFixture(t, engine.Config{})
	replier := &enginetest.Replier{}
	wake := engine.NewWakeup()
	store := engine.WakeOnEnqueue(f.store, wake)
	w, err := engine.NewWorker(engine.WorkerConfig{Concurrency: 3, PollInterval: time.Hour}, engine.WorkerDeps{
		Inbox: f.store, Handler: f.engine, Repliers: map[engine.Platform]engine.ReplierFactory{engine.PlatformSlack: factory{replier}},
		Wakeup: wake,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitAnswered := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for len(replier.Finished()) < n && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		if got := len(replier.Finished()); got != n {
			t.Fatalf("answered %d events, want %d (the workers were not woken)", got, n)
		}
	}
	time.Sleep(20 * time.Millisecond) // the workers found the inbox empty and wait
	mustEnqueue(t, store, engine.PlatformSlack, "W1", "question")
	waitAnswered(1)
	for i := range 9 {
		mustEnqueue(t, store, engine.PlatformSlack, fmt.Sprintf("W%d", i+2), "question")
	}
	waitAnswered(10)
	// A duplicate is not stored and wakes nobody: nothing new is answered.
	msg := slackMessage("T-W1", "question")
	payload, _ := json.Marshal(msg)
	if inserted, err := store.Enqueue(ctx, &engine.InboxEvent{Platform: engine.PlatformSlack, EventID: "W1", ThreadKey: msg.Thread.Key(), Payload: payload}); inserted || err != nil {
		t.Fatalf("duplicate: inserted=%v err=%v", inserted, err)
	}
	time.Sleep(20 * time.Millisecond)
	if got := len(replier.Finished()); got != 10 {
		t.Fatalf("%d answers after a duplicate delivery, want 10", got)
	}
}
