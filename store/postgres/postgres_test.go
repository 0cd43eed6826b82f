package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/store/postgres"
	"github.com/convosphere/convosphere/store/storetest"
)

const urlEnv = "CONVOSPHERE_TEST_POSTGRES_URL"

// serverURL returns the test server's URL, or skips tb (fails it when
// CONVOSPHERE_REQUIRE_SERVERS=1) when none is configured.
func serverURL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv(urlEnv)
	if url == "" {
		const msg = urlEnv + " is not set: run scripts/services.sh start and export the line it prints"
		if os.Getenv("CONVOSPHERE_REQUIRE_SERVERS") == "1" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return url
}

// mustSchema creates a schema with a random name and drops it (with
// everything in it) when tb ends.
func mustSchema(tb testing.TB) (url, schema string) {
	tb.Helper()
	url = serverURL(tb)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema = "test_" + hex.EncodeToString(b)
	exec(tb, url, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize())
	tb.Cleanup(func() { exec(tb, url, `DROP SCHEMA `+pgx.Identifier{schema}.Sanitize()+` CASCADE`) })
	return url, schema
}

func exec(tb testing.TB, url, sql string, args ...any) {
	tb.Helper()
	ctx := context.Background() // cleanups run after tb.Context is cancelled
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		tb.Fatal(err)
	}
}

// MustOpen opens a migrated store in a fresh schema of the test server and
// closes it (dropping the schema) when tb ends.
func MustOpen(tb testing.TB) *postgres.DB {
	tb.Helper()
	url, schema := mustSchema(tb)
	return mustOpenSchema(tb, url, schema, false)
}

func mustOpenSchema(tb testing.TB, url, schema string, skipMigrations bool) *postgres.DB {
	tb.Helper()
	db, err := postgres.Open(tb.Context(), postgres.Config{URL: url, Schema: schema, MaxConns: 4, SkipMigrations: skipMigrations})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() }) // runs before the schema is dropped
	return db
}

func TestStore(t *testing.T) {
	serverURL(t)
	storetest.Run(t, func(tb testing.TB) engine.Store { return MustOpen(tb) })
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  postgres.Config
		ok   bool
	}{
		{"url", postgres.Config{URL: "postgres://u:secret@localhost:5432/db?sslmode=disable"}, true},
		{"empty url", postgres.Config{}, false},
		{"unparsable url", postgres.Config{URL: "postgres://u:secret@localhost:notaport/db"}, false},
		{"negative max connections", postgres.Config{URL: "postgres://localhost/db", MaxConns: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.ok && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if tt.ok {
				return
			}
			storetest.MustCode(t, err, engine.EINVALID)
			if msg := err.Error(); tt.cfg.URL != "" && (strings.Contains(msg, "secret") || strings.Contains(msg, tt.cfg.URL)) {
				t.Fatalf("error %q leaks the URL", msg)
			}
		})
	}
}

func versions(tb testing.TB, url, schema string) []int {
	tb.Helper()
	conn, err := pgx.Connect(tb.Context(), url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(tb.Context(), `SELECT version FROM `+pgx.Identifier{schema, "schema_migrations"}.Sanitize()+` ORDER BY version`)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestMigrations(t *testing.T) {
	serverURL(t)
	storetest.RunMigrations(t, func(t *testing.T) storetest.Database {
		url, schema := mustSchema(t)
		return storetest.Database{
			Open: func(tb testing.TB, skipMigrations bool) storetest.Migrator {
				return mustOpenSchema(tb, url, schema, skipMigrations)
			},
			Versions: func(tb testing.TB) []int { return versions(tb, url, schema) },
		}
	})
}

func TestOpenUnreachable(t *testing.T) {
	_, err := postgres.Open(t.Context(), postgres.Config{URL: "postgres://u:secret@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"})
	storetest.MustCode(t, err, engine.EUNAVAILABLE)
}

func TestEnqueueBatchFailsAlone(t *testing.T) {
	serverURL(t)
	db := MustOpen(t)
	storetest.EnqueueBatchFailsAlone(t, db, db.EnqueueBatch)
}
