package main

import (
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/llm/openaitest"
	"github.com/convosphere/convosphere/observe/observetest"
)

// TestConsoleMetricsEndToEnd runs the console's real wiring with an
// OpenAI-compatible model: a chat answered from the demo knowledge base
// and a chat the model refuses are counted in /metrics (no sign-in, outside
// the router), scraped and parsed as Prometheus does.
func TestConsoleMetricsEndToEnd(t *testing.T) {
	llm := openaitest.NewServer(t)
	m := MustRunMain(t, func(c *config.Config) {
		c.LLM.BaseURL, c.LLM.Model = llm.BaseURL(), "e2e-model"
		c.LLM.MaxRetries = 0
	})
	token := mustToken(t, m)
	llm.Script(
		openaitest.Reply{Chunks: []string{"Create a Slack app [1]."}, Usage: &openaitest.Usage{PromptTokens: 120, CompletionTokens: 6}},
		openaitest.Reply{Status: http.StatusUnauthorized, ErrorMessage: "Incorrect API key provided.", ErrorCode: "invalid_api_key"},
	)
	if resp := postChat(t, m, token, "", `{"message": "How do I connect Slack?"}`); resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("chat: %s %s", resp.Status, body)
	}
	refused := postChat(t, m, token, "", `{"message": "And Discord?"}`).StatusCode
	if refused == http.StatusOK {
		t.Fatal("the refused model call answered 200")
	}

	metrics := observetest.Scrape(t, m.URL()+"/metrics")
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"convosphere_replies_total", []string{"platform", "console", "outcome", "answered"}, 1},
		{"convosphere_replies_total", []string{"platform", "console", "outcome", "failed"}, 1},
		{"convosphere_reply_duration_seconds", []string{"platform", "console", "outcome", "answered"}, 1},
		{"convosphere_model_requests_total", []string{"model", "e2e-model", "outcome", "ok"}, 1},
		{"convosphere_model_requests_total", []string{"model", "e2e-model", "outcome", "error"}, 1},
		{"convosphere_model_tokens_total", []string{"model", "e2e-model", "type", "input"}, 120},
		{"convosphere_model_tokens_total", []string{"model", "e2e-model", "type", "output"}, 6},
		{"convosphere_retrieval_duration_seconds", []string{"outcome", "ok"}, 2},
		// The provider refusing its key is "unavailable" to the engine.
		{"convosphere_errors_total", []string{"component", "model", "kind", "unavailable"}, 1},
		{"convosphere_errors_total", []string{"component", "turn", "kind", "unavailable"}, 1},
		{"convosphere_http_requests_total", []string{"route", "/api/v1/chat", "method", "POST", "code", "200"}, 1},
		{"convosphere_http_requests_total", []string{"route", "/api/v1/chat", "method", "POST", "code", strconv.Itoa(refused)}, 1},
		{"convosphere_events_received_total", []string{"platform", "slack"}, 0}, // the console receives no platform events
	}
	for _, tt := range tests {
		if got := metrics.Value(tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v = %v, want %v (series %v)", tt.name, tt.labels, got, tt.want, metrics.Series(tt.name))
		}
	}
	if !metrics.Has("go_goroutines") {
		t.Error("/metrics lacks the Go collector")
	}
	// The scrape is not one of the router's requests: no session, no audit.
	if s := metrics.Series("convosphere_http_requests_total"); len(s) != 2 {
		t.Errorf("http_requests_total series %v, want the two chats only", s)
	}
}
