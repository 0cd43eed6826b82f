package mattermost

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
	"github.com/convosphere/convosphere/store/sqlite"
)

// Fuzz targets for what reaches the adapter from Mattermost: "posted"
// websocket events (FuzzPosted) and the integration requests of the
// approval buttons (FuzzAction). Run one with
//
//	go test -run '^$' -fuzz '^FuzzPosted$' -fuzztime 30s ./adapters/mattermost/
//
// Inputs that once failed are kept in testdata/fuzz/<target>/ and run
// with the ordinary tests.

// fuzzStore wraps the SQLite store: it counts the calls made on behalf
// of an event or request, can make them fail (the database is down), and
// keeps every inbox event the adapter stores, for the checks.
type fuzzStore struct {
	Store
	enginetest.StoreFaults
}

func (s *fuzzStore) Enqueue(ctx context.Context, e *engine.InboxEvent) (bool, error) {
	return s.Record(ctx, e, s.Store.Enqueue)
}

func (s *fuzzStore) ListAssistants(ctx context.Context) ([]*engine.Assistant, error) {
	if err := s.Call(); err != nil {
		return nil, err
	}
	return s.Store.ListAssistants(ctx)
}

func (s *fuzzStore) ConversationByThread(ctx context.Context, p engine.Platform, channelID, threadID string) (*engine.Conversation, error) {
	if err := s.Call(); err != nil {
		return nil, err
	}
	return s.Store.ConversationByThread(ctx, p, channelID, threadID)
}

func (s *fuzzStore) ApprovalByID(ctx context.Context, id string) (*engine.ToolApproval, error) {
	if err := s.Call(); err != nil {
		return nil, err
	}
	return s.Store.ApprovalByID(ctx, id)
}

func (s *fuzzStore) DecideApproval(ctx context.Context, id string, status engine.ApprovalStatus, decidedBy string, at time.Time, resume *engine.InboxEvent) (*engine.ToolApproval, error) {
	if err := s.Call(); err != nil {
		return nil, err
	}
	return s.Store.DecideApproval(ctx, id, status, decidedBy, at, resume)
}

func (s *fuzzStore) UserByIdentity(ctx context.Context, p engine.Platform, chatUserID string) (*engine.User, error) {
	if err := s.Call(); err != nil {
		return nil, err
	}
	return s.Store.UserByIdentity(ctx, p, chatUserID)
}

// fuzzServer is the Mattermost REST API as far as these paths use it: it
// counts the posts created (apologies) and has no post to read back.
type fuzzServer struct {
	srv   *httptest.Server
	mu    sync.Mutex
	posts int
}

func (f *fuzzServer) postCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.posts
}

