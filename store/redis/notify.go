package redis

import (
	"context"

	"github.com/convosphere/convosphere/engine"
)

// Notifier is an engine.Notifier over Redis pub/sub: every replica
// subscribed to a topic hears each Publish at once.
type Notifier struct{ c *Client }

// Notifier returns the notifier of c.
func (c *Client) Notifier() *Notifier { return &Notifier{c: c} }

// Publish implements engine.Notifier.
func (n *Notifier) Publish(ctx context.Context, topic string) error {
	if err := n.c.rdb.Publish(ctx, n.c.key("changes", topic), "1").Err(); err != nil {
		return unavailable(err, "publish")
	}
	return nil
}

// Subscribe implements engine.Notifier. The subscription survives Redis
// restarts (go-redis reconnects and subscribes again); a notice published
// while a subscriber was cut off is lost, which the caches' short expiries
// cover.
func (n *Notifier) Subscribe(ctx context.Context, topic string, fn func()) error {
	sub := n.c.rdb.Subscribe(ctx, n.c.key("changes", topic))
	if _, err := sub.Receive(ctx); err != nil { // the subscription confirmation
		_ = sub.Close()
		return unavailable(err, "subscribe")
	}
	ch := sub.Channel()
	go func() {
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-ch:
				if !ok {
					return
				}
				fn()
			}
		}
	}()
	return nil
}

var _ engine.Notifier = (*Notifier)(nil)
