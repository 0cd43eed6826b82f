package web

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"html/template"
	"maps"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/store/storetest"
)

// seedRange selects the four days of the seed.
const seedRange = "from=2025-03-01&to=2025-03-04"

// seedLastDay is noon of the seed's last day: "today" in these tests.
var seedLastDay = seedDay.AddDate(0, 0, 3).Add(12 * time.Hour)

// withModelPrices sets Config.ModelPrices, or skips the test while the
// console's Config has no such field.
func withModelPrices(t *testing.T, cfg *Config, prices map[string]ModelPrice) {
	t.Helper()
	cfg.ModelPrices = prices
}

func TestAnalyticsPage(t *testing.T) {
	env, seed := analyticsEnv(t, seedLastDay, envOptions{})
	viewer := env.MustSession(env.MustUser("vera", engine.RoleViewer))
	w := env.get("/analytics?"+seedRange, viewer)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	body := w.Body.String()
	doc := MustParseHTML(t, w.Body.Bytes())
	selectOne(t, doc, `nav a[href="/analytics"][aria-current=page]`)

	// Payloads in names, channels, users and questions stay text.
	if strings.Contains(body, storetest.SeedXSS) || strings.Contains(body, "<script>alert") {
		t.Fatal("an XSS payload reached the page unescaped")
	}
	for _, s := range findAll(doc, "script", nil) {
		if src, _ := attr(s, "src"); !strings.HasPrefix(src, "/static/") {
			t.Fatalf("unexpected script %q", src)
		}
	}
	if n := len(selectAll(t, doc, "[style]")); n != 0 {
		t.Fatalf("%d inline style attributes (the CSP forbids them)", n)
	}

	// The form keeps the range; no preset is current.
	if v, _ := attr(selectOne(t, doc, "input#range-from"), "value"); v != "2025-03-01" {
		t.Errorf("from %q", v)
	}
	if v, _ := attr(selectOne(t, doc, "input#range-to"), "value"); v != "2025-03-04" {
		t.Errorf("to %q", v)
	}
	if n := len(selectAll(t, doc, ".presets a[aria-current]")); n != 0 {
		t.Errorf("%d current presets", n)
	}

	// Summary cards of the range.
	cards := map[string]string{}
	for _, card := range selectAll(t, doc, "#summary .stat-card") {
		k, _ := attr(card, "data-stat")
		cards[k] = textOf(selectOne(t, card, ".stat-value"))
	}
	if want := map[string]string{"turns": "11", "answer-rate": "36.4%", "latency": "4.50 s", "errors": "2",
		"feedback": "3 helpful / 2 not helpful"}; !reflect.DeepEqual(cards, want) {
		t.Errorf("cards %q, want %q", cards, want)
	}

	// Every chart is a well-formed SVG with a title and a description.
	charts := selectAll(t, doc, "svg.chart")
	var ids []string
	for _, c := range charts {
		id, _ := attr(c, "id")
		ids = append(ids, id)
		var buf bytes.Buffer
		if err := html.Render(&buf, c); err != nil {
			t.Fatal(err)
		}
		mustSVG(t, template.HTML(buf.String()))
		if label, _ := attr(c, "aria-labelledby"); label != id+"-title "+id+"-desc" {
			t.Errorf("%s labelled by %q", id, label)
		}
	}
	wantCharts := []string{"chart-messages", "chart-latency", "chart-tokens-assistant", "chart-tokens-channel",
		"chart-tokens-user", "chart-tokens-model", "chart-feedback"}
	if !slices.Equal(ids, wantCharts) {
		t.Errorf("charts %q, want %q", ids, wantCharts)
	}

	// The data tables behind the charts.
	rowsOf := func(sel string) []string {
		var out []string
		for _, r := range selectAll(t, doc, sel+" tbody tr") {
			var cells []string
			for _, c := range selectAll(t, r, "th, td") {
				cells = append(cells, textOf(c))
			}
			out = append(out, strings.Join(cells, " "))
		}
		return out
	}
	if got, want := rowsOf("table#messages-table"), []string{
		"Sat 1 Mar 3 1 0 1 5", "Sun 2 Mar 2 0 2 0 4", "Mon 3 Mar 0 0 0 0 0", "Tue 4 Mar 0 1 0 1 2",
	}; !slices.Equal(got, want) {
		t.Errorf("messages table %q, want %q", got, want)
	}
	var columns []string
	for _, th := range selectAll(t, doc, "table#messages-table thead th") {
		columns = append(columns, textOf(th))
	}
	if got := strings.Join(columns, " "); got != "Day Slack Discord Mattermost Console Total" {
		t.Errorf("messages columns %q", got)
	}
	if got, want := rowsOf("table#latency-table"), []string{
		"Sat 1 Mar 5 1.00 s 2.80 s", "Sun 2 Mar 4 800 ms 5.24 s", "Mon 3 Mar 0 — —", "Tue 4 Mar 2 155 ms 286 ms",
	}; !slices.Equal(got, want) {
		t.Errorf("latency table %q, want %q", got, want)
	}
	if got, want := rowsOf("table#feedback-table"), []string{
		"Sat 1 Mar 2 2 50%", "Sun 2 Mar 1 0 100%", "Mon 3 Mar 0 0 —", "Tue 4 Mar 0 0 —",
	}; !slices.Equal(got, want) {
		t.Errorf("feedback table %q, want %q", got, want)
	}
	// Days without data are gaps in the lines, not zeros.
	latency := selectOne(t, doc, "svg#chart-latency")
	if n := len(selectAll(t, latency, "circle")); n != 6 {
		t.Errorf("latency points %d, want 6 (3 days × p50, p95)", n)
	}

	// Tokens: the names as recorded (the assistants are not in the store),
	// no prices configured.
	if got, want := rowsOf("#usage-assistant table"), []string{
		"Helpdesk " + storetest.SeedXSS + " 7 720 270 gpt-4o, gpt-4o-mini no price set",
		"Ops 3 50 25 extractive, gpt-4o no price set",
		"(no assistant) 1 0 0 (none) $0.00",
	}; !slices.Equal(got, want) {
		t.Errorf("assistant usage\n got  %q\n want %q", got, want)
	}
	if got, want := rowsOf("#usage-channel table")[:3], []string{
		"Slack · C1 3 400 250 gpt-4o no price set",
		"Slack · C2 2 300 0 gpt-4o, gpt-4o-mini no price set",
		"Console · " + storetest.SeedXSS + " 1 50 25 gpt-4o no price set",
	}; !slices.Equal(got, want) {
		t.Errorf("channel usage\n got  %q\n want %q", got, want)
	}
	selectOne(t, doc, "#no-prices")

	// Unanswered questions, grouped, linking to the last conversation.
	qs := selectAll(t, doc, "table#unanswered-table tbody tr")
	if len(qs) != 2 {
		t.Fatalf("%d questions", len(qs))
	}
	if got := textOf(qs[0]); got != "How do I reset my VPN? 3 2 1 2 Mar 23:59" {
		t.Errorf("first question %q", got)
	}
	if href, _ := attr(selectOne(t, qs[0], "a"), "href"); href != "/conversations/"+seed.Conversations["slack-c2"] {
		t.Errorf("question link %q", href)
	}
	if got := textOf(selectOne(t, qs[1], "th")); got != "Where is the "+storetest.SeedXSS+" office?" {
		t.Errorf("second question %q", got)
	}

	// CSV links for every dataset, with the range.
	for _, ds := range analyticsDatasets {
		a := selectOne(t, doc, `a.csv-link[href^="/analytics.csv?dataset=`+ds+`&"]`)
		href, _ := attr(a, "href")
		u, _ := url.Parse(href)
		if u.Query().Get("from") != "2025-03-01" || u.Query().Get("to") != "2025-03-04" {
			t.Errorf("%s link %q", ds, href)
		}
	}
}

