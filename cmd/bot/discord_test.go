package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/engine"
)

// discordAPI stands in for Discord's REST API: it records the edits of
// interaction responses and answers command registration.
type discordAPI struct {
	mu    sync.Mutex
	edits []string
	puts  []string
}

func (d *discordAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d.mu.Lock()
	defer d.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPatch && strings.HasSuffix(r.URL.Path, "/messages/@original"):
		var m struct{ Content string }
		_ = json.Unmarshal(body, &m)
		d.edits = append(d.edits, m.Content)
		fmt.Fprint(w, `{"id":"orig","channel_id":"C1"}`)
	case r.Method == http.MethodPut:
		d.puts = append(d.puts, r.URL.Path)
		var cmds []map[string]any
		_ = json.Unmarshal(body, &cmds)
		for i, c := range cmds {
			c["id"] = strconv.Itoa(i + 1)
		}
		_ = json.NewEncoder(w).Encode(cmds)
	default:
		fmt.Fprint(w, `{"id":"m1","channel_id":"C1"}`)
	}
}

func discordConfig(t *testing.T, apiURL string) (config.Config, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Bot.Addr = "127.0.0.1:0"
	cfg.Discord = config.Discord{ApplicationID: "APP1", PublicKey: hex.EncodeToString(pub), BotToken: "bot-token", Mode: "http", APIURL: apiURL}
	return cfg, priv
}

// TestDiscordEndToEnd: a signed /ask reaches the bot's real wiring, is
// deferred, and the answer is edited into the original response.
func TestDiscordEndToEnd(t *testing.T) {
	api := &discordAPI{}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	cfg, priv := discordConfig(t, srv.URL+"/api/v10")
	m := NewMain(cfg, slog.New(slog.DiscardHandler))
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	if err := m.App.Store.CreateAssistant(context.Background(), &engine.Assistant{Name: "Guide", IsDefault: true}); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{
		"type": 2, "id": "I1", "token": "TOK", "application_id": "APP1", "guild_id": "G1", "channel_id": "C1", "version": 1,
		"member": map[string]any{"user": map[string]any{"id": "U1", "username": "mason"}},
		"data":   map[string]any{"id": "1", "name": "ask", "type": 1, "options": []map[string]any{{"type": 3, "name": "question", "value": "How do I deploy?"}}},
	})
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, _ := http.NewRequest(http.MethodPost, "http://"+m.Addr()+"/discord/interactions", bytes.NewReader(body))
	req.Header.Set("X-Signature-Ed25519", hex.EncodeToString(ed25519.Sign(priv, append([]byte(ts), body...))))
	req.Header.Set("X-Signature-Timestamp", ts)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(got)) != `{"type":5}` {
		t.Fatalf("answer %d %s, want a deferred response", resp.StatusCode, got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		api.mu.Lock()
		n := len(api.edits)
		api.mu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the answer was never edited into the original response")
}

func TestDiscordRegisterCommand(t *testing.T) {
	api := &discordAPI{}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	cfg, _ := discordConfig(t, srv.URL+"/api/v10")
	var out, errOut bytes.Buffer
	if code := runCommand(context.Background(), cfg, []string{"discord", "register", "--guild", "G1"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if len(api.puts) != 1 || api.puts[0] != "/api/v10/applications/APP1/guilds/G1/commands" || !strings.Contains(out.String(), "registered /ask") {
		t.Errorf("puts %v, output %q", api.puts, out.String())
	}
	if code := runCommand(context.Background(), cfg, []string{"discord", "unregister"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "discord register") {
		t.Errorf("unknown command: exit %d, %q", code, errOut.String())
	}
}
