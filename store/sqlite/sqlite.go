// Package sqlite implements engine.Store on an SQLite file (modernc.org/sqlite,
// pure Go): the embedded default that needs no setup.
//
// The file runs in WAL mode, so readers never wait for the writer. All writes
// of a process go through one connection, and transactions begin IMMEDIATE,
// so writers queue on SQLite's write lock (with a busy timeout) instead of
// failing with SQLITE_BUSY; two processes (console and bot) can share a file.
// The schema is migrated by Open from embedded, numbered SQL files.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/convosphere/convosphere/engine"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Config says where the database file is and how to use it. The zero value
// of every field but Path gets a default.
type Config struct {
	Path           string        // database file; its directory is created when missing
	BusyTimeout    time.Duration // how long a writer waits for another process's lock; default 5s
	MaxReadConns   int           // reader connections; default max(4, GOMAXPROCS)
	SkipMigrations bool          // do not migrate in Open (run Migrate yourself)
	Logger         *slog.Logger  // default: discard
}

func (c *Config) setDefaults() {
	if c.BusyTimeout == 0 {
		c.BusyTimeout = 5 * time.Second
	}
	if c.MaxReadConns == 0 {
		c.MaxReadConns = max(4, runtime.GOMAXPROCS(0))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case strings.TrimSpace(c.Path) == "":
		return engine.Errorf(engine.EINVALID, "sqlite: the database path is empty")
	case c.Path == ":memory:" || strings.HasPrefix(c.Path, "file:"):
		return engine.Errorf(engine.EINVALID, "sqlite: the database path %q is not a plain file path: in-memory databases and URIs are not supported", c.Path)
	case strings.ContainsAny(c.Path, "?#"):
		return engine.Errorf(engine.EINVALID, "sqlite: the database path %q must not contain '?' or '#'", c.Path)
	case c.BusyTimeout < 0:
		return engine.Errorf(engine.EINVALID, "sqlite: busy timeout must not be negative")
	case c.MaxReadConns < 0:
		return engine.Errorf(engine.EINVALID, "sqlite: max read connections must not be negative")
	}
	return nil
}

// DB is an SQLite-backed engine.Store. It is safe for concurrent use.
type DB struct {
	cfg Config
	w   *pool // the one writer connection
	r   *pool // readers
	log *slog.Logger

	enqueue     engine.GroupCommit[*engine.InboxEvent, enqueued]
	enqueueStmt *sql.Stmt // prepared once on the writer
}

var _ engine.Store = (*DB)(nil)

// Open opens (creating when missing) the database file and, unless
// cfg.SkipMigrations, migrates its schema.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dir := filepath.Dir(cfg.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("sqlite: create database directory: %w", err)
		}
	}
	busy := strconv.FormatInt(cfg.BusyTimeout.Milliseconds(), 10)
	w, err := sql.Open("sqlite", cfg.Path+"?_busy_timeout="+busy+
		"&_journal_mode=WAL&_synchronous=NORMAL&_foreign_keys=1&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open writer: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	// The writer connection sets WAL mode before any reader opens the file.
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "sqlite: open %s", cfg.Path)
	}
	r, err := sql.Open("sqlite", cfg.Path+"?_busy_timeout="+busy+"&_foreign_keys=1&_query_only=1")
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open readers: %w", err)
	}
	r.SetMaxOpenConns(cfg.MaxReadConns)
	r.SetMaxIdleConns(cfg.MaxReadConns)
	wp := newPool(w)
	wp.gate = &writeGate{}
	db := &DB{cfg: cfg, w: wp, r: newPool(r), log: cfg.Logger.With("component", "store", "driver", "sqlite")}
	db.enqueue.Run = db.enqueueBatch
	if !cfg.SkipMigrations {
		if err := db.Migrate(ctx); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	return db, nil
}

// Close closes the database.
func (db *DB) Close() error {
	return errors.Join(db.r.Close(), db.w.Close())
}

