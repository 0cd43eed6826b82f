package mattermost

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
)

// TestPostsAddressedToTheBot: DMs and mentions are stored, in their
// thread, with the mention removed; the rest is not.
func TestPostsAddressedToTheBot(t *testing.T) {
	f := newFakeServer(t)
	a, db := mustAdapter(t, f)
	f.post(t, "P1", "D1", "D", "U1", "what is our SLA?", "", nil, false)
	f.post(t, "P2", "C1", "O", "U1", "@helper how do I deploy?", "R1", []string{"BOT"}, false)
	f.post(t, "P3", "C1", "O", "U1", "lunch?", "", nil, false)
	f.post(t, "P4", "D1", "D", "BOT", "my own answer", "", nil, false)
	evs := inbox(t, db, 2)
	if ids(evs) != "P1,P2" {
		t.Fatalf("stored %s, want P1,P2", ids(evs))
	}
	var m engine.Message
	_ = json.Unmarshal(evs[1].Payload, &m)
	if m.Text != "how do I deploy?" || m.Thread.ID != "R1" || m.Thread.Channel.DM {
		t.Errorf("stored %+v", m)
	}
	_ = json.Unmarshal(evs[0].Payload, &m)
	if !m.Thread.Channel.DM || m.Thread.ID != "P1" {
		t.Errorf("DM stored %+v, want its own thread", m)
	}
	if err := a.Ready(); err != nil {
		t.Errorf("Ready = %v", err)
	}
}

// TestReplayAfterReconnect: events sent while the websocket was down are
// replayed by the server on reconnect (same connection id, next sequence)
// and stored once.
func TestReplayAfterReconnect(t *testing.T) {
	f := newFakeServer(t)
	_, db := mustAdapter(t, f)
	f.post(t, "P1", "D1", "D", "U1", "first", "", nil, false)
	inbox(t, db, 1)
	f.drop()
	f.post(t, "P2", "D1", "D", "U1", "while away", "", nil, true)
	f.post(t, "P3", "D1", "D", "U1", "also while away", "", nil, true)
	evs := inbox(t, db, 2)
	if ids(evs) != "P2,P3" {
		t.Fatalf("after the reconnect stored %q, want P2,P3 (replayed)", ids(evs))
	}
	f.mu.Lock()
	conn := f.connID
	f.mu.Unlock()
	if conn != "conn-1" {
		t.Errorf("connection %s, want the same connection resumed", conn)
	}
}

// TestBackfillWhenTheBufferIsLost: when the server starts a new
// connection (it no longer has the missed events), the adapter reads the
// posts since the last one it saw over REST.
func TestBackfillWhenTheBufferIsLost(t *testing.T) {
	f := newFakeServer(t)
	_, db := mustAdapter(t, f)
	f.post(t, "P1", "D1", "D", "U1", "first", "", nil, false)
	inbox(t, db, 1)
	now := time.Now().UnixMilli()
	f.mu.Lock()
	f.loseBuffer = true
	f.channel = map[string]any{"id": "D1", "type": "D", "team_id": "", "last_post_at": now + 10}
	f.since = []map[string]any{
		{"id": "P2", "channel_id": "D1", "user_id": "U1", "message": "missed one", "create_at": now + 5, "type": ""},
		{"id": "P3", "channel_id": "D1", "user_id": "BOT", "message": "the bot's own", "create_at": now + 6, "type": ""},
		{"id": "P4", "channel_id": "D1", "user_id": "U1", "message": "missed two", "create_at": now + 10, "type": ""},
	}
	f.mu.Unlock()
	f.drop()
	evs := inbox(t, db, 2)
	if ids(evs) != "P2,P4" {
		t.Fatalf("after a lost buffer stored %q, want P2,P4 read back over REST", ids(evs))
	}
}

