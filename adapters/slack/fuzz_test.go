package slack

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
	"github.com/convosphere/convosphere/store/sqlite"
)

// Fuzz targets for what reaches the adapter from the network: Slack's
// request signature (FuzzVerify) and the events, interactions and Socket
// Mode envelopes behind it (FuzzEvents). Run one with
//
//	go test -run '^$' -fuzz '^FuzzEvents$' -fuzztime 30s ./adapters/slack/
//
// Inputs that once failed are kept in testdata/fuzz/<target>/ and run
// with the ordinary tests.

// fuzzStore wraps the SQLite store: it counts the calls that read or
// write on behalf of a request, can make them fail (the database is
// down), and keeps every inbox event the adapter stores, for the checks.
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

func (s *fuzzStore) ConversationByThread(ctx context.Context, p engine.Platform, channelID, threadID string) (*engine.Conversation, error) {
	if err := s.Call(); err != nil {
		return nil, err
	}
	return s.Store.ConversationByThread(ctx, p, channelID, threadID)
}

// fuzzTraceID is a trace the fuzz store holds, so that feedback seeds
// reach the store's success path.
const fuzzTraceID = "fuzz-trace-1"

// newFuzzStore opens a SQLite store with assistants bound to channels of
// each trigger policy (CALL: every message, CTHREAD: threads it is in)
// and a trace to rate.
func newFuzzStore(tb testing.TB) (*fuzzStore, *sqlite.DB) {
	tb.Helper()
	db := MustStore(tb)
	ctx := context.Background()
	for _, as := range []*engine.Assistant{
		{Name: "all", Bindings: []engine.Binding{{Platform: engine.PlatformSlack, ChannelID: "CALL", Trigger: engine.TriggerAll}}},
		{Name: "thread", Bindings: []engine.Binding{{Platform: engine.PlatformSlack, ChannelID: "CTHREAD", Trigger: engine.TriggerThread}}},
	} {
		if err := db.CreateAssistant(ctx, as); err != nil {
			tb.Fatal(err)
		}
	}
	tr := &engine.Trace{ID: fuzzTraceID, Platform: engine.PlatformSlack, StartedAt: time.Now(), Passages: []engine.PassageRef{}, Outcome: engine.OutcomeAnswered}
	if err := db.SaveTrace(ctx, tr); err != nil {
		tb.Fatal(err)
	}
	return &fuzzStore{Store: db}, db
}

// checkStored checks that every inbox event the adapter stored is a
// message the workers can answer: the payload decodes as the worker
// decodes it (and as the replier does), its id is the event id, and it
// names the platform, the channel, the thread and the user, with the
// thread key the inbox orders by.
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
		case ev.Platform != engine.PlatformSlack || msg.Thread.Channel.Platform != engine.PlatformSlack:
			t.Fatalf("stored event %+v: platform %q, message platform %q", ev, ev.Platform, msg.Thread.Channel.Platform)
		case ev.EventID == "" || msg.ID != ev.EventID:
			t.Fatalf("stored event id %q, message id %q", ev.EventID, msg.ID)
		case ev.ThreadKey != msg.Thread.Key():
			t.Fatalf("stored thread key %q, message thread %q", ev.ThreadKey, msg.Thread.Key())
		case msg.Thread.Channel.ID == "" || msg.Thread.ID == "":
			t.Fatalf("stored message has no channel or thread to answer in: %s", ev.Payload)
		case msg.User.ID == "":
			t.Fatalf("stored message names no user: %s", ev.Payload)
		case !utf8.ValidString(msg.Text) || msg.Resume != nil || msg.ConversationID != "" || msg.ReceivedAt.IsZero():
			t.Fatalf("stored message is not a plain question: %s", ev.Payload)
		}
	}
}