func TestAnalyticsEmptyRange(t *testing.T) {
	env, _ := analyticsEnv(t, seedLastDay, envOptions{})
	viewer := env.MustSession(env.MustUser("vera", engine.RoleViewer))
	w := env.get("/analytics?from=2024-01-01&to=2024-01-31", viewer)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	doc := MustParseHTML(t, w.Body.Bytes())
	if n := len(selectAll(t, doc, "svg.chart")); n != 0 {
		t.Errorf("%d charts without data", n)
	}
	for _, id := range []string{"messages", "latency", "feedback", "unanswered"} {
		selectOne(t, doc, "#"+id+" .empty")
	}
	if n := len(selectAll(t, doc, "#tokens .usage .empty")); n != 4 {
		t.Errorf("%d empty token tables, want 4", n)
	}
	if n := len(selectAll(t, doc, "table#messages-table tbody tr")); n != 31 {
		t.Errorf("%d days in the table, want 31", n)
	}
}

func TestAnalyticsRanges(t *testing.T) {
	env, _ := analyticsEnv(t, seedLastDay, envOptions{})
	viewer := env.MustSession(env.MustUser("vera", engine.RoleViewer))
	tok := env.MustToken(viewer.user)
	tests := []struct {
		name, query    string
		from, to       string // the range used; "" when refused
		preset         int    // the preset shown as current
		field, message string // the error
	}{
		{name: "default: the last 30 days", query: "", from: "2025-02-03", to: "2025-03-04", preset: 30},
		{name: "preset", query: "days=7", from: "2025-02-26", to: "2025-03-04", preset: 7},
		{name: "preset 90", query: "days=90", from: "2024-12-05", to: "2025-03-04", preset: 90},
		{name: "dates matching a preset", query: "from=2025-02-26&to=2025-03-04", from: "2025-02-26", to: "2025-03-04", preset: 7},
		{name: "one day", query: "from=2025-03-02&to=2025-03-02", from: "2025-03-02", to: "2025-03-02"},
		{name: "only from", query: "from=2025-03-01", from: "2025-03-01", to: "2025-03-04"},
		{name: "only to", query: "to=2025-03-01", from: "2025-01-31", to: "2025-03-01"},
		{name: "dates win over days", query: "days=7&from=2025-03-01&to=2025-03-02", from: "2025-03-01", to: "2025-03-02"},
		{name: "366 days", query: "from=2024-03-04&to=2025-03-04", from: "2024-03-04", to: "2025-03-04"},
		{name: "not a date", query: "from=yesterday", field: "from", message: `The start date "yesterday" is not a date: use YYYY-MM-DD`},
		{name: "month 13", query: "from=2025-13-01&to=2025-03-04", field: "from", message: `"2025-13-01" is not a date`},
		{name: "bad end", query: "from=2025-03-01&to=03/04/2025", field: "to", message: `The end date "03/04/2025" is not a date`},
		{name: "reversed", query: "from=2025-03-04&to=2025-03-01", field: "from", message: "The start date 2025-03-04 is after the end date 2025-03-01: swap them."},
		{name: "too long", query: "from=2024-01-01&to=2025-03-04", field: "from", message: "is 429 days: choose at most 366 days."},
		{name: "days zero", query: "days=0", field: "days", message: "days must be a whole number from 1 to 366"},
		{name: "days word", query: "days=lots", field: "days", message: `not "lots"`},
		{name: "top too big", query: "top=1000", field: "top", message: "top must be a whole number from 1 to 100"},
		{name: "ancient", query: "from=0001-01-01&to=0001-01-02", field: "to", message: "is not a date"},
		{name: "injection", query: "from=" + url.QueryEscape("2025-03-01' OR 1=1 --"), field: "from", message: "is not a date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := env.get("/analytics?"+tt.query, viewer)
			doc := MustParseHTML(t, w.Body.Bytes())
			api := env.get("/api/v1/analytics?"+tt.query, tok)
			csvw := env.get("/analytics.csv?dataset=messages&"+tt.query, viewer)
			if tt.message != "" {
				if w.Code != http.StatusBadRequest {
					t.Fatalf("page status %d", w.Code)
				}
				if got := textOf(selectOne(t, doc, "#range-error[role=alert]")); !strings.Contains(got, tt.message) {
					t.Errorf("page error %q, want %q", got, tt.message)
				}
				if tt.field != "days" {
					selectOne(t, doc, `[name="`+tt.field+`"][aria-invalid=true][aria-describedby=range-error]`)
				}
				if len(selectAll(t, doc, "#summary, svg.chart")) != 0 {
					t.Error("data shown for a refused range")
				}
				if code, msg := errorOf(t, api.Body.Bytes()); api.Code != http.StatusBadRequest || code != engine.EINVALID || !strings.Contains(msg, tt.message) {
					t.Errorf("API %d %s", api.Code, api.Body)
				}
				if csvw.Code != http.StatusBadRequest {
					t.Errorf("CSV %d", csvw.Code)
				}
				return
			}
			if w.Code != http.StatusOK || api.Code != http.StatusOK || csvw.Code != http.StatusOK {
				t.Fatalf("status page %d API %d CSV %d: %s", w.Code, api.Code, csvw.Code, api.Body)
			}
			var shown []string
			for _, tm := range selectAll(t, doc, "#range-label time[datetime]") {
				v, _ := attr(tm, "datetime")
				shown = append(shown, v)
			}
			if !slices.Equal(shown, []string{tt.from, tt.to}) {
				t.Errorf("page shows %q, want %s to %s", shown, tt.from, tt.to)
			}
			var body analyticsResponse
			if err := json.Unmarshal(api.Body.Bytes(), &body); err != nil || body.From != tt.from || body.To != tt.to {
				t.Errorf("API range %s to %s (%v), want %s to %s", body.From, body.To, err, tt.from, tt.to)
			}
			current := selectAll(t, doc, `.presets a[aria-current=page]`)
			switch {
			case tt.preset == 0 && len(current) != 0:
				t.Errorf("a preset is current: %q", textOf(current[0]))
			case tt.preset != 0 && (len(current) != 1 || textOf(current[0]) != "Last "+strconv.Itoa(tt.preset)+" days"):
				t.Errorf("current preset %d, want %d", len(current), tt.preset)
			}
		})
	}
}

