package web

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// analyticsRoutes registers this area's pages and API routes. Every role
// may read them.
func (s *Server) analyticsRoutes(pages, api *gin.RouterGroup) {
	cache := newAnalyticsCache(analyticsCacheTTL, analyticsCacheSize, time.Now)
	load := func(ctx context.Context, q analyticsQuery, datasets ...string) (*analyticsData, error) {
		key := fmt.Sprintf("%s/%s/%d/%s", q.First.Format(time.DateOnly), q.Last.Format(time.DateOnly), q.Top, strings.Join(datasets, ","))
		return cache.get(key, func() (*analyticsData, error) {
			// Requests for the same range wait for this one: its
			// cancellation must not fail theirs.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), analyticsLoadTimeout)
			defer cancel()
			return s.loadAnalytics(ctx, q, datasets...)
		})
	}
	pages.GET("/analytics", func(c *gin.Context) { s.showAnalytics(c, load) })
	pages.GET("/analytics.csv", func(c *gin.Context) { s.analyticsCSV(c, load) })
	api.GET("/analytics", func(c *gin.Context) { s.getAnalytics(c, load) })
}

// analyticsLoader reads datasets of a range (all when none are named).
type analyticsLoader func(ctx context.Context, q analyticsQuery, datasets ...string) (*analyticsData, error)

// The analytics of a range are kept for analyticsCacheTTL: aggregating a
// month of a busy deployment takes a while, and the numbers of a range
// hardly change within a minute. Requests for a range being read wait for
// that read instead of starting their own.
const (
	analyticsCacheTTL    = 30 * time.Second
	analyticsCacheSize   = 64
	analyticsLoadTimeout = 30 * time.Second
)

// analyticsCache keeps recently read analytics by key, at most size
// entries (the oldest go first). Failures are not kept.
type analyticsCache struct {
	ttl  time.Duration
	size int
	now  func() time.Time

	mu      sync.Mutex
	entries map[string]*analyticsEntry
}

type analyticsEntry struct {
	done chan struct{} // closed when data and err are set
	at   time.Time
	data *analyticsData
	err  error
}

func newAnalyticsCache(ttl time.Duration, size int, now func() time.Time) *analyticsCache {
	return &analyticsCache{ttl: ttl, size: size, now: now, entries: map[string]*analyticsEntry{}}
}

// get returns the data kept under key while it is fresh, waits for a read
// of it in progress, or reads it with load. The data is shared: read only.
func (c *analyticsCache) get(key string, load func() (*analyticsData, error)) (*analyticsData, error) {
	c.mu.Lock()
	if e := c.entries[key]; e != nil {
		select {
		case <-e.done:
			if e.err == nil && c.now().Sub(e.at) < c.ttl {
				c.mu.Unlock()
				return e.data, nil
			}
		default:
			c.mu.Unlock()
			<-e.done
			return e.data, e.err
		}
	}
	c.evict()
	e := &analyticsEntry{done: make(chan struct{})}
	c.entries[key] = e
	c.mu.Unlock()

	finished := false
	defer func() {
		if !finished { // load panicked: the waiters get an error
			e.err = engine.Errorf(engine.EINTERNAL, "reading the analytics failed")
		}
		e.at = c.now()
		close(e.done)
		if e.err != nil {
			c.mu.Lock()
			if c.entries[key] == e {
				delete(c.entries, key)
			}
			c.mu.Unlock()
		}
	}()
	data, err := load()
	e.data, e.err, finished = data, err, true
	return data, err
}

// evict makes room for one entry: expired entries go, then the oldest.
// Reads in progress stay. c.mu is held.
func (c *analyticsCache) evict() {
	if len(c.entries) < c.size {
		return
	}
	var oldest string
	for k, e := range c.entries {
		select {
		case <-e.done:
		default:
			continue
		}
		if c.now().Sub(e.at) >= c.ttl {
			delete(c.entries, k)
		} else if oldest == "" || e.at.Before(c.entries[oldest].at) {
			oldest = k
		}
	}
	if len(c.entries) >= c.size && oldest != "" {
		delete(c.entries, oldest)
	}
}

// ModelPrice is what a model costs, in US dollars per million tokens, for
// the estimated cost on the analytics page (Config.ModelPrices, by model
// name as the traces record it).
type ModelPrice struct {
	InputPerMillion  float64
	OutputPerMillion float64
}

// validModelPrices checks configured prices: finite and not negative.
func validModelPrices(prices map[string]ModelPrice) error {
	for model, p := range prices {
		for _, v := range []float64{p.InputPerMillion, p.OutputPerMillion} {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return engine.Errorf(engine.EINVALID, "console: the price of model %q must be a number of dollars per million tokens, not negative", model)
			}
		}
		if strings.TrimSpace(model) == "" {
			return engine.Errorf(engine.EINVALID, "console: a model price needs the model's name")
		}
	}
	return nil
}

// modelPrices returns Config.ModelPrices.
//
// TODO(wiring): once web.Config has `ModelPrices map[string]ModelPrice`,
// replace this body with `return s.cfg.ModelPrices`.
func (s *Server) modelPrices() map[string]ModelPrice {
	return s.cfg.ModelPrices
}

// Presets of the date range, in days up to today.
var analyticsPresets = []int{7, 30, 90}

const analyticsDefaultDays = 30

