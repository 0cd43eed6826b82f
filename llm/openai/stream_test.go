package openai_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/llm/openai"
	"github.com/convosphere/convosphere/llm/openaitest"
)

func TestStreamText(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.Script(openaitest.Reply{
		Chunks: []string{"Hel", "lo, ", "wörld", " 🌍"},
		Model:  "test-model-2024-01-01",
		Usage:  &openaitest.Usage{PromptTokens: 12, CompletionTokens: 4},
	})
	p := MustNew(t, srv)
	events := mustStream(t, p, question("Say hello"))

	var kinds []engine.EventKind
	for _, ev := range events {
		kinds = append(kinds, ev.Kind)
		if ev.Model != "test-model-2024-01-01" {
			t.Errorf("event %d model = %q, want the response's model", ev.Kind, ev.Model)
		}
	}
	want := []engine.EventKind{engine.EventText, engine.EventText, engine.EventText, engine.EventText, engine.EventUsage, engine.EventDone}
	if len(kinds) != len(want) {
		t.Fatalf("kinds = %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("kinds = %v, want %v", kinds, want)
		}
	}
	if got := textOf(events); got != "Hello, wörld 🌍" {
		t.Fatalf("text = %q", got)
	}
	if u := events[4].Usage; u.InputTokens != 12 || u.OutputTokens != 4 {
		t.Fatalf("usage = %+v", u)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Fatalf("requests = %d", n)
	}
}

func TestStreamRequestShape(t *testing.T) {
	tests := []struct {
		name         string
		req          engine.ChatRequest
		wantModel    string
		wantTemp     *float64 // nil: omitted
		wantMax      int
		wantMaxCompl int
	}{
		{
			name:      "defaults",
			req:       question("hi"),
			wantModel: "test-model", wantTemp: ptr(0),
		},
		{
			name:      "model, temperature and max tokens",
			req:       engine.ChatRequest{Model: "other", Temperature: 0.7, MaxTokens: 256, Messages: question("hi").Messages},
			wantModel: "other", wantTemp: ptr(0.7), wantMax: 256,
		},
		{
			name:      "reasoning model",
			req:       engine.ChatRequest{Model: "o3-mini", Temperature: 0.7, MaxTokens: 256, Messages: question("hi").Messages},
			wantModel: "o3-mini", wantMaxCompl: 256,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			p := MustNew(t, srv)
			if ev := last(t, mustStream(t, p, tt.req)); ev.Kind != engine.EventDone {
				t.Fatalf("last event = %+v", ev)
			}
			got := srv.Requests()[0]
			if got.Model != tt.wantModel || !got.Stream || got.StreamOptions == nil || !got.StreamOptions.IncludeUsage {
				t.Fatalf("model/stream = %q %v %+v", got.Model, got.Stream, got.StreamOptions)
			}
			switch {
			case tt.wantTemp == nil && got.Temperature != nil:
				t.Errorf("temperature = %v, want omitted", *got.Temperature)
			case tt.wantTemp != nil && (got.Temperature == nil || abs(*got.Temperature-*tt.wantTemp) > 1e-6):
				t.Errorf("temperature = %v, want %v", got.Temperature, *tt.wantTemp)
			}
			if got.MaxTokens != tt.wantMax || got.MaxCompletionTokens != tt.wantMaxCompl {
				t.Errorf("max_tokens = %d, max_completion_tokens = %d", got.MaxTokens, got.MaxCompletionTokens)
			}
			if len(got.Messages) != 2 || got.Messages[0].Role != "system" || got.Messages[1].Content != "hi" {
				t.Errorf("messages = %+v", got.Messages)
			}
		})
	}
}

