package tools

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// serverPath is an npm MCP server's entry point (scripts/mcp-servers.sh);
// the tests are skipped without it unless CONVOSPHERE_REQUIRE_SERVERS.
func serverPath(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		if os.Getenv("CONVOSPHERE_REQUIRE_SERVERS") != "" {
			t.Fatalf("%s is not set: run scripts/services.sh start", env)
		}
		t.Skipf("%s is not set (scripts/mcp-servers.sh installs the MCP servers from npm)", env)
	}
	return p
}

// MustRegistry starts a registry with server-everything over stdio as
// "everything", its process marked with a unique environment variable.
func MustRegistry(t *testing.T, mutate func(*Config)) (*Registry, string) {
	t.Helper()
	marker := strconv.FormatInt(time.Now().UnixNano(), 36)
	cfg := Config{Servers: []ServerConfig{{Name: "everything", Transport: TransportStdio, Command: "node",
		Args: []string{serverPath(t, "CONVOSPHERE_TEST_MCP_EVERYTHING")},
		Env:  map[string]string{"CONVOSPHERE_TEST_MARKER": marker, "ALLOWED_SETTING": "yes"}}}}
	if mutate != nil {
		mutate(&cfg)
	}
	r, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Start(context.Background())
	t.Cleanup(func() { r.Close() })
	return r, marker
}

func assistantWith(tools ...string) *engine.Assistant {
	return &engine.Assistant{Name: "ops", Tools: tools}
}

func call(r *Registry, a *engine.Assistant, name, args string) engine.ToolResult {
	return r.Call(context.Background(), engine.ToolInvocation{Assistant: a, Call: engine.ToolCall{ID: "c1", Name: name, Arguments: args}})
}

func TestToolsFollowTheAllowlist(t *testing.T) {
	r, _ := MustRegistry(t, nil)
	specs, err := r.Tools(context.Background(), assistantWith("everything__get-sum", "everything__echo", "everything__nope"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
		if !bytes.Contains(s.InputSchema, []byte(`"type":"object"`)) {
			t.Errorf("%s: input schema %s", s.Name, s.InputSchema)
		}
	}
	if strings.Join(names, ",") != "everything__echo,everything__get-sum" {
		t.Errorf("tools %v, want echo and get-sum only", names)
	}
	if specs, _ := r.Tools(context.Background(), assistantWith()); len(specs) != 0 {
		t.Errorf("an assistant without tools got %d", len(specs))
	}
}

func TestCallOutcomes(t *testing.T) {
	t.Setenv("CONVOSPHERE_LLM_API_KEY", "sk-must-not-leak")
	r, _ := MustRegistry(t, func(c *Config) { c.CallTimeout = 2 * time.Second; c.MaxOutputBytes = 200 })
	a := assistantWith("everything__get-sum", "everything__echo", "everything__get-env", "everything__trigger-long-running-operation")
	tests := []struct {
		name, tool, args string
		outcome          string
		want, notWant    string
	}{
		{"success", "everything__get-sum", `{"a":2,"b":3}`, engine.ToolOK, "5", ""},
		{"not allowed", "everything__get-tiny-image", `{}`, engine.ToolDenied, "not available", ""},
		{"unknown server", "other__echo", `{}`, engine.ToolDenied, "not available", ""},
		{"bad arguments", "everything__echo", `[1,2]`, engine.ToolError, "not a JSON object", ""},
		{"tool error", "everything__get-sum", `{"a":"x"}`, engine.ToolError, "", ""},
		{"output truncated", "everything__echo", `{"message":"` + strings.Repeat("long ", 100) + `"}`, engine.ToolOK, "[output truncated", ""},
		{"only configured environment", "everything__get-env", `{}`, engine.ToolOK, "ALLOWED_SETTING", "sk-must-not-leak"},
		{"timeout", "everything__trigger-long-running-operation", `{"duration":10,"steps":2}`, engine.ToolTimeout, "did not answer within 2s", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "only configured environment" {
				r.cfg.MaxOutputBytes = 1 << 20
				defer func() { r.cfg.MaxOutputBytes = 200 }()
			}
			got := call(r, a, tt.tool, tt.args)
			if got.Outcome != tt.outcome || !strings.Contains(got.Content, tt.want) || tt.notWant != "" && strings.Contains(got.Content, tt.notWant) {
				t.Errorf("outcome %q, content %.300q; want %q containing %q", got.Outcome, got.Content, tt.outcome, tt.want)
			}
			if got.IsError != (tt.outcome != engine.ToolOK) {
				t.Errorf("IsError %v for outcome %q", got.IsError, got.Outcome)
			}
		})
	}
	// After a timeout the server still answers.
	if got := call(r, a, "everything__get-sum", `{"a":1,"b":1}`); got.Outcome != engine.ToolOK {
		t.Errorf("after a timeout: %+v", got)
	}
}

