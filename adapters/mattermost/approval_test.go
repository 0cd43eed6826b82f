package mattermost

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/store/sqlite"
)

const actionsURL = "http://bot.test/mattermost/actions"

var askThread = engine.Thread{Channel: engine.Channel{Platform: engine.PlatformMattermost, ID: "C1"}, ID: "P1"}

// mustApproval stores a pending approval of a deploy call asked by U1.
func mustApproval(t *testing.T, db *sqlite.DB) *engine.ToolApproval {
	t.Helper()
	ap := &engine.ToolApproval{AssistantName: "ops", Thread: askThread, EventID: "P1",
		User:  engine.ChatUser{ID: "U1", Name: "Ada L."},
		Calls: []engine.ToolCall{{ID: "c1", Name: "deploy", Arguments: `{"service":"web","env":"prod"}`}},
		State: []byte(`{}`), CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := db.CreateApproval(context.Background(), ap); err != nil {
		t.Fatal(err)
	}
	return ap
}

// awaiting is the answer the engine finishes a turn with while ap waits.
func awaiting(ap *engine.ToolApproval, text string) engine.Answer {
	return engine.Answer{Outcome: engine.OutcomeAwaiting, Text: text, Approval: ap,
		Notice: "Waiting for approval to run deploy: Ada L. or an admin can approve or reject it."}
}

// postAttachments decodes a post's attachments as the fake server holds them.
func postAttachments(t *testing.T, post map[string]any) []*model.SlackAttachment {
	t.Helper()
	props, _ := post["props"].(map[string]any)
	p := &model.Post{}
	p.SetProps(props)
	return p.Attachments()
}

// TestApprovalPrompt: an awaiting answer shows the text so far and the
// prompt (calls, arguments, notice) with signed Approve and Reject
// buttons; without an actions URL, no buttons and a pointer to the console.
func TestApprovalPrompt(t *testing.T) {
	tests := []struct {
		name       string
		actionsURL string
		streamed   string // text shown by an Update before the turn waited
		text       string
		wantButton bool
	}{
		{name: "buttons, no text", actionsURL: actionsURL, wantButton: true},
		{name: "buttons after streamed text", actionsURL: actionsURL, streamed: "Let me check the", text: "Let me check the deploy.", wantButton: true},
		{name: "no actions URL", text: "Let me check."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFakeServer(t)
			a, db := mustAdapter(t, f, func(c *Config) { c.ActionsURL = tt.actionsURL; c.UpdateInterval = time.Nanosecond })
			ap := mustApproval(t, db)
			ev := &engine.InboxEvent{Platform: engine.PlatformMattermost, EventID: "P1", Attempts: 1}
			r, err := a.Replier(ctx, ev, engine.Message{ID: "P1", Thread: askThread})
			if err != nil {
				t.Fatal(err)
			}
			if tt.streamed != "" {
				if err := r.Update(ctx, engine.Update{Text: tt.streamed}); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Finish(ctx, awaiting(ap, tt.text)); err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.posts) != 1 {
				t.Fatalf("%d posts, want the prompt in one post", len(f.posts))
			}
			post := f.posts[0]
			if post["message"] != tt.text || post["root_id"] != "P1" {
				t.Errorf("post message %q in thread %v, want %q in P1", post["message"], post["root_id"], tt.text)
			}
			props, _ := post["props"].(map[string]any)
			if props[propEvent] != "P1" {
				t.Errorf("props %v lost the event id", props)
			}
			atts := postAttachments(t, post)
			if len(atts) != 1 {
				t.Fatalf("attachments %v, want the prompt", atts)
			}
			att := atts[0]
			for _, want := range []string{"**ops** wants to run `deploy`", "```json", `"service": "web"`, "Waiting for approval to run deploy"} {
				if !strings.Contains(att.Text, want) {
					t.Errorf("prompt %q does not contain %q", att.Text, want)
				}
			}
			if !tt.wantButton {
				if len(att.Actions) != 0 || !strings.Contains(att.Text, "console") {
					t.Errorf("without an actions URL: actions %v, text %q; want none and the console named", att.Actions, att.Text)
				}
				return
			}
			if len(att.Actions) != 2 {
				t.Fatalf("actions %v, want Approve and Reject", att.Actions)
			}
			for i, want := range []struct{ id, name, style string }{{"approve", "Approve", "good"}, {"reject", "Reject", "danger"}} {
				b := att.Actions[i]
				if b.Id != want.id || b.Name != want.name || b.Style != want.style || b.Type != model.PostActionTypeButton {
					t.Errorf("button %d = %+v, want %+v", i, b, want)
				}
				ctxt := b.Integration.Context
				if b.Integration.URL != actionsURL || ctxt["approval_id"] != ap.ID || ctxt["decision"] != want.id {
					t.Errorf("button %s integration %+v", want.id, b.Integration)
				}
				if tok, _ := ctxt["token"].(string); !validToken(a.secret, ap.ID, want.id, tok) {
					t.Errorf("button %s token %q does not verify", want.id, tok)
				}
			}
		})
	}
}

