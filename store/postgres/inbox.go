package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convosphere/convosphere/engine"
)

const inboxColumns = `id, platform, event_id, thread_key, payload, status, attempts, lease_owner, leased_until,
	available_at, last_error, received_at, updated_at`

func scanInboxEvent(s scanner) (*engine.InboxEvent, error) {
	var e engine.InboxEvent
	err := s.Scan(&e.ID, &e.Platform, &e.EventID, &e.ThreadKey, &e.Payload, &e.Status, &e.Attempts, &e.LeaseOwner,
		timeCol{&e.LeasedUntil}, timeCol{&e.AvailableAt}, &e.LastError, timeCol{&e.ReceivedAt}, timeCol{&e.UpdatedAt})
	if err != nil {
		return nil, err
	}
	if e.Payload == nil {
		e.Payload = []byte{}
	}
	return &e, nil
}

// Enqueue stores e as a pending event unless (Platform, EventID) is already
// stored, and reports whether it was inserted; either way e is filled with
// the stored record. The defaults of a new event (an empty ThreadKey becomes
// "platform:event_id", a zero ReceivedAt or AvailableAt becomes now) are
// those of engine.InboxEvent.Normalize.
//
// Concurrent calls are written together, in one transaction
// (engine.GroupCommit): a burst of events costs one commit per batch.
func (db *DB) Enqueue(ctx context.Context, e *engine.InboxEvent) (bool, error) {
	in := *e
	if err := in.Normalize(now()); err != nil {
		return false, err
	}
	r := db.enqueue.Do(ctx, &in)
	switch {
	case duplicate(r.err):
		return false, engine.WrapError(engine.ECONFLICT, r.err, "Inbox event %q already exists.", in.ID)
	case r.err != nil:
		return false, fmt.Errorf("enqueue event: %w", r.err)
	case r.inserted:
		*e = in
		return true, nil
	}
	stored, err := scanInboxEvent(db.pool.QueryRow(ctx, `SELECT `+inboxColumns+` FROM inbox_events
		WHERE platform = $1 AND event_id = $2`, string(e.Platform), e.EventID))
	if err != nil {
		return false, fmt.Errorf("enqueue event: read duplicate: %w", err)
	}
	*e = *stored
	return false, nil
}

const enqueueSQL = `INSERT INTO inbox_events (id, platform, event_id, thread_key, payload, status,
		attempts, lease_owner, available_at, last_error, received_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, 0, '', $7, '', $8, $9)
		ON CONFLICT (platform, event_id) DO NOTHING`

// enqueueArgs are the arguments of enqueueSQL for a normalised event.
func enqueueArgs(in *engine.InboxEvent) []any {
	return []any{in.ID, string(in.Platform), in.EventID, in.ThreadKey, in.Payload, string(in.Status),
		in.AvailableAt, in.ReceivedAt, in.UpdatedAt}
}

// enqueueTx stores e as Enqueue does, but in tx, outside the group commit:
// it normalises e and reports whether it was inserted (false when its
// (Platform, EventID) is stored already). e is filled in when it was.
func enqueueTx(ctx context.Context, tx pgx.Tx, e *engine.InboxEvent) (bool, error) {
	in := *e
	if err := in.Normalize(now()); err != nil {
		return false, err
	}
	tag, err := tx.Exec(ctx, enqueueSQL, enqueueArgs(&in)...)
	if err != nil {
		return false, fmt.Errorf("enqueue event: %w", err)
	}
	if tag.RowsAffected() == 1 {
		*e = in
		return true, nil
	}
	return false, nil
}

// enqueued is the outcome of one event of a batch.
type enqueued struct {
	inserted bool
	err      error
}

// enqueueBatch inserts normalised events in one transaction: the batch is
// sent in one round trip and runs as PostgreSQL's implicit transaction of
// a pipeline (committed at its Sync), so a batch costs one round trip
// rather than three (BEGIN, the inserts, COMMIT).
func (db *DB) enqueueBatch(ctx context.Context, evs []*engine.InboxEvent) []enqueued {
	results := make([]enqueued, len(evs))
	batch := &pgx.Batch{}
	for _, in := range evs {
		batch.Queue(enqueueSQL, enqueueArgs(in)...)
	}
	br := db.pool.SendBatch(ctx, batch)
	failed := false
	for i := range evs {
		tag, err := br.Exec()
		results[i] = enqueued{inserted: err == nil && tag.RowsAffected() == 1, err: err}
		failed = failed || err != nil
	}
	if err := br.Close(); err != nil {
		failed = true
		failAll(results, err)
	}
	if !failed || len(evs) == 1 {
		return results
	}
	// A failed statement aborts the implicit transaction, and with it the
	// rest of the batch: write each event on its own instead, so one bad
	// event fails alone.
	for i, in := range evs {
		results[i] = db.enqueueBatch(ctx, []*engine.InboxEvent{in})[0]
	}
	return results
}

