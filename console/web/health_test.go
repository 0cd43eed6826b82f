package web

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"typical", Config{MaxMessageBytes: 4096, SessionTTL: time.Hour, SecureCookies: true, Version: "1.0"}, true},
		{"negative message limit", Config{MaxMessageBytes: -1}, false},
		{"negative ttl", Config{SessionTTL: -time.Hour}, false},
		{"ttl too short", Config{SessionTTL: time.Second}, false},
		{"negative failures", Config{LoginMaxFailures: -1}, false},
		{"negative keep-alive", Config{SSEKeepAlive: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && engine.ErrorCode(err) != engine.EINVALID {
				t.Fatalf("code = %s, want invalid", engine.ErrorCode(err))
			}
		})
	}
}

func TestNewChecksDeps(t *testing.T) {
	store := MustOpenStore(t)
	if _, err := New(Config{}, Deps{Store: store}); err == nil {
		t.Fatal("New without Chat succeeded")
	}
	if _, err := New(Config{}, Deps{Chat: &countingChat{}}); err == nil {
		t.Fatal("New without Store succeeded")
	}
	if _, err := New(Config{MaxMessageBytes: -5}, Deps{Store: store, Chat: &countingChat{}}); err == nil {
		t.Fatal("New with an invalid config succeeded")
	}
	s, err := New(Config{}, Deps{Store: store, Chat: &countingChat{}})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.MaxMessageBytes != engine.DefaultMaxMessageBytes || s.cfg.SessionTTL != 12*time.Hour {
		t.Fatalf("defaults not applied: %+v", s.cfg)
	}
}

func TestProbes(t *testing.T) {
	tests := []struct {
		name       string
		ready      func(context.Context) error
		path       string
		wantStatus int
		want       map[string]string
	}{
		{"liveness ignores dependencies", func(context.Context) error { return errors.New("db down") },
			"/healthz", http.StatusOK, map[string]string{"status": "ok"}},
		{"no ready func", nil, "/readyz", http.StatusOK, map[string]string{"status": "ready"}},
		{"ready", func(context.Context) error { return nil }, "/readyz", http.StatusOK, map[string]string{"status": "ready"}},
		{"engine error message shown", func(context.Context) error {
			return engine.WrapError(engine.EUNAVAILABLE, errors.New("dial tcp 10.1.2.3:5432"), "The database is unavailable.")
		}, "/readyz", http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "The database is unavailable."}},
		{"raw cause hidden", func(context.Context) error { return errors.New("dial tcp 10.1.2.3:5432: refused") },
			"/readyz", http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "A dependency is not ready; the server log has the details."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := mustEnv(t, envOptions{Ready: tt.ready})
			w := env.get(tt.path, nil)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", w.Code, tt.wantStatus, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("content type = %q", ct)
			}
			got := decodeJSON(t, w.Body.Bytes())
			if len(got) != len(tt.want) {
				t.Fatalf("body = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("body[%q] = %v, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestProbesHead(t *testing.T) {
	env := mustEnv(t, envOptions{})
	for _, path := range []string{"/healthz", "/readyz"} {
		if w := env.serve(httptest.NewRequest(http.MethodHead, path, nil)); w.Code != http.StatusOK {
			t.Fatalf("HEAD %s = %d", path, w.Code)
		}
	}
}

func TestReadyTimeout(t *testing.T) {
	env := mustEnv(t, envOptions{
		Config: Config{ReadyTimeout: 50 * time.Millisecond},
		Ready: func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		},
	})
	start := time.Now()
	w := env.get("/readyz", nil)
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", w.Code)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("readiness took %s despite the timeout", d)
	}
	if got := decodeJSON(t, w.Body.Bytes())["error"]; got != "The readiness check timed out." {
		t.Fatalf("error = %v", got)
	}
}
