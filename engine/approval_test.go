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

// mustPolicyEngine is mustToolEngine with a tool policy and approvals.
func mustPolicyEngine(t *testing.T, f *fixture, tools *enginetest.ToolSet, policy map[string]engine.ToolMode, cfg engine.Config) *engine.Engine {
	t.Helper()
	f.assistant.Tools = []string{"clock", "weather"}
	f.assistant.ToolPolicy = policy
	if err := f.store.UpdateAssistant(context.Background(), f.assistant); err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(cfg, engine.Deps{Assistants: f.store, Conversations: f.store, Traces: f.store, Model: f.model,
		Tools: tools, ToolAudit: f.store, Approvals: f.store})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func policyTools() *enginetest.ToolSet {
	return &enginetest.ToolSet{Specs: []engine.ToolSpec{clockSpec, weatherSpec},
		Results: map[string]engine.ToolResult{"clock": {Content: "12:00"}, "weather": {Content: "sunny"}}}
}

// mustAwait asks a question whose tool call waits for approval.
func mustAwait(t *testing.T, f *fixture, e *engine.Engine, thread string) (*engine.Answer, *enginetest.Replier) {
	t.Helper()
	r := &enginetest.Replier{}
	ans, err := e.Handle(context.Background(), slackMessage(thread, "weather in Oslo?"), r)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Outcome != engine.OutcomeAwaiting || ans.Approval == nil {
		t.Fatalf("answer %+v: want awaiting_approval with an approval", ans)
	}
	return ans, r
}

// resumeMessage is what the worker hands the engine after a decision.
func resumeMessage(t *testing.T, f *fixture, approvalID string) engine.Message {
	t.Helper()
	ctx := context.Background()
	ev, err := f.store.Claim(ctx, "test", time.Minute)
	if err != nil {
		t.Fatalf("no resume event in the inbox: %v", err)
	}
	if ev.EventID != engine.ApprovalEventID(approvalID) || ev.Platform != engine.PlatformSlack {
		t.Fatalf("inbox event %+v", ev)
	}
	var msg engine.Message
	if err := json.Unmarshal(ev.Payload, &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Resume == nil || msg.Resume.ApprovalID != approvalID || msg.User.ID != "U1" {
		t.Fatalf("resume message %+v", msg)
	}
	return msg
}

func decide(f *fixture, id string, approve bool, who engine.ChatUser) (*engine.ToolApproval, error) {
	return engine.DecideApproval(context.Background(), f.store,
		engine.Decision{ApprovalID: id, Approve: approve, Platform: engine.PlatformSlack, ChatUser: who}, time.Now())
}

var asker = engine.ChatUser{ID: "U1", Name: "ada"}

// TestToolPolicyAskApproved: the call waits, the asker approves, a fresh
// engine (as after a restart) resumes from the stored state: the tool
// runs and the model answers with its result.
func TestToolPolicyAskApproved(t *testing.T) {
	f := mustFixture(t, engine.Config{})
	tools := policyTools()
	e := mustPolicyEngine(t, f, tools, map[string]engine.ToolMode{"weather": engine.ToolAsk}, engine.Config{})
	f.model.Script(
		enginetest.Reply{Chunks: []string{"Let me check. "}, ToolCalls: []engine.ToolCall{toolCall("c1", "weather", `{"city":"Oslo"}`)}},
		enginetest.Reply{Chunks: []string{"It is sunny in Oslo."}},
	)
	ans, r := mustAwait(t, f, e, "T1")
	ap := ans.Approval
	if ans.Text != "Let me check. " || !strings.Contains(ans.Notice, "ada or an admin") || len(ap.Calls) != 1 || ap.Calls[0].Arguments != `{"city":"Oslo"}` {
		t.Errorf("awaiting answer %+v, approval %+v", ans, ap)
	}
	if fin := r.Finished(); len(fin) != 1 || fin[0].Approval == nil || fin[0].Approval.ID != ap.ID {
		t.Errorf("the replier was not shown the approval: %+v", fin)
	}
	if len(tools.Calls()) != 0 {
		t.Fatal("the tool ran before it was approved")
	}
	if _, err := e.Handle(context.Background(), engine.Message{ID: "x", Thread: ap.Thread, User: asker, Resume: &engine.Resume{ApprovalID: ap.ID}}, &enginetest.Replier{}); engine.ErrorCode(err) != engine.ECONFLICT {
		t.Errorf("resuming an undecided approval: %v, want a conflict", err)
	}

	decided, err := decide(f, ap.ID, true, asker)
	if err != nil || decided.Status != engine.ApprovalApproved || decided.DecidedBy != "slack:ada" {
		t.Fatalf("decide: %+v, %v", decided, err)
	}
	msg := resumeMessage(t, f, ap.ID)

	restarted := mustPolicyEngine(t, f, tools, map[string]engine.ToolMode{"weather": engine.ToolAsk}, engine.Config{})
	r2 := &enginetest.Replier{}
	final, err := restarted.Handle(context.Background(), msg, r2)
	if err != nil {
		t.Fatal(err)
	}
	if final.Text != "It is sunny in Oslo." || final.Outcome != engine.OutcomeAnswered || final.ConversationID != ans.ConversationID {
		t.Errorf("resumed answer %+v", final)
	}
	if calls := tools.Calls(); len(calls) != 1 || calls[0].Call.Name != "weather" || calls[0].User.ID != "U1" {
		t.Errorf("tool calls %+v", calls)
	}
	reqs := f.model.Requests()
	last := reqs[len(reqs)-1].Messages
	if got := last[len(last)-1]; got.Role != engine.RoleTool || got.ToolCallID != "c1" || got.Content != "sunny" {
		t.Errorf("the model was given %+v", got)
	}
	turns, err := f.store.Turns(context.Background(), ans.ConversationID, 0)
	if err != nil || len(turns) != 2 || turns[1].Content != "Let me check. It is sunny in Oslo." {
		t.Errorf("turns %+v, %v", turns, err)
	}
	tr, err := f.store.TraceByID(context.Background(), final.TraceID)
	if err != nil {
		t.Fatal(err)
	}
	var approvalStep bool
	for _, s := range tr.Steps {
		approvalStep = approvalStep || (s.Name == engine.StepApproval && strings.Contains(s.Detail, "approved by slack:ada"))
	}
	if !approvalStep || tr.ConversationID != ans.ConversationID || tr.AssistantName != "Guide" {
		t.Errorf("resumed trace %+v", tr)
	}
	if _, err := decide(f, ap.ID, false, asker); engine.ErrorCode(err) != engine.ECONFLICT || !strings.Contains(engine.ErrorMessage(err), "already approved by slack:ada") {
		t.Errorf("second decision: %v", err)
	}
}

// TestToolPolicyAskRejected: the rejection is the tool's result, told to
// the model; the tool never runs and the audit says rejected.
func TestToolPolicyAskRejected(t *testing.T) {
	f := mustFixture(t, engine.Config{})
	tools := policyTools()
	e := mustPolicyEngine(t, f, tools, map[string]engine.ToolMode{"weather": engine.ToolAsk}, engine.Config{})
	f.model.Script(
		enginetest.Reply{ToolCalls: []engine.ToolCall{toolCall("c1", "weather", `{"city":"Oslo"}`)}},
		enginetest.Reply{Chunks: []string{"I will not check the weather then."}},
	)
	ans, _ := mustAwait(t, f, e, "T2")
	if _, err := decide(f, ans.Approval.ID, false, asker); err != nil {
		t.Fatal(err)
	}
	final, err := e.Handle(context.Background(), resumeMessage(t, f, ans.Approval.ID), &enginetest.Replier{})
	if err != nil || final.Text != "I will not check the weather then." {
		t.Fatalf("answer %+v, %v", final, err)
	}
	if len(tools.Calls()) != 0 {
		t.Error("a rejected tool ran")
	}
	reqs := f.model.Requests()
	last := reqs[1].Messages
	if got := last[len(last)-1]; got.Role != engine.RoleTool || !strings.Contains(got.Content, "slack:ada declined this call to weather") {
		t.Errorf("the model was told %+v", got)
	}
	audit, err := f.store.ListToolCalls(context.Background(), engine.ToolCallFilter{})
	if err != nil || len(audit) != 1 || audit[0].Outcome != engine.ToolRejected || audit[0].Tool != "weather" {
		t.Errorf("audit %+v, %v", audit, err)
	}
}

// TestToolPolicyMixedStep: in one step an allowed call runs at once, a
// denied one is refused, and the asked one waits; after approval the
// model gets all three results in order.
func TestToolPolicyMixedStep(t *testing.T) {
	f := mustFixture(t, engine.Config{})
	tools := policyTools()
	tools.Specs = append(tools.Specs, engine.ToolSpec{Name: "shell", Description: "Runs commands.", InputSchema: json.RawMessage(`{"type":"object"}`)})
	e := mustPolicyEngine(t, f, tools, nil, engine.Config{})
	f.assistant.Tools = []string{"clock", "weather", "shell"}
	f.assistant.ToolPolicy = map[string]engine.ToolMode{"weather": engine.ToolAsk, "shell": engine.ToolDeny}
	if err := f.store.UpdateAssistant(context.Background(), f.assistant); err != nil {
		t.Fatal(err)
	}
	f.model.Script(
		enginetest.Reply{ToolCalls: []engine.ToolCall{toolCall("a", "clock", `{}`), toolCall("b", "shell", `{"cmd":"rm -rf /"}`), toolCall("c", "weather", `{}`)}},
		enginetest.Reply{Chunks: []string{"Noon and sunny."}},
	)
	ans, _ := mustAwait(t, f, e, "T3")
	if got := f.model.Requests()[0].Tools; len(got) != 2 {
		t.Errorf("offered %v: a denied tool must not be offered", got)
	}
	if calls := tools.Calls(); len(calls) != 1 || calls[0].Call.Name != "clock" {
		t.Fatalf("before approval, calls %+v: want only the allowed one", calls)
	}
	if ans.Approval.ToolNames() != "weather" {
		t.Errorf("approval asks for %q", ans.Approval.ToolNames())
	}
	if _, err := decide(f, ans.Approval.ID, true, asker); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Handle(context.Background(), resumeMessage(t, f, ans.Approval.ID), &enginetest.Replier{}); err != nil {
		t.Fatal(err)
	}
	if calls := tools.Calls(); len(calls) != 2 || calls[1].Call.Name != "weather" {
		t.Errorf("calls %+v", calls)
	}
	msgs := f.model.Requests()[1].Messages
	n := len(msgs)
	if msgs[n-3].Content != "12:00" || !strings.Contains(msgs[n-2].Content, "denied by this assistant's policy") || msgs[n-1].Content != "sunny" {
		t.Errorf("results given to the model: %+v", msgs[n-3:])
	}
}

// TestDecideApprovalWho: only the asker or an admin decides; an expired
// request cannot be approved.
func TestDecideApprovalWho(t *testing.T) {
	ctx := context.Background()
	f := mustFixture(t, engine.Config{})
	e := mustPolicyEngine(t, f, policyTools(), map[string]engine.ToolMode{"weather": engine.ToolAsk}, engine.Config{ApprovalTTL: time.Hour})
	ask := enginetest.Reply{ToolCalls: []engine.ToolCall{toolCall("c1", "weather", `{}`)}}
	admin := &engine.User{Name: "root", Role: engine.RoleAdmin, PasswordHash: "x"}
	viewer := &engine.User{Name: "vera", Role: engine.RoleViewer, PasswordHash: "x"}
	for _, u := range []*engine.User{admin, viewer} {
		if err := f.store.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.store.LinkIdentity(ctx, &engine.Identity{Platform: engine.PlatformSlack, ChatUserID: "UADMIN", UserID: admin.ID}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.LinkIdentity(ctx, &engine.Identity{Platform: engine.PlatformSlack, ChatUserID: "UVIEW", UserID: viewer.ID}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		d    engine.Decision
		want string // error code; "" allowed
	}{
		{"another user", engine.Decision{Platform: engine.PlatformSlack, ChatUser: engine.ChatUser{ID: "U2"}}, engine.EFORBIDDEN},
		{"the asker's id on another platform", engine.Decision{Platform: engine.PlatformDiscord, ChatUser: engine.ChatUser{ID: "U1"}}, engine.EFORBIDDEN},
		{"a user linked to a viewer", engine.Decision{Platform: engine.PlatformSlack, ChatUser: engine.ChatUser{ID: "UVIEW"}}, engine.EFORBIDDEN},
		{"a console viewer", engine.Decision{ConsoleUser: viewer}, engine.EFORBIDDEN},
		{"a user linked to an admin", engine.Decision{Platform: engine.PlatformSlack, ChatUser: engine.ChatUser{ID: "UADMIN"}}, ""},
		{"a console admin", engine.Decision{ConsoleUser: admin}, ""},
		{"the asker", engine.Decision{Platform: engine.PlatformSlack, ChatUser: asker}, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.model.Script(ask)
			ans, _ := mustAwait(t, f, e, "W"+string(rune('a'+i)))
			tt.d.ApprovalID, tt.d.Approve = ans.Approval.ID, true
			_, err := engine.DecideApproval(ctx, f.store, tt.d, time.Now())
			if engine.ErrorCode(err) != tt.want {
				t.Fatalf("decide: %v, want code %q", err, tt.want)
			}
			stored, _ := f.store.ApprovalByID(ctx, ans.Approval.ID)
			if (tt.want == "") != (stored.Status == engine.ApprovalApproved) {
				t.Errorf("status %s after %v", stored.Status, err)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		f.model.Script(ask)
		ans, _ := mustAwait(t, f, e, "W-expired")
		_, err := engine.DecideApproval(ctx, f.store, engine.Decision{ApprovalID: ans.Approval.ID, Approve: true, Platform: engine.PlatformSlack, ChatUser: asker}, time.Now().Add(2*time.Hour))
		if engine.ErrorCode(err) != engine.EINVALID || !strings.Contains(engine.ErrorMessage(err), "expired") {
			t.Fatalf("decide: %v", err)
		}
		if stored, _ := f.store.ApprovalByID(ctx, ans.Approval.ID); stored.Status != engine.ApprovalExpired {
			t.Errorf("status %s", stored.Status)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := decide(f, "nope", true, asker); engine.ErrorCode(err) != engine.ENOTFOUND {
			t.Errorf("decide: %v", err)
		}
	})
}

// TestRetriedTurnSupersedesItsApproval: a retried event asks again; the
// earlier attempt's approval expires, so only the new prompt can be
// answered.
func TestRetriedTurnSupersedesItsApproval(t *testing.T) {
	ctx := context.Background()
	f := mustFixture(t, engine.Config{})
	e := mustPolicyEngine(t, f, policyTools(), map[string]engine.ToolMode{"weather": engine.ToolAsk}, engine.Config{})
	ask := enginetest.Reply{ToolCalls: []engine.ToolCall{toolCall("c1", "weather", `{}`)}}
	f.model.Script(ask, ask)
	msg := slackMessage("T9", "weather?")
	first, err := e.Handle(ctx, msg, &enginetest.Replier{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.Handle(ctx, msg, &enginetest.Replier{})
	if err != nil {
		t.Fatal(err)
	}
	if old, _ := f.store.ApprovalByID(ctx, first.Approval.ID); old.Status != engine.ApprovalExpired {
		t.Errorf("the first attempt's approval is %s, want expired", old.Status)
	}
	if _, err := decide(f, first.Approval.ID, true, asker); engine.ErrorCode(err) != engine.ECONFLICT {
		t.Errorf("deciding the superseded approval: %v", err)
	}
	if _, err := decide(f, second.Approval.ID, true, asker); err != nil {
		t.Errorf("deciding the retry's approval: %v", err)
	}
}

func TestToolModeFor(t *testing.T) {
	a := &engine.Assistant{Tools: []string{"a", "b", "c"}, ToolPolicy: map[string]engine.ToolMode{"b": engine.ToolAsk, "c": engine.ToolDeny, "z": engine.ToolAllow}}
	for tool, want := range map[string]engine.ToolMode{"a": engine.ToolAllow, "b": engine.ToolAsk, "c": engine.ToolDeny, "z": engine.ToolDeny, "": engine.ToolDeny} {
		if got := a.ToolModeFor(tool); got != want {
			t.Errorf("ToolModeFor(%q) = %s, want %s", tool, got, want)
		}
	}
	bad := &engine.Assistant{Name: "x", ToolPolicy: map[string]engine.ToolMode{"a": "maybe"}}
	if err := bad.Validate(); engine.ErrorCode(err) != engine.EINVALID || !strings.Contains(engine.ErrorMessage(err), "use allow, ask or deny") {
		t.Errorf("Validate: %v", err)
	}
}

func TestPrettyArguments(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"city":"Oslo"}`, "{\n  \"city\": \"Oslo\"\n}"},
		{`not json`, "not json"},
		{`{"q":"a<b && c>d"}`, "{\n  \"q\": \"a<b && c>d\"\n}"},
		{`{"s":"ééééé"}`, "{\n  \"s\": \"éé…"},
	}
	for _, tt := range tests {
		max := 0
		if strings.Contains(tt.in, "é") {
			max = 15
		}
		if got := engine.PrettyArguments(tt.in, max); got != tt.want {
			t.Errorf("PrettyArguments(%q, %d) = %q, want %q", tt.in, max, got, tt.want)
		}
	}
}