// Ping checks that the database file can be read and written.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.r.PingContext(ctx); err != nil {
		return engine.WrapError(engine.EUNAVAILABLE, err, "The database is unavailable.")
	}
	if err := db.w.PingContext(ctx); err != nil {
		return engine.WrapError(engine.EUNAVAILABLE, err, "The database is unavailable.")
	}
	return nil
}

// Migrate applies the embedded migrations that the database has not seen
// yet, each recorded in schema_migrations, in one IMMEDIATE transaction so
// that two processes migrating at once take turns. Applying twice is a no-op.
func (db *DB) Migrate(ctx context.Context) error {
	files, err := migrationFiles()
	if err != nil {
		return err
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TEXT NOT NULL
		) STRICT`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		applied := map[int]bool{}
		rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return fmt.Errorf("read schema_migrations: %w", err)
			}
			applied[v] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		for _, m := range files {
			if applied[m.version] {
				continue
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("apply %s: %w", m.name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, encTime(now())); err != nil {
				return fmt.Errorf("record %s: %w", m.name, err)
			}
			db.log.InfoContext(ctx, "applied migration", "version", m.version, "name", m.name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}

type migration struct {
	version int
	name    string
	sql     string
}

// migrationFiles returns the embedded migrations ordered by version; a file
// is named NNNN_description.sql.
func migrationFiles() ([]migration, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("sqlite: read migrations: %w", err)
	}
	var out []migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		prefix, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("sqlite: migration %s is not named NNNN_description.sql", name)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("sqlite: migrations %s and %s share version %d", other, name, v)
		}
		seen[v] = name
		b, err := migrations.ReadFile("migrations/" + name)
		if err != nil {
			return nil, fmt.Errorf("sqlite: read migration %s: %w", name, err)
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// write runs fn in an IMMEDIATE transaction on the writer connection and
// commits when fn returns nil.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	leave, err := db.w.enter(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer leave()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// timeLayout is fixed width, so stored times sort and compare as text.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// now returns the current time as stored: UTC, microseconds.
func now() time.Time { return engine.StoredTime(time.Now()) }

func encTime(t time.Time) string { return engine.StoredTime(t).Format(timeLayout) }

// encNullTime stores the zero time as NULL.
func encNullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return encTime(t)
}

// timeCol scans a stored time (NULL is the zero time).
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(v any) error {
	var s string
	switch v := v.(type) {
	case nil:
		*c.t = time.Time{}
		return nil
	case time.Time:
		*c.t = engine.StoredTime(v)
		return nil
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return fmt.Errorf("scan time: unexpected %T", v)
	}
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return fmt.Errorf("scan time %q: %w", s, err)
		}
	}
	*c.t = engine.StoredTime(t)
	return nil
}

// nameKey is the case-insensitive form of a name, unique per table.
func nameKey(name string) string { return strings.ToLower(name) }

// violates reports whether err is a constraint violation of the given kind
// (sqlite3.SQLITE_CONSTRAINT_UNIQUE, _PRIMARYKEY or _FOREIGNKEY) whose message
// contains detail (a "table.column" SQLite names in the message; "" for any).
func violates(err error, code int, detail string) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == code && strings.Contains(se.Error(), detail)
}

// duplicate reports whether err is a unique or primary-key violation.
func duplicate(err error) bool {
	return violates(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE, "") || violates(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, "")
}

func notFound(what, id string) error {
	return engine.Errorf(engine.ENOTFOUND, "%s %q was not found.", what, id)
}

// affected returns ENOTFOUND when res changed no row.
func affected(res sql.Result, what, id string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("rows affected: %w", err)
	}
	if n == 0 {
		return notFound(what, id)
	}
	return nil
}

type scanner interface{ Scan(dest ...any) error }

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (*T, error)) ([]*T, error) {
	defer rows.Close()
	list := []*T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return list, nil
}
