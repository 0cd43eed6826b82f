package web

import (
	"strings"
	"sync"
	"time"
)

// throttle counts failed sign-ins in memory, per client IP and name and
// per client IP alone, and pauses a key that failed too often within the
// window. It is deliberately simple: one process, forgotten on restart.
type throttle struct {
	limit  int // failures per (IP, name) in a window; an IP alone gets 4×
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*failures
}

type failures struct {
	count int
	since time.Time // start of the window
}

// maxThrottleEntries bounds the map; expired entries are swept beyond it.
const maxThrottleEntries = 10_000

func newThrottle(limit int, window time.Duration, now func() time.Time) *throttle {
	return &throttle{limit: limit, window: window, now: now, entries: map[string]*failures{}}
}

func throttleKeys(ip, name string) (pair, ipOnly string) {
	return "n\x00" + ip + "\x00" + strings.ToLower(name), "i\x00" + ip
}

// wait returns how long the client must wait before trying again; 0 when
// it may try now.
func (t *throttle) wait(ip, name string) time.Duration {
	pair, ipOnly := throttleKeys(ip, name)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var longest time.Duration
	for _, k := range []struct {
		key   string
		limit int
	}{{pair, t.limit}, {ipOnly, 4 * t.limit}} {
		f, ok := t.entries[k.key]
		if !ok {
			continue
		}
		if left := f.since.Add(t.window).Sub(now); left <= 0 {
			delete(t.entries, k.key)
		} else if f.count >= k.limit && left > longest {
			longest = left
		}
	}
	return longest
}

// fail records a failed sign-in.
func (t *throttle) fail(ip, name string) {
	pair, ipOnly := throttleKeys(ip, name)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.entries) >= maxThrottleEntries {
		t.sweep(now)
	}
	for _, k := range []string{pair, ipOnly} {
		f, ok := t.entries[k]
		if !ok || !now.Before(f.since.Add(t.window)) {
			f = &failures{since: now}
			t.entries[k] = f
		}
		f.count++
	}
}

// succeed forgets the failures of (ip, name) after a successful sign-in.
func (t *throttle) succeed(ip, name string) {
	pair, _ := throttleKeys(ip, name)
	t.mu.Lock()
	delete(t.entries, pair)
	t.mu.Unlock()
}

func (t *throttle) sweep(now time.Time) {
	for k, f := range t.entries {
		if !now.Before(f.since.Add(t.window)) {
			delete(t.entries, k)
		}
	}
}
