package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convosphere/convosphere/cmd/internal/app"
	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/llm/openaitest"
)

// MustRunMain starts the real console wiring on 127.0.0.1:0 with a
// temporary data directory and the project's docs as the demo knowledge base.
func MustRunMain(tb testing.TB, edit func(*config.Config)) *Main {
	tb.Helper()
	cfg := config.Default()
	cfg.DataDir = tb.TempDir()
	cfg.Console.Addr = "127.0.0.1:0"
	cfg.Admin.Password = "test-admin-password"
	cfg.Demo.DocsDir = filepath.Join("..", "..", "docs")
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	var out bytes.Buffer
	m := NewMain(cfg, &out, slog.New(slog.DiscardHandler))
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Error(err)
		}
	})
	if !strings.Contains(out.String(), m.URL()+"/playground") || !strings.Contains(out.String(), "admin / test-admin-password") {
		tb.Errorf("start-up banner lacks the URL or the sign-in:\n%s", out.String())
	}
	return m
}

func mustToken(tb testing.TB, m *Main) string {
	tb.Helper()
	token, err := CreateToken(context.Background(), m.App.Store, "admin", "test")
	if err != nil {
		tb.Fatal(err)
	}
	return token
}

type chatResponse struct {
	ConversationID string `json:"conversation_id"`
	Answer         string `json:"answer"`
	Citations      []struct {
		Document string `json:"document"`
		Title    string `json:"title"`
		Snippet  string `json:"snippet"`
	} `json:"citations"`
	TraceID string `json:"trace_id"`
	Error   *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func postChat(tb testing.TB, m *Main, token, accept, body string) *http.Response {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, m.URL()+"/api/v1/chat", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { resp.Body.Close() })
	return resp
}

func decodeChat(tb testing.TB, r io.Reader) chatResponse {
	tb.Helper()
	var c chatResponse
	if err := json.NewDecoder(r).Decode(&c); err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestEndToEndWithOpenAICompatibleServer(t *testing.T) {
	llm := openaitest.NewServer(t)
	m := MustRunMain(t, func(c *config.Config) {
		c.LLM.BaseURL = llm.BaseURL()
		c.LLM.Model = "e2e-model"
	})
	token := mustToken(t, m)
	ctx := context.Background()

	for _, probe := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(m.URL() + probe)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %v %v", probe, resp.Status, err)
		}
		resp.Body.Close()
	}

	llm.Script(openaitest.Reply{Chunks: []string{"Create a Slack app ", "from the manifest, ", "then set the tokens [1]."}})
	resp := postChat(t, m, token, "", `{"message": "How do I connect Slack?"}`)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("chat: %s %s", resp.Status, body)
	}
	c := decodeChat(t, resp.Body)
	if c.Answer != "Create a Slack app from the manifest, then set the tokens [1]." || c.ConversationID == "" || c.TraceID == "" {
		t.Fatalf("response = %+v", c)
	}
	if len(c.Citations) != 1 || c.Citations[0].Document != "slack.md" || c.Citations[0].Snippet == "" {
		t.Fatalf("citations = %+v", c.Citations)
	}
	reqs := llm.Requests()
	if len(reqs) != 1 || reqs[0].Model != "e2e-model" || !reqs[0].Stream {
		t.Fatalf("model requests = %+v", reqs)
	}
	if sys := reqs[0].Messages[0].Content; !strings.Contains(sys, "slack.md") {
		t.Errorf("the prompt does not carry the Slack docs passage:\n%s", sys)
	}
	tr, err := m.App.Store.TraceByID(ctx, c.TraceID)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Outcome != engine.OutcomeAnswered || tr.Model != "e2e-model" || len(tr.Passages) == 0 || tr.TokensOut == 0 || len(tr.Steps) < 4 {
		t.Errorf("trace = %+v", tr)
	}

	// The same, streamed, continuing the conversation.
	llm.Script(openaitest.Reply{Chunks: []string{"Use ", "Socket Mode [1]."}})
	resp = postChat(t, m, token, "text/event-stream", `{"message": "And without a public URL?", "conversation_id": "`+c.ConversationID+`"}`)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %q", ct)
	}
	var deltas []string
	var done chatResponse
	sc := bufio.NewScanner(resp.Body)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "delta":
			var d struct{ Text string }
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d); err != nil {
				t.Fatal(err)
			}
			deltas = append(deltas, d.Text)
		case strings.HasPrefix(line, "data: ") && event == "done":
			done = decodeChat(t, strings.NewReader(strings.TrimPrefix(line, "data: ")))
		case strings.HasPrefix(line, "data: ") && event == "error":
			t.Fatalf("stream error: %s", line)
		}
	}
	if strings.Join(deltas, "") != "Use Socket Mode [1]." || done.Answer != "Use Socket Mode [1]." || done.ConversationID != c.ConversationID {
		t.Fatalf("deltas %q, done %+v", deltas, done)
	}
	if msgs := llm.Requests()[1].Messages; len(msgs) != 4 {
		t.Errorf("the follow-up carried %d messages, want system, first question, first answer, question", len(msgs))
	}
}

