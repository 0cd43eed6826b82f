package benchkit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// StartPostgres runs `scripts/services.sh postgres`, which starts the
// project's PostgreSQL cluster on loopback when it is not running (and
// leaves it running), and returns the URL it prints.
func StartPostgres(ctx context.Context) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(root, "scripts", "services.sh")
	cmd := exec.CommandContext(ctx, script, "postgres")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/services.sh postgres: %w", err)
	}
	u := PostgresURLFromExports(string(out))
	if u == "" {
		return "", fmt.Errorf("scripts/services.sh postgres printed no PostgreSQL URL: %q", out)
	}
	return u, nil
}

// Exports parses `export NAME=VALUE` lines, such as those the scripts
// print, into a map; quoted values are unquoted.
func Exports(out string) map[string]string {
	vars := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export "))
		name, value, ok := strings.Cut(line, "=")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			continue
		}
		if unq, err := strconv.Unquote(value); err == nil {
			value = unq
		} else {
			value = strings.Trim(value, "'")
		}
		vars[name] = value
	}
	return vars
}

// PostgresURLFromExports finds the PostgreSQL URL in `export NAME=VALUE`
// lines: a variable named like POSTGRES or _PG_ holding a postgres:// URL.
func PostgresURLFromExports(out string) string {
	vars := Exports(out)
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		value := vars[name]
		if (strings.Contains(name, "POSTGRES") || strings.Contains(name, "_PG_")) &&
			(strings.HasPrefix(value, "postgres://") || strings.HasPrefix(value, "postgresql://")) {
			return value
		}
	}
	return ""
}

// FreshDatabase creates a database named prefix_<nanoseconds> on the
// server of base and returns its URL and a function that drops it.
func FreshDatabase(ctx context.Context, base, prefix string) (string, func(), error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, errors.New("not a postgres:// URL")
	}
	name := fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err == nil {
			_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
			conn.Close(ctx)
		}
		if err != nil {
			Logf("postgres: could not drop database %s: %v", name, err)
		}
	}
	return u.String(), drop, nil
}

// ServerVersion is the PostgreSQL server's version (SHOW server_version).
func ServerVersion(ctx context.Context, dbURL string) (string, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var v string
	err = conn.QueryRow(ctx, "SHOW server_version").Scan(&v)
	return v, err
}

// RedactURL hides the password of the URL in s (from its scheme, for
// arguments such as -database-url=postgres://u:p@h/db).
func RedactURL(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	start := strings.LastIndexAny(s[:i], "= \t") + 1
	u, err := url.Parse(s[start:])
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return s[:start] + u.String()
}

// RepoRoot is the directory of the module's go.mod, from the working
// directory up.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the repository root (go.mod) above the working directory: run from the checkout")
		}
		dir = parent
	}
}
