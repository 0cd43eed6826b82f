package web

import (
	"context"
	"encoding/json"
	"net/http"
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
