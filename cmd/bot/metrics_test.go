package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/llm/openaitest"
	"github.com/convosphere/convosphere/observe"
	"github.com/convosphere/convosphere/observe/observetest"
)

// mustRunBot starts the real bot wiring on 127.0.0.1:0 with cfg's edits.
func mustRunBot(t *testing.T, edit func(*config.Config)) *Main {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Bot.Addr = "127.0.0.1:0"
	edit(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := NewMain(cfg, slog.New(slog.DiscardHandler))
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// TestBotMetricsAndTraceEndToEnd runs the bot's real wiring with Slack, an
// OpenAI-compatible model and an OTLP receiver: one event delivered twice
// is answered once, /metrics (scraped and parsed as Prometheus does) counts
// exactly that, and the receipt, the handling, the turn and the model call
// arrive at the receiver in the event's one trace.
func TestBotMetricsAndTraceEndToEnd(t *testing.T) {
	s, posted := mustSlackServer(t)
	llm := openaitest.NewServer(t)
	otlp := observetest.NewOTLPReceiver(t, 0)
	m := mustRunBot(t, func(c *config.Config) {
		c.Slack = config.Slack{BotToken: "xoxb-e2e", SigningSecret: slackSecret, Mode: "http", APIURL: s.GetAPIURL()}
		c.LLM.BaseURL, c.LLM.Model = llm.BaseURL(), "e2e-model"
		c.Tracing.OTLPEndpoint = otlp.URL
	})
	ctx := context.Background()
	if err := m.App.Store.CreateAssistant(ctx, &engine.Assistant{Name: "Guide", IsDefault: true}); err != nil {
		t.Fatal(err)
	}
	llm.Script(openaitest.Reply{Chunks: []string{"Run ", "make deploy."}, Usage: &openaitest.Usage{PromptTokens: 31, CompletionTokens: 4}})
	for retry := range 2 {
		if code := postEvent(t, m.Addr(), "EvMetrics", retry); code != http.StatusOK {
			t.Fatalf("delivery %d: %d", retry, code)
		}
	}
	if out := waitPosts(t, posted, 1); out[0]["channel"] != "C1" || out[0]["thread_ts"] != "1700000000.000001" {
		t.Fatalf("answer %v, want it in C1's thread", out[0]) // posted, then edited as it streams
	}

	url := "http://" + m.Addr() + "/metrics"
	metrics := observetest.Scrape(t, url)
	deadline := time.Now().Add(5 * time.Second) // the event is completed just after the answer is posted
	for metrics.Value("convosphere_events_processed_total", "platform", "slack", "result", "completed") == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		metrics = observetest.Scrape(t, url)
	}
	tests := []struct {
		name   string
		typ    string
		labels []string
		want   float64
	}{
		{"convosphere_events_received_total", "counter", []string{"platform", "slack"}, 2},
		{"convosphere_events_acknowledged_total", "counter", []string{"platform", "slack"}, 1},
		{"convosphere_events_deduplicated_total", "counter", []string{"platform", "slack"}, 1},
		{"convosphere_events_processed_total", "counter", []string{"platform", "slack", "result", "completed"}, 1},
		{"convosphere_events_in_flight", "gauge", []string{"platform", "slack"}, 0},
		{"convosphere_event_wait_seconds", "histogram", []string{"platform", "slack"}, 1},
		{"convosphere_replies_total", "counter", []string{"platform", "slack", "outcome", "answered"}, 1},
		{"convosphere_reply_duration_seconds", "histogram", []string{"platform", "slack", "outcome", "answered"}, 1},
		{"convosphere_reply_first_update_seconds", "histogram", []string{"platform", "slack"}, 1},
		{"convosphere_model_requests_total", "counter", []string{"model", "e2e-model", "outcome", "ok"}, 1},
		{"convosphere_model_tokens_total", "counter", []string{"model", "e2e-model", "type", "input"}, 31},
		{"convosphere_model_tokens_total", "counter", []string{"model", "e2e-model", "type", "output"}, 4},
		{"convosphere_model_first_token_seconds", "histogram", []string{"model", "e2e-model"}, 1},
		{"convosphere_http_requests_total", "counter", []string{"route", "POST /slack/events", "method", "POST", "code", "200"}, 2},
	}
	for _, tt := range tests {
		if got := metrics.Type(tt.name); got != tt.typ {
			t.Errorf("%s is a %q, want a %s", tt.name, got, tt.typ)
		}
		if got := metrics.Value(tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v = %v, want %v (series %v)", tt.name, tt.labels, got, tt.want, metrics.Series(tt.name))
		}
	}
	if s := metrics.Series("convosphere_errors_total"); len(s) != 0 {
		t.Errorf("errors counted for an answered event: %v", s)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if !metrics.Has(name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	if err := m.App.Observer.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	spans := otlp.Spans()
	tid, sid := observe.EventTraceIDs(engine.PlatformSlack, "EvMetrics")
	for _, name := range []string{"event.receive", "event.process", "turn", "model.stream"} {
		list := spans[name]
		if len(list) == 0 {
			t.Errorf("no %s span arrived (spans: %v)", name, len(spans))
			continue
		}
		for _, s := range list {
			if !bytes.Equal(s.TraceId, tid[:]) || s.Service != "convosphere-bot" {
				t.Errorf("%s in trace %s of %s, want trace %s of convosphere-bot", name, hex.EncodeToString(s.TraceId), s.Service, tid)
			}
		}
	}
	if p := spans["event.process"]; len(p) == 1 && (!bytes.Equal(p[0].ParentSpanId, sid[:]) || p[0].Attr("convosphere.inbox.result") != "completed") {
		t.Errorf("event.process under %x, result %q; want under the receipt %s, completed", p[0].ParentSpanId, p[0].Attr("convosphere.inbox.result"), sid)
	}
	if r := spans["event.receive"]; len(r) != 2 || r[0].Attr("convosphere.inbox.duplicate") == r[1].Attr("convosphere.inbox.duplicate") {
		t.Errorf("%d receipts, want the first and its duplicate", len(r))
	}
}

// TestBotMetricsEndpoint: /metrics is on bot.addr by default, on its own
// listener with metrics.addr, and nowhere with metrics.enabled false.
func TestBotMetricsEndpoint(t *testing.T) {
	tests := []struct {
		name    string
		enabled bool
		addr    string
		onBot   int // status of GET /metrics on bot.addr
	}{
		{"default", true, "", http.StatusOK},
		{"own listener", true, "127.0.0.1:0", http.StatusNotFound},
		{"off", false, "", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustRunBot(t, func(c *config.Config) { c.Metrics = config.Metrics{Enabled: tt.enabled, Addr: tt.addr} })
			resp, err := http.Get("http://" + m.Addr() + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.onBot {
				t.Errorf("GET /metrics on bot.addr: %d, want %d", resp.StatusCode, tt.onBot)
			}
			if tt.addr == "" {
				if a := m.App.MetricsAddr(); a != "" {
					t.Errorf("a metrics listener on %s without metrics.addr", a)
				}
				return
			}
			metrics := observetest.Scrape(t, "http://"+m.App.MetricsAddr()+"/metrics")
			if !metrics.Has("go_goroutines") || metrics.Type("convosphere_http_requests_total") != "counter" {
				t.Errorf("metrics.addr serves no metrics")
			}
		})
	}
}

// TestObservabilityKeys: the metrics.* and tracing.* keys load from the
// environment with their defaults, and a bad value names its key.
func TestObservabilityKeys(t *testing.T) {
	tests := []struct {
		env     map[string]string
		want    func(config.Config) bool
		wantErr string
	}{
		{nil, func(c config.Config) bool {
			return c.Metrics.Enabled && c.Metrics.Addr == "" && c.Tracing.OTLPEndpoint == "" && c.Tracing.SampleRatio == 1
		}, ""},
		{map[string]string{"CONVOSPHERE_METRICS_ENABLED": "false", "CONVOSPHERE_METRICS_ADDR": "127.0.0.1:9464",
			"CONVOSPHERE_TRACING_OTLP_ENDPOINT": "https://otel.example.com:4318", "CONVOSPHERE_TRACING_SAMPLE_RATIO": "0.25"},
			func(c config.Config) bool {
				return !c.Metrics.Enabled && c.Metrics.Addr == "127.0.0.1:9464" && c.Tracing.OTLPEndpoint == "https://otel.example.com:4318" && c.Tracing.SampleRatio == 0.25
			}, ""},
		{map[string]string{"CONVOSPHERE_METRICS_ADDR": "9464"}, nil, "metrics.addr"},
		{map[string]string{"CONVOSPHERE_TRACING_OTLP_ENDPOINT": "otel:4318"}, nil, "tracing.otlp_endpoint"},
		{map[string]string{"CONVOSPHERE_TRACING_SAMPLE_RATIO": "0"}, nil, "tracing.sample_ratio"},
		{map[string]string{"CONVOSPHERE_TRACING_SAMPLE_RATIO": "1.5"}, nil, "tracing.sample_ratio"},
	}
	for _, tt := range tests {
		t.Setenv("CONVOSPHERE_CONFIG", "")
		for _, k := range []string{"CONVOSPHERE_METRICS_ENABLED", "CONVOSPHERE_METRICS_ADDR", "CONVOSPHERE_TRACING_OTLP_ENDPOINT", "CONVOSPHERE_TRACING_SAMPLE_RATIO"} {
			t.Setenv(k, tt.env[k])
			if _, ok := tt.env[k]; !ok {
				os.Unsetenv(k)
			}
		}
		c, err := config.Load("")
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("env %v: error %v, want one naming %s", tt.env, err, tt.wantErr)
		case tt.wantErr == "" && err != nil:
			t.Errorf("env %v: %v", tt.env, err)
		case tt.wantErr == "" && !tt.want(c):
			t.Errorf("env %v: metrics %+v tracing %+v", tt.env, c.Metrics, c.Tracing)
		}
	}
}
