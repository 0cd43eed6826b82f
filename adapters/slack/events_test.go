package slack

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
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
)

func sign(secret string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%d:", ts)
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// request builds a signed request to path.
func request(path, contentType string, body []byte, ts int64, secret string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	r.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	r.Header.Set("X-Slack-Signature", sign(secret, ts, body))
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// eventBody is an Events API delivery as Slack documents it
// (https://api.slack.com/apis/events-api#callback-field).
func eventBody(eventID string, event map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{
		"token": "XXYYZZ", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
		"event_id": eventID, "event_time": 1700000000, "event": event,
		"authorizations":        []map[string]any{{"enterprise_id": nil, "team_id": "T1", "user_id": "UBOT", "is_bot": true}},
		"is_ext_shared_channel": false, "event_context": "4-abc",
	})
	return b
}

func mention(text, ts, thread string) map[string]any {
	ev := map[string]any{"type": "app_mention", "user": "U1", "text": text, "ts": ts, "channel": "C1", "event_ts": ts}
	if thread != "" {
		ev["thread_ts"] = thread
	}
	return ev
}

// inboxEvents claims and completes every event the inbox holds.
func inboxEvents(t *testing.T, db engine.Inbox) []*engine.InboxEvent {
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

// TestSignatures follows Bolt's signature tests: anything but a valid
// signature over the exact body, within five minutes either way, is 401
// and stores nothing.
func TestSignatures(t *testing.T) {
	f := newFakeSlack(t)
	db := MustStore(t)
	a := MustAdapter(t, f, db)
	h := a.Handler()
	now := time.Now().Unix()
	body := eventBody("Ev1", mention("<@UBOT> hello", "1700000000.000001", ""))
	reformatted := bytes.ReplaceAll(body, []byte(`,"`), []byte(`, "`))

	tests := []struct {
		name string
		req  func() *http.Request
		want int
	}{
		{"valid", func() *http.Request { return request("/slack/events", "application/json", body, now, testSecret) }, 200},
		{"stale timestamp", func() *http.Request { return request("/slack/events", "application/json", body, now-6*60, testSecret) }, 401},
		{"future timestamp", func() *http.Request { return request("/slack/events", "application/json", body, now+6*60, testSecret) }, 401},
		{"four minutes old", func() *http.Request { return request("/slack/events", "application/json", body, now-4*60, testSecret) }, 200},
		{"wrong secret", func() *http.Request { return request("/slack/events", "application/json", body, now, "another-secret") }, 401},
		{"body re-serialised after signing", func() *http.Request {
			r := request("/slack/events", "application/json", body, now, testSecret)
			r.Body = httpBody(reformatted)
			return r
		}, 401},
		{"missing signature", func() *http.Request {
			r := request("/slack/events", "application/json", body, now, testSecret)
			r.Header.Del("X-Slack-Signature")
			return r
		}, 401},
		{"missing timestamp", func() *http.Request {
			r := request("/slack/events", "application/json", body, now, testSecret)
			r.Header.Del("X-Slack-Request-Timestamp")
			return r
		}, 401},
		{"timestamp not a number", func() *http.Request {
			r := request("/slack/events", "application/json", body, now, testSecret)
			r.Header.Set("X-Slack-Request-Timestamp", "soon")
			return r
		}, 401},
		{"signature not hex", func() *http.Request {
			r := request("/slack/events", "application/json", body, now, testSecret)
			r.Header.Set("X-Slack-Signature", "v0=zzzz")
			return r
		}, 401},
		{"signature of another timestamp", func() *http.Request {
			r := request("/slack/events", "application/json", body, now, testSecret)
			r.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(now-1, 10))
			return r
		}, 401},
		{"interactions unsigned", func() *http.Request {
			r := request("/slack/interactions", "application/x-www-form-urlencoded", []byte("payload=%7B%7D"), now, testSecret)
			r.Header.Del("X-Slack-Signature")
			return r
		}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if w := serve(h, tt.req()); w.Code != tt.want {
				t.Errorf("status = %d, want %d (%s)", w.Code, tt.want, w.Body.String())
			}
		})
	}
	// Only the valid deliveries were stored, once (same event id).
	if evs := inboxEvents(t, db); len(evs) != 1 {
		t.Errorf("inbox holds %d events, want 1", len(evs))
	}
}

