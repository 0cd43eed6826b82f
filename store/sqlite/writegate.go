package sqlite

import (
	"context"
	"slices"
	"sync"
)

// writeGate decides who uses the writer connection next. database/sql
// hands its one writer connection to any of the goroutines waiting for it,
// so under load an inbox batch (a platform waiting for its ack: Slack
// allows 3 seconds, and the bench's target is 10 ms at p99) waited behind
// the workers' claims, traces and outbox records in random order. The gate
// lets one goroutine at a time use the writer (or wait for database/sql to
// free it) and, when it is released, lets in an urgent one first: the
// inbox's group commit goes before every other waiting write. Other
// writers are not starved: the group commit runs one batch at a time, so
// between two batches one waiting writer gets its turn.
//
// The gate orders the writer's users; it is not what makes them exclusive
// (database/sql's single connection is). So a *sql.Row or *sql.Rows that
// holds the connection a little after its query returned and the gate was
// released only makes the next user wait in database/sql for it.
type writeGate struct {
	mu     sync.Mutex
	held   bool
	urgent []chan struct{}
	others []chan struct{}
}

// enter waits for the gate, before every other writer when urgent. It
// fails only when ctx ends first.
func (g *writeGate) enter(ctx context.Context, urgent bool) error {
	g.mu.Lock()
	if !g.held {
		g.held = true
		g.mu.Unlock()
		return nil
	}
	turn := make(chan struct{})
	if urgent {
		g.urgent = append(g.urgent, turn)
	} else {
		g.others = append(g.others, turn)
	}
	g.mu.Unlock()
	select {
	case <-turn:
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	if i := slices.Index(g.urgent, turn); i >= 0 {
		g.urgent = slices.Delete(g.urgent, i, i+1)
		g.mu.Unlock()
		return ctx.Err()
	}
	if i := slices.Index(g.others, turn); i >= 0 {
		g.others = slices.Delete(g.others, i, i+1)
		g.mu.Unlock()
		return ctx.Err()
	}
	g.mu.Unlock()
	// The gate was handed over as ctx ended: pass it on.
	g.leave()
	return ctx.Err()
}

// leave hands the gate to the next waiter, urgent ones first.
func (g *writeGate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	var next chan struct{}
	switch {
	case len(g.urgent) > 0:
		next, g.urgent = g.urgent[0], g.urgent[1:]
	case len(g.others) > 0:
		next, g.others = g.others[0], g.others[1:]
	default:
		g.held = false
		return
	}
	close(next) // the gate stays held, by next
}