// actionRequest posts an integration request to the handler.
func actionRequest(t *testing.T, h http.Handler, method string, body []byte) (int, model.PostActionIntegrationResponse) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/mattermost/actions", bytes.NewReader(body)))
	var resp model.PostActionIntegrationResponse
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("response %q: %v", rec.Body.String(), err)
		}
	}
	return rec.Code, resp
}

// TestActionHandler: a click's token is checked, then the decision goes
// through engine.DecideApproval: the asker or an admin decides (the post
// loses its buttons and names who decided; the resumption is queued);
// anyone else gets an ephemeral refusal and nothing changes.
func TestActionHandler(t *testing.T) {
	type click struct {
		user, name, decision string
		token                string // "": the right one; "-": none
		approval             string // "": the fixture's
	}
	tests := []struct {
		name       string
		method     string
		body       []byte // raw body instead of the click
		prior      *click // an earlier click
		click      click
		wantCode   int
		wantStatus engine.ApprovalStatus
		wantLine   string // in the updated prompt
		wantEphem  string
		wantResume bool // this click queues the turn's resumption
	}{
		{name: "asker approves", click: click{user: "U1", name: "ada", decision: "approve"},
			wantCode: 200, wantStatus: engine.ApprovalApproved, wantLine: "✅ Approved by @ada", wantResume: true},
		{name: "asker rejects", click: click{user: "U1", name: "ada", decision: "reject"},
			wantCode: 200, wantStatus: engine.ApprovalRejected, wantLine: "❌ Rejected by @ada", wantResume: true},
		{name: "linked admin approves", click: click{user: "U9", name: "root", decision: "approve"},
			wantCode: 200, wantStatus: engine.ApprovalApproved, wantLine: "✅ Approved by @root", wantResume: true},
		{name: "someone else", click: click{user: "U2", name: "eve", decision: "approve"},
			wantCode: 200, wantStatus: engine.ApprovalPending, wantEphem: "Only Ada L. or an admin"},
		{name: "already decided", prior: &click{user: "U1", name: "ada", decision: "reject"}, click: click{user: "U1", name: "ada", decision: "approve"},
			wantCode: 200, wantStatus: engine.ApprovalRejected, wantLine: "❌ Rejected by @ada", wantEphem: "already rejected"},
		{name: "unknown approval", click: click{user: "U1", name: "ada", decision: "approve", approval: "nope"},
			wantCode: 200, wantStatus: engine.ApprovalPending, wantEphem: "does not exist"},
		{name: "token of the other button", click: click{user: "U1", name: "ada", decision: "approve", token: "reject"},
			wantCode: 401, wantStatus: engine.ApprovalPending},
		{name: "forged token", click: click{user: "U1", name: "ada", decision: "approve", token: strings.Repeat("ab", 32)},
			wantCode: 401, wantStatus: engine.ApprovalPending},
		{name: "no token", click: click{user: "U1", name: "ada", decision: "approve", token: "-"},
			wantCode: 401, wantStatus: engine.ApprovalPending},
		{name: "not JSON", body: []byte("user_id=U1"), wantCode: 400, wantStatus: engine.ApprovalPending},
		{name: "too large", body: []byte(`{"user_id":"` + strings.Repeat("x", maxActionBody) + `"}`), wantCode: 413, wantStatus: engine.ApprovalPending},
		{name: "GET", method: http.MethodGet, wantCode: 405, wantStatus: engine.ApprovalPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFakeServer(t)
			a, db := mustAdapter(t, f, func(c *Config) { c.ActionsURL = actionsURL })
			admin := &engine.User{Name: "root", Role: engine.RoleAdmin, PasswordHash: "x"}
			if err := db.CreateUser(ctx, admin); err != nil {
				t.Fatal(err)
			}
			if err := db.LinkIdentity(ctx, &engine.Identity{Platform: engine.PlatformMattermost, ChatUserID: "U9", UserID: admin.ID}); err != nil {
				t.Fatal(err)
			}
			ap := mustApproval(t, db)
			r, err := a.Replier(ctx, &engine.InboxEvent{Platform: engine.PlatformMattermost, EventID: "P1", Attempts: 1}, engine.Message{ID: "P1", Thread: askThread})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Finish(ctx, awaiting(ap, "Deploying web.")); err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			postID := f.posts[0]["id"].(string)
			f.mu.Unlock()
			body := func(c click) []byte {
				id := ap.ID
				if c.approval != "" {
					id = c.approval
				}
				tok := actionToken(a.secret, id, c.decision)
				switch c.token {
				case "":
				case "-":
					tok = ""
				case "approve", "reject":
					tok = actionToken(a.secret, id, c.token)
				default:
					tok = c.token
				}
				b, _ := json.Marshal(model.PostActionIntegrationRequest{UserId: c.user, UserName: c.name, ChannelId: "C1", PostId: postID,
					Context: map[string]any{"approval_id": id, "decision": c.decision, "token": tok}})
				return b
			}
			if tt.prior != nil {
				if code, _ := actionRequest(t, a.Handler(), http.MethodPost, body(*tt.prior)); code != 200 {
					t.Fatalf("earlier click: %d", code)
				}
				inbox(t, db, 1)
			}
			method, b := tt.method, tt.body
			if method == "" {
				method = http.MethodPost
			}
			if b == nil {
				b = body(tt.click)
			}
			code, resp := actionRequest(t, a.Handler(), method, b)
			if code != tt.wantCode {
				t.Fatalf("status %d, want %d", code, tt.wantCode)
			}
			got, err := db.ApprovalByID(ctx, ap.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.wantStatus {
				t.Errorf("approval %s, want %s", got.Status, tt.wantStatus)
			}
			if tt.wantEphem == "" && resp.EphemeralText != "" || !strings.Contains(resp.EphemeralText, tt.wantEphem) {
				t.Errorf("ephemeral text %q, want %q", resp.EphemeralText, tt.wantEphem)
			}
			if tt.wantLine == "" {
				if resp.Update != nil {
					t.Errorf("the post was updated (%q) though nothing was decided", resp.Update.Message)
				}
			} else {
				if resp.Update == nil {
					t.Fatal("no post update")
				}
				atts := resp.Update.Attachments()
				if resp.Update.Message != "Deploying web." || len(atts) != 1 || len(atts[0].Actions) != 0 ||
					!strings.Contains(atts[0].Text, tt.wantLine) || !strings.Contains(atts[0].Text, `"env": "prod"`) {
					t.Errorf("update %q %+v, want the prompt without buttons saying %q", resp.Update.Message, atts, tt.wantLine)
				}
				if resp.Update.GetProp(propEvent) != "P1" {
					t.Errorf("the update lost the post's props: %v", resp.Update.GetProps())
				}
			}
			evs := inbox(t, db, 0)
			if tt.wantResume != (len(evs) == 1) || len(evs) > 1 {
				t.Fatalf("inbox after the click: %q", ids(evs))
			}
			if tt.wantResume {
				var m engine.Message
				_ = json.Unmarshal(evs[0].Payload, &m)
				if evs[0].EventID != engine.ApprovalEventID(ap.ID) || m.Resume == nil || m.Resume.ApprovalID != ap.ID || m.User.ID != "U1" || m.Thread != askThread {
					t.Errorf("resume event %s %+v", evs[0].EventID, m)
				}
			}
		})
	}
}

