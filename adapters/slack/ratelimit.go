package slack

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// maxRateLimitWaits bounds how often one call waits out a 429 before its
// error goes back to the worker (whose retry has its own backoff).
const maxRateLimitWaits = 3

// maxRetryAfter caps a Retry-After Slack asks for.
const maxRetryAfter = 2 * time.Minute

// rateGate holds back calls to a Web API method in a channel while Slack
// has asked to wait (429 Retry-After). Slack limits per method and per
// channel, so one gate per (method, channel): every worker posting to that
// channel waits the same Retry-After instead of each finding out with a
// 429 of its own, and the rest of the workspace goes on.
type rateGate struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func (g *rateGate) wait(ctx context.Context, key string, now func() time.Time) error {
	g.mu.Lock()
	until := g.until[key]
	g.mu.Unlock()
	d := until.Sub(now())
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// blocked reports whether calls of key must wait now.
func (g *rateGate) blocked(key string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.until[key].After(now)
}

func (g *rateGate) block(key string, until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.until == nil {
		g.until = make(map[string]time.Time)
	}
	if until.After(g.until[key]) {
		g.until[key] = until
	}
	// Forget gates long past, so the map stays small.
	if len(g.until) > 1024 {
		for k, u := range g.until {
			if u.Before(until.Add(-time.Hour)) {
				delete(g.until, k)
			}
		}
	}
}

// call runs one Web API call through the gate of (method, channel),
// waiting out 429s at most maxRateLimitWaits times, and returns its error
// with the engine's code (apiError).
func (a *Adapter) call(ctx context.Context, method, channel string, fn func(context.Context) error) error {
	key := method + " " + channel
	for waits := 0; ; waits++ {
		if err := a.gate.wait(ctx, key, a.now); err != nil {
			return apiError(method, err)
		}
		err := fn(ctx)
		var rl *slack.RateLimitedError
		if !errors.As(err, &rl) || waits == maxRateLimitWaits {
			return apiError(method, err)
		}
		retry := min(max(rl.RetryAfter, time.Second), maxRetryAfter)
		a.log.WarnContext(ctx, "slack rate limit", "method", method, "channel", channel, "retry_after_ms", retry.Milliseconds())
		a.gate.block(key, a.now().Add(retry))
	}
}

// callCosmetic is call for what only decorates an answer (the working
// status): it never waits. While the gate of (method, channel) is closed
// it skips the call, and a 429 closes the gate and is not an error, so a
// rate-limited reaction never holds an answer back.
func (a *Adapter) callCosmetic(ctx context.Context, method, channel string, fn func(context.Context) error) error {
	key := method + " " + channel
	if a.gate.blocked(key, a.now()) {
		return nil
	}
	err := fn(ctx)
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		a.gate.block(key, a.now().Add(min(max(rl.RetryAfter, time.Second), maxRetryAfter)))
		a.log.DebugContext(ctx, "slack rate limit on a status call; skipped", "method", method, "channel", channel)
		return nil
	}
	return apiError(method, err)
}
