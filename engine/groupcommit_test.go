package engine_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// TestGroupCommit: concurrent calls are batched, each gets its own result,
// and no batch exceeds Max.
func TestGroupCommit(t *testing.T) {
	var batches, biggest atomic.Int32
	g := &engine.GroupCommit[int, int]{Max: 8, Run: func(_ context.Context, items []int) []int {
		batches.Add(1)
		if n := int32(len(items)); n > biggest.Load() {
			biggest.Store(n)
		}
		time.Sleep(2 * time.Millisecond) // a commit
		out := make([]int, len(items))
		for i, v := range items {
			out[i] = v * 10
		}
		return out
	}}
	const calls = 100
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			if got := g.Do(context.Background(), i); got != i*10 {
				t.Errorf("Do(%d) = %d, want %d", i, got, i*10)
			}
		})
	}
	wg.Wait()
	if b := batches.Load(); b >= calls || b < calls/8 {
		t.Errorf("%d batches for %d concurrent calls, want them batched (at most 8 each)", b, calls)
	}
	if biggest.Load() > 8 {
		t.Errorf("a batch of %d, over Max", biggest.Load())
	}
	// A canceled caller does not fail the batch it leads.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g.Run = func(ctx context.Context, items []int) []int {
		if ctx.Err() != nil {
			return []int{-1}
		}
		return []int{items[0]}
	}
	if got := g.Do(ctx, 7); got != 7 {
		t.Errorf("with a canceled caller: %d, want 7", got)
	}
}
