package redis_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
	"github.com/convosphere/convosphere/store/redis"
	"github.com/convosphere/convosphere/store/redis/redistest"
	"github.com/convosphere/convosphere/store/sqlite"
	"github.com/convosphere/convosphere/store/storetest"
)

func TestSessionsConformance(t *testing.T) {
	storetest.RunSessions(t, func(tb testing.TB) engine.Store {
		db, err := sqlite.Open(tb.Context(), sqlite.Config{Path: filepath.Join(tb.TempDir(), "c.db")})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = db.Close() })
		return redis.WithSessions(db, redistest.MustClient(tb, "").Sessions())
	})
}

func TestLockerConformance(t *testing.T) {
	prefix := redistest.Prefix()
	enginetest.RunLocker(t, func(tb testing.TB) engine.Locker {
		return redistest.MustClient(tb, prefix).Locker(0)
	})
}

func TestRateLimiterConformance(t *testing.T) {
	prefix := redistest.Prefix()
	enginetest.RunRateLimiter(t, func(tb testing.TB) engine.RateLimiter {
		return redistest.MustClient(tb, prefix).RateLimiter()
	})
}

func TestNotifierConformance(t *testing.T) {
	prefix := redistest.Prefix()
	enginetest.RunNotifier(t, func(tb testing.TB) engine.Notifier {
		return redistest.MustClient(tb, prefix).Notifier()
	})
}

// A lease is renewed while held, and ends as soon as Redis says another
// process holds the lock (here: the key was deleted and taken over).
func TestLockRenewalAndLoss(t *testing.T) {
	prefix := redistest.Prefix()
	a := redistest.MustClient(t, prefix).Locker(600 * time.Millisecond)
	b := redistest.MustClient(t, prefix).Locker(600 * time.Millisecond)
	ctx := t.Context()

	lease := enginetest.MustLease(t, a, "gateway")
	time.Sleep(1500 * time.Millisecond) // 2.5 TTLs: only renewals keep it
	if err := lease.Context().Err(); err != nil {
		t.Fatalf("a renewed lease ended: %v", context.Cause(lease.Context()))
	}
	if l, _ := b.TryLock(ctx, "gateway"); l != nil {
		t.Fatal("another replica took a held, renewed lock")
	}
	holder, err := a.Holder(ctx, "gateway")
	if err != nil || holder != lease.Token() {
		t.Fatalf("Holder = %d, %v; want %d", holder, err, lease.Token())
	}

	// The lock is lost (an operator flushed it, or it expired while this
	// process was paused) and another replica takes it.
	raw := redistest.MustClient(t, prefix)
	if err := raw.DeleteForTest(ctx, "lock:gateway"); err != nil {
		t.Fatal(err)
	}
	taker := enginetest.MustLease(t, b, "gateway")
	defer taker.Release()
	select {
	case <-lease.Context().Done():
		if !errors.Is(context.Cause(lease.Context()), redis.ErrLockLost) {
			t.Errorf("cause = %v, want ErrLockLost", context.Cause(lease.Context()))
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the old holder did not notice it lost the lock")
	}
	lease.Release() // must not free the new holder's lock
	if holder, _ := a.Holder(ctx, "gateway"); holder != taker.Token() || taker.Token() <= lease.Token() {
		t.Fatalf("holder %d after the stale release; want the taker's token %d (> %d)", holder, taker.Token(), lease.Token())
	}
}

// With Redis down the locker, limiter and sessions answer EUNAVAILABLE
// (callers then fall back: rate limits fail open, locks are retried).
func TestRedisDown(t *testing.T) {
	c, err := redis.Open(t.Context(), redis.Config{URL: redistest.URL(t)})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if _, err := redis.Open(t.Context(), redis.Config{URL: "redis://127.0.0.1:1/0"}); engine.ErrorCode(err) != engine.EUNAVAILABLE {
		t.Errorf("Open of a closed port: %v, want EUNAVAILABLE", err)
	}
	checks := []struct {
		name string
		err  func() error
	}{
		{"TryLock", func() error { _, err := c.Locker(0).TryLock(t.Context(), "k"); return err }},
		{"Take", func() error {
			_, err := c.RateLimiter().Take(t.Context(), []engine.RateKey{{Key: "k", Rate: engine.Rate{Limit: 1, Per: time.Second}}})
			return err
		}},
		{"SessionByTokenHash", func() error { _, err := c.Sessions().SessionByTokenHash(t.Context(), "h"); return err }},
		{"Publish", func() error { return c.Notifier().Publish(t.Context(), "t") }},
	}
	for _, tt := range checks {
		if code := engine.ErrorCode(tt.err()); code != engine.EUNAVAILABLE {
			t.Errorf("%s on a closed client: code %q, want %q", tt.name, code, engine.EUNAVAILABLE)
		}
	}
}
