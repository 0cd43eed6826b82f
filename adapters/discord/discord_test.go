package discord

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
	"github.com/convosphere/convosphere/store/sqlite"
)

// fakeDiscord serves the REST calls the adapter makes, shaped as
// Discord documents them, and records them.
type fakeDiscord struct {
	srv      *httptest.Server
	mu       sync.Mutex
	calls    []fakeCall
	next     int
	limitFor map[string]int // path prefix → 429s to answer first
	global   map[string]int // path prefix → global 429s to answer first
	// refuseReplies answers messages with a message_reference 403 (the bot
	// lacks Read Message History).
	refuseReplies bool
}

type fakeCall struct {
	Method, Path string
	Body         map[string]any
	At           time.Time
}

func newFakeDiscord(t *testing.T) *fakeDiscord {
	f := &fakeDiscord{limitFor: map[string]int{}, global: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeDiscord) serve(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	raw, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(raw, &body)
	f.mu.Lock()
	defer f.mu.Unlock()
	path := strings.TrimPrefix(r.URL.Path, "/api/v10")
	for prefix, n := range f.limitFor {
		if n > 0 && strings.HasPrefix(path, prefix) {
			f.limitFor[prefix] = n - 1
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"message":"You are being rate limited.","retry_after":0.3,"global":false}`)
			return
		}
	}
	for prefix, n := range f.global {
		if n > 0 && strings.HasPrefix(path, prefix) {
			f.global[prefix] = n - 1
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.Header().Set("X-RateLimit-Global", "true")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"message":"You are being rate limited.","retry_after":1,"global":true}`)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if _, reply := body["message_reference"]; reply && f.refuseReplies {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message":"Missing Permissions","code":50013}`)
		return
	}
	f.calls = append(f.calls, fakeCall{Method: r.Method, Path: path, Body: body, At: time.Now()})
	switch {
	case r.Method == http.MethodPut && strings.Contains(path, "/commands"):
		var cmds []map[string]any
		_ = json.Unmarshal(raw, &cmds)
		for i, c := range cmds {
			c["id"] = strconv.Itoa(1000 + i)
		}
		_ = json.NewEncoder(w).Encode(cmds)
	case strings.HasSuffix(path, "/messages/@original"):
		fmt.Fprint(w, `{"id":"orig-1","channel_id":"C1","content":"x"}`)
	default:
		f.next++
		fmt.Fprintf(w, `{"id":"m-%d","channel_id":"C1","content":"x"}`, f.next)
	}
}

func (f *fakeDiscord) callsTo(method, pathPart string) []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeCall
	for _, c := range f.calls {
		if c.Method == method && strings.Contains(c.Path, pathPart) {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeDiscord) all() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCall(nil), f.calls...)
}

type testEnv struct {
	a    *Adapter
	db   *sqlite.DB
	f    *fakeDiscord
	priv ed25519.PrivateKey
}

