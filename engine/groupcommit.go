package engine

import (
	"context"
	"sync"
	"time"
)

// GroupCommit turns concurrent calls into batches, so that a store writes
// many inbound events in one transaction (one commit, one WAL flush)
// instead of one each: under a burst, callers queue while a batch is
// written and the next batch takes them all.
//
// There is no goroutine of its own: the first caller to find no batch in
// progress writes batches until the queue is empty, then returns; the
// others wait for their result. A batch runs with a context of its own
// (not any caller's, whose cancellation would fail the others), bounded by
// Timeout.
type GroupCommit[T, R any] struct {
	Max     int           // items per batch; default 256
	Timeout time.Duration // limit of one batch; default 10s
	// Run writes a batch and returns one result per item, in order.
	Run func(ctx context.Context, items []T) []R

	mu      sync.Mutex
	queue   []*groupCall[T, R]
	running bool
}

type groupCall[T, R any] struct {
	item T
	res  R
	done chan struct{}
}

// Do adds item to the next batch and returns its result.
func (g *GroupCommit[T, R]) Do(ctx context.Context, item T) R {
	c := &groupCall[T, R]{item: item, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	if g.running {
		g.mu.Unlock()
		<-c.done
		return c.res
	}
	g.running = true
	for len(g.queue) > 0 {
		n := len(g.queue)
		if max := g.max(); n > max {
			n = max
		}
		batch := g.queue[:n:n]
		g.queue = append([]*groupCall[T, R](nil), g.queue[n:]...)
		g.mu.Unlock()
		g.run(ctx, batch)
		g.mu.Lock()
	}
	g.running = false
	g.mu.Unlock()
	<-c.done
	return c.res
}

func (g *GroupCommit[T, R]) max() int {
	if g.Max > 0 {
		return g.Max
	}
	return 256
}

func (g *GroupCommit[T, R]) run(ctx context.Context, batch []*groupCall[T, R]) {
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	items := make([]T, len(batch))
	for i, c := range batch {
		items[i] = c.item
	}
	results := g.Run(bctx, items)
	for i, c := range batch {
		if i < len(results) {
			c.res = results[i]
		}
		close(c.done)
	}
}
