package redis

import (
	"context"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/convosphere/convosphere/engine"
)

// DefaultLockTTL is how long a leader lock outlives its last renewal.
const DefaultLockTTL = 15 * time.Second

// ErrLockLost is the cause of a lease's context when Redis says another
// process holds the lock now, or when the lease could not be renewed for
// half its TTL (so it ends before another process can take it).
var ErrLockLost = errors.New("leader lock lost")

// Locker is an engine.Locker over Redis: SET NX with a TTL, renewed every
// TTL/3 while held. Its value is a fencing token from a counter that only
// grows (INCR), so a renewal or release by a holder that lost the lock
// changes nothing.
type Locker struct {
	c   *Client
	ttl time.Duration
}

// Locker returns a Locker whose locks expire ttl after their last renewal
// (DefaultLockTTL when ttl is 0).
func (c *Client) Locker(ttl time.Duration) *Locker {
	if ttl <= 0 {
		ttl = DefaultLockTTL
	}
	return &Locker{c: c, ttl: ttl}
}

// renewLock extends the lock when it still holds our token.
var renewLock = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)

// releaseLock deletes the lock when it still holds our token.
var releaseLock = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// TryLock implements engine.Locker.
func (l *Locker) TryLock(ctx context.Context, key string) (*engine.Lease, error) {
	c := l.c
	lockKey := c.key("lock", key)
	if held, err := c.rdb.Exists(ctx, lockKey).Result(); err != nil {
		return nil, unavailable(err, "read lock")
	} else if held == 1 {
		return nil, nil // held: do not burn a token
	}
	token, err := c.rdb.Incr(ctx, c.key("fence", key)).Result()
	if err != nil {
		return nil, unavailable(err, "fencing token")
	}
	ok, err := c.rdb.SetNX(ctx, lockKey, token, l.ttl).Result()
	if err != nil {
		return nil, unavailable(err, "take lock")
	}
	if !ok {
		return nil, nil
	}
	release := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := releaseLock.Run(rctx, c.rdb, []string{lockKey}, token).Err(); err != nil {
			c.log.WarnContext(rctx, "release lock; it expires by itself", "lock", key, "error", err)
		}
	}
	lease := engine.NewLease(ctx, token, release)
	go l.renew(lease, lockKey, key, token)
	return lease, nil
}

// renew keeps the lock while the lease lasts; it ends the lease when Redis
// says the lock is gone or another holds it, or when no renewal succeeded
// for half the TTL.
func (l *Locker) renew(lease *engine.Lease, lockKey, key string, token int64) {
	ctx := lease.Context()
	tick := time.NewTicker(l.ttl / 3)
	defer tick.Stop()
	renewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, l.ttl/4)
		n, err := renewLock.Run(rctx, l.c.rdb, []string{lockKey}, token, l.ttl.Milliseconds()).Int()
		cancel()
		switch {
		case err == nil && n == 1:
			renewed = time.Now()
		case err == nil:
			l.c.log.Warn("leader lock lost: another process holds it", "lock", key, "fencing_token", token)
			lease.Lost(ErrLockLost)
			return
		case time.Since(renewed) > l.ttl/2:
			l.c.log.Warn("leader lock not renewed; giving it up", "lock", key, "fencing_token", token, "error", err)
			lease.Lost(ErrLockLost)
			return
		default:
			l.c.log.Warn("renew leader lock; retrying", "lock", key, "error", err)
		}
	}
}

// Holder returns the fencing token of the lock's holder (0 when free).
func (l *Locker) Holder(ctx context.Context, key string) (int64, error) {
	v, err := l.c.rdb.Get(ctx, l.c.key("lock", key)).Int64()
	if isNil(err) {
		return 0, nil
	}
	if err != nil {
		return 0, unavailable(err, "read lock")
	}
	return v, nil
}
