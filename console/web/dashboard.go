package web

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// dashboardRoutes registers this area's pages and API routes. The page
// itself is "/", served by home for signed-in users.
func (s *Server) dashboardRoutes(pages, api *gin.RouterGroup) {
	api.GET("/dashboard", s.getDashboard)
}

// trafficPlatforms are the platforms the dashboard and the analytics
// always list, with their chart colour; others that have turns follow.
var trafficPlatforms = []struct {
	Platform engine.Platform
	Label    string
	Class    string
}{
	{engine.PlatformSlack, "Slack", "chart-s1"},
	{engine.PlatformDiscord, "Discord", "chart-s2"},
	{engine.PlatformMattermost, "Mattermost", "chart-s3"},
	{engine.PlatformConsole, "Console", "chart-s4"},
}

// trafficPlatformLabel and platformClass name and colour a platform.
func trafficPlatformLabel(p engine.Platform) (label, class string) {
	for _, tp := range trafficPlatforms {
		if tp.Platform == p {
			return tp.Label, tp.Class
		}
	}
	if p == "" {
		return "(none)", "chart-s5"
	}
	return string(p), "chart-s5"
}

// trafficRow is one line of the traffic table (or the cards): a platform's
// counts, or all of them, with links to the conversations behind them.
type trafficRow struct {
	engine.TrafficStats
	Label            string
	Class            string
	ConversationsURL string // the conversations of the range (and platform)
	ErrorsURL        string // …that failed or were cut short
	FeedbackUpURL    string
	FeedbackDownURL  string
}

// AnswerRateText is the answer rate as a percentage, or "—" without turns.
func (r trafficRow) AnswerRateText() string {
	rate, ok := r.AnswerRate()
	if !ok {
		return "—"
	}
	return analyticsPercent(rate)
}

// P50Text and P95Text are the latency percentiles, or "—" without turns.
func (r trafficRow) P50Text() string { return r.latencyText(r.P50) }
func (r trafficRow) P95Text() string { return r.latencyText(r.P95) }

func (r trafficRow) latencyText(d time.Duration) string {
	if r.Messages == 0 {
		return "—"
	}
	return analyticsDuration(d)
}

// analyticsPercent writes a ratio as a percentage: 36.4%, 100%.
func analyticsPercent(v float64) string {
	p := math.Round(v*1000) / 10
	if p == math.Trunc(p) {
		return fmt.Sprintf("%.0f%%", p)
	}
	return fmt.Sprintf("%.1f%%", p)
}

// analyticsDuration writes a latency: 850 ms, 1.25 s, 2 min 5 s.
func analyticsDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	d = d.Round(time.Second)
	return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
}

// dashConversationsURL links to the conversations page filtered to the days
// [from, to] (UTC, inclusive), a platform and more filters (key, value…).
func dashConversationsURL(from, to time.Time, platform engine.Platform, more ...string) string {
	q := url.Values{}
	q.Set("from", from.UTC().Format(time.DateOnly))
	q.Set("to", to.UTC().Format(time.DateOnly))
	if platform != "" {
		q.Set("platform", string(platform))
	}
	for i := 0; i+1 < len(more); i += 2 {
		q.Set(more[i], more[i+1])
	}
	return "/conversations?" + q.Encode()
}

