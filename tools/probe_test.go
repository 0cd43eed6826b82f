package tools

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	mcpsrv "github.com/mark3labs/mcp-go/server"

	"github.com/convosphere/convosphere/engine"
)

func mustNewRegistry(t *testing.T, cfg Config) *Registry {
	t.Helper()
	r, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func toolNames(list []ToolStatus) []string {
	var names []string
	for _, s := range list {
		names = append(names, s.Name)
	}
	return names
}

// TestTestServerEverything: a test connection to server-everything from
// npm over stdio lists its tools with their state under the pins, and
// leaves no process behind; the registry's own servers are not touched.
func TestTestServerEverything(t *testing.T) {
	everything := serverPath(t, "CONVOSPHERE_TEST_MCP_EVERYTHING")
	pins := &memPins{}
	r := mustNewRegistry(t, Config{Pins: pins})
	ctx := context.Background()
	marker := strconv.FormatInt(time.Now().UnixNano(), 36)
	cfg := ServerConfig{Name: "trial", Transport: TransportStdio, Command: "node", Args: []string{everything},
		Env: map[string]string{"CONVOSPHERE_TEST_MARKER": marker}}

	list, err := r.TestServer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	names := toolNames(list)
	for _, want := range []string{"trial__echo", "trial__get-sum"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools %q lack %s", names, want)
		}
	}
	for _, s := range list {
		if s.State != StateNotEnabled || s.Hash == "" {
			t.Errorf("%+v: want not enabled, with a hash", s)
		}
		if s.Name == "trial__echo" && s.Description == "" {
			t.Error("echo has no description")
		}
	}
	// The process is gone once TestServer returns.
	if pidAlive(marker) {
		t.Error("the tested server's process is still running")
	}
	if inv, err := r.Inventory(ctx); err != nil || len(inv) != 0 {
		t.Errorf("the registry gained servers: %v %v", inv, err)
	}

	// A pinned tool shows enabled; a pin of another description, changed.
	for _, s := range list {
		switch s.Name {
		case "trial__echo":
			_ = pins.SetToolPin(ctx, &engine.ToolPin{Tool: s.Name, Hash: s.Hash})
		case "trial__get-sum":
			_ = pins.SetToolPin(ctx, &engine.ToolPin{Tool: s.Name, Hash: "an older description"})
		}
	}
	list, err = r.TestServer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		want := map[string]string{"trial__echo": StateEnabled, "trial__get-sum": StateChanged}[s.Name]
		if want != "" && s.State != want {
			t.Errorf("%s: state %q, want %q", s.Name, s.State, want)
		}
	}
}

// pidAlive reports whether a live process has the marker in its
// environment (a zombie has none left to read).
func pidAlive(marker string) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && strings.Contains(string(env), "CONVOSPHERE_TEST_MARKER="+marker) {
			return true
		}
	}
	return false
}

