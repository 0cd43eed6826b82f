package sqlite

import (
	"context"
	"database/sql"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// waitQueued waits until the gate has n waiters.
func waitQueued(t *testing.T, g *writeGate, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		g.mu.Lock()
		q := len(g.urgent) + len(g.others)
		g.mu.Unlock()
		if q == n {
			return
		}
	}
	t.Fatalf("the gate never had %d waiters", n)
}

// TestWriteGateOrder: while the gate is held, writers queue; on release an
// urgent one goes first (in arrival order among urgent ones), then the
// others in arrival order, one at a time.
func TestWriteGateOrder(t *testing.T) {
	var g writeGate
	ctx := t.Context()
	if err := g.enter(ctx, false); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	arrivals := []struct {
		name   string
		urgent bool
	}{{"o1", false}, {"o2", false}, {"u1", true}, {"o3", false}, {"u2", true}}
	for i, a := range arrivals {
		wg.Go(func() {
			if err := g.enter(ctx, a.urgent); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, a.name)
			mu.Unlock()
			g.leave()
		})
		waitQueued(t, &g, i+1) // arrive in this order
	}
	g.leave()
	wg.Wait()
	if want := []string{"u1", "u2", "o1", "o2", "o3"}; !slices.Equal(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
	if g.held || len(g.urgent)+len(g.others) != 0 {
		t.Errorf("gate after everyone left: held %v, %d urgent and %d other waiters", g.held, len(g.urgent), len(g.others))
	}
}

// TestWriteGateCancel: a waiter whose context ends leaves the queue with
// the context's error, and the gate goes on to the next one.
func TestWriteGateCancel(t *testing.T) {
	var g writeGate
	if err := g.enter(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	gave := make(chan error, 1)
	go func() { gave <- g.enter(ctx, true) }()
	waitQueued(t, &g, 1)
	got := make(chan error, 1)
	go func() { got <- g.enter(t.Context(), false) }()
	waitQueued(t, &g, 2)
	cancel()
	if err := <-gave; err != context.Canceled {
		t.Fatalf("cancelled waiter: %v, want context.Canceled", err)
	}
	g.leave()
	if err := <-got; err != nil {
		t.Fatalf("next waiter: %v", err)
	}
	g.leave()
	if g.held {
		t.Error("gate still held")
	}
}

// TestWriteGateHandOverRace: contexts ending while the gate is handed to
// them never lose it: many writers, half with contexts that end at once,
// and the gate ends free.
func TestWriteGateHandOverRace(t *testing.T) {
	var g writeGate
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(t.Context())
			if i%2 == 0 {
				go cancel()
			}
			defer cancel()
			if err := g.enter(ctx, i%3 == 0); err == nil {
				time.Sleep(10 * time.Microsecond)
				g.leave()
			}
		})
	}
	wg.Wait()
	if g.held || len(g.urgent)+len(g.others) != 0 {
		t.Errorf("gate after everyone left: held %v, %d urgent and %d other waiters", g.held, len(g.urgent), len(g.others))
	}
}

// TestInboxWriteGoesFirst: while a transaction holds the writer and other
// writes wait for it, an inbox event that arrives last is written first.
func TestInboxWriteGoesFirst(t *testing.T) {
	ctx := t.Context()
	db, err := Open(ctx, Config{Path: t.TempDir() + "/gate.db"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	started, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- db.write(ctx, func(*sql.Tx) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	done := func(name string, err error) {
		if err != nil {
			t.Error(name, err)
		}
		mu.Lock()
		order = append(order, name)
		mu.Unlock()
	}
	for range 3 {
		wg.Go(func() {
			_, err := db.w.ExecContext(ctx, `UPDATE inbox_events SET attempts = attempts WHERE seq < 0`)
			done("other", err)
		})
	}
	waitQueued(t, db.w.gate, 3)
	wg.Go(func() {
		_, err := db.Enqueue(ctx, &engine.InboxEvent{Platform: engine.PlatformSlack, EventID: "EvFirst"})
		done("inbox", err)
	})
	waitQueued(t, db.w.gate, 4)
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if want := []string{"inbox", "other", "other", "other"}; !slices.Equal(order, want) {
		t.Errorf("writes finished in the order %v, want %v", order, want)
	}
}
