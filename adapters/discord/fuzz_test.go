package discord

import (
	"bytes"
	"context"
	"crypto/ed25519"
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

	"github.com/bwmarrin/discordgo"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
	"github.com/convosphere/convosphere/store/sqlite"
)

// Fuzz targets for what reaches the adapter from Discord: the request
// signature (FuzzVerify) and the interactions and gateway messages behind
// it (FuzzInteraction). Run one with
//
//	go test -run '^$' -fuzz '^FuzzInteraction$' -fuzztime 30s ./adapters/discord/
//
// Inputs that once failed are kept in testdata/fuzz/<target>/ and run
// with the ordinary tests.

// fuzzKey is the application's key pair (a fixed seed: the fuzz inputs
// do not depend on a random key).
var fuzzKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

// fuzzStore wraps the SQLite store: it counts the calls made on behalf
// of a request, can make them fail (the database is down), and keeps
// every inbox event the adapter stores, for the checks.
type fuzzStore struct {
	Store
	enginetest.StoreFaults
}

func (s *fuzzStore) Enqueue(ctx context.Context, e *engine.InboxEvent) (bool, error) {
	return s.Record(ctx, e, s.Store.Enqueue)
}

func (s *fuzzStore) SaveFeedback(ctx context.Context, f *engine.Feedback) error {
	if err := s.Call(); err != nil {
		return err
	}
	return s.Store.SaveFeedback(ctx, f)
}

func (s *fuzzStore) ListAssistants(ctx context.Context) ([]*engine.Assistant, error) {
	if err := s.Call(); err != nil {
		return nil, err
	}
	return s.Store.ListAssistants(ctx)
}

func (s *fuzzStore) Preference(ctx context.Context, p engine.Platform, userID, key string) (*engine.Preference, error) {
	if err := s.Call(); err != nil {
		return nil, err
	}
	return s.Store.Preference(ctx, p, userID, key)
}

func (s *fuzzStore) SetPreference(ctx context.Context, p *engine.Preference) error {
	if err := s.Call(); err != nil {
		return err
	}
	return s.Store.SetPreference(ctx, p)
}

// fuzzREST answers every REST call the way Discord answers a message
// create, and counts the calls (a gateway message makes one only to
// apologise).
type fuzzREST struct {
	srv   *httptest.Server
	mu    sync.Mutex
	posts int // requests
}