// pidWithEnv finds the process whose environment holds the marker.
func pidWithEnv(t *testing.T, marker string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && bytes.Contains(env, []byte("CONVOSPHERE_TEST_MARKER="+marker)) {
			return pid
		}
	}
	t.Fatal("the MCP server's process was not found")
	return 0
}

// TestCrashedServerIsRestarted: a stdio server killed between calls makes
// the next call fail with a clear message; after the backoff it runs again.
func TestCrashedServerIsRestarted(t *testing.T) {
	r, marker := MustRegistry(t, nil)
	a := assistantWith("everything__get-sum")
	if got := call(r, a, "everything__get-sum", `{"a":1,"b":2}`); got.Outcome != engine.ToolOK {
		t.Fatalf("before the crash: %+v", got)
	}
	if err := syscall.Kill(pidWithEnv(t, marker), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	got := call(r, a, "everything__get-sum", `{"a":1,"b":2}`)
	if got.Outcome != engine.ToolError || !strings.Contains(got.Content, "restarted") {
		t.Fatalf("right after the crash: %+v, want a clear error", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got = call(r, a, "everything__get-sum", `{"a":1,"b":2}`); got.Outcome == engine.ToolOK {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Errorf("the server was not restarted: %+v", got)
}

// TestFilesystemServer: the filesystem server, limited to a directory,
// reads a file there.
func TestFilesystemServer(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("deploy on Tuesdays"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Servers: []ServerConfig{{Name: "files", Transport: TransportStdio, Command: "node",
		Args: []string{serverPath(t, "CONVOSPHERE_TEST_MCP_FILESYSTEM"), dir}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Start(context.Background())
	t.Cleanup(func() { r.Close() })
	a := assistantWith("files__read_text_file")
	got := call(r, a, "files__read_text_file", `{"path":"`+filepath.Join(dir, "notes.txt")+`"}`)
	if got.Outcome != engine.ToolOK || !strings.Contains(got.Content, "deploy on Tuesdays") {
		t.Errorf("read: %+v", got)
	}
	got = call(r, a, "files__read_text_file", `{"path":"/etc/passwd"}`)
	if got.Outcome != engine.ToolError {
		t.Errorf("a file outside the allowed directory: %+v, want an error", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		s    ServerConfig
		ok   bool
	}{
		{"stdio", ServerConfig{Name: "fs", Transport: TransportStdio, Command: "node"}, true},
		{"http", ServerConfig{Name: "web", Transport: TransportHTTP, URL: "http://127.0.0.1:1/mcp"}, true},
		{"no command", ServerConfig{Name: "fs", Transport: TransportStdio}, false},
		{"no url", ServerConfig{Name: "web", Transport: TransportSSE}, false},
		{"bad name", ServerConfig{Name: "Bad Name", Transport: TransportStdio, Command: "x"}, false},
		{"separator", ServerConfig{Name: "a__b", Transport: TransportStdio, Command: "x"}, false},
		{"builtin", ServerConfig{Name: "builtin", Transport: TransportStdio, Command: "x"}, false},
		{"transport", ServerConfig{Name: "x", Transport: "grpc"}, false},
	}
	for _, tt := range tests {
		if err := (Config{Servers: []ServerConfig{tt.s}}).Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate = %v", tt.name, err)
		}
	}
}
