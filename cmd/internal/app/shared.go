package app

import (
	"context"
	"log/slog"

	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/store/redis"
)

// openShared sets what replicas share: through Redis when redis.url is
// set, else in-process. A Redis that does not answer at start is not
// fatal: the client reconnects by itself, the callers fall back (rate
// limits fail open, locks are retried) and /readyz reports it.
func (a *App) openShared(ctx context.Context, cfg config.Config, logger *slog.Logger) {
	a.Locker, a.Notifier, a.Limiter = engine.ProcessLocks, &engine.LocalNotifier{}, &engine.LocalRateLimiter{}
	if cfg.Redis.URL == "" {
		return
	}
	c, err := redis.Open(ctx, redis.Config{URL: cfg.Redis.URL, Logger: logger})
	if err != nil {
		logger.Error("Redis (redis.url) does not answer; carrying on, it is retried on use", "error", err)
		c = redis.New(redis.Config{URL: cfg.Redis.URL, Logger: logger})
	}
	a.Redis = c
	a.Store = redis.WithSessions(a.Store, c.Sessions())
	a.Locker, a.Notifier, a.Limiter = c.Locker(0), c.Notifier(), c.RateLimiter()
	logger.Info("redis on: sessions, rate limits, locks and change notices are shared")
}

// subscribeChanges makes this process act on the change notices of the
// others: MCP servers and model providers are read again at once (the
// assistants' cache subscribes by itself, in engine.WithChangeNotices).
func (a *App) subscribeChanges(ctx context.Context, logger *slog.Logger) {
	engine.SubscribeRetrying(ctx, a.Notifier, engine.TopicToolServers, a.Tools.Invalidate, logger)
	engine.SubscribeRetrying(ctx, a.Notifier, engine.TopicModelProviders, func() {
		if err := a.ModelRouter.Refresh(ctx); err != nil {
			logger.WarnContext(ctx, "read model providers after a change", "error", err)
		}
	}, logger)
}