func TestAnalyticsAPI(t *testing.T) {
	env, seed := analyticsEnv(t, seedLastDay, envOptions{})
	tok := env.MustToken(env.MustUser("vera", engine.RoleViewer))
	w := env.get("/api/v1/analytics?"+seedRange+"&top=2", tok)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var got analyticsResponse
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Summary.Total.Messages != 11 || len(got.Summary.Platforms) != 4 || *got.Summary.Total.P95MS != 4500 {
		t.Errorf("summary %+v", got.Summary.Total)
	}
	if len(got.Messages) != 7 || got.Messages[0] != (analyticsMessagesJSON{Day: "2025-03-01", Platform: "console", Messages: 1}) {
		t.Errorf("messages %+v", got.Messages)
	}
	wantLatency := []analyticsLatencyJSON{
		{Day: "2025-03-01", Messages: 5, P50MS: 1000, P95MS: 2800},
		{Day: "2025-03-02", Messages: 4, P50MS: 800, P95MS: 5235},
		{Day: "2025-03-04", Messages: 2, P50MS: 155, P95MS: 285.5},
	}
	if !slices.Equal(got.Latency, wantLatency) {
		t.Errorf("latency %+v", got.Latency)
	}
	if !slices.Equal(got.Feedback, []analyticsFeedbackJSON{{Day: "2025-03-01", Up: 2, Down: 2, Ratio: 0.5}, {Day: "2025-03-02", Up: 1, Ratio: 1}}) {
		t.Errorf("feedback %+v", got.Feedback)
	}
	// top=2 limits every token list and the questions.
	for name, list := range map[string][]analyticsUsageItemJSON{"assistant": got.Tokens.ByAssistant, "channel": got.Tokens.ByChannel,
		"user": got.Tokens.ByUser, "model": got.Tokens.ByModel} {
		if len(list) != 2 {
			t.Errorf("%s: %d rows", name, len(list))
		}
	}
	a := got.Tokens.ByAssistant[0]
	if a.Name != "Helpdesk "+storetest.SeedXSS || a.TokensIn != 720 || a.EstimatedCostUSD != nil ||
		!slices.Equal(a.UnpricedModels, []string{"gpt-4o", "gpt-4o-mini"}) || len(a.Models) != 2 || a.Models[0].EstimatedCostUSD != nil {
		t.Errorf("assistant %+v", a)
	}
	if !strings.Contains(w.Body.String(), `"estimated_cost_usd":null,"unpriced_models":["gpt-4o","gpt-4o-mini"]`) {
		t.Error("an unknown cost is not null")
	}
	if len(got.Unanswered) != 2 || got.Unanswered[0].Count != 3 || got.Unanswered[0].TraceID != "t09" ||
		got.Unanswered[0].ConversationID != seed.Conversations["slack-c2"] {
		t.Errorf("unanswered %+v", got.Unanswered)
	}
}

