package discord

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
	"github.com/convosphere/convosphere/store/sqlite"
)

// ticketArgs try to break out of the prompt's code block and to ping.
const ticketArgs = "{\"title\":\"```\\n@everyone <@123> done\",\"body\":\"````md\\nhi``\"}"

// approvalSetup is an /ask whose tool call waits for approval, with the
// worker that answers it and later resumes it.
type approvalSetup struct {
	*testEnv
	worker *engine.Worker
	tools  *enginetest.ToolSet
	model  *enginetest.Model
}

func mustApprovalSetup(t *testing.T) *approvalSetup {
	t.Helper()
	e := mustEnv(t)
	ctx := context.Background()
	if err := e.db.CreateAssistant(ctx, &engine.Assistant{Name: "ops", IsDefault: true, Tools: []string{"create_ticket"},
		ToolPolicy: map[string]engine.ToolMode{"create_ticket": engine.ToolAsk}}); err != nil {
		t.Fatal(err)
	}
	tools := &enginetest.ToolSet{
		Specs:   []engine.ToolSpec{{Name: "create_ticket", Description: "Files a ticket", InputSchema: json.RawMessage(`{"type":"object"}`)}},
		Results: map[string]engine.ToolResult{"create_ticket": {Content: "TICKET-1"}},
	}
	model := enginetest.NewModel(
		enginetest.Reply{Chunks: []string{"Let me file it."}, ToolCalls: []engine.ToolCall{{ID: "call-1", Name: "create_ticket", Arguments: ticketArgs}}},
		enginetest.Reply{Chunks: []string{"Filed TICKET-1."}},
	)
	eng, err := engine.New(engine.Config{}, engine.Deps{Assistants: e.db, Conversations: e.db, Traces: e.db, Model: model,
		Tools: tools, ToolAudit: e.db, Approvals: e.db})
	if err != nil {
		t.Fatal(err)
	}
	w, err := engine.NewWorker(engine.WorkerConfig{}, engine.WorkerDeps{Inbox: e.db, Handler: eng,
		Repliers: map[engine.Platform]engine.ReplierFactory{engine.PlatformDiscord: e.a}})
	if err != nil {
		t.Fatal(err)
	}
	return &approvalSetup{testEnv: e, worker: w, tools: tools, model: model}
}

// process runs the next inbox event through the worker.
func (s *approvalSetup) process(t *testing.T) {
	t.Helper()
	if worked, err := s.worker.ProcessOne(context.Background()); !worked || err != nil {
		t.Fatalf("ProcessOne = %v, %v", worked, err)
	}
}

// mustAwait asks, answers until the approval prompt and returns the approval.
func (s *approvalSetup) mustAwait(t *testing.T) *engine.ToolApproval {
	t.Helper()
	s.post(askBody("I1", "File a ticket about the outage"), time.Now())
	s.process(t)
	aps, err := s.db.ListApprovals(context.Background(), engine.ApprovalFilter{Status: engine.ApprovalPending})
	if err != nil || len(aps) != 1 {
		t.Fatalf("pending approvals %+v, %v; want 1", aps, err)
	}
	return aps[0]
}

// promptContent is the content of the message that carries the buttons.
func (s *approvalSetup) promptContent(t *testing.T) string {
	t.Helper()
	edits := s.f.callsTo(http.MethodPatch, "@original")
	if len(edits) == 0 {
		t.Fatal("no prompt")
	}
	c, _ := edits[len(edits)-1].Body["content"].(string)
	return c
}

// buttonBody is a button click (a message component interaction) as
// Discord documents it, by a server member.
func buttonBody(id, customID, userID, content string) []byte {
	b, _ := json.Marshal(map[string]any{
		"type": 3, "id": id, "application_id": "APP1", "token": "TOKEN-" + id, "guild_id": "G1", "channel_id": "C1", "version": 1,
		"member":  map[string]any{"user": map[string]any{"id": userID, "username": "user-" + userID, "global_name": "User " + userID}},
		"message": map[string]any{"id": "orig-1", "channel_id": "C1", "content": content},
		"data":    map[string]any{"custom_id": customID, "component_type": 2},
	})
	return b
}

