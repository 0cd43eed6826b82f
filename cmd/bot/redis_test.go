package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/store/redis/redistest"
)

// mentionBody is a Slack app_mention delivery of its own ts.
func mentionBody(eventID string, n int) []byte {
	return mentionText(eventID, n, "question "+eventID)
}

// mentionText is mentionBody asking text.
func mentionText(eventID string, n int, text string) []byte {
	ts := fmt.Sprintf("1710000000.%06d", n)
	body, _ := json.Marshal(map[string]any{"token": "x", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
		"event_id": eventID, "event_time": time.Now().Unix(),
		"event":          map[string]any{"type": "app_mention", "user": "U1", "text": "<@UBOT> " + text, "ts": ts, "channel": "C1", "event_ts": ts},
		"authorizations": []map[string]any{{"team_id": "T1", "user_id": "UBOT", "is_bot": true}}})
	return body
}

// TestRedisDownFallsBack stops Redis under a running bot: /readyz stays
// 200 and says "degraded", events are still answered exactly once (the
// database de-duplicates), the rate limit lets them through (fail open),
// and all comes back when Redis does.
func TestRedisDownFallsBack(t *testing.T) {
	rs := redistest.StartServer(t)
	fake := &replicaSlack{}
	m := mustSlackBot(t, fake, true, func(cfg *config.Config) {
		cfg.Redis.URL = rs.URL()
		cfg.RateLimits.UserPerMinute = 2
	})
	ready := func() (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + m.Addr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Status string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Status
	}
	deliver := func(id string, n int) {
		t.Helper()
		for retry := range 2 { // each event twice
			if code, err := postSlack(m.Addr(), mentionBody(id, n), retry); err != nil || code != http.StatusOK {
				t.Fatalf("delivery of %s: %d %v", id, code, err)
			}
		}
	}
	waitAnswers := func(n int) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for len(fake.snapshot()) < n && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		if got := len(fake.snapshot()); got != n {
			t.Fatalf("%d answers posted, want %d", got, n)
		}
	}

	if code, status := ready(); code != 200 || status != "ready" {
		t.Fatalf("/readyz with Redis up: %d %q", code, status)
	}
	deliver("EvR1", 1)
	deliver("EvR2", 2)
	waitAnswers(2)

	rs.Stop()
	if code, status := ready(); code != 200 || status != "degraded" {
		t.Fatalf("/readyz with Redis down: %d %q, want 200 degraded", code, status)
	}
	// Over the limit of 2 a minute, but the limiter is down: answered.
	for i := 3; i <= 5; i++ {
		deliver(fmt.Sprintf("EvR%d", i), i)
	}
	waitAnswers(5)
	for _, a := range fake.snapshot() {
		if a.eventID == "" {
			t.Errorf("an answer without its event: %+v", a)
		}
	}

	rs.Start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, status := ready()
		if code == 200 && status == "ready" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after Redis came back: %d %q", code, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// With the limiter back (a fresh Redis: a new bucket of 2): answers,
	// then one notice, then silence. (The first take after the restart may
	// still find a dead pooled connection and fail open: one more answer.)
	before := len(fake.snapshot())
	for i := 6; i <= 10; i++ {
		deliver(fmt.Sprintf("EvR%d", i), i)
		time.Sleep(400 * time.Millisecond) // answered in order, one at a time
	}
	time.Sleep(time.Second)
	after := fake.snapshot()[before:]
	notice := -1
	for i, a := range after {
		if strings.Contains(a.text, "faster than I can answer") {
			if notice >= 0 {
				t.Fatalf("a second notice: %+v", after)
			}
			notice = i
		}
	}
	if notice < 2 || notice > 3 || len(after) != notice+1 {
		t.Fatalf("posts after Redis came back: %+v; want 2 (or 3) answers, one notice, then nothing", after)
	}
}