func mustEnv(t *testing.T) *testEnv {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "convosphere.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := newFakeDiscord(t)
	a, err := New(Config{ApplicationID: "APP1", PublicKey: hex.EncodeToString(pub), BotToken: "bot-token",
		APIURL: f.srv.URL + "/api/v10", UpdateInterval: 100 * time.Millisecond}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{a: a, db: db, f: f, priv: priv}
}

// post signs body at ts and POSTs it to the interactions endpoint.
func (e *testEnv) post(body []byte, ts time.Time, mutate ...func(*http.Request)) *httptest.ResponseRecorder {
	stamp := strconv.FormatInt(ts.Unix(), 10)
	sig := ed25519.Sign(e.priv, append([]byte(stamp), body...))
	r := httptest.NewRequest(http.MethodPost, "/discord/interactions", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Signature-Ed25519", hex.EncodeToString(sig))
	r.Header.Set("X-Signature-Timestamp", stamp)
	for _, m := range mutate {
		m(r)
	}
	w := httptest.NewRecorder()
	e.a.Handler().ServeHTTP(w, r)
	return w
}

// askBody is an /ask interaction as Discord documents application
// command interactions (https://discord.com/developers/docs/interactions/receiving-and-responding).
func askBody(id, question string) []byte {
	b, _ := json.Marshal(map[string]any{
		"type": 2, "token": "TOKEN-" + id, "id": id, "application_id": "APP1", "guild_id": "G1", "channel_id": "C1",
		"app_permissions": "442368", "locale": "en-US", "guild_locale": "en-US", "version": 1,
		"member": map[string]any{"user": map[string]any{"id": "U1", "username": "mason", "global_name": "Mason"},
			"roles": []string{}, "permissions": "2147483647", "nick": nil, "joined_at": "2017-03-13T19:19:14.040000+00:00"},
		"data": map[string]any{"id": "771825006014889984", "name": "ask", "type": 1,
			"options": []map[string]any{{"type": 3, "name": "question", "value": question}}},
	})
	return b
}

func TestSignatures(t *testing.T) {
	e := mustEnv(t)
	ping := []byte(`{"type":1,"id":"1","application_id":"APP1","token":"t","version":1}`)
	now := time.Now()
	tests := []struct {
		name   string
		ts     time.Time
		mutate func(*http.Request)
		want   int
	}{
		{"good", now, nil, 200},
		{"bad signature", now, func(r *http.Request) { r.Header.Set("X-Signature-Ed25519", strings.Repeat("ab", 64)) }, 401},
		{"missing signature", now, func(r *http.Request) { r.Header.Del("X-Signature-Ed25519") }, 401},
		{"missing timestamp", now, func(r *http.Request) { r.Header.Del("X-Signature-Timestamp") }, 401},
		{"other timestamp", now, func(r *http.Request) {
			r.Header.Set("X-Signature-Timestamp", strconv.FormatInt(now.Unix()+1, 10))
		}, 401},
		{"body changed after signing", now, func(r *http.Request) {
			r.Body = io.NopCloser(bytes.NewReader(bytes.Replace(ping, []byte(`"1"`), []byte(`"2"`), 1)))
		}, 401},
		{"stale timestamp", now.Add(-6 * time.Minute), nil, 401},
		{"future timestamp", now.Add(6 * time.Minute), nil, 401},
		{"four minutes old", now.Add(-4 * time.Minute), nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mut []func(*http.Request)
			if tt.mutate != nil {
				mut = append(mut, tt.mutate)
			}
			w := e.post(ping, tt.ts, mut...)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d", w.Code, tt.want)
			}
			if tt.want == 200 && strings.TrimSpace(w.Body.String()) != `{"type":1}` {
				t.Errorf("PING answered %s, want {\"type\":1}", w.Body.String())
			}
		})
	}
}

