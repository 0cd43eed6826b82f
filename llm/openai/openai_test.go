package openai_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/llm/openai"
	"github.com/convosphere/convosphere/llm/openaitest"
)

// MustNew returns a provider talking to srv with short retry delays; edit
// adjusts the configuration first.
func MustNew(tb testing.TB, srv *openaitest.Server, edit ...func(*openai.Config)) *openai.Provider {
	tb.Helper()
	cfg := openai.Config{
		BaseURL:        srv.BaseURL(),
		Model:          "test-model",
		EmbeddingModel: "test-embedding",
		RetryBaseDelay: time.Millisecond,
		RetryMaxDelay:  20 * time.Millisecond,
		RequestTimeout: 5 * time.Second,
	}
	for _, f := range edit {
		f(&cfg)
	}
	p, err := openai.New(cfg)
	if err != nil {
		tb.Fatalf("new provider: %v", err)
	}
	return p
}

// collect reads a stream to its end, failing if it does not close in time.
func collect(tb testing.TB, events <-chan engine.StreamEvent) []engine.StreamEvent {
	tb.Helper()
	var out []engine.StreamEvent
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return out
			}
			out = append(out, ev)
		case <-timeout:
			tb.Fatalf("stream did not close; events so far: %v", out)
		}
	}
}

// mustStream starts a stream and collects it.
func mustStream(tb testing.TB, p *openai.Provider, req engine.ChatRequest) []engine.StreamEvent {
	tb.Helper()
	events, err := p.Stream(context.Background(), req)
	if err != nil {
		tb.Fatalf("stream: %v", err)
	}
	return collect(tb, events)
}

func textOf(events []engine.StreamEvent) string {
	var b strings.Builder
	for _, ev := range events {
		if ev.Kind == engine.EventText {
			b.WriteString(ev.Text)
		}
	}
	return b.String()
}

// last checks that the final event is the only Done/Error event and returns it.
func last(tb testing.TB, events []engine.StreamEvent) engine.StreamEvent {
	tb.Helper()
	if len(events) == 0 {
		tb.Fatal("no events")
	}
	for i, ev := range events[:len(events)-1] {
		if ev.Kind == engine.EventDone || ev.Kind == engine.EventError {
			tb.Fatalf("event %d of %d is final kind %d", i, len(events), ev.Kind)
		}
	}
	ev := events[len(events)-1]
	if ev.Kind != engine.EventDone && ev.Kind != engine.EventError {
		tb.Fatalf("last event kind = %d, want done or error", ev.Kind)
	}
	return ev
}

func question(text string) engine.ChatRequest {
	return engine.ChatRequest{Messages: []engine.ChatMessage{
		{Role: engine.RoleSystem, Content: "You are helpful."},
		{Role: engine.RoleUser, Content: text},
	}, Question: text}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  openai.Config
		want string // substring of the error message; "" = valid
	}{
		{"openai defaults", openai.Config{Model: "gpt-4o-mini", APIKey: "sk-x"}, ""},
		{"ollama without key", openai.Config{BaseURL: "http://localhost:11434/v1", Model: "llama3.1"}, ""},
		{"vllm trailing slash", openai.Config{BaseURL: "http://127.0.0.1:8000/v1/", Model: "m"}, ""},
		{"azure", openai.Config{APIType: "Azure", BaseURL: "https://x.openai.azure.com", APIKey: "k", Model: "dep"}, ""},
		{"no scheme", openai.Config{BaseURL: "localhost:11434/v1", Model: "m"}, "llm.base_url"},
		{"ftp", openai.Config{BaseURL: "ftp://example.com/v1", Model: "m"}, "llm.base_url"},
		{"no host", openai.Config{BaseURL: "http:///v1", Model: "m"}, "llm.base_url"},
		{"credentials in url", openai.Config{BaseURL: "https://u:p@example.com/v1", Model: "m"}, "llm.api_key"},
		{"no model", openai.Config{BaseURL: "http://localhost:11434/v1"}, "llm.model"},
		{"blank model", openai.Config{Model: "  "}, "llm.model"},
		{"unknown api type", openai.Config{APIType: "bedrock", Model: "m"}, "llm.api_type"},
		{"azure without url", openai.Config{APIType: "azure", APIKey: "k", Model: "m"}, "llm.base_url"},
		{"azure without key", openai.Config{APIType: "azure", BaseURL: "https://x.openai.azure.com", Model: "m"}, "llm.api_key"},
		{"negative timeout", openai.Config{Model: "m", RequestTimeout: -time.Second}, "timeouts"},
		{"max below base", openai.Config{Model: "m", RetryBaseDelay: time.Second, RetryMaxDelay: time.Millisecond}, "retry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := openai.New(tt.cfg); err != nil {
					t.Fatalf("New() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want error mentioning %q", tt.want)
			}
			if engine.ErrorCode(err) != engine.EINVALID || !strings.Contains(engine.ErrorMessage(err), tt.want) {
				t.Fatalf("Validate() = %v (code %s), want EINVALID mentioning %q", err, engine.ErrorCode(err), tt.want)
			}
			if _, err := openai.New(tt.cfg); err == nil {
				t.Fatal("New() accepted an invalid config")
			}
		})
	}
}

