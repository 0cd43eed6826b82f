package engine

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// Locker elects the one process that holds a single-connection resource,
// such as a bot account's websocket or gateway session. TryLock returns a
// Lease when this process got the lock, nil (and no error) when another
// holds it. The embedded default uses a LocalLocker; several replicas need
// a shared one (store/redis).
type Locker interface {
	TryLock(ctx context.Context, key string) (*Lease, error)
}

// ErrLeaseReleased is the cause of a lease's context after Release.
var ErrLeaseReleased = errors.New("lock released")

// Lease is a held lock. Its Context ends when the lock is released, when
// the context it was taken with ends, or when the locker can no longer
// vouch for it (Lost: the lock expired or another process took it); the
// holder then stops using the resource. Token is the lock's fencing token:
// it grows each time the key is taken, so a holder that lost the lock can
// be told from the one that took it over.
type Lease struct {
	ctx     context.Context
	cancel  context.CancelCauseFunc
	token   int64
	once    sync.Once
	release func()
}

// NewLease returns a lease on a lock taken under parent; release gives the
// lock back (called once, by Release).
func NewLease(parent context.Context, token int64, release func()) *Lease {
	ctx, cancel := context.WithCancelCause(parent)
	return &Lease{ctx: ctx, cancel: cancel, token: token, release: release}
}

// Context ends when the lease does; context.Cause says why.
func (l *Lease) Context() context.Context { return l.ctx }

// Token is the fencing token.
func (l *Lease) Token() int64 { return l.token }

// Lost ends the lease because the lock is no longer held.
func (l *Lease) Lost(err error) { l.cancel(err) }

// Release gives the lock back and ends the lease; later calls do nothing.
func (l *Lease) Release() {
	l.once.Do(func() {
		l.cancel(ErrLeaseReleased)
		if l.release != nil {
			l.release()
		}
	})
}

// AcquireLock waits until this process holds key, trying again every
// retry while another holds it (or the locker fails, which is logged). It
// returns nil when ctx ends first.
func AcquireLock(ctx context.Context, l Locker, key string, retry time.Duration, log *slog.Logger) *Lease {
	for {
		lease, err := l.TryLock(ctx, key)
		if lease != nil {
			log.InfoContext(ctx, "lock acquired", "lock", key, "fencing_token", lease.Token())
			return lease
		}
		if err != nil {
			log.WarnContext(ctx, "lock unavailable; retrying", "lock", key, "error", err)
		}
		if !Sleep(ctx, Jitter(retry)) {
			return nil
		}
	}
}

// LocalLocker is a Locker within one process.
type LocalLocker struct {
	mu     sync.Mutex
	held   map[string]bool
	tokens map[string]int64
}

// ProcessLocks is the process-wide LocalLocker.
var ProcessLocks = &LocalLocker{}

// TryLock implements Locker.
func (l *LocalLocker) TryLock(ctx context.Context, key string) (*Lease, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil {
		l.held, l.tokens = make(map[string]bool), make(map[string]int64)
	}
	if l.held[key] {
		return nil, nil
	}
	l.held[key] = true
	l.tokens[key]++
	return NewLease(ctx, l.tokens[key], func() {
		l.mu.Lock()
		delete(l.held, key)
		l.mu.Unlock()
	}), nil
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
