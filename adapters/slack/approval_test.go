package slack

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
)

// riskyArguments would ping the channel, link and close the code block if
// they were posted as they are.
const riskyArguments = `{"service":"api","note":"<!channel> <@U999> @here & ` + "```" + ` done"}`

// MustApproval stores a pending approval asked by user in C1's thread
// 1700000000.000001.
func MustApproval(tb testing.TB, db Store, user engine.ChatUser) *engine.ToolApproval {
	tb.Helper()
	now := time.Now()
	ap := &engine.ToolApproval{
		AssistantID: "asst-1", AssistantName: "ops", ConversationID: "conv-1", EventID: "Ev1",
		Thread: engine.Thread{Channel: engine.Channel{Platform: engine.PlatformSlack, ID: "C1"}, ID: "1700000000.000001"},
		User:   user, Calls: []engine.ToolCall{{ID: "call-1", Name: "deploy", Arguments: riskyArguments}},
		State: []byte(`{}`), Status: engine.ApprovalPending, CreatedAt: now, ExpiresAt: now.Add(time.Hour),
	}
	if err := db.CreateApproval(context.Background(), ap); err != nil {
		tb.Fatal(err)
	}
	return ap
}

// MustConsoleUser creates a console user with role, linked to Slack user
// chatUserID.
func MustConsoleUser(tb testing.TB, db interface {
	CreateUser(context.Context, *engine.User) error
	LinkIdentity(context.Context, *engine.Identity) error
}, name string, role engine.Role, chatUserID string) *engine.User {
	tb.Helper()
	u := &engine.User{Name: name, Role: role}
	if err := db.CreateUser(context.Background(), u); err != nil {
		tb.Fatal(err)
	}
	if err := db.LinkIdentity(context.Background(), &engine.Identity{Platform: engine.PlatformSlack, ChatUserID: chatUserID, UserID: u.ID}); err != nil {
		tb.Fatal(err)
	}
	return u
}

// blockInfo is what a message's blocks show: every text, and the buttons.
type blockInfo struct {
	texts   []string
	buttons []*slack.ButtonBlockElement
}

func (b blockInfo) text() string { return strings.Join(b.texts, "\n") }

func (b blockInfo) button(actionID string) *slack.ButtonBlockElement {
	for _, btn := range b.buttons {
		if btn.ActionID == actionID {
			return btn
		}
	}
	return nil
}

// parseBlocks decodes a message's blocks as Slack would store them.
func parseBlocks(t *testing.T, raw string) blockInfo {
	t.Helper()
	var blocks slack.Blocks
	if err := json.Unmarshal([]byte(raw), &blocks); err != nil {
		t.Fatalf("blocks %q: %v", raw, err)
	}
	var info blockInfo
	for _, b := range blocks.BlockSet {
		switch b := b.(type) {
		case *slack.SectionBlock:
			if b.Text != nil {
				info.texts = append(info.texts, b.Text.Text)
			}
		case *slack.ContextBlock:
			for _, el := range b.ContextElements.Elements {
				if tx, ok := el.(*slack.TextBlockObject); ok {
					info.texts = append(info.texts, tx.Text)
				}
			}
		case *slack.ActionBlock:
			for _, el := range b.Elements.ElementSet {
				if btn, ok := el.(*slack.ButtonBlockElement); ok {
					info.buttons = append(info.buttons, btn)
				}
			}
		}
	}
	return info
}

// approvalPayload is a block_actions payload for a click on an approval
// button of msg, shaped as Slack documents it
// (https://api.slack.com/reference/interaction-payloads/block-actions).
func approvalPayload(t *testing.T, msg fakeMessage, approvalID, actionID, userID, userName string) string {
	t.Helper()
	var blocks any
	if err := json.Unmarshal([]byte(msg.Blocks), &blocks); err != nil {
		t.Fatalf("message blocks %q: %v", msg.Blocks, err)
	}
	b, _ := json.Marshal(map[string]any{
		"type": "block_actions", "user": map[string]any{"id": userID, "username": userName, "name": userName, "team_id": "T1"},
		"api_app_id": "A1", "token": "XXYYZZ", "container": map[string]any{"type": "message", "message_ts": msg.TS, "channel_id": msg.Channel, "is_ephemeral": false},
		"trigger_id": "123.456.abc", "team": map[string]any{"id": "T1", "domain": "test"},
		"channel":      map[string]any{"id": msg.Channel, "name": "general"},
		"message":      map[string]any{"type": "message", "user": "UBOT", "bot_id": "BBOT", "ts": msg.TS, "thread_ts": msg.Thread, "text": msg.Text, "blocks": blocks},
		"response_url": "https://hooks.slack.com/actions/T1/1/abc",
		"actions": []map[string]any{{"action_id": actionID, "block_id": approvalBlockID, "value": approvalID, "type": "button", "action_ts": "1700000005.000001",
			"text": map[string]any{"type": "plain_text", "text": "Approve"}}},
	})
	return string(b)
}

