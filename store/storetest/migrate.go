package storetest

import (
	"context"
	"sync"
	"testing"

	"github.com/convosphere/convosphere/engine"
)

// Migrator is a store that migrates its schema from embedded, numbered
// migrations, recording each applied version in schema_migrations.
type Migrator interface {
	engine.Store
	Migrate(ctx context.Context) error
}

// Database is an empty database of the store under test.
type Database struct {
	// Open opens another handle on the database, migrating it unless
	// skipMigrations, and closes the handle when tb ends.
	Open func(tb testing.TB, skipMigrations bool) Migrator
	// Versions returns the versions recorded in schema_migrations, in order.
	Versions func(tb testing.TB) []int
}

// RunMigrations runs the conformance suite of a store's migrations.
// newDatabase must return a new, empty database for each call, dropped
// when t ends (after the handles Open made are closed).
func RunMigrations(t *testing.T, newDatabase func(t *testing.T) Database) {
	t.Run("Migrate", func(t *testing.T) {
		d := newDatabase(t)
		db := d.Open(t, false)
		want := d.Versions(t)
		if len(want) == 0 || want[0] != 1 {
			t.Fatalf("applied versions = %v, want 1 first", want)
		}
		Must(t, db.Migrate(t.Context()))
		MustEqual(t, "versions after migrating twice", d.Versions(t), want)

		// Data survives reopening, which migrates again.
		Must(t, db.CreateUser(t.Context(), &engine.User{Name: "alice", Role: engine.RoleAdmin}))
		Must(t, db.Close())
		again := d.Open(t, false)
		n, err := again.CountUsers(t.Context())
		Must(t, err)
		MustEqual(t, "users after reopening", n, 1)
		MustEqual(t, "versions after reopening", d.Versions(t), want)
	})

	t.Run("SkipMigrations", func(t *testing.T) {
		db := newDatabase(t).Open(t, true)
		if _, err := db.CountUsers(t.Context()); err == nil {
			t.Fatal("CountUsers on an unmigrated database succeeded")
		}
		Must(t, db.Migrate(t.Context()))
		n, err := db.CountUsers(t.Context())
		Must(t, err)
		MustEqual(t, "users", n, 0)
	})

	// Several handles migrate one database at once, as a console and bots
	// starting together do: every version is applied once.
	t.Run("MigrateConcurrently", func(t *testing.T) {
		d := newDatabase(t)
		dbs := make([]Migrator, 3)
		for i := range dbs {
			dbs[i] = d.Open(t, true)
		}
		var wg sync.WaitGroup
		for _, db := range dbs {
			wg.Go(func() {
				if err := db.Migrate(t.Context()); err != nil {
					t.Errorf("Migrate: %v", err)
				}
			})
		}
		wg.Wait()
		got := d.Versions(t)
		if len(got) == 0 {
			t.Fatal("no migration applied")
		}
		seen := map[int]bool{}
		for _, v := range got {
			if seen[v] {
				t.Fatalf("version %d recorded twice: %v", v, got)
			}
			seen[v] = true
		}
	})
}