// oracleSlack is Slack's signing scheme written independently of the
// adapter: "v0=" and the hex HMAC-SHA256 of "v0:<timestamp>:<body>" with
// the signing secret, and a timestamp within five minutes of now.
func oracleSlack(secret, ts, sig string, body []byte, now time.Time) bool {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || secret == "" {
		return false
	}
	if d := now.Sub(time.Unix(sec, 0)).Abs(); d > 5*time.Minute {
		return false
	}
	hexSig, ok := strings.CutPrefix(sig, "v0=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// nearSkewLimit reports whether ts is within a few seconds of the five
// minute limit, where the answer depends on when the check runs.
func nearSkewLimit(ts string, now time.Time) bool {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	d := now.Sub(time.Unix(sec, 0)).Abs()
	return d > 5*time.Minute-5*time.Second && d < 5*time.Minute+5*time.Second
}

// FuzzVerify: the HTTP handler accepts a request if and only if it is
// signed with the signing secret over the exact body and timestamp, and
// the timestamp is within five minutes; anything else is 401 "invalid
// signature" before the body is looked at (no store call, no challenge
// echoed). A correctly signed body always passes; one signed with
// another secret, or changed after signing, never does.
func FuzzVerify(f *testing.F) {
	now := time.Now().Unix()
	ts := strconv.FormatInt(now, 10)
	urlVerification := []byte(`{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`)
	mentionBody := eventBody("EvV1", mention("<@UBOT> hello", "1700000000.000001", ""))
	for _, s := range []struct {
		body      []byte
		ts, sig   string
		skew      int64
		secret    string
		form      bool
		rightSign bool
	}{
		{mentionBody, ts, sign(testSecret, now, mentionBody), 0, "another-secret", false, true},
		{urlVerification, ts, "v0=" + strings.Repeat("ab", 32), -4 * 60, testSecret + "x", false, false},
		{[]byte("ssl_check=1&token=XXYYZZ"), ts, "", 6 * 60, "", true, false},
		{[]byte("payload=" + url.QueryEscape(feedbackPayload(fuzzTraceID, actionFeedbackUp))), ts, "v1=00", -6 * 60, "8F742231B10E8888ABCD99YYYZZZ85A5", true, true},
		{nil, "", "v0=", 299, "s", false, false},
		{[]byte("{}"), "+" + ts, sign(testSecret, now, []byte("{}")), 1 << 62, testSecret[:31], false, true},
		{[]byte("{}"), ts + "0", "V0=" + strings.Repeat("0", 64), -1 << 63, testSecret + "\x00", false, false},
	} {
		f.Add(s.body, s.ts, s.sig, s.skew, s.secret, s.form, s.rightSign)
	}

	db, _ := newFuzzStore(f)
	a := MustAdapter(f, newFakeSlack(f), db)
	h := a.Handler()

	f.Fuzz(func(t *testing.T, body []byte, ts, sig string, skew int64, otherSecret string, form, rightSign bool) {
		if int64(len(body)) >= a.cfg.MaxBodyBytes {
			return // 413 before any check; TestBodyCap covers it
		}
		contentType := "application/json"
		if form {
			contentType = "application/x-www-form-urlencoded"
		}
		now := time.Now()
		// send delivers body to both endpoints with the given headers and
		// checks the answer against want (accepted or not).
		send := func(what string, body []byte, ts, sig string, want bool) {
			t.Helper()
			for _, path := range []string{"/slack/events", "/slack/interactions"} {
				r := request(path, contentType, body, 0, "")
				r.Header.Set("X-Slack-Request-Timestamp", ts)
				r.Header.Set("X-Slack-Signature", sig)
				db.Reset(false)
				w := serve(h, r)
				calls, _, _, stored := db.Counts()
				if want {
					if w.Code == http.StatusUnauthorized {
						t.Fatalf("%s: %s answered 401 to a correctly signed request (ts %q, sig %q, body %q)", what, path, ts, sig, body)
					}
					if w.Code >= 500 {
						t.Fatalf("%s: %s answered %d with a working store", what, path, w.Code)
					}
					checkStored(t, stored)
					continue
				}
				if w.Code != http.StatusUnauthorized || w.Body.String() != "invalid signature\n" {
					t.Fatalf("%s: %s answered %d %q to a request not signed with the secret (ts %q, sig %q, body %q)", what, path, w.Code, w.Body.String(), ts, sig, body)
				}
				if calls != 0 {
					t.Fatalf("%s: %s called the store %d times for a rejected request", what, path, calls)
				}
			}
		}

		// Headers as the fuzzer wrote them: accepted exactly when the
		// independent implementation of Slack's scheme accepts them.
		if !nearSkewLimit(ts, now) {
			want := oracleSlack(testSecret, ts, sig, body, now)
			if got := verify(http.Header{"X-Slack-Request-Timestamp": {ts}, "X-Slack-Signature": {sig}}, body, testSecret) == nil; got != want {
				t.Fatalf("verify(ts %q, sig %q, body %q) accepted = %v, the scheme says %v", ts, sig, body, got, want)
			}
			send("fuzzed headers", body, ts, sig, want)
		}

		// Signed with the secret, at now+skew (within ±10 minutes):
		// accepted exactly when within five minutes.
		stamp := now.Unix() + skew%600
		sts := strconv.FormatInt(stamp, 10)
		if !nearSkewLimit(sts, now) {
			fresh := now.Sub(time.Unix(stamp, 0)).Abs() <= 5*time.Minute
			send("signed", body, sts, sign(testSecret, stamp, body), fresh)
		}
		if rightSign {
			// The same with the timestamp as the fuzzer wrote it (Slack
			// signs the header's text, whatever it is).
			mac := hmac.New(sha256.New, []byte(testSecret))
			mac.Write([]byte("v0:" + ts + ":"))
			mac.Write(body)
			good := "v0=" + hex.EncodeToString(mac.Sum(nil))
			if !nearSkewLimit(ts, now) {
				send("signed fuzzed timestamp", body, ts, good, oracleSlack(testSecret, ts, good, body, now))
			}
		}

		// Signed by someone without the secret: never accepted. (HMAC pads
		// a short key with zero bytes: "k" and "k\x00" are one key.)
		if len(otherSecret) > 64 || strings.TrimRight(otherSecret, "\x00") != testSecret {
			send("another secret", body, sts, sign(otherSecret, stamp, body), false)
		}
		// Changed after signing: a byte added, a byte changed, or the
		// timestamp moved.
		sig2 := sign(testSecret, stamp, body)
		send("byte added", append(bytes.Clone(body), 'x'), sts, sig2, false)
		if len(body) > 0 {
			changed := bytes.Clone(body)
			changed[len(changed)/2] ^= 0x20
			send("byte changed", changed, sts, sig2, false)
		}
		send("timestamp moved", body, strconv.FormatInt(stamp+1, 10), sig2, false)
		send("signature truncated", body, sts, sig2[:len(sig2)-2], false)
	})
}

// slackMarkup is the regexp replaceMarkup stands for.
var slackMarkup = regexp.MustCompile(`<([^<>]*)>`)

// FuzzReplaceMarkup: replaceMarkup replaces what the regexp's
// ReplaceAllStringFunc replaces, in the same order, to the same text.
func FuzzReplaceMarkup(f *testing.F) {
	for _, s := range []string{
		"<@UBOT> ask <@U7|ada> about <https://x.example/a|the doc> in <#C9|ops> &amp; <!here>",
		"plain", "", "<", ">", "<>", "<<>>", "<a<b>c>", "a>b<c", "<a>>", "<<a>", "< \xff\xfe <\xc3\xa9|é> \xe2\x82",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got, want []string
		mark := func(calls *[]string) func(string) string {
			return func(m string) string {
				*calls = append(*calls, m)
				return "[" + strconv.Itoa(len(*calls)) + "]"
			}
		}
		out, wantOut := replaceMarkup(s, mark(&got)), slackMarkup.ReplaceAllStringFunc(s, mark(&want))
		if out != wantOut || !reflect.DeepEqual(got, want) {
			t.Fatalf("replaceMarkup(%q) = %q replacing %q, the regexp %q replacing %q", s, out, got, wantOut, want)
		}
	})
}

// FuzzEvents: arbitrary bytes, correctly signed, as an Events API body,
// as an interactions payload and as a Socket Mode message. Nothing
// panics; the answer is never a 5xx unless the store failed (and then
// always a 5xx, so Slack delivers again); url_verification echoes the
// challenge exactly; ssl_check is answered with an empty 200; every
// event stored is a message the workers can answer. Over Socket Mode, a
// message that decodes is acknowledged (with its envelope id) exactly
// when it has one, once stored, and the connection stays open; one that
// does not decode is skipped, and the connection stays open.
func FuzzEvents(f *testing.F) {
	seeds := []string{
		// Events API: https://api.slack.com/events/app_mention
		`{"token":"XXYYZZ","team_id":"T123ABC456","api_app_id":"A123ABC456","event":{"type":"app_mention","user":"U123ABC456","text":"What is the hour of the pearl, <@U0LAN0Z89>?","ts":"1515449522.000016","channel":"C123ABC456","event_ts":"1515449522000016"},"type":"event_callback","event_id":"Ev123ABC456","event_time":1515449522000016,"authed_users":["U0LAN0Z89"]}`,
		string(eventBody("EvF1", mention("<@UBOT> how do I deploy? <#C42|general> <!here> <https://x.io|x> &lt;&amp;&gt;", "1700000000.000001", "1699999999.000001"))),
		string(eventBody("EvF2", map[string]any{"type": "message", "channel_type": "im", "user": "U1", "text": "hi in a DM", "ts": "1700000000.000002", "channel": "D1"})),
		string(eventBody("EvF3", map[string]any{"type": "message", "user": "U1", "text": "every message here", "ts": "1700000000.000003", "channel": "CALL"})),
		string(eventBody("EvF4", map[string]any{"type": "message", "user": "U1", "text": "in a thread", "ts": "1700000000.000005", "thread_ts": "1700000000.000004", "channel": "CTHREAD"})),
		string(eventBody("EvF5", map[string]any{"type": "message", "subtype": "message_changed", "channel": "CALL", "ts": "1.2", "message": map[string]any{"text": "edited"}})),
		string(eventBody("EvF6", map[string]any{"type": "message", "bot_id": "B1", "user": "U2", "text": "from a bot", "ts": "1.3", "channel": "CALL"})),
		string(eventBody("EvF7", map[string]any{"type": "assistant_thread_started", "assistant_thread": map[string]any{"user_id": "U1", "channel_id": "D1", "thread_ts": "1.4"}})),
		string(eventBody("EvF8", map[string]any{"type": "app_mention", "user": "U1", "text": "<@UBOT>", "ts": "1.5", "channel": "C1", "edited": map[string]any{"user": "U1"}})),
		// https://api.slack.com/events/url_verification
		`{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`,
		`{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","team_id":"T1","api_app_id":"A1","type":"app_rate_limited","minute_rate_limited":1518467820}`,
		`{"type":"event_callback","event_id":"EvF9","event":"not an object"}`,
		// ssl_check: https://api.slack.com/interactivity/slash-commands#ssl
		"ssl_check=1&token=XXYYZZ",
		// block_actions: https://api.slack.com/reference/interaction-payloads/block-actions
		feedbackPayload(fuzzTraceID, actionFeedbackUp),
		feedbackPayload("no-such-trace", actionFeedbackDown),
		strings.Replace(feedbackPayload("approval-1", actionApprove), `"block_id":"feedback"`, `"block_id":"`+approvalBlockID+`"`, 1),
		`{"type":"view_submission","user":{"id":"U1"},"view":{"id":"V1"}}`,
		// Socket Mode: https://api.slack.com/apis/socket-mode
		`{"envelope_id":"env-1","type":"events_api","accepts_response_payload":false,"retry_attempt":0,"retry_reason":"","payload":` + string(eventBody("EvS1", mention("<@UBOT> over the socket", "1700000000.000006", ""))) + `}`,
		`{"envelope_id":"env-2","type":"interactive","accepts_response_payload":false,"payload":` + feedbackPayload(fuzzTraceID, actionFeedbackDown) + `}`,
		`{"envelope_id":"env-3","type":"slash_commands","payload":{"command":"/ask","text":"hi"}}`,
		`{"type":"hello","num_connections":1,"debug_info":{"host":"applink-1"},"connection_info":{"app_id":"A1"}}`,
		`{"type":"events_api","envelope_id":"env-4","payload":"x"}`,
		`{"type":"events_api","envelope_id":7}`,
		`not json`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}

	db, _ := newFuzzStore(f)
	slack := newFakeSlack(f)
	a := MustAdapter(f, slack, db)
	h := a.Handler()
	sock := newFakeSocket(f)
	slack.socketURL = sock.URL()
	// The Socket Mode adapter shares the store (the inbox dedupes).
	MustAdapter(f, slack, db, func(c *Config) { c.Mode = ModeSocket; c.AppToken = "xapp-fuzz"; c.SigningSecret = "" })
	var conn *websocket.Conn
	select {
	case conn = <-sock.conns:
	case <-time.After(10 * time.Second):
		f.Fatal("socket mode did not connect")
	}
	sentinel := 0

	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > 64<<10 {
			return
		}
		now := time.Now().Unix()
		var env envelope
		isEnvelope := json.Unmarshal(body, &env) == nil
		payloadForm := []byte("payload=" + url.QueryEscape(string(body)))

		for _, c := range []struct {
			path, contentType string
			body              []byte
		}{
			{"/slack/events", "application/json", body},
			{"/slack/events", "application/x-www-form-urlencoded", body},
			{"/slack/interactions", "application/x-www-form-urlencoded", payloadForm},
			{"/slack/interactions", "application/x-www-form-urlencoded", body},
		} {
			for _, fail := range []bool{false, true} {
				a.mu.Lock()
				a.policy = cachedPolicy{} // read the trigger policies (and fail) every time
				a.mu.Unlock()
				db.Reset(fail)
				w := serve(h, request(c.path, c.contentType, c.body, now, testSecret))
				calls, failed, _, stored := db.Counts()
				switch {
				case w.Code == http.StatusUnauthorized:
					t.Fatalf("%s %s: a signed request was answered 401", c.path, c.contentType)
				case w.Code >= 500 && failed == 0:
					t.Fatalf("%s %s: answered %d %q though the store did not fail (%d calls)", c.path, c.contentType, w.Code, w.Body.String(), calls)
				case w.Code < 500 && failed > 0:
					// Not kept: Slack must deliver it again.
					t.Fatalf("%s %s: answered %d though the store failed", c.path, c.contentType, w.Code)
				case w.Code != http.StatusOK && w.Code != http.StatusBadRequest && w.Code != http.StatusServiceUnavailable:
					t.Fatalf("%s %s: answered %d", c.path, c.contentType, w.Code)
				}
				if fail && len(stored) > 0 {
					t.Fatalf("events stored by a failing store: %d", len(stored))
				}
				checkStored(t, stored)
				if c.path == "/slack/events" && c.contentType == "application/json" && isEnvelope && env.Type == "url_verification" {
					var got map[string]string
					if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 || len(got) != 1 || got["challenge"] != env.Challenge {
						t.Fatalf("url_verification answered %d %q, want the challenge %q", w.Code, w.Body.String(), env.Challenge)
					}
				}
				if c.contentType == "application/x-www-form-urlencoded" {
					if form, err := url.ParseQuery(string(c.body)); err == nil && form.Get("ssl_check") == "1" {
						if w.Code != 200 || w.Body.Len() != 0 || calls != 0 {
							t.Fatalf("%s ssl_check answered %d %q after %d store calls", c.path, w.Code, w.Body.String(), calls)
						}
					}
				}
			}
		}

		// Socket Mode: the message, then a sentinel whose ack says that
		// the message was handled.
		db.Reset(false)
		var m socketMessage
		decodes := json.Unmarshal(body, &m) == nil
		if err := conn.WriteMessage(websocket.TextMessage, body); err != nil {
			t.Fatal(err)
		}
		sentinel++
		want := "sentinel-" + strconv.Itoa(sentinel)
		// The write fails when the client has already closed the
		// connection over the message (its unread data resets it).
		_ = conn.WriteJSON(map[string]string{"type": "fuzz_sentinel", "envelope_id": want})
		var acks []string
		dropped := false
	wait:
		for {
			select {
			case id := <-sock.acks:
				if id == want {
					break wait
				}
				acks = append(acks, id)
			case c := <-sock.closed:
				if c != conn {
					continue // an older connection, replaced after a disconnect
				}
				dropped = true
				select {
				case conn = <-sock.conns:
				case <-time.After(10 * time.Second):
					t.Fatal("socket mode did not connect again after the connection closed")
				}
				break wait
			case <-time.After(10 * time.Second):
				t.Fatalf("socket mode: no ack for the sentinel after %q", body)
			}
		}
		if decodes && m.Type == "disconnect" && !dropped {
			// Slack asked for a new connection: the client opens it, then
			// lets the old one go.
			select {
			case conn = <-sock.conns:
			case <-time.After(10 * time.Second):
				t.Fatal("socket mode did not open a new connection after a disconnect message")
			}
			dropped = true
		}
		if dropped {
			// The sentinel may have been lost with the connection; the new
			// one must work.
			sentinel++
			again := "sentinel-" + strconv.Itoa(sentinel)
			if err := conn.WriteJSON(map[string]string{"type": "fuzz_sentinel", "envelope_id": again}); err != nil {
				t.Fatal(err)
			}
			for id := ""; id != again; {
				select {
				case id = <-sock.acks:
				case <-time.After(10 * time.Second):
					t.Fatal("socket mode: the new connection does not acknowledge")
				}
			}
		}
		_, _, _, stored := db.Counts()
		checkStored(t, stored)
		switch {
		case decodes && dropped && m.Type != "disconnect":
			t.Fatalf("socket mode: the connection closed after a well-formed message %q", body)
		case !decodes && dropped:
			t.Fatalf("socket mode: the connection closed after an undecodable message %q (it should be skipped)", body)
		case decodes && m.Type != "disconnect" && m.Type != "hello" && m.EnvelopeID != "":
			if len(acks) != 1 || acks[0] != m.EnvelopeID {
				t.Fatalf("socket mode: acks %q for envelope %q", acks, m.EnvelopeID)
			}
		case len(acks) != 0:
			t.Fatalf("socket mode: acks %q for a message without an envelope id to acknowledge (%q)", acks, body)
		}
	})
}