// trafficRows turns a summary of the days [from, last] into the total and
// one row per platform: the four chat platforms always, others with turns.
func trafficRows(sum *engine.TrafficSummary, from, last time.Time) (trafficRow, []trafficRow) {
	row := func(st engine.TrafficStats, label, class string) trafficRow {
		return trafficRow{TrafficStats: st, Label: label, Class: class,
			ConversationsURL: dashConversationsURL(from, last, st.Platform),
			ErrorsURL:        dashConversationsURL(from, last, st.Platform, "errors", "1"),
			FeedbackUpURL:    dashConversationsURL(from, last, st.Platform, "feedback", "up"),
			FeedbackDownURL:  dashConversationsURL(from, last, st.Platform, "feedback", "down"),
		}
	}
	byPlatform := map[engine.Platform]engine.TrafficStats{}
	for _, st := range sum.Platforms {
		byPlatform[st.Platform] = st
	}
	rows := make([]trafficRow, 0, len(trafficPlatforms)+len(sum.Platforms))
	for _, tp := range trafficPlatforms {
		st := byPlatform[tp.Platform]
		st.Platform = tp.Platform
		rows = append(rows, row(st, tp.Label, tp.Class))
		delete(byPlatform, tp.Platform)
	}
	for _, st := range sum.Platforms {
		if _, other := byPlatform[st.Platform]; other {
			label, class := trafficPlatformLabel(st.Platform)
			rows = append(rows, row(st, label, class))
		}
	}
	return row(sum.Total, "All platforms", ""), rows
}

// dashboardPage is the data of the dashboard: today's traffic (UTC).
type dashboardPage struct {
	Day          time.Time
	Total        trafficRow
	Platforms    []trafficRow
	Error        string
	AnalyticsURL string // the last seven days
	// UsedUpBudgets are the budgets used up now, for the alert banner
	// (budgets.go).
	UsedUpBudgets []budgetRow
}

// today returns the current UTC day as a range.
func (s *Server) analyticsToday() engine.AnalyticsRange {
	day := s.now().UTC().Truncate(24 * time.Hour)
	return engine.AnalyticsRange{From: day, To: day.Add(24 * time.Hour)}
}

// showDashboard serves GET / for signed-in users (any role): today's
// conversations, answer rate, latency, errors and feedback, per platform.
func (s *Server) showDashboard(c *gin.Context) {
	ctx := c.Request.Context()
	r := s.analyticsToday()
	page := dashboardPage{Day: r.From,
		AnalyticsURL: "/analytics?" + url.Values{"days": {"7"}}.Encode()}
	sum, err := s.dashboardSummary(ctx, r)
	if err != nil {
		page.Error = engine.ErrorMessage(err)
		sum = &engine.TrafficSummary{}
	}
	page.Total, page.Platforms = trafficRows(sum, r.From, r.From)
	page.UsedUpBudgets = s.usedUpBudgets(ctx)
	v := s.newView(c, "Dashboard")
	v.Nav = "dashboard"
	v.Page = page
	s.render(c, http.StatusOK, "dashboard", v)
}

// trafficSummary reads a summary, turning a store failure into a message
// a person can act on (logged once, here).
func (s *Server) trafficSummary(ctx context.Context, r engine.AnalyticsRange) (*engine.TrafficSummary, error) {
	sum, err := s.deps.Store.TrafficSummary(ctx, r)
	if err != nil {
		return nil, s.analyticsError(ctx, "traffic summary", err)
	}
	return sum, nil
}

// dashboardCacheTTL is how long the dashboard's summary of today is reused:
// a busy console (or a wall screen reloading it) reads the day's traffic
// once per TTL instead of once per request.
const dashboardCacheTTL = 5 * time.Second

// dashboardCache keeps the last summary of a day. Concurrent requests wait
// for one read rather than each reading.
type dashboardCache struct {
	mu  sync.Mutex
	key string
	at  time.Time
	sum *engine.TrafficSummary
	// budgets is the console's budget meter, which keeps the budgets'
	// usage for a few seconds too (budgets.go).
	budgets consoleBudgets
}

// dashboardSummary is trafficSummary for the dashboard, through its cache.
func (s *Server) dashboardSummary(ctx context.Context, r engine.AnalyticsRange) (*engine.TrafficSummary, error) {
	c := &s.dashboard
	key := r.From.String() + "/" + r.To.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sum != nil && c.key == key && time.Since(c.at) < dashboardCacheTTL {
		return c.sum, nil
	}
	sum, err := s.trafficSummary(ctx, r)
	if err != nil {
		return nil, err
	}
	c.key, c.at, c.sum = key, time.Now(), sum
	return sum, nil
}

