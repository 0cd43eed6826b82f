package mattermost

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
	"github.com/convosphere/convosphere/store/sqlite"
)

// actionCall is one request Mattermost made to the actions endpoint.
type actionCall struct {
	code int
	resp model.PostActionIntegrationResponse
}

// actionRecorder serves the adapter's Handler and records what it
// answered Mattermost.
type actionRecorder struct {
	h     http.Handler
	mu    sync.Mutex
	calls []actionCall
}

func (rec *actionRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rr := httptest.NewRecorder()
	rec.h.ServeHTTP(rr, r)
	c := actionCall{code: rr.Code}
	_ = json.Unmarshal(rr.Body.Bytes(), &c.resp)
	rec.mu.Lock()
	rec.calls = append(rec.calls, c)
	rec.mu.Unlock()
	for k, v := range rr.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rr.Code)
	_, _ = w.Write(rr.Body.Bytes())
}

func (rec *actionRecorder) last(t *testing.T, n int) actionCall {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.calls) != n {
		t.Fatalf("the actions endpoint was called %d times, want %d", len(rec.calls), n)
	}
	return rec.calls[n-1]
}

// TestRealServerApproval runs an "ask" tool approval through a real
// Mattermost 6.7.2: the bot's answer waits with Approve and Reject
// buttons whose integration URL is a listener on 127.0.0.1 serving the
// adapter's Handler; clicks go through the server's
// POST /api/v4/posts/{post_id}/actions/{action_id}, so Mattermost itself
// calls the handler. Someone else's click is refused (ephemerally) and
// decides nothing; a button with a bad token gets 401; the asker's
// approval updates the post, queues the resumption, and the resumed turn
// answers in a new post in the thread.
func TestRealServerApproval(t *testing.T) {
	base := mattermostURL(t)
	ctx := context.Background()
	suffix := strings.ToLower(model.NewId()[:8])

	admin := model.NewAPIv4Client(base)
	adminUser := &model.User{Email: "admin@convosphere.test", Username: "admin", Password: "Admin-passw0rd!"}
	if _, _, err := admin.CreateUser(ctx, adminUser); err != nil && !strings.Contains(err.Error(), "exists") {
		t.Logf("create admin: %v (signing in)", err)
	}
	check(admin.Login(ctx, adminUser.Email, adminUser.Password)).must(t)
	team := check(admin.CreateTeam(ctx, &model.Team{Name: "appr-" + suffix, DisplayName: "Approvals " + suffix, Type: model.TeamOpen})).must(t)
	alice := check(admin.CreateUser(ctx, &model.User{Email: "alice-" + suffix + "@convosphere.test", Username: "alice-" + suffix, Password: "Alice-passw0rd!"})).must(t)
	bob := check(admin.CreateUser(ctx, &model.User{Email: "bob-" + suffix + "@convosphere.test", Username: "bob-" + suffix, Password: "Bob-passw0rd!"})).must(t)
	bot := check(admin.CreateBot(ctx, &model.Bot{Username: "helper-" + suffix, DisplayName: "Helper"})).must(t)
	for _, id := range []string{alice.Id, bob.Id, bot.UserId} {
		check(admin.AddTeamMember(ctx, team.Id, id)).must(t)
	}
	token := check(admin.CreateUserAccessToken(ctx, bot.UserId, "convosphere test")).must(t)
	channel := check(admin.CreateChannel(ctx, &model.Channel{TeamId: team.Id, Name: "ops-" + suffix, DisplayName: "Ops", Type: model.ChannelTypeOpen})).must(t)
	for _, id := range []string{alice.Id, bob.Id, bot.UserId} {
		check(admin.AddChannelMember(ctx, channel.Id, id)).must(t)
	}

	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "convosphere.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.CreateAssistant(ctx, &engine.Assistant{Name: "ops", IsDefault: true, Tools: []string{"deploy"},
		ToolPolicy: map[string]engine.ToolMode{"deploy": engine.ToolAsk}}); err != nil {
		t.Fatal(err)
	}

	// The actions endpoint, on loopback (scripts/mattermost.sh lets the
	// server call 127.0.0.0/8: AllowedUntrustedInternalConnections).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &actionRecorder{}
	mux := http.NewServeMux()
	mux.Handle("POST /mattermost/actions", rec)
	actions := &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux}}
	actions.Start()
	t.Cleanup(actions.Close)
	a, err := New(Config{URL: base, Token: token.Token, ActionsURL: actions.URL + "/mattermost/actions", Locker: &engine.LocalLocker{}}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec.h = a.Handler()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })

	llm := enginetest.NewModel(
		enginetest.Reply{Chunks: []string{"Let me deploy that."},
			ToolCalls: []engine.ToolCall{{ID: "c1", Name: "deploy", Arguments: `{"service":"web","env":"prod"}`}}},
		enginetest.Reply{Chunks: []string{"Deployed web to prod."}})
	tools := &enginetest.ToolSet{Specs: []engine.ToolSpec{{Name: "deploy", Description: "Deploy a service.",
		InputSchema: json.RawMessage(`{"type":"object"}`)}}, Results: map[string]engine.ToolResult{"deploy": {Content: "deployed"}}}
	eng, err := engine.New(engine.Config{}, engine.Deps{Assistants: db, Conversations: db, Traces: db, Model: llm,
		Tools: tools, ToolAudit: db, Approvals: db})
	if err != nil {
		t.Fatal(err)
	}
	w, err := engine.NewWorker(engine.WorkerConfig{}, engine.WorkerDeps{Inbox: db, Handler: eng,
		Repliers: map[engine.Platform]engine.ReplierFactory{engine.PlatformMattermost: a}})
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, a)

	aliceC := model.NewAPIv4Client(base)
	check(aliceC.Login(ctx, alice.Email, "Alice-passw0rd!")).must(t)
	bobC := model.NewAPIv4Client(base)
	check(bobC.Login(ctx, bob.Email, "Bob-passw0rd!")).must(t)

	// Alice asks; the turn waits for approval of the deploy.
	q := check(aliceC.CreatePost(ctx, &model.Post{ChannelId: channel.Id, Message: "@helper-" + suffix + " deploy web to prod"})).must(t)
	for deadline := time.Now().Add(20 * time.Second); ; {
		done, err := w.ProcessOne(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the question never reached the inbox")
		}
		time.Sleep(50 * time.Millisecond)
	}
	aps, err := db.ListApprovals(ctx, engine.ApprovalFilter{Status: engine.ApprovalPending})
	if err != nil || len(aps) != 1 {
		t.Fatalf("pending approvals %v, %v; want one", aps, err)
	}
	ap := aps[0]
	prompts := bots(t, aliceC, q.Id, bot.UserId)
	if len(prompts) != 1 {
		t.Fatalf("%d bot posts in the thread, want the prompt", len(prompts))
	}
	prompt := prompts[0]
	atts := prompt.Attachments()
	if prompt.Message != "Let me deploy that." || len(atts) != 1 || len(atts[0].Actions) != 2 ||
		!strings.Contains(atts[0].Text, `"service": "web"`) || !strings.Contains(atts[0].Text, "Waiting for approval to run deploy") {
		t.Fatalf("prompt %q %+v, want the text, the call's arguments, the notice and two buttons", prompt.Message, atts)
	}
	for _, b := range atts[0].Actions {
		if b.Integration != nil {
			t.Errorf("the server showed a client the integration (token) of button %s", b.Id)
		}
	}
	if len(tools.Calls()) != 0 {
		t.Fatal("the tool ran before anyone approved it")
	}

	// Bob is not the asker nor an admin: refused, only to him (an
	// ephemeral post on his websocket).
	bobEphemeral := ephemerals(t, base, bobC.AuthToken)
	if _, err := bobC.DoPostAction(ctx, prompt.Id, actionApprove); err != nil {
		t.Fatalf("bob's click: %v", err)
	}
	select {
	case text := <-bobEphemeral:
		if !strings.Contains(text, "or an admin can approve") {
			t.Errorf("bob was told %q", text)
		}
	case <-time.After(10 * time.Second):
		t.Error("bob got no ephemeral refusal")
	}
	if c := rec.last(t, 1); c.code != http.StatusOK || !strings.Contains(c.resp.EphemeralText, "or an admin can approve") || c.resp.Update != nil {
		t.Errorf("bob's click answered %d %+v, want an ephemeral refusal", c.code, c.resp)
	}
	if got, _ := db.ApprovalByID(ctx, ap.ID); got.Status != engine.ApprovalPending {
		t.Errorf("after bob's click the approval is %s", got.Status)
	}
	if p := check(aliceC.GetPost(ctx, prompt.Id, "")).must(t); len(p.Attachments()) != 1 || len(p.Attachments()[0].Actions) != 2 {
		t.Errorf("after bob's click the prompt lost its buttons: %+v", p.Attachments())
	}

	// A button whose token is wrong: the handler answers 401, the server
	// reports the action failed, nothing is decided.
	forged := &model.Post{ChannelId: channel.Id, RootId: q.Id, Message: "forged"}
	forged.AddProp("attachments", []*model.SlackAttachment{{Text: "forged", Actions: []*model.PostAction{{Id: "approve", Type: model.PostActionTypeButton, Name: "Approve",
		Integration: &model.PostActionIntegration{URL: actions.URL + "/mattermost/actions",
			Context: map[string]any{"approval_id": ap.ID, "decision": "approve", "token": actionToken(actionSecret("another bot token"), ap.ID, "approve")}}}}}})
	botC := model.NewAPIv4Client(base)
	botC.SetToken(token.Token)
	forged = check(botC.CreatePost(ctx, forged)).must(t)
	if _, err := aliceC.DoPostAction(ctx, forged.Id, "approve"); err == nil {
		t.Error("a click on a button with a bad token succeeded")
	}
	if c := rec.last(t, 2); c.code != http.StatusUnauthorized {
		t.Errorf("bad token answered %d, want 401", c.code)
	}
	resp, err := http.Post(actions.URL+"/mattermost/actions", "application/json", bytes.NewReader([]byte(
		`{"user_id":"`+alice.Id+`","user_name":"x","post_id":"`+prompt.Id+`","context":{"approval_id":"`+ap.ID+`","decision":"approve","token":"00"}}`)))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a forged request answered %d, want 401", resp.StatusCode)
	}
	if got, _ := db.ApprovalByID(ctx, ap.ID); got.Status != engine.ApprovalPending {
		t.Errorf("after bad tokens the approval is %s", got.Status)
	}

	// Alice approves: decided, the post shows it, the resumption is queued.
	if _, err := aliceC.DoPostAction(ctx, prompt.Id, actionApprove); err != nil {
		t.Fatalf("alice's click: %v", err)
	}
	if c := rec.last(t, 4); c.code != http.StatusOK || c.resp.EphemeralText != "" || c.resp.Update == nil {
		t.Errorf("alice's click answered %d %+v", c.code, c.resp)
	}
	got, err := db.ApprovalByID(ctx, ap.ID)
	if err != nil || got.Status != engine.ApprovalApproved || got.DecidedBy != "mattermost:"+alice.Username {
		t.Fatalf("approval after alice's click: %+v, %v", got, err)
	}
	updated := check(aliceC.GetPost(ctx, prompt.Id, "")).must(t)
	atts = updated.Attachments()
	if updated.Message != "Let me deploy that." || len(atts) != 1 || len(atts[0].Actions) != 0 ||
		!strings.Contains(atts[0].Text, "✅ Approved by @"+alice.Username) || !strings.Contains(atts[0].Text, `"env": "prod"`) {
		t.Errorf("updated prompt %q %+v, want the buttons replaced by who approved", updated.Message, atts)
	}
	if updated.GetProp(propEvent) != q.Id {
		t.Errorf("the update lost the post's props: %v", updated.GetProps())
	}

	ev, err := db.Claim(ctx, "test", time.Minute)
	if err != nil {
		t.Fatalf("no resume event in the inbox: %v", err)
	}
	var msg engine.Message
	if err := json.Unmarshal(ev.Payload, &msg); err != nil {
		t.Fatal(err)
	}
	if ev.EventID != engine.ApprovalEventID(ap.ID) || ev.Platform != engine.PlatformMattermost || msg.Resume == nil ||
		msg.Resume.ApprovalID != ap.ID || msg.User.ID != alice.Id || msg.Thread.ID != q.Id || msg.Text != "" {
		t.Fatalf("resume event %s %+v", ev.EventID, msg)
	}

	// The resumed turn, as the worker runs it: the tool runs, and the
	// answer is a new post in the thread.
	user := msg.User
	if err := a.PrepareMessage(ctx, ev, &msg); err != nil || msg.User != user {
		t.Errorf("PrepareMessage changed a resumed message: %v, %+v", err, msg.User)
	}
	r, err := a.Replier(ctx, ev, msg)
	if err != nil {
		t.Fatal(err)
	}
	ans, err := eng.Handle(ctx, msg, r)
	if err != nil || ans.Outcome != engine.OutcomeAnswered {
		t.Fatalf("resumed turn: %+v, %v", ans, err)
	}
	if err := db.Complete(ctx, ev.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if calls := tools.Calls(); len(calls) != 1 || calls[0].User.ID != alice.Id {
		t.Errorf("tool calls %+v, want one, for alice", calls)
	}
	var texts []string
	for _, p := range bots(t, aliceC, q.Id, bot.UserId) {
		texts = append(texts, p.Message)
	}
	if len(texts) != 3 || !strings.Contains(strings.Join(texts, "|"), "Deployed web to prod.") ||
		!strings.Contains(strings.Join(texts, "|"), "Let me deploy that.") {
		t.Errorf("bot posts in the thread %q, want the prompt, the forged one and the continuation", texts)
	}

	// A second click on the decided prompt (it has no buttons now, so as
	// a stale client would send it) changes nothing.
	if _, err := aliceC.DoPostAction(ctx, prompt.Id, actionReject); err == nil {
		t.Error("a click on a removed button succeeded")
	}
	if got, _ := db.ApprovalByID(ctx, ap.ID); got.Status != engine.ApprovalApproved {
		t.Errorf("after a stale click the approval is %s", got.Status)
	}
}

// ephemerals returns the texts of the ephemeral posts a user's websocket
// receives from now on.
func ephemerals(t *testing.T, base, authToken string) <-chan string {
	t.Helper()
	ws, err := model.NewWebSocketClient4("ws://"+strings.TrimPrefix(base, "http://"), authToken)
	if err != nil {
		t.Fatal(err)
	}
	ws.Listen()
	t.Cleanup(ws.Close)
	out := make(chan string, 10)
	go func() {
		for {
			select {
			case ev, ok := <-ws.EventChannel:
				if !ok {
					return
				}
				if ev.EventType() != model.WebsocketEventEphemeralMessage {
					continue
				}
				raw, _ := ev.GetData()["post"].(string)
				var p model.Post
				if json.Unmarshal([]byte(raw), &p) == nil {
					select {
					case out <- p.Message:
					default:
					}
				}
			case _, ok := <-ws.ResponseChannel:
				if !ok {
					return
				}
			case _, ok := <-ws.PingTimeoutChannel:
				if !ok {
					return
				}
			}
		}
	}()
	return out
}