func ptr(f float64) *float64 { return &f }

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func TestStreamToolCalls(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.Script(openaitest.Reply{
		Text: "Let me check.",
		ToolCalls: []openaitest.ToolCall{
			{ID: "call_a", Name: "get_weather", Arguments: `{"city":"Zürich","unit":"celsius"}`},
			{ID: "call_b", Name: "get_time", Arguments: `{"tz":"Europe/Zurich"}`},
			{ID: "call_c", Name: "ping"},
		},
	})
	p := MustNew(t, srv)
	schema := json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)
	req := engine.ChatRequest{
		Messages: []engine.ChatMessage{
			{Role: engine.RoleUser, Content: "Weather?"},
			{Role: engine.RoleAssistant, ToolCalls: []engine.ToolCall{{ID: "call_0", Name: "get_weather", Arguments: `{"city":"Bern"}`}}},
			{Role: engine.RoleTool, ToolCallID: "call_0", Content: "12°C"},
		},
		Tools: []engine.ToolSpec{{Name: "get_weather", Description: "Weather by city", InputSchema: schema}, {Name: "ping"}},
	}
	events := mustStream(t, p, req)
	if ev := last(t, events); ev.Kind != engine.EventDone {
		t.Fatalf("last event = %+v", ev)
	}
	var calls []engine.ToolCall
	for _, ev := range events {
		if ev.Kind == engine.EventToolCall {
			calls = append(calls, *ev.ToolCall)
		}
	}
	want := []engine.ToolCall{
		{ID: "call_a", Name: "get_weather", Arguments: `{"city":"Zürich","unit":"celsius"}`},
		{ID: "call_b", Name: "get_time", Arguments: `{"tz":"Europe/Zurich"}`},
		{ID: "call_c", Name: "ping", Arguments: "{}"},
	}
	if len(calls) != len(want) {
		t.Fatalf("tool calls = %+v", calls)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Errorf("tool call %d = %+v, want %+v", i, calls[i], want[i])
		}
	}
	if got := textOf(events); got != "Let me check." {
		t.Errorf("text = %q", got)
	}

	got := srv.Requests()[0]
	if len(got.Tools) != 2 || got.Tools[0].Type != "function" || got.Tools[0].Function.Name != "get_weather" ||
		got.Tools[0].Function.Description != "Weather by city" || string(got.Tools[0].Function.Parameters) != string(schema) {
		t.Errorf("tools = %+v", got.Tools)
	}
	if string(got.Tools[1].Function.Parameters) != `{"type":"object","properties":{}}` {
		t.Errorf("empty schema = %s", got.Tools[1].Function.Parameters)
	}
	asst, tool := got.Messages[1], got.Messages[2]
	if len(asst.ToolCalls) != 1 || asst.ToolCalls[0].ID != "call_0" || asst.ToolCalls[0].Type != "function" ||
		asst.ToolCalls[0].Function.Name != "get_weather" || asst.ToolCalls[0].Function.Arguments != `{"city":"Bern"}` {
		t.Errorf("assistant tool calls = %+v", asst.ToolCalls)
	}
	if tool.Role != "tool" || tool.ToolCallID != "call_0" || tool.Content != "12°C" {
		t.Errorf("tool result = %+v", tool)
	}
}