type interactionReply struct {
	Type int `json:"type"`
	Data struct {
		Content         string            `json:"content"`
		Flags           int               `json:"flags"`
		Components      []json.RawMessage `json:"components"`
		AllowedMentions *struct {
			Parse []string `json:"parse"`
		} `json:"allowed_mentions"`
	} `json:"data"`
}

func decodeReply(t *testing.T, body string) interactionReply {
	t.Helper()
	var r interactionReply
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("response %s: %v", body, err)
	}
	return r
}

// TestApprovalPrompt: an awaiting answer shows the text so far, which
// assistant wants to run which tool with its arguments in a code block
// they cannot break out of, the notice, and Approve/Reject buttons;
// nothing pings.
func TestApprovalPrompt(t *testing.T) {
	s := mustApprovalSetup(t)
	ap := s.mustAwait(t)
	if n := len(s.tools.Calls()); n != 0 {
		t.Fatalf("the tool ran %d times before approval", n)
	}
	edits := s.f.callsTo(http.MethodPatch, "/webhooks/APP1/TOKEN-I1/messages/@original")
	last := edits[len(edits)-1].Body
	content, _ := last["content"].(string)
	for _, want := range []string{"Let me file it.", "**ops** wants to run a tool", `**create\_ticket**`, "```json\n", `"title"`, "Waiting for approval to run create"} {
		if !strings.Contains(content, want) {
			t.Errorf("prompt %q lacks %q", content, want)
		}
	}
	if n := strings.Count(content, "```"); n != 2 {
		t.Errorf("prompt has %d runs of three backticks, want 2 (one code block the arguments cannot close):\n%s", n, content)
	}
	if n := utf8.RuneCountInString(content); n > MessageLimit {
		t.Errorf("prompt of %d characters", n)
	}
	comps, _ := json.Marshal(last["components"])
	var rows []struct {
		Type       int `json:"type"`
		Components []struct {
			Type     int    `json:"type"`
			Style    int    `json:"style"`
			Label    string `json:"label"`
			CustomID string `json:"custom_id"`
		} `json:"components"`
	}
	if err := json.Unmarshal(comps, &rows); err != nil || len(rows) != 1 || rows[0].Type != 1 || len(rows[0].Components) != 2 {
		t.Fatalf("components %s, want one action row with two buttons", comps)
	}
	want := []struct {
		style       int
		label, id   string
		componentOf int
	}{{3, "Approve", "convosphere:approve:" + ap.ID, 2}, {4, "Reject", "convosphere:reject:" + ap.ID, 2}}
	for i, b := range rows[0].Components {
		if b.Type != want[i].componentOf || b.Style != want[i].style || b.Label != want[i].label || b.CustomID != want[i].id || len(b.CustomID) > 100 {
			t.Errorf("button %d %+v, want %+v", i, b, want[i])
		}
	}
	for _, c := range s.f.all() {
		am, _ := c.Body["allowed_mentions"].(map[string]any)
		if parse, ok := am["parse"].([]any); !ok || len(parse) != 0 {
			t.Errorf("%s %s without allowed_mentions {parse: []}: %v", c.Method, c.Path, c.Body["allowed_mentions"])
		}
	}
}

func TestFenceSafe(t *testing.T) {
	tests := []struct{ name, args string }{
		{"plain json", `{"a":1}`},
		{"triple backticks", "{\"a\":\"```\"}"},
		{"four backticks", "````md\nx\n````"},
		{"backtick at the end", "not json `"},
		{"backticks only", "``````"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			block := codeBlock(tt.args, 1500)
			if !strings.HasPrefix(block, "```") || !strings.HasSuffix(block, "\n```") || strings.Count(block, "```") != 2 {
				t.Errorf("codeBlock(%q) = %q: want exactly one fenced block", tt.args, block)
			}
			if got := strings.ReplaceAll(fenceSafe(tt.args), "\u200b", ""); got != tt.args {
				t.Errorf("fenceSafe lost text: %q", got)
			}
		})
	}
}

