package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/store/sqlite"
)

// TestPurgeDone deletes every done event older than the cutoff, over
// several batches, and nothing else.
func TestPurgeDone(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "p.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const done = engine.PurgeBatch*2 + 7
	for i := range done {
		e := &engine.InboxEvent{Platform: engine.PlatformSlack, EventID: fmt.Sprintf("Ev%05d", i)}
		if _, err := db.Enqueue(ctx, e); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Claim(ctx, "w", time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := db.Complete(ctx, e.ID, "w"); err != nil {
			t.Fatal(err)
		}
	}
	waiting := &engine.InboxEvent{Platform: engine.PlatformSlack, EventID: "EvWaiting"}
	if _, err := db.Enqueue(ctx, waiting); err != nil {
		t.Fatal(err)
	}
	n, err := engine.PurgeDone(ctx, db, time.Now().Add(time.Second))
	if err != nil || n != done {
		t.Fatalf("PurgeDone = %d, %v; want %d", n, err, done)
	}
	if _, err := db.InboxEventByID(ctx, waiting.ID); err != nil {
		t.Errorf("the waiting event after the purge: %v", err)
	}
	if n, err := engine.PurgeDone(ctx, db, time.Now().Add(time.Second)); err != nil || n != 0 {
		t.Errorf("second PurgeDone = %d, %v; want 0", n, err)
	}
}

// failingInbox fails every purge.
type failingInbox struct{ engine.Inbox }

func (failingInbox) PurgeInbox(context.Context, time.Time, int) (int, error) {
	return 0, engine.Errorf(engine.EUNAVAILABLE, "The database is unavailable.")
}

// TestRunInboxPurge: without a retention the purge does not run at all
// (it returns at once); with one, it stops with its context, and a purge
// that fails is logged and tried again.
func TestRunInboxPurge(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	done := make(chan struct{})
	go func() {
		engine.RunInboxPurge(t.Context(), failingInbox{}, 0, time.Hour, log)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunInboxPurge with no retention did not return")
	}
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() {
		engine.RunInboxPurge(ctx, failingInbox{}, time.Hour, time.Hour, log)
		close(stopped)
	}()
	cancel()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("RunInboxPurge did not stop with its context")
	}
	if strings.Contains(logs.String(), "purge") {
		t.Errorf("logs: %s", logs.String())
	}

	// A failing purge is logged and tried again at the next interval.
	ctx, cancel = context.WithCancel(t.Context())
	stopped = make(chan struct{})
	go func() {
		engine.RunInboxPurge(ctx, failingInbox{}, time.Hour, 10*time.Millisecond, log)
		close(stopped)
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	<-stopped
	if got := strings.Count(logs.String(), "inbox purge failed"); got < 2 {
		t.Errorf("failed purges logged %d times, want every interval:\n%s", got, logs.String())
	}
}
