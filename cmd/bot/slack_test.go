package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/llm/openaitest"
)

const slackSecret = "e2e-signing-secret"

// mustSlackServer is slack-go's test server with the methods it lacks
// answered as Slack does: no streaming for this app (so answers are posted
// and edited), edits and reactions accepted.
func mustSlackServer(t *testing.T) (*slacktest.Server, *posts) {
	t.Helper()
	p := &posts{}
	s := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", p.handle)
		c.Handle("/chat.startStream", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"ok":false,"error":"unknown_method"}`))
		})
		c.Handle("/chat.update", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q,"text":"edited"}`, r.Form.Get("channel"), r.Form.Get("ts"))
		})
		c.Handle("/reactions.remove", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"ok":true}`)) })
	})
	s.Start()
	t.Cleanup(s.Stop)
	return s, p
}

// posts records chat.postMessage calls.
type posts struct {
	mu   sync.Mutex
	msgs []map[string]string
}

func (p *posts) handle(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	p.mu.Lock()
	defer p.mu.Unlock()
	m := map[string]string{"channel": r.Form.Get("channel"), "thread_ts": r.Form.Get("thread_ts"), "text": r.Form.Get("text"), "blocks": r.Form.Get("blocks")}
	p.msgs = append(p.msgs, m)
	fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":"1700000001.%06d"}`, m["channel"], len(p.msgs))
}

func (p *posts) all() []map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]map[string]string(nil), p.msgs...)
}

// postEvent POSTs a signed app_mention delivery to the bot.
func postEvent(t *testing.T, addr, eventID string, retry int) int {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"token": "XXYYZZ", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
		"event_id": eventID, "event_time": time.Now().Unix(),
		"event":          map[string]any{"type": "app_mention", "user": "U1", "text": "<@UBOT> How do I deploy?", "ts": "1700000000.000001", "channel": "C1", "event_ts": "1700000000.000001"},
		"authorizations": []map[string]any{{"team_id": "T1", "user_id": "UBOT", "is_bot": true}},
	})
	ts := time.Now().Unix()
	mac := hmac.New(sha256.New, []byte(slackSecret))
	fmt.Fprintf(mac, "v0:%d:%s", ts, body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/slack/events", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	if retry > 0 {
		req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(retry))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSlackEndToEnd runs the bot's real wiring with Slack configured: one
