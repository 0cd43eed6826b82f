package engine

import (
	"context"
	"log/slog"
	"time"
)

// PurgeBatch is how many done events one PurgeInbox call deletes: small
// batches keep each delete short, so that acks waiting for the writer do
// not wait long.
const PurgeBatch = 500

// PurgeDone deletes the inbox's done events last updated before before,
// batch after batch, until none is left or ctx ends, and returns how many
// it deleted.
func PurgeDone(ctx context.Context, inbox Inbox, before time.Time) (int, error) {
	total := 0
	for {
		n, err := inbox.PurgeInbox(ctx, before, PurgeBatch)
		total += n
		if err != nil || n < PurgeBatch {
			return total, err
		}
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(10 * time.Millisecond): // let other writes through
		}
	}
}

// RunInboxPurge deletes, every interval until ctx ends, the done events
// older than retention: the inbox keeps an event's id that long to
// recognise the platform delivering it again (Slack retries within the
// hour), and no longer. The first purge runs a minute after the start (or
// after interval, when shorter).
func RunInboxPurge(ctx context.Context, inbox Inbox, retention, interval time.Duration, log *slog.Logger) {
	if retention <= 0 || interval <= 0 {
		return
	}
	wait := min(time.Minute, interval)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = interval
		start := time.Now()
		n, err := PurgeDone(ctx, inbox, start.Add(-retention))
		switch {
		case err != nil && ctx.Err() == nil:
			log.WarnContext(ctx, "inbox purge failed; it runs again later", "deleted", n, "error", err)
		case n > 0:
			log.InfoContext(ctx, "inbox purged", "deleted", n, "retention", retention.String(), "duration_ms", time.Since(start).Milliseconds())
		}
	}
}
