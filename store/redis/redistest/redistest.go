// Package redistest connects tests to the Redis server that
// scripts/services.sh starts (CONVOSPHERE_TEST_REDIS_URL).
package redistest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/store/redis"
)

// URLEnv names the test server's URL.
const URLEnv = "CONVOSPHERE_TEST_REDIS_URL"

// URL returns the test server's URL. Without one the test is skipped, or
// fails when CONVOSPHERE_REQUIRE_SERVERS is set (make test sets it).
func URL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv(URLEnv)
	if url == "" {
		msg := URLEnv + " is not set: run scripts/services.sh redis (make test does)"
		if os.Getenv("CONVOSPHERE_REQUIRE_SERVERS") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return url
}

// Prefix returns a key prefix of the test's own, so tests sharing the
// server do not see each other's keys.
func Prefix() string { return "test-" + engine.NewID() + ":" }

// MustClient opens a client with prefix (Prefix() when empty), closed
// when the test ends.
func MustClient(tb testing.TB, prefix string) *redis.Client {
	tb.Helper()
	if prefix == "" {
		prefix = Prefix()
	}
	c, err := redis.Open(tb.Context(), redis.Config{URL: URL(tb), Prefix: prefix})
	if err != nil {
		tb.Fatalf("open Redis: %v", err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Server is a private redis-server process for tests that stop and start
// Redis (the shared one must stay up).
type Server struct {
	tb   testing.TB
	port int
	cmd  *exec.Cmd
}

// StartServer runs redis-server on a free loopback port until the test
// ends. Without the binary the test is skipped (or fails under
// CONVOSPHERE_REQUIRE_SERVERS).
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		msg := "redis-server is not installed: run scripts/install-deps.sh"
		if os.Getenv("CONVOSPHERE_REQUIRE_SERVERS") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{tb: tb, port: l.Addr().(*net.TCPAddr).Port}
	l.Close()
	s.Start()
	tb.Cleanup(s.Stop)
	return s
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

// Start starts the server (again) on its port and waits until it answers.
func (s *Server) Start() {
	s.tb.Helper()
	s.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(s.port), "--save", "", "--appendonly", "no", "--dir", s.tb.TempDir())
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.tb.Fatal("redis-server did not start")
}

// Stop kills the server (as a crash would).
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}
