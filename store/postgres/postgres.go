// Package postgres implements engine.Store on PostgreSQL with pgx (pgxpool):
// the store for deployments that outgrow one machine.
//
// Workers claim inbox events with FOR UPDATE SKIP LOCKED, so any number of
// bot processes can share one inbox. The schema is migrated by Open from
// embedded, numbered SQL files under an advisory lock, so processes that
// start together do not collide.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convosphere/convosphere/engine"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Config says which database to use and how. The zero value of every field
// but URL gets a default.
type Config struct {
	URL            string       // postgres://user:password@host:port/database?sslmode=...; a secret
	MaxConns       int          // pool size; default 10
	Schema         string       // optional: the schema (search_path) of every connection; it must exist
	SkipMigrations bool         // do not migrate in Open (run Migrate yourself)
	Logger         *slog.Logger // default: discard
}

func (c *Config) setDefaults() {
	if c.MaxConns == 0 {
		c.MaxConns = 10
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first invalid setting. Its errors never contain the
// URL, which may hold a password.
func (c Config) Validate() error {
	switch {
	case strings.TrimSpace(c.URL) == "":
		return engine.Errorf(engine.EINVALID, "postgres: the database URL is empty")
	case c.MaxConns < 0 || c.MaxConns > 10000:
		return engine.Errorf(engine.EINVALID, "postgres: max connections %d is out of range: use 1 to 10000 (0 for the default)", c.MaxConns)
	}
	if _, err := pgxpool.ParseConfig(c.URL); err != nil {
		return engine.Errorf(engine.EINVALID, "postgres: the database URL cannot be parsed: use postgres://user:password@host:port/database")
	}
	return nil
}

// DB is a PostgreSQL-backed engine.Store. It is safe for concurrent use.
type DB struct {
	cfg  Config
	pool *pgxpool.Pool
	log  *slog.Logger

	enqueue engine.GroupCommit[*engine.InboxEvent, enqueued]
}

var _ engine.Store = (*DB)(nil)

// Open connects to the database and, unless cfg.SkipMigrations, migrates
// its schema.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, engine.Errorf(engine.EINVALID, "postgres: the database URL cannot be parsed")
	}
	pc.MaxConns = int32(cfg.MaxConns)
	if cfg.Schema != "" {
		pc.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{cfg.Schema}.Sanitize()
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "postgres: connect")
	}
	db := &DB{cfg: cfg, pool: pool, log: cfg.Logger.With("component", "store", "driver", "postgres")}
	db.enqueue.Run = db.enqueueBatch
	if err := db.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if !cfg.SkipMigrations {
		if err := db.Migrate(ctx); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return db, nil
}

// Close closes every connection of the pool.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return engine.WrapError(engine.EUNAVAILABLE, err, "The database is unavailable.")
	}
	return nil
}

// Migrate applies the embedded migrations that the database has not seen
// yet, each recorded in schema_migrations, in one transaction that holds an
// advisory lock on the schema: processes migrating at once take turns, and
// applying twice is a no-op.
func (db *DB) Migrate(ctx context.Context) error {
	files, err := migrationFiles()
	if err != nil {
		return err
	}
	err = db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('convosphere.migrate.' || coalesce(current_schema(), '')))`); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL
		)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		applied := map[int]bool{}
		for _, v := range versions {
			applied[int(v)] = true
		}
		for _, m := range files {
			if applied[m.version] {
				continue
			}
			// Without arguments pgx uses the simple protocol, which runs
			// every statement of the file.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("apply %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, now()); err != nil {
				return fmt.Errorf("record %s: %w", m.name, err)
			}
			db.log.InfoContext(ctx, "applied migration", "version", m.version, "name", m.name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
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
		return nil, fmt.Errorf("postgres: read migrations: %w", err)
	}
	var out []migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		prefix, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("postgres: migration %s is not named NNNN_description.sql", name)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("postgres: migrations %s and %s share version %d", other, name, v)
		}
		seen[v] = name
		b, err := migrations.ReadFile("migrations/" + name)
		if err != nil {
			return nil, fmt.Errorf("postgres: read migration %s: %w", name, err)
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// tx runs fn in a transaction and commits when fn returns nil.
func (db *DB) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// now returns the current time as stored: UTC, microseconds.
func now() time.Time { return engine.StoredTime(time.Now()) }

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return engine.StoredTime(t)
}

// timeCol scans a timestamptz (NULL is the zero time) as stored.
type timeCol struct{ t *time.Time }

func (c timeCol) ScanTimestamptz(v pgtype.Timestamptz) error {
	if !v.Valid {
		*c.t = time.Time{}
		return nil
	}
	*c.t = engine.StoredTime(v.Time)
	return nil
}

// nameKey is the case-insensitive form of a name, unique per table.
func nameKey(name string) string { return strings.ToLower(name) }

// PostgreSQL error codes the store translates.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
)

// violates reports whether err is a PostgreSQL error with the code and, when
// constraint is not empty, on that constraint.
func violates(err error, code, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code && (constraint == "" || pe.ConstraintName == constraint)
}

// duplicate reports whether err is a unique or primary-key violation.
func duplicate(err error) bool { return violates(err, codeUniqueViolation, "") }

func notFound(what, id string) error {
	return engine.Errorf(engine.ENOTFOUND, "%s %q was not found.", what, id)
}

// affected returns ENOTFOUND when tag changed no row.
func affected(tag pgconn.CommandTag, what, id string) error {
	if tag.RowsAffected() == 0 {
		return notFound(what, id)
	}
	return nil
}

type scanner interface{ Scan(dest ...any) error }

// collect scans every row with scan.
func collect[T any](rows pgx.Rows, scan func(scanner) (*T, error)) ([]*T, error) {
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