// TestApprovalClick: who may decide, and what each click answers.
func TestApprovalClick(t *testing.T) {
	tests := []struct {
		name    string
		user    string
		approve bool
		setup   func(t *testing.T, s *approvalSetup)
		// want: a decision (type 7 with this line) or a private refusal (containing this).
		decided string
		refused string
		status  engine.ApprovalStatus
	}{
		{name: "asker approves", user: "U1", approve: true, decided: "✅ Approved by <@U1>", status: engine.ApprovalApproved},
		{name: "asker rejects", user: "U1", decided: "❌ Rejected by <@U1>", status: engine.ApprovalRejected},
		{name: "another user", user: "U2", approve: true, refused: "Only Mason or an admin", status: engine.ApprovalPending},
		{name: "linked console admin", user: "U3", approve: true, decided: "✅ Approved by <@U3>", status: engine.ApprovalApproved,
			setup: func(t *testing.T, s *approvalSetup) { linkUser(t, s.db, "U3", engine.RoleAdmin) }},
		{name: "linked console viewer", user: "U4", approve: true, refused: "Only Mason or an admin", status: engine.ApprovalPending,
			setup: func(t *testing.T, s *approvalSetup) { linkUser(t, s.db, "U4", engine.RoleViewer) }},
		{name: "expired", user: "U1", approve: true, refused: "expired", status: engine.ApprovalExpired,
			setup: func(t *testing.T, s *approvalSetup) {
				s.a.now = func() time.Time { return time.Now().Add(engine.DefaultApprovalTTL + time.Hour) }
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustApprovalSetup(t)
			ap := s.mustAwait(t)
			prompt := s.promptContent(t)
			if tt.setup != nil {
				tt.setup(t, s)
			}
			prefix := "convosphere:reject:"
			if tt.approve {
				prefix = "convosphere:approve:"
			}
			w := s.post(buttonBody("B1", prefix+ap.ID, tt.user, prompt), s.a.now())
			if w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			r := decodeReply(t, w.Body.String())
			if r.Data.AllowedMentions == nil || len(r.Data.AllowedMentions.Parse) != 0 {
				t.Errorf("response %s without allowed_mentions {parse: []}", w.Body.String())
			}
			got, err := s.db.ApprovalByID(context.Background(), ap.ID)
			if err != nil || got.Status != tt.status {
				t.Fatalf("approval %+v, %v; want %s", got, err, tt.status)
			}
			evs := inbox(t, s.db)
			if tt.refused != "" {
				if r.Type != 4 || r.Data.Flags != 64 || !strings.Contains(r.Data.Content, tt.refused) {
					t.Errorf("response %s, want an ephemeral message saying %q", w.Body.String(), tt.refused)
				}
				if len(evs) != 0 {
					t.Errorf("%d inbox events after a refusal", len(evs))
				}
				return
			}
			if r.Type != 7 || r.Data.Flags != 0 || r.Data.Components == nil || len(r.Data.Components) != 0 {
				t.Errorf("response %s, want the message updated (type 7) without buttons", w.Body.String())
			}
			if !strings.HasSuffix(r.Data.Content, "\n"+tt.decided) || !strings.Contains(r.Data.Content, "Let me file it.") ||
				strings.Contains(r.Data.Content, "Waiting for approval") {
				t.Errorf("updated content %q, want the prompt with %q instead of the waiting line", r.Data.Content, tt.decided)
			}
			if len(evs) != 1 || evs[0].EventID != engine.ApprovalEventID(ap.ID) {
				t.Fatalf("inbox %+v, want the resume event", evs)
			}
			var m engine.Message
			if err := json.Unmarshal(evs[0].Payload, &m); err != nil || m.Resume == nil || m.Resume.ApprovalID != ap.ID ||
				m.User.ID != "U1" || m.Thread != ap.Thread {
				t.Errorf("resume message %+v, %v", m, err)
			}
		})
	}
}

