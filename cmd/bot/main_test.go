package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/convosphere/convosphere/cmd/internal/config"
)

// MustRunMain starts the real bot wiring on 127.0.0.1:0 with a temporary data directory.
func MustRunMain(tb testing.TB) *Main {
	tb.Helper()
	cfg := config.Default()
	cfg.DataDir = tb.TempDir()
	cfg.Bot.Addr = "127.0.0.1:0"
	m := NewMain(cfg, slog.New(slog.DiscardHandler))
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Error(err)
		}
	})
	return m
}

func TestBotProbes(t *testing.T) {
	m := MustRunMain(t)
	tests := []struct {
		path   string
		status int
		want   string
	}{
		{"/healthz", http.StatusOK, "ok"},
		{"/readyz", http.StatusOK, "ready"},
	}
	for _, tt := range tests {
		resp, err := http.Get("http://" + m.Addr() + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Status string }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tt.status || body.Status != tt.want {
			t.Errorf("%s: %d %q (%v), want %d %q", tt.path, resp.StatusCode, body.Status, err, tt.status, tt.want)
		}
	}
	// Readiness follows the database: once the store is closed it reports 503.
	if err := m.App.Store.Close(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + m.Addr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with a closed store: %d, want 503", resp.StatusCode)
	}
}

func TestBotRefusesBusyAddress(t *testing.T) {
	first := MustRunMain(t)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Bot.Addr = first.Addr()
	m := NewMain(cfg, slog.New(slog.DiscardHandler))
	err := m.Run(context.Background())
	_ = m.Close()
	if err == nil {
		t.Fatal("a second bot on the same address started")
	}
	if got := err.Error(); !strings.Contains(got, "bot.addr") || !strings.Contains(got, "CONVOSPHERE_BOT_ADDR") {
		t.Errorf("error does not say how to fix it: %s", got)
	}
}
