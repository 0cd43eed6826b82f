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