func httpBody(b []byte) *readCloser { return &readCloser{bytes.NewReader(b)} }

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func TestURLVerificationAndSSLCheck(t *testing.T) {
	f := newFakeSlack(t)
	db := MustStore(t)
	h := MustAdapter(t, f, db).Handler()
	now := time.Now().Unix()

	// https://api.slack.com/events/url_verification
	body := []byte(`{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`)
	w := serve(h, request("/slack/events", "application/json", body, now, testSecret))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"`) {
		t.Errorf("url_verification: %d %s", w.Code, w.Body.String())
	}

	form := []byte("ssl_check=1&token=XXYYZZ")
	if w := serve(h, request("/slack/events", "application/x-www-form-urlencoded", form, now, testSecret)); w.Code != 200 {
		t.Errorf("ssl_check: %d", w.Code)
	}
	unsigned := request("/slack/events", "application/x-www-form-urlencoded", form, now, testSecret)
	unsigned.Header.Set("X-Slack-Signature", "v0=00")
	if w := serve(h, unsigned); w.Code != 401 {
		t.Errorf("unsigned ssl_check: %d, want 401", w.Code)
	}

	// A signed ssl_check smuggling an interaction: answered, nothing recorded.
	tr := mustTrace(t, db)
	payload := feedbackPayload(tr.ID, actionFeedbackUp)
	smuggled := []byte("ssl_check=1&payload=" + url.QueryEscape(payload))
	if w := serve(h, request("/slack/interactions", "application/x-www-form-urlencoded", smuggled, now, testSecret)); w.Code != 200 {
		t.Errorf("ssl_check with payload: %d", w.Code)
	}
	if fb, err := db.FeedbackForTrace(context.Background(), tr.ID); err != nil || len(fb) != 0 {
		t.Errorf("feedback after a smuggled payload = %v, %v; want none", fb, err)
	}
	// An event body with ssl_check in the form does not reach the inbox.
	smuggledEvent := []byte("ssl_check=1&event=" + url.QueryEscape(string(eventBody("Ev9", mention("<@UBOT> hi", "1.1", "")))))
	serve(h, request("/slack/events", "application/x-www-form-urlencoded", smuggledEvent, now, testSecret))
	if evs := inboxEvents(t, db); len(evs) != 0 {
		t.Errorf("inbox holds %d events after ssl_check requests, want 0", len(evs))
	}
}

func TestBodyCap(t *testing.T) {
	f := newFakeSlack(t)
	h := MustAdapter(t, f, MustStore(t), func(c *Config) { c.MaxBodyBytes = 4096 }).Handler()
	body := eventBody("Ev1", mention("<@UBOT> "+strings.Repeat("x", 5000), "1.1", ""))
	if w := serve(h, request("/slack/events", "application/json", body, time.Now().Unix(), testSecret)); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d, want 413", w.Code)
	}
}

// TestReadBody: readBody answers as io.ReadAll over the capped body does,
// whatever the Content-Length says (right, missing, too small, too large,
// over the cap, over what it allocates up front).
func TestReadBody(t *testing.T) {
	const limit = 2 * presizeMax
	for _, size := range []int{0, 1, 511, 512, 513, presizeMax - 1, presizeMax, presizeMax + 1, limit - 1, limit, limit + 1, 3 * limit} {
		body := bytes.Repeat([]byte("x"), size)
		for _, contentLength := range []int64{-1, 0, 1, int64(size) - 1, int64(size), int64(size) + 1, presizeMax, limit, limit + 1} {
			capped := func() io.Reader { return http.MaxBytesReader(httptest.NewRecorder(), httpBody(body), limit) }
			want, wantErr := io.ReadAll(capped())
			got, err := readBody(capped(), contentLength, limit)
			if !bytes.Equal(got, want) || fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Errorf("size %d, Content-Length %d: read %d bytes (%v), io.ReadAll %d (%v)", size, contentLength, len(got), err, len(want), wantErr)
			}
		}
	}
}

