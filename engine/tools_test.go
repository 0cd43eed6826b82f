package engine_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
)

var clockSpec = engine.ToolSpec{Name: "clock", Description: "The current time.", InputSchema: json.RawMessage(`{"type":"object"}`)}
var weatherSpec = engine.ToolSpec{Name: "weather", Description: "The weather in a city.", InputSchema: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}}}`)}

// mustToolEngine is the fixture's engine with a tool set, and the
// assistant allowed its tools.
func mustToolEngine(t *testing.T, f *fixture, tools *enginetest.ToolSet, cfg engine.Config) *engine.Engine {
	t.Helper()
	f.assistant.Tools = []string{"clock", "weather"}
	if err := f.store.UpdateAssistant(context.Background(), f.assistant); err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(cfg, engine.Deps{Assistants: f.store, Conversations: f.store, Traces: f.store, Model: f.model, Tools: tools, ToolAudit: f.store})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func toolCall(id, name, args string) engine.ToolCall {
	return engine.ToolCall{ID: id, Name: name, Arguments: args}
}

// TestToolLoop: the model asks for two tools at once; both run (in
// parallel), their results go back to it, and it answers.
func TestToolLoop(t *testing.T) {
	f := mustFixture(t, engine.Config{})
	tools := &enginetest.ToolSet{Specs: []engine.ToolSpec{clockSpec, weatherSpec}, Delay: 100 * time.Millisecond,
		Results: map[string]engine.ToolResult{"clock": {Content: "12:00"}, "weather": {Content: "sunny"}}}
	e := mustToolEngine(t, f, tools, engine.Config{})
	f.model.Script(
		enginetest.Reply{ToolCalls: []engine.ToolCall{toolCall("c1", "clock", `{}`), toolCall("c2", "weather", `{"city":"Oslo"}`)}},
		enginetest.Reply{Chunks: []string{"It is 12:00 and sunny."}},
	)
	r := &enginetest.Replier{}
	start := time.Now()
	ans, err := e.Handle(context.Background(), slackMessage("T1", "time and weather?"), r)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 180*time.Millisecond {
		t.Errorf("two 100 ms tools took %v: not run in parallel", d)
	}
	if ans.Text != "It is 12:00 and sunny." || ans.Notice != "" {
		t.Errorf("answer %+v", ans)
	}
	reqs := f.model.Requests()
	if len(reqs) != 2 || len(reqs[0].Tools) != 2 {
		t.Fatalf("%d model calls, tools offered %v", len(reqs), reqs[0].Tools)
	}
	msgs := reqs[1].Messages
	n := len(msgs)
	if msgs[n-3].Role != engine.RoleAssistant || len(msgs[n-3].ToolCalls) != 2 ||
		msgs[n-2].Role != engine.RoleTool || msgs[n-2].ToolCallID != "c1" || msgs[n-2].Content != "12:00" ||
		msgs[n-1].ToolCallID != "c2" || msgs[n-1].Content != "sunny" {
		t.Errorf("second request's last messages %+v", msgs[n-3:])
	}
	if calls := tools.Calls(); len(calls) != 2 || calls[0].User.ID != "U1" || calls[0].Assistant.Name != "Guide" {
		t.Errorf("calls %+v", calls)
	}
	tr, err := f.store.TraceByID(context.Background(), ans.TraceID)
	if err != nil {
		t.Fatal(err)
	}
	var toolSteps int
	for _, s := range tr.Steps {
		if s.Name == engine.StepTools {
			toolSteps++
		}
	}
	if toolSteps != 2 {
		t.Errorf("trace has %d tool steps, want 2", toolSteps)
	}
	audit, err := f.store.ListToolCalls(context.Background(), engine.ToolCallFilter{})
	if err != nil || len(audit) != 2 {
		t.Fatalf("audit %+v, %v", audit, err)
	}
	for _, r := range audit {
		if r.TraceID != ans.TraceID || r.AssistantName != "Guide" || r.UserID != "U1" || r.Outcome != engine.ToolOK ||
			r.ArgumentsHash == "" || r.Duration < 90*time.Millisecond || r.Platform != engine.PlatformSlack {
			t.Errorf("audit record %+v", r)
		}
		if strings.Contains(r.ArgumentsHash, "Oslo") {
			t.Error("the audit stores the arguments")
		}
	}
}

// TestToolLoopLimits: an unknown tool is refused to the model; three
// steps in a row of failed calls end the tools; MaxToolSteps bounds the
// rounds.
func TestToolLoopLimits(t *testing.T) {
	t.Run("three failures", func(t *testing.T) {
		f := mustFixture(t, engine.Config{})
		tools := &enginetest.ToolSet{Specs: []engine.ToolSpec{clockSpec}} // every call fails
		e := mustToolEngine(t, f, tools, engine.Config{})
		ask := enginetest.Reply{ToolCalls: []engine.ToolCall{toolCall("c", "clock", `{}`)}}
		f.model.Script(ask, ask, ask, enginetest.Reply{Chunks: []string{"I could not check the time."}})
		ans, err := e.Handle(context.Background(), slackMessage("T2", "time?"), &enginetest.Replier{})
		if err != nil {
			t.Fatal(err)
		}
		reqs := f.model.Requests()
		if len(reqs) != 4 || len(reqs[3].Tools) != 0 {
			t.Errorf("%d model calls, the last with %d tools; want 4, the last without tools", len(reqs), len(reqs[len(reqs)-1].Tools))
		}
		if !strings.Contains(ans.Notice, "failed several times") {
			t.Errorf("notice %q", ans.Notice)
		}
	})
	t.Run("max steps", func(t *testing.T) {
		f := mustFixture(t, engine.Config{})
		tools := &enginetest.ToolSet{Specs: []engine.ToolSpec{clockSpec}, Results: map[string]engine.ToolResult{"clock": {Content: "12:00"}}}
		e := mustToolEngine(t, f, tools, engine.Config{MaxToolSteps: 3})
		f.model.Fallback = &enginetest.Reply{ToolCalls: []engine.ToolCall{toolCall("c", "clock", `{}`)}}
		ans, err := e.Handle(context.Background(), slackMessage("T3", "time?"), &enginetest.Replier{})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(f.model.Requests()); n != 3 || !strings.Contains(ans.Notice, "stopped after 3 rounds") {
			t.Errorf("%d model calls, notice %q", n, ans.Notice)
		}
	})
	t.Run("unknown tool", func(t *testing.T) {
		f := mustFixture(t, engine.Config{})
		tools := &enginetest.ToolSet{Specs: []engine.ToolSpec{clockSpec}, Results: map[string]engine.ToolResult{"clock": {Content: "12:00"}}}
		e := mustToolEngine(t, f, tools, engine.Config{})
		f.model.Script(enginetest.Reply{ToolCalls: []engine.ToolCall{toolCall("c", "rm_rf", `{}`)}}, enginetest.Reply{Chunks: []string{"Sorry."}})
		if _, err := e.Handle(context.Background(), slackMessage("T4", "delete it"), &enginetest.Replier{}); err != nil {
			t.Fatal(err)
		}
		if len(tools.Calls()) != 0 {
			t.Error("a tool that was not offered ran")
		}
		last := f.model.Requests()[1].Messages
		if got := last[len(last)-1]; got.Role != engine.RoleTool || !strings.Contains(got.Content, "no tool named") {
			t.Errorf("the model was told %+v", got)
		}
	})
}
