// Package redis keeps what several replicas share when redis.url is set:
// console sessions (Sessions), leader locks with fencing tokens (Locker),
// rate limit buckets (RateLimiter), change notices over pub/sub (Notifier)
// and a short-lived cache of assistants (AssistantCache). PostgreSQL stays
// the system of record; losing Redis loses sessions and counters, nothing
// else.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/convosphere/convosphere/engine"
)

// DefaultPrefix starts every key, so one Redis can serve other programs.
const DefaultPrefix = "convosphere:"

// Config opens a Client.
type Config struct {
	URL    string // redis://[user:password@]host:port/db or rediss://
	Prefix string // default DefaultPrefix
	Logger *slog.Logger
}

// Client is a connection pool to Redis with the key prefix.
type Client struct {
	rdb    *goredis.Client
	prefix string
	log    *slog.Logger
}

// Open connects and checks the server answers.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	opts, err := goredis.ParseURL(cfg.URL)
	if err != nil {
		return nil, engine.WrapError(engine.EINVALID, err, "redis.url is not a Redis URL (redis://host:6379/0)")
	}
	c := newClient(opts, cfg)
	if err := c.Ping(ctx); err != nil {
		_ = c.rdb.Close()
		return nil, err
	}
	return c, nil
}

// New returns a client without contacting the server: it connects on
// first use (and again after each failure). cfg.URL must have passed
// Open's parsing (config validation checks it); a URL that does not parse
// gives a client whose every call fails.
func New(cfg Config) *Client {
	opts, err := goredis.ParseURL(cfg.URL)
	if err != nil {
		opts = &goredis.Options{Addr: "invalid-redis-url:0"}
	}
	return newClient(opts, cfg)
}

// quietOnce routes go-redis's own log lines (pool dial failures, which
// would repeat every few milliseconds while Redis is down) to the debug
// level of the default logger; callers log the failures that matter.
var quietOnce sync.Once

type debugLogger struct{}

func (debugLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}

func newClient(opts *goredis.Options, cfg Config) *Client {
	quietOnce.Do(func() { goredis.SetLogger(debugLogger{}) })
	opts.DialTimeout = 3 * time.Second
	opts.ReadTimeout = 2 * time.Second
	opts.WriteTimeout = 2 * time.Second
	opts.MaxRetries = 1
	c := &Client{rdb: goredis.NewClient(opts), prefix: cfg.Prefix, log: cfg.Logger}
	if c.prefix == "" {
		c.prefix = DefaultPrefix
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("component", "redis")
	return c
}

// Ping checks the server answers (readiness).
func (c *Client) Ping(ctx context.Context) error {
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return unavailable(err, "ping")
	}
	return nil
}

// Close closes the pool.
func (c *Client) Close() error { return c.rdb.Close() }

// key prefixes parts.
func (c *Client) key(parts ...string) string {
	k := c.prefix
	for i, p := range parts {
		if i > 0 {
			k += ":"
		}
		k += p
	}
	return k
}

// unavailable wraps a Redis failure as EUNAVAILABLE.
func unavailable(err error, what string) error {
	return engine.WrapError(engine.EUNAVAILABLE, fmt.Errorf("redis %s: %w", what, err), "Redis is unavailable")
}

// isNil reports a missing key.
func isNil(err error) bool { return errors.Is(err, goredis.Nil) }

// DeleteForTest deletes a key (under the prefix); tests use it to simulate
// an operator's flush or an expiry.
func (c *Client) DeleteForTest(ctx context.Context, key string) error {
	return c.rdb.Del(ctx, c.prefix+key).Err()
}