// fuzzAdapter builds an adapter on a SQLite store holding an assistant
// that answers every message in channel CALL, with the bot account
// known (as Start learns it) but no websocket.
func fuzzAdapter(tb testing.TB) (*Adapter, *fuzzStore, *fuzzServer, *sqlite.DB) {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(tb.TempDir(), "convosphere.db")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.CreateAssistant(ctx, &engine.Assistant{Name: "all",
		Bindings: []engine.Binding{{Platform: engine.PlatformMattermost, ChannelID: "CALL", Trigger: engine.TriggerAll}}}); err != nil {
		tb.Fatal(err)
	}
	fs := &fuzzServer{}
	fs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost && r.URL.Path == "/api/v4/posts" {
			fs.mu.Lock()
			fs.posts++
			fs.mu.Unlock()
			fmt.Fprintf(w, `{"id":"bot-post","create_at":%d}`, time.Now().UnixMilli())
			return
		}
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"id":"app.post.get.app_error","message":"Unable to get the post.","status_code":404}`)
	}))
	tb.Cleanup(fs.srv.Close)
	st := &fuzzStore{Store: db}
	a, err := New(Config{URL: fs.srv.URL, Token: "bot-token", ActionsURL: actionsURL, Locker: &engine.LocalLocker{}}, st, nil)
	if err != nil {
		tb.Fatal(err)
	}
	a.bot = &model.User{Id: "botuserid00000000000000000", Username: "helper"}
	return a, st, fs, db
}

// checkStored checks that every inbox event the adapter stored is a
// message the workers can answer: it decodes as the worker decodes it,
// its id is the event id, and it names the channel, the thread and the
// user, with the thread key the inbox orders by.
func checkStored(t *testing.T, evs []*engine.InboxEvent) {
	t.Helper()
	for _, ev := range evs {
		var msg engine.Message
		if err := json.Unmarshal(ev.Payload, &msg); err != nil {
			t.Fatalf("stored payload %q does not decode: %v", ev.Payload, err)
		}
		switch {
		case ev.Platform != engine.PlatformMattermost || msg.Thread.Channel.Platform != engine.PlatformMattermost:
			t.Fatalf("stored event platform %q, message platform %q", ev.Platform, msg.Thread.Channel.Platform)
		case ev.EventID == "" || msg.ID != ev.EventID:
			t.Fatalf("stored event id %q, message id %q", ev.EventID, msg.ID)
		case ev.ThreadKey != msg.Thread.Key():
			t.Fatalf("stored thread key %q, message thread %q", ev.ThreadKey, msg.Thread.Key())
		case msg.Thread.Channel.ID == "" || msg.Thread.ID == "" || msg.User.ID == "":
			t.Fatalf("stored message lacks a channel, thread or user: %s", ev.Payload)
		case msg.Text != strings.TrimSpace(msg.Text) || !utf8.ValidString(msg.Text):
			t.Fatalf("stored message text %q is untrimmed", msg.Text)
		case msg.Resume != nil || msg.ConversationID != "" || msg.ReceivedAt.IsZero():
			t.Fatalf("stored message is not a plain question: %s", ev.Payload)
		}
	}
}

// postedEvent is a "posted" websocket event as the server sends it
// (https://developers.mattermost.com/api-documentation/#/#websocket-events):
// the post is JSON inside a string, and so are the mentions.
func postedEvent(post, channelType, mentions string, seq int64) []byte {
	b, _ := json.Marshal(map[string]any{
		"event": "posted",
		"data": map[string]any{"post": post, "channel_type": channelType, "channel_display_name": "Town Square",
			"channel_name": "town-square", "sender_name": "@ada", "team_id": "team1", "mentions": mentions, "set_online": true},
		"broadcast": map[string]any{"omit_users": nil, "user_id": "", "channel_id": "C1", "team_id": "", "connection_id": ""},
		"seq":       seq,
	})
	return b
}

// FuzzPosted: arbitrary posts (the JSON in a "posted" event), channel
// types and mention lists, decoded as the websocket client decodes
// events. Nothing panics; a post is stored only when it is addressed to
// the bot (a DM, a mention, a channel that answers everything) and is
// a person's post (not the bot's, a system message, a webhook's or a
// deleted one), as a message the workers can answer with the bot's
// mention removed; the server is told of a failure to store (a post in
// the thread) exactly when storing failed; the newest create_at seen,
// where a reconnect reads missed posts from, never goes back.
func FuzzPosted(f *testing.F) {
	post := func(fields map[string]any) string {
		p := map[string]any{"id": "p1aaaaaaaaaaaaaaaaaaaaaaaa", "create_at": 1700000000000, "update_at": 1700000000000, "edit_at": 0, "delete_at": 0,
			"is_pinned": false, "user_id": "u1aaaaaaaaaaaaaaaaaaaaaaaa", "channel_id": "c1aaaaaaaaaaaaaaaaaaaaaaaa", "root_id": "", "original_id": "",
			"message": "@helper how do I deploy?", "type": "", "props": map[string]any{}, "hashtags": "", "pending_post_id": "", "reply_count": 0,
			"metadata": map[string]any{}}
		for k, v := range fields {
			p[k] = v
		}
		b, _ := json.Marshal(p)
		return string(b)
	}
	mentionsBot := `["botuserid00000000000000000"]`
	f.Add(post(nil), "O", mentionsBot, []byte(nil))
	f.Add(post(map[string]any{"message": "a DM", "channel_id": "dm1"}), "D", "", []byte(nil))
	f.Add(post(map[string]any{"message": "every message here", "channel_id": "CALL"}), "O", "", []byte(nil))
	f.Add(post(map[string]any{"message": "in a thread", "root_id": "root1"}), "P", "", []byte(nil))
	f.Add(post(map[string]any{"user_id": "botuserid00000000000000000"}), "D", mentionsBot, []byte(nil))
	f.Add(post(map[string]any{"type": "system_join_channel"}), "O", mentionsBot, []byte(nil))
	f.Add(post(map[string]any{"props": map[string]any{"from_bot": "true"}}), "D", "", []byte(nil))
	f.Add(post(map[string]any{"delete_at": 1700000000001}), "D", "", []byte(nil))
	f.Add(post(map[string]any{"create_at": -1, "message": "  @helper  "}), "G", "not json", []byte(nil))
	f.Add(`{"id":"x"`, "D", "", []byte(nil))
	f.Add("", "D", "", postedEvent(post(nil), "D", "", 7))
	f.Add("", "", "", []byte(`{"event":"hello","data":{"connection_id":"c","server_version":"10.0"},"broadcast":{},"seq":0}`))
	f.Add("", "", "", []byte(`{"event":"posted","data":{"post":{"id":"not a string"}},"seq":"1"}`))
	f.Add("", "", "", []byte(`{"event":"posted","data":{"user":{"id":"u1"},"post":"{}"}}`))

	a, st, srv, _ := fuzzAdapter(f)

	f.Fuzz(func(t *testing.T, postJSON, channelType, mentions string, event []byte) {
		raw := event
		if len(raw) == 0 {
			raw = postedEvent(postJSON, channelType, mentions, 1)
		}
		ev, err := model.WebSocketEventFromJSON(bytes.NewReader(raw))
		if err != nil || ev.EventType() != model.WebsocketEventPosted {
			return // the client drops it; listen handles posted events only
		}
		data := ev.GetData()
		postRaw, _ := data["post"].(string)
		var p model.Post
		decoded := json.Unmarshal([]byte(postRaw), &p) == nil
		var mentioned []string
		if m, ok := data["mentions"].(string); ok {
			_ = json.Unmarshal([]byte(m), &mentioned)
		}
		ct, _ := data["channel_type"].(string)

		for _, fail := range []bool{false, true} {
			st.Reset(fail)
			a.mu.Lock()
			seenBefore := a.lastSeen
			a.mu.Unlock()
			before := srv.postCount()
			a.posted(context.Background(), ev)
			_, _, enqueueFailed, stored := st.Counts()
			a.mu.Lock()
			seenAfter := a.lastSeen
			a.mu.Unlock()

			if seenAfter < seenBefore || decoded && seenAfter < p.CreateAt {
				t.Fatalf("the newest post seen went from %d to %d after a post of %d", seenBefore, seenAfter, p.CreateAt)
			}
			if apologies := srv.postCount() - before; apologies != enqueueFailed {
				t.Fatalf("%d failure notices posted, storing failed %d times", apologies, enqueueFailed)
			}
			if fail && len(stored) > 0 {
				t.Fatal("stored by a failing store")
			}
			checkStored(t, stored)
			if len(stored) == 0 {
				continue
			}
			if !decoded || len(stored) != 1 {
				t.Fatalf("stored %d events for an undecodable post %q", len(stored), postRaw)
			}
			addressed := ct == string(model.ChannelTypeDirect) || slices.Contains(mentioned, a.bot.Id) ||
				strings.Contains(p.Message, "@"+a.bot.Username) || p.ChannelId == "CALL"
			fromPerson := p.UserId != a.bot.Id && p.Type == "" && p.GetProp("from_bot") != "true" && p.DeleteAt == 0
			if !addressed || !fromPerson {
				t.Fatalf("stored a post not addressed to the bot or not a person's (addressed %v): %q", addressed, postRaw)
			}
			var msg engine.Message
			_ = json.Unmarshal(stored[0].Payload, &msg)
			wantThread := p.RootId
			if wantThread == "" {
				wantThread = p.Id
			}
			if msg.ID != p.Id || msg.Thread.Channel.ID != p.ChannelId || msg.Thread.ID != wantThread || msg.User.ID != p.UserId ||
				msg.Thread.Channel.DM != (ct == string(model.ChannelTypeDirect)) || strings.Contains(msg.Text, "@"+a.bot.Username) {
				t.Fatalf("stored %s for post %q", stored[0].Payload, postRaw)
			}
		}
	})
}

// oracleToken is a button's token as the adapter documents it, written
// independently: HMAC-SHA256 keyed by HMAC-SHA256(bot token, "convosphere
// mattermost approval actions v1"), over approval id, NUL, decision.
func oracleToken(botToken, approvalID, decision string) []byte {
	k := hmac.New(sha256.New, []byte(botToken))
	k.Write([]byte("convosphere mattermost approval actions v1"))
	m := hmac.New(sha256.New, k.Sum(nil))
	m.Write([]byte(approvalID + "\x00" + decision))
	return m.Sum(nil)
}

// FuzzAction: arbitrary integration requests to POST /mattermost/actions,
// as the fuzzer wrote them and built around fuzzed fields. Nothing panics
// and nothing is a 5xx; a request is past the token check (not 401) if
// and only if its context carries an approval id and the token the bot
// made for that approval and decision; a token made with another bot
// token, for the other decision or for another approval is 401, before
// the store is asked anything; a valid token with a decision other than
// approve or reject, or no user, is 400; otherwise the clicker always
// gets an answer (a message or the updated post).
func FuzzAction(f *testing.F) {
	req := func(ctx map[string]any, user string) []byte {
		b, _ := json.Marshal(model.PostActionIntegrationRequest{UserId: user, UserName: "ada", ChannelId: "C1", PostId: "post1", TeamId: "T1",
			TriggerId: "trigger", Type: "", Context: ctx})
		return b
	}
	tok := func(id, decision string) string { return hex.EncodeToString(oracleToken("bot-token", id, decision)) }
	f.Add(req(map[string]any{"approval_id": "A1", "decision": "approve", "token": tok("A1", "approve")}, "U1"), "A1", "approve", "", "U1", "other-bot-token")
	f.Add(req(map[string]any{"approval_id": "A1", "decision": "reject", "token": tok("A1", "approve")}, "U2"), "A1", "reject", tok("A1", "reject"), "U2", "")
	f.Add(req(map[string]any{"approval_id": "A1", "decision": "approve", "token": strings.ToUpper(tok("A1", "approve"))}, ""), "nope", "maybe", "zz", "", "bot-token ")
	f.Add(req(map[string]any{"approval_id": 5, "decision": nil, "token": []string{"x"}}, "U1"), "", "", "", "", "x")
	f.Add([]byte(`user_id=U1&context=x`), "A1", "approve", strings.Repeat("ab", 32), "U1", "")
	f.Add([]byte(`{"context":null}`), "A1\x00approve", "", "", "U1", "")

	a, st, _, db := fuzzAdapter(f)
	ctx := context.Background()
	ap := &engine.ToolApproval{ID: "A1", AssistantName: "ops", Thread: askThread, EventID: "P1", User: engine.ChatUser{ID: "U1", Name: "Ada L."},
		Calls: []engine.ToolCall{{ID: "c1", Name: "deploy", Arguments: `{"service":"web"}`}}, State: []byte(`{}`),
		CreatedAt: time.Now(), ExpiresAt: time.Now().Add(24 * time.Hour)}
	if err := db.CreateApproval(ctx, ap); err != nil {
		f.Fatal(err)
	}
	h := a.Handler()

	f.Fuzz(func(t *testing.T, body []byte, approvalID, decision, token, user, otherBotToken string) {
		if len(body) >= maxActionBody {
			return
		}
		// What JSON carries (the bot's ids and decisions are UTF-8).
		approvalID, decision = strings.ToValidUTF8(approvalID, "\uFFFD"), strings.ToValidUTF8(decision, "\uFFFD")
		// post sends body and checks the answer; it reports the status.
		post := func(what string, body []byte, fail bool) int {
			t.Helper()
			st.Reset(fail)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/mattermost/actions", bytes.NewReader(body)))
			calls, _, _, _ := st.Counts()

			var r model.PostActionIntegrationRequest
			decodes := json.NewDecoder(bytes.NewReader(body)).Decode(&r) == nil
			id, _ := r.Context["approval_id"].(string)
			dec, _ := r.Context["decision"].(string)
			tk, _ := r.Context["token"].(string)
			got, err := hex.DecodeString(tk)
			valid := decodes && id != "" && err == nil && hmac.Equal(got, oracleToken("bot-token", id, dec))
			switch {
			case w.Code >= 500:
				t.Fatalf("%s: answered %d", what, w.Code)
			case !decodes:
				if w.Code != http.StatusBadRequest || calls != 0 {
					t.Fatalf("%s: undecodable request answered %d after %d store calls", what, w.Code, calls)
				}
			case !valid:
				if w.Code != http.StatusUnauthorized || calls != 0 {
					t.Fatalf("%s: request without a valid token (approval %q, decision %q, token %q) answered %d after %d store calls",
						what, id, dec, tk, w.Code, calls)
				}
			case dec != actionApprove && dec != actionReject || r.UserId == "":
				if w.Code != http.StatusBadRequest || calls != 0 {
					t.Fatalf("%s: a valid token for decision %q by user %q answered %d after %d store calls", what, dec, r.UserId, w.Code, calls)
				}
			default:
				var resp model.PostActionIntegrationResponse
				if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &resp) != nil || resp.EphemeralText == "" && resp.Update == nil {
					t.Fatalf("%s: a valid click answered %d %q", what, w.Code, w.Body.String())
				}
			}
			return w.Code
		}

		// As the fuzzer wrote it, with the store up and down.
		post("raw", body, false)
		post("raw, store down", body, true)

		// Built around the fuzzed fields: the fuzzed token, then tokens
		// made for this approval and decision with the bot's secret (valid)
		// and with others (never).
		build := func(tok string) []byte {
			b, _ := json.Marshal(model.PostActionIntegrationRequest{UserId: user, UserName: "ada", PostId: "post1",
				Context: map[string]any{"approval_id": approvalID, "decision": decision, "token": tok}})
			return b
		}
		post("fuzzed token", build(token), false)
		good := actionToken(a.secret, approvalID, decision)
		if !hmac.Equal([]byte(good), []byte(hex.EncodeToString(oracleToken("bot-token", approvalID, decision)))) {
			t.Fatalf("the bot's token for %q %q differs from the documented scheme", approvalID, decision)
		}
		if code := post("valid token", build(good), false); approvalID != "" && code == http.StatusUnauthorized {
			t.Fatalf("a valid token for %q %q was refused", approvalID, decision)
		}
		forged := map[string]string{
			"other bot token":       hex.EncodeToString(oracleToken(otherBotToken, approvalID, decision)),
			"other decision":        actionToken(a.secret, approvalID, decision+"x"),
			"other approval":        actionToken(a.secret, approvalID+"x", decision),
			"approval and decision": actionToken(a.secret, approvalID+"\x00"+decision, ""),
		}
		if otherBotToken == "bot-token" {
			delete(forged, "other bot token")
		}
		for what, tok := range forged {
			if code := post(what, build(tok), false); code != http.StatusUnauthorized && code != http.StatusBadRequest {
				t.Fatalf("%s: a forged token was accepted (%d)", what, code)
			}
		}
	})
}
