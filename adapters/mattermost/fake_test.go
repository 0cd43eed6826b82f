package mattermost

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

// fakeServer speaks the part of Mattermost's API v4 the adapter uses:
// REST (me, posts, teams, channels, posts since) and the websocket, with
// the reliable-websocket protocol: each connection has an id, events carry
// a sequence, and a client reconnecting with connection_id and
// sequence_number gets the events it missed replayed, unless the server
// "lost its buffer" (then it answers hello with a new connection id). It
// stands in for what a real server cannot be made to do on demand.
type fakeServer struct {
	srv *httptest.Server

	mu         sync.Mutex
	connID     string
	seq        int64
	buffer     []map[string]any // events sent on connID, for replay
	conn       *websocket.Conn
	conns      int
	loseBuffer bool
	posts      []map[string]any // posts created by the bot, in order
	patches    []map[string]string
	channel    map[string]any // the channel backfill reads
	since      []map[string]any
}

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{connID: "conn-1"}
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v4/users/me", func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Authorization"), "Bearer bot-token") {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"id":"api.context.session_expired.app_error","message":"Invalid or expired session","status_code":401}`)
			return
		}
		fmt.Fprint(w, `{"id":"BOT","username":"helper","is_bot":true}`)
	})
	mux.HandleFunc("GET /api/v4/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"id":%q,"username":"ada","nickname":"Ada L.","email":"ada@example.com"}`, r.PathValue("id"))
	})
	mux.HandleFunc("POST /api/v4/posts", func(w http.ResponseWriter, r *http.Request) {
		var p map[string]any
		_ = json.NewDecoder(r.Body).Decode(&p)
		f.mu.Lock()
		p["id"] = "reply-" + strconv.Itoa(len(f.posts)+1)
		f.posts = append(f.posts, p)
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(p)
	})
	mux.HandleFunc("GET /api/v4/posts/{id}/thread", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		posts := map[string]any{}
		order := []string{}
		for _, p := range f.posts {
			if p["root_id"] == r.PathValue("id") {
				id := p["id"].(string)
				posts[id] = p
				order = append(order, id)
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"order": order, "posts": posts})
	})
	mux.HandleFunc("PUT /api/v4/posts/{id}/patch", func(w http.ResponseWriter, r *http.Request) {
		var p map[string]any
		_ = json.NewDecoder(r.Body).Decode(&p)
		f.mu.Lock()
		msg, _ := p["message"].(string)
		f.patches = append(f.patches, map[string]string{"id": r.PathValue("id"), "message": msg})
		if post := f.find(r.PathValue("id")); post != nil {
			// The patch's props replace the post's, as Mattermost does.
			post["message"] = msg
			if props, ok := p["props"]; ok {
				post["props"] = props
			}
		}
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"id": r.PathValue("id"), "message": msg})
	})
	mux.HandleFunc("GET /api/v4/posts/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		post := f.find(r.PathValue("id"))
		if post == nil {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"id":"app.post.get.app_error","message":"Unable to get the post.","status_code":404}`)
			return
		}
		_ = json.NewEncoder(w).Encode(post)
	})
	mux.HandleFunc("GET /api/v4/users/{user}/teams", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `[{"id":"T1","name":"team"}]`)
	})
	mux.HandleFunc("GET /api/v4/users/{user}/teams/{team}/channels", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		list := []any{}
		if f.channel != nil {
			list = append(list, f.channel)
		}
		_ = json.NewEncoder(w).Encode(list)
	})
	mux.HandleFunc("GET /api/v4/channels/{channel}/posts", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		posts := map[string]any{}
		order := []string{}
		for _, p := range f.since {
			id := p["id"].(string)
			posts[id] = p
			order = append([]string{id}, order...) // newest first
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"order": order, "posts": posts})
	})
	mux.HandleFunc("/api/v4/websocket", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		var auth map[string]any
		if err := c.ReadJSON(&auth); err != nil || auth["action"] != "authentication_challenge" {
			c.Close()
			return
		}
		f.mu.Lock()
		f.conns++
		reqConn := r.URL.Query().Get("connection_id")
		reqSeq, _ := strconv.ParseInt(r.URL.Query().Get("sequence_number"), 10, 64)
		var replay []map[string]any
		if reqConn == f.connID && !f.loseBuffer {
			for _, ev := range f.buffer {
				if ev["seq"].(int64) >= reqSeq {
					replay = append(replay, ev)
				}
			}
		} else if reqConn != "" {
			f.connID = fmt.Sprintf("conn-%d", f.conns)
			f.buffer, f.seq = nil, 0
		}
		f.loseBuffer = false
		hello := map[string]any{"event": "hello", "data": map[string]any{"connection_id": f.connID, "server_version": "6.7.2"}, "broadcast": map[string]any{}, "seq": f.seq}
		f.seq++
		_ = c.WriteJSON(hello)
		for _, ev := range replay {
			_ = c.WriteJSON(ev)
		}
		f.conn = c
		f.mu.Unlock()
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// post sends a "posted" event, or, when dropped is set, only buffers it
// (the client is away and will ask for it).
func (f *fakeServer) post(t *testing.T, id, channel, channelType, user, message, root string, mentions []string, dropped bool) {
	t.Helper()
	post, _ := json.Marshal(map[string]any{"id": id, "channel_id": channel, "user_id": user, "message": message, "root_id": root,
		"create_at": time.Now().UnixMilli(), "type": ""})
	ment, _ := json.Marshal(mentions)
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		if f.conn != nil || dropped {
			ev := map[string]any{"event": "posted", "data": map[string]any{"post": string(post), "channel_type": channelType,
				"mentions": string(ment), "sender_name": "@" + user}, "broadcast": map[string]any{"channel_id": channel}, "seq": f.seq}
			f.seq++
			f.buffer = append(f.buffer, ev)
			var err error
			if !dropped {
				err = f.conn.WriteJSON(ev)
			}
			f.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		f.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("no websocket connection")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// find returns a post the bot created, as it stands now; f.mu is held.
func (f *fakeServer) find(id string) map[string]any {
	for _, p := range f.posts {
		if p["id"] == id {
			return p
		}
	}
	return nil
}

// drop cuts the websocket connection.
func (f *fakeServer) drop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn != nil {
		f.conn.Close()
		f.conn = nil
	}
}

func mustAdapter(t *testing.T, f *fakeServer, mutate ...func(*Config)) (*Adapter, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "convosphere.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := Config{URL: f.srv.URL, Token: "bot-token", UpdateInterval: 50 * time.Millisecond, Locker: &engine.LocalLocker{}}
	for _, m := range mutate {
		m(&cfg)
	}
	a, err := New(cfg, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, db
}

// inbox claims and completes every stored event, waiting up to a second
// for at least want of them.
func inbox(t *testing.T, db *sqlite.DB, want int) []*engine.InboxEvent {
	t.Helper()
	var out []*engine.InboxEvent
	deadline := time.Now().Add(3 * time.Second)
	for {
		ev, err := db.Claim(context.Background(), "test", time.Minute)
		if engine.IsNotFound(err) {
			if len(out) >= want || time.Now().After(deadline) {
				return out
			}
			time.Sleep(20 * time.Millisecond)
			continue
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

func ids(evs []*engine.InboxEvent) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.EventID)
	}
	return strings.Join(s, ",")
}