// event delivered four times, two at once, is answered once, in the thread.
func TestSlackEndToEnd(t *testing.T) {
	s, posted := mustSlackServer(t)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Bot.Addr = "127.0.0.1:0"
	cfg.Slack = config.Slack{BotToken: "xoxb-e2e", SigningSecret: slackSecret, Mode: "http", APIURL: s.GetAPIURL()}
	m := NewMain(cfg, slog.New(slog.DiscardHandler))
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	if err := m.App.Store.CreateAssistant(context.Background(), &engine.Assistant{Name: "Guide", IsDefault: true}); err != nil {
		t.Fatal(err)
	}

	codes := []int{postEvent(t, m.Addr(), "EvE2E", 0)}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 1; i <= 2; i++ {
		wg.Go(func() {
			c := postEvent(t, m.Addr(), "EvE2E", i)
			mu.Lock()
			codes = append(codes, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	codes = append(codes, postEvent(t, m.Addr(), "EvE2E", 3))
	for _, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("deliveries answered %v, want 200 each", codes)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(posted.all()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a duplicate answer would have come by now
	out := posted.all()
	if len(out) != 1 {
		t.Fatalf("chat.postMessage called %d times, want 1: %v", len(out), out)
	}
	if out[0]["channel"] != "C1" || out[0]["thread_ts"] != "1700000000.000001" || strings.TrimSpace(out[0]["text"]) == "" {
		t.Errorf("answer %v, want a non-empty message in C1's thread 1700000000.000001", out[0])
	}
	ev, err := m.App.Store.Outbound(context.Background(), engine.PlatformSlack, "EvE2E")
	if err != nil || len(ev) != 1 {
		t.Errorf("outbox %v, %v; want the answer recorded", ev, err)
	}
}

// TestSlackBadToken: a token Slack rejects stops the bot with a clear
// message naming the key.
func TestSlackBadToken(t *testing.T) {
	s := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/auth.test", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_auth"}`))
		})
	})
	s.Start()
	t.Cleanup(s.Stop)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Bot.Addr = "127.0.0.1:0"
	cfg.Slack = config.Slack{BotToken: "xoxb-revoked", SigningSecret: slackSecret, Mode: "http", APIURL: s.GetAPIURL()}
	m := NewMain(cfg, slog.New(slog.DiscardHandler))
	err := m.Run(context.Background())
	_ = m.Close()
	if err == nil || !strings.Contains(err.Error(), "slack.bot_token") {
		t.Errorf("Run = %v, want an error naming slack.bot_token", err)
	}
}

func TestCitationLink(t *testing.T) {
	if citationLink("") != nil {
		t.Error("a link without console.public_url")
	}
	link := citationLink("https://console.example.com/")
	tests := []struct {
		c    engine.Citation
		want string
	}{
		{engine.Citation{PassageID: "01JD:3", KnowledgeBase: "hand book"}, "https://console.example.com/knowledge/hand%20book/documents/01JD#chunk-3"},
		{engine.Citation{PassageID: "01JD", KnowledgeBase: "kb"}, ""},
		{engine.Citation{PassageID: "01JD:x", KnowledgeBase: "kb"}, ""},
		{engine.Citation{PassageID: "01JD:1"}, ""},
	}
	for _, tt := range tests {
		if got := link(tt.c); got != tt.want {
			t.Errorf("link(%+v) = %q, want %q", tt.c, got, tt.want)
		}
	}
}

// TestSlackToolApprovalEndToEnd runs the bot's real wiring with Slack, a
// scripted OpenAI-compatible model and server-everything from npm, for an
// assistant whose tool is under "ask": the answer stops at a prompt with
// Approve and Reject buttons, the asker's signed click approves it, and
// the worker resumes the turn: the tool runs and the answer goes on in a
// new message in the thread.
func TestSlackToolApprovalEndToEnd(t *testing.T) {
	everything := os.Getenv("CONVOSPHERE_TEST_MCP_EVERYTHING")
	if everything == "" {
		if os.Getenv("CONVOSPHERE_REQUIRE_SERVERS") != "" {
			t.Fatal("CONVOSPHERE_TEST_MCP_EVERYTHING is not set: run scripts/services.sh start")
		}
		t.Skip("CONVOSPHERE_TEST_MCP_EVERYTHING is not set (scripts/mcp-servers.sh)")
	}
	s, posted := mustSlackServer(t)
	llm := openaitest.NewServer(t)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Bot.Addr = "127.0.0.1:0"
	cfg.Slack = config.Slack{BotToken: "xoxb-e2e", SigningSecret: slackSecret, Mode: "http", APIURL: s.GetAPIURL()}
	cfg.LLM.BaseURL, cfg.LLM.Model = llm.BaseURL(), "e2e-model"
	cfg.Tools.MCPServers = []config.MCPServer{{Name: "everything", Transport: "stdio", Command: "node", Args: []string{everything}}}
	m := NewMain(cfg, slog.New(slog.DiscardHandler))
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	ctx := context.Background()
	if err := m.App.Store.CreateAssistant(ctx, &engine.Assistant{Name: "Ops", IsDefault: true, Tools: []string{"everything__get-sum"},
		ToolPolicy: map[string]engine.ToolMode{"everything__get-sum": engine.ToolAsk}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.App.Tools.Enable(ctx, "everything__get-sum", "admin"); err != nil {
		t.Fatal(err)
	}
	llm.Script(
		openaitest.Reply{ToolCalls: []openaitest.ToolCall{{ID: "call_sum", Name: "everything__get-sum", Arguments: `{"a":20,"b":22}`}}},
		openaitest.Reply{Chunks: []string{"The sum is 42."}},
	)
	if code := postEvent(t, m.Addr(), "EvAsk", 0); code != http.StatusOK {
		t.Fatalf("event: %d", code)
	}
	prompt := waitPosts(t, posted, 1)[0]
	var pending []*engine.ToolApproval
	deadline := time.Now().Add(5 * time.Second)
	for len(pending) == 0 && time.Now().Before(deadline) {
		pending, _ = m.App.Store.ListApprovals(ctx, engine.ApprovalFilter{Status: engine.ApprovalPending})
		time.Sleep(10 * time.Millisecond)
	}
	if len(pending) != 1 {
		t.Fatalf("pending approvals %v", pending)
	}
	id := pending[0].ID
	if !strings.Contains(prompt["blocks"], `"action_id":"convosphere_tool_approve"`) || !strings.Contains(prompt["blocks"], id) ||
		!strings.Contains(prompt["blocks"], "everything__get-sum") || prompt["thread_ts"] != "1700000000.000001" {
		t.Fatalf("the prompt %v has no approve button for %s", prompt, id)
	}
	if n := len(llm.Requests()); n != 1 {
		t.Fatalf("the model was called %d times before the approval", n)
	}

	payload, _ := json.Marshal(map[string]any{
		"type": "block_actions", "team": map[string]any{"id": "T1"}, "user": map[string]any{"id": "U1", "name": "ada"},
		"channel": map[string]any{"id": "C1"}, "message": map[string]any{"ts": "1700000001.000001", "thread_ts": "1700000000.000001"},
		"actions": []map[string]any{{"action_id": "convosphere_tool_approve", "block_id": "approval", "value": id, "type": "button"}},
	})
	if code := postSigned(t, m.Addr(), "/slack/interactions", "application/x-www-form-urlencoded", []byte("payload="+url.QueryEscape(string(payload)))); code != http.StatusOK {
		t.Fatalf("interaction: %d", code)
	}
	out := waitPosts(t, posted, 2)
	if out[1]["text"] != "The sum is 42." || out[1]["channel"] != "C1" || out[1]["thread_ts"] != "1700000000.000001" {
		t.Errorf("the resumed answer %v", out[1])
	}
	reqs := llm.Requests()
	last := reqs[len(reqs)-1].Messages[len(reqs[len(reqs)-1].Messages)-1]
	if last.Role != "tool" || last.ToolCallID != "call_sum" || !strings.Contains(last.Content, "42") {
		t.Errorf("the tool result sent to the model: %+v", last)
	}
	if ap, err := m.App.Store.ApprovalByID(ctx, id); err != nil || ap.Status != engine.ApprovalApproved || ap.DecidedBy != "slack:ada" {
		t.Errorf("approval %+v, %v", ap, err)
	}
}

// waitPosts waits for n chat.postMessage calls.
func waitPosts(t *testing.T, p *posts, n int) []map[string]string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(p.all()) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	out := p.all()
	if len(out) < n {
		t.Fatalf("%d messages posted, want %d: %v", len(out), n, out)
	}
	return out
}

// postSigned POSTs body to the bot, signed as Slack signs it.
func postSigned(t *testing.T, addr, path, contentType string, body []byte) int {
	t.Helper()
	ts := time.Now().Unix()
	mac := hmac.New(sha256.New, []byte(slackSecret))
	fmt.Fprintf(mac, "v0:%d:%s", ts, body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
