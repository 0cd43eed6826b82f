package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/store/postgres"
	"github.com/convosphere/convosphere/store/postgres/pgtest"
	"github.com/convosphere/convosphere/store/redis/redistest"
)

// replicaSlack is a Slack Web API shared by the replicas: it records each
// answer (chat.postMessage) with the event it answers, from the message
// metadata the bot attaches, and like Slack returns the thread's messages
// with their metadata (conversations.replies), which is how a retry finds
// an answer posted by an attempt that could not record it.
type replicaSlack struct {
	mu      sync.Mutex
	answers []answerPost // in the order Slack received them
	posts   int
	threads map[string][]map[string]any // channel/thread → messages
	texts   map[string]string           // ts → the message's text now (after edits)
	edits   int
	// failPosts makes the next chat.postMessage calls fail with status
	// failStatus (and Retry-After: 1 for 429).
	failPosts, failStatus int
}

type answerPost struct{ thread, eventID, text string }

func (s *replicaSlack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	switch method {
	case "auth.test":
		_, _ = w.Write([]byte(`{"ok":true,"team":"T","team_id":"T1","user":"bot","user_id":"UBOT","bot_id":"B1"}`))
	case "chat.startStream":
		_, _ = w.Write([]byte(`{"ok":false,"error":"unknown_method"}`))
	case "chat.postMessage":
		s.mu.Lock()
		fail := s.failPosts > 0
		if fail {
			s.failPosts--
		}
		s.mu.Unlock()
		if fail {
			if s.failStatus == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "1")
			}
			w.WriteHeader(s.failStatus)
			return
		}
		var md struct {
			Payload struct {
				EventID string `json:"event_id"`
			} `json:"event_payload"`
		}
		_ = json.Unmarshal([]byte(r.Form.Get("metadata")), &md)
		s.mu.Lock()
		s.posts++
		s.answers = append(s.answers, answerPost{thread: r.Form.Get("thread_ts"), eventID: md.Payload.EventID, text: r.Form.Get("text")})
		ts := fmt.Sprintf("1800000000.%06d", s.posts)
		if s.threads == nil {
			s.threads = map[string][]map[string]any{}
		}
		var meta any
		_ = json.Unmarshal([]byte(r.Form.Get("metadata")), &meta)
		if s.texts == nil {
			s.texts = map[string]string{}
		}
		s.texts[ts] = r.Form.Get("text")
		key := r.Form.Get("channel") + "/" + r.Form.Get("thread_ts")
		s.threads[key] = append(s.threads[key], map[string]any{"type": "message", "ts": ts, "text": r.Form.Get("text"), "metadata": meta})
		s.mu.Unlock()
		fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q}`, r.Form.Get("channel"), ts)
	case "chat.update":
		s.mu.Lock()
		if _, ok := s.texts[r.Form.Get("ts")]; ok {
			s.texts[r.Form.Get("ts")] = r.Form.Get("text")
			s.edits++
		}
		s.mu.Unlock()
		fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q,"text":"x"}`, r.Form.Get("channel"), r.Form.Get("ts"))
	case "conversations.replies":
		s.mu.Lock()
		msgs := append([]map[string]any{}, s.threads[r.Form.Get("channel")+"/"+r.Form.Get("ts")]...)
		s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "messages": msgs, "has_more": false})
	case "users.info":
		_, _ = w.Write([]byte(`{"ok":true,"user":{"id":"U1","name":"ada","real_name":"Ada"}}`))
	default: // reactions, statuses
		_, _ = w.Write([]byte(`{"ok":true}`))
	}
}

// text is what message ts says now.
func (s *replicaSlack) text(ts string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.texts[ts]
}

// mustSlackBot runs the bot's real wiring on 127.0.0.1:0 with a data
// directory of its own and Slack over HTTP against fake; edit (optional)
// changes the configuration; assistant stores a default assistant.
func mustSlackBot(t *testing.T, fake *replicaSlack, assistant bool, edit func(*config.Config)) *Main {
	t.Helper()
	api := httptest.NewServer(fake)
	t.Cleanup(api.Close)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Bot.Addr = "127.0.0.1:0"
	cfg.Slack = config.Slack{BotToken: "xoxb-test", SigningSecret: slackSecret, Mode: "http", APIURL: api.URL + "/api/"}
	if edit != nil {
		edit(&cfg)
	}
	m := NewMain(cfg, slog.New(slog.DiscardHandler))
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	if assistant {
		if err := m.App.Store.CreateAssistant(t.Context(), &engine.Assistant{Name: "Guide", IsDefault: true}); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func (s *replicaSlack) snapshot() []answerPost {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]answerPost(nil), s.answers...)
}

