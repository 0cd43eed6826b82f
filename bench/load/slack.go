package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The bench's Slack workspace.
const (
	slackTeam    = "T0LOAD"
	slackBotUser = "U0BOT"
	slackBotID   = "B0BOT"
)

// slackFake is the Slack Web API the bot calls: chat.postMessage and
// chat.update (the answer posted, then edited as it streams; chat.startStream
// answers unknown_method, as for an app without streaming), reactions,
// users.info, and conversations.replies, which returns the thread's
// messages with their metadata as Slack does (a retried event finds an
// answer an earlier attempt posted). Each answer carries message metadata
// {event_type: convosphere_answer, event_payload: {event_id, part}}: that
// is how the fake attributes it to the event it answers, and an edit to
// the message it edits.
type slackFake struct {
	URL    string // the Web API base, ending in /api/
	srv    *http.Server
	ledger atomic.Pointer[ledger]
	baseTS int64

	mu      sync.Mutex
	seq     int64
	owner   map[string]string     // message ts → event id
	threads map[string][]slackMsg // channel/thread_ts → the bot's messages
	calls   map[string]int
}

type slackMsg struct {
	TS       string         `json:"ts"`
	Type     string         `json:"type"`
	User     string         `json:"user"`
	BotID    string         `json:"bot_id"`
	Text     string         `json:"text"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

func startSlackFake() (*slackFake, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("slack fake: %w", err)
	}
	f := &slackFake{URL: "http://" + ln.Addr().String() + "/api/", baseTS: time.Now().Unix()}
	f.reset(newLedger())
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

func (f *slackFake) Close() error { return f.srv.Close() }

// reset forgets the messages and calls, and reports to l from now on.
func (f *slackFake) reset(l *ledger) {
	f.mu.Lock()
	f.owner, f.threads, f.calls = map[string]string{}, map[string][]slackMsg{}, map[string]int{}
	f.mu.Unlock()
	f.ledger.Store(l)
}

// Calls counts the Web API calls per method since the last reset.
func (f *slackFake) Calls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.calls)
}

func (f *slackFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method, ok := strings.CutPrefix(r.URL.Path, "/api/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	params := map[string]string{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		for k, v := range body {
			switch v := v.(type) {
			case string:
				params[k] = v
			default:
				b, _ := json.Marshal(v)
				params[k] = string(b)
			}
		}
	} else {
		_ = r.ParseForm()
		for k, v := range r.Form {
			params[k] = v[0]
		}
	}
	now := time.Now()
	f.mu.Lock()
	f.calls[method]++
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	switch method {
	case "auth.test":
		fmt.Fprintf(w, `{"ok":true,"url":"https://load.slack.com/","team":"Load","user":"convosphere","team_id":%q,"user_id":%q,"bot_id":%q}`,
			slackTeam, slackBotUser, slackBotID)
	case "chat.startStream":
		fmt.Fprint(w, `{"ok":false,"error":"unknown_method"}`)
	case "chat.postMessage":
		f.postMessage(w, params, now)
	case "chat.update":
		ts := params["ts"]
		f.mu.Lock()
		event := f.owner[ts]
		f.mu.Unlock()
		if event != "" {
			f.ledger.Load().shown(platSlack, event, params["text"], now)
		}
		fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q,"text":""}`, params["channel"], ts)
	case "conversations.replies":
		f.mu.Lock()
		msgs := append([]slackMsg(nil), f.threads[params["channel"]+"/"+params["ts"]]...)
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "messages": msgs, "has_more": false})
	case "users.info":
		fmt.Fprintf(w, `{"ok":true,"user":{"id":%q,"name":"asker","real_name":"Load Asker","profile":{"display_name":"asker","real_name":"Load Asker"}}}`, params["user"])
	default: // reactions.add, reactions.remove, assistant.threads.setStatus
		fmt.Fprint(w, `{"ok":true}`)
	}
}

func (f *slackFake) postMessage(w http.ResponseWriter, params map[string]string, now time.Time) {
	var md struct {
		EventType string `json:"event_type"`
		Payload   struct {
			EventID string  `json:"event_id"`
			Part    float64 `json:"part"`
		} `json:"event_payload"`
	}
	_ = json.Unmarshal([]byte(params["metadata"]), &md)
	var meta map[string]any
	_ = json.Unmarshal([]byte(params["metadata"]), &meta)
	f.mu.Lock()
	f.seq++
	ts := fmt.Sprintf("%d.%06d", f.baseTS+f.seq/1_000_000, f.seq%1_000_000)
	event := ""
	if md.EventType == "convosphere_answer" {
		event = md.Payload.EventID
		f.owner[ts] = event
	}
	key := params["channel"] + "/" + params["thread_ts"]
	f.threads[key] = append(f.threads[key], slackMsg{TS: ts, Type: "message", User: slackBotUser, BotID: slackBotID, Metadata: meta})
	f.mu.Unlock()
	l := f.ledger.Load()
	if event == "" {
		l.strayMessage(platSlack)
	} else {
		l.message(platSlack, event, now)
		l.shown(platSlack, event, params["text"], now)
	}
	fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q}`, params["channel"], ts)
}

// slackClient delivers signed Events API requests to the bot.
type slackClient struct {
	url    string // the bot's POST /slack/events
	secret string
	http   *http.Client
	seq    atomic.Int64
	baseTS int64
}

func newSlackClient(botURL, secret string, hc *http.Client) *slackClient {
	return &slackClient{url: botURL + "/slack/events", secret: secret, http: hc, baseTS: time.Now().Unix() - 86400}
}

// newTS is a message ts no other message of the run has.
func (c *slackClient) newTS() string {
	n := c.seq.Add(1)
	return fmt.Sprintf("%d.%06d", c.baseTS+n/1_000_000, n%1_000_000)
}

// mention is an app_mention event_callback body (Slack's documented
// shape): user asks text in channel, in thread when it is not "".
func mention(eventID, user, channel, ts, thread, text string) []byte {
	ev := map[string]any{"type": "app_mention", "user": user, "text": "<@" + slackBotUser + "> " + text,
		"ts": ts, "channel": channel, "event_ts": ts}
	if thread != "" {
		ev["thread_ts"] = thread
	}
	body, _ := json.Marshal(map[string]any{
		"token": "load-verification-token", "team_id": slackTeam, "api_app_id": "A0LOAD", "type": "event_callback",
		"event_id": eventID, "event_time": time.Now().Unix(), "event": ev, "event_context": "4-load",
		"authorizations":        []map[string]any{{"enterprise_id": nil, "team_id": slackTeam, "user_id": slackBotUser, "is_bot": true, "is_enterprise_install": false}},
		"is_ext_shared_channel": false,
	})
	return body
}

// deliver POSTs body signed, as delivery number retry (0 for the first;
// Slack marks the others with X-Slack-Retry-Num), and reports the time to
// the whole answer and whether it was 2xx.
func (c *slackClient) deliver(ctx context.Context, body []byte, retry int) (time.Duration, bool) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(c.secret))
	io.WriteString(mac, "v0:"+ts+":")
	mac.Write(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return 0, false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	if retry > 0 {
		req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(retry))
		req.Header.Set("X-Slack-Retry-Reason", "http_timeout")
	}
	return roundTrip(c.http, req)
}

// roundTrip sends req and reads the whole answer: its latency, and
// whether it was 2xx.
func roundTrip(hc *http.Client, req *http.Request) (time.Duration, bool) {
	t0 := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return time.Since(t0), false
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(t0), err == nil && resp.StatusCode/100 == 2
}
