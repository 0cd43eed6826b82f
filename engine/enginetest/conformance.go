package enginetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// RunLocker is the conformance suite of engine.Locker implementations.
// newLocker returns lockers that share their locks (two replicas).
func RunLocker(t *testing.T, newLocker func(tb testing.TB) engine.Locker) {
	t.Run("exclusive", func(t *testing.T) {
		a, b := newLocker(t), newLocker(t)
		ctx := t.Context()
		key := "k-" + engine.NewID()
		first := MustLease(t, a, key)
		if l, err := b.TryLock(ctx, key); l != nil || err != nil {
			t.Fatalf("a held lock was taken again (lease %v, error %v)", l != nil, err)
		}
		other := MustLease(t, b, key+"-other")
		other.Release()
		first.Release()
		if cause := context.Cause(first.Context()); !errors.Is(cause, engine.ErrLeaseReleased) {
			t.Errorf("released lease's context cause = %v, want ErrLeaseReleased", cause)
		}
		second := MustLease(t, b, key)
		defer second.Release()
		if second.Token() <= first.Token() {
			t.Errorf("fencing token did not grow: %d then %d", first.Token(), second.Token())
		}
		first.Release() // a second Release is harmless and must not free the new holder's lock
		if l, _ := a.TryLock(ctx, key); l != nil {
			t.Fatal("a stale Release freed the new holder's lock")
		}
	})
	t.Run("one winner among concurrent takers", func(t *testing.T) {
		key := "k-" + engine.NewID()
		var wins atomic.Int32
		var wg sync.WaitGroup
		leases := make(chan *engine.Lease, 8)
		for range 8 {
			l := newLocker(t)
			wg.Go(func() {
				lease, err := l.TryLock(t.Context(), key)
				if err != nil {
					t.Error(err)
				}
				if lease != nil {
					wins.Add(1)
					leases <- lease
				}
			})
		}
		wg.Wait()
		close(leases)
		for l := range leases {
			l.Release()
		}
		if wins.Load() != 1 {
			t.Fatalf("%d takers got the lock, want 1", wins.Load())
		}
	})
	t.Run("ends with its context", func(t *testing.T) {
		l := newLocker(t)
		ctx, cancel := context.WithCancel(t.Context())
		key := "k-" + engine.NewID()
		lease, err := l.TryLock(ctx, key)
		if lease == nil || err != nil {
			t.Fatalf("TryLock = %v, %v", lease, err)
		}
		cancel()
		select {
		case <-lease.Context().Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the lease outlived the context it was taken with")
		}
		lease.Release()
		MustLease(t, newLocker(t), key).Release()
	})
}

// MustLease takes key with l or fails the test.
func MustLease(tb testing.TB, l engine.Locker, key string) *engine.Lease {
	tb.Helper()
	lease, err := l.TryLock(tb.Context(), key)
	if err != nil || lease == nil {
		tb.Fatalf("TryLock(%q) = lease %v, error %v; want the lock", key, lease != nil, err)
	}
	return lease
}

