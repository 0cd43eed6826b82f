package observe_test

import (
	"context"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
	"github.com/convosphere/convosphere/observe"
	"github.com/convosphere/convosphere/observe/observetest"
)

// failingModel cannot start a stream.
type failingModel struct{}

func (failingModel) Stream(context.Context, engine.ChatRequest) (<-chan engine.StreamEvent, error) {
	return nil, engine.Errorf(engine.EUNAUTHORIZED, "The API key was refused.")
}

func TestModelOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		model      engine.LanguageModel
		req        engine.ChatRequest
		cancelLate bool // cancel after the first event instead of reading on
		label      string
		outcome    string
		firstToken float64
		tokens     [2]float64 // input, output
		errKind    string
	}{
		{"answered", enginetest.NewModel(enginetest.Reply{Chunks: []string{"a", "b"}, Usage: engine.Usage{InputTokens: 7, OutputTokens: 2}}),
			engine.ChatRequest{}, false, "scripted", observe.ModelOK, 1, [2]float64{7, 2}, ""},
		{"the request names the model", enginetest.NewModel(enginetest.Reply{Chunks: []string{"a"}}),
			engine.ChatRequest{Model: "acme/large"}, false, "acme/large", observe.ModelOK, 1, [2]float64{}, ""},
		{"tool call is a first token", enginetest.NewModel(enginetest.Reply{ToolCalls: []engine.ToolCall{{ID: "1", Name: "x__y"}}}),
			engine.ChatRequest{}, false, "scripted", observe.ModelOK, 1, [2]float64{}, ""},
		{"stream error", enginetest.NewModel(enginetest.Reply{Chunks: []string{"a"}, Err: engine.Errorf(engine.ETIMEOUT, "slow")}),
			engine.ChatRequest{}, false, "scripted", observe.ModelError, 1, [2]float64{}, engine.ETIMEOUT},
		{"refused before streaming", failingModel{},
			engine.ChatRequest{}, false, "default", observe.ModelError, 0, [2]float64{}, engine.EUNAUTHORIZED},
		{"reader leaves", enginetest.NewModel(enginetest.Reply{Chunks: []string{"a"}, Stall: true}),
			engine.ChatRequest{}, true, "scripted", observe.ModelCanceled, 1, [2]float64{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, _ := mustObserver(t, observe.Config{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			events, err := o.Model(tt.model).Stream(ctx, tt.req)
			if err == nil {
				deadline := time.After(5 * time.Second)
			read:
				for {
					select {
					case _, ok := <-events:
						if !ok {
							break read
						}
						if tt.cancelLate {
							cancel()
						}
					case <-deadline:
						t.Fatal("the stream was not closed")
					}
				}
			}
			m := observetest.Gather(t, o.Registry())
			if got := m.Value("convosphere_model_requests_total", "model", tt.label, "outcome", tt.outcome); got != 1 {
				t.Errorf("model_requests_total{model=%s,outcome=%s} = %v, want 1 (series %v)", tt.label, tt.outcome, got, m.Series("convosphere_model_requests_total"))
			}
			if got := m.Value("convosphere_model_first_token_seconds", "model", tt.label); got != tt.firstToken {
				t.Errorf("first-token observations %v, want %v", got, tt.firstToken)
			}
			if in, out := m.Value("convosphere_model_tokens_total", "model", tt.label, "type", "input"), m.Value("convosphere_model_tokens_total", "model", tt.label, "type", "output"); in != tt.tokens[0] || out != tt.tokens[1] {
				t.Errorf("tokens in %v out %v, want %v", in, out, tt.tokens)
			}
			errs := m.Series("convosphere_errors_total")
			if tt.errKind == "" && len(errs) != 0 {
				t.Errorf("errors counted: %v", errs)
			}
			if tt.errKind != "" && m.Value("convosphere_errors_total", "component", "model", "kind", tt.errKind) != 1 {
				t.Errorf("errors %v, want model/%s once", errs, tt.errKind)
			}
		})
	}
}

// TestModelKeepsItsName: the engine asks the model its name for traces.
func TestModelKeepsItsName(t *testing.T) {
	o, _ := mustObserver(t, observe.Config{})
	n, ok := o.Model(enginetest.NewModel()).(engine.ModelNamer)
	if !ok || n.DefaultModel() != "scripted" {
		t.Errorf("the observed model does not name the scripted model")
	}
}

func TestToolServer(t *testing.T) {
	tests := []struct{ tool, want string }{
		{"everything__get-sum", "everything"},
		{"builtin__search_knowledge", "builtin"},
		{"github__create__issue", "github"},
		{"lonely", "builtin"},
		{"__odd", "builtin"},
	}
	for _, tt := range tests {
		if got := observe.ToolServer(tt.tool); got != tt.want {
			t.Errorf("ToolServer(%q) = %q, want %q", tt.tool, got, tt.want)
		}
	}
}

func TestToolOutcomes(t *testing.T) {
	o, _ := mustObserver(t, observe.Config{})
	ts := o.Tools(&enginetest.ToolSet{Results: map[string]engine.ToolResult{
		"mem__read":  {Content: "x", Outcome: engine.ToolOK},
		"mem__slow":  {Content: "timed out", IsError: true, Outcome: engine.ToolTimeout},
		"mem__plain": {Content: "y"}, // no outcome: ok
	}})
	ctx := context.Background()
	for _, name := range []string{"mem__read", "mem__read", "mem__slow", "mem__plain", "web__missing"} {
		ts.Call(ctx, engine.ToolInvocation{Call: engine.ToolCall{Name: name}})
	}
	m := observetest.Gather(t, o.Registry())
	tests := []struct {
		server, outcome string
		want            float64
	}{
		{"mem", engine.ToolOK, 3},
		{"mem", engine.ToolTimeout, 1},
		{"web", engine.ToolError, 1},
	}
	for _, tt := range tests {
		if got := m.Value("convosphere_tool_calls_total", "server", tt.server, "outcome", tt.outcome); got != tt.want {
			t.Errorf("tool_calls_total{server=%s,outcome=%s} = %v, want %v", tt.server, tt.outcome, got, tt.want)
		}
	}
	if got := m.Value("convosphere_tool_call_duration_seconds", "server", "mem"); got != 4 {
		t.Errorf("%v mem call durations, want 4", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg observe.Config
		ok  bool
	}{
		{observe.Config{}, true},
		{observe.Config{SampleRatio: 0.25, OTLPEndpoint: "https://otel.example.com:4318"}, true},
		{observe.Config{SampleRatio: 1.5}, false},
		{observe.Config{SampleRatio: -0.1}, false},
		{observe.Config{OTLPEndpoint: "otel:4318"}, false},
		{observe.Config{OTLPEndpoint: "grpc://otel:4317"}, false},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tt.cfg, err, tt.ok)
		}
		if err != nil && engine.ErrorCode(err) != engine.EINVALID {
			t.Errorf("Validate(%+v) = %v, want an EINVALID error", tt.cfg, err)
		}
	}
}
