package discord

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/store/redis/redistest"
	"github.com/convosphere/convosphere/store/sqlite"
)

// fakeGateway speaks Discord's gateway protocol
// (https://discord.com/developers/docs/events/gateway): Hello, then READY
// after Identify (or RESUMED after Resume), then whatever the test sends;
// closeWith makes it close the next connection with a code after Identify.
// It also serves GET /api/v10/gateway and the REST calls the replies make.
type fakeGateway struct {
	srv       *httptest.Server
	conns     atomic.Int32
	closeWith atomic.Int32
	mu        sync.Mutex
	current   *websocket.Conn
	identify  []map[string]any
	rest      []string
	bodies    []string // of the REST calls, in order
}

func newFakeGateway(t *testing.T) *fakeGateway {
	g := &fakeGateway{}
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v10/gateway", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"url":"ws://%s/ws"}`, r.Host)
	})
	mux.HandleFunc("/ws/", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		g.conns.Add(1)
		defer c.Close()
		_ = c.WriteJSON(map[string]any{"op": 10, "d": map[string]any{"heartbeat_interval": 45000}})
		var id map[string]any
		if err := c.ReadJSON(&id); err != nil {
			return
		}
		g.mu.Lock()
		g.identify = append(g.identify, id)
		g.mu.Unlock()
		if code := g.closeWith.Load(); code != 0 {
			_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(int(code), "closed by the test"))
			return
		}
		_ = c.WriteJSON(map[string]any{"op": 0, "s": 1, "t": "READY", "d": map[string]any{
			"v": 10, "session_id": "S1", "resume_gateway_url": "ws://" + r.Host + "/ws",
			"user": map[string]any{"id": "BOT", "username": "convosphere", "bot": true}, "guilds": []any{},
			"application": map[string]any{"id": "APP1"},
		}})
		g.mu.Lock()
		g.current = c
		g.mu.Unlock()
		for {
			if _, _, err := c.ReadMessage(); err != nil { // heartbeats
				return
			}
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		g.rest = append(g.rest, r.Method+" "+r.URL.Path)
		g.bodies = append(g.bodies, string(body))
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"reply-1","channel_id":"C1"}`)
	})
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

// dispatch sends an event on the open connection.
func (g *fakeGateway) dispatch(t *testing.T, typ string, seq int, d any) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.mu.Lock()
		c := g.current
		g.mu.Unlock()
		if c != nil {
			if err := c.WriteJSON(map[string]any{"op": 0, "s": seq, "t": typ, "d": d}); err != nil {
				t.Fatal(err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no gateway connection")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func gatewayAdapter(t *testing.T, g *fakeGateway) (*Adapter, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "convosphere.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, err := New(Config{ApplicationID: "APP1", BotToken: "bot-token", Mode: ModeGateway, APIURL: g.srv.URL + "/api/v10",
		Locker: &engine.LocalLocker{}}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Start(context.Background())
	t.Cleanup(func() { a.Close() })
	return a, db
}

func message(id, channel, guild, author, content string, bot bool) map[string]any {
	m := map[string]any{"id": id, "channel_id": channel, "content": content, "type": 0, "timestamp": "2026-11-26T12:00:00.000000+00:00",
		"author": map[string]any{"id": author, "username": "user-" + author, "bot": bot}, "mentions": []any{}}
	if guild != "" {
		m["guild_id"] = guild
	}
	return m
}

func waitInbox(t *testing.T, db *sqlite.DB, want int) []*engine.InboxEvent {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var got []*engine.InboxEvent
	for time.Now().Before(deadline) {
		got = append(got, inbox(t, db)...)
		if len(got) >= want {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // anything more would be a bug
	return append(got, inbox(t, db)...)
}

// TestGatewayMessages: mentions and DMs are stored, with the bot's mention
// removed; other messages, bots' and the bot's own are not.
func TestGatewayMessages(t *testing.T) {
	g := newFakeGateway(t)
	a, db := gatewayAdapter(t, g)
	g.dispatch(t, "MESSAGE_CREATE", 2, message("M1", "C1", "G1", "U1", "<@BOT> how do I deploy?", false))
	g.dispatch(t, "MESSAGE_CREATE", 3, message("M2", "D1", "", "U1", "and in a DM?", false))
	g.dispatch(t, "MESSAGE_CREATE", 4, message("M3", "C1", "G1", "U1", "lunch anyone?", false))
	g.dispatch(t, "MESSAGE_CREATE", 5, message("M4", "C1", "G1", "U2", "<@BOT> beep", true))
	g.dispatch(t, "MESSAGE_CREATE", 6, message("M5", "C1", "G1", "BOT", "<@BOT> my own answer", false))
	evs := waitInbox(t, db, 2)
	if len(evs) != 2 {
		t.Fatalf("stored %d events, want the mention and the DM", len(evs))
	}
	texts := map[string]string{}
	for _, ev := range evs {
		var m engine.Message
		_ = json.Unmarshal(ev.Payload, &m)
		texts[ev.EventID] = m.Text
	}
	if texts["M1"] != "how do I deploy?" || texts["M2"] != "and in a DM?" {
		t.Errorf("stored %v", texts)
	}
	if err := a.Ready(); err != nil {
		t.Errorf("Ready = %v while connected", err)
	}
	if len(g.identify) == 0 || !strings.Contains(fmt.Sprint(g.identify[0]), "bot-token") {
		t.Errorf("identify %v", g.identify)
	}
}

// TestGatewayFatalClose: a fatal close code (4004, 4010–4014) ends the
// session for good: no reconnect loop, and Ready says why.
func TestGatewayFatalClose(t *testing.T) {
	for _, code := range []int{4004, 4014} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			g := newFakeGateway(t)
			g.closeWith.Store(int32(code))
			a, _ := gatewayAdapter(t, g)
			time.Sleep(1500 * time.Millisecond) // a reconnect would come within a second
			if n := g.conns.Load(); n != 1 {
				t.Errorf("%d connections, want 1 (no reconnect after %d)", n, code)
			}
			if err := a.Ready(); err == nil || !strings.Contains(err.Error(), fmt.Sprint(code)) {
				t.Errorf("Ready = %v, want the close code", err)
			}
			st, err := a.store.PlatformStatuses(context.Background())
			if err != nil || len(st) != 1 || st[0].State != engine.StatusFailed || !strings.Contains(st[0].Detail, fmt.Sprint(code)) {
				t.Errorf("status for the console %+v, %v; want failed with the code", st, err)
			}
		})
	}
}

// TestGatewayReconnects: an ordinary close is followed by a new session.
func TestGatewayReconnects(t *testing.T) {
	g := newFakeGateway(t)
	_, db := gatewayAdapter(t, g)
	g.dispatch(t, "MESSAGE_CREATE", 2, message("M1", "D1", "", "U1", "first", false))
	waitInbox(t, db, 1)
	g.mu.Lock()
	c := g.current
	g.current = nil
	g.mu.Unlock()
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "unknown error"))
	_ = c.Close()
	g.dispatch(t, "MESSAGE_CREATE", 3, message("M2", "D1", "", "U1", "after the reconnect", false))
	if evs := waitInbox(t, db, 1); len(evs) != 1 || evs[0].EventID != "M2" {
		t.Errorf("after reconnecting, stored %d events", len(evs))
	}
	if n := g.conns.Load(); n < 2 {
		t.Errorf("%d connections, want a reconnect", n)
	}
}

// TestGatewayLeaderLock: a second adapter for the same application waits
// for the lock instead of opening a second session, and takes over.
func TestGatewayLeaderLock(t *testing.T) {
	lockers := []struct {
		name string
		new  func(t *testing.T) engine.Locker
	}{
		{"in-process", func(*testing.T) engine.Locker { return &engine.LocalLocker{} }},
		{"redis", func(t *testing.T) engine.Locker { return redistest.MustClient(t, "").Locker(0) }},
	}
	for _, tt := range lockers {
		t.Run(tt.name, func(t *testing.T) { testGatewayLeaderLock(t, tt.new(t)) })
	}
}

func testGatewayLeaderLock(t *testing.T, lock engine.Locker) {
	g := newFakeGateway(t)
	open := func() *Adapter {
		db, _ := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "c.db")})
		t.Cleanup(func() { db.Close() })
		a, err := New(Config{ApplicationID: "APP1", BotToken: "bot-token", Mode: ModeGateway, APIURL: g.srv.URL + "/api/v10", Locker: lock}, db, nil)
		if err != nil {
			t.Fatal(err)
		}
		a.Start(context.Background())
		t.Cleanup(func() { a.Close() })
		return a
	}
	first := open()
	second := open()
	time.Sleep(500 * time.Millisecond)
	if n := g.conns.Load(); n != 1 {
		t.Errorf("%d gateway sessions for one application, want 1", n)
	}
	// The waiting replica is a ready standby (a rolling update must not
	// stall on it), and takes over when the holder stops.
	if err := second.Ready(); err != nil {
		t.Errorf("the standby replica is not ready: %v", err)
	}
	first.Close()
	deadline := time.Now().Add(10 * time.Second)
	for g.conns.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := g.conns.Load(); n != 2 {
		t.Fatalf("%d gateway sessions after the holder stopped, want the standby's second one", n)
	}
}

// TestGatewayInteraction: /ask over the gateway is stored and answered
// with a deferred response through the REST callback.
func TestGatewayInteraction(t *testing.T) {
	g := newFakeGateway(t)
	_, db := gatewayAdapter(t, g)
	var in map[string]any
	_ = json.Unmarshal(askBody("I1", "How do I deploy?"), &in)
	g.dispatch(t, "INTERACTION_CREATE", 2, in)
	if evs := waitInbox(t, db, 1); len(evs) != 1 || evs[0].EventID != "I1" {
		t.Fatalf("stored %d events, want the question", len(evs))
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		g.mu.Lock()
		rest := strings.Join(g.rest, "\n")
		g.mu.Unlock()
		if strings.Contains(rest, "POST /api/v10/interactions/I1/TOKEN-I1/callback") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("no deferred response through the callback: %v", g.rest)
}

// TestGatewayApprovalClick: an approval button clicked over the gateway is
// decided and answered through the REST callback with the prompt updated.
func TestGatewayApprovalClick(t *testing.T) {
	g := newFakeGateway(t)
	_, db := gatewayAdapter(t, g)
	ctx := context.Background()
	ap := &engine.ToolApproval{AssistantID: "A1", AssistantName: "ops", ConversationID: "CV1", TraceID: "T1", EventID: "M0",
		Thread: engine.Thread{Channel: engine.Channel{Platform: engine.PlatformDiscord, ID: "C1"}, ID: "u:U1"},
		User:   engine.ChatUser{ID: "U1", Name: "Mason"}, Calls: []engine.ToolCall{{ID: "c1", Name: "create_ticket", Arguments: `{}`}},
		State: []byte(`{}`), Status: engine.ApprovalPending, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := db.CreateApproval(ctx, ap); err != nil {
		t.Fatal(err)
	}
	var in map[string]any
	_ = json.Unmarshal(buttonBody("B1", "convosphere:approve:"+ap.ID, "U1", "prompt\n⏳ _Waiting…_"), &in)
	g.dispatch(t, "INTERACTION_CREATE", 2, in)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		g.mu.Lock()
		var body string
		for i, call := range g.rest {
			if call == "POST /api/v10/interactions/B1/TOKEN-B1/callback" {
				body = g.bodies[i]
			}
		}
		g.mu.Unlock()
		if body != "" {
			if !strings.Contains(body, `"type":7`) || !strings.Contains(body, "Approved by") || !strings.Contains(body, `"components":[]`) {
				t.Errorf("callback %s, want the prompt updated", body)
			}
			if got, err := db.ApprovalByID(ctx, ap.ID); err != nil || got.Status != engine.ApprovalApproved {
				t.Errorf("approval %+v, %v", got, err)
			}
			if evs := waitInbox(t, db, 1); len(evs) != 1 || evs[0].EventID != engine.ApprovalEventID(ap.ID) {
				t.Errorf("inbox %+v, want the resume event", evs)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("no response through the callback: %v", g.rest)
}
