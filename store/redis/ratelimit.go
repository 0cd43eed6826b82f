package redis

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/convosphere/convosphere/engine"
)

// RateLimiter is an engine.RateLimiter whose token buckets live in Redis,
// shared by every replica. One script takes from all of a message's
// buckets at once, timed by the Redis server's clock.
type RateLimiter struct{ c *Client }

// RateLimiter returns the rate limiter of c.
func (c *Client) RateLimiter() *RateLimiter { return &RateLimiter{c: c} }

// takeTokens: KEYS are buckets; ARGV pairs are (limit, per in ms) per key.
// Each bucket is a hash {t: tokens, ts: last refill in ms, n: noticed}.
// Returns {allowed, index of the refusing key (1-based), wait ms, notify}.
var takeTokens = goredis.NewScript(`
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local tokens = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2*i-1])
  local per = tonumber(ARGV[2*i])
  local b = redis.call('HMGET', key, 't', 'ts', 'n')
  local t = tonumber(b[1])
  local ts = tonumber(b[2])
  if t == nil or ts == nil then t = limit; ts = ms end
  t = math.min(limit, t + (ms - ts) * limit / per)
  tokens[i] = t
  if t < 1 then
    local wait = math.ceil((1 - t) * per / limit)
    local notify = 0
    if b[3] == false then notify = 1 end
    redis.call('HSET', key, 't', tostring(t), 'ts', ms, 'n', 1)
    redis.call('PEXPIRE', key, per + 1000)
    return {0, i, wait, notify}
  end
end
for i, key in ipairs(KEYS) do
  local per = tonumber(ARGV[2*i])
  redis.call('HSET', key, 't', tostring(tokens[i] - 1), 'ts', ms)
  redis.call('HDEL', key, 'n')
  redis.call('PEXPIRE', key, per + 1000)
end
return {1, 0, 0, 0}`)

// Take implements engine.RateLimiter.
func (l *RateLimiter) Take(ctx context.Context, keys []engine.RateKey) (engine.RateDecision, error) {
	var (
		ks   []string
		args []any
		on   []engine.RateKey
	)
	for _, k := range keys {
		if !k.Rate.On() {
			continue
		}
		on = append(on, k)
		ks = append(ks, l.c.key("rate", k.Key))
		args = append(args, k.Rate.Limit, k.Rate.Per.Milliseconds())
	}
	if len(ks) == 0 {
		return engine.RateDecision{Allowed: true}, nil
	}
	res, err := takeTokens.Run(ctx, l.c.rdb, ks, args...).Int64Slice()
	if err != nil {
		return engine.RateDecision{}, unavailable(err, "rate limit")
	}
	if res[0] == 1 {
		return engine.RateDecision{Allowed: true}, nil
	}
	return engine.RateDecision{Key: on[res[1]-1].Key, RetryAfter: time.Duration(res[2]) * time.Millisecond, Notify: res[3] == 1}, nil
}
