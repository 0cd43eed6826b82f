package sqlite_test

import (
	"bufio"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/store/sqlite"
	"github.com/convosphere/convosphere/store/storetest"
)

// MustOpen opens a store on a new file in a temporary directory and closes
// it when tb ends.
func MustOpen(tb testing.TB) *sqlite.DB {
	tb.Helper()
	return mustOpenPath(tb, filepath.Join(tb.TempDir(), "convosphere.db"), false)
}

func mustOpenPath(tb testing.TB, path string, skipMigrations bool) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(tb.Context(), sqlite.Config{Path: path, SkipMigrations: skipMigrations})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(tb testing.TB) engine.Store { return MustOpen(tb) })
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  sqlite.Config
		ok   bool
	}{
		{"path", sqlite.Config{Path: "data/convosphere.db"}, true},
		{"empty path", sqlite.Config{}, false},
		{"query in path", sqlite.Config{Path: "x.db?mode=ro"}, false},
		{"in memory", sqlite.Config{Path: ":memory:"}, false},
		{"uri", sqlite.Config{Path: "file:x.db"}, false},
		{"negative busy timeout", sqlite.Config{Path: "x.db", BusyTimeout: -time.Second}, false},
		{"negative read connections", sqlite.Config{Path: "x.db", MaxReadConns: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.ok && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if !tt.ok {
				storetest.MustCode(t, err, engine.EINVALID)
			}
		})
	}
	_, err := sqlite.Open(t.Context(), sqlite.Config{})
	storetest.MustCode(t, err, engine.EINVALID)
}

func versions(tb testing.TB, path string) []int {
	tb.Helper()
	conn, err := sql.Open("sqlite", path)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.QueryContext(tb.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			tb.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestMigrations(t *testing.T) {
	storetest.RunMigrations(t, func(t *testing.T) storetest.Database {
		path := filepath.Join(t.TempDir(), "sub", "dir", "convosphere.db") // directories are created
		return storetest.Database{
			Open: func(tb testing.TB, skipMigrations bool) storetest.Migrator {
				return mustOpenPath(tb, path, skipMigrations)
			},
			Versions: func(tb testing.TB) []int { return versions(tb, path) },
		}
	})
}

// TestClaimAcrossHandles claims one inbox from several handles on one file
// (as separate processes would) while new events arrive: no event is
// claimed twice, none is lost, and no call fails with SQLITE_BUSY.
func TestClaimAcrossHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "convosphere.db")
	producer := mustOpenPath(t, path, false)
	const handles, workersPerHandle, events = 3, 2, 60
	dbs := make([]*sqlite.DB, handles)
	for i := range dbs {
		dbs[i] = mustOpenPath(t, path, false)
	}
	var (
		mu       sync.Mutex
		claimed  = map[string]string{}
		wg       sync.WaitGroup
		produced = make(chan struct{})
	)
	wg.Go(func() {
		defer close(produced)
		for i := range events {
			e := &engine.InboxEvent{Platform: engine.PlatformSlack, EventID: fmt.Sprintf("E%03d", i),
				ThreadKey: fmt.Sprintf("thread-%d", i%7), Payload: []byte("{}")}
			if _, err := producer.Enqueue(t.Context(), e); err != nil {
				t.Errorf("Enqueue: %v", err)
				return
			}
		}
	})
	for h, db := range dbs {
		for w := range workersPerHandle {
			owner := fmt.Sprintf("h%d-w%d", h, w)
			wg.Go(func() {
				deadline := time.Now().Add(30 * time.Second)
				for time.Now().Before(deadline) {
					e, err := db.Claim(t.Context(), owner, time.Hour)
					if engine.IsNotFound(err) {
						select {
						case <-produced:
							mu.Lock()
							n := len(claimed)
							mu.Unlock()
							if n == events {
								return
							}
						default:
						}
						time.Sleep(time.Millisecond)
						continue
					}
					if err != nil {
						t.Errorf("Claim by %s: %v", owner, err)
						return
					}
					mu.Lock()
					if prev, dup := claimed[e.ID]; dup {
						t.Errorf("event %s claimed by %s and %s", e.EventID, prev, owner)
					}
					claimed[e.ID] = owner
					mu.Unlock()
					if err := db.Complete(t.Context(), e.ID, owner); err != nil {
						t.Errorf("Complete by %s: %v", owner, err)
						return
					}
				}
				t.Errorf("worker %s gave up", owner)
			})
		}
	}
	wg.Wait()
	storetest.MustEqual(t, "events claimed", len(claimed), events)
}

func TestStoredFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "convosphere.db")
	db := mustOpenPath(t, path, false)
	u := &engine.User{Name: "alice", Role: engine.RoleAdmin}
	storetest.Must(t, db.CreateUser(t.Context(), u))

	conn, err := sql.Open("sqlite", path)
	storetest.Must(t, err)
	defer conn.Close()
	var mode, created string
	storetest.Must(t, conn.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode))
	storetest.MustEqual(t, "journal mode", mode, "wal")
	storetest.Must(t, conn.QueryRowContext(t.Context(), `SELECT created_at FROM users WHERE id = ?`, u.ID).Scan(&created))
	storetest.MustEqual(t, "stored time", created, u.CreatedAt.Format("2006-01-02T15:04:05.000000Z"))
}

const workerEnv = "CONVOSPHERE_SQLITE_CLAIM_WORKER"

// TestClaimAcrossProcesses runs two worker processes (this test binary)
// that claim and complete events from one file: every event is handled
// exactly once, in thread order, and no call fails with SQLITE_BUSY.
func TestClaimAcrossProcesses(t *testing.T) {
	if path := os.Getenv(workerEnv); path != "" {
		claimWorker(t, path)
		return
	}
	if testing.Short() {
		t.Skip("starts processes")
	}
	path := filepath.Join(t.TempDir(), "convosphere.db")
	db := mustOpenPath(t, path, false)
	const events, threads = 120, 6
	for i := range events {
		e := &engine.InboxEvent{Platform: engine.PlatformSlack, EventID: fmt.Sprintf("E%03d", i),
			ThreadKey: fmt.Sprintf("thread-%d", i%threads), Payload: []byte("{}")}
		if _, err := db.Enqueue(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	type result struct {
		claimed []string
		err     error
		out     string
	}
	results := make([]result, 2)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestClaimAcrossProcesses$", "-test.count=1")
			cmd.Env = append(os.Environ(), workerEnv+"="+path)
			out, err := cmd.CombinedOutput()
			r := result{err: err, out: string(out)}
			sc := bufio.NewScanner(strings.NewReader(string(out)))
			for sc.Scan() {
				if id, ok := strings.CutPrefix(sc.Text(), "claimed "); ok {
					r.claimed = append(r.claimed, id)
				}
			}
			results[i] = r
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("worker %d: %v\n%s", i, r.err, r.out)
		}
		for _, id := range r.claimed {
			if seen[id] {
				t.Errorf("event %s claimed twice", id)
			}
			seen[id] = true
		}
	}
	storetest.MustEqual(t, "events claimed", len(seen), events)
	t.Logf("events claimed per worker: %d and %d", len(results[0].claimed), len(results[1].claimed))
}

// claimWorker claims and completes events until every event is done,
// printing each claimed event id.
func claimWorker(t *testing.T, path string) {
	db := mustOpenPath(t, path, false) // migrating again is a no-op
	conn, err := sql.Open("sqlite", path)
	storetest.Must(t, err)
	defer conn.Close()
	owner := fmt.Sprintf("pid-%d", os.Getpid())
	last := map[string]string{}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		e, err := db.Claim(t.Context(), owner, time.Minute)
		if engine.IsNotFound(err) {
			var left int
			storetest.Must(t, conn.QueryRowContext(t.Context(), `SELECT count(*) FROM inbox_events WHERE status <> 'done'`).Scan(&left))
			if left == 0 {
				return
			}
			time.Sleep(time.Millisecond)
			continue
		}
		storetest.Must(t, err)
		if prev := last[e.ThreadKey]; prev != "" && prev > e.EventID {
			t.Errorf("claimed %s after %s of the same thread", e.EventID, prev)
		}
		last[e.ThreadKey] = e.EventID
		fmt.Println("claimed " + e.ID)
		storetest.Must(t, db.Complete(t.Context(), e.ID, owner))
	}
	t.Fatal("worker gave up")
}

func TestEnqueueBatchFailsAlone(t *testing.T) {
	db := MustOpen(t)
	storetest.EnqueueBatchFailsAlone(t, db, db.EnqueueBatch)
}