// Datasets of the CSV export.
const (
	analyticsSetMessages   = "messages"
	analyticsSetLatency    = "latency"
	analyticsSetTokens     = "tokens"
	analyticsSetFeedback   = "feedback"
	analyticsSetUnanswered = "unanswered"
)

var analyticsDatasets = []string{analyticsSetMessages, analyticsSetLatency, analyticsSetTokens, analyticsSetFeedback, analyticsSetUnanswered}

// analyticsQuery is a checked request: whole UTC days, both inclusive.
type analyticsQuery struct {
	First, Last time.Time // midnight UTC
	Days        int       // the preset chosen, 0 for explicit dates
	Top         int
}

// Range is the half-open range of the days.
func (q analyticsQuery) Range() engine.AnalyticsRange {
	return engine.AnalyticsRange{From: q.First, To: q.Last.AddDate(0, 0, 1)}
}

// values are the query parameters that select the same days.
func (q analyticsQuery) values() url.Values {
	v := url.Values{"from": {q.First.Format(time.DateOnly)}, "to": {q.Last.Format(time.DateOnly)}}
	if q.Top != engine.DefaultUsageLimit {
		v.Set("top", strconv.Itoa(q.Top))
	}
	return v
}

// analyticsForm is the range form as the user filled it in.
type analyticsForm struct {
	From, To string
	Days     int
	Top      int
	Max      string // today: the latest day the date inputs offer
	Error    string
	Field    string // the field the error is about: from, to, days or top
}

// parseAnalyticsQuery reads from and to (YYYY-MM-DD, inclusive), or days
// (the last n days up to today; default 30), and top (rows of the top-N
// tables, 1 to 100; default 10). Its errors are EINVALID and say what to
// fix; the form keeps what was typed.
func (s *Server) parseAnalyticsQuery(values url.Values) (analyticsQuery, analyticsForm, error) {
	today := s.now().UTC().Truncate(24 * time.Hour)
	form := analyticsForm{From: strings.TrimSpace(values.Get("from")), To: strings.TrimSpace(values.Get("to")),
		Max: today.Format(time.DateOnly), Top: engine.DefaultUsageLimit}
	fail := func(field, format string, args ...any) (analyticsQuery, analyticsForm, error) {
		err := engine.Errorf(engine.EINVALID, format, args...)
		form.Error, form.Field = engine.ErrorMessage(err), field
		return analyticsQuery{}, form, err
	}
	q := analyticsQuery{Top: engine.DefaultUsageLimit}
	if raw := strings.TrimSpace(values.Get("top")); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > engine.MaxUsageLimit {
			return fail("top", "top must be a whole number from 1 to %d, not %q.", engine.MaxUsageLimit, analyticsClip(raw, 20))
		}
		q.Top, form.Top = n, n
	}
	date := func(field, name, raw string) (time.Time, error) {
		t, err := time.Parse(time.DateOnly, raw)
		if err != nil || t.Year() < 2000 {
			_, _, err = fail(field, "The %s %q is not a date: use YYYY-MM-DD, for example %s.", name, analyticsClip(raw, 40), today.Format(time.DateOnly))
			return time.Time{}, err
		}
		return t, nil
	}
	switch {
	case form.From != "" || form.To != "":
		var err error
		q.Last = today
		if form.To != "" {
			if q.Last, err = date("to", "end date", form.To); err != nil {
				return analyticsQuery{}, form, err
			}
		}
		q.First = q.Last.AddDate(0, 0, -(analyticsDefaultDays - 1))
		if form.From != "" {
			if q.First, err = date("from", "start date", form.From); err != nil {
				return analyticsQuery{}, form, err
			}
		}
		if q.First.After(q.Last) {
			return fail("from", "The start date %s is after the end date %s: swap them.",
				q.First.Format(time.DateOnly), q.Last.Format(time.DateOnly))
		}
		if n := int(q.Last.Sub(q.First)/(24*time.Hour)) + 1; n > engine.MaxAnalyticsDays {
			return fail("from", "From %s to %s is %d days: choose at most %d days.",
				q.First.Format(time.DateOnly), q.Last.Format(time.DateOnly), n, engine.MaxAnalyticsDays)
		}
	default:
		q.Days = analyticsDefaultDays
		if raw := strings.TrimSpace(values.Get("days")); raw != "" {
			n, err := strconv.Atoi(raw)
			if err != nil || n < 1 || n > engine.MaxAnalyticsDays {
				return fail("days", "days must be a whole number from 1 to %d, not %q.", engine.MaxAnalyticsDays, analyticsClip(raw, 20))
			}
			q.Days = n
		}
		q.Last, q.First = today, today.AddDate(0, 0, -(q.Days-1))
	}
	form.From, form.To, form.Days = q.First.Format(time.DateOnly), q.Last.Format(time.DateOnly), q.Days
	if q.Days == 0 && q.Last.Equal(today) {
		for _, p := range analyticsPresets {
			if q.First.Equal(today.AddDate(0, 0, -(p - 1))) {
				form.Days = p
			}
		}
	}
	return q, form, nil
}

