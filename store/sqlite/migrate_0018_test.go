package sqlite

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// TestMigration0018KeepsTheInbox upgrades a database at version 17 with
// events in its inbox: every event is kept with its seq and status, the
// arrival order goes on (a new event is claimed after the older ones), and
// the table no longer uses AUTOINCREMENT.
func TestMigration0018KeepsTheInbox(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := Open(ctx, Config{Path: path, SkipMigrations: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	files, err := migrationFiles()
	if err != nil {
		t.Fatal(err)
	}
	// The database as version 17 left it.
	err = db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`); err != nil {
			return err
		}
		for _, m := range files {
			if m.version > 17 {
				break
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (?, ?, ?)`, m.version, m.name, encTime(now())); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var old []*engine.InboxEvent
	for _, id := range []string{"O1", "O2", "O3"} {
		e := &engine.InboxEvent{Platform: engine.PlatformSlack, EventID: id, ThreadKey: "slack:C1:" + id, Payload: []byte(`{"id":"` + id + `"}`)}
		if _, err := db.Enqueue(ctx, e); err != nil {
			t.Fatal(err)
		}
		old = append(old, e)
	}
	first, err := db.Claim(ctx, "w", time.Hour)
	if err != nil || first.EventID != "O1" {
		t.Fatalf("Claim before the upgrade = %v, %v; want O1", first, err)
	}
	seqs := func() map[string]int64 {
		out := map[string]int64{}
		rows, err := db.r.QueryContext(ctx, `SELECT event_id, seq FROM inbox_events`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var seq int64
			if err := rows.Scan(&id, &seq); err != nil {
				t.Fatal(err)
			}
			out[id] = seq
		}
		return out
	}
	before := seqs()

	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	after := seqs()
	for id, seq := range before {
		if after[id] != seq {
			t.Errorf("%s: seq %d before the upgrade, %d after", id, seq, after[id])
		}
	}
	var ddl string
	if err := db.r.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE name = 'inbox_events'`).Scan(&ddl); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ddl, "AUTOINCREMENT") {
		t.Errorf("inbox_events still uses AUTOINCREMENT:\n%s", ddl)
	}
	// The leased event is still leased by w; the others come in order, then
	// the new one.
	if err := db.Complete(ctx, first.ID, "w"); err != nil {
		t.Fatalf("Complete the event leased before the upgrade: %v", err)
	}
	if _, err := db.Enqueue(ctx, &engine.InboxEvent{Platform: engine.PlatformSlack, EventID: "N1", ThreadKey: "slack:C1:N1"}); err != nil {
		t.Fatal(err)
	}
	if s := seqs()["N1"]; s <= before["O3"] {
		t.Errorf("new event's seq %d is not above the old ones' (%v)", s, before)
	}
	for _, want := range []string{"O2", "O3", "N1"} {
		e, err := db.Claim(ctx, "w", time.Hour)
		if err != nil || e.EventID != want {
			t.Fatalf("Claim after the upgrade = %v, %v; want %s", e, err, want)
		}
	}
}
