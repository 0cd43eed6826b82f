package main

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convosphere/convosphere/cmd/internal/app"
	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/store/postgres/pgtest"
	"github.com/convosphere/convosphere/store/redis/redistest"
)

// Two console replicas on one PostgreSQL and one Redis: a sign-in on one
// works on the other, a sign-out or a disabled user ends the session on
// both at once, sessions are not in the database, an assistant changed on
// one reaches the other's cache at once, and the rate limits are shared.
func TestConsoleReplicasShareRedis(t *testing.T) {
	dbURL, redisURL := pgtest.MustDatabase(t), redistest.URL(t)
	replica := func() *Main {
		return MustRunMain(t, func(c *config.Config) {
			c.Database.URL, c.Redis.URL = dbURL, redisURL
			c.RateLimits.UserPerMinute = 2
		})
	}
	a, b := replica(), replica()
	if a.URL() == b.URL() {
		t.Fatal("the replicas listen on the same address")
	}

	// Sign in on A, use the session on B.
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := client.PostForm(a.URL()+"/login", url.Values{"username": {"admin"}, "password": {"test-admin-password"},
		"csrf": {mustCSRF(t, client, a.URL()+"/login")}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := jar.Cookies(mustURL(t, a.URL()))
	if len(cookies) == 0 || resp.Request.URL.Path == "/login" {
		t.Fatalf("signing in on A failed: ended at %s with %d cookies", resp.Request.URL, len(cookies))
	}
	onB := func() int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, b.URL()+"/settings", nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	if code := onB(); code != http.StatusOK {
		t.Fatalf("replica B answered %d to A's session, want 200", code)
	}
	if n := countRows(t, dbURL, "sessions"); n != 0 {
		t.Errorf("%d sessions in PostgreSQL, want 0 (they live in Redis)", n)
	}

	// An assistant changed through A reaches B's cache (5 s) at once.
	ctx := t.Context()
	asst, err := b.App.Store.AssistantByName(ctx, app.DemoAssistant)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.App.Store.AssistantByID(ctx, asst.ID); err != nil { // B caches it now
		t.Fatal(err)
	}
	asst.SystemPrompt = "changed on replica A"
	if err := a.App.Store.UpdateAssistant(ctx, asst); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		got, err := b.App.Store.AssistantByID(ctx, asst.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.SystemPrompt == "changed on replica A" {
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatal("replica B still reads the old assistant after 2 s: the change notice did not arrive")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Shared rate limit (2 a minute per user): two answers, then 429 with
	// Retry-After, whichever replica is asked.
	token := mustToken(t, a)
	codes := []int{}
	var retryAfter string
	for i, m := range []*Main{a, b, a} {
		resp := postChat(t, m, token, "", `{"message":"hello `+string(rune('a'+i))+`"}`)
		_, _ = io.Copy(io.Discard, resp.Body)
		codes = append(codes, resp.StatusCode)
		retryAfter = resp.Header.Get("Retry-After")
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != http.StatusTooManyRequests || retryAfter == "" {
		t.Fatalf("chat statuses %v (Retry-After %q), want [200 200 429] with Retry-After", codes, retryAfter)
	}

	// Sign out on B: A refuses the session at once.
	bJar, _ := cookiejar.New(nil)
	bJar.SetCookies(mustURL(t, b.URL()), cookies)
	csrf := mustCSRF(t, &http.Client{Jar: bJar}, b.URL()+"/settings")
	req, _ := http.NewRequest(http.MethodPost, b.URL()+"/logout", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err = (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out on B answered %d", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodGet, a.URL()+"/settings", nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err = (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("replica A still takes the session signed out on replica B")
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// mustCSRF reads the CSRF token of the form on page.
func mustCSRF(tb testing.TB, c *http.Client, page string) string {
	tb.Helper()
	resp, err := c.Get(page)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := csrfRE.FindSubmatch(body)
	if m == nil {
		tb.Fatalf("no CSRF token on %s (status %d)", page, resp.StatusCode)
	}
	return html.UnescapeString(string(m[1]))
}

func mustURL(tb testing.TB, s string) *url.URL {
	tb.Helper()
	u, err := url.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

func countRows(tb testing.TB, dbURL, table string) int {
	tb.Helper()
	conn, err := pgx.Connect(tb.Context(), dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(tb.Context()))
	var n int
	if err := conn.QueryRow(tb.Context(), "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}