// analyticsError logs a store failure and says what to do about it.
func (s *Server) analyticsError(ctx context.Context, what string, err error) error {
	if engine.ErrorCode(err) == engine.EINVALID {
		return err
	}
	s.log.WarnContext(ctx, "read analytics", "dataset", what, "error", err)
	return engine.WrapError(engine.EUNAVAILABLE, err, "The statistics could not be read from the database; please try again in a minute.")
}

// trafficStatsJSON is a traffic summary row in the API. Latencies are in
// milliseconds; the rate and the latencies are null without turns.
type trafficStatsJSON struct {
	Platform      string   `json:"platform,omitempty"`
	Conversations int64    `json:"conversations"`
	Messages      int64    `json:"messages"`
	Answered      int64    `json:"answered"`
	Extractive    int64    `json:"extractive"`
	NoAnswer      int64    `json:"no_answer"`
	Failed        int64    `json:"failed"`
	Interrupted   int64    `json:"interrupted"`
	Rejected      int64    `json:"rejected"`
	Errors        int64    `json:"errors"`
	AnswerRate    *float64 `json:"answer_rate"`
	P50MS         *float64 `json:"p50_ms"`
	P95MS         *float64 `json:"p95_ms"`
	FeedbackUp    int64    `json:"feedback_up"`
	FeedbackDown  int64    `json:"feedback_down"`
}

func newTrafficStatsJSON(st engine.TrafficStats) trafficStatsJSON {
	out := trafficStatsJSON{Platform: string(st.Platform), Conversations: st.Conversations, Messages: st.Messages,
		Answered: st.Answered, Extractive: st.Extractive, NoAnswer: st.NoAnswer, Failed: st.Failed,
		Interrupted: st.Interrupted, Rejected: st.Rejected, Errors: st.Errors(),
		FeedbackUp: st.FeedbackUp, FeedbackDown: st.FeedbackDown}
	if rate, ok := st.AnswerRate(); ok {
		out.AnswerRate = &rate
		p50, p95 := analyticsMS(st.P50), analyticsMS(st.P95)
		out.P50MS, out.P95MS = &p50, &p95
	}
	return out
}

// analyticsMS is a duration in milliseconds, to the microsecond.
func analyticsMS(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// trafficJSON is a traffic summary in the API.
type trafficJSON struct {
	Total     trafficStatsJSON   `json:"total"`
	Platforms []trafficStatsJSON `json:"platforms"`
}

func newTrafficJSON(total trafficRow, rows []trafficRow) trafficJSON {
	out := trafficJSON{Total: newTrafficStatsJSON(total.TrafficStats), Platforms: make([]trafficStatsJSON, len(rows))}
	for i, r := range rows {
		out.Platforms[i] = newTrafficStatsJSON(r.TrafficStats)
	}
	return out
}

// dashboardResponse is the body of GET /api/v1/dashboard.
type dashboardResponse struct {
	Day  string    `json:"day"`  // today, UTC: YYYY-MM-DD
	From time.Time `json:"from"` // the day's start
	To   time.Time `json:"to"`   // the next day's start
	trafficJSON
}

// getDashboard serves GET /api/v1/dashboard (any role): today's traffic,
// in all and per platform (slack, discord, mattermost and console always).
func (s *Server) getDashboard(c *gin.Context) {
	r := s.analyticsToday()
	sum, err := s.dashboardSummary(c.Request.Context(), r)
	if err != nil {
		s.fail(c, err)
		return
	}
	total, rows := trafficRows(sum, r.From, r.From)
	s.writeJSON(c, http.StatusOK, dashboardResponse{Day: r.From.Format(time.DateOnly), From: r.From, To: r.To,
		trafficJSON: newTrafficJSON(total, rows)})
}