// TestReplicasExactlyOnce runs three bot processes on one PostgreSQL and
// one Redis. 1000 Slack mentions in 100 threads are each delivered up to
// 4 times (to any replica, some at once); one replica is killed -9 a
// third of the way through. Every event gets exactly one answer, and the
// answers in each thread come in the order of its questions.
func TestReplicasExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three bot processes")
	}
	const threads, perThread = 100, 10
	dbURL, redisURL := pgtest.MustDatabase(t), redistest.URL(t)
	db, err := postgres.Open(t.Context(), postgres.Config{URL: dbURL})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAssistant(t.Context(), &engine.Assistant{Name: "Guide", IsDefault: true}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	fake := &replicaSlack{}
	api := httptest.NewServer(fake)
	defer api.Close()
	addrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	bots := make([]interface{ Kill() error }, len(addrs))
	for i, addr := range addrs {
		cmd := startBot(t, []string{
			"CONVOSPHERE_CONFIG=", "CONVOSPHERE_DATA_DIR=" + t.TempDir(), "CONVOSPHERE_BOT_ADDR=" + addr,
			"CONVOSPHERE_DATABASE_URL=" + dbURL, "CONVOSPHERE_REDIS_URL=" + redisURL,
			"CONVOSPHERE_ENGINE_TURN_TIMEOUT=4s", "CONVOSPHERE_RATE_LIMITS_USER_PER_MINUTE=0", "CONVOSPHERE_RATE_LIMITS_CHANNEL_PER_MINUTE=0",
			"CONVOSPHERE_SLACK_BOT_TOKEN=xoxb-replicas", "CONVOSPHERE_SLACK_SIGNING_SECRET=" + slackSecret,
			"CONVOSPHERE_SLACK_API_URL=" + api.URL + "/api/",
		}, addr)
		bots[i] = cmd.Process
	}

	var (
		aliveMu sync.Mutex
		alive   = []int{0, 1, 2}
		sent    sync.WaitGroup
		posted  = make(chan struct{}, threads*perThread)
	)
	pick := func() string {
		aliveMu.Lock()
		defer aliveMu.Unlock()
		return addrs[alive[rand.IntN(len(alive))]]
	}
	deliver := func(body []byte, retry int) {
		// Slack retries until some replica says 200.
		for attempt := 0; attempt < 50; attempt++ {
			if code, err := postSlack(pick(), body, retry); err == nil && code == http.StatusOK {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("no replica acknowledged an event")
	}
	for th := range threads {
		sent.Go(func() {
			root := fmt.Sprintf("1700000000.%06d", th*1000)
			for k := range perThread {
				id := fmt.Sprintf("Ev%03d-%02d", th, k)
				ev := map[string]any{"type": "app_mention", "user": "U1", "text": "<@UBOT> question " + id,
					"ts": fmt.Sprintf("1700000000.%06d", th*1000+k), "channel": "C1", "event_ts": fmt.Sprintf("1700000000.%06d", th*1000+k)}
				if k > 0 {
					ev["thread_ts"] = root
				}
				body, _ := json.Marshal(map[string]any{"token": "x", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
					"event_id": id, "event_time": time.Now().Unix(), "event": ev,
					"authorizations": []map[string]any{{"team_id": "T1", "user_id": "UBOT", "is_bot": true}}})
				deliver(body, 0) // the first delivery is acknowledged before the next question
				var dup sync.WaitGroup
				for r := range rand.IntN(4) { // up to 3 more deliveries, at once
					dup.Go(func() { deliver(body, r+1) })
				}
				dup.Wait()
				posted <- struct{}{}
			}
		})
	}
	// Kill a replica a third of the way through: no clean-up at all.
	for range threads * perThread / 3 {
		<-posted
	}
	aliveMu.Lock()
	alive = []int{0, 1}
	aliveMu.Unlock()
	if err := bots[2].Kill(); err != nil {
		t.Fatal(err)
	}
	sent.Wait()

	want := threads * perThread
	deadline := time.Now().Add(3 * time.Minute)
	for len(distinct(fake.snapshot())) < want && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // late duplicates would show now
	answers := fake.snapshot()
	if got := len(distinct(answers)); got != want {
		t.Fatalf("%d events answered, want %d", got, want)
	}
	if len(answers) != want {
		t.Errorf("%d answers posted for %d events: some were answered twice", len(answers), want)
	}
	last := map[string]int{}
	for _, a := range answers {
		var th, k int
		if _, err := fmt.Sscanf(a.eventID, "Ev%03d-%02d", &th, &k); err != nil {
			t.Fatalf("answer without its event id: %+v", a)
		}
		key := strconv.Itoa(th)
		if prev, ok := last[key]; ok && k <= prev {
			t.Errorf("thread %d: the answer to question %d came after the one to question %d", th, k, prev)
		}
		last[key] = k
	}
}

func distinct(as []answerPost) map[string]bool {
	m := make(map[string]bool, len(as))
	for _, a := range as {
		m[a.eventID] = true
	}
	return m
}

// postSlack POSTs a signed Events API body to a replica.
func postSlack(addr string, body []byte, retry int) (int, error) {
	ts := time.Now().Unix()
	mac := hmac.New(sha256.New, []byte(slackSecret))
	fmt.Fprintf(mac, "v0:%d:%s", ts, body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/slack/events", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	if retry > 0 {
		req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(retry))
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