// click posts a signed interaction to the adapter's handler and waits for
// the Slack calls it makes in the background.
func click(t *testing.T, a *Adapter, payload string) {
	t.Helper()
	body := []byte("payload=" + url.QueryEscape(payload))
	if w := serve(a.Handler(), request("/slack/interactions", "application/x-www-form-urlencoded", body, time.Now().Unix(), testSecret)); w.Code != 200 {
		t.Fatalf("interaction status %d", w.Code)
	}
	a.wg.Wait()
}

// promptMessageOf posts the approval prompt of ap as the replier shows it
// and returns the message.
func promptMessageOf(t *testing.T, f *fakeSlack, a *Adapter, db Store, ap *engine.ToolApproval) fakeMessage {
	t.Helper()
	ev, m := MustEvent(t, a, db, "Ev-"+ap.ID, mention("<@UBOT> deploy", "1700000000.000001", ""))
	err := MustReplier(t, a, ev, m).Finish(context.Background(), engine.Answer{
		Outcome: engine.OutcomeAwaiting, Approval: ap, TraceID: "trace-1",
		Notice: "Waiting for approval to run deploy: " + ap.User.Name + " or an admin can approve or reject it.",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Complete(context.Background(), ev.ID, "test"); err != nil {
		t.Fatal(err)
	}
	msgs := f.posted()
	return msgs[len(msgs)-1]
}

// TestApprovalPrompt: an answer waiting for an approval shows its text so
// far, the calls with their arguments escaped, the notice and the Approve
// and Reject buttons carrying the approval's id, without feedback
// buttons; a retried Finish edits the prompt instead of posting it again.
func TestApprovalPrompt(t *testing.T) {
	ap := &engine.ToolApproval{
		ID: "ap-1", AssistantName: "ops <!here>", User: engine.ChatUser{ID: "U1", Name: "Ann"},
		Calls: []engine.ToolCall{
			{ID: "c1", Name: "deploy", Arguments: riskyArguments},
			{ID: "c2", Name: "restart", Arguments: `{}`},
			{ID: "c3", Name: "notify", Arguments: "<!everyone> please ``` look"}, // not JSON: shown as it is
		},
	}
	const notice = "Waiting for approval to run deploy, restart, notify: Ann or an admin can approve or reject it."
	tests := []struct {
		name     string
		text     string
		stream   bool
		wantText string // the first section, "" when the prompt stands alone
	}{
		{name: "prompt alone", text: ""},
		{name: "after text", text: "I will deploy **api** now.", wantText: "I will deploy *api* now."},
		{name: "after a stream", text: "I will deploy api now, then restart it.", stream: true, wantText: "I will deploy api now, then restart it."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSlack(t)
			if !tt.stream {
				f.fail("chat.startStream", 200, "unknown_method", 0)
			}
			db := MustStore(t)
			a := MustAdapter(t, f, db)
			ev, m := MustEvent(t, a, db, "Ev1", mention("<@UBOT> deploy", "1700000000.000001", ""))
			r := MustReplier(t, a, ev, m)
			if tt.stream {
				streamAnswer(t, r, tt.text, 25*time.Millisecond)
				if f.count("chat.startStream") != 1 {
					t.Fatal("the answer did not stream")
				}
			}
			ans := engine.Answer{Text: tt.text, Outcome: engine.OutcomeAwaiting, Notice: notice, Approval: ap, TraceID: "trace-1"}
			if err := r.Finish(context.Background(), ans); err != nil {
				t.Fatal(err)
			}
			msgs := f.posted()
			if len(msgs) != 1 {
				t.Fatalf("%d messages posted, want 1", len(msgs))
			}
			got := msgs[0]
			if got.Channel != "C1" || got.Thread != "1700000000.000001" {
				t.Errorf("posted in %s/%s, want the question's thread", got.Channel, got.Thread)
			}
			info := parseBlocks(t, got.Blocks)
			if tt.wantText != "" && (len(info.texts) == 0 || info.texts[0] != tt.wantText) {
				t.Errorf("first section %q, want the text %q", info.texts, tt.wantText)
			}
			all := info.text() + "\n" + got.Text
			for _, want := range []string{
				"*ops &lt;!here&gt;* wants to run 3 tool calls: `deploy`, `restart`, `notify`.",
				"*`deploy`*\n```\n{\n  \"note\": ",
				" @\u200bhere ", "`\u200b`` done",
				"\n  \"service\": \"api\"\n}\n```",
				"*`restart`* _(no arguments)_",
				"*`notify`*\n```\n&lt;!everyone&gt; please `\u200b`` look\n```",
				notice,
			} {
				if !strings.Contains(all, want) {
					t.Errorf("prompt lacks %q:\n%s", want, all)
				}
			}
			for _, bad := range []string{"<!channel>", "<!here>", "<!everyone>", "<@U999>", "@here", "``` done", "``` look"} {
				if strings.Contains(all, bad) {
					t.Errorf("prompt contains %q, which pings or breaks out of the code block:\n%s", bad, all)
				}
			}
			approve, reject := info.button(actionApprove), info.button(actionReject)
			if approve == nil || reject == nil || len(info.buttons) != 2 {
				t.Fatalf("buttons %+v, want Approve and Reject only (no feedback)", info.buttons)
			}
			if approve.Value != "ap-1" || reject.Value != "ap-1" || approve.Style != slack.StylePrimary || reject.Style != slack.StyleDanger ||
				approve.Text.Text != "Approve" || reject.Text.Text != "Reject" {
				t.Errorf("buttons approve %+v reject %+v", approve, reject)
			}
			if tt.text == "" && !strings.Contains(got.Text, "Waiting for approval") {
				t.Errorf("notification text %q, want the notice", got.Text)
			}
			if tt.stream && !got.Stopped {
				t.Error("the stream was not stopped")
			}

			// The worker retries the event: the prompt is edited, not posted again.
			ev.Attempts = 2
			posts := f.count("chat.postMessage") + f.count("chat.startStream")
			if err := MustReplier(t, a, ev, m).Finish(context.Background(), ans); err != nil {
				t.Fatal(err)
			}
			if n := f.count("chat.postMessage") + f.count("chat.startStream"); n != posts || len(f.posted()) != 1 {
				t.Errorf("the retry posted again (%d messages)", len(f.posted()))
			}
			if parseBlocks(t, f.posted()[0].Blocks).button(actionApprove) == nil {
				t.Error("the retry lost the buttons")
			}
		})
	}
}

// TestApprovalDeciders: who may decide by clicking. The asker and a Slack
// user linked to a console admin decide (the prompt's buttons become who
// decided, and the turn's resumption is queued); anyone else, a click on
// a request that expired or was decided in the console, and a click the
// store cannot save, are told why by an ephemeral message, and nothing is
// decided (a request that is no longer pending loses its buttons).
func TestApprovalDeciders(t *testing.T) {
	tests := []struct {
		name      string
		user      string
		action    string
		down      bool // the store cannot save decisions
		expired   bool // the request expired before the click
		console   bool // the request was approved in the console before the click
		want      engine.ApprovalStatus
		wantLine  string // the line replacing the buttons; "": the prompt stays
		ephemeral string // what the clicker alone is told; "": nothing
	}{
		{name: "asker approves", user: "U1", action: actionApprove, want: engine.ApprovalApproved, wantLine: "✅ Approved by <@U1>"},
		{name: "asker rejects", user: "U1", action: actionReject, want: engine.ApprovalRejected, wantLine: "❌ Rejected by <@U1>"},
		{name: "linked admin approves", user: "U3", action: actionApprove, want: engine.ApprovalApproved, wantLine: "✅ Approved by <@U3>"},
		{name: "stranger", user: "U2", action: actionApprove, want: engine.ApprovalPending, ephemeral: "Only Ann or an admin can approve or reject this request to run deploy."},
		{name: "linked editor", user: "U4", action: actionReject, want: engine.ApprovalPending, ephemeral: "Only Ann or an admin"},
		{name: "linked disabled admin", user: "U5", action: actionApprove, want: engine.ApprovalPending, ephemeral: "Only Ann or an admin"},
		{name: "store down", user: "U1", action: actionApprove, down: true, want: engine.ApprovalPending, ephemeral: "could not be saved right now; please click the button again"},
		{name: "expired", user: "U1", action: actionApprove, expired: true, want: engine.ApprovalExpired,
			wantLine: "⌛ This request expired without a decision.", ephemeral: "This request to run deploy expired on"},
		{name: "decided in the console", user: "U1", action: actionReject, console: true, want: engine.ApprovalApproved,
			wantLine: "✅ Approved by console:root", ephemeral: "This request to run deploy was already approved by console:root."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFakeSlack(t)
			f.fail("chat.startStream", 200, "unknown_method", 0)
			db := MustStore(t)
			MustConsoleUser(t, db, "root", engine.RoleAdmin, "U3")
			MustConsoleUser(t, db, "ed", engine.RoleEditor, "U4")
			off := MustConsoleUser(t, db, "old", engine.RoleAdmin, "U5")
			off.Disabled = true
			if err := db.UpdateUser(ctx, off); err != nil {
				t.Fatal(err)
			}
			var store Store = db
			if tt.down {
				store = failingDecisions{db}
			}
			a := MustAdapter(t, f, store)
			ap := MustApproval(t, db, engine.ChatUser{ID: "U1", Name: "Ann"})
			prompt := promptMessageOf(t, f, a, db, ap)
			if tt.expired {
				a.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
			}
			if tt.console {
				if _, err := db.DecideApproval(ctx, ap.ID, engine.ApprovalApproved, "console:root", time.Now(), nil); err != nil {
					t.Fatal(err)
				}
			}

			click(t, a, approvalPayload(t, prompt, ap.ID, tt.action, tt.user, "user-"+strings.ToLower(tt.user)))

			got, err := db.ApprovalByID(ctx, ap.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.want {
				t.Errorf("status %s, want %s", got.Status, tt.want)
			}
			decided := tt.wantLine != "" && tt.ephemeral == ""
			if decided && got.DecidedBy != "slack:user-"+strings.ToLower(tt.user) {
				t.Errorf("decided by %q", got.DecidedBy)
			}
			evs := inboxEvents(t, db)
			if !decided && len(evs) != 0 {
				t.Errorf("a refused click queued %+v", evs)
			}
			if decided {
				if len(evs) != 1 || evs[0].EventID != engine.ApprovalEventID(ap.ID) || evs[0].ThreadKey != ap.Thread.Key() {
					t.Fatalf("inbox %+v, want the resumption", evs)
				}
				var m engine.Message
				if err := json.Unmarshal(evs[0].Payload, &m); err != nil || m.Resume == nil || m.Resume.ApprovalID != ap.ID || m.User.ID != "U1" || m.Thread != ap.Thread {
					t.Errorf("resume message %+v, %v", m, err)
				}
			}

			ephemerals := f.callsOf("chat.postEphemeral")
			switch {
			case tt.ephemeral == "" && len(ephemerals) != 0:
				t.Errorf("ephemeral messages %+v", ephemerals)
			case tt.ephemeral != "" && (len(ephemerals) != 1 || ephemerals[0].Form["user"] != tt.user || ephemerals[0].Form["channel"] != "C1" ||
				ephemerals[0].Form["thread_ts"] != "1700000000.000001" || !strings.Contains(ephemerals[0].Form["text"], tt.ephemeral)):
				t.Errorf("ephemeral messages %+v, want one to %s saying %q", ephemerals, tt.user, tt.ephemeral)
			}

			updates := f.callsOf("chat.update")
			if tt.wantLine == "" {
				if len(updates) != 0 {
					t.Errorf("prompt edited: %+v", updates)
				}
				return
			}
			if len(updates) != 1 || updates[0].Form["ts"] != prompt.TS || updates[0].Form["channel"] != "C1" || updates[0].Form["text"] != prompt.Text {
				t.Fatalf("updates %+v, want the prompt edited", updates)
			}
			after := parseBlocks(t, updates[0].Form["blocks"])
			if len(after.buttons) != 0 {
				t.Errorf("buttons left: %+v", after.buttons)
			}
			before := parseBlocks(t, prompt.Blocks)
			if want := append(before.texts, tt.wantLine); strings.Join(after.texts, "\n") != strings.Join(want, "\n") {
				t.Errorf("prompt after the click:\n%s\nwant:\n%s", after.text(), strings.Join(want, "\n"))
			}
		})
	}
}

// failingDecisions cannot save decisions, as a database that is down.
type failingDecisions struct{ Store }

func (failingDecisions) DecideApproval(context.Context, string, engine.ApprovalStatus, string, time.Time, *engine.InboxEvent) (*engine.ToolApproval, error) {
	return nil, engine.Errorf(engine.EUNAVAILABLE, "database is down")
}

// TestApprovalEndToEnd runs the engine's worker over the adapter: the
// model asks for a tool under an "ask" policy, the prompt appears in the
// thread, a stranger's click is refused, the asker decides, a second
// click is told it was already decided, and the turn resumes as a new
// message in the thread (the tool run when approved; the model told of
// the rejection otherwise).
func TestApprovalEndToEnd(t *testing.T) {
	for _, approve := range []bool{true, false} {
		name := map[bool]string{true: "approved", false: "rejected"}[approve]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := newFakeSlack(t)
			f.fail("chat.startStream", 200, "unknown_method", 0)
			db := MustStore(t)
			if err := db.CreateAssistant(ctx, &engine.Assistant{Name: "ops", IsDefault: true, Tools: []string{"deploy"},
				ToolPolicy: map[string]engine.ToolMode{"deploy": engine.ToolAsk}}); err != nil {
				t.Fatal(err)
			}
			a := MustAdapter(t, f, db)
			model := enginetest.NewModel(
				enginetest.Reply{Chunks: []string{"Let me deploy that."}, ToolCalls: []engine.ToolCall{{ID: "call-1", Name: "deploy", Arguments: riskyArguments}}},
				enginetest.Reply{Chunks: []string{"Done: api is deployed."}},
			)
			tools := &enginetest.ToolSet{
				Specs:   []engine.ToolSpec{{Name: "deploy", Description: "Deploys a service.", InputSchema: json.RawMessage(`{"type":"object"}`)}},
				Results: map[string]engine.ToolResult{"deploy": {Content: "deployed api v2"}},
			}
			eng, err := engine.New(engine.Config{}, engine.Deps{Assistants: db, Conversations: db, Traces: db, Model: model, Tools: tools, ToolAudit: db, Approvals: db})
			if err != nil {
				t.Fatal(err)
			}
			w, err := engine.NewWorker(engine.WorkerConfig{}, engine.WorkerDeps{Inbox: db, Handler: eng, Repliers: map[engine.Platform]engine.ReplierFactory{engine.PlatformSlack: a}})
			if err != nil {
				t.Fatal(err)
			}
			body := eventBody("EvAsk", mention("<@UBOT> deploy api", "1700000000.000001", ""))
			if c := serve(a.Handler(), request("/slack/events", "application/json", body, time.Now().Unix(), testSecret)).Code; c != 200 {
				t.Fatalf("status %d", c)
			}
			if worked, err := w.ProcessOne(ctx); !worked || err != nil {
				t.Fatalf("ProcessOne = %v, %v", worked, err)
			}
			if n := len(tools.Calls()); n != 0 {
				t.Fatalf("the tool ran %d times before anyone approved", n)
			}
			msgs := f.posted()
			if len(msgs) != 1 {
				t.Fatalf("posted %+v, want the prompt", msgs)
			}
			prompt := msgs[0]
			info := parseBlocks(t, prompt.Blocks)
			if len(info.texts) == 0 || info.texts[0] != "Let me deploy that." || !strings.Contains(info.text(), "*ops* wants to run `deploy`") ||
				!strings.Contains(info.text(), "user-u1 or an admin can approve or reject it") {
				t.Errorf("prompt:\n%s", info.text())
			}
			approveBtn := info.button(actionApprove)
			if approveBtn == nil {
				t.Fatalf("no Approve button: %s", prompt.Blocks)
			}
			aps, err := db.ListApprovals(ctx, engine.ApprovalFilter{})
			if err != nil || len(aps) != 1 || aps[0].Status != engine.ApprovalPending || approveBtn.Value != aps[0].ID {
				t.Fatalf("approvals %+v, %v; want one pending, its id on the button", aps, err)
			}
			apID := aps[0].ID

			action := actionReject
			if approve {
				action = actionApprove
			}
			click(t, a, approvalPayload(t, prompt, apID, action, "U2", "bob"))
			if eph := f.callsOf("chat.postEphemeral"); len(eph) != 1 || eph[0].Form["user"] != "U2" || !strings.Contains(eph[0].Form["text"], "Only user-u1 or an admin") {
				t.Errorf("stranger was told %+v", eph)
			}
			if worked, _ := w.ProcessOne(ctx); worked {
				t.Fatal("a stranger's click resumed the turn")
			}

			click(t, a, approvalPayload(t, prompt, apID, action, "U1", "ada"))
			click(t, a, approvalPayload(t, prompt, apID, actionApprove, "U1", "ada"))
			eph := f.callsOf("chat.postEphemeral")
			if len(eph) != 2 || eph[1].Form["user"] != "U1" || !strings.Contains(eph[1].Form["text"], "was already "+map[bool]string{true: "approved", false: "rejected"}[approve]+" by slack:ada") {
				t.Errorf("second click was told %+v", eph)
			}

			reactions := len(f.callsOf("reactions.add")) + len(f.callsOf("reactions.remove"))
			infos := f.count("users.info") + f.count("conversations.replies")
			if worked, err := w.ProcessOne(ctx); !worked || err != nil {
				t.Fatalf("resume: ProcessOne = %v, %v", worked, err)
			}
			if worked, _ := w.ProcessOne(ctx); worked {
				t.Error("the turn resumed twice")
			}
			msgs = f.posted()
			if len(msgs) != 2 {
				t.Fatalf("posted %+v, want the prompt and the continuation", msgs)
			}
			cont := msgs[1]
			if cont.Channel != "C1" || cont.Thread != "1700000000.000001" || cont.Text != "Done: api is deployed." {
				t.Errorf("continuation %+v, want a new message in the thread", cont)
			}
			if !strings.Contains(cont.Metadata, engine.ApprovalEventID(apID)) {
				t.Errorf("continuation metadata %q, want the resume event's id", cont.Metadata)
			}
			if n := len(f.callsOf("reactions.add")) + len(f.callsOf("reactions.remove")); n != reactions {
				t.Errorf("the resumed turn made %d reaction calls", n-reactions)
			}
			for _, c := range append(f.callsOf("reactions.add"), f.callsOf("reactions.remove")...) {
				if c.Form["timestamp"] != "1700000000.000001" {
					t.Errorf("reaction on %q", c.Form["timestamp"])
				}
			}
			if n := f.count("users.info") + f.count("conversations.replies"); n != infos {
				t.Errorf("preparing the resumed turn made %d Slack calls", n-infos)
			}
			if out, err := db.Outbound(ctx, engine.PlatformSlack, engine.ApprovalEventID(apID)); err != nil || len(out) != 1 || out[0].MessageID != cont.TS {
				t.Errorf("outbox of the resumption %+v, %v", out, err)
			}

			calls := tools.Calls()
			reqs := model.Requests()
			if len(reqs) != 2 {
				t.Fatalf("%d model requests, want 2", len(reqs))
			}
			last := reqs[1].Messages[len(reqs[1].Messages)-1]
			if approve {
				if len(calls) != 1 || calls[0].Call.Arguments != riskyArguments || calls[0].User.ID != "U1" {
					t.Errorf("tool calls %+v, want the approved call once, for U1", calls)
				}
				if last.Role != engine.RoleTool || last.Content != "deployed api v2" {
					t.Errorf("model was given %+v, want the tool's result", last)
				}
			} else {
				if len(calls) != 0 {
					t.Errorf("a rejected call ran: %+v", calls)
				}
				if last.Role != engine.RoleTool || !strings.Contains(last.Content, "slack:ada declined this call to deploy") {
					t.Errorf("model was given %+v, want the rejection", last)
				}
			}
		})
	}
}