func failAll(results []enqueued, err error) []enqueued {
	for i := range results {
		results[i] = enqueued{err: err}
	}
	return results
}

// prefixed returns the column list with each column qualified by alias.
func prefixed(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

var claimSQL = `WITH next AS (
		SELECT e.id FROM inbox_events e
		WHERE e.status IN ('pending', 'leased')
			AND ((e.status = 'pending' AND e.available_at <= $3) OR (e.status = 'leased' AND e.leased_until <= $3))
			AND NOT EXISTS (
				SELECT 1 FROM inbox_events o
				WHERE o.thread_key = e.thread_key AND o.status IN ('pending', 'leased')
					AND (o.seq < e.seq OR (o.status = 'leased' AND o.leased_until > $3))
			)
		ORDER BY e.seq
		LIMIT 1
		FOR UPDATE OF e SKIP LOCKED
	)
	UPDATE inbox_events i
	SET status = 'leased', attempts = i.attempts + 1, lease_owner = $1, leased_until = $2, updated_at = $3
	FROM next WHERE i.id = next.id
	RETURNING ` + prefixed("i", inboxColumns)

// PurgeInbox deletes up to limit done events updated before before,
// oldest first. It walks the table in seq order, where old done events
// come first, so a batch reads about as many rows as it deletes.
func (db *DB) PurgeInbox(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, engine.Errorf(engine.EINVALID, "Purging the inbox needs a positive limit.")
	}
	tag, err := db.pool.Exec(ctx, `DELETE FROM inbox_events WHERE seq IN (
		SELECT seq FROM inbox_events WHERE status = 'done' AND updated_at < $1 ORDER BY seq LIMIT $2)`,
		engine.StoredTime(before), limit)
	if err != nil {
		return 0, fmt.Errorf("purge inbox: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// claimSettings pin the claim's plan, within its transaction, to the one
// that stays cheap with any backlog: walk inbox_events_unfinished in seq
// order, look up each candidate's thread in inbox_events_thread, stop at
// the first event it can take. The planner picks plans from statistics,
// and those of a quiet inbox (few unfinished events among many done) made
// it read and sort every unfinished event instead; PostgreSQL then keeps
// that plan for the prepared statement. After a burst (100k events
// waiting, bench/slack) each claim took 1.5 s of the server's CPU and acks
// stalled for seconds. Turning the alternatives off (they only get a huge
// cost) leaves the ordered walk; TestClaimPlanWithABacklog checks the plan.
var claimSettings = []string{
	`SET LOCAL enable_seqscan = off`,
	`SET LOCAL enable_bitmapscan = off`,
	`SET LOCAL enable_sort = off`,
	`SET LOCAL enable_hashjoin = off`,
	`SET LOCAL enable_mergejoin = off`,
}

// Claim leases the oldest available event (pending and due, or leased with
// an expired lease) whose thread has no older unfinished event and no other
// event under an unexpired lease, incrementing Attempts. ENOTFOUND when
// none is ready. Concurrent claimers skip the rows others have locked.
//
// The claim runs in a transaction with claimSettings, sent with it in one
// round trip.
func (db *DB) Claim(ctx context.Context, owner string, lease time.Duration) (*engine.InboxEvent, error) {
	if owner == "" || lease <= 0 {
		return nil, engine.Errorf(engine.EINVALID, "Claiming an inbox event needs an owner and a positive lease.")
	}
	at := now()
	batch := &pgx.Batch{}
	batch.Queue(`BEGIN`)
	for _, s := range claimSettings {
		batch.Queue(s)
	}
	batch.Queue(claimSQL, owner, engine.StoredTime(at.Add(lease)), at)
	batch.Queue(`COMMIT`)
	br := db.pool.SendBatch(ctx, batch)
	var err error
	for range 1 + len(claimSettings) {
		if _, err = br.Exec(); err != nil {
			break
		}
	}
	var e *engine.InboxEvent
	if err == nil {
		e, err = scanInboxEvent(br.QueryRow())
		if err == nil || errors.Is(err, pgx.ErrNoRows) {
			if _, cerr := br.Exec(); cerr != nil { // COMMIT
				err = cerr
			}
		}
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, engine.Errorf(engine.ENOTFOUND, "No inbox event is ready.")
	case err != nil:
		return nil, fmt.Errorf("claim inbox event: %w", err)
	}
	return e, nil
}

// finish moves a leased event owned by owner to another status, or explains
// why it cannot: ENOTFOUND for an unknown id, ECONFLICT when owner does not
// hold the lease (it was never leased, was finished, or another worker
// claimed it after the lease expired). An expired lease that nobody took
// over still belongs to its owner. set refers to its arguments as $1...
func (db *DB) finish(ctx context.Context, op, id, owner, set string, args ...any) error {
	n := len(args)
	args = append(args, now(), id, owner)
	tag, err := db.pool.Exec(ctx, fmt.Sprintf(`UPDATE inbox_events SET %s, updated_at = $%d
		WHERE id = $%d AND status = 'leased' AND lease_owner = $%d`, set, n+1, n+2, n+3), args...)
	if err != nil {
		return fmt.Errorf("%s inbox event: %w", op, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	e, err := db.InboxEventByID(ctx, id)
	if err != nil {
		return err
	}
	return engine.Errorf(engine.ECONFLICT, "Inbox event %q is not leased by %q (status %s, owner %q).", id, owner, e.Status, e.LeaseOwner)
}

// Complete marks a leased event done.
func (db *DB) Complete(ctx context.Context, id, owner string) error {
	return db.finish(ctx, "complete", id, owner, `status = 'done', leased_until = NULL`)
}

// Retry releases a leased event to be claimed again at at (now when zero).
func (db *DB) Retry(ctx context.Context, id, owner string, at time.Time, errMsg string) error {
	if at.IsZero() {
		at = time.Now()
	}
	return db.finish(ctx, "retry", id, owner,
		`status = 'pending', lease_owner = '', leased_until = NULL, available_at = $1, last_error = $2`, engine.StoredTime(at), errMsg)
}

// DeadLetter gives up on a leased event.
func (db *DB) DeadLetter(ctx context.Context, id, owner, errMsg string) error {
	return db.finish(ctx, "dead-letter", id, owner, `status = 'dead', leased_until = NULL, last_error = $1`, errMsg)
}

// InboxEventByID returns the inbox event with the id.
func (db *DB) InboxEventByID(ctx context.Context, id string) (*engine.InboxEvent, error) {
	e, err := scanInboxEvent(db.pool.QueryRow(ctx, `SELECT `+inboxColumns+` FROM inbox_events WHERE id = $1`, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, notFound("Inbox event", id)
	case err != nil:
		return nil, fmt.Errorf("get inbox event: %w", err)
	}
	return e, nil
}

// RecordOutbound stores m, replacing an earlier record of the same
// (Platform, EventID, Part). A zero CreatedAt becomes now.
func (db *DB) RecordOutbound(ctx context.Context, m *engine.OutboundMessage) error {
	if err := m.Normalize(now()); err != nil {
		return err
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO outbound_messages (platform, event_id, part, channel_id, message_id, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (platform, event_id, part) DO UPDATE SET channel_id = excluded.channel_id,
			message_id = excluded.message_id, created_at = excluded.created_at`,
		string(m.Platform), m.EventID, m.Part, m.ChannelID, m.MessageID, m.CreatedAt)
	if err != nil {
		return fmt.Errorf("record outbound message: %w", err)
	}
	return nil
}

// Outbound returns the messages posted for an event, ordered by Part.
func (db *DB) Outbound(ctx context.Context, platform engine.Platform, eventID string) ([]*engine.OutboundMessage, error) {
	rows, err := db.pool.Query(ctx, `SELECT platform, event_id, part, channel_id, message_id, created_at
		FROM outbound_messages WHERE platform = $1 AND event_id = $2 ORDER BY part`, string(platform), eventID)
	if err != nil {
		return nil, fmt.Errorf("list outbound messages: %w", err)
	}
	list, err := collect(rows, func(s scanner) (*engine.OutboundMessage, error) {
		var m engine.OutboundMessage
		if err := s.Scan(&m.Platform, &m.EventID, &m.Part, &m.ChannelID, &m.MessageID, timeCol{&m.CreatedAt}); err != nil {
			return nil, err
		}
		return &m, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list outbound messages: %w", err)
	}
	return list, nil
}