func TestAnalyticsCost(t *testing.T) {
	prices := map[string]ModelPrice{
		"gpt-4o":      {InputPerMillion: 2.5, OutputPerMillion: 10},
		"gpt-4o-mini": {InputPerMillion: 0.15, OutputPerMillion: 0.6},
	}
	mt := func(model string, in, out int64) engine.ModelTokens {
		return engine.ModelTokens{Model: model, Messages: 1, TokensIn: in, TokensOut: out}
	}
	tests := []struct {
		name   string
		models []engine.ModelTokens
		prices map[string]ModelPrice
		text   string
		json   *float64
	}{
		{"priced", []engine.ModelTokens{mt("gpt-4o", 1_000_000, 100_000)}, prices, "$3.50", ptrTo(3.5)},
		{"two models", []engine.ModelTokens{mt("gpt-4o", 400, 250), mt("gpt-4o-mini", 320, 20)}, prices, "$0.0036", ptrTo(0.003560)},
		{"large", []engine.ModelTokens{mt("gpt-4o", 1_000_000_000, 0)}, prices, "$2,500.00", ptrTo(2500.0)},
		{"no price", []engine.ModelTokens{mt("llama3", 100, 100)}, prices, "no price set", nil},
		{"no prices at all", []engine.ModelTokens{mt("gpt-4o", 100, 100)}, nil, "no price set", nil},
		{"partly priced", []engine.ModelTokens{mt("gpt-4o", 1_000_000, 0), mt("llama3", 5, 5), mt("", 1, 0)}, prices,
			"$2.50 + no price set for llama3, (no model)", ptrTo(2.5)},
		{"no tokens need no price", []engine.ModelTokens{mt("extractive", 0, 0)}, nil, "$0.00", ptrTo(0.0)},
		{"unpriced beside no tokens", []engine.ModelTokens{mt("extractive", 0, 0), mt("llama3", 1, 1)}, nil, "no price set", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := newUsageRows(engine.UsageByModel, []engine.TokenUsage{{Key: "k", Models: tt.models}}, analyticsNames{}, tt.prices)
			c := rows[0].Cost
			if c.Text() != tt.text {
				t.Errorf("text %q, want %q", c.Text(), tt.text)
			}
			if got := c.JSON(); (got == nil) != (tt.json == nil) || got != nil && math.Abs(*got-*tt.json) > 1e-9 {
				t.Errorf("json %v, want %v", got, tt.json)
			}
		})
	}
	if err := validModelPrices(prices); err != nil {
		t.Error(err)
	}
	for _, bad := range []map[string]ModelPrice{{"m": {InputPerMillion: -1}}, {"m": {OutputPerMillion: math.NaN()}}, {" ": {}}} {
		if err := validModelPrices(bad); engine.ErrorCode(err) != engine.EINVALID {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

func TestAnalyticsPrices(t *testing.T) {
	var opts envOptions
	withModelPrices(t, &opts.Config, map[string]ModelPrice{"gpt-4o": {InputPerMillion: 2.5, OutputPerMillion: 10}})
	env, _ := analyticsEnv(t, seedLastDay, opts)
	viewer := env.MustSession(env.MustUser("vera", engine.RoleViewer))
	doc := MustParseHTML(t, env.get("/analytics?"+seedRange, viewer).Body.Bytes())
	if len(selectAll(t, doc, "#no-prices")) != 0 {
		t.Error("the no-prices notice shows with prices")
	}
	var got []string
	for _, r := range selectAll(t, doc, "#usage-model tbody tr") {
		got = append(got, textOf(selectOne(t, r, "td.cost")))
	}
	// gpt-4o: 450 in, 275 out = 0.001125 + 0.00275.
	if want := []string{"$0.0039", "no price set", "$0.00", "$0.00"}; !slices.Equal(got, want) {
		t.Errorf("model costs %q, want %q", got, want)
	}
}

func TestAnalyticsCSV(t *testing.T) {
	env, seed := analyticsEnv(t, seedLastDay, envOptions{})
	// Text a spreadsheet would run as a formula.
	formulas := []string{`=HYPERLINK("http://evil.example","x")`, "+SUM(1,2)", "-2+3", "@cmd", "\tTAB", "\r=1"}
	for i, f := range formulas {
		id := "f" + strconv.Itoa(i)
		tr := &engine.Trace{ID: id, ConversationID: seed.Conversations["slack-c1"], AssistantID: f, AssistantName: f, Platform: engine.PlatformSlack,
			ChannelID: f, UserID: f, Model: f, TokensIn: 1000 + i, Outcome: engine.OutcomeFailed, StartedAt: seedDay.Add(time.Hour), Duration: time.Second}
		if err := env.store.SaveTrace(t.Context(), tr); err != nil {
			t.Fatal(err)
		}
		if err := env.store.AddTurn(t.Context(), &engine.Turn{ConversationID: tr.ConversationID, Role: engine.TurnUser, Content: f + " why?", TraceID: id}); err != nil {
			t.Fatal(err)
		}
	}
	viewer := env.MustSession(env.MustUser("vera", engine.RoleViewer))
	read := func(dataset string) [][]string {
		t.Helper()
		w := env.get("/analytics.csv?dataset="+dataset+"&"+seedRange+"&top=20", viewer)
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/csv; charset=utf-8" ||
			w.Header().Get("Content-Disposition") != `attachment; filename="convosphere-`+dataset+`-2025-03-01-to-2025-03-04.csv"` {
			t.Fatalf("%s: %d %q %q %s", dataset, w.Code, w.Header().Get("Content-Type"), w.Header().Get("Content-Disposition"), w.Body)
		}
		recs, err := csv.NewReader(bytes.NewReader(w.Body.Bytes())).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", dataset, err)
		}
		return recs
	}
	mustRecords := func(dataset string, got, want [][]string) {
		t.Helper()
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("%s\n got  %q\n want %q", dataset, got, want)
		}
	}
	mustRecords("messages", read("messages"), [][]string{
		{"day", "slack", "discord", "mattermost", "console", "total"},
		{"2025-03-01", "9", "1", "0", "1", "11"},
		{"2025-03-02", "2", "0", "2", "0", "4"},
		{"2025-03-03", "0", "0", "0", "0", "0"},
		{"2025-03-04", "0", "1", "0", "1", "2"},
	})
	mustRecords("feedback", read("feedback"), [][]string{
		{"day", "up", "down", "ratio"},
		{"2025-03-01", "2", "2", "0.5"},
		{"2025-03-02", "1", "0", "1"},
		{"2025-03-03", "0", "0", ""},
		{"2025-03-04", "0", "0", ""},
	})
	lat := read("latency")
	mustRecords("latency", lat[2:], [][]string{
		{"2025-03-02", "4", "800", "5235"},
		{"2025-03-03", "0", "", ""},
		{"2025-03-04", "2", "155", "285.5"},
	})

	// Formula-looking text starts with an apostrophe, wherever it is.
	check := func(dataset string, recs [][]string) {
		t.Helper()
		n := 0
		for _, rec := range recs[1:] {
			for _, cell := range rec {
				if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
					t.Errorf("%s: cell %q could run as a formula", dataset, cell)
				}
				if strings.HasPrefix(cell, "'") {
					n++
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no cell was defused", dataset)
		}
	}
	tokens := read("tokens")
	if !slices.Equal(tokens[0], []string{"dimension", "platform", "key", "name", "model", "messages", "tokens_in", "tokens_out", "estimated_cost_usd", "note"}) {
		t.Errorf("tokens header %q", tokens[0])
	}
	check("tokens", tokens)
	// The user's label starts with the platform, so it is safe as it is.
	if !slices.ContainsFunc(tokens, func(r []string) bool {
		return slices.Equal(r, []string{"user", "slack", "'" + formulas[0], "Slack · " + formulas[0], "'" + formulas[0], "1", "1000", "0", "", "no price set"})
	}) {
		t.Errorf("no defused user row in %q", tokens)
	}
	unanswered := read("unanswered")
	check("unanswered", unanswered)
	if !slices.Equal(unanswered[0], []string{"question", "count", "no_answer", "failed", "last_asked_at", "conversation_id", "trace_id"}) {
		t.Errorf("unanswered header %q", unanswered[0])
	}
	if !slices.ContainsFunc(unanswered, func(r []string) bool { return r[0] == "'"+formulas[0]+" why?" && r[1] == "1" }) {
		t.Errorf("unanswered rows %q", unanswered)
	}
	if !slices.ContainsFunc(unanswered, func(r []string) bool {
		return r[0] == "How do I reset my VPN?" && slices.Equal(r[1:], []string{"3", "2", "1", "2025-03-02T23:59:00Z", seed.Conversations["slack-c2"], "t09"})
	}) {
		t.Errorf("unanswered rows %q", unanswered)
	}

	// An unknown dataset.
	w := env.get("/analytics.csv?dataset=passwords&"+seedRange, viewer)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "dataset must be one of messages, latency, tokens, feedback, unanswered") {
		t.Errorf("unknown dataset: %d", w.Code)
	}
}