func mustTrace(t *testing.T, db interface {
	SaveTrace(context.Context, *engine.Trace) error
}) *engine.Trace {
	t.Helper()
	tr := &engine.Trace{ID: engine.NewID(), Platform: engine.PlatformSlack, StartedAt: time.Now(), Passages: []engine.PassageRef{}, Outcome: engine.OutcomeAnswered}
	if err := db.SaveTrace(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	return tr
}

// feedbackPayload is a block_actions payload as Slack documents it
// (https://api.slack.com/reference/interaction-payloads/block-actions).
func feedbackPayload(traceID, actionID string) string {
	b, _ := json.Marshal(map[string]any{
		"type": "block_actions", "user": map[string]any{"id": "U1", "username": "ada", "team_id": "T1"},
		"api_app_id": "A1", "token": "XXYYZZ", "container": map[string]any{"type": "message", "message_ts": "1700000000.000002", "channel_id": "C1", "is_ephemeral": false},
		"trigger_id": "123.456.abc", "team": map[string]any{"id": "T1", "domain": "test"},
		"channel":      map[string]any{"id": "C1", "name": "general"},
		"message":      map[string]any{"type": "message", "ts": "1700000000.000002", "thread_ts": "1700000000.000001", "text": "answer"},
		"response_url": "https://hooks.slack.com/actions/T1/1/abc",
		"actions": []map[string]any{{"action_id": actionID, "block_id": "feedback", "value": traceID, "type": "button", "action_ts": "1700000005.000001",
			"text": map[string]any{"type": "plain_text", "text": "👍 Helpful", "emoji": true}}},
	})
	return string(b)
}

func TestFeedbackButtons(t *testing.T) {
	f := newFakeSlack(t)
	db := MustStore(t)
	h := MustAdapter(t, f, db).Handler()
	tr := mustTrace(t, db)
	now := time.Now().Unix()
	for _, action := range []string{actionFeedbackUp, actionFeedbackDown} {
		body := []byte("payload=" + url.QueryEscape(feedbackPayload(tr.ID, action)))
		if w := serve(h, request("/slack/interactions", "application/x-www-form-urlencoded", body, now, testSecret)); w.Code != 200 {
			t.Fatalf("%s: status %d", action, w.Code)
		}
	}
	fb, err := db.FeedbackForTrace(context.Background(), tr.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The user changed their mind: one rating, the last.
	if len(fb) != 1 || fb[0].Rating != engine.RatingDown || fb[0].UserID != "U1" || fb[0].Platform != engine.PlatformSlack {
		t.Errorf("feedback = %+v, want one thumbs-down by U1", fb)
	}
	// A button for a trace that does not exist is acknowledged, not stored.
	body := []byte("payload=" + url.QueryEscape(feedbackPayload("no-such-trace", actionFeedbackUp)))
	if w := serve(h, request("/slack/interactions", "application/x-www-form-urlencoded", body, now, testSecret)); w.Code != 200 {
		t.Errorf("unknown trace: status %d", w.Code)
	}
}

// TestEventRouting checks which events reach the inbox, per event type,
// sender and the channel's trigger policy.
func TestEventRouting(t *testing.T) {
	ctx := context.Background()
	f := newFakeSlack(t)
	db := MustStore(t)
	for _, as := range []*engine.Assistant{
		{Name: "all", Bindings: []engine.Binding{{Platform: engine.PlatformSlack, ChannelID: "CALL", Trigger: engine.TriggerAll}}},
		{Name: "mention", Bindings: []engine.Binding{{Platform: engine.PlatformSlack, ChannelID: "CMENTION", Trigger: engine.TriggerMention}}},
	} {
		if err := db.CreateAssistant(ctx, as); err != nil {
			t.Fatal(err)
		}
	}
	known := &engine.Conversation{Platform: engine.PlatformSlack, ChannelID: "C1", ThreadID: "1700000000.000100"}
	if err := db.EnsureConversation(ctx, known); err != nil {
		t.Fatal(err)
	}
	knownMention := &engine.Conversation{Platform: engine.PlatformSlack, ChannelID: "CMENTION", ThreadID: "1700000000.000100"}
	if err := db.EnsureConversation(ctx, knownMention); err != nil {
		t.Fatal(err)
	}
	h := MustAdapter(t, f, db).Handler()

	msg := func(channel, channelType, text, ts, thread string, extra map[string]any) map[string]any {
		ev := map[string]any{"type": "message", "user": "U1", "text": text, "ts": ts, "channel": channel, "channel_type": channelType, "event_ts": ts}
		if thread != "" {
			ev["thread_ts"] = thread
		}
		for k, v := range extra {
			ev[k] = v
		}
		return ev
	}
	tests := []struct {
		name   string
		event  map[string]any
		stored bool
		text   string
		thread string
		dm     bool
	}{
		{"mention in a channel", mention("<@UBOT> how do I deploy?", "1700000000.000001", ""), true, "how do I deploy?", "1700000000.000001", false},
		{"mention in a thread", mention("<@UBOT> summarize this", "1700000000.000003", "1700000000.000002"), true, "summarize this", "1700000000.000002", false},
		{"mention by a bot", map[string]any{"type": "app_mention", "user": "U2", "bot_id": "B2", "text": "<@UBOT> hi", "ts": "1.2", "channel": "C1"}, false, "", "", false},
		{"edited mention", map[string]any{"type": "app_mention", "user": "U1", "text": "<@UBOT> hi", "ts": "1.3", "channel": "C1", "edited": map[string]any{"user": "U1", "ts": "1.4"}}, false, "", "", false},
		{"direct message", msg("D1", "im", "what is our SLA?", "1700000000.000010", "", nil), true, "what is our SLA?", "1700000000.000010", true},
		{"direct message in a thread", msg("D1", "im", "and for Europe?", "1700000000.000012", "1700000000.000010", nil), true, "and for Europe?", "1700000000.000010", true},
		{"own message", map[string]any{"type": "message", "user": "UBOT", "text": "answer", "ts": "1.5", "channel": "D1", "channel_type": "im"}, false, "", "", false},
		{"bot message", msg("D1", "im", "beep", "1.6", "", map[string]any{"bot_id": "B9", "subtype": "bot_message"}), false, "", "", false},
		{"edit", msg("D1", "im", "x", "1.7", "", map[string]any{"subtype": "message_changed"}), false, "", "", false},
		{"channel message mentioning the bot (app_mention answers it)", msg("C1", "channel", "<@UBOT> hi", "1.8", "", nil), false, "", "", false},
		{"plain channel message", msg("C1", "channel", "lunch?", "1.9", "", nil), false, "", "", false},
		{"follow-up in the bot's thread", msg("C1", "channel", "and staging?", "1700000000.000101", "1700000000.000100", nil), true, "and staging?", "1700000000.000100", false},
		{"follow-up in another thread", msg("C1", "channel", "and staging?", "1700000000.000201", "1700000000.000200", nil), false, "", "", false},
		{"follow-up in a mention-only channel", msg("CMENTION", "channel", "and staging?", "1700000000.000101", "1700000000.000100", nil), false, "", "", false},
		{"every message in an all channel", msg("CALL", "channel", "deploy failed again", "1700000000.000300", "", nil), true, "deploy failed again", "1700000000.000300", false},
		{"markup becomes text", mention("<@UBOT> ask <@U7|ada> about <https://x.example/a|the doc> in <#C9|ops> &amp; <!here>", "1700000000.000400", ""), true, "ask @ada about the doc (https://x.example/a) in #ops & @here", "1700000000.000400", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("Ev%03d", i)
			if w := serve(h, request("/slack/events", "application/json", eventBody(id, tt.event), time.Now().Unix(), testSecret)); w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body.String())
			}
			evs := inboxEvents(t, db)
			if !tt.stored {
				if len(evs) != 0 {
					t.Fatalf("stored %d events, want none", len(evs))
				}
				return
			}
			if len(evs) != 1 {
				t.Fatalf("stored %d events, want 1", len(evs))
			}
			var m engine.Message
			if err := json.Unmarshal(evs[0].Payload, &m); err != nil {
				t.Fatal(err)
			}
			if m.ID != id || m.Text != tt.text || m.Thread.ID != tt.thread || m.Thread.Channel.DM != tt.dm || m.User.ID != "U1" || evs[0].EventID != id {
				t.Errorf("stored %+v, want text %q in thread %s (dm %v)", m, tt.text, tt.thread, tt.dm)
			}
		})
	}
}

