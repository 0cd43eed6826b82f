package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestToolServerEndToEnd: the console's real wiring with server-everything
// from npm, driven as the Tools page drives it: a connection test through
// the API lists everything's tools (without saving anything; a command
// that does not exist fails in words), the server is saved with a secret,
// tested again with the secret kept, the registry picks it up within
// seconds (its tools in GET /api/v1/tools), a tool enabled shows enabled
// in the next test, and once deleted its tools and its process go.
func TestToolServerEndToEnd(t *testing.T) {
	everything := mustEverything(t)
	m := MustRunMain(t, nil)
	ctx := context.Background()
	token := mustToken(t, m)
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, m.URL()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	type testAnswer struct {
		OK    bool `json:"ok"`
		Tools []struct {
			Name, Description, State string
		} `json:"tools"`
	}
	states := func(body string) map[string]string {
		t.Helper()
		var a testAnswer
		if err := json.Unmarshal([]byte(body), &a); err != nil || !a.OK {
			t.Fatalf("test answer %s (%v)", body, err)
		}
		out := map[string]string{}
		for _, tool := range a.Tools {
			out[tool.Name] = tool.State
		}
		return out
	}
	marker := strconv.FormatInt(time.Now().UnixNano(), 36)
	args, _ := json.Marshal([]string{everything})
	server := func(secret string) string {
		return `{"transport":"stdio","command":"node","args":` + string(args) + `,"env":{"CONVOSPHERE_TEST_MARKER":"` + marker + `","E2E_SECRET":"` + secret + `"}}`
	}

	// Test connection: everything's tools, nothing saved.
	code, body := call(http.MethodPost, "/api/v1/tool-servers/everything/test", server("s3cret-e2e"))
	if code != http.StatusOK {
		t.Fatalf("test: %d %s", code, body)
	}
	got := states(body)
	for _, tool := range []string{"everything__echo", "everything__get-sum", "everything__get-env"} {
		if got[tool] != "not enabled" {
			t.Errorf("%s: %q in %v", tool, got[tool], got)
		}
	}
	if list, err := m.App.Store.ToolServers(ctx); err != nil || len(list) != 0 {
		t.Fatalf("a test saved a server: %v %v", list, err)
	}
	if running(marker) {
		t.Error("the tested server's process is still running")
	}
	code, body = call(http.MethodPost, "/api/v1/tool-servers/broken/test", `{"transport":"stdio","command":"convosphere-no-such-command"}`)
	if code != http.StatusBadGateway || !strings.Contains(body, `"code":"tool_server_unreachable"`) || !strings.Contains(body, `The command \"convosphere-no-such-command\" was not found`) {
		t.Errorf("test of a missing command: %d %s", code, body)
	}

	// Save; test again leaving the secret empty (the stored one is used).
	if code, body = call(http.MethodPut, "/api/v1/tool-servers/everything", server("s3cret-e2e")); code != http.StatusOK || strings.Contains(body, "s3cret-e2e") {
		t.Fatalf("save: %d %s", code, body)
	}
	if code, body = call(http.MethodPost, "/api/v1/tool-servers/everything/test", server("")); code != http.StatusOK {
		t.Fatalf("test of the saved server: %d %s", code, body)
	}
	if list, err := m.App.Store.ToolServers(ctx); err != nil || len(list) != 1 || list[0].Env["E2E_SECRET"] != "s3cret-e2e" {
		t.Fatalf("stored %+v %v", list, err)
	}

	// The registry picks the saved server up within seconds.
	var tools string
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, tools = call(http.MethodGet, "/api/v1/tools", "")
		if code == http.StatusOK && strings.Contains(tools, `"everything__get-sum"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the saved server's tools did not appear: %d %s", code, tools)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if code, body = call(http.MethodPost, "/api/v1/tools/everything__get-sum/enable", ""); code != http.StatusOK {
		t.Fatalf("enable: %d %s", code, body)
	}
	_, body = call(http.MethodPost, "/api/v1/tool-servers/everything/test", server(""))
	if got := states(body); got["everything__get-sum"] != "enabled" || got["everything__echo"] != "not enabled" {
		t.Errorf("states after enabling: %v", got)
	}

	// Deleted: its tools go, and so does its process.
	if code, body = call(http.MethodDelete, "/api/v1/tool-servers/everything", ""); code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", code, body)
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		inv, _ := m.App.Tools.Inventory(ctx)
		names := make([]string, 0, len(inv))
		for _, s := range inv {
			names = append(names, s.Name)
		}
		if !slices.Contains(names, "everything__get-sum") && !running(marker) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after delete: tools %v, process running %v", names, running(marker))
		}
		time.Sleep(250 * time.Millisecond)
	}
	if code, _ = call(http.MethodDelete, "/api/v1/tool-servers/everything", ""); code != http.StatusNotFound {
		t.Errorf("delete again: %d", code)
	}
}

// running reports whether a live process has the marker in its environment.
func running(marker string) bool {
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
