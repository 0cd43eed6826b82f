// Package pgtest gives end-to-end tests a database of their own on the
// PostgreSQL server that scripts/services.sh starts
// (CONVOSPHERE_TEST_POSTGRES_URL).
package pgtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// URLEnv names the test server's URL.
const URLEnv = "CONVOSPHERE_TEST_POSTGRES_URL"

// URL returns the test server's URL. Without one the test is skipped, or
// fails when CONVOSPHERE_REQUIRE_SERVERS is set (make test sets it).
func URL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(URLEnv)
	if u == "" {
		msg := URLEnv + " is not set: run scripts/services.sh postgres (make test does)"
		if os.Getenv("CONVOSPHERE_REQUIRE_SERVERS") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return u
}

// MustDatabase creates an empty database, dropped when the test ends, and
// returns its URL (for database.url).
func MustDatabase(tb testing.TB) string {
	tb.Helper()
	base := URL(tb)
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("%s: %v", URLEnv, err)
	}
	name := fmt.Sprintf("test_%d", time.Now().UnixNano())
	exec := func(ctx context.Context, sql string) error {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(tb.Context(), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Logf("drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// Server is a private PostgreSQL cluster for tests that stop and restart
// the database (the shared one must stay up). It runs as the postgres
// user, which PostgreSQL requires when the tests run as root.
type Server struct {
	tb   testing.TB
	bin  string
	dir  string
	port int
}

// StartServer initialises and starts a cluster on a free loopback port,
// stopped and removed when the test ends. Without PostgreSQL installed
// the test is skipped (or fails under CONVOSPHERE_REQUIRE_SERVERS).
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 || os.Getuid() != 0 {
		msg := "a private PostgreSQL needs its binaries (scripts/install-deps.sh) and root (to run them as postgres)"
		if os.Getenv("CONVOSPHERE_REQUIRE_SERVERS") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	sort.Strings(bins)
	dir, err := os.MkdirTemp("", "convosphere-pg-")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{tb: tb, bin: filepath.Dir(bins[len(bins)-1]), dir: dir}
	tb.Cleanup(func() {
		s.run("pg_ctl", "-D", s.data(), "-m", "immediate", "stop")
		_ = os.RemoveAll(dir)
	})
	if out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput(); err != nil {
		tb.Fatalf("chown %s: %v %s", dir, err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	if out, err := s.run("initdb", "-D", s.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8"); err != nil {
		tb.Fatalf("initdb: %v\n%s", err, out)
	}
	s.Start()
	return s
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// run runs a PostgreSQL program as the postgres user.
func (s *Server) run(prog string, args ...string) ([]byte, error) {
	return exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(s.bin, prog)}, args...)...).CombinedOutput()
}

// URL is the URL of its postgres database.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

// Start starts the cluster and waits until it accepts connections.
func (s *Server) Start() {
	s.tb.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off", s.port, s.dir)
	if out, err := s.run("pg_ctl", "-D", s.data(), "-w", "-t", "30", "-o", opts, "-l", filepath.Join(s.dir, "log"), "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		s.tb.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// Stop stops the cluster at once (clients see their connections end).
func (s *Server) Stop() {
	s.tb.Helper()
	if out, err := s.run("pg_ctl", "-D", s.data(), "-m", "immediate", "-w", "stop"); err != nil {
		s.tb.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}