func TestConfigRedactsKey(t *testing.T) {
	cfg := openai.Config{Model: "m", APIKey: "sk-secret-123"}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "llm", cfg)
	for name, s := range map[string]string{"String": cfg.String(), "%v": fmt.Sprintf("%v", cfg), "slog": buf.String()} {
		if strings.Contains(s, "sk-secret-123") {
			t.Errorf("%s leaks the API key: %s", name, s)
		}
		if !strings.Contains(s, "redacted") {
			t.Errorf("%s does not say the key is redacted: %s", name, s)
		}
	}
}

func TestDefaultModelAndModels(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.SetModels("llama3.1", "nomic-embed-text")
	p := MustNew(t, srv, func(c *openai.Config) { c.Model = "llama3.1" })
	if got := p.DefaultModel(); got != "llama3.1" {
		t.Fatalf("DefaultModel() = %q", got)
	}
	ids, err := p.Models(context.Background())
	if err != nil {
		t.Fatalf("Models: %v", err)
	}
	if strings.Join(ids, ",") != "llama3.1,nomic-embed-text" {
		t.Fatalf("Models() = %v", ids)
	}
}

func TestAPIKeyHeader(t *testing.T) {
	tests := []struct {
		name, key string
		wantAuth  string
	}{
		{"bearer key", "sk-test", "Bearer sk-test"},
		{"no key for local servers", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			if tt.key != "" {
				srv.RequireAPIKey(tt.key)
			}
			p := MustNew(t, srv, func(c *openai.Config) { c.APIKey = tt.key; c.Organization = "org-1" })
			if ev := last(t, mustStream(t, p, question("hi"))); ev.Kind != engine.EventDone {
				t.Fatalf("last event = %+v", ev)
			}
			h := srv.Requests()[0].Header
			if got := h.Get("Authorization"); got != tt.wantAuth {
				t.Fatalf("Authorization = %q, want %q", got, tt.wantAuth)
			}
			if got := h.Get("OpenAI-Organization"); got != "org-1" {
				t.Fatalf("OpenAI-Organization = %q", got)
			}
		})
	}
}

func TestAzure(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.RequireAPIKey("azure-key")
	p := MustNew(t, srv, func(c *openai.Config) {
		c.APIType, c.BaseURL, c.APIKey = "azure", srv.URL, "azure-key"
		c.Model, c.EmbeddingModel = "gpt-4o-prod", "embed-prod"
	})
	if ev := last(t, mustStream(t, p, question("hi"))); ev.Kind != engine.EventDone {
		t.Fatalf("last event = %+v", ev)
	}
	req := srv.Requests()[0]
	if req.Path != "/openai/deployments/gpt-4o-prod/chat/completions" {
		t.Errorf("chat path = %q", req.Path)
	}
	if req.Query != "api-version="+openai.DefaultAzureAPIVersion {
		t.Errorf("chat query = %q", req.Query)
	}
	if req.Header.Get("api-key") != "azure-key" || req.Header.Get("Authorization") != "" {
		t.Errorf("auth headers: api-key=%q Authorization=%q", req.Header.Get("api-key"), req.Header.Get("Authorization"))
	}
	if _, err := p.Embed(context.Background(), []string{"a"}); err != nil {
		t.Fatalf("embed: %v", err)
	}
	if got := srv.EmbeddingRequests()[0].Path; got != "/openai/deployments/embed-prod/embeddings" {
		t.Errorf("embeddings path = %q", got)
	}
}

func TestSettingsNameTheSourceInErrors(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.RequireAPIKey("right")
	tests := []struct {
		name, settings, want string
	}{
		{"configuration keys", "", "an admin should check llm.api_key."},
		{"console provider", `model provider "acme"`, `an admin should check the API key of model provider "acme".`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := MustNew(t, srv, func(c *openai.Config) { c.APIKey, c.Settings = "wrong", tt.settings })
			ev := last(t, mustStream(t, p, question("hi")))
			if ev.Kind != engine.EventError || !strings.HasSuffix(engine.ErrorMessage(ev.Err), tt.want) {
				t.Fatalf("last event = %+v, want an error ending %q", ev, tt.want)
			}
			if _, err := p.Models(context.Background()); !strings.HasSuffix(engine.ErrorMessage(err), tt.want) {
				t.Fatalf("Models error = %v, want one ending %q", err, tt.want)
			}
		})
	}
	err := openai.Config{Settings: `model provider "acme"`}.Validate()
	if !strings.Contains(engine.ErrorMessage(err), `the model of model provider "acme" is not set`) {
		t.Fatalf("Validate = %v", err)
	}
}
