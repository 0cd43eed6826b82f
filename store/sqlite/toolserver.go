package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/convosphere/convosphere/engine"
)

// SaveToolServer stores an MCP server, replacing the one of the same name
// (keeping its CreatedAt).
func (db *DB) SaveToolServer(ctx context.Context, s *engine.ToolServer) error {
	if s.Name == "" || s.Transport == "" {
		return engine.Errorf(engine.EINVALID, "An MCP server needs a name and a transport.")
	}
	args, _ := json.Marshal(s.Args)
	env, _ := json.Marshal(s.Env)
	headers, _ := json.Marshal(s.Headers)
	s.UpdatedAt = now()
	if s.CreatedAt.IsZero() {
		s.CreatedAt = s.UpdatedAt
	}
	_, err := db.w.ExecContext(ctx, `INSERT INTO tool_servers (name, transport, command, args, env, url, headers, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET transport = excluded.transport, command = excluded.command, args = excluded.args,
			env = excluded.env, url = excluded.url, headers = excluded.headers, updated_at = excluded.updated_at`,
		s.Name, s.Transport, s.Command, string(args), string(env), s.URL, string(headers), encTime(s.CreatedAt), encTime(s.UpdatedAt))
	if err != nil {
		return fmt.Errorf("save MCP server: %w", err)
	}
	return nil
}

// DeleteToolServer removes an MCP server.
func (db *DB) DeleteToolServer(ctx context.Context, name string) error {
	res, err := db.w.ExecContext(ctx, `DELETE FROM tool_servers WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete MCP server: %w", err)
	}
	return affectedServer(res, name)
}

// ToolServers lists the MCP servers by name.
func (db *DB) ToolServers(ctx context.Context) ([]*engine.ToolServer, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT name, transport, command, args, env, url, headers, created_at, updated_at
		FROM tool_servers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list MCP servers: %w", err)
	}
	list, err := collect(rows, func(sc scanner) (*engine.ToolServer, error) {
		var t engine.ToolServer
		var args, env, headers string
		if err := sc.Scan(&t.Name, &t.Transport, &t.Command, &args, &env, &t.URL, &headers, timeCol{&t.CreatedAt}, timeCol{&t.UpdatedAt}); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(args), &t.Args); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(env), &t.Env); err != nil {
			return nil, err
		}
		return &t, json.Unmarshal([]byte(headers), &t.Headers)
	})
	if err != nil {
		return nil, fmt.Errorf("list MCP servers: %w", err)
	}
	return list, nil
}

func affectedServer(res sql.Result, name string) error {
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return notFound("MCP server", name)
	}
	return nil
}
