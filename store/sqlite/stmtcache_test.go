package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

func mustPool(tb testing.TB, conns int) *pool {
	tb.Helper()
	db, err := sql.Open("sqlite", filepath.Join(tb.TempDir(), "pool.db")+"?_busy_timeout=10000&_journal_mode=WAL")
	if err != nil {
		tb.Fatal(err)
	}
	db.SetMaxOpenConns(conns)
	p := newPool(db)
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Error(err)
		}
	})
	return p
}

func TestPoolCachesStatements(t *testing.T) {
	for _, conns := range []int{1, 4} {
		t.Run(fmt.Sprintf("%d connections", conns), func(t *testing.T) {
			p := mustPool(t, conns)
			ctx := t.Context()
			if _, err := p.ExecContext(ctx, `CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)`); err != nil {
				t.Fatal(err)
			}
			// Concurrent use of one cached statement, more goroutines
			// than connections.
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := range 50 {
						k := g*1000 + i
						if _, err := p.ExecContext(ctx, `INSERT INTO t (k, v) VALUES (?, ?)`, k, fmt.Sprint(k)); err != nil {
							t.Error(err)
							return
						}
						var v string
						if err := p.QueryRowContext(ctx, `SELECT v FROM t WHERE k = ?`, k).Scan(&v); err != nil || v != fmt.Sprint(k) {
							t.Errorf("row %d: %q, %v", k, v, err)
							return
						}
					}
				})
			}
			wg.Wait()
			rows, err := p.QueryContext(ctx, `SELECT count(*) FROM t WHERE k >= ?`, 0)
			if err != nil {
				t.Fatal(err)
			}
			var n int
			for rows.Next() {
				if err := rows.Scan(&n); err != nil {
					t.Fatal(err)
				}
			}
			if err := rows.Close(); err != nil || n != 400 {
				t.Fatalf("count %d, %v", n, err)
			}
			if got := len(p.stmts); got != 4 {
				t.Errorf("%d cached statements, want 4 (create, insert, select, count)", got)
			}
		})
	}
}

func TestPoolBoundAndErrors(t *testing.T) {
	p := mustPool(t, 1)
	ctx := t.Context()
	// Past the bound, queries still run, unprepared.
	for i := range maxStmts + 20 {
		var got int
		if err := p.QueryRowContext(ctx, fmt.Sprintf(`SELECT %d + ?`, i), 1).Scan(&got); err != nil || got != i+1 {
			t.Fatalf("query %d: %d, %v", i, got, err)
		}
	}
	if len(p.stmts) != maxStmts {
		t.Errorf("%d cached statements, want the bound %d", len(p.stmts), maxStmts)
	}
	// A statement that cannot be prepared is not cached and reports its
	// error as an unprepared one would.
	if _, err := p.ExecContext(ctx, `INSERT INTO missing VALUES (1)`); err == nil {
		t.Fatal("insert into a missing table: no error")
	}
	if _, ok := p.stmts[`INSERT INTO missing VALUES (1)`]; ok {
		t.Error("a failing statement was cached")
	}
	// Scripts (several statements) run whole.
	if _, err := p.ExecContext(ctx, `CREATE TABLE a (x); CREATE TABLE b (y)`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := p.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name IN ('a', 'b')`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("script ran %d of 2 statements: %v", n, err)
	}
}