// RunRateLimiter is the conformance suite of engine.RateLimiter
// implementations. newLimiter returns limiters that share their buckets.
func RunRateLimiter(t *testing.T, newLimiter func(tb testing.TB) engine.RateLimiter) {
	take := func(t *testing.T, l engine.RateLimiter, keys ...engine.RateKey) engine.RateDecision {
		t.Helper()
		d, err := l.Take(t.Context(), keys)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	t.Run("burst then refusal with one notice", func(t *testing.T) {
		a, b := newLimiter(t), newLimiter(t)
		user := engine.RateKey{Key: "user:" + engine.NewID(), Rate: engine.Rate{Limit: 3, Per: time.Hour}}
		for i := range 3 {
			l := a
			if i%2 == 1 {
				l = b // the replicas share the bucket
			}
			if d := take(t, l, user); !d.Allowed {
				t.Fatalf("event %d of a burst of 3 refused: %+v", i+1, d)
			}
		}
		d := take(t, a, user)
		if d.Allowed || d.Key != user.Key || !d.Notify {
			t.Fatalf("4th event: %+v, want refused by %s with a notice", d, user.Key)
		}
		if d.RetryAfter <= 0 || d.RetryAfter > 20*time.Minute+time.Second {
			t.Errorf("RetryAfter = %v, want about 20m (one token at 3/h)", d.RetryAfter)
		}
		if d := take(t, b, user); d.Allowed || d.Notify {
			t.Fatalf("5th event: %+v, want refused without a second notice", d)
		}
	})
	t.Run("refills", func(t *testing.T) {
		l := newLimiter(t)
		k := engine.RateKey{Key: "user:" + engine.NewID(), Rate: engine.Rate{Limit: 2, Per: 200 * time.Millisecond}}
		take(t, l, k)
		take(t, l, k)
		if d := take(t, l, k); d.Allowed {
			t.Fatal("3rd event of 2 allowed")
		}
		time.Sleep(250 * time.Millisecond)
		if d := take(t, l, k); !d.Allowed {
			t.Fatalf("refused after the bucket refilled: %+v", d)
		}
	})
	t.Run("all or nothing across buckets", func(t *testing.T) {
		l := newLimiter(t)
		user := engine.RateKey{Key: "user:" + engine.NewID(), Rate: engine.Rate{Limit: 5, Per: time.Hour}}
		channel := engine.RateKey{Key: "channel:" + engine.NewID(), Rate: engine.Rate{Limit: 1, Per: time.Hour}}
		if d := take(t, l, user, channel); !d.Allowed {
			t.Fatalf("first event refused: %+v", d)
		}
		if d := take(t, l, user, channel); d.Allowed || d.Key != channel.Key {
			t.Fatalf("second event: %+v, want refused by the channel", d)
		}
		// The refusal took nothing from the user's bucket: 4 tokens left.
		for i := range 4 {
			if d := take(t, l, user); !d.Allowed {
				t.Fatalf("user event %d refused: the channel's refusal used the user's tokens", i+1)
			}
		}
		if d := take(t, l, user); d.Allowed {
			t.Fatal("the user got more than 5 events")
		}
	})
	t.Run("no limit", func(t *testing.T) {
		l := newLimiter(t)
		for range 50 {
			if d := take(t, l, engine.RateKey{Key: "off"}); !d.Allowed {
				t.Fatal("a zero rate refused an event")
			}
		}
	})
}

// RunNotifier is the conformance suite of engine.Notifier implementations.
// newNotifier returns notifiers that share their topics.
func RunNotifier(t *testing.T, newNotifier func(tb testing.TB) engine.Notifier) {
	pub, sub1, sub2 := newNotifier(t), newNotifier(t), newNotifier(t)
	topic := "topic-" + engine.NewID()
	got1, got2 := make(chan struct{}, 10), make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(t.Context())
	for _, s := range []struct {
		n  engine.Notifier
		ch chan struct{}
	}{{sub1, got1}, {sub2, got2}} {
		if err := s.n.Subscribe(ctx, topic, func() { s.ch <- struct{}{} }); err != nil {
			t.Fatal(err)
		}
	}
	other := make(chan struct{}, 10)
	if err := sub1.Subscribe(ctx, topic+"-other", func() { other <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(t.Context(), topic); err != nil {
		t.Fatal(err)
	}
	for i, ch := range []chan struct{}{got1, got2} {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("subscriber %d did not hear the change", i+1)
		}
	}
	select {
	case <-other:
		t.Fatal("a subscriber of another topic heard the change")
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	time.Sleep(100 * time.Millisecond)
	if err := pub.Publish(t.Context(), topic); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got1:
		t.Fatal("a cancelled subscription still heard changes")
	case <-time.After(200 * time.Millisecond):
	}
}