func linkUser(t *testing.T, db *sqlite.DB, chatUserID string, role engine.Role) {
	t.Helper()
	ctx := context.Background()
	u := &engine.User{Name: "console-" + chatUserID, Role: role}
	if err := db.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := db.LinkIdentity(ctx, &engine.Identity{Platform: engine.PlatformDiscord, ChatUserID: chatUserID, UserID: u.ID}); err != nil {
		t.Fatal(err)
	}
}

// TestApprovalSecondClick: a request decided once answers the next click
// privately with who decided it, and nothing more is enqueued.
func TestApprovalSecondClick(t *testing.T) {
	s := mustApprovalSetup(t)
	ap := s.mustAwait(t)
	prompt := s.promptContent(t)
	if r := decodeReply(t, s.post(buttonBody("B1", "convosphere:approve:"+ap.ID, "U1", prompt), time.Now()).Body.String()); r.Type != 7 {
		t.Fatalf("first click answered type %d", r.Type)
	}
	r := decodeReply(t, s.post(buttonBody("B2", "convosphere:reject:"+ap.ID, "U1", prompt), time.Now()).Body.String())
	if r.Type != 4 || r.Data.Flags != 64 || !strings.Contains(r.Data.Content, "already approved") {
		t.Errorf("second click answered %+v, want an ephemeral \"already approved\"", r)
	}
	if evs := inbox(t, s.db); len(evs) != 1 {
		t.Errorf("%d inbox events, want the one resume event", len(evs))
	}
	if got, _ := s.db.ApprovalByID(context.Background(), ap.ID); got.Status != engine.ApprovalApproved {
		t.Errorf("status %s after a second click", got.Status)
	}
	// A button of an approval that does not exist.
	r = decodeReply(t, s.post(buttonBody("B3", "convosphere:approve:nope", "U1", prompt), time.Now()).Body.String())
	if r.Type != 4 || r.Data.Flags != 64 || !strings.Contains(r.Data.Content, "does not exist") {
		t.Errorf("unknown approval answered %+v", r)
	}
}

// TestApprovalResume: after the approval the resumed turn runs the tool
// and answers in a new channel message that replies to the prompt, never
// through the (maybe expired) interaction webhook.
func TestApprovalResume(t *testing.T) {
	tests := []struct {
		name          string
		approve       bool
		refuseReplies bool // the bot may not reply: a plain message instead
	}{
		{"approved", true, false},
		{"rejected", false, false},
		{"approved, replies refused", true, true},
	}
	for _, tt := range tests {
		approve := tt.approve
		t.Run(tt.name, func(t *testing.T) {
			s := mustApprovalSetup(t)
			ap := s.mustAwait(t)
			s.f.mu.Lock()
			s.f.refuseReplies = tt.refuseReplies
			s.f.mu.Unlock()
			prefix := "convosphere:reject:"
			if approve {
				prefix = "convosphere:approve:"
			}
			s.post(buttonBody("B1", prefix+ap.ID, "U1", s.promptContent(t)), time.Now())
			webhooks := len(s.f.callsTo(http.MethodPatch, "/webhooks/")) + len(s.f.callsTo(http.MethodPost, "/webhooks/"))
			s.process(t)
			if n := len(s.f.callsTo(http.MethodPatch, "/webhooks/")) + len(s.f.callsTo(http.MethodPost, "/webhooks/")); n != webhooks {
				t.Errorf("%d interaction webhook calls while resuming", n-webhooks)
			}
			msgs := s.f.callsTo(http.MethodPost, "/channels/C1/messages")
			if len(msgs) != 1 {
				t.Fatalf("%d channel messages, want the resumed answer", len(msgs))
			}
			body := msgs[0].Body
			if got := body["content"]; got != "Filed TICKET-1." {
				t.Errorf("resumed answer %q", got)
			}
			ref, _ := body["message_reference"].(map[string]any)
			switch {
			case tt.refuseReplies && ref != nil:
				t.Errorf("message_reference %v after the reply was refused", ref)
			case !tt.refuseReplies && (ref["message_id"] != "orig-1" || ref["fail_if_not_exists"] != false):
				t.Errorf("message_reference %v, want a reply to the prompt", ref)
			}
			if am, _ := body["allowed_mentions"].(map[string]any); am == nil || len(am["parse"].([]any)) != 0 {
				t.Errorf("allowed_mentions %v", body["allowed_mentions"])
			}
			if n := len(s.tools.Calls()); (n == 1) != approve {
				t.Errorf("the tool ran %d times (approved: %v)", n, approve)
			}
			if !approve {
				reqs := s.model.Requests()
				lastReq := reqs[len(reqs)-1].Messages
				if res := lastReq[len(lastReq)-1]; !strings.Contains(res.Content, "declined") {
					t.Errorf("the model was not told of the rejection: %+v", res)
				}
			}
		})
	}
}