func TestStreamInvalidRequest(t *testing.T) {
	p := MustNew(t, openaitest.NewServer(t))
	tests := []struct {
		name string
		req  engine.ChatRequest
	}{
		{"no messages", engine.ChatRequest{}},
		{"unknown role", engine.ChatRequest{Messages: []engine.ChatMessage{{Role: "robot", Content: "x"}}}},
		{"bad schema", engine.ChatRequest{Messages: question("x").Messages, Tools: []engine.ToolSpec{{Name: "t", InputSchema: json.RawMessage(`{`)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Stream(context.Background(), tt.req)
			if engine.ErrorCode(err) != engine.EINVALID {
				t.Fatalf("Stream() error = %v, want EINVALID", err)
			}
		})
	}
}

func TestStreamErrors(t *testing.T) {
	tests := []struct {
		name         string
		script       []openaitest.Reply
		maxRetries   int
		wantCode     string // "" = success
		wantMessage  string // substring of the user-facing message
		wantRequests int
		wantText     string
	}{
		{
			name:         "500 then success",
			script:       []openaitest.Reply{{Status: 500}, {Text: "ok now"}},
			wantRequests: 2, wantText: "ok now",
		},
		{
			name:         "502 503 then success",
			script:       []openaitest.Reply{{Status: 502}, {Status: 503}, {Text: "ok"}},
			wantRequests: 3, wantText: "ok",
		},
		{
			name:     "429 until retries are spent",
			script:   []openaitest.Reply{{Status: 429}, {Status: 429}, {Status: 429}, {Status: 429}, {Text: "never"}},
			wantCode: engine.EUNAVAILABLE, wantMessage: "busy (rate limited)", wantRequests: 4,
		},
		{
			name:       "retries disabled",
			script:     []openaitest.Reply{{Status: 503}, {Text: "never"}},
			maxRetries: -1,
			wantCode:   engine.EUNAVAILABLE, wantMessage: "HTTP 503", wantRequests: 1,
		},
		{
			name:     "401 is not retried",
			script:   []openaitest.Reply{{Status: 401, ErrorMessage: "Incorrect API key provided: sk-abc***xyz"}},
			wantCode: engine.EUNAVAILABLE, wantMessage: "rejected the API key; an admin should check llm.api_key", wantRequests: 1,
		},
		{
			name:     "403 is not retried",
			script:   []openaitest.Reply{{Status: 403}},
			wantCode: engine.EUNAVAILABLE, wantMessage: "llm.api_key", wantRequests: 1,
		},
		{
			name:     "404 names the model",
			script:   []openaitest.Reply{{Status: 404, ErrorMessage: "model 'test-model' not found"}},
			wantCode: engine.EUNAVAILABLE, wantMessage: `"test-model" was not found`, wantRequests: 1,
		},
		{
			name:     "400 is not retried",
			script:   []openaitest.Reply{{Status: 400, ErrorMessage: "maximum context length exceeded"}},
			wantCode: engine.EINVALID, wantMessage: "rejected the request (HTTP 400)", wantRequests: 1,
		},
		{
			name:     "quota is not retried",
			script:   []openaitest.Reply{{Status: 429, ErrorCode: "insufficient_quota"}},
			wantCode: engine.EUNAVAILABLE, wantMessage: "quota", wantRequests: 1,
		},
		{
			name:     "408 is a timeout",
			script:   []openaitest.Reply{{Status: 408}, {Status: 408}, {Status: 408}, {Status: 408}},
			wantCode: engine.ETIMEOUT, wantRequests: 4,
		},
		{
			name:         "disconnect before the first token is retried",
			script:       []openaitest.Reply{{Text: "lost", Interrupt: openaitest.Disconnect}, {Text: "fine"}},
			wantRequests: 2, wantText: "fine",
		},
		{
			name:     "no retry after the first token",
			script:   []openaitest.Reply{{Chunks: []string{"one", " two", " three"}, Interrupt: openaitest.Disconnect, InterruptAfter: 2}, {Text: "duplicate"}},
			wantCode: engine.EUNAVAILABLE, wantMessage: "cut off", wantRequests: 1, wantText: "one two",
		},
		{
			name:     "error event mid-stream",
			script:   []openaitest.Reply{{Chunks: []string{"a", "b"}, Interrupt: openaitest.ErrorEvent, InterruptAfter: 1, ErrorMessage: "overloaded"}},
			wantCode: engine.EUNAVAILABLE, wantMessage: "reported an error", wantRequests: 1, wantText: "a",
		},
		{
			name:     "content filter",
			script:   []openaitest.Reply{{Text: "Sorry", FinishReason: "content_filter"}},
			wantCode: engine.EUNAVAILABLE, wantMessage: "content filter", wantRequests: 1, wantText: "Sorry",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.Script(tt.script...)
			p := MustNew(t, srv, func(c *openai.Config) { c.MaxRetries = tt.maxRetries })
			events := mustStream(t, p, question("hi"))
			ev := last(t, events)
			if got := len(srv.Requests()); got != tt.wantRequests {
				t.Errorf("requests = %d, want %d", got, tt.wantRequests)
			}
			if got := textOf(events); got != tt.wantText {
				t.Errorf("text = %q, want %q", got, tt.wantText)
			}
			if tt.wantCode == "" {
				if ev.Kind != engine.EventDone {
					t.Fatalf("last event = %+v, want done", ev)
				}
				return
			}
			if ev.Kind != engine.EventError {
				t.Fatalf("last event = %+v, want error", ev)
			}
			if code := engine.ErrorCode(ev.Err); code != tt.wantCode {
				t.Errorf("code = %s, want %s (%v)", code, tt.wantCode, ev.Err)
			}
			if msg := engine.ErrorMessage(ev.Err); !strings.Contains(msg, tt.wantMessage) {
				t.Errorf("message = %q, want it to contain %q", msg, tt.wantMessage)
			}
			if strings.Contains(ev.Err.Error(), "sk-abc") {
				t.Errorf("error leaks the server's key echo: %v", ev.Err)
			}
		})
	}
}

func TestStreamHonoursRetryAfter(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter string
		maxDelay   time.Duration
		min, max   time.Duration
	}{
		{"seconds", "1", 5 * time.Second, 900 * time.Millisecond, 4 * time.Second},
		{"http date", time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat), 1500 * time.Millisecond, 1400 * time.Millisecond, 4 * time.Second},
		{"capped by the max delay", "120", 50 * time.Millisecond, 0, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.NewServer(t)
			srv.Script(openaitest.Reply{Status: 429, RetryAfter: tt.retryAfter}, openaitest.Reply{Text: "done"})
			p := MustNew(t, srv, func(c *openai.Config) { c.RetryMaxDelay = tt.maxDelay })
			start := time.Now()
			events := mustStream(t, p, question("hi"))
			elapsed := time.Since(start)
			if ev := last(t, events); ev.Kind != engine.EventDone || textOf(events) != "done" {
				t.Fatalf("events = %+v", events)
			}
			if elapsed < tt.min || elapsed > tt.max {
				t.Fatalf("took %s, want between %s and %s", elapsed, tt.min, tt.max)
			}
			// The wait is announced first, so a stall watchdog allows for it.
			if events[0].Kind != engine.EventWait || events[0].Wait < tt.min || events[0].Wait > tt.max {
				t.Fatalf("first event = %+v, want a wait between %s and %s", events[0], tt.min, tt.max)
			}
		})
	}
}

