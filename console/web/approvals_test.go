package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
)

// approvalAnswer is a chat answer with its approval.
type approvalAnswer struct {
	chatAnswer
	Approval *struct {
		ID        string `json:"id"`
		Status    string `json:"status"`
		Assistant string `json:"assistant"`
		Tools     []struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"tools"`
		ExpiresAt time.Time `json:"expires_at"`
		DecidedBy string    `json:"decided_by"`
		Platform  string    `json:"platform"`
	} `json:"approval"`
}

func mustApprovalAnswer(tb testing.TB, data []byte) approvalAnswer {
	tb.Helper()
	mustAnswer(tb, data)
	var a approvalAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		tb.Fatal(err)
	}
	return a
}

// askArgs are the arguments the model gives tool x.
const askArgs = `{"path":"/etc/<script>alert(1)</script>"}`

// approvalEnv is a console whose default assistant "ops" may call tool x
// once the asker or an admin approves; the model asks for x, then answers
// with whatever it is scripted next.
func approvalEnv(t *testing.T, next ...enginetest.Reply) (*testEnv, *enginetest.ToolSet) {
	t.Helper()
	tools := &enginetest.ToolSet{
		Specs:   []engine.ToolSpec{{Name: "x", Description: "Reads a file", InputSchema: json.RawMessage(`{"type":"object"}`)}},
		Results: map[string]engine.ToolResult{"x": {Content: "x says 42", Outcome: engine.ToolOK}},
	}
	env := mustEnv(t, envOptions{Tools: tools})
	a := env.MustAssistant("ops", true)
	a.Tools, a.ToolPolicy = []string{"x"}, map[string]engine.ToolMode{"x": engine.ToolAsk}
	if err := env.store.UpdateAssistant(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	env.model.Script(enginetest.Reply{Chunks: []string{"Let me check. "}, ToolCalls: []engine.ToolCall{{ID: "c1", Name: "x", Arguments: askArgs}}})
	env.model.Script(next...)
	return env, tools
}

// mustAwait asks a question as c and returns the answer waiting for approval.
func mustAwait(t *testing.T, env *testEnv, c *client) approvalAnswer {
	t.Helper()
	w := env.postChat(c, `{"message":"What does the file say?"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("chat: %d %s", w.Code, w.Body)
	}
	a := mustApprovalAnswer(t, w.Body.Bytes())
	if a.Outcome != string(engine.OutcomeAwaiting) || a.Approval == nil || a.Approval.ID == "" {
		t.Fatalf("answer %s: want awaiting_approval with an approval", w.Body)
	}
	ap := a.Approval
	if ap.Status != "pending" || ap.Assistant != "ops" || len(ap.Tools) != 1 || ap.Tools[0].Name != "x" ||
		ap.Tools[0].Arguments != askArgs || ap.ExpiresAt.Before(time.Now()) {
		t.Fatalf("approval %+v", ap)
	}
	if a.Answer != "Let me check. " || !strings.Contains(a.Notice, "Waiting for approval to run x") {
		t.Fatalf("answer %+v", a.chatAnswer)
	}
	return a
}

// decideAs posts a decision.
func (e *testEnv) decideAs(c *client, id, body string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/tool-approvals/"+id, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	c.apply(r)
	return e.serve(r)
}

func (e *testEnv) approval(id string) *engine.ToolApproval {
	e.tb.Helper()
	ap, err := e.store.ApprovalByID(context.Background(), id)
	if err != nil {
		e.tb.Fatalf("approval %s: %v", id, err)
	}
	return ap
}

func TestApprovalApprovedByTheAsker(t *testing.T) {
	env, tools := approvalEnv(t, enginetest.Reply{Chunks: []string{"The file says 42."}})
	alice := env.MustToken(env.MustUser("alice", engine.RoleViewer))
	bob := env.MustToken(env.MustUser("bob", engine.RoleViewer))
	asked := mustAwait(t, env, alice)
	id := asked.Approval.ID
	if len(tools.Calls()) != 0 {
		t.Fatal("the tool ran before it was approved")
	}

	// Someone else may not decide; the approval stays pending.
	w := env.decideAs(bob, id, `{"decision":"approve"}`)
	if code, msg := errorOf(t, w.Body.Bytes()); w.Code != http.StatusForbidden || code != engine.EFORBIDDEN || !strings.Contains(msg, "alice or an admin") {
		t.Fatalf("bob approving: %d %s", w.Code, w.Body)
	}
	if ap := env.approval(id); ap.Status != engine.ApprovalPending {
		t.Fatalf("after bob: %s", ap.Status)
	}
	// The list shows it to its asker, not to bob.
	for _, tc := range []struct {
		c    *client
		want int
	}{{alice, 1}, {bob, 0}} {
		w := env.get("/api/v1/tool-approvals?status=pending", tc.c)
		var got struct {
			Approvals []approvalJSON `json:"approvals"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != http.StatusOK || len(got.Approvals) != tc.want {
			t.Fatalf("%s lists: %d %s", tc.c.user.Name, w.Code, w.Body)
		}
	}

	// The asker approves: the tool runs and the answer goes on.
	w = env.decideAs(alice, id, `{"decision":"approve"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("alice approving: %d %s", w.Code, w.Body)
	}
	a := mustApprovalAnswer(t, w.Body.Bytes())
	if a.Answer != "The file says 42." || a.Outcome != "answered" || a.ConversationID != asked.ConversationID || a.Approval != nil {
		t.Fatalf("continued answer %s", w.Body)
	}
	calls := tools.Calls()
	if len(calls) != 1 || calls[0].Call.Name != "x" || calls[0].Call.Arguments != askArgs || calls[0].User.ID != alice.user.ID {
		t.Fatalf("tool calls %+v", calls)
	}
	reqs := env.model.Requests()
	msgs := reqs[len(reqs)-1].Messages
	if last := msgs[len(msgs)-1]; last.Role != engine.RoleTool || last.ToolCallID != "c1" || last.Content != "x says 42" {
		t.Fatalf("the model did not get the tool's result: %+v", last)
	}
	ap := env.approval(id)
	if ap.Status != engine.ApprovalApproved || ap.DecidedBy != "console:alice" {
		t.Fatalf("stored approval %+v", ap)
	}
	// The conversation holds the whole answer.
	turns := env.turns(asked.ConversationID)
	if last := turns[len(turns)-1]; last.Role != engine.TurnAssistant || last.Content != "Let me check. The file says 42." {
		t.Fatalf("last turn %+v", last)
	}

	// Deciding twice is a conflict, and nothing runs again.
	for _, d := range []string{"approve", "reject"} {
		w = env.decideAs(alice, id, `{"decision":"`+d+`"}`)
		if code, msg := errorOf(t, w.Body.Bytes()); w.Code != http.StatusConflict || code != engine.ECONFLICT || !strings.Contains(msg, "already approved by console:alice") {
			t.Fatalf("deciding again (%s): %d %s", d, w.Code, w.Body)
		}
	}
	if len(tools.Calls()) != 1 {
		t.Fatal("the tool ran again")
	}
}

func TestApprovalRejected(t *testing.T) {
	env, tools := approvalEnv(t, enginetest.Reply{Chunks: []string{"Fine, I will not read it."}})
	alice := env.MustSession(env.MustUser("alice", engine.RoleViewer))
	asked := mustAwait(t, env, alice)

	w := env.decideAs(alice, asked.Approval.ID, `{"decision":"reject"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("reject: %d %s", w.Code, w.Body)
	}
	a := mustApprovalAnswer(t, w.Body.Bytes())
	if a.Answer != "Fine, I will not read it." || a.Outcome != "answered" || a.ConversationID != asked.ConversationID {
		t.Fatalf("answer after the rejection %s", w.Body)
	}
	if !strings.Contains(w.Body.String(), `"answer_html":`) {
		t.Error("the Playground (a session) gets no rendered answer")
	}
	if calls := tools.Calls(); len(calls) != 0 {
		t.Fatalf("a rejected tool ran: %+v", calls)
	}
	reqs := env.model.Requests()
	msgs := reqs[len(reqs)-1].Messages
	last := msgs[len(msgs)-1]
	if last.Role != engine.RoleTool || last.ToolCallID != "c1" || !strings.Contains(last.Content, "console:alice declined this call to x") {
		t.Fatalf("the model was not told of the rejection: %+v", last)
	}
	audit, err := env.store.ListToolCalls(context.Background(), engine.ToolCallFilter{})
	if err != nil || len(audit) != 1 || audit[0].Outcome != engine.ToolRejected || audit[0].Tool != "x" {
		t.Fatalf("audit %+v, %v", audit, err)
	}
	if ap := env.approval(asked.Approval.ID); ap.Status != engine.ApprovalRejected {
		t.Fatalf("status %s", ap.Status)
	}
}

func TestApprovalWhoMayDecide(t *testing.T) {
	tests := []struct {
		name string
		role engine.Role
		own  bool // the asker themself
		want int
	}{
		{"the asker", engine.RoleViewer, true, http.StatusOK},
		{"an admin", engine.RoleAdmin, false, http.StatusOK},
		{"an editor", engine.RoleEditor, false, http.StatusForbidden},
		{"another viewer", engine.RoleViewer, false, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, tools := approvalEnv(t, enginetest.Reply{Chunks: []string{"Done."}})
			asker := env.MustToken(env.MustUser("alice", engine.RoleViewer))
			asked := mustAwait(t, env, asker)
			decider := asker
			if !tt.own {
				decider = env.MustToken(env.MustUser("dora", tt.role))
			}
			w := env.decideAs(decider, asked.Approval.ID, `{"decision":"approve"}`)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			ran := len(tools.Calls()) == 1
			if ran != (tt.want == http.StatusOK) {
				t.Fatalf("tool ran: %v", ran)
			}
			status := env.approval(asked.Approval.ID).Status
			if (status == engine.ApprovalApproved) != (tt.want == http.StatusOK) || (tt.want != http.StatusOK && status != engine.ApprovalPending) {
				t.Fatalf("stored status %s", status)
			}
		})
	}
}

func TestApprovalSSE(t *testing.T) {
	env, tools := approvalEnv(t, enginetest.Reply{Chunks: []string{"The file ", "says 42."}})
	alice := env.MustSession(env.MustUser("alice", engine.RoleViewer))

	w := env.postChat(alice, `{"message":"What does the file say?"}`, "Accept", "text/event-stream")
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream") {
		t.Fatalf("chat: %d %s", w.Code, w.Body)
	}
	events := parseSSE(t, w.Body)
	last := events[len(events)-1]
	if last.Name != "done" {
		t.Fatalf("the waiting answer ends with %q, want done: %+v", last.Name, events)
	}
	asked := mustApprovalAnswer(t, []byte(last.Data))
	if asked.Outcome != "awaiting_approval" || asked.Approval == nil || asked.Approval.Tools[0].Arguments != askArgs {
		t.Fatalf("done %s", last.Data)
	}

	w = env.decideAs(alice, asked.Approval.ID, `{"decision":"approve"}`, "Accept", "text/event-stream")
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream") {
		t.Fatalf("approve: %d %s", w.Code, w.Body)
	}
	events = parseSSE(t, w.Body)
	var deltas strings.Builder
	for _, ev := range events {
		if ev.Name == "delta" {
			var d struct{ Text string }
			if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
				t.Fatal(err)
			}
			deltas.WriteString(d.Text)
		}
	}
	last = events[len(events)-1]
	a := mustApprovalAnswer(t, []byte(last.Data))
	if last.Name != "done" || deltas.String() != "The file says 42." || a.Answer != "The file says 42." || a.Outcome != "answered" || a.ConversationID != asked.ConversationID {
		t.Fatalf("continuation: deltas %q, events %+v", deltas.String(), events)
	}
	if len(tools.Calls()) != 1 {
		t.Fatal("the tool did not run")
	}

	// Refusals come before any stream starts, as plain JSON errors.
	w = env.decideAs(alice, asked.Approval.ID, `{"decision":"approve"}`, "Accept", "text/event-stream")
	if code, _ := errorOf(t, w.Body.Bytes()); w.Code != http.StatusConflict || code != engine.ECONFLICT {
		t.Fatalf("again: %d %s", w.Code, w.Body)
	}
}

func TestApprovalBadRequests(t *testing.T) {
	env, _ := approvalEnv(t)
	alice := env.MustToken(env.MustUser("alice", engine.RoleViewer))
	asked := mustAwait(t, env, alice)
	id := asked.Approval.ID
	tests := []struct {
		name, id, body string
		status         int
		want           string // in the message
	}{
		{"empty body", id, ``, http.StatusBadRequest, `The request body is empty`},
		{"not JSON", id, `approve`, http.StatusBadRequest, `not valid JSON`},
		{"unknown field", id, `{"decision":"approve","why":"because"}`, http.StatusBadRequest, `Unknown field "why": the fields are "decision"`},
		{"unknown decision", id, `{"decision":"maybe"}`, http.StatusBadRequest, `must be "approve" or "reject", not "maybe"`},
		{"no decision", id, `{}`, http.StatusBadRequest, `must be "approve" or "reject", not ""`},
		{"decision not a string", id, `{"decision":true}`, http.StatusBadRequest, `Field "decision" must be a string`},
		{"two objects", id, `{"decision":"approve"}{}`, http.StatusBadRequest, `more data after the JSON object`},
		{"unknown approval", "nope", `{"decision":"approve"}`, http.StatusNotFound, `does not exist`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := env.decideAs(alice, tt.id, tt.body)
			_, msg := errorOf(t, w.Body.Bytes())
			if w.Code != tt.status || !strings.Contains(msg, tt.want) {
				t.Fatalf("%d %q, want %d with %q", w.Code, msg, tt.status, tt.want)
			}
		})
	}
	if ap := env.approval(id); ap.Status != engine.ApprovalPending {
		t.Fatalf("a bad request decided: %s", ap.Status)
	}
	if w := env.decideAs(nil, id, `{"decision":"approve"}`); w.Code != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d", w.Code)
	}
	// A session without the CSRF token is refused.
	s := env.MustSession(alice.user)
	s.csrf = ""
	if w := env.decideAs(s, id, `{"decision":"approve"}`); w.Code != http.StatusUnauthorized {
		t.Fatalf("without the CSRF token: %d", w.Code)
	}
	if w := env.get("/api/v1/tool-approvals?status=maybe", alice); w.Code != http.StatusBadRequest {
		t.Fatalf("unknown status: %d", w.Code)
	}
	if w := env.get("/api/v1/tool-approvals?limit=0", alice); w.Code != http.StatusBadRequest {
		t.Fatalf("limit 0: %d", w.Code)
	}
}

// slackApproval stores an approval asked in a Slack thread.
func slackApproval(t *testing.T, env *testEnv, expires time.Time) *engine.ToolApproval {
	t.Helper()
	a, err := env.store.AssistantByName(context.Background(), "ops")
	if err != nil {
		t.Fatal(err)
	}
	conv := &engine.Conversation{Platform: engine.PlatformSlack, ChannelID: "C1", ThreadID: "T1", AssistantID: a.ID}
	if err := env.store.EnsureConversation(context.Background(), conv); err != nil {
		t.Fatal(err)
	}
	ap := &engine.ToolApproval{
		TraceID: "tr1", EventID: "Ev1", AssistantID: a.ID, AssistantName: a.Name, ConversationID: conv.ID,
		Thread: engine.Thread{Channel: engine.Channel{Platform: engine.PlatformSlack, ID: "C1"}, ID: "T1"},
		User:   engine.ChatUser{ID: "U1", Name: "ursula"},
		Calls:  []engine.ToolCall{{ID: "c1", Name: "x", Arguments: askArgs}},
		State:  []byte(`{}`), Status: engine.ApprovalPending, CreatedAt: time.Now().Add(-time.Minute), ExpiresAt: expires,
	}
	if err := env.store.CreateApproval(context.Background(), ap); err != nil {
		t.Fatal(err)
	}
	return ap
}

func TestApprovalFromSlackDecidedInTheConsole(t *testing.T) {
	env, tools := approvalEnv(t)
	ap := slackApproval(t, env, time.Now().Add(time.Hour))
	admin := env.MustToken(env.MustUser("ada", engine.RoleAdmin))
	viewer := env.MustToken(env.MustUser("vera", engine.RoleViewer))

	// Admins see every approval; a viewer sees none of the chat ones.
	w := env.get("/api/v1/tool-approvals?status=pending", admin)
	var got struct {
		Approvals []approvalJSON `json:"approvals"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || len(got.Approvals) != 1 || got.Approvals[0].ID != ap.ID ||
		got.Approvals[0].Platform != engine.PlatformSlack || got.Approvals[0].User.Name != "ursula" {
		t.Fatalf("admin list: %d %s", w.Code, w.Body)
	}
	if w := env.get("/api/v1/tool-approvals", viewer); !strings.Contains(w.Body.String(), `"approvals":[]`) {
		t.Fatalf("viewer list: %s", w.Body)
	}
	if w := env.decideAs(viewer, ap.ID, `{"decision":"approve"}`); w.Code != http.StatusForbidden {
		t.Fatalf("viewer deciding: %d", w.Code)
	}

	calls := env.chat.calls.Load()
	w = env.decideAs(admin, ap.ID, `{"decision":"approve"}`, "Accept", "text/event-stream")
	if w.Code != http.StatusAccepted || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("admin approving: %d %s", w.Code, w.Body)
	}
	var body struct {
		Approval approvalJSON `json:"approval"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Approval.ID != ap.ID ||
		body.Approval.Status != engine.ApprovalApproved || body.Approval.DecidedBy != "console:ada" {
		t.Fatalf("decided: %s", w.Body)
	}
	if env.chat.calls.Load() != calls || len(tools.Calls()) != 0 {
		t.Fatal("the console resumed a Slack turn itself")
	}
	// The bot's worker resumes it from the inbox.
	ev, err := env.store.Claim(context.Background(), "test", time.Minute)
	if err != nil {
		t.Fatalf("no resume event: %v", err)
	}
	var msg engine.Message
	if err := json.Unmarshal(ev.Payload, &msg); err != nil {
		t.Fatal(err)
	}
	if ev.Platform != engine.PlatformSlack || ev.EventID != engine.ApprovalEventID(ap.ID) || msg.Resume == nil ||
		msg.Resume.ApprovalID != ap.ID || msg.User.ID != "U1" || msg.Thread != ap.Thread {
		t.Fatalf("inbox event %+v, message %+v", ev, msg)
	}

	// Rejecting what was approved is a conflict.
	if w := env.decideAs(admin, ap.ID, `{"decision":"reject"}`); w.Code != http.StatusConflict {
		t.Fatalf("reject after approve: %d %s", w.Code, w.Body)
	}
}

func TestApprovalExpired(t *testing.T) {
	env, _ := approvalEnv(t)
	ap := slackApproval(t, env, time.Now().Add(-time.Second))
	admin := env.MustToken(env.MustUser("ada", engine.RoleAdmin))
	// Still stored as pending, shown as expired.
	w := env.get("/api/v1/tool-approvals?status=pending", admin)
	if !strings.Contains(w.Body.String(), `"approvals":[]`) {
		t.Fatalf("an expired approval listed as pending: %s", w.Body)
	}
	w = env.get("/api/v1/tool-approvals?status=expired", admin)
	if !strings.Contains(w.Body.String(), `"id":"`+ap.ID+`","status":"expired"`) {
		t.Fatalf("expired list: %s", w.Body)
	}
	w = env.decideAs(admin, ap.ID, `{"decision":"approve"}`)
	if _, msg := errorOf(t, w.Body.Bytes()); w.Code != http.StatusBadRequest || !strings.Contains(msg, "expired") {
		t.Fatalf("deciding an expired approval: %d %s", w.Code, w.Body)
	}
	if _, err := env.store.Claim(context.Background(), "test", time.Minute); !engine.IsNotFound(err) {
		t.Fatalf("an expired approval was resumed: %v", err)
	}
}