// TestTestServerHTTP: test connections to mcp-go servers over streamable
// HTTP and SSE, with and without the right headers, and to addresses
// where no MCP server answers: the errors say why in words, without the
// secrets.
func TestTestServerHTTP(t *testing.T) {
	auth := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer s3cret-token" {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	streamable := httptest.NewServer(auth(mcpsrv.NewStreamableHTTPServer(mcpServer())))
	defer streamable.Close()
	sseSrv := httptest.NewUnstartedServer(nil)
	sseSrv.Start()
	defer sseSrv.Close()
	sseSrv.Config.Handler = auth(mcpsrv.NewSSEServer(mcpServer(), mcpsrv.WithBaseURL(sseSrv.URL)))
	tlsSrv := httptest.NewUnstartedServer(mcpsrv.NewStreamableHTTPServer(mcpServer()))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client leave
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer slow.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	good := map[string]string{"Authorization": "Bearer s3cret-token"}
	bad := map[string]string{"Authorization": "Bearer wrong-token"}
	r := mustNewRegistry(t, Config{})
	tests := []struct {
		name      string
		cfg       ServerConfig
		timeout   time.Duration
		code      string
		want      []string // in the tools, or the error
		notInText []string
	}{
		{name: "streamable HTTP", cfg: ServerConfig{Transport: TransportHTTP, URL: streamable.URL + "/mcp", Headers: good},
			want: []string{"web__shout"}},
		{name: "SSE", cfg: ServerConfig{Transport: TransportSSE, URL: sseSrv.URL + "/sse", Headers: good},
			want: []string{"web__shout"}},
		{name: "wrong credentials", cfg: ServerConfig{Transport: TransportHTTP, URL: streamable.URL + "/mcp?key=s3cret-query", Headers: bad},
			code: engine.EUNAVAILABLE, want: []string{"401 Unauthorized to POST /mcp", "Check the headers"}, notInText: []string{"wrong-token", "s3cret-query"}},
		{name: "SSE without credentials", cfg: ServerConfig{Transport: TransportSSE, URL: sseSrv.URL + "/sse"},
			code: engine.EUNAVAILABLE, want: []string{"401 Unauthorized to GET /sse"}},
		{name: "TLS certificate not trusted", cfg: ServerConfig{Transport: TransportHTTP, URL: tlsSrv.URL + "/mcp"},
			code: engine.EUNAVAILABLE, want: []string{"TLS: the certificate of 127.0.0.1", "could not be verified"}},
		{name: "HTTPS to a plain HTTP server", cfg: ServerConfig{Transport: TransportHTTP, URL: strings.Replace(streamable.URL, "http:", "https:", 1) + "/mcp", Headers: good},
			code: engine.EUNAVAILABLE, want: []string{"does not speak TLS"}},
		{name: "connection refused", cfg: ServerConfig{Transport: TransportHTTP, URL: "http://" + closed + "/mcp"},
			code: engine.EUNAVAILABLE, want: []string{"Nothing accepts connections at " + closed}},
		{name: "timeout", cfg: ServerConfig{Transport: TransportHTTP, URL: slow.URL + "/mcp"}, timeout: 500 * time.Millisecond,
			code: engine.ETIMEOUT, want: []string{"did not answer within 500ms"}},
		{name: "not a URL", cfg: ServerConfig{Transport: TransportSSE, URL: "mcp.example.com/sse"},
			code: engine.EINVALID, want: []string{"http:// or https://"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Name = "web"
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			list, err := r.TestServer(ctx, tt.cfg)
			if tt.code == "" {
				if err != nil || !slices.Equal(toolNames(list), tt.want) || list[0].Description != "Upper-cases a text." {
					t.Fatalf("tools %+v, %v", list, err)
				}
				return
			}
			if err == nil || engine.ErrorCode(err) != tt.code {
				t.Fatalf("error %v (code %q), want code %q", err, engine.ErrorCode(err), tt.code)
			}
			msg := engine.ErrorMessage(err)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			for _, s := range tt.notInText {
				if strings.Contains(msg, s) {
					t.Errorf("message %q shows %q", msg, s)
				}
			}
		})
	}
}

// TestTestServerFailingCommands: stdio commands that are not MCP servers
// fail in words: not found, the exit status with the last lines of
// stderr (secret values redacted), no answer in time.
func TestTestServerFailingCommands(t *testing.T) {
	r := mustNewRegistry(t, Config{})
	script := `echo "starting" >&2; echo "fatal: token $API_TOKEN rejected" >&2; exit 3`
	tests := []struct {
		name      string
		cfg       ServerConfig
		timeout   time.Duration
		code      string
		want      []string
		notInText string
	}{
		{name: "command not found", cfg: ServerConfig{Command: "convosphere-no-such-command"},
			code: engine.EUNAVAILABLE, want: []string{`The command "convosphere-no-such-command" was not found`}},
		{name: "no such file", cfg: ServerConfig{Command: "/nonexistent/mcp-server"},
			code: engine.EUNAVAILABLE, want: []string{"was not found"}},
		{name: "exits with stderr", cfg: ServerConfig{Command: "sh", Args: []string{"-c", script}, Env: map[string]string{"API_TOKEN": "s3cret-env"}},
			code: engine.EUNAVAILABLE, want: []string{`The command "sh" exited with status 3`, "starting\nfatal: token [redacted] rejected"}, notInText: "s3cret-env"},
		{name: "exits silently", cfg: ServerConfig{Command: "true"},
			code: engine.EUNAVAILABLE, want: []string{"exited with status 0", "It wrote nothing to stderr."}},
		{name: "never answers", cfg: ServerConfig{Command: "sh", Args: []string{"-c", "echo waiting >&2; exec sleep 30"}}, timeout: 700 * time.Millisecond,
			code: engine.ETIMEOUT, want: []string{"did not answer within 700ms", "waiting"}},
		{name: "no command", cfg: ServerConfig{},
			code: engine.EINVALID, want: []string{"needs a command"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Name, tt.cfg.Transport = "local", TransportStdio
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			start := time.Now()
			_, err := r.TestServer(ctx, tt.cfg)
			if engine.ErrorCode(err) != tt.code {
				t.Fatalf("error %v (code %q), want code %q", err, engine.ErrorCode(err), tt.code)
			}
			msg := engine.ErrorMessage(err)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			if tt.notInText != "" && strings.Contains(msg, tt.notInText) {
				t.Errorf("message %q shows %q", msg, tt.notInText)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}