// TestStreamWaitDoesNotCountAsDelivered: a failure after an announced wait
// (nothing of the answer delivered) is still retried.
func TestStreamWaitDoesNotCountAsDelivered(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.Script(openaitest.Reply{Status: 429, RetryAfter: "0"}, openaitest.Reply{Status: 503}, openaitest.Reply{Text: "done"})
	p := MustNew(t, srv, func(c *openai.Config) { c.RetryBaseDelay, c.RetryMaxDelay = time.Millisecond, 5*time.Millisecond })
	events := mustStream(t, p, question("hi"))
	var waits int
	for _, ev := range events {
		if ev.Kind == engine.EventWait {
			waits++
		}
	}
	if ev := last(t, events); ev.Kind != engine.EventDone || textOf(events) != "done" || waits != 2 {
		t.Fatalf("events = %+v, want two waits then the answer", events)
	}
}

func TestStreamStallEndsOnCancel(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.Script(openaitest.Reply{Chunks: []string{"partial", " answer"}, Interrupt: openaitest.Stall, InterruptAfter: 1})
	p := MustNew(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := p.Stream(ctx, question("hi"))
	if err != nil {
		t.Fatal(err)
	}
	first := <-events
	if first.Kind != engine.EventText || first.Text != "partial" {
		t.Fatalf("first event = %+v", first)
	}
	cancel()
	start := time.Now()
	rest := collect(t, events)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("stream took %s to stop after cancel", d)
	}
	for _, ev := range rest {
		if ev.Kind != engine.EventError {
			t.Fatalf("event after cancel = %+v, want only an error", ev)
		}
	}
	if len(srv.Requests()) != 1 {
		t.Fatalf("requests = %d, want no retry", len(srv.Requests()))
	}
}

func TestStreamStallWatchdog(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.Script(openaitest.Reply{Chunks: []string{"partial", " answer"}, Interrupt: openaitest.Stall, InterruptAfter: 1})
	p := MustNew(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := p.Stream(ctx, question("hi"))
	if err != nil {
		t.Fatal(err)
	}
	// The watchdog reads with its own context: cancel stops the provider.
	got := collect(t, engine.WatchStream(context.Background(), events, 200*time.Millisecond, cancel))
	ev := last(t, got)
	if ev.Kind != engine.EventError || engine.ErrorCode(ev.Err) != engine.ETIMEOUT || textOf(got) != "partial" {
		t.Fatalf("events = %+v", got)
	}
}

func TestStreamDeadline(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.Script(openaitest.Reply{Text: "slow", Delay: 5 * time.Second})
	p := MustNew(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	events, err := p.Stream(ctx, question("hi"))
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, events)
	if len(got) > 0 {
		if ev := last(t, got); ev.Kind != engine.EventError || engine.ErrorCode(ev.Err) != engine.ETIMEOUT {
			t.Fatalf("last event = %+v, want ETIMEOUT", ev)
		}
	}
	if len(srv.Requests()) != 1 {
		t.Fatalf("requests = %d, want 1", len(srv.Requests()))
	}
}

func TestStreamConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p, err := openai.New(openai.Config{BaseURL: "http://" + addr + "/v1", Model: "m", RetryBaseDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	events, err := p.Stream(context.Background(), question("hi"))
	if err != nil {
		t.Fatal(err)
	}
	ev := last(t, collect(t, events))
	if ev.Kind != engine.EventError || engine.ErrorCode(ev.Err) != engine.EUNAVAILABLE || !strings.Contains(engine.ErrorMessage(ev.Err), "llm.base_url") {
		t.Fatalf("last event = %+v", ev)
	}
	var e *engine.Error
	if !errors.As(ev.Err, &e) || e.Err == nil {
		t.Fatalf("error %v keeps no cause", ev.Err)
	}
}
