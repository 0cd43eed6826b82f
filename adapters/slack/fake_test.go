package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/store/sqlite"
)

// fakeSlack serves the part of Slack's Web API the adapter calls, shaped
// as Slack documents the responses, and records every call. Failures can
// be queued per method (a 429 with Retry-After, or an API error).
type fakeSlack struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	calls    []fakeCall
	messages []*fakeMessage // posted, in order
	ts       int
	failures map[string][]fakeFailure
	replies  []map[string]any // conversations.replies messages
	users    map[string]map[string]any

	// Socket Mode: apps.connections.open hands out this URL.
	socketURL string
}

type fakeCall struct {
	Method string
	Form   map[string]string
	At     time.Time
}

type fakeMessage struct {
	Channel, Thread, TS, Text string
	Blocks                    string
	Metadata                  string
	Streamed                  []string // markdown_text of startStream, appendStream and stopStream
	Stopped                   bool
	Edits                     int
}

type fakeFailure struct {
	status     int
	err        string
	retryAfter int
}

func newFakeSlack(t testing.TB) *fakeSlack {
	f := &fakeSlack{t: t, failures: map[string][]fakeFailure{}, users: map[string]map[string]any{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSlack) URL() string { return f.srv.URL + "/api/" }

// fail queues a failure for the next call of method.
func (f *fakeSlack) fail(method string, status int, errCode string, retryAfter int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[method] = append(f.failures[method], fakeFailure{status, errCode, retryAfter})
}

func (f *fakeSlack) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.Method == method {
			n++
		}
	}
	return n
}

func (f *fakeSlack) callsOf(method string) []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeCall
	for _, c := range f.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// posted returns copies of the messages posted so far.
func (f *fakeSlack) posted() []fakeMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]fakeMessage, len(f.messages))
	for i, m := range f.messages {
		out[i] = *m
	}
	return out
}

func (f *fakeSlack) find(ts string) *fakeMessage {
	for _, m := range f.messages {
		if m.TS == ts {
			return m
		}
	}
	return nil
}

func (f *fakeSlack) serve(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	form := map[string]string{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		for k, v := range body {
			if s, ok := v.(string); ok {
				form[k] = s
			} else {
				b, _ := json.Marshal(v)
				form[k] = string(b)
			}
		}
	} else {
		_ = r.ParseForm()
		for k := range r.Form {
			form[k] = r.Form.Get(k)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fakeCall{Method: method, Form: form, At: time.Now()})
	if q := f.failures[method]; len(q) > 0 {
		fl := q[0]
		f.failures[method] = q[1:]
		if fl.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(fl.retryAfter))
		}
		if fl.status != http.StatusOK {
			w.WriteHeader(fl.status)
			return
		}
		writeJSON(w, map[string]any{"ok": false, "error": fl.err})
		return
	}
	ch := form["channel"]
	switch method {
	case "auth.test":
		writeJSON(w, map[string]any{"ok": true, "url": "https://test.slack.com/", "team": "Test", "user": "convosphere", "team_id": "T1", "user_id": "UBOT", "bot_id": "BBOT"})
	case "chat.postMessage", "chat.startStream":
		f.ts++
		m := &fakeMessage{Channel: ch, Thread: form["thread_ts"], TS: fmt.Sprintf("1700000000.%06d", f.ts), Text: form["text"], Blocks: form["blocks"], Metadata: form["metadata"]}
		if method == "chat.startStream" {
			m.Streamed = append(m.Streamed, form["markdown_text"])
		}
		f.messages = append(f.messages, m)
		writeJSON(w, map[string]any{"ok": true, "channel": ch, "ts": m.TS})
	case "chat.update", "chat.appendStream", "chat.stopStream":
		m := f.find(form["ts"])
		if m == nil {
			writeJSON(w, map[string]any{"ok": false, "error": "message_not_found"})
			return
		}
		switch method {
		case "chat.update":
			m.Text, m.Blocks = form["text"], form["blocks"]
			m.Edits++
		case "chat.appendStream":
			m.Streamed = append(m.Streamed, form["markdown_text"])
		case "chat.stopStream":
			if t := form["markdown_text"]; t != "" {
				m.Streamed = append(m.Streamed, t)
			}
			if b := form["blocks"]; b != "" {
				m.Blocks = b
			}
			m.Stopped = true
		}
		writeJSON(w, map[string]any{"ok": true, "channel": ch, "ts": m.TS})
	case "conversations.replies":
		var msgs []map[string]any
		for _, m := range f.replies {
			msgs = append(msgs, m)
		}
		for _, m := range f.messages {
			if m.Channel == ch && m.Thread == form["ts"] {
				msg := map[string]any{"type": "message", "user": "UBOT", "bot_id": "BBOT", "text": m.Text, "ts": m.TS, "thread_ts": m.Thread}
				if m.Metadata != "" {
					var md any
					_ = json.Unmarshal([]byte(m.Metadata), &md)
					msg["metadata"] = md
				}
				msgs = append(msgs, msg)
			}
		}
		writeJSON(w, map[string]any{"ok": true, "messages": msgs, "has_more": false})
	case "users.info":
		id := form["user"]
		u := f.users[id]
		if u == nil {
			u = map[string]any{"id": id, "name": strings.ToLower(id), "real_name": "User " + id, "profile": map[string]any{"display_name": "user-" + strings.ToLower(id), "real_name": "User " + id}}
		}
		writeJSON(w, map[string]any{"ok": true, "user": u})
	case "apps.connections.open":
		writeJSON(w, map[string]any{"ok": true, "url": f.socketURL})
	case "chat.postEphemeral":
		writeJSON(w, map[string]any{"ok": true, "message_ts": "1700000001.000001"})
	default: // reactions.add/remove, assistant.threads.*
		writeJSON(w, map[string]any{"ok": true})
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// MustStore opens a SQLite store in a temporary directory.
func MustStore(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(tb.TempDir(), "convosphere.db")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// MustAdapter returns an HTTP-mode adapter talking to f, with a fast
// update interval.
func MustAdapter(tb testing.TB, f *fakeSlack, store Store, mutate ...func(*Config)) *Adapter {
	tb.Helper()
	cfg := Config{SigningSecret: testSecret, BotToken: "xoxb-test", APIURL: f.URL(), UpdateInterval: 20 * time.Millisecond}
	for _, m := range mutate {
		m(&cfg)
	}
	a, err := New(cfg, store, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.Close() })
	return a
}

const testSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// fakeSocket is a Socket Mode server: each websocket connection gets
// hello, then whatever the test sends; acks come back on acks.
type fakeSocket struct {
	srv    *httptest.Server
	conns  chan *websocket.Conn
	closed chan *websocket.Conn // connections the client closed (or that broke)
	acks   chan string
}

func newFakeSocket(t testing.TB) *fakeSocket {
	s := &fakeSocket{conns: make(chan *websocket.Conn, 8), closed: make(chan *websocket.Conn, 8), acks: make(chan string, 64)}
	up := websocket.Upgrader{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		if err := c.WriteJSON(map[string]any{"type": "hello", "num_connections": 1, "debug_info": map[string]any{"host": "fake"}}); err != nil {
			c.Close()
			return
		}
		s.conns <- c
		defer func() { s.closed <- c }()
		for {
			var m struct {
				EnvelopeID string `json:"envelope_id"`
			}
			if err := c.ReadJSON(&m); err != nil {
				return
			}
			s.acks <- m.EnvelopeID
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *fakeSocket) URL() string { return "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/link" }

var _ = engine.PlatformSlack