func inbox(t *testing.T, db *sqlite.DB) []*engine.InboxEvent {
	t.Helper()
	var out []*engine.InboxEvent
	for {
		ev, err := db.Claim(context.Background(), "test", time.Minute)
		if engine.IsNotFound(err) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Complete(context.Background(), ev.ID, "test"); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
}

// TestAskIsDeferredAndDeduplicated: /ask answers a deferred response at
// once and stores the question once, however often it arrives.
func TestAskIsDeferredAndDeduplicated(t *testing.T) {
	e := mustEnv(t)
	for range 3 {
		w := e.post(askBody("I1", "How do I deploy?"), time.Now())
		if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"type":5}` {
			t.Fatalf("answer %d %s, want a deferred response {\"type\":5}", w.Code, w.Body.String())
		}
	}
	evs := inbox(t, e.db)
	if len(evs) != 1 {
		t.Fatalf("%d events stored, want 1", len(evs))
	}
	var m engine.Message
	_ = json.Unmarshal(evs[0].Payload, &m)
	if m.Text != "How do I deploy?" || m.User.ID != "U1" || m.User.Name != "Mason" || m.Thread.Channel.ID != "C1" || m.Thread.Channel.DM {
		t.Errorf("stored %+v", m)
	}
	// An empty question is refused at once, privately.
	w := e.post(askBody("I2", "  "), time.Now())
	if !strings.Contains(w.Body.String(), `"flags":64`) || !strings.Contains(w.Body.String(), "question") {
		t.Errorf("empty question answered %s", w.Body.String())
	}
}

type downInbox struct{ *sqlite.DB }

func (downInbox) Enqueue(context.Context, *engine.InboxEvent) (bool, error) {
	return false, engine.Errorf(engine.EUNAVAILABLE, "database is down")
}

func TestAskWhenTheStoreIsDown(t *testing.T) {
	e := mustEnv(t)
	e.a.store = downInbox{e.db}
	w := e.post(askBody("I1", "How do I deploy?"), time.Now())
	if w.Code != 200 || !strings.Contains(w.Body.String(), "could not take your question") {
		t.Errorf("answer %d %s, want the reason at once", w.Code, w.Body.String())
	}
}

// mustAnswer runs the stored /ask through the engine's worker with a
// scripted model.
func (e *testEnv) mustAnswer(t *testing.T, reply enginetest.Reply) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.db.AssistantByName(ctx, "ops"); err != nil {
		if err := e.db.CreateAssistant(ctx, &engine.Assistant{Name: "ops", IsDefault: true}); err != nil {
			t.Fatal(err)
		}
	}
	eng, err := engine.New(engine.Config{}, engine.Deps{Assistants: e.db, Conversations: e.db, Traces: e.db, Model: enginetest.NewModel(reply)})
	if err != nil {
		t.Fatal(err)
	}
	w, err := engine.NewWorker(engine.WorkerConfig{}, engine.WorkerDeps{Inbox: e.db, Handler: eng,
		Repliers: map[engine.Platform]engine.ReplierFactory{engine.PlatformDiscord: e.a}})
	if err != nil {
		t.Fatal(err)
	}
	if worked, err := w.ProcessOne(ctx); !worked || err != nil {
		t.Fatalf("ProcessOne = %v, %v", worked, err)
	}
}

// TestDeferredFlow: the answer streams into @original, edits coalesced,
// and ends with the sources embed and feedback buttons; nothing pings.
func TestDeferredFlow(t *testing.T) {
	e := mustEnv(t)
	e.post(askBody("I1", "How do I deploy?"), time.Now())
	chunks := strings.SplitAfter("Deploy with make deploy, then ping @everyone and <@123> when it is done. ", " ")
	start := time.Now()
	e.mustAnswer(t, enginetest.Reply{Chunks: chunks, Delay: 20 * time.Millisecond})
	elapsed := time.Since(start)
	edits := e.f.callsTo(http.MethodPatch, "/webhooks/APP1/TOKEN-I1/messages/@original")
	if max := int(elapsed/(100*time.Millisecond)) + 2; len(edits) == 0 || len(edits) > max {
		t.Errorf("%d edits of @original in %v, want 1 to %d", len(edits), elapsed, max)
	}
	for _, c := range e.f.all() {
		am, _ := c.Body["allowed_mentions"].(map[string]any)
		if parse, ok := am["parse"].([]any); !ok || len(parse) != 0 {
			t.Errorf("%s %s without allowed_mentions {parse: []}: %v", c.Method, c.Path, c.Body["allowed_mentions"])
		}
	}
	last := edits[len(edits)-1].Body
	if got := last["content"]; got != strings.TrimSpace(strings.Join(chunks, "")) {
		t.Errorf("final content %q", got)
	}
	if comps, _ := last["components"].([]any); len(comps) != 1 || !strings.Contains(fmt.Sprint(comps), "feedback:up:") {
		t.Errorf("final components %v, want the feedback buttons", last["components"])
	}
	if n := len(e.f.callsTo(http.MethodPost, "/webhooks/")); n != 0 {
		t.Errorf("%d follow-ups for a short answer", n)
	}
}

// TestLongAnswerSplit: parts of at most 2000 characters, the first in
// @original, the rest as follow-ups; no code block broken.
func TestLongAnswerSplit(t *testing.T) {
	e := mustEnv(t)
	e.post(askBody("I1", "Everything?"), time.Now())
	var sb strings.Builder
	for i := range 40 {
		fmt.Fprintf(&sb, "Step %d: deploy the service, check the logs and the dashboards — é.\n\n", i)
		if i == 20 {
			sb.WriteString("```sh\n" + strings.Repeat("make deploy ENV=prod\n", 40) + "```\n\n")
		}
	}
	e.mustAnswer(t, enginetest.Reply{Chunks: []string{sb.String()}})
	original := e.f.callsTo(http.MethodPatch, "@original")
	follow := e.f.callsTo(http.MethodPost, "/webhooks/APP1/TOKEN-I1")
	if len(original) == 0 || len(follow) < 2 {
		t.Fatalf("%d edits of @original, %d follow-ups; want the answer split", len(original), len(follow))
	}
	var parts []string
	parts = append(parts, original[len(original)-1].Body["content"].(string))
	for _, f := range follow {
		parts = append(parts, f.Body["content"].(string))
	}
	for i, p := range parts {
		if n := utf8.RuneCountInString(p); n > MessageLimit {
			t.Errorf("part %d has %d characters", i, n)
		}
		if strings.Count(p, "```")%2 != 0 {
			t.Errorf("part %d breaks a code block", i)
		}
	}
}

