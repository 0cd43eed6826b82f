package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// stub is a Slack Web API that answers every method under /api/ with
// {"ok":true} and what a bot needs from the methods it is likely to call;
// it counts the calls per method.
type stub struct {
	URL string // http://127.0.0.1:PORT, the API is under /api/

	srv    *http.Server
	baseTS int64
	seq    atomic.Uint64
	mu     sync.Mutex
	calls  map[string]int
}

func startStub() (*stub, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("stub Slack API: %w", err)
	}
	s := &stub{URL: "http://" + ln.Addr().String(), baseTS: time.Now().Unix(), calls: map[string]int{}}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// APIURL is the base URL of the Web API, as Slack clients take it.
func (s *stub) APIURL() string { return s.URL + "/api/" }

func (s *stub) Close() error { return s.srv.Close() }

// Reset forgets the calls counted so far.
func (s *stub) Reset() {
	s.mu.Lock()
	clear(s.calls)
	s.mu.Unlock()
}

// Calls is the number of calls per method since the last Reset.
func (s *stub) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

func (s *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method, ok := strings.CutPrefix(r.URL.Path, "/api/")
	if !ok || method == "" || (r.Method != http.MethodGet && r.Method != http.MethodPost) {
		http.NotFound(w, r)
		return
	}
	params := map[string]string{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var body map[string]any
		_ = json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body)
		for k, v := range body {
			if str, ok := v.(string); ok {
				params[k] = str
			}
		}
		for k, v := range r.URL.Query() {
			params[k] = v[0]
		}
	} else {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		_ = r.ParseForm()
		for k, v := range r.Form {
			params[k] = v[0]
		}
	}
	s.mu.Lock()
	s.calls[method]++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(stubAnswer(method, params, s.nextTS))
}

// nextTS is a message timestamp no other stub answer has had.
func (s *stub) nextTS() string {
	n := s.seq.Add(1)
	return fmt.Sprintf("%d.%06d", s.baseTS+int64(n/1_000_000), n%1_000_000)
}

// stubAnswer is the stub's answer to one Web API call.
func stubAnswer(method string, params map[string]string, nextTS func() string) map[string]any {
	switch method {
	case "auth.test":
		return map[string]any{"ok": true, "url": "https://bench.slack.com/", "team": "Bench", "user": "convosphere",
			"team_id": benchTeam, "user_id": benchBotUser, "bot_id": benchBotID}
	case "chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream", "chat.stopStream":
		ts := params["ts"]
		if ts == "" || method == "chat.postMessage" || method == "chat.startStream" {
			ts = nextTS()
		}
		return map[string]any{"ok": true, "channel": params["channel"], "ts": ts}
	case "conversations.replies":
		return map[string]any{"ok": true, "messages": []any{}}
	case "users.info":
		return map[string]any{"ok": true, "user": map[string]any{"id": params["user"], "name": "bench",
			"real_name": "Bench User", "profile": map[string]any{"display_name": "bench"}}}
	}
	return map[string]any{"ok": true}
}
