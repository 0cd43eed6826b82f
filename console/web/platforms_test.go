package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/convosphere/convosphere/engine"
)

func TestPlatformsAPI(t *testing.T) {
	env := mustEnv(t, envOptions{})
	if err := env.store.SetPlatformStatus(context.Background(), &engine.PlatformStatus{
		Platform: engine.PlatformDiscord, State: engine.StatusFailed, Detail: "discord closed the gateway with code 4004"}); err != nil {
		t.Fatal(err)
	}
	tok := env.MustToken(env.MustUser("vera", engine.RoleViewer))
	w := env.get("/api/v1/platforms", tok)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var got struct {
		Platforms []engine.PlatformStatus `json:"platforms"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Platforms) != 1 || got.Platforms[0].State != "failed" || got.Platforms[0].Detail == "" {
		t.Errorf("platforms %+v", got.Platforms)
	}
	if w := env.get("/api/v1/platforms", nil); w.Code != http.StatusUnauthorized {
		t.Errorf("without a token: %d, want 401", w.Code)
	}
}

func TestToolCallsAPI(t *testing.T) {
	env := mustEnv(t, envOptions{})
	ctx := context.Background()
	for _, tool := range []string{"files__read", "web__fetch"} {
		if err := env.store.RecordToolCall(ctx, &engine.ToolCallRecord{TraceID: "tr", AssistantID: "A1", AssistantName: "ops",
			Platform: engine.PlatformSlack, UserID: "U1", Tool: tool, ArgumentsHash: "abc", Outcome: engine.ToolOK}); err != nil {
			t.Fatal(err)
		}
	}
	admin := env.MustToken(env.MustUser("ada", engine.RoleAdmin))
	w := env.get("/api/v1/tool-calls?tool=files__read", admin)
	var got struct {
		ToolCalls []engine.ToolCallRecord `json:"tool_calls"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != http.StatusOK || len(got.ToolCalls) != 1 || got.ToolCalls[0].Tool != "files__read" {
		t.Errorf("%d %s", w.Code, w.Body)
	}
	if w := env.get("/api/v1/tool-calls?limit=0", admin); w.Code != http.StatusBadRequest {
		t.Errorf("limit 0: %d", w.Code)
	}
	viewer := env.MustToken(env.MustUser("vera", engine.RoleViewer))
	if w := env.get("/api/v1/tool-calls", viewer); w.Code != http.StatusForbidden {
		t.Errorf("a viewer: %d, want 403", w.Code)
	}
}

func TestToolServersAPI(t *testing.T) {
	env := mustEnv(t, envOptions{})
	admin := env.MustToken(env.MustUser("ada", engine.RoleAdmin))
	do := func(method, path, body string, c *client) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		c.apply(r)
		return env.serve(r)
	}
	w := do(http.MethodPut, "/api/v1/tool-servers/files", `{"transport":"stdio","command":"npx","args":["-y","server"],"env":{"API_TOKEN":"s3cret"}}`, admin)
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), "s3cret") {
		t.Fatalf("put: %d %s", w.Code, w.Body)
	}
	stored, err := env.store.ToolServers(context.Background())
	if err != nil || len(stored) != 1 || stored[0].Env["API_TOKEN"] != "s3cret" {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	if w := do(http.MethodGet, "/api/v1/tool-servers", "", admin); w.Code != http.StatusOK || strings.Contains(w.Body.String(), "s3cret") || !strings.Contains(w.Body.String(), `"API_TOKEN":"[redacted]"`) {
		t.Errorf("list: %d %s", w.Code, w.Body)
	}
	if w := do(http.MethodPut, "/api/v1/tool-servers/Bad__Name", `{"transport":"stdio","command":"x"}`, admin); w.Code != http.StatusBadRequest {
		t.Errorf("a bad name: %d", w.Code)
	}
	if w := do(http.MethodPut, "/api/v1/tool-servers/web", `{"transport":"http"}`, admin); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "needs a url") {
		t.Errorf("http without url: %d %s", w.Code, w.Body)
	}
	viewer := env.MustToken(env.MustUser("vera", engine.RoleViewer))
	if w := do(http.MethodGet, "/api/v1/tool-servers", "", viewer); w.Code != http.StatusForbidden {
		t.Errorf("a viewer: %d", w.Code)
	}
	if w := do(http.MethodDelete, "/api/v1/tool-servers/files", "", admin); w.Code != http.StatusNoContent {
		t.Errorf("delete: %d", w.Code)
	}
	if w := do(http.MethodDelete, "/api/v1/tool-servers/files", "", admin); w.Code != http.StatusNotFound {
		t.Errorf("delete again: %d", w.Code)
	}
}