// TestDuplicateDeliveries delivers one event four times, two of them at
// once: every delivery is acknowledged, one event is stored.
func TestDuplicateDeliveries(t *testing.T) {
	f := newFakeSlack(t)
	db := MustStore(t)
	h := MustAdapter(t, f, db).Handler()
	body := eventBody("EvDup", mention("<@UBOT> once please", "1700000000.000001", ""))
	deliver := func(retry int) int {
		r := request("/slack/events", "application/json", body, time.Now().Unix(), testSecret)
		if retry > 0 {
			r.Header.Set("X-Slack-Retry-Num", strconv.Itoa(retry))
			r.Header.Set("X-Slack-Retry-Reason", "http_timeout")
		}
		return serve(h, r).Code
	}
	codes := make([]int, 4)
	codes[0] = deliver(0)
	var wg sync.WaitGroup
	for i := 1; i <= 2; i++ {
		wg.Go(func() { codes[i] = deliver(i) })
	}
	wg.Wait()
	codes[3] = deliver(3)
	for i, c := range codes {
		if c != 200 {
			t.Errorf("delivery %d: status %d, want 200", i, c)
		}
	}
	if evs := inboxEvents(t, db); len(evs) != 1 {
		t.Errorf("stored %d events, want 1", len(evs))
	}
}

