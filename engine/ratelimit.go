package engine

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// Rate is a token bucket: up to Limit events at once, refilled at Limit
// per Per. A zero Limit means no limit.
type Rate struct {
	Limit int
	Per   time.Duration
}

// On reports whether the rate limits anything.
func (r Rate) On() bool { return r.Limit > 0 && r.Per > 0 }

// String is "20/1m0s".
func (r Rate) String() string { return fmt.Sprintf("%d/%s", r.Limit, r.Per) }

// RateKey is one bucket to take a token from: Key names it (say
// "user:slack:U123"), Rate sizes it.
type RateKey struct {
	Key  string
	Rate Rate
}

// RateDecision is a RateLimiter's answer.
type RateDecision struct {
	Allowed bool
	// Key is the bucket that refused (when not Allowed).
	Key string
	// RetryAfter is how long until that bucket has a token again.
	RetryAfter time.Duration
	// Notify is true for the first refusal since the bucket last allowed
	// an event: that one gets a notice, the ones after it do not.
	Notify bool
}

// RateLimiter takes one token from each of several buckets at once: from
// all of them when each has one, else from none. The embedded default is
// a LocalRateLimiter; replicas share one in Redis (store/redis).
type RateLimiter interface {
	Take(ctx context.Context, keys []RateKey) (RateDecision, error)
}

// RateLimits are the engine's limits per user, channel and assistant.
type RateLimits struct {
	User      Rate
	Channel   Rate
	Assistant Rate
}

// keys lists the buckets of a message to assistant a.
func (l RateLimits) keys(msg Message, a *Assistant) []RateKey {
	var keys []RateKey
	p := string(msg.Thread.Channel.Platform)
	if l.User.On() && msg.User.ID != "" {
		keys = append(keys, RateKey{Key: "user:" + p + ":" + msg.User.ID, Rate: l.User})
	}
	if l.Channel.On() && msg.Thread.Channel.ID != "" {
		keys = append(keys, RateKey{Key: "channel:" + p + ":" + msg.Thread.Channel.ID, Rate: l.Channel})
	}
	if l.Assistant.On() && a != nil {
		keys = append(keys, RateKey{Key: "assistant:" + a.ID, Rate: l.Assistant})
	}
	return keys
}

// bucket is one token bucket's state.
type bucket struct {
	tokens   float64
	at       time.Time
	noticed  bool
	capacity float64
}

// refill adds the tokens earned since b.at at rate r.
func (b *bucket) refill(now time.Time, r Rate) {
	perSecond := float64(r.Limit) / r.Per.Seconds()
	b.tokens = math.Min(float64(r.Limit), b.tokens+now.Sub(b.at).Seconds()*perSecond)
	b.at = now
}

// LocalRateLimiter is a RateLimiter within one process.
type LocalRateLimiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	now     func() time.Time // for tests; nil: time.Now
	swept   time.Time
}

// Take implements RateLimiter.
func (l *LocalRateLimiter) Take(_ context.Context, keys []RateKey) (RateDecision, error) {
	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = make(map[string]*bucket)
	}
	l.sweep(now)
	bs := make([]*bucket, len(keys))
	for i, k := range keys {
		if !k.Rate.On() {
			continue
		}
		b := l.buckets[k.Key]
		if b == nil {
			b = &bucket{tokens: float64(k.Rate.Limit), at: now}
			l.buckets[k.Key] = b
		}
		b.capacity = float64(k.Rate.Limit)
		b.refill(now, k.Rate)
		bs[i] = b
	}
	for i, b := range bs {
		if b == nil || b.tokens >= 1 {
			continue
		}
		r := keys[i].Rate
		wait := time.Duration((1 - b.tokens) / float64(r.Limit) * float64(r.Per))
		d := RateDecision{Key: keys[i].Key, RetryAfter: max(wait, time.Millisecond), Notify: !b.noticed}
		b.noticed = true
		return d, nil
	}
	for _, b := range bs {
		if b != nil {
			b.tokens--
			b.noticed = false
		}
	}
	return RateDecision{Allowed: true}, nil
}

// sweep forgets full buckets once a minute, so memory stays bounded by
// the senders of the last while.
func (l *LocalRateLimiter) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Minute {
		return
	}
	l.swept = now
	for k, b := range l.buckets {
		if b.tokens >= b.capacity && now.Sub(b.at) > time.Minute {
			delete(l.buckets, k)
		}
	}
}
