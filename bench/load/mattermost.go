package main

import (
	"context"
	"encoding/json"
	"errors"
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

	"github.com/gorilla/websocket"
)

const (
	mattermostBot      = "loadbot0000000000000000000"
	mattermostBotName  = "convosphere"
	mattermostToken    = "load-bot-token"
	mattermostConnID   = "loadconnection000000000000"
	mattermostTeamName = "load"
)

// mattermostFake is the part of Mattermost's API v4 the adapter uses
// (adapters/mattermost): GET /users/me when it starts, the websocket
// (/api/v4/websocket: the authentication challenge, "hello", then
// "posted" events with their sequence numbers), GET /users/{id} for the
// asker's name, POST /posts and PUT /posts/{id}/patch for the answer, and
// GET /posts/{id}/thread for a retry looking for an earlier attempt's
// answer. The bot's posts carry the props convosphere_event (the post
// they answer) and convosphere_part: that is how the fake attributes them.
type mattermostFake struct {
	URL    string
	srv    *http.Server
	ledger atomic.Pointer[ledger]

	mu      sync.Mutex
	conn    *websocket.Conn // the bot's websocket
	wsSeq   int64
	connErr error
	seq     int64
	owner   map[string]string           // the bot's post id → the post it answers
	threads map[string][]map[string]any // root id → the bot's posts
	calls   map[string]int
	ready   chan struct{} // closed when the bot's websocket is up
}

