package engine

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// Locker elects the one process that holds a single-connection resource,
// such as a bot account's websocket or gateway session: TryLock returns a
// release function when this process got the lock. The embedded default
// uses a LocalLocker; several replicas need a shared one (Redis).
type Locker interface {
	TryLock(ctx context.Context, key string) (release func(), ok bool, err error)
}

// LocalLocker is a Locker within one process.
type LocalLocker struct {
	mu   sync.Mutex
	held map[string]bool
}

// ProcessLocks is the process-wide LocalLocker.
var ProcessLocks = &LocalLocker{}

// TryLock implements Locker.
func (l *LocalLocker) TryLock(_ context.Context, key string) (func(), bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil {
		l.held = make(map[string]bool)
	}
	if l.held[key] {
		return nil, false, nil
	}
	l.held[key] = true
	return func() {
		l.mu.Lock()
		delete(l.held, key)
		l.mu.Unlock()
	}, true, nil
}

// Sleep waits d, or less when ctx ends first; it reports whether the wait
// was complete.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Jitter returns a duration between d/2 and d, so that retries spread.
func Jitter(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }

// Display is the text a chat shows for an answer: the answer with its
// notice appended (in italics), the notice alone when there is no answer.
func (a Answer) Display() string {
	text := strings.TrimSpace(a.Text)
	notice := strings.TrimSpace(a.Notice)
	switch {
	case text == "" && notice == "":
		return "I have no answer to that."
	case text == "":
		return "⚠️ " + notice
	case notice != "":
		return text + "\n\n⚠️ _" + notice + "_"
	}
	return text
}
