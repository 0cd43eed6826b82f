package engine

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Clone returns a deep copy of a.
func (a *Assistant) Clone() *Assistant {
	c := *a
	c.KnowledgeBases = slices.Clone(a.KnowledgeBases)
	c.Tools = slices.Clone(a.Tools)
	c.ToolPolicy = maps.Clone(a.ToolPolicy)
	c.Bindings = slices.Clone(a.Bindings)
	if a.Retrieval.Alpha != nil {
		alpha := *a.Retrieval.Alpha
		c.Retrieval.Alpha = &alpha
	}
	return &c
}

// DefaultAssistantCacheTTL bounds how stale a cached assistant may be when
// a change notice is lost (or, without Redis, comes from another process).
const DefaultAssistantCacheTTL = 5 * time.Second

// WithChangeNotices returns st with two additions. Changes of assistants,
// MCP servers and model providers made through it are published on n
// (TopicAssistants, TopicToolServers, TopicModelProviders), so every
// replica subscribed hears of them at once. And the assistants are read
// through a cache, dropped on every TopicAssistants notice and otherwise
// kept up to ttl (the engine reads them on every turn). Reads return
// copies: callers may change them.
func WithChangeNotices(ctx context.Context, st Store, n Notifier, ttl time.Duration, log *slog.Logger) Store {
	if ttl <= 0 {
		ttl = DefaultAssistantCacheTTL
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &changeStore{Store: st, n: n, ttl: ttl, log: log}
	SubscribeRetrying(ctx, n, TopicAssistants, c.forget, log)
	return c
}

type changeStore struct {
	Store
	n   Notifier
	ttl time.Duration
	log *slog.Logger

	mu     sync.Mutex
	list   []*Assistant
	at     time.Time
	epoch  int // bumped by forget: a load that began before it is not kept
	loadMu sync.Mutex
}

func (c *changeStore) forget() {
	c.mu.Lock()
	c.list, c.epoch = nil, c.epoch+1
	c.mu.Unlock()
}

// publish tells the replicas; the local cache is dropped first, so this
// process sees its own change even when the notice is lost.
func (c *changeStore) publish(ctx context.Context, topic string) {
	if topic == TopicAssistants {
		c.forget()
	}
	if err := c.n.Publish(context.WithoutCancel(ctx), topic); err != nil {
		c.log.WarnContext(ctx, "publish change; other replicas see it when their caches expire", "topic", topic, "error", err)
	}
}

// assistants returns the cached list (shared: callers copy).
func (c *changeStore) assistants(ctx context.Context) ([]*Assistant, error) {
	c.mu.Lock()
	list, fresh, epoch := c.list, c.list != nil && time.Since(c.at) < c.ttl, c.epoch
	c.mu.Unlock()
	if fresh {
		return list, nil
	}
	c.loadMu.Lock()
	defer c.loadMu.Unlock()
	c.mu.Lock()
	if c.list != nil && time.Since(c.at) < c.ttl { // loaded meanwhile
		list = c.list
		c.mu.Unlock()
		return list, nil
	}
	epoch = c.epoch
	c.mu.Unlock()
	list, err := c.Store.ListAssistants(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.epoch == epoch {
		c.list, c.at = list, time.Now()
	}
	c.mu.Unlock()
	return list, nil
}

func (c *changeStore) ListAssistants(ctx context.Context) ([]*Assistant, error) {
	list, err := c.assistants(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*Assistant, len(list))
	for i, a := range list {
		out[i] = a.Clone()
	}
	return out, nil
}

func (c *changeStore) AssistantByID(ctx context.Context, id string) (*Assistant, error) {
	if list, err := c.assistants(ctx); err == nil {
		for _, a := range list {
			if a.ID == id {
				return a.Clone(), nil
			}
		}
	}
	return c.Store.AssistantByID(ctx, id) // not cached yet, or the cache failed
}

func (c *changeStore) AssistantByName(ctx context.Context, name string) (*Assistant, error) {
	if list, err := c.assistants(ctx); err == nil {
		for _, a := range list {
			if strings.EqualFold(a.Name, name) {
				return a.Clone(), nil
			}
		}
	}
	return c.Store.AssistantByName(ctx, name)
}

func (c *changeStore) CreateAssistant(ctx context.Context, a *Assistant) error {
	err := c.Store.CreateAssistant(ctx, a)
	if err == nil {
		c.publish(ctx, TopicAssistants)
	}
	return err
}

func (c *changeStore) UpdateAssistant(ctx context.Context, a *Assistant) error {
	err := c.Store.UpdateAssistant(ctx, a)
	if err == nil {
		c.publish(ctx, TopicAssistants)
	}
	return err
}

func (c *changeStore) DeleteAssistant(ctx context.Context, id string) error {
	err := c.Store.DeleteAssistant(ctx, id)
	if err == nil {
		c.publish(ctx, TopicAssistants)
	}
	return err
}

func (c *changeStore) SaveToolServer(ctx context.Context, s *ToolServer) error {
	err := c.Store.SaveToolServer(ctx, s)
	if err == nil {
		c.publish(ctx, TopicToolServers)
	}
	return err
}

func (c *changeStore) DeleteToolServer(ctx context.Context, name string) error {
	err := c.Store.DeleteToolServer(ctx, name)
	if err == nil {
		c.publish(ctx, TopicToolServers)
	}
	return err
}

func (c *changeStore) SaveModelProvider(ctx context.Context, p *ModelProvider) error {
	err := c.Store.SaveModelProvider(ctx, p)
	if err == nil {
		c.publish(ctx, TopicModelProviders)
	}
	return err
}

func (c *changeStore) DeleteModelProvider(ctx context.Context, name string) error {
	err := c.Store.DeleteModelProvider(ctx, name)
	if err == nil {
		c.publish(ctx, TopicModelProviders)
	}
	return err
}

// SubscribeRetrying subscribes fn to topic on n, trying again every few
// seconds while n fails (Redis down at start), until ctx ends. fn is also
// called once the subscription starts after a failure, since changes may
// have been missed meanwhile.
func SubscribeRetrying(ctx context.Context, n Notifier, topic string, fn func(), log *slog.Logger) {
	if err := n.Subscribe(ctx, topic, fn); err == nil {
		return
	} else {
		log.WarnContext(ctx, "subscribe to changes; retrying", "topic", topic, "error", err)
	}
	go func() {
		for Sleep(ctx, Jitter(5*time.Second)) {
			if err := n.Subscribe(ctx, topic, fn); err == nil {
				fn()
				return
			}
		}
	}()
}
