package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/store/storetest"
)

// seedDay is the first day of storetest.SeedAnalytics in these tests.
var seedDay = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)

// analyticsEnv is a console whose store holds storetest.SeedAnalytics
// from seedDay and whose clock says now.
func analyticsEnv(t *testing.T, now time.Time, opts envOptions) (*testEnv, storetest.AnalyticsSeed) {
	t.Helper()
	env := mustEnv(t, opts)
	seed := storetest.SeedAnalytics(t, env.store, seedDay)
	env.srv.now = func() time.Time { return now }
	return env, seed
}

// failingAnalytics is a store whose analytics fail.
type failingAnalytics struct{ engine.Store }

var errAnalyticsDown = errors.New("connection refused")

func (failingAnalytics) TrafficSummary(context.Context, engine.AnalyticsRange) (*engine.TrafficSummary, error) {
	return nil, errAnalyticsDown
}

func (failingAnalytics) DailyLatency(context.Context, engine.AnalyticsRange) ([]engine.DailyLatency, error) {
	return nil, errAnalyticsDown
}

func TestDashboard(t *testing.T) {
	// Today is the seed's first day: five turns (t01-t05).
	env, seed := analyticsEnv(t, seedDay.Add(15*time.Hour), envOptions{})
	viewer := env.MustSession(env.MustUser("vera", engine.RoleViewer))
	w := env.get("/", viewer)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	doc := MustParseHTML(t, w.Body.Bytes())
	selectOne(t, doc, `nav a[href="/"][aria-current=page]`)
	if got := textOf(selectOne(t, doc, "h1")); got != "Dashboard" {
		t.Errorf("h1 %q", got)
	}
	if len(selectAll(t, doc, "#dashboard-empty, #dashboard-error")) != 0 {
		t.Error("an empty or error notice on a day with turns")
	}
	if got := textOf(selectOne(t, doc, ".analytics-head time")); got != "Saturday 1 March 2025" {
		t.Errorf("day %q", got)
	}

	cards := map[string]string{}
	for _, card := range selectAll(t, doc, "#today .stat-card") {
		k, _ := attr(card, "data-stat")
		cards[k] = textOf(selectOne(t, card, ".stat-value")) + " | " + textOf(selectOne(t, card, ".stat-note"))
	}
	want := map[string]string{
		"conversations": "4 | 5 turns",
		"answer-rate":   "60% | 3 of 5 answered",
		"latency":       "2.80 s | p50 1.00 s",
		"errors":        "1 | 1 failed, 0 cut short",
		"feedback":      "2 helpful / 2 not helpful | helpful / not helpful",
	}
	for k, v := range want {
		if cards[k] != v {
			t.Errorf("card %s = %q, want %q", k, cards[k], v)
		}
	}

	// Per platform: the four platforms always, in order.
	rows := selectAll(t, doc, "table#platforms tbody tr")
	var got [][]string
	for _, r := range rows {
		var cells []string
		for _, c := range selectAll(t, r, "th, td") {
			cells = append(cells, textOf(c))
		}
		got = append(got, cells)
	}
	wantRows := [][]string{
		{"Slack", "2", "3", "66.7%", "2.90 s", "1", "2", "1"},
		{"Discord", "1", "1", "100%", "400 ms", "0", "0", "1"},
		{"Mattermost", "0", "0", "—", "—", "0", "0", "0"},
		{"Console", "1", "1", "0%", "500 ms", "0", "0", "0"},
	}
	if !slices.EqualFunc(got, wantRows, slices.Equal) {
		t.Errorf("platform rows\n got  %q\n want %q", got, wantRows)
	}
	total := selectOne(t, doc, "table#platforms tfoot tr")
	if got := textOf(total); got != "All platforms 4 5 60% 2.80 s 1 2 2" {
		t.Errorf("total row %q", got)
	}

	// Links into the conversations, filtered to today.
	link := func(sel string) url.Values {
		t.Helper()
		href, _ := attr(selectOne(t, doc, sel), "href")
		u, err := url.Parse(href)
		if err != nil || u.Path != "/conversations" {
			t.Fatalf("%s links to %q", sel, href)
		}
		return u.Query()
	}
	if q := link(`[data-stat=conversations] a.stat-value`); q.Get("from") != "2025-03-01" || q.Get("to") != "2025-03-01" || q.Has("platform") {
		t.Errorf("conversations link %v", q)
	}
	if q := link(`[data-stat=errors] a.stat-value`); q.Get("errors") != "1" {
		t.Errorf("errors link %v", q)
	}
	if q := link(`tr[data-platform=slack] td a[href*="errors"]`); q.Get("platform") != "slack" || q.Get("errors") != "1" {
		t.Errorf("slack errors link %v", q)
	}
	if q := link(`[data-stat=feedback] a[href*="down"]`); q.Get("feedback") != "down" {
		t.Errorf("feedback link %v", q)
	}
	if href, _ := attr(selectOne(t, doc, `.analytics-head a`), "href"); href != "/analytics?days=7" {
		t.Errorf("analytics link %q", href)
	}
	_ = seed

	// The seed's third day has no turns: an empty state, zeros and dashes.
	env.srv.now = func() time.Time { return seedDay.AddDate(0, 0, 2).Add(12 * time.Hour) }
	doc = MustParseHTML(t, env.get("/", viewer).Body.Bytes())
	selectOne(t, doc, "#dashboard-empty")
	if got := textOf(selectOne(t, doc, "[data-stat=answer-rate] .stat-value")); got != "—" {
		t.Errorf("answer rate without turns %q", got)
	}
}