// TestResumeMessage: a resumed turn's message is not prepared (its user
// and context were, when it was asked), reacts to nothing (its id is no
// ts), and answers as a new message in the thread; a retry after a crash
// edits that message instead of posting another.
func TestResumeMessage(t *testing.T) {
	ctx := context.Background()
	f := newFakeSlack(t)
	db := MustStore(t)
	a := MustAdapter(t, f, forgetfulOutbox{db})
	ap := &engine.ToolApproval{ID: "ap-9",
		Thread: engine.Thread{Channel: engine.Channel{Platform: engine.PlatformSlack, ID: "C1"}, ID: "1700000000.000001"},
		User:   engine.ChatUser{ID: "U1", Name: "Ann"}}
	resume, err := engine.ResumeEvent(ap, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Enqueue(ctx, resume); err != nil {
		t.Fatal(err)
	}
	ev, err := db.Claim(ctx, "test", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var msg engine.Message
	if err := json.Unmarshal(ev.Payload, &msg); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	before := len(f.calls)
	f.mu.Unlock()
	if err := a.PrepareMessage(ctx, ev, &msg); err != nil {
		t.Fatal(err)
	}
	if msg.User != ap.User || msg.ThreadContext != nil {
		t.Errorf("prepared message %+v", msg)
	}
	r := MustReplier(t, a, ev, msg)
	if err := r.Status(ctx, "Writing the answer…"); err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(ctx, engine.Answer{Text: "Deployed.", Outcome: engine.OutcomeAnswered, TraceID: "trace-9"}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	var methods []string
	for _, c := range f.calls[before:] {
		methods = append(methods, c.Method)
	}
	f.mu.Unlock()
	if strings.Join(methods, " ") != "chat.postMessage" {
		t.Errorf("Slack calls %v, want only the answer posted", methods)
	}
	msgs := f.posted()
	if len(msgs) != 1 || msgs[0].Channel != "C1" || msgs[0].Thread != "1700000000.000001" || msgs[0].Text != "Deployed." {
		t.Fatalf("posted %+v, want the answer in the thread", msgs)
	}

	// The worker died before recording the message: the retry finds it by
	// its metadata and edits it.
	ev.Attempts = 2
	if err := MustReplier(t, a, ev, msg).Finish(ctx, engine.Answer{Text: "Deployed, really.", Outcome: engine.OutcomeAnswered}); err != nil {
		t.Fatal(err)
	}
	if msgs := f.posted(); len(msgs) != 1 || msgs[0].Text != "Deployed, really." {
		t.Errorf("after the retry: %+v, want the one message edited", msgs)
	}
}

// TestApprovalOverSocketMode: a click delivered over Socket Mode is
// decided before it is acknowledged, like one over HTTP.
func TestApprovalOverSocketMode(t *testing.T) {
	ctx := context.Background()
	f := newFakeSlack(t)
	f.fail("chat.startStream", 200, "unknown_method", 0)
	sock := newFakeSocket(t)
	f.socketURL = sock.URL()
	db := MustStore(t)
	a := MustAdapter(t, f, db, func(c *Config) { c.Mode = ModeSocket; c.AppToken = "xapp-test"; c.SigningSecret = "" })
	conn := nextConn(t, sock)
	ap := MustApproval(t, db, engine.ChatUser{ID: "U1", Name: "Ann"})
	prompt := promptMessageOf(t, f, a, db, ap)
	var payload map[string]any
	if err := json.Unmarshal([]byte(approvalPayload(t, prompt, ap.ID, actionApprove, "U1", "ada")), &payload); err != nil {
		t.Fatal(err)
	}
	if err := conn.WriteJSON(map[string]any{"envelope_id": "env-click", "type": "interactive", "payload": payload, "accepts_response_payload": false}); err != nil {
		t.Fatal(err)
	}
	waitAck(t, sock, "env-click")
	got, err := db.ApprovalByID(ctx, ap.ID)
	if err != nil || got.Status != engine.ApprovalApproved {
		t.Fatalf("approval %+v, %v; want approved once acknowledged", got, err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if u := f.callsOf("chat.update"); len(u) != 1 || !strings.Contains(parseBlocks(t, u[0].Form["blocks"]).text(), "✅ Approved by <@U1>") {
		t.Errorf("updates %+v, want the prompt edited", u)
	}
}