func TestAnalyticsAccess(t *testing.T) {
	env, _ := analyticsEnv(t, seedLastDay, envOptions{})
	pages := []string{"/", "/analytics", "/analytics?days=7", "/analytics.csv?dataset=tokens"}
	apis := []string{"/api/v1/dashboard", "/api/v1/analytics", "/api/v1/analytics?days=90"}
	for _, role := range []engine.Role{engine.RoleAdmin, engine.RoleEditor, engine.RoleViewer} {
		u := env.MustUser("u-"+string(role), role)
		s, tok := env.MustSession(u), env.MustToken(u)
		for _, p := range pages {
			if w := env.get(p, s); w.Code != http.StatusOK {
				t.Errorf("%s %s: %d", role, p, w.Code)
			}
		}
		for _, p := range apis {
			if w := env.get(p, tok); w.Code != http.StatusOK {
				t.Errorf("%s %s with a token: %d", role, p, w.Code)
			}
			if w := env.get(p, s); w.Code != http.StatusOK {
				t.Errorf("%s %s with the session and CSRF header: %d", role, p, w.Code)
			}
		}
		// Everyone sees the links.
		doc := MustParseHTML(t, env.get("/", s).Body.Bytes())
		selectOne(t, doc, `nav a[href="/analytics"]`)
	}
	for _, p := range pages[1:] {
		w := env.get(p, nil)
		if w.Code != http.StatusFound || !strings.HasPrefix(w.Header().Get("Location"), "/login?next=") {
			t.Errorf("anonymous %s: %d %s", p, w.Code, w.Header().Get("Location"))
		}
	}
	if w := env.get("/", nil); w.Code != http.StatusFound || w.Header().Get("Location") != "/login" {
		t.Errorf("anonymous /: %d %s", w.Code, w.Header().Get("Location"))
	}
	for _, p := range apis {
		if w := env.get(p, nil); w.Code != http.StatusUnauthorized {
			t.Errorf("anonymous %s: %d", p, w.Code)
		}
	}
	// A session without the CSRF header is refused by the API.
	s := env.MustSession(env.MustUser("nocsrf", engine.RoleViewer))
	s.csrf = ""
	if w := env.get("/api/v1/analytics", s); w.Code != http.StatusUnauthorized {
		t.Errorf("session without CSRF header: %d", w.Code)
	}
}