func TestDashboardAPI(t *testing.T) {
	env, _ := analyticsEnv(t, seedDay.Add(15*time.Hour), envOptions{})
	tok := env.MustToken(env.MustUser("vera", engine.RoleViewer))
	w := env.get("/api/v1/dashboard", tok)
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var got dashboardResponse
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Day != "2025-03-01" || !got.From.Equal(seedDay) || !got.To.Equal(seedDay.AddDate(0, 0, 1)) {
		t.Errorf("day %s from %s to %s", got.Day, got.From, got.To)
	}
	f := func(v float64) *float64 { return &v }
	wantTotal := trafficStatsJSON{Conversations: 4, Messages: 5, Answered: 2, Extractive: 1, NoAnswer: 1, Failed: 1, Errors: 1,
		AnswerRate: f(0.6), P50MS: f(1000), P95MS: f(2800), FeedbackUp: 2, FeedbackDown: 2}
	if b, _ := json.Marshal(got.Total); string(b) != mustJSON(t, wantTotal) {
		t.Errorf("total\n got  %s\n want %s", b, mustJSON(t, wantTotal))
	}
	var platforms []string
	for _, p := range got.Platforms {
		platforms = append(platforms, p.Platform)
	}
	if !slices.Equal(platforms, []string{"slack", "discord", "mattermost", "console"}) {
		t.Errorf("platforms %q", platforms)
	}
	if mm := got.Platforms[2]; mm.Messages != 0 || mm.AnswerRate != nil || mm.P95MS != nil {
		t.Errorf("mattermost %+v", mm)
	}
	if !strings.Contains(w.Body.String(), `"platform":"mattermost","conversations":0,"messages":0,`) ||
		!strings.Contains(w.Body.String(), `"answer_rate":null,"p50_ms":null,"p95_ms":null`) {
		t.Errorf("no explicit nulls without turns: %s", w.Body)
	}
	if sl := got.Platforms[0]; sl.P95MS == nil || *sl.P95MS != 2900 || *sl.AnswerRate != 2.0/3 {
		t.Errorf("slack %+v", sl)
	}
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func TestDashboardStoreDown(t *testing.T) {
	env := mustEnv(t, envOptions{})
	env.srv.deps.Store = failingAnalytics{env.store}
	admin := env.MustUser("ada", engine.RoleAdmin)
	w := env.get("/", env.MustSession(admin))
	if w.Code != http.StatusOK {
		t.Fatalf("page status %d", w.Code)
	}
	doc := MustParseHTML(t, w.Body.Bytes())
	if got := textOf(selectOne(t, doc, "#dashboard-error")); !strings.Contains(got, "could not be read from the database") {
		t.Errorf("error notice %q", got)
	}
	if strings.Contains(w.Body.String(), "connection refused") {
		t.Error("the page shows the store's error")
	}
	w = env.get("/api/v1/dashboard", env.MustToken(admin))
	if code, msg := errorOf(t, w.Body.Bytes()); w.Code != http.StatusServiceUnavailable || code != engine.EUNAVAILABLE || strings.Contains(msg, "refused") {
		t.Errorf("API: %d %s", w.Code, w.Body)
	}
	if !strings.Contains(env.logs.String(), `"dataset":"traffic summary"`) {
		t.Error("the failure is not logged")
	}
}