// failingInbox fails to store, as a database that is down would.
type failingInbox struct{ Store }

func (failingInbox) Enqueue(context.Context, *engine.InboxEvent) (bool, error) {
	return false, engine.Errorf(engine.EUNAVAILABLE, "database is down")
}

func TestStoreFailureAsksForRedelivery(t *testing.T) {
	f := newFakeSlack(t)
	h := MustAdapter(t, f, failingInbox{MustStore(t)}).Handler()
	body := eventBody("EvDown", mention("<@UBOT> hello", "1.1", ""))
	if w := serve(h, request("/slack/events", "application/json", body, time.Now().Unix(), testSecret)); w.Code < 500 {
		t.Errorf("status = %d, want 5xx so that Slack retries", w.Code)
	}
}

func TestPlainText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"<@UBOT> hi", "hi"},
		{"hi <@UBOT>", "hi"},
		{"<@U1> and <@U2|bob>", "@U1 and @bob"},
		{"<!channel> <!subteam^S1|@ops> <!date^1392734382^{date}|Feb 18>", "@channel @ops Feb 18"},
		{"<mailto:a@b.c|a@b.c> <https://x.y>", "a@b.c https://x.y"},
		{"1 &lt; 2 &amp;&amp; 3 &gt; 2 &copy;", "1 < 2 && 3 > 2 &copy;"},
	}
	for _, tt := range tests {
		if got := plainText(tt.in, "UBOT"); got != tt.want {
			t.Errorf("plainText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	base := Config{BotToken: "xoxb-1", SigningSecret: "s", Mode: ModeHTTP, APIURL: DefaultAPIURL, PartLimit: 3000, MaxBodyBytes: 1 << 20}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"valid", func(*Config) {}, ""},
		{"no bot token", func(c *Config) { c.BotToken = "" }, "slack.bot_token"},
		{"http without secret", func(c *Config) { c.SigningSecret = "" }, "slack.signing_secret"},
		{"socket without app token", func(c *Config) { c.Mode = ModeSocket }, "slack.app_token"},
		{"unknown mode", func(c *Config) { c.Mode = "rtm" }, "slack.mode"},
		{"bad api url", func(c *Config) { c.APIURL = "ftp://x" }, "slack.api_url"},
	}
	for _, tt := range tests {
		c := base
		tt.mutate(&c)
		err := c.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: Validate() = %v, want error naming %q", tt.name, err, tt.want)
		}
	}
}