func TestAnalyticsStoreDown(t *testing.T) {
	env := mustEnv(t, envOptions{})
	env.srv.deps.Store = failingAnalytics{env.store}
	u := env.MustUser("vera", engine.RoleViewer)
	w := env.get("/analytics", env.MustSession(u))
	doc := MustParseHTML(t, w.Body.Bytes())
	if w.Code != http.StatusOK || !strings.Contains(textOf(selectOne(t, doc, "#analytics-error")), "could not be read from the database") {
		t.Errorf("page %d", w.Code)
	}
	if strings.Contains(w.Body.String(), "refused") || len(selectAll(t, doc, "svg.chart")) != 0 {
		t.Error("the page leaks the error or shows charts")
	}
	for _, p := range []string{"/api/v1/analytics", "/analytics.csv?dataset=latency"} {
		var w = env.get(p, env.MustToken(u))
		if strings.HasPrefix(p, "/analytics.csv") {
			w = env.get(p, env.MustSession(u))
		}
		if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "refused") {
			t.Errorf("%s: %d %s", p, w.Code, w.Body)
		}
	}
}

var cssTokenRE = regexp.MustCompile(`(?m)^\s*--(chart-[0-9]+):\s*light-dark\((.+)\);\s*$`)

// TestChartContrast checks that every chart colour stands out from the
// backgrounds charts sit on (WCAG 1.4.11: 3:1 for graphics) in both
// themes, and that the stylesheet uses only defined variables.
func TestChartContrast(t *testing.T) {
	light, dark := themeTokens(t)
	css, err := staticFS.ReadFile("static/analytics.css")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, m := range cssTokenRE.FindAllStringSubmatch(string(css), -1) {
		args := splitTopLevel(m[2])
		if len(args) != 2 {
			t.Fatalf("--%s: want light-dark(LIGHT, DARK)", m[1])
		}
		for i, theme := range []map[string]rgba{light, dark} {
			c, err := parseColor(args[i])
			if err != nil {
				t.Fatal(err)
			}
			for _, bg := range []string{"bg", "bg-secondary"} {
				if got := contrast(c, theme[bg]); got < 3 {
					t.Errorf("--%s (%s) on --%s: %.2f:1, want at least 3:1", m[1], []string{"light", "dark"}[i], bg, got)
				}
			}
		}
		found++
	}
	if found != 5 {
		t.Fatalf("found %d chart colours, want 5", found)
	}
	app, _ := staticFS.ReadFile("static/app.css")
	defined := map[string]bool{"swatch": true}
	for _, m := range regexp.MustCompile(`--([a-z0-9-]+):`).FindAllStringSubmatch(string(app)+string(css), -1) {
		defined[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`var\(--([a-z0-9-]+)\)`).FindAllStringSubmatch(string(css), -1) {
		if !defined[m[1]] {
			t.Errorf("var(--%s) is not defined", m[1])
		}
	}
	_, rules, _ := strings.Cut(string(css), ".chart-s1 {")
	if lit := regexp.MustCompile(`#[0-9a-fA-F]{3,6}\b|rgba?\(`).FindString(rules); lit != "" {
		t.Errorf("literal colour %q outside the tokens", lit)
	}
}

func TestAnalyticsCache(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	c := newAnalyticsCache(30*time.Second, 2, func() time.Time { return now })
	var loads atomic.Int32
	load := func(err error) func() (*analyticsData, error) {
		return func() (*analyticsData, error) {
			loads.Add(1)
			if err != nil {
				return nil, err
			}
			return &analyticsData{Days: []time.Time{now}}, nil
		}
	}
	get := func(key string, err error) (*analyticsData, error) { return c.get(key, load(err)) }

	a, _ := get("a", nil)
	b, _ := get("a", nil)
	if a != b || loads.Load() != 1 {
		t.Fatalf("a fresh entry was read again: %d loads", loads.Load())
	}
	now = now.Add(30 * time.Second)
	if b, _ = get("a", nil); a == b || loads.Load() != 2 {
		t.Fatal("an expired entry was kept")
	}
	// Failures are not kept.
	now = now.Add(time.Second)
	if _, err := get("x", errAnalyticsDown); err == nil {
		t.Fatal("no error")
	}
	if d, err := get("x", nil); err != nil || d == nil || loads.Load() != 4 {
		t.Fatalf("a failure was kept: %v %d", err, loads.Load())
	}
	// At most two entries: the oldest goes.
	now = now.Add(time.Second)
	get("y", nil)
	if len(c.entries) != 2 || c.entries["a"] != nil {
		t.Fatalf("entries %v", slices.Collect(maps.Keys(c.entries)))
	}
	// Readers of a range being read wait for it.
	loads.Store(0)
	release := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]*analyticsData, 5)
	for i := range results {
		wg.Go(func() {
			results[i], _ = c.get("slow", func() (*analyticsData, error) {
				loads.Add(1)
				<-release
				return &analyticsData{}, nil
			})
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if loads.Load() != 1 || slices.ContainsFunc(results, func(d *analyticsData) bool { return d != results[0] }) {
		t.Fatalf("%d loads for one range", loads.Load())
	}
}

func TestAnalyticsPageIsCached(t *testing.T) {
	env, seed := analyticsEnv(t, seedLastDay, envOptions{})
	viewer := env.MustSession(env.MustUser("vera", engine.RoleViewer))
	first := env.get("/api/v1/analytics?"+seedRange, viewer).Body.String()
	tr := &engine.Trace{ID: "late", ConversationID: seed.Conversations["slack-c1"], Platform: engine.PlatformSlack,
		Outcome: engine.OutcomeAnswered, StartedAt: seedDay.Add(time.Hour)}
	if err := env.store.SaveTrace(t.Context(), tr); err != nil {
		t.Fatal(err)
	}
	if again := env.get("/api/v1/analytics?"+seedRange, viewer).Body.String(); again != first {
		t.Error("the same range was read again at once")
	}
	// Another range (or dataset) is read afresh.
	var got analyticsResponse
	w := env.get("/api/v1/analytics?from=2025-03-01&to=2025-03-01", viewer)
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.Summary.Total.Messages != 6 {
		t.Errorf("another range: %d messages (%v)", got.Summary.Total.Messages, err)
	}
}

// busyAnalytics is a range of days of a busy deployment: four platforms
// every day, ratings every day, full top lists.
func busyAnalytics(days int) *analyticsData {
	last := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	q := analyticsQuery{First: last.AddDate(0, 0, -(days - 1)), Last: last, Top: engine.DefaultUsageLimit}
	d := &analyticsData{Query: q, Usage: map[engine.UsageDimension][]analyticsUsageRow{}, Summary: &engine.TrafficSummary{
		Total: engine.TrafficStats{Conversations: 102094, Messages: 1000000, Answered: 400000, NoAnswer: 35000, Failed: 20000,
			P50: 1200 * time.Millisecond, P95: 4 * time.Second, FeedbackUp: 9000, FeedbackDown: 8000}}}
	for _, p := range consolePlatforms {
		d.Summary.Platforms = append(d.Summary.Platforms, engine.TrafficStats{Platform: p, Conversations: 25000, Messages: 250000,
			Answered: 100000, P50: time.Second, P95: 3 * time.Second})
	}
	for day := q.First; !day.After(q.Last); day = day.AddDate(0, 0, 1) {
		d.Days = append(d.Days, day)
		for i, p := range consolePlatforms {
			d.Messages = append(d.Messages, engine.DailyMessages{Day: day, Platform: p, Messages: int64(1000 + 300*i + day.Day())})
		}
		d.Latency = append(d.Latency, engine.DailyLatency{Day: day, Messages: 5600,
			P50: time.Duration(1100+day.Day()) * time.Millisecond, P95: time.Duration(3900+10*day.Day()) * time.Millisecond})
		d.Feedback = append(d.Feedback, engine.DailyFeedback{Day: day, Up: int64(90 + day.Day()), Down: int64(80 - day.Day())})
	}
	for _, by := range analyticsDimensions {
		var list []engine.TokenUsage
		for i := range q.Top {
			list = append(list, engine.TokenUsage{Key: string(by) + "-" + strconv.Itoa(i), Platform: engine.PlatformSlack,
				Messages: int64(10000 - 100*i), TokensIn: int64(5000000 - 1000*i), TokensOut: int64(900000 - 1000*i),
				Models: []engine.ModelTokens{{Model: "gpt-4o", Messages: 5000, TokensIn: 2500000, TokensOut: 450000},
					{Model: "gpt-4o-mini", Messages: 5000, TokensIn: 2500000, TokensOut: 450000}}})
		}
		d.Usage[by] = newUsageRows(by, list, analyticsNames{}, nil)
	}
	for i := range q.Top {
		d.Unanswered = append(d.Unanswered, engine.UnansweredQuestion{Question: "How do I rotate the signing secret, take " + strconv.Itoa(i) + "?",
			Count: int64(90 - i), NoAnswer: 50, Failed: 3, LastAskedAt: last.Add(-time.Duration(i) * time.Hour), ConversationID: "c" + strconv.Itoa(i)})
	}
	return d
}

// TestAnalyticsSectionDrawnOnce checks that the part of the page drawn
// from the data is drawn once per read of the data, for every request
// that shows that read.
func TestAnalyticsSectionDrawnOnce(t *testing.T) {
	env := mustEnv(t, envOptions{})
	d := busyAnalytics(90)
	first, err := env.srv.analyticsSection(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{`id="summary"`, `id="chart-messages"`, `id="messages-table"`, `id="latency-table"`,
		`id="usage-model"`, `id="feedback-table"`, `id="unanswered-table"`} {
		if !strings.Contains(string(first), id) {
			t.Errorf("the section has no %s", id)
		}
	}
	d.Summary.Total.Messages = 1 // a new read would show this
	if again, _ := env.srv.analyticsSection(d); again != first {
		t.Error("the section was drawn again for the same read")
	}
	if other, _ := env.srv.analyticsSection(busyAnalytics(7)); other == first {
		t.Error("another read shows the same section")
	}
}

// BenchmarkAnalyticsSection draws the charts and tables of 90 busy days,
// what a request for them costs when the analytics cache has just read
// them.
func BenchmarkAnalyticsSection(b *testing.B) {
	env := mustEnv(b, envOptions{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := env.srv.analyticsSection(busyAnalytics(90)); err != nil {
			b.Fatal(err)
		}
	}
}