// TestResumeReplierIgnoresToken: a resume event's replier posts to the
// channel even when the payload carries an interaction token.
func TestResumeReplierIgnoresToken(t *testing.T) {
	e := mustEnv(t)
	msg := engine.Message{ID: "approval:A1", User: engine.ChatUser{ID: "U1"}, Resume: &engine.Resume{ApprovalID: "A1"},
		Thread: engine.Thread{Channel: engine.Channel{Platform: engine.PlatformDiscord, ID: "C1"}, ID: "u:U1"}}
	raw, _ := json.Marshal(payload{Message: msg, Discord: meta{ApplicationID: "APP1", Token: "FRESH", ReceivedAt: time.Now()}})
	r, err := e.a.Replier(context.Background(), &engine.InboxEvent{Platform: engine.PlatformDiscord, EventID: msg.ID, Payload: raw}, msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(context.Background(), engine.Answer{Text: "Done.", Outcome: engine.OutcomeAnswered}); err != nil {
		t.Fatal(err)
	}
	if n := len(e.f.callsTo(http.MethodPost, "/channels/C1/messages")); n != 1 {
		t.Errorf("%d channel messages, want 1", n)
	}
	for _, c := range e.f.all() {
		if strings.Contains(c.Path, "/webhooks/") {
			t.Errorf("resume used the interaction webhook: %s %s", c.Method, c.Path)
		}
	}
}

func TestDecidedContent(t *testing.T) {
	long := strings.Repeat("x", 1990) + "\n⏳ _Waiting…_"
	tests := []struct{ name, content, want string }{
		{"waiting line replaced", "prompt\n```json\n{}\n```\n⏳ _Waiting…_", "prompt\n```json\n{}\n```\n✅ Approved by <@U1>"},
		{"no waiting line", "prompt", "prompt\n✅ Approved by <@U1>"},
		{"only the waiting line", "⏳ _Waiting…_", "✅ Approved by <@U1>"},
	}
	for _, tt := range tests {
		if got := decidedContent(tt.content, "✅ Approved by <@U1>"); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := decidedContent(long, "✅ Approved by <@U1>"); utf8.RuneCountInString(got) > MessageLimit || !strings.HasSuffix(got, "Approved by <@U1>") {
		t.Errorf("long prompt gives %d characters", utf8.RuneCountInString(got))
	}
	over := strings.Repeat("y", 2100)
	if got := decidedContent(over, "❌ Rejected by <@U1>"); utf8.RuneCountInString(got) > MessageLimit || !strings.HasSuffix(got, "Rejected by <@U1>") {
		t.Errorf("over-long prompt gives %d characters", utf8.RuneCountInString(got))
	}
}
