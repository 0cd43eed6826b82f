package engine

import (
	"context"
	"sync"
)

// Change topics: what a Notifier's subscribers hear about.
const (
	TopicAssistants     = "assistants"      // an assistant was created, changed or deleted
	TopicToolServers    = "tool_servers"    // an MCP server was added, changed or removed
	TopicModelProviders = "model_providers" // a model provider was saved or deleted
)

// Notifier tells every process that something changed, so caches are
// dropped at once instead of when they expire. Delivery is best effort:
// caches keep short expiries for the message that is lost. The embedded
// default is a LocalNotifier; replicas share Redis pub/sub (store/redis).
type Notifier interface {
	Publish(ctx context.Context, topic string) error
	// Subscribe calls fn (on its own goroutine, in order) for each change
	// of topic until ctx ends.
	Subscribe(ctx context.Context, topic string, fn func()) error
}

// LocalNotifier is a Notifier within one process.
type LocalNotifier struct {
	mu   sync.Mutex
	subs map[string][]chan struct{}
}

// Publish implements Notifier.
func (n *LocalNotifier) Publish(_ context.Context, topic string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, ch := range n.subs[topic] {
		select {
		case ch <- struct{}{}:
		default: // a change is pending already: one call covers both
		}
	}
	return nil
}

// Subscribe implements Notifier.
func (n *LocalNotifier) Subscribe(ctx context.Context, topic string, fn func()) error {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	if n.subs == nil {
		n.subs = make(map[string][]chan struct{})
	}
	n.subs[topic] = append(n.subs[topic], ch)
	n.mu.Unlock()
	go func() {
		defer func() {
			n.mu.Lock()
			subs := n.subs[topic]
			for i, c := range subs {
				if c == ch {
					n.subs[topic] = append(subs[:i:i], subs[i+1:]...)
					break
				}
			}
			n.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				fn()
			}
		}
	}()
	return nil
}