func TestEndToEndZeroConfigAnswersFromDocs(t *testing.T) {
	m := MustRunMain(t, nil)
	token := mustToken(t, m)
	resp := postChat(t, m, token, "", `{"message": "How do I connect Slack?"}`)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("chat: %s %s", resp.Status, body)
	}
	c := decodeChat(t, resp.Body)
	if !strings.Contains(c.Answer, "No language model is configured") {
		t.Errorf("the extractive answer is not labelled as such:\n%s", c.Answer)
	}
	if len(c.Citations) == 0 || c.Citations[0].Document != "slack.md" {
		t.Fatalf("want slack.md cited first, got %+v", c.Citations)
	}
}

func TestEndToEndBadInput(t *testing.T) {
	m := MustRunMain(t, func(c *config.Config) { c.Engine.MaxMessageBytes = 1024 })
	token := mustToken(t, m)
	tests := []struct {
		name   string
		token  string
		body   string
		status int
	}{
		{"no token", "", `{"message":"hi"}`, http.StatusUnauthorized},
		{"bad token", "cs_nope", `{"message":"hi"}`, http.StatusUnauthorized},
		{"malformed json", token, `{"message":`, http.StatusBadRequest},
		{"empty message", token, `{"message":""}`, http.StatusBadRequest},
		{"nul byte", token, `{"message":"a\u0000b"}`, http.StatusBadRequest},
		{"invalid utf-8", token, "{\"message\":\"caf\xe9\"}", http.StatusBadRequest},
		{"too large", token, `{"message":"` + strings.Repeat("x", 1100) + `"}`, http.StatusRequestEntityTooLarge},
		{"unknown assistant", token, `{"message":"hi","assistant":"Nobody"}`, http.StatusNotFound},
		{"unknown conversation", token, `{"message":"hi","conversation_id":"nope"}`, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := postChat(t, m, tt.token, "", tt.body)
			c := decodeChat(t, resp.Body)
			if resp.StatusCode != tt.status || c.Error == nil || c.Error.Message == "" {
				t.Fatalf("status %d error %+v, want %d with a JSON error", resp.StatusCode, c.Error, tt.status)
			}
		})
	}
	convs, err := m.App.Store.ListConversations(context.Background(), engine.ConversationFilter{})
	if err != nil || len(convs) != 0 {
		t.Fatalf("bad requests stored %d conversations (%v)", len(convs), err)
	}
}

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CONVOSPHERE_CONFIG", "")
	t.Setenv("CONVOSPHERE_DATA_DIR", dir)
	t.Setenv("CONVOSPHERE_LLM_API_KEY", "sk-secret-key")
	ctx := context.Background()
	exec := func(stdin string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(ctx, args, strings.NewReader(stdin), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, _, errOut := exec("", "migrate"); code != 0 {
		t.Fatalf("migrate: %d %s", code, errOut)
	}
	if code, out, errOut := exec("a-long-password\n", "user", "create", "--name", "ada", "--role", "editor", "--password-stdin"); code != 0 || !strings.Contains(out, "created user ada (editor)") {
		t.Fatalf("user create: %d %s %s", code, out, errOut)
	}
	code, out, errOut := exec("", "token", "create", "--user", "ada")
	if code != 0 {
		t.Fatalf("token create: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "cs_") || len(last) < 40 {
		t.Fatalf("the token is not on the last line: %q", out)
	}
	if code, _, errOut := exec("", "token", "create", "--user", "nobody"); code != 1 || !strings.Contains(errOut, "no user") {
		t.Fatalf("token for a missing user: %d %s", code, errOut)
	}
	if code, out, _ := exec("", "config", "show"); code != 0 || strings.Contains(out, "sk-secret-key") || !strings.Contains(out, "[redacted]") {
		t.Fatalf("config show: %d\n%s", code, out)
	}
	if code, _, errOut := exec("", "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command: %d %s", code, errOut)
	}
	if code, out, errOut := exec("", "knowledge", "ingest", "--kb", "docs", filepath.Join("..", "..", "docs")); code != 0 || !strings.Contains(out, "created knowledge base docs") {
		t.Fatalf("knowledge ingest: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := exec("", "knowledge", "search", "--kb", "docs", "connect", "Slack"); code != 0 || !strings.Contains(out, "slack.md") {
		t.Fatalf("knowledge search: %d %s %s", code, out, errOut)
	}
	t.Setenv("CONVOSPHERE_CONSOLE_ADDR", "not-an-address")
	if code, _, errOut := exec("", "serve"); code != 2 || !strings.Contains(errOut, "console.addr") {
		t.Fatalf("bad config: %d %s", code, errOut)
	}
}

// TestEndToEndWeaviate runs the console on the Weaviate knowledge backend
// (a real server: scripts/services.sh starts one) and answers from the docs.
func TestEndToEndWeaviate(t *testing.T) {
	url := os.Getenv("CONVOSPHERE_TEST_WEAVIATE_URL")
	if url == "" {
		msg := "CONVOSPHERE_TEST_WEAVIATE_URL is not set: run `eval \"$(scripts/services.sh start)\"`"
		if os.Getenv("CONVOSPHERE_REQUIRE_SERVERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	collection := "ConvoSphereE2E" + strings.ReplaceAll(engine.NewID()[10:], "-", "")
	m := MustRunMain(t, func(c *config.Config) {
		c.Weaviate.URL = url
		c.Weaviate.Collection = collection
	})
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, url+"/v1/schema/"+collection, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})
	if got := m.App.Index.Name(); got != "weaviate" {
		t.Fatalf("index backend = %s, want weaviate", got)
	}
	token := mustToken(t, m)
	resp := postChat(t, m, token, "", `{"message": "How do I connect Slack?"}`)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("chat: %s %s", resp.Status, body)
	}
	c := decodeChat(t, resp.Body)
	var cited bool
	for _, cit := range c.Citations {
		cited = cited || cit.Document == "slack.md"
	}
	if !cited {
		t.Fatalf("want slack.md cited, got %+v", c.Citations)
	}
	tr, err := m.App.Store.TraceByID(context.Background(), c.TraceID)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Retrieval == nil || tr.Retrieval.Backend != "weaviate" {
		t.Errorf("trace retrieval = %+v, want the weaviate backend recorded", tr.Retrieval)
	}
}

// TestEndToEndModelProvider routes an assistant's model through a model
// provider stored as the console will store it: its key sealed with the
// process's SecretBox (here from the generated data_dir/encryption.key).
func TestEndToEndModelProvider(t *testing.T) {
	provider := openaitest.NewServer(t)
	provider.RequireAPIKey("sk-e2e-provider")
	provider.Script(openaitest.Reply{Chunks: []string{"Routed through ", "the provider [1]."}})
	m := MustRunMain(t, nil) // no llm.*: the default model is the extractive responder
	ctx := context.Background()

	sealed, err := m.App.Secrets.Seal("sk-e2e-provider")
	if err != nil {
		t.Fatal(err)
	}
	p := &engine.ModelProvider{Name: "acme", BaseURL: provider.BaseURL(), Models: []string{"m1"}, APIKeySealed: sealed}
	if err := m.App.Store.SaveModelProvider(ctx, p); err != nil {
		t.Fatal(err)
	}
	as, err := m.App.Store.AssistantByName(ctx, app.DemoAssistant)
	if err != nil {
		t.Fatal(err)
	}
	as.Model = "acme/m1"
	if err := m.App.Store.UpdateAssistant(ctx, as); err != nil {
		t.Fatal(err)
	}

	resp := postChat(t, m, mustToken(t, m), "", `{"message": "How do I connect Slack?"}`)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("chat: %s %s", resp.Status, body)
	}
	c := decodeChat(t, resp.Body)
	if c.Answer != "Routed through the provider [1]." {
		t.Fatalf("response = %+v", c)
	}
	reqs := provider.Requests()
	if len(reqs) != 1 || reqs[0].Model != "m1" || reqs[0].Header.Get("Authorization") != "Bearer sk-e2e-provider" {
		t.Fatalf("provider requests = %+v", reqs)
	}
	tr, err := m.App.Store.TraceByID(ctx, c.TraceID)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Outcome != engine.OutcomeAnswered || tr.Model != "acme/m1" {
		t.Errorf("trace outcome %q, model %q", tr.Outcome, tr.Model)
	}
	fi, err := os.Stat(filepath.Join(m.App.Config.DataDir, app.EncryptionKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("generated key file: %v, %v", fi, err)
	}

	// Deleted in the console, the provider fails the assistant's answers
	// with a message naming it, without going to another model.
	if err := m.App.Store.DeleteModelProvider(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if err := m.App.ModelRouter.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	resp = postChat(t, m, mustToken(t, m), "", `{"message": "How do I connect Slack?"}`)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK || !strings.Contains(string(body), `Model provider \"acme\" was deleted`) {
		t.Fatalf("chat after deleting the provider: %s %s", resp.Status, body)
	}
	if n := len(provider.Requests()); n != 1 {
		t.Fatalf("the provider got %d requests, want 1", n)
	}
}

// TestModelProvidersAPI: an admin adds a provider through the console's
// API with its key (sealed at rest, never shown), tests the connection
// (the provider lists its models), changes it without repeating the key,
// and an assistant using "<provider>/<model>" is answered by it at once.
func TestModelProvidersAPI(t *testing.T) {
	provider := openaitest.NewServer(t)
	provider.RequireAPIKey("sk-api-provider")
	provider.SetModels("m1", "m2")
	m := MustRunMain(t, nil)
	ctx := context.Background()
	token := mustToken(t, m)
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, m.URL()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	url := provider.BaseURL()
	if code, body := call(http.MethodPost, "/api/v1/model-providers/acme/test", `{"base_url":"`+url+`","api_key":"sk-wrong"}`); code != http.StatusBadGateway {
		t.Errorf("test with a wrong key: %d %s", code, body)
	}
	if code, body := call(http.MethodPost, "/api/v1/model-providers/acme/test", `{"base_url":"`+url+`","api_key":"sk-api-provider"}`); code != http.StatusOK || !strings.Contains(body, `"m2"`) {
		t.Errorf("test: %d %s", code, body)
	}
	if code, body := call(http.MethodPut, "/api/v1/model-providers/acme", `{"base_url":"`+url+`","models":["m1"],"api_key":"sk-api-provider"}`); code != http.StatusOK || strings.Contains(body, "sk-api-provider") || !strings.Contains(body, `"has_api_key":true`) {
		t.Fatalf("save: %d %s", code, body)
	}
	// Changed without the key: the stored one is kept.
	if code, body := call(http.MethodPut, "/api/v1/model-providers/acme", `{"base_url":"`+url+`","models":["m1","m2"]}`); code != http.StatusOK || !strings.Contains(body, `"has_api_key":true`) {
		t.Fatalf("update: %d %s", code, body)
	}
	stored, err := m.App.Store.ModelProviders(ctx)
	if err != nil || len(stored) != 1 || len(stored[0].APIKeySealed) == 0 || strings.Contains(string(stored[0].APIKeySealed), "sk-api-provider") {
		t.Fatalf("stored providers %+v, %v", stored, err)
	}
	if code, body := call(http.MethodPut, "/api/v1/model-providers/Bad%20Name", `{"models":["m1"]}`); code != http.StatusBadRequest || !strings.Contains(body, "invalid") {
		t.Errorf("bad name: %d %s", code, body)
	}
	as, err := m.App.Store.AssistantByName(ctx, app.DemoAssistant)
	if err != nil {
		t.Fatal(err)
	}
	as.Model = "acme/m2"
	if err := m.App.Store.UpdateAssistant(ctx, as); err != nil {
		t.Fatal(err)
	}
	provider.Script(openaitest.Reply{Chunks: []string{"From acme."}})
	if c := decodeChat(t, postChat(t, m, token, "", `{"message": "Hello?"}`).Body); c.Answer != "From acme." {
		t.Fatalf("answer %+v", c)
	}
	reqs := provider.Requests()
	if last := reqs[len(reqs)-1]; last.Model != "m2" || last.Header.Get("Authorization") != "Bearer sk-api-provider" {
		t.Errorf("the provider got model %q with %q", last.Model, last.Header.Get("Authorization"))
	}
	if code, _ := call(http.MethodDelete, "/api/v1/model-providers/acme", ""); code != http.StatusNoContent {
		t.Errorf("delete: %d", code)
	}
	if code, _ := call(http.MethodDelete, "/api/v1/model-providers/acme", ""); code != http.StatusNotFound {
		t.Errorf("delete again: %d", code)
	}
}