// TestExpiredToken: an interaction token 15 minutes old is never used;
// the answer goes to the channel.
func TestExpiredToken(t *testing.T) {
	e := mustEnv(t)
	e.a.now = func() time.Time { return time.Now().Add(-16 * time.Minute) }
	e.post(askBody("I1", "How do I deploy?"), time.Now().Add(-16*time.Minute))
	e.a.now = time.Now
	e.mustAnswer(t, enginetest.Reply{Chunks: []string{"Deploy with make deploy."}})
	if n := len(e.f.callsTo(http.MethodPatch, "/webhooks/")) + len(e.f.callsTo(http.MethodPost, "/webhooks/")); n != 0 {
		t.Errorf("%d calls with the expired token", n)
	}
	msgs := e.f.callsTo(http.MethodPost, "/channels/C1/messages")
	if len(msgs) == 0 || !strings.Contains(fmt.Sprint(msgs[len(msgs)-1].Body["content"]), "make deploy") {
		t.Errorf("channel messages %+v, want the answer", msgs)
	}
}

// TestRateLimited: a 429 with retry_after is waited out, then the call
// goes through once.
func TestRateLimited(t *testing.T) {
	e := mustEnv(t)
	e.post(askBody("I1", "How do I deploy?"), time.Now())
	e.f.mu.Lock()
	e.f.limitFor["/webhooks/APP1/TOKEN-I1/messages/@original"] = 1
	e.f.mu.Unlock()
	start := time.Now()
	e.mustAnswer(t, enginetest.Reply{Chunks: []string{"Deploy with make deploy."}})
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("answered after %v, before retry_after (0.3s)", d)
	}
	if n := len(e.f.callsTo(http.MethodPatch, "@original")); n == 0 {
		t.Error("the answer never reached @original")
	}
}

func TestFeedbackButton(t *testing.T) {
	e := mustEnv(t)
	tr := &engine.Trace{ID: engine.NewID(), Platform: engine.PlatformDiscord, StartedAt: time.Now(), Passages: []engine.PassageRef{}, Outcome: engine.OutcomeAnswered}
	if err := e.db.SaveTrace(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{
		"type": 3, "id": "I9", "application_id": "APP1", "token": "T9", "guild_id": "G1", "channel_id": "C1", "version": 1,
		"member":  map[string]any{"user": map[string]any{"id": "U1", "username": "mason"}},
		"message": map[string]any{"id": "orig-1", "channel_id": "C1", "content": "answer"},
		"data":    map[string]any{"custom_id": "feedback:down:" + tr.ID, "component_type": 2},
	})
	w := e.post(body, time.Now())
	if !strings.Contains(w.Body.String(), "feedback was recorded") {
		t.Errorf("answer %s", w.Body.String())
	}
	fb, err := e.db.FeedbackForTrace(context.Background(), tr.ID)
	if err != nil || len(fb) != 1 || fb[0].Rating != engine.RatingDown || fb[0].UserID != "U1" {
		t.Errorf("feedback %+v, %v", fb, err)
	}
}

func TestRegister(t *testing.T) {
	e := mustEnv(t)
	cmds, err := e.a.Register(context.Background(), "G1")
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 2 || cmds[0].Name != "ask" || cmds[1].Name != "assistant" {
		t.Fatalf("registered %+v", cmds)
	}
	calls := e.f.callsTo(http.MethodPut, "/applications/APP1/guilds/G1/commands")
	if len(calls) != 1 {
		t.Fatalf("calls %+v", e.f.all())
	}
}

func TestConfigValidate(t *testing.T) {
	key := strings.Repeat("ab", 32)
	base := Config{ApplicationID: "A", PublicKey: key, BotToken: "t", Mode: ModeHTTP, APIURL: DefaultAPIURL}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"valid", func(*Config) {}, ""},
		{"no application id", func(c *Config) { c.ApplicationID = "" }, "discord.application_id"},
		{"no token", func(c *Config) { c.BotToken = "" }, "discord.bot_token"},
		{"bad key", func(c *Config) { c.PublicKey = "xyz" }, "discord.public_key"},
		{"unknown mode", func(c *Config) { c.Mode = "rtm" }, "discord.mode"},
		{"gateway needs no public key", func(c *Config) { c.Mode = ModeGateway; c.PublicKey = "" }, ""},
		{"bad url", func(c *Config) { c.APIURL = "discord.com" }, "discord.api_url"},
	}
	for _, tt := range tests {
		c := base
		tt.mutate(&c)
		err := c.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want an error naming %q", tt.name, err, tt.want)
		}
	}
}