func newFuzzREST(tb testing.TB) *fuzzREST {
	f := &fuzzREST{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		f.mu.Lock()
		f.posts++
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"m-1","channel_id":"C1","content":"x"}`)
	}))
	tb.Cleanup(f.srv.Close)
	return f
}

func (f *fuzzREST) postCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.posts
}

// fuzzBot is the bot's user id in gateway messages.
const fuzzBot = "999"

// fuzzAdapter builds an adapter on a SQLite store holding assistants (one
// answering every message in channel CALL) and a trace to rate.
func fuzzAdapter(tb testing.TB) (*Adapter, *fuzzStore, *fuzzREST) {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(tb.TempDir(), "convosphere.db")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	for _, as := range []*engine.Assistant{
		{Name: "ops", Description: "Runbooks", Bindings: []engine.Binding{{Platform: engine.PlatformDiscord, ChannelID: "CALL", Trigger: engine.TriggerAll}}},
		{Name: "docs", IsDefault: true},
	} {
		if err := db.CreateAssistant(ctx, as); err != nil {
			tb.Fatal(err)
		}
	}
	tr := &engine.Trace{ID: "fuzz-trace-1", Platform: engine.PlatformDiscord, StartedAt: time.Now(), Passages: []engine.PassageRef{}, Outcome: engine.OutcomeAnswered}
	if err := db.SaveTrace(ctx, tr); err != nil {
		tb.Fatal(err)
	}
	rest := newFuzzREST(tb)
	st := &fuzzStore{Store: db}
	a, err := New(Config{ApplicationID: "APP1", PublicKey: hex.EncodeToString(fuzzKey.Public().(ed25519.PublicKey)), BotToken: "bot-token",
		APIURL: rest.srv.URL + "/api/v10"}, st, nil)
	if err != nil {
		tb.Fatal(err)
	}
	a.setBotUser(fuzzBot)
	tb.Cleanup(func() { a.Close() })
	return a, st, rest
}

// signedRequest is an interactions request signed with key at ts.
func signedRequest(key ed25519.PrivateKey, ts string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/discord/interactions", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Signature-Ed25519", hex.EncodeToString(ed25519.Sign(key, append([]byte(ts), body...))))
	r.Header.Set("X-Signature-Timestamp", ts)
	return r
}

// checkStored checks that every inbox event the adapter stored is a
// message the workers can answer: it decodes as the worker and the
// replier decode it, its id is the event id, and it names the channel,
// the thread and the user, with the thread key the inbox orders by.
func checkStored(t *testing.T, evs []*engine.InboxEvent) {
	t.Helper()
	for _, ev := range evs {
		var msg engine.Message
		if err := json.Unmarshal(ev.Payload, &msg); err != nil {
			t.Fatalf("stored payload %q does not decode: %v", ev.Payload, err)
		}
		var p payload
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			t.Fatalf("stored payload %q does not decode for the replier: %v", ev.Payload, err)
		}
		switch {
		case ev.Platform != engine.PlatformDiscord || msg.Thread.Channel.Platform != engine.PlatformDiscord:
			t.Fatalf("stored event platform %q, message platform %q", ev.Platform, msg.Thread.Channel.Platform)
		case ev.EventID == "" || msg.ID != ev.EventID:
			t.Fatalf("stored event id %q, message id %q", ev.EventID, msg.ID)
		case ev.ThreadKey != msg.Thread.Key():
			t.Fatalf("stored thread key %q, message thread %q", ev.ThreadKey, msg.Thread.Key())
		case msg.Thread.Channel.ID == "" || msg.Thread.ID == "" || msg.User.ID == "":
			t.Fatalf("stored message lacks a channel, thread or user: %s", ev.Payload)
		case msg.Text != strings.TrimSpace(msg.Text) || !utf8.ValidString(msg.Text):
			// (An empty text is the engine's to answer: it asks for a question.)
			t.Fatalf("stored message text %q is untrimmed", msg.Text)
		case msg.Resume != nil || msg.ConversationID != "" || msg.ReceivedAt.IsZero():
			t.Fatalf("stored message is not a plain question: %s", ev.Payload)
		}
	}
}

// FuzzVerify: the interactions endpoint accepts a request if and only if
// its X-Signature-Ed25519 is the application key's signature of
// X-Signature-Timestamp followed by the exact body, and the timestamp is
// within five minutes; anything else is 401 before the body is read (no
// store call, no PONG). A signature made with another key, or over a
// changed body or timestamp, never passes; a valid one always does.
func FuzzVerify(f *testing.F) {
	ping := []byte(`{"id":"1100000000000000001","application_id":"APP1","type":1,"token":"aW50ZXJhY3Rpb24","version":1}`)
	now := strconv.FormatInt(time.Now().Unix(), 10)
	valid := hex.EncodeToString(ed25519.Sign(fuzzKey, append([]byte(now), ping...)))
	f.Add(ping, now, valid, int64(0), []byte("another key seed"))
	f.Add(ping, now, strings.Repeat("ab", 64), int64(-4*60), []byte{})
	f.Add([]byte(askBody("1", "how do I deploy?")), "+"+now, valid, int64(6*60), bytes.Repeat([]byte{7}, 32))
	f.Add([]byte{}, "", "", int64(-6*60), []byte{0})
	f.Add([]byte("{}"), now+"0", strings.ToUpper(valid), int64(1<<62), []byte("k"))

	a, st, _ := fuzzAdapter(f)
	h := a.Handler()
	pub := fuzzKey.Public().(ed25519.PublicKey)

	f.Fuzz(func(t *testing.T, body []byte, ts, sig string, skew int64, otherSeed []byte) {
		if int64(len(body)) >= a.cfg.MaxBodyBytes {
			return
		}
		now := time.Now()
		near := func(ts string) bool {
			sec, err := strconv.ParseInt(ts, 10, 64)
			if err != nil {
				return false
			}
			d := now.Sub(time.Unix(sec, 0)).Abs()
			return d > maxSkew-5*time.Second && d < maxSkew+5*time.Second
		}
		// oracle is Discord's scheme written independently of verify.
		oracle := func(ts, sig string, body []byte) bool {
			s, err := hex.DecodeString(sig)
			sec, terr := strconv.ParseInt(ts, 10, 64)
			if err != nil || terr != nil || len(s) != ed25519.SignatureSize || now.Sub(time.Unix(sec, 0)).Abs() > maxSkew {
				return false
			}
			return ed25519.Verify(pub, append([]byte(ts), body...), s)
		}
		send := func(what string, r *http.Request, body []byte, want bool) {
			t.Helper()
			st.Reset(false)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			calls, _, _, stored := st.Counts()
			if want {
				var in discordgo.Interaction
				switch wantCode := http.StatusOK; {
				case json.Unmarshal(body, &in) != nil:
					if w.Code != http.StatusBadRequest {
						t.Fatalf("%s: undecodable body answered %d", what, w.Code)
					}
				case w.Code != wantCode:
					t.Fatalf("%s: a correctly signed request was answered %d %q", what, w.Code, w.Body.String())
				}
				checkStored(t, stored)
				return
			}
			if w.Code != http.StatusUnauthorized || calls != 0 || strings.Contains(w.Body.String(), `"type"`) {
				t.Fatalf("%s: a request not signed with the key was answered %d %q after %d store calls (ts %q, sig %q, body %q)",
					what, w.Code, w.Body.String(), calls, r.Header.Get("X-Signature-Timestamp"), r.Header.Get("X-Signature-Ed25519"), body)
			}
		}
		withHeaders := func(body []byte, ts, sig string) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/discord/interactions", bytes.NewReader(body))
			r.Header.Set("X-Signature-Timestamp", ts)
			r.Header.Set("X-Signature-Ed25519", sig)
			return r
		}

		// Headers as the fuzzer wrote them.
		if !near(ts) {
			want := oracle(ts, sig, body)
			h := http.Header{"X-Signature-Timestamp": {ts}, "X-Signature-Ed25519": {sig}}
			if got := verify(pub, h, body, now) == nil; got != want {
				t.Fatalf("verify(ts %q, sig %q, body %q) accepted = %v, the scheme says %v", ts, sig, body, got, want)
			}
			send("fuzzed headers", withHeaders(body, ts, sig), body, want)
			// Signed as the fuzzer wrote the timestamp.
			send("signed fuzzed timestamp", signedRequest(fuzzKey, ts, body), body, oracle(ts, hex.EncodeToString(ed25519.Sign(fuzzKey, append([]byte(ts), body...))), body))
		}

		// Signed with the key at now+skew (within ±10 minutes): accepted
		// exactly when within five minutes.
		stamp := now.Unix() + skew%600
		sts := strconv.FormatInt(stamp, 10)
		if !near(sts) {
			send("signed", signedRequest(fuzzKey, sts, body), body, now.Sub(time.Unix(stamp, 0)).Abs() <= maxSkew)
		}
		fresh := strconv.FormatInt(now.Unix(), 10)

		// Signed with another key: never accepted.
		seed := make([]byte, ed25519.SeedSize)
		copy(seed, otherSeed)
		if other := ed25519.NewKeyFromSeed(seed); !other.Equal(fuzzKey) {
			send("another key", signedRequest(other, fresh, body), body, false)
		}
		// Changed after signing.
		r := signedRequest(fuzzKey, fresh, body)
		r.Body = io.NopCloser(bytes.NewReader(append(bytes.Clone(body), ' ')))
		send("byte added", r, body, false)
		if len(body) > 0 {
			changed := bytes.Clone(body)
			changed[len(changed)/2] ^= 0x01
			r := signedRequest(fuzzKey, fresh, body)
			r.Body = io.NopCloser(bytes.NewReader(changed))
			send("byte changed", r, changed, false)
		}
		r = signedRequest(fuzzKey, fresh, body)
		r.Header.Set("X-Signature-Timestamp", strconv.FormatInt(now.Unix()+1, 10))
		send("timestamp changed", r, body, false)
		r = signedRequest(fuzzKey, fresh, body)
		sigBytes, _ := hex.DecodeString(r.Header.Get("X-Signature-Ed25519"))
		sigBytes[int(uint64(skew)%uint64(len(sigBytes)))] ^= 0x80
		r.Header.Set("X-Signature-Ed25519", hex.EncodeToString(sigBytes))
		send("signature changed", r, body, false)
	})
}

// interactionReply is the part of a response the checks read.
type fuzzReply struct {
	Type discordgo.InteractionResponseType `json:"type"`
	Data *struct {
		Content         string            `json:"content"`
		Flags           int               `json:"flags"`
		Choices         []json.RawMessage `json:"choices"`
		AllowedMentions *struct {
			Parse []string `json:"parse"`
			Users []string `json:"users"`
			Roles []string `json:"roles"`
		} `json:"allowed_mentions"`
	} `json:"data"`
}

// storeDown are the sentences that say the database failed.
var storeDown = []string{"database is unavailable", "could not be loaded", "could not be saved just now", "could not be recorded just now"}

// FuzzInteraction: arbitrary bytes as a correctly signed interaction and
// as a gateway MESSAGE_CREATE. The endpoint never panics and never
// answers 5xx (Discord does not retry: a failure is told to the user);
// it answers 400 exactly when the body is not an interaction, else 200
// with a response that is PONG if and only if the interaction is a PING;
// a deferred answer only to /ask, for a question it stored; autocomplete
// results only to autocomplete (at most 25); a message edit only to a
// button; every message it sends is ephemeral or pings nobody; it blames
// the database only when the store failed. Everything stored is a
// message the workers can answer. A gateway message is stored only when
// it is addressed to the bot (a DM, a mention, a channel that answers
// everything) and not from a bot, with the bot's mention removed; the
// channel hears an apology only when the store failed.
func FuzzInteraction(f *testing.F) {
	// https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-object
	f.Add([]byte(`{"id":"1100000000000000001","application_id":"APP1","type":1,"token":"aW50ZXJhY3Rpb24","version":1,"user":{"id":"53908232506183680","username":"mason","avatar":"a_d5efa99b3eeaa7dd43acca82f5692432","discriminator":"1337","public_flags":131141}}`))
	f.Add(askBody("1100000000000000002", "How do I deploy? <@999> @everyone"))
	f.Add(commandBody("1100000000000000003", "assistant", []map[string]any{{"type": 3, "name": "name", "value": "ops"}}))
	f.Add(commandBody("1100000000000000004", "assistant", nil))
	f.Add(commandBody("1100000000000000005", "ask", []map[string]any{{"type": 3, "name": "question", "value": "which assistant?"}, {"type": 3, "name": "assistant", "value": "docs"}}))
	f.Add(commandBody("1100000000000000006", "ask", []map[string]any{{"type": 4, "name": "question", "value": 42}}))
	f.Add(commandBody("1100000000000000007", "ping", nil))
	f.Add([]byte(`{"type":4,"id":"1100000000000000008","application_id":"APP1","token":"t","channel_id":"C1","user":{"id":"U1"},"data":{"id":"1","name":"ask","type":1,"options":[{"type":3,"name":"assistant","value":"d","focused":true}]}}`))
	f.Add(buttonBody("1100000000000000009", "feedback:up:fuzz-trace-1", "U1", "answer"))
	f.Add(buttonBody("1100000000000000010", "convosphere:approve:A1", "U1", "⏳ waiting"))
	f.Add([]byte(`{"type":5,"id":"1100000000000000011","data":{"custom_id":"modal","components":[]}}`))
	f.Add([]byte(`{"type":2,"id":"1100000000000000012","data":{"name":"ask","options":[null]}}`))
	// Gateway MESSAGE_CREATE: https://discord.com/developers/docs/topics/gateway-events#message-create
	f.Add(messageBody("1200000000000000001", "C1", "G1", "U1", "<@999> how do I deploy?", false))
	f.Add(messageBody("1200000000000000002", "D1", "", "U1", "a DM", false))
	f.Add(messageBody("1200000000000000003", "CALL", "G1", "U1", "every message here", false))
	f.Add(messageBody("1200000000000000004", "C1", "G1", "B1", "<@!999> from a bot", true))
	f.Add(messageBody("1200000000000000005", "C1", "G1", "U1", "not for the bot", false))
	f.Add([]byte(`null`))

	a, st, rest := fuzzAdapter(f)
	h := a.Handler()

	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > 64<<10 {
			return
		}
		var in discordgo.Interaction
		isInteraction := json.Unmarshal(body, &in) == nil
		command := ""
		if isInteraction && in.Type == discordgo.InteractionApplicationCommand {
			command = in.ApplicationCommandData().Name
		}
		for _, fail := range []bool{false, true} {
			st.Reset(fail)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, signedRequest(fuzzKey, strconv.FormatInt(time.Now().Unix(), 10), body))
			calls, failed, _, stored := st.Counts()
			if !isInteraction {
				if w.Code != http.StatusBadRequest || calls != 0 {
					t.Fatalf("not an interaction: answered %d after %d store calls", w.Code, calls)
				}
				continue
			}
			if w.Code != http.StatusOK {
				t.Fatalf("answered %d %q", w.Code, w.Body.String())
			}
			var resp fuzzReply
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.Fatalf("response %q: %v", w.Body.String(), err)
			}
			if (resp.Type == discordgo.InteractionResponsePong) != (in.Type == discordgo.InteractionPing) {
				t.Fatalf("interaction type %d answered with type %d", in.Type, resp.Type)
			}
			switch resp.Type {
			case discordgo.InteractionResponsePong:
				if strings.TrimSpace(w.Body.String()) != `{"type":1}` || calls != 0 {
					t.Fatalf("PING answered %q after %d store calls", w.Body.String(), calls)
				}
			case discordgo.InteractionResponseDeferredChannelMessageWithSource:
				if command != commandAsk || len(stored) != 1 || failed != 0 {
					t.Fatalf("deferred answer to type %d /%s, %d stored, store failed %d times", in.Type, command, len(stored), failed)
				}
			case discordgo.InteractionApplicationCommandAutocompleteResult:
				if in.Type != discordgo.InteractionApplicationCommandAutocomplete || resp.Data == nil || len(resp.Data.Choices) > 25 {
					t.Fatalf("autocomplete result %q to interaction type %d", w.Body.String(), in.Type)
				}
			case discordgo.InteractionResponseUpdateMessage:
				if in.Type != discordgo.InteractionMessageComponent {
					t.Fatalf("message update to interaction type %d", in.Type)
				}
			case discordgo.InteractionResponseChannelMessageWithSource:
				if resp.Data == nil || resp.Data.Flags&int(discordgo.MessageFlagsEphemeral) == 0 {
					t.Fatalf("a public message: %q", w.Body.String())
				}
			default:
				t.Fatalf("response type %d: %q", resp.Type, w.Body.String())
			}
			if d := resp.Data; d != nil && d.Content != "" {
				if m := d.AllowedMentions; m == nil || len(m.Parse) != 0 || len(m.Users) != 0 || len(m.Roles) != 0 {
					t.Fatalf("a message that may ping: %q", w.Body.String())
				}
				for _, s := range storeDown {
					if strings.Contains(d.Content, s) && failed == 0 {
						t.Fatalf("blames the database though the store did not fail: %q", d.Content)
					}
				}
			}
			if fail && len(stored) > 0 {
				t.Fatal("stored by a failing store")
			}
			checkStored(t, stored)
			if len(stored) > 0 && (stored[0].EventID != in.ID || command != commandAsk) {
				t.Fatalf("stored %q for interaction %q (/%s)", stored[0].EventID, in.ID, command)
			}
		}

		// The same bytes as a gateway MESSAGE_CREATE's data, as discordgo
		// decodes it: the handlers get what was decoded even when
		// decoding failed (null gives no message at all).
		var m discordgo.MessageCreate
		_ = json.Unmarshal(body, &m)
		for _, fail := range []bool{false, true} {
			st.Reset(fail)
			before := rest.postCount()
			a.messageCreate(context.Background(), &m)
			_, _, enqueueFailed, stored := st.Counts()
			apologies := rest.postCount() - before
			// (discordgo puts the channel id into the URL as it is: only
			// a URL-safe one reaches the server.)
			urlSafe := m.Message != nil && strings.Trim(m.ChannelID, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_") == ""
			if urlSafe && apologies != enqueueFailed || apologies > 1 {
				t.Fatalf("%d apologies posted, storing failed %d times", apologies, enqueueFailed)
			}
			if len(stored) == 0 {
				continue
			}
			checkStored(t, stored)
			msg := m.Message
			dm := msg.GuildID == ""
			mentioned := strings.Contains(msg.Content, "<@"+fuzzBot+">") || strings.Contains(msg.Content, "<@!"+fuzzBot+">")
			if len(stored) != 1 || msg.Author == nil || msg.Author.Bot || msg.Author.ID == fuzzBot || !(dm || mentioned || msg.ChannelID == "CALL") {
				t.Fatalf("stored a message not addressed to the bot: %q", body)
			}
			var p payload
			_ = json.Unmarshal(stored[0].Payload, &p)
			if p.ID != msg.ID || p.Discord.ReplyTo != msg.ID || p.Thread.Channel.DM != dm || p.User.ID != msg.Author.ID ||
				strings.Contains(p.Text, "<@"+fuzzBot+">") || strings.Contains(p.Text, "<@!"+fuzzBot+">") {
				t.Fatalf("stored %s for message %q", stored[0].Payload, body)
			}
		}
	})
}

// messageBody is a gateway MESSAGE_CREATE's data as Discord documents it.
func messageBody(id, channel, guild, author, content string, bot bool) []byte {
	b, _ := json.Marshal(message(id, channel, guild, author, content, bot))
	return b
}