// TestAnswerInThread: the answer is posted in the thread, edited as it
// streams (coalesced), split at the post size, and a model failure
// leaves the partial answer marked.
func TestAnswerInThread(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	a, db := mustAdapter(t, f, func(c *Config) { c.MaxPostRunes = 300 })
	if err := db.CreateAssistant(ctx, &engine.Assistant{Name: "ops", IsDefault: true}); err != nil {
		t.Fatal(err)
	}
	f.post(t, "P1", "C1", "O", "U1", "@helper explain the deploy", "", []string{"BOT"}, false)
	evs := inbox(t, db, 1)
	if len(evs) != 1 {
		t.Fatal("the question was not stored")
	}
	var chunks []string
	for i := range 30 {
		chunks = append(chunks, "Step "+strings.Repeat("é", i%5)+" deploy the service and check it. ")
	}
	model := enginetest.NewModel(enginetest.Reply{Chunks: chunks, Delay: 5 * time.Millisecond,
		Err: engine.Errorf(engine.EUNAVAILABLE, "The language model stopped responding.")})
	eng, err := engine.New(engine.Config{}, engine.Deps{Assistants: db, Conversations: db, Traces: db, Model: model})
	if err != nil {
		t.Fatal(err)
	}
	var m engine.Message
	_ = json.Unmarshal(evs[0].Payload, &m)
	if err := a.PrepareMessage(ctx, evs[0], &m); err != nil || m.User.Name != "Ada L." {
		t.Errorf("PrepareMessage: %v, user %+v", err, m.User)
	}
	r, err := a.Replier(ctx, evs[0], m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Handle(ctx, m, r); err == nil {
		t.Fatal("the failed model did not fail the turn")
	}
	f.mu.Lock()
	posts, patches := f.posts, f.patches
	f.mu.Unlock()
	if len(posts) < 2 {
		t.Fatalf("%d posts, want the long answer split", len(posts))
	}
	final := map[string]string{}
	for _, p := range posts {
		if p["root_id"] != "P1" || p["channel_id"] != "C1" {
			t.Errorf("post %v not in the thread", p)
		}
		final[p["id"].(string)] = p["message"].(string)
	}
	for _, p := range patches {
		final[p["id"]] = p["message"]
	}
	for id, text := range final {
		if n := utf8.RuneCountInString(text); n > 300 {
			t.Errorf("%s has %d characters", id, n)
		}
	}
	last := final[posts[len(posts)-1]["id"].(string)]
	if !strings.Contains(last, "interrupted") || !strings.Contains(last, "stopped responding") {
		t.Errorf("the last part %q does not say the answer was interrupted and why", last)
	}
}

func TestBadToken(t *testing.T) {
	f := newFakeServer(t)
	a, err := New(Config{URL: f.srv.URL, Token: "wrong"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "mattermost.token") {
		t.Errorf("Start = %v, want an error naming mattermost.token", err)
	}
}

// forgetful loses every outbox record, as a crash right after posting would.
type forgetful struct{ Store }

func (forgetful) RecordOutbound(context.Context, *engine.OutboundMessage) error { return nil }
func (forgetful) Outbound(context.Context, engine.Platform, string) ([]*engine.OutboundMessage, error) {
	return nil, nil
}

// TestRetryAdoptsUnrecordedPost: an attempt that posted but crashed before
// recording the post: the retry finds it in the thread (its props) and
// edits it instead of posting again.
func TestRetryAdoptsUnrecordedPost(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	_, db := mustAdapter(t, f)
	// A second adapter, not started (no websocket), whose outbox forgets.
	a, err := New(Config{URL: f.srv.URL, Token: "bot-token", Locker: &engine.LocalLocker{}}, forgetful{db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := &engine.InboxEvent{Platform: engine.PlatformMattermost, EventID: "P1", Attempts: 1}
	m := engine.Message{ID: "P1", Thread: engine.Thread{Channel: engine.Channel{Platform: engine.PlatformMattermost, ID: "C1"}, ID: "P1"}}
	first, err := a.Replier(ctx, ev, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Update(ctx, engine.Update{Text: "Deploy with"}); err != nil {
		t.Fatal(err)
	}
	ev.Attempts = 2
	second, err := a.Replier(ctx, ev, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Finish(ctx, engine.Answer{Text: "Deploy with make deploy.", Outcome: engine.OutcomeAnswered}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.posts) != 1 || len(f.patches) != 1 || f.patches[0]["message"] != "Deploy with make deploy." {
		t.Errorf("posts %d, patches %v; want the first post edited", len(f.posts), f.patches)
	}
}