// TestGlobalRateLimit: a global 429 holds back calls on every route until
// its Retry-After has passed.
func TestGlobalRateLimit(t *testing.T) {
	e := mustEnv(t)
	e.f.mu.Lock()
	e.f.global["/channels/C1/messages"] = 1
	e.f.mu.Unlock()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := e.a.api.ChannelMessageSend("C1", "first")
		done <- err
	}()
	time.Sleep(200 * time.Millisecond) // the first call has met the global limit
	if _, err := e.a.api.ChannelMessageSend("C2", "second"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("a call on another route went through after %v, inside the global Retry-After of 1s", d)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(e.f.callsTo(http.MethodPost, "/channels/C1/messages")); n != 1 {
		t.Errorf("the limited call went through %d times, want 1 (retried once)", n)
	}
}

func commandBody(id, name string, options []map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{
		"type": 2, "token": "TOKEN-" + id, "id": id, "application_id": "APP1", "guild_id": "G1", "channel_id": "C1", "version": 1,
		"member": map[string]any{"user": map[string]any{"id": "U1", "username": "mason"}},
		"data":   map[string]any{"id": "7", "name": name, "type": 1, "options": options},
	})
	return b
}

// TestChooseAssistant: /assistant name:X makes X answer the user's /ask
// questions in that channel; "default" goes back; unknown names are refused.
func TestChooseAssistant(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	for _, as := range []*engine.Assistant{
		{Name: "Guide", IsDefault: true},
		{Name: "Ops", Description: "Runbooks", Bindings: []engine.Binding{{Platform: engine.PlatformDiscord, ChannelID: "C1"}}},
		{Name: "Legal", Bindings: []engine.Binding{{Platform: engine.PlatformDiscord, ChannelID: "C1"}}},
	} {
		if err := e.db.CreateAssistant(ctx, as); err != nil {
			t.Fatal(err)
		}
	}
	list := e.post(commandBody("I1", "assistant", nil), time.Now()).Body.String()
	if !strings.Contains(list, "Ops") || !strings.Contains(list, "Legal") || strings.Contains(list, "Guide") {
		t.Errorf("list %s, want the channel's assistants", list)
	}
	opt := func(v string) []map[string]any { return []map[string]any{{"type": 3, "name": "name", "value": v}} }
	if got := e.post(commandBody("I2", "assistant", opt("nobody")), time.Now()).Body.String(); !strings.Contains(got, "no assistant named") {
		t.Errorf("unknown name answered %s", got)
	}
	if got := e.post(commandBody("I3", "assistant", opt("legal")), time.Now()).Body.String(); !strings.Contains(got, "now go to **Legal**") {
		t.Errorf("choice answered %s", got)
	}
	e.post(askBody("I4", "Can I use this font?"), time.Now())
	e.post(commandBody("I5", "assistant", opt("default")), time.Now())
	e.post(askBody("I6", "And now?"), time.Now())
	evs := inbox(t, e.db)
	if len(evs) != 2 {
		t.Fatalf("%d questions stored", len(evs))
	}
	var first, second engine.Message
	_ = json.Unmarshal(evs[0].Payload, &first)
	_ = json.Unmarshal(evs[1].Payload, &second)
	if first.Assistant != "Legal" || second.Assistant != "" {
		t.Errorf("assistants %q then %q, want Legal then the channel's", first.Assistant, second.Assistant)
	}
}

// TestTokenExpiresMidAnswer: once the token is too old, the answer moves
// to one channel message, which later edits change (no message per edit).
func TestTokenExpiresMidAnswer(t *testing.T) {
	e := mustEnv(t)
	e.post(askBody("I1", "How do I deploy?"), time.Now())
	ev, err := e.db.Claim(context.Background(), "test", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var m engine.Message
	_ = json.Unmarshal(ev.Payload, &m)
	r, err := e.a.Replier(context.Background(), ev, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Update(context.Background(), engine.Update{Text: "Deploy"}); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(15 * time.Minute)
	for i, text := range []string{"Deploy with", "Deploy with make", "Deploy with make deploy"} {
		e.a.now = func() time.Time { return later.Add(time.Duration(i) * 2 * time.Second) }
		if err := r.Update(context.Background(), engine.Update{Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.f.callsTo(http.MethodPost, "/channels/C1/messages")); n != 1 {
		t.Errorf("%d channel messages, want 1", n)
	}
	if n := len(e.f.callsTo(http.MethodPatch, "/channels/C1/messages/")); n != 2 {
		t.Errorf("%d channel edits, want 2", n)
	}
	if n := len(e.f.callsTo(http.MethodPatch, "@original")); n != 1 {
		t.Errorf("%d edits of @original, want 1 (before the token expired)", n)
	}
}
