package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// pool is a *sql.DB whose ExecContext, QueryContext and QueryRowContext
// reuse prepared statements, by SQL text. SQLite parses and plans a
// statement on every prepare, and database/sql prepares one for each call
// with arguments: under load that was a sixth of the bot's CPU (the inbox
// claim, the trace, the outbox; bench/slack profile). A cached statement
// is prepared once on each connection it runs on (database/sql keeps them
// per connection). Transactions are not cached here: preparing needs a
// connection, and a transaction holds the writer's only one.
type pool struct {
	*sql.DB
	gate *writeGate // the writer's: orders its users (nil for the readers)

	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
}

// maxStmts bounds the cache: the store's statements are a fixed set, but
// a query built from filters could vary without end. Past the bound,
// statements are prepared per call, as database/sql does.
const maxStmts = 256

func newPool(db *sql.DB) *pool {
	return &pool{DB: db, stmts: map[string]*sql.Stmt{}}
}

// stmt returns the prepared statement for query, preparing it when it is
// not cached yet; nil when it cannot be (the caller runs the query
// unprepared, and gets the error there if it has one).
func (p *pool) stmt(ctx context.Context, query string) *sql.Stmt {
	p.mu.RLock()
	st, full := p.stmts[query], len(p.stmts) >= maxStmts
	p.mu.RUnlock()
	if st != nil || full {
		return st
	}
	// Prepared outside the lock: it waits for a connection.
	st, err := p.DB.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if have := p.stmts[query]; have != nil {
		_ = st.Close() // prepared concurrently
		return have
	}
	if len(p.stmts) >= maxStmts {
		_ = st.Close()
		return nil
	}
	p.stmts[query] = st
	return st
}

// enter takes the writer's gate, when p has one, as a write that is not
// urgent; the returned function releases it.
func (p *pool) enter(ctx context.Context) (func(), error) {
	if p.gate == nil {
		return func() {}, nil
	}
	if err := p.gate.enter(ctx, false); err != nil {
		return nil, err
	}
	return p.gate.leave, nil
}

// ExecContext runs query with args on a cached prepared statement.
func (p *pool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	leave, err := p.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	if st := p.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return p.DB.ExecContext(ctx, query, args...)
}

// QueryContext runs query with args on a cached prepared statement.
func (p *pool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	leave, err := p.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.DB.QueryContext(ctx, query, args...)
}

// QueryRowContext runs query with args on a cached prepared statement.
func (p *pool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	leave, err := p.enter(ctx)
	if err != nil {
		return p.DB.QueryRowContext(ctx, query, args...) // ctx has ended: the row holds its error
	}
	defer leave()
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.DB.QueryRowContext(ctx, query, args...)
}

// Close closes the cached statements and the database.
func (p *pool) Close() error {
	p.mu.Lock()
	var errs []error
	for q, st := range p.stmts {
		errs = append(errs, st.Close())
		delete(p.stmts, q)
	}
	p.mu.Unlock()
	return errors.Join(append(errs, p.DB.Close())...)
}