// TestResumeReplies: a resumed turn keeps its asker (PrepareMessage does
// nothing) and its answer is a new post in the thread, not an edit of
// the prompt.
func TestResumeReplies(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	a, _ := mustAdapter(t, f)
	msg := engine.Message{ID: "approval:A1", Thread: askThread, User: engine.ChatUser{ID: "U1", Name: "Ada L."}, Resume: &engine.Resume{ApprovalID: "A1"}}
	ev := &engine.InboxEvent{Platform: engine.PlatformMattermost, EventID: msg.ID, Attempts: 1}
	before := msg
	if err := a.PrepareMessage(ctx, ev, &msg); err != nil || msg.User != before.User {
		t.Errorf("PrepareMessage: %v, user %+v; want it left alone", err, msg.User)
	}
	r, err := a.Replier(ctx, ev, msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(ctx, engine.Answer{Outcome: engine.OutcomeAnswered, Text: "Deployed web to prod."}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.posts) != 1 || len(f.patches) != 0 {
		t.Fatalf("posts %v, patches %v; want one new post", f.posts, f.patches)
	}
	p := f.posts[0]
	props, _ := p["props"].(map[string]any)
	if p["root_id"] != "P1" || p["channel_id"] != "C1" || p["message"] != "Deployed web to prod." || props[propEvent] != "approval:A1" {
		t.Errorf("post %v, want the continuation in thread P1", p)
	}
}

func TestConfigActionsURL(t *testing.T) {
	tests := []struct {
		url     string
		wantErr bool
	}{
		{"", false},
		{"https://bot.example.com/mattermost/actions", false},
		{"http://10.0.0.5:8080/mattermost/actions", false},
		{"bot.example.com/mattermost/actions", true},
		{"ftp://bot.example.com/x", true},
	}
	for _, tt := range tests {
		c := Config{URL: "https://chat.example.com", Token: "t", ActionsURL: tt.url}
		c.setDefaults()
		err := c.Validate()
		if (err != nil) != tt.wantErr || (err != nil && !strings.Contains(err.Error(), "mattermost.actions_url")) {
			t.Errorf("actions URL %q: %v", tt.url, err)
		}
	}
}

func TestActionToken(t *testing.T) {
	s1, s2 := actionSecret("token-1"), actionSecret("token-2")
	tok := actionToken(s1, "A1", "approve")
	tests := []struct {
		name     string
		secret   []byte
		id, dec  string
		token    string
		expected bool
	}{
		{"valid", s1, "A1", "approve", tok, true},
		{"other decision", s1, "A1", "reject", tok, false},
		{"other approval", s1, "A2", "approve", tok, false},
		{"other bot token", s2, "A1", "approve", tok, false},
		{"not hex", s1, "A1", "approve", "zz", false},
		{"empty", s1, "A1", "approve", "", false},
	}
	for _, tt := range tests {
		if got := validToken(tt.secret, tt.id, tt.dec, tt.token); got != tt.expected {
			t.Errorf("%s: %v", tt.name, got)
		}
	}
}