// analyticsClip shortens what a user typed before it goes into a message.
func analyticsClip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// analyticsData is what the analytics read for a range: the datasets
// asked for, the others left empty.
type analyticsData struct {
	Query      analyticsQuery
	Days       []time.Time // every day of the range
	Summary    *engine.TrafficSummary
	Messages   []engine.DailyMessages
	Latency    []engine.DailyLatency
	Feedback   []engine.DailyFeedback
	Usage      map[engine.UsageDimension][]analyticsUsageRow
	Unanswered []engine.UnansweredQuestion

	// section is the page's part drawn from this data, rendered by the
	// first request that shows it (analyticsSection).
	section struct {
		once sync.Once
		html template.HTML
		err  error
	}
}

// analyticsDimensions are the token usage tables, in page order.
var analyticsDimensions = []engine.UsageDimension{engine.UsageByAssistant, engine.UsageByChannel, engine.UsageByUser, engine.UsageByModel}

// loadAnalytics reads the datasets (all when none are named) for q, at
// once: each is one or a few GROUP BY queries.
func (s *Server) loadAnalytics(ctx context.Context, q analyticsQuery, datasets ...string) (*analyticsData, error) {
	want := func(name string) bool { return len(datasets) == 0 || slices.Contains(datasets, name) }
	r := q.Range()
	d := &analyticsData{Query: q, Summary: &engine.TrafficSummary{}, Usage: map[engine.UsageDimension][]analyticsUsageRow{}}
	for day := q.First; !day.After(q.Last); day = day.AddDate(0, 0, 1) {
		d.Days = append(d.Days, day)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	run := func(name string, fn func() error) {
		wg.Go(func() {
			if err := fn(); err != nil {
				err = s.analyticsError(ctx, name, err)
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	st := s.deps.Store
	if len(datasets) == 0 {
		run("summary", func() (err error) { d.Summary, err = st.TrafficSummary(ctx, r); return err })
	}
	if want(analyticsSetMessages) {
		run(analyticsSetMessages, func() (err error) { d.Messages, err = st.DailyMessages(ctx, r); return err })
	}
	if want(analyticsSetLatency) {
		run(analyticsSetLatency, func() (err error) { d.Latency, err = st.DailyLatency(ctx, r); return err })
	}
	if want(analyticsSetFeedback) {
		run(analyticsSetFeedback, func() (err error) { d.Feedback, err = st.DailyFeedback(ctx, r); return err })
	}
	if want(analyticsSetUnanswered) {
		run(analyticsSetUnanswered, func() (err error) { d.Unanswered, err = st.UnansweredQuestions(ctx, r, q.Top); return err })
	}
	raw := make([][]engine.TokenUsage, len(analyticsDimensions))
	if want(analyticsSetTokens) {
		for i, by := range analyticsDimensions {
			run(analyticsSetTokens, func() (err error) { raw[i], err = st.TokenUsage(ctx, r, by, q.Top); return err })
		}
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	if want(analyticsSetTokens) {
		names := s.loadAnalyticsNames(ctx)
		prices := s.modelPrices()
		for i, by := range analyticsDimensions {
			d.Usage[by] = newUsageRows(by, raw[i], names, prices)
		}
	}
	return d, nil
}

// analyticsNames are the current names of assistants and console users, by
// id, so the tables show names rather than ids.
type analyticsNames struct {
	assistants map[string]string
	users      map[string]string
}

func (s *Server) loadAnalyticsNames(ctx context.Context) analyticsNames {
	n := analyticsNames{assistants: map[string]string{}, users: map[string]string{}}
	if list, err := s.deps.Store.ListAssistants(ctx); err == nil {
		for _, a := range list {
			n.assistants[a.ID] = a.Name
		}
	} else {
		s.log.WarnContext(ctx, "list assistants for analytics", "error", err)
	}
	if list, err := s.deps.Store.ListUsers(ctx); err == nil {
		for _, u := range list {
			n.users[u.ID] = u.Name
		}
	} else {
		s.log.WarnContext(ctx, "list users for analytics", "error", err)
	}
	return n
}

// analyticsCostEstimate is the estimated cost of some tokens: the tokens of the
// models that have a price, and the models that have none.
type analyticsCostEstimate struct {
	USD      float64
	Priced   bool     // some tokens had a price, or there were no tokens
	Unpriced []string // models with tokens but no price, by name
}

// Known reports whether any cost can be shown.
func (c analyticsCostEstimate) Known() bool { return c.Priced }

// Text is "$1.23", "$1.23 + no price set for m", or "no price set".
func (c analyticsCostEstimate) Text() string {
	if !c.Priced {
		return "no price set"
	}
	s := analyticsUSD(c.USD)
	if len(c.Unpriced) > 0 {
		s += " + no price set for " + strings.Join(c.Unpriced, ", ")
	}
	return s
}

// JSON is the cost in dollars, or nil when nothing had a price.
func (c analyticsCostEstimate) JSON() *float64 {
	if !c.Priced {
		return nil
	}
	v := math.Round(c.USD*1e6) / 1e6
	return &v
}

// analyticsUSD writes dollars: cents, or four decimals under a dollar.
func analyticsUSD(v float64) string {
	switch {
	case v == 0:
		return "$0.00"
	case v < 1:
		return fmt.Sprintf("$%.4f", v)
	}
	cents := int64(math.Round(v * 100))
	return fmt.Sprintf("$%s.%02d", chartCount(cents/100), cents%100)
}

// analyticsCost prices tokens of a model; a model without tokens costs
// nothing, priced or not.
func analyticsCost(prices map[string]ModelPrice, m engine.ModelTokens) analyticsCostEstimate {
	if m.TokensIn == 0 && m.TokensOut == 0 {
		return analyticsCostEstimate{Priced: true}
	}
	p, ok := prices[m.Model]
	if !ok {
		name := m.Model
		if name == "" {
			name = "(no model)"
		}
		return analyticsCostEstimate{Unpriced: []string{name}}
	}
	return analyticsCostEstimate{Priced: true,
		USD: float64(m.TokensIn)/1e6*p.InputPerMillion + float64(m.TokensOut)/1e6*p.OutputPerMillion}
}

// analyticsUsageRow is a row of a token usage table.
type analyticsUsageRow struct {
	engine.TokenUsage
	Label  string // the name to show
	Cost   analyticsCostEstimate
	Models []analyticsModelRow
}

type analyticsModelRow struct {
	engine.ModelTokens
	Cost analyticsCostEstimate
}

// newUsageRows names the rows and estimates their cost.
func newUsageRows(by engine.UsageDimension, list []engine.TokenUsage, names analyticsNames, prices map[string]ModelPrice) []analyticsUsageRow {
	rows := make([]analyticsUsageRow, 0, len(list))
	for _, u := range list {
		row := analyticsUsageRow{TokenUsage: u, Label: analyticsUsageLabel(by, u, names)}
		row.Cost.Priced = true
		anyPriced := false
		for _, m := range u.Models {
			c := analyticsCost(prices, m)
			row.Models = append(row.Models, analyticsModelRow{ModelTokens: m, Cost: c})
			if c.Priced {
				row.Cost.USD += c.USD
				anyPriced = anyPriced || m.TokensIn+m.TokensOut > 0
			} else {
				row.Cost.Unpriced = append(row.Cost.Unpriced, c.Unpriced...)
			}
		}
		if len(row.Cost.Unpriced) > 0 && !anyPriced {
			row.Cost.Priced = false
		}
		rows = append(rows, row)
	}
	return rows
}

// analyticsUsageLabel names an assistant, a channel, a user or a model.
func analyticsUsageLabel(by engine.UsageDimension, u engine.TokenUsage, names analyticsNames) string {
	platform, _ := trafficPlatformLabel(u.Platform)
	switch by {
	case engine.UsageByAssistant:
		switch {
		case u.Key == "":
			return "(no assistant)"
		case names.assistants[u.Key] != "":
			return names.assistants[u.Key]
		case u.Name != "":
			return u.Name
		}
		return u.Key
	case engine.UsageByChannel:
		if u.Key == "" {
			return platform + " · (no channel)"
		}
		return platform + " · " + u.Key
	case engine.UsageByUser:
		name := u.Key
		if u.Platform == engine.PlatformConsole && names.users[u.Key] != "" {
			name = names.users[u.Key]
		}
		if name == "" {
			name = "(unknown)"
		}
		return platform + " · " + name
	}
	if u.Key == "" {
		return "(no model)"
	}
	return u.Key
}

// analyticsPreset is a link to the last n days.
type analyticsPreset struct {
	Days    int
	URL     string
	Current bool
}

// analyticsPage is the data of the analytics page.
type analyticsPage struct {
	Form      analyticsForm
	Presets   []analyticsPreset
	TopChoice []int
	Error     string // the statistics could not be read
	Loaded    bool
	First     time.Time
	Last      time.Time
	Total     trafficRow
	Platforms []trafficRow
	CSV       map[string]string // dataset: export URL

	Messages      chart
	MessagesTable analyticsMessagesTable
	Latency       chart
	LatencyRows   []analyticsLatencyRow
	Feedback      chart
	FeedbackRows  []analyticsFeedbackRow
	Usage         []analyticsUsageSection
	PricesSet     bool
	Unanswered    []analyticsQuestionRow

	// Data is the part drawn from the data, rendered from the template
	// analytics-data with the page filled in (analyticsSection).
	Data template.HTML
}

type analyticsMessagesTable struct {
	Platforms []string // column labels
	Rows      []analyticsMessagesDay
}

// The rows of the daily data tables (one per day of the range, up to a
// year) hold the day written out: html/template reads a plain field much
// faster than it calls time.Time.Format.

type analyticsMessagesDay struct {
	DayISO   string // 2006-01-02, for <time datetime>
	DayLabel string // Mon 2 Jan
	Counts   []int64
	Total    int64
}

type analyticsLatencyRow struct {
	DayISO, DayLabel string
	Messages         int64
	P50, P95         string // "—" without turns
}

type analyticsFeedbackRow struct {
	DayISO, DayLabel string
	Up, Down         int64
	Ratio            string // helpful share, "—" without ratings
}

type analyticsUsageSection struct {
	ID, Title, Column string
	Rows              []analyticsUsageRow
	Chart             chart
}

type analyticsQuestionRow struct {
	engine.UnansweredQuestion
	ConversationURL string
}

// showAnalytics serves GET /analytics (any role): the charts and tables of
// a date range; a bad range is a 400 with the form and its error.
func (s *Server) showAnalytics(c *gin.Context, load analyticsLoader) {
	ctx := c.Request.Context()
	q, form, err := s.parseAnalyticsQuery(c.Request.URL.Query())
	page := analyticsPage{Form: form, TopChoice: []int{5, 10, 25, 50, 100}}
	for _, n := range analyticsPresets {
		page.Presets = append(page.Presets, analyticsPreset{Days: n, Current: form.Days == n,
			URL: "/analytics?" + url.Values{"days": {strconv.Itoa(n)}}.Encode()})
	}
	status := http.StatusOK
	if err != nil {
		status = http.StatusBadRequest
	} else if data, err := load(ctx, q); err != nil {
		page.Error = engine.ErrorMessage(err)
	} else if page.Data, err = s.analyticsSection(data); err != nil {
		s.fail(c, fmt.Errorf("render the analytics of %s to %s: %w", q.First.Format(time.DateOnly), q.Last.Format(time.DateOnly), err))
		return
	} else {
		page.Loaded, page.First, page.Last = true, q.First, q.Last
	}
	v := s.newView(c, "Analytics")
	v.Nav = "analytics"
	v.Page = page
	s.render(c, status, "analytics", v)
}

// analyticsSection returns the part of the analytics page drawn from d:
// its charts and tables, which depend on the data and its range only. It
// is rendered once per read of the data and kept with it, for as long as
// the analytics cache keeps the data, so that a page reloaded (or shown
// to many) within that time is not drawn again: the 90 days of a busy
// deployment are hundreds of marks and table rows.
func (s *Server) analyticsSection(d *analyticsData) (template.HTML, error) {
	d.section.once.Do(func() {
		var p analyticsPage
		p.fill(d)
		var buf bytes.Buffer
		if t, ok := s.pages["analytics"]; !ok {
			d.section.err = errors.New("no analytics page")
		} else if d.section.err = t.ExecuteTemplate(&buf, "analytics-data", p); d.section.err == nil {
			d.section.html = template.HTML(buf.String()) // the template escaped it
		}
	})
	return d.section.html, d.section.err
}

// fill lays the data out for the page.
func (p *analyticsPage) fill(d *analyticsData) {
	q := d.Query
	p.Loaded, p.First, p.Last = true, q.First, q.Last
	p.Total, p.Platforms = trafficRows(d.Summary, q.First, q.Last)
	p.CSV = map[string]string{}
	for _, name := range analyticsDatasets {
		v := q.values()
		v.Set("dataset", name)
		p.CSV[name] = "/analytics.csv?" + v.Encode()
	}
	labels := make([]string, len(d.Days))
	isos, dayLabels := make([]string, len(d.Days)), make([]string, len(d.Days))
	index := make(map[time.Time]int, len(d.Days))
	for i, day := range d.Days {
		labels[i] = day.Format("Jan 2")
		isos[i], dayLabels[i] = day.Format(time.DateOnly), day.Format("Mon 2 Jan")
		index[day] = i
	}
	span := q.First.Format("2 Jan 2006") + " to " + q.Last.Format("2 Jan 2006")

	// Messages per day, stacked by platform.
	platforms, counts := analyticsByPlatform(d.Messages, index, len(d.Days))
	p.Messages = chart{ID: "chart-messages", Title: "Turns per day and platform", Integer: true, Labels: labels,
		Desc: fmt.Sprintf("Stacked bars, one per day from %s: %s turns in all.", span, chartCount(p.Total.Messages))}
	p.MessagesTable.Platforms = make([]string, len(platforms))
	for j, pl := range platforms {
		label, class := trafficPlatformLabel(pl)
		p.MessagesTable.Platforms[j] = label
		values := make([]float64, len(d.Days))
		for i := range d.Days {
			values[i] = float64(counts[j][i])
		}
		p.Messages.Series = append(p.Messages.Series, chartSeries{Name: label, Class: class, Values: values})
	}
	p.MessagesTable.Rows = make([]analyticsMessagesDay, 0, len(d.Days))
	for i := range d.Days {
		row := analyticsMessagesDay{DayISO: isos[i], DayLabel: dayLabels[i], Counts: make([]int64, len(platforms))}
		for j := range platforms {
			row.Counts[j] = counts[j][i]
			row.Total += counts[j][i]
		}
		p.MessagesTable.Rows = append(p.MessagesTable.Rows, row)
	}

	// Latency per day.
	p50, p95 := chartNaNs(len(d.Days)), chartNaNs(len(d.Days))
	p.LatencyRows = make([]analyticsLatencyRow, len(d.Days))
	for i := range d.Days {
		p.LatencyRows[i] = analyticsLatencyRow{DayISO: isos[i], DayLabel: dayLabels[i], P50: "—", P95: "—"}
	}
	for _, l := range d.Latency {
		i, ok := index[l.Day]
		if !ok {
			continue
		}
		p50[i], p95[i] = analyticsMS(l.P50), analyticsMS(l.P95)
		p.LatencyRows[i] = analyticsLatencyRow{DayISO: isos[i], DayLabel: dayLabels[i], Messages: l.Messages,
			P50: analyticsDuration(l.P50), P95: analyticsDuration(l.P95)}
	}
	msFormat := func(v float64) string { return analyticsDuration(time.Duration(v * float64(time.Millisecond))) }
	p.Latency = chart{ID: "chart-latency", Title: "Latency per day (p50 and p95)", Labels: labels, Format: msFormat,
		Desc: fmt.Sprintf("Two lines, one point per day with turns from %s: p50 %s and p95 %s over the range.",
			span, p.Total.P50Text(), p.Total.P95Text()),
		Series: []chartSeries{{Name: "p50", Class: "chart-s1", Values: p50}, {Name: "p95", Class: "chart-s4", Values: p95, Dashed: true}}}

	// Feedback ratio per day.
	ratio := chartNaNs(len(d.Days))
	p.FeedbackRows = make([]analyticsFeedbackRow, len(d.Days))
	for i := range d.Days {
		p.FeedbackRows[i] = analyticsFeedbackRow{DayISO: isos[i], DayLabel: dayLabels[i], Ratio: "—"}
	}
	for _, f := range d.Feedback {
		i, ok := index[f.Day]
		if !ok || f.Up+f.Down == 0 {
			continue
		}
		ratio[i] = float64(f.Up) / float64(f.Up+f.Down)
		p.FeedbackRows[i] = analyticsFeedbackRow{DayISO: isos[i], DayLabel: dayLabels[i], Up: f.Up, Down: f.Down, Ratio: analyticsPercent(ratio[i])}
	}
	overall := "no ratings"
	if n := p.Total.FeedbackUp + p.Total.FeedbackDown; n > 0 {
		overall = analyticsPercent(float64(p.Total.FeedbackUp)/float64(n)) + " helpful of " + chartCount(n) + " ratings"
	}
	p.Feedback = chart{ID: "chart-feedback", Title: "Share of helpful ratings per day", Labels: labels, Max: 1,
		Format: analyticsPercent,
		Desc:   fmt.Sprintf("A line, one point per day with ratings from %s: %s over the range.", span, overall),
		Series: []chartSeries{{Name: "helpful", Class: "chart-s2", Values: ratio}}}

	// Tokens and cost.
	p.PricesSet = false
	for _, sec := range []struct {
		by                engine.UsageDimension
		id, title, column string
	}{
		{engine.UsageByAssistant, "assistant", "Tokens per assistant", "Assistant"},
		{engine.UsageByChannel, "channel", "Tokens per channel", "Channel"},
		{engine.UsageByUser, "user", "Tokens per user", "User"},
		{engine.UsageByModel, "model", "Tokens per model", "Model"},
	} {
		rows := d.Usage[sec.by]
		c := chart{ID: "chart-tokens-" + sec.id, Title: sec.title, Integer: true,
			Desc: fmt.Sprintf("Horizontal bars of tokens in and out for the top %d from %s.", len(rows), span)}
		in, out := make([]float64, len(rows)), make([]float64, len(rows))
		for i, r := range rows {
			c.Labels = append(c.Labels, r.Label)
			in[i], out[i] = float64(r.TokensIn), float64(r.TokensOut)
			p.PricesSet = p.PricesSet || r.Cost.Priced && r.Tokens() > 0
		}
		c.Series = []chartSeries{{Name: "tokens in", Class: "chart-s1", Values: in}, {Name: "tokens out", Class: "chart-s2", Values: out}}
		p.Usage = append(p.Usage, analyticsUsageSection{ID: sec.id, Title: sec.title, Column: sec.column, Rows: rows, Chart: c})
	}

	for _, u := range d.Unanswered {
		row := analyticsQuestionRow{UnansweredQuestion: u}
		if u.ConversationID != "" {
			row.ConversationURL = "/conversations/" + url.PathEscape(u.ConversationID)
		}
		p.Unanswered = append(p.Unanswered, row)
	}
}

// analyticsByPlatform spreads the daily counts over the days: one series per
// platform, the four chat platforms first, then any other with turns.
func analyticsByPlatform(list []engine.DailyMessages, index map[time.Time]int, days int) ([]engine.Platform, [][]int64) {
	var platforms []engine.Platform
	for _, tp := range trafficPlatforms {
		platforms = append(platforms, tp.Platform)
	}
	for _, m := range list {
		if !slices.Contains(platforms, m.Platform) {
			platforms = append(platforms, m.Platform)
		}
	}
	counts := make([][]int64, len(platforms))
	for j := range counts {
		counts[j] = make([]int64, days)
	}
	for _, m := range list {
		if i, ok := index[m.Day]; ok {
			counts[slices.Index(platforms, m.Platform)][i] += m.Messages
		}
	}
	return platforms, counts
}

func chartNaNs(n int) []float64 {
	vs := make([]float64, n)
	for i := range vs {
		vs[i] = math.NaN()
	}
	return vs
}

// analyticsResponse is the body of GET /api/v1/analytics: every dataset
// of the days [from, to] (UTC). Days without data are left out of the
// daily lists; latencies are in milliseconds.
type analyticsResponse struct {
	From       string                  `json:"from"`
	To         string                  `json:"to"`
	Summary    trafficJSON             `json:"summary"`
	Messages   []analyticsMessagesJSON `json:"messages"`
	Latency    []analyticsLatencyJSON  `json:"latency"`
	Feedback   []analyticsFeedbackJSON `json:"feedback"`
	Tokens     analyticsTokensJSON     `json:"tokens"`
	Unanswered []analyticsQuestionJSON `json:"unanswered"`
}

type analyticsMessagesJSON struct {
	Day      string `json:"day"`
	Platform string `json:"platform"`
	Messages int64  `json:"messages"`
}

type analyticsLatencyJSON struct {
	Day      string  `json:"day"`
	Messages int64   `json:"messages"`
	P50MS    float64 `json:"p50_ms"`
	P95MS    float64 `json:"p95_ms"`
}

type analyticsFeedbackJSON struct {
	Day   string  `json:"day"`
	Up    int64   `json:"up"`
	Down  int64   `json:"down"`
	Ratio float64 `json:"ratio"` // up / (up + down)
}

// analyticsTokensJSON is the top assistants, channels, users and models by tokens.
type analyticsTokensJSON struct {
	ByAssistant []analyticsUsageItemJSON `json:"by_assistant"`
	ByChannel   []analyticsUsageItemJSON `json:"by_channel"`
	ByUser      []analyticsUsageItemJSON `json:"by_user"`
	ByModel     []analyticsUsageItemJSON `json:"by_model"`
}

// analyticsUsageItemJSON is the token usage of one assistant, channel, user or model.
// estimated_cost_usd is null when none of its tokens has a price; it
// leaves out the tokens of unpriced_models.
type analyticsUsageItemJSON struct {
	Key              string               `json:"key"`
	Platform         string               `json:"platform,omitempty"`
	Name             string               `json:"name"`
	Messages         int64                `json:"messages"`
	TokensIn         int64                `json:"tokens_in"`
	TokensOut        int64                `json:"tokens_out"`
	EstimatedCostUSD *float64             `json:"estimated_cost_usd"`
	UnpricedModels   []string             `json:"unpriced_models"`
	Models           []analyticsModelJSON `json:"models"`
}

type analyticsModelJSON struct {
	Model            string   `json:"model"`
	Messages         int64    `json:"messages"`
	TokensIn         int64    `json:"tokens_in"`
	TokensOut        int64    `json:"tokens_out"`
	EstimatedCostUSD *float64 `json:"estimated_cost_usd"`
}

type analyticsQuestionJSON struct {
	Question       string    `json:"question"`
	Count          int64     `json:"count"`
	NoAnswer       int64     `json:"no_answer"`
	Failed         int64     `json:"failed"`
	LastAskedAt    time.Time `json:"last_asked_at"`
	TraceID        string    `json:"trace_id"`
	ConversationID string    `json:"conversation_id"`
}

// getAnalytics serves GET /api/v1/analytics?from=&to= (or days=; top=)
// for any role: every dataset of the range.
func (s *Server) getAnalytics(c *gin.Context, load analyticsLoader) {
	q, _, err := s.parseAnalyticsQuery(c.Request.URL.Query())
	if err != nil {
		s.fail(c, err)
		return
	}
	d, err := load(c.Request.Context(), q)
	if err != nil {
		s.fail(c, err)
		return
	}
	total, rows := trafficRows(d.Summary, q.First, q.Last)
	out := analyticsResponse{From: q.First.Format(time.DateOnly), To: q.Last.Format(time.DateOnly),
		Summary:  newTrafficJSON(total, rows),
		Messages: make([]analyticsMessagesJSON, len(d.Messages)), Latency: make([]analyticsLatencyJSON, len(d.Latency)),
		Feedback: make([]analyticsFeedbackJSON, 0, len(d.Feedback)), Unanswered: make([]analyticsQuestionJSON, len(d.Unanswered)),
		Tokens: analyticsTokensJSON{ByAssistant: analyticsUsageJSON(d.Usage[engine.UsageByAssistant]), ByChannel: analyticsUsageJSON(d.Usage[engine.UsageByChannel]),
			ByUser: analyticsUsageJSON(d.Usage[engine.UsageByUser]), ByModel: analyticsUsageJSON(d.Usage[engine.UsageByModel])}}
	for i, m := range d.Messages {
		out.Messages[i] = analyticsMessagesJSON{Day: m.Day.Format(time.DateOnly), Platform: string(m.Platform), Messages: m.Messages}
	}
	for i, l := range d.Latency {
		out.Latency[i] = analyticsLatencyJSON{Day: l.Day.Format(time.DateOnly), Messages: l.Messages, P50MS: analyticsMS(l.P50), P95MS: analyticsMS(l.P95)}
	}
	for _, f := range d.Feedback {
		if f.Up+f.Down > 0 {
			out.Feedback = append(out.Feedback, analyticsFeedbackJSON{Day: f.Day.Format(time.DateOnly), Up: f.Up, Down: f.Down,
				Ratio: float64(f.Up) / float64(f.Up+f.Down)})
		}
	}
	for i, u := range d.Unanswered {
		out.Unanswered[i] = analyticsQuestionJSON{Question: u.Question, Count: u.Count, NoAnswer: u.NoAnswer, Failed: u.Failed,
			LastAskedAt: u.LastAskedAt, TraceID: u.TraceID, ConversationID: u.ConversationID}
	}
	s.writeJSON(c, http.StatusOK, out)
}

func analyticsUsageJSON(rows []analyticsUsageRow) []analyticsUsageItemJSON {
	out := make([]analyticsUsageItemJSON, len(rows))
	for i, r := range rows {
		u := analyticsUsageItemJSON{Key: r.Key, Platform: string(r.Platform), Name: r.Label, Messages: r.Messages, TokensIn: r.TokensIn,
			TokensOut: r.TokensOut, EstimatedCostUSD: r.Cost.JSON(), UnpricedModels: nonNil(r.Cost.Unpriced),
			Models: make([]analyticsModelJSON, len(r.Models))}
		for j, m := range r.Models {
			u.Models[j] = analyticsModelJSON{Model: m.Model, Messages: m.Messages, TokensIn: m.TokensIn, TokensOut: m.TokensOut,
				EstimatedCostUSD: m.Cost.JSON()}
		}
		out[i] = u
	}
	return out
}

// analyticsCSV serves GET /analytics.csv?dataset=…&from=&to= (any role):
// one dataset as CSV. Text from users is written so that spreadsheets
// never take it for a formula.
func (s *Server) analyticsCSV(c *gin.Context, load analyticsLoader) {
	q, _, err := s.parseAnalyticsQuery(c.Request.URL.Query())
	if err != nil {
		s.fail(c, err)
		return
	}
	dataset := c.Query("dataset")
	if !slices.Contains(analyticsDatasets, dataset) {
		s.fail(c, engine.Errorf(engine.EINVALID, "dataset must be one of %s, not %q.",
			strings.Join(analyticsDatasets, ", "), analyticsClip(dataset, 40)))
		return
	}
	d, err := load(c.Request.Context(), q, dataset)
	if err != nil {
		s.fail(c, err)
		return
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	for _, rec := range analyticsRecords(dataset, d) {
		_ = w.Write(rec) // a bytes.Buffer does not fail
	}
	w.Flush()
	name := fmt.Sprintf("convosphere-%s-%s-to-%s.csv", dataset, q.First.Format(time.DateOnly), q.Last.Format(time.DateOnly))
	c.Header("Content-Disposition", `attachment; filename="`+name+`"`)
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
}

// analyticsRecords are the CSV rows of a dataset, with a header. Daily
// datasets have a row for every day of the range.
func analyticsRecords(dataset string, d *analyticsData) [][]string {
	day := func(t time.Time) string { return t.Format(time.DateOnly) }
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	dec := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	index := map[time.Time]int{}
	for i, t := range d.Days {
		index[t] = i
	}
	var out [][]string
	switch dataset {
	case analyticsSetMessages:
		platforms, counts := analyticsByPlatform(d.Messages, index, len(d.Days))
		head := []string{"day"}
		for _, p := range platforms {
			head = append(head, analyticsCSVText(string(p)))
		}
		out = append(out, append(head, "total"))
		for i, t := range d.Days {
			rec, total := []string{day(t)}, int64(0)
			for j := range platforms {
				rec = append(rec, num(counts[j][i]))
				total += counts[j][i]
			}
			out = append(out, append(rec, num(total)))
		}
	case analyticsSetLatency:
		out = append(out, []string{"day", "messages", "p50_ms", "p95_ms"})
		rows := make([][]string, len(d.Days))
		for i, t := range d.Days {
			rows[i] = []string{day(t), "0", "", ""}
		}
		for _, l := range d.Latency {
			if i, ok := index[l.Day]; ok {
				rows[i] = []string{day(l.Day), num(l.Messages), dec(analyticsMS(l.P50)), dec(analyticsMS(l.P95))}
			}
		}
		out = append(out, rows...)
	case analyticsSetFeedback:
		out = append(out, []string{"day", "up", "down", "ratio"})
		rows := make([][]string, len(d.Days))
		for i, t := range d.Days {
			rows[i] = []string{day(t), "0", "0", ""}
		}
		for _, f := range d.Feedback {
			if i, ok := index[f.Day]; ok && f.Up+f.Down > 0 {
				rows[i] = []string{day(f.Day), num(f.Up), num(f.Down), dec(math.Round(float64(f.Up)/float64(f.Up+f.Down)*1e4) / 1e4)}
			}
		}
		out = append(out, rows...)
	case analyticsSetTokens:
		out = append(out, []string{"dimension", "platform", "key", "name", "model", "messages", "tokens_in", "tokens_out", "estimated_cost_usd", "note"})
		for _, by := range analyticsDimensions {
			for _, r := range d.Usage[by] {
				for _, m := range r.Models {
					cost, note := "", ""
					if v := m.Cost.JSON(); v != nil {
						cost = dec(*v)
					} else {
						note = "no price set"
					}
					out = append(out, []string{string(by), analyticsCSVText(string(r.Platform)), analyticsCSVText(r.Key), analyticsCSVText(r.Label),
						analyticsCSVText(m.Model), num(m.Messages), num(m.TokensIn), num(m.TokensOut), cost, note})
				}
			}
		}
	case analyticsSetUnanswered:
		out = append(out, []string{"question", "count", "no_answer", "failed", "last_asked_at", "conversation_id", "trace_id"})
		for _, u := range d.Unanswered {
			out = append(out, []string{analyticsCSVText(u.Question), num(u.Count), num(u.NoAnswer), num(u.Failed),
				u.LastAskedAt.UTC().Format(time.RFC3339), analyticsCSVText(u.ConversationID), analyticsCSVText(u.TraceID)})
		}
	}
	return out
}

// analyticsCSVText keeps a spreadsheet from running text as a formula (CSV
// injection): a cell starting with =, +, -, @, a tab or a carriage return
// gets a leading apostrophe.
func analyticsCSVText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// MessagesText, TokensInText and TokensOutText write the counts with
// thousands separators.
func (r analyticsUsageRow) MessagesText() string  { return chartCount(r.Messages) }
func (r analyticsUsageRow) TokensInText() string  { return chartCount(r.TokensIn) }
func (r analyticsUsageRow) TokensOutText() string { return chartCount(r.TokensOut) }