func startMattermostFake() (*mattermostFake, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("mattermost fake: %w", err)
	}
	f := &mattermostFake{URL: "http://" + ln.Addr().String()}
	f.reset(newLedger())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v4/users/me", func(w http.ResponseWriter, r *http.Request) {
		f.count("get me")
		if !strings.EqualFold(r.Header.Get("Authorization"), "Bearer "+mattermostToken) {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"id":"api.context.session_expired.app_error","message":"Invalid or expired session","status_code":401}`)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": mattermostBot, "username": mattermostBotName, "is_bot": true, "roles": "system_user"})
	})
	mux.HandleFunc("GET /api/v4/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.count("get user")
		id := r.PathValue("id")
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "username": "asker-" + id[len(id)-4:], "first_name": "Load", "last_name": "Asker"})
	})
	mux.HandleFunc("POST /api/v4/posts", f.createPost)
	mux.HandleFunc("PUT /api/v4/posts/{id}/patch", f.patchPost)
	mux.HandleFunc("GET /api/v4/posts/{id}/thread", f.thread)
	mux.HandleFunc("GET /api/v4/users/{user}/teams", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, []any{map[string]any{"id": "loadteam00000000000000000", "name": mattermostTeamName}})
	})
	mux.HandleFunc("GET /api/v4/users/{user}/teams/{team}/channels", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, []any{}) // backfill: nothing was missed
	})
	mux.HandleFunc("/api/v4/websocket", f.websocket)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		f.count(r.Method + " other")
		writeJSON(w, http.StatusOK, map[string]any{})
	})
	f.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

func (f *mattermostFake) Close() error { return f.srv.Close() }

// reset forgets the posts, calls and the websocket (a new bot process
// connects next), and reports to l from now on.
func (f *mattermostFake) reset(l *ledger) {
	f.mu.Lock()
	if f.conn != nil {
		f.conn.Close()
	}
	f.conn, f.connErr, f.wsSeq = nil, nil, 0
	f.owner, f.threads, f.calls = map[string]string{}, map[string][]map[string]any{}, map[string]int{}
	f.ready = make(chan struct{})
	f.mu.Unlock()
	f.ledger.Store(l)
}

func (f *mattermostFake) count(what string) {
	f.mu.Lock()
	f.calls[what]++
	f.mu.Unlock()
}

// Calls counts the REST calls per kind since the last reset.
func (f *mattermostFake) Calls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.calls)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// postBody is the part of a created or patched post the fake reads.
type postBody struct {
	ChannelID string         `json:"channel_id"`
	RootID    string         `json:"root_id"`
	Message   *string        `json:"message"`
	Props     map[string]any `json:"props"`
}

func (f *mattermostFake) createPost(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	f.count("create post")
	var p postBody
	_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&p)
	msg := ""
	if p.Message != nil {
		msg = *p.Message
	}
	event, _ := p.Props["convosphere_event"].(string)
	f.mu.Lock()
	f.seq++
	id := fmt.Sprintf("botpost%019d", f.seq)
	post := map[string]any{"id": id, "channel_id": p.ChannelID, "root_id": p.RootID, "user_id": mattermostBot,
		"message": msg, "props": p.Props, "create_at": now.UnixMilli(), "update_at": now.UnixMilli(), "type": ""}
	if event != "" {
		f.owner[id] = event
	}
	f.threads[p.RootID] = append(f.threads[p.RootID], post)
	f.mu.Unlock()
	l := f.ledger.Load()
	if event == "" {
		l.strayMessage(platMattermost)
	} else {
		l.message(platMattermost, event, now)
		l.shown(platMattermost, event, msg, now)
	}
	writeJSON(w, http.StatusCreated, post)
}

func (f *mattermostFake) patchPost(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	f.count("patch post")
	var p postBody
	_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&p)
	id := r.PathValue("id")
	msg := ""
	if p.Message != nil {
		msg = *p.Message
	}
	f.mu.Lock()
	event := f.owner[id]
	f.mu.Unlock()
	if event != "" {
		f.ledger.Load().shown(platMattermost, event, msg, now)
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "message": msg, "user_id": mattermostBot, "update_at": now.UnixMilli()})
}

func (f *mattermostFake) thread(w http.ResponseWriter, r *http.Request) {
	f.count("get thread")
	f.mu.Lock()
	posts := map[string]any{}
	order := []string{}
	for _, p := range f.threads[r.PathValue("id")] {
		id := p["id"].(string)
		posts[id] = p
		order = append(order, id)
	}
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"order": order, "posts": posts})
}

// websocket accepts the bot's connection: after its authentication
// challenge it says hello; events follow from post.
func (f *mattermostFake) websocket(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{}
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
	if f.conn != nil {
		f.conn.Close()
	}
	f.conn, f.connErr, f.wsSeq = c, nil, 0
	err = c.WriteJSON(map[string]any{"event": "hello", "data": map[string]any{"connection_id": mattermostConnID, "server_version": "9.11.0"},
		"broadcast": map[string]any{"user_id": mattermostBot}, "seq": f.wsSeq})
	f.wsSeq++
	select {
	case <-f.ready:
	default:
		close(f.ready)
	}
	f.mu.Unlock()
	if err != nil {
		return
	}
	for { // the client's pings and acks
		if _, _, err := c.ReadMessage(); err != nil {
			f.mu.Lock()
			if f.conn == c {
				f.connErr = err
			}
			f.mu.Unlock()
			return
		}
	}
}

// post sends a "posted" event for a direct message user wrote in channel
// (in the thread of root when it is not ""), as the server sends it: the
// post as a JSON string, the channel type, mentions.
func (f *mattermostFake) post(id, user, channel, root, message string) error {
	post, _ := json.Marshal(map[string]any{"id": id, "channel_id": channel, "user_id": user, "root_id": root,
		"message": message, "create_at": time.Now().UnixMilli(), "update_at": time.Now().UnixMilli(), "type": "", "props": map[string]any{}})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn == nil {
		return errors.New("mattermost fake: the bot's websocket is not connected")
	}
	ev := map[string]any{"event": "posted", "data": map[string]any{"post": string(post), "channel_type": "D",
		"channel_display_name": "@" + user, "channel_name": mattermostBot + "__" + user, "mentions": "[]",
		"sender_name": "@asker", "team_id": "", "set_online": true},
		"broadcast": map[string]any{"channel_id": channel}, "seq": f.wsSeq}
	f.wsSeq++
	if err := f.conn.WriteJSON(ev); err != nil {
		return fmt.Errorf("mattermost fake: send posted event: %w", err)
	}
	return nil
}

// waitConnected waits for the bot's websocket.
func (f *mattermostFake) waitConnected(ctx context.Context, timeout time.Duration) error {
	f.mu.Lock()
	ready := f.ready
	f.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errors.New("the bot did not open the Mattermost websocket within " + timeout.String())
	}
}

// mattermostID is a 26-character id, like Mattermost's.
func mattermostID(prefix string, n int64) string {
	s := strconv.FormatInt(n, 10)
	return prefix + strings.Repeat("0", max(0, 26-len(prefix)-len(s))) + s
}
