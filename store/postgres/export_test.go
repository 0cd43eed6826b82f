package postgres

import (
	"context"

	"github.com/convosphere/convosphere/engine"
)

// EnqueueBatch runs the batch writer Enqueue's group commit uses.
func (db *DB) EnqueueBatch(ctx context.Context, evs []*engine.InboxEvent) []error {
	var errs []error
	for _, r := range db.enqueueBatch(ctx, evs) {
		errs = append(errs, r.err)
	}
	return errs
}

// ClaimSQL and ClaimSettings are what Claim runs, for plan tests.
var (
	ClaimSQL      = claimSQL
	ClaimSettings = claimSettings
)
