package web

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
)

// xssImg is a second payload: an attribute-borne script.
const xssImg = `<img src=x onerror=alert(2)>`

// convSeed is what seedConversationsPage stored.
type convSeed struct {
	helpdesk, ops *engine.Assistant
	// Conversations by name: answered (Slack, rated helpful, a tool call),
	// failed (Discord), rated down (Mattermost), interrupted (console),
	// rejected (Slack), in the order they were stored.
	convs map[string]*engine.Conversation
	// traces of the answered conversation
	answered *engine.Trace
	// midway is after "failed" was stored and before "rated down".
	midway time.Time
}

// seedConversationsPage stores conversations on several platforms, with
// feedback and failures, and XSS payloads in every text the pages show.
func seedConversationsPage(t *testing.T, env *testEnv) *convSeed {
	t.Helper()
	ctx := context.Background()
	seed := &convSeed{convs: map[string]*engine.Conversation{}}
	seed.helpdesk = env.MustAssistant("helpdesk", true)
	seed.ops = env.MustAssistant("ops", false)
	alpha := 0.25
	base := time.Now().Add(-time.Minute)

	add := func(name string, conv *engine.Conversation, turns []*engine.Turn, tr *engine.Trace) {
		t.Helper()
		if err := env.store.EnsureConversation(ctx, conv); err != nil {
			t.Fatal(err)
		}
		if tr != nil {
			tr.ConversationID, tr.Platform, tr.ChannelID, tr.AssistantID = conv.ID, conv.Platform, conv.ChannelID, conv.AssistantID
			if err := env.store.SaveTrace(ctx, tr); err != nil {
				t.Fatal(err)
			}
		}
		for _, turn := range turns {
			turn.ConversationID = conv.ID
			if tr != nil {
				turn.TraceID = tr.ID
			}
			if err := env.store.AddTurn(ctx, turn); err != nil {
				t.Fatal(err)
			}
		}
		seed.convs[name] = conv
		time.Sleep(5 * time.Millisecond)
	}

	// Answered on Slack, with every part of a trace.
	answered := &engine.Trace{Model: "gpt-test " + xss, TokensIn: 321, TokensOut: 54, Outcome: engine.OutcomeAnswered,
		StartedAt: base, Duration: 2 * time.Second, UserID: "U1",
		Passages: []engine.PassageRef{
			{ID: "doc-1:3", KnowledgeBase: "handbook", Document: "handbook/leave.md", Title: "Leave " + xss, Score: 0.8731},
			{ID: "legacy", KnowledgeBase: "wiki", Document: "wiki/" + xssImg, Title: "", Score: 0.5},
		},
		Retrieval: &engine.AppliedSettings{Backend: "embedded", Mode: engine.SearchHybrid, Fusion: engine.FusionAlpha, Alpha: &alpha,
			RRFK: 60, Limit: 7, MinScore: 0.2, Rerank: true, Notes: []string{"note " + xss}},
	}
	for _, st := range []engine.TraceStep{
		{Name: engine.StepReceived, StartedAt: base, Duration: 20 * time.Millisecond},
		{Name: engine.StepAcknowledged, StartedAt: base.Add(20 * time.Millisecond), Duration: 5 * time.Millisecond},
		{Name: engine.StepRetrieval, StartedAt: base.Add(100 * time.Millisecond), Duration: 300 * time.Millisecond, Detail: "2 passages from handbook " + xss},
		{Name: engine.StepModel, StartedAt: base.Add(400 * time.Millisecond), Duration: time.Second, Detail: "321 tokens in, 54 out"},
		{Name: engine.StepTools, StartedAt: base.Add(1400 * time.Millisecond), Duration: 400 * time.Millisecond, Detail: "files__read ok " + xssImg, Error: "tool said " + xss},
		{Name: engine.StepPosted, StartedAt: base.Add(1900 * time.Millisecond), Duration: 100 * time.Millisecond, Detail: "answered"},
	} {
		answered.AddStep(st)
	}
	seed.answered = answered
	add("answered", &engine.Conversation{AssistantID: seed.helpdesk.ID, Platform: engine.PlatformSlack, ChannelID: "C-general" + xss,
		ThreadID: "1700000000.000100", UserID: "U1", Title: "Leave " + xss},
		[]*engine.Turn{
			{Role: engine.TurnUser, UserID: "U1", UserName: "dana " + xssImg, Content: "How many days of leave? " + xss},
			{Role: engine.TurnAssistant, Content: "You get **25 days** [1]. " + xss + " " + xssImg, Outcome: engine.OutcomeAnswered,
				Citations: []engine.Citation{{Index: 1, PassageID: "doc-1:3", KnowledgeBase: "handbook", Document: "handbook/leave.md",
					Title: "Leave " + xss, Section: "Leave › " + xssImg, Snippet: "25 days " + xss}}},
		}, answered)
	if err := env.store.RecordToolCall(ctx, &engine.ToolCallRecord{TraceID: answered.ID, AssistantID: seed.helpdesk.ID, AssistantName: "helpdesk",
		Platform: engine.PlatformSlack, UserID: "U1", Tool: "files__" + xss, ArgumentsHash: "hash-" + xssImg, Outcome: engine.ToolOK, Duration: 400 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if err := env.store.SaveFeedback(ctx, &engine.Feedback{TraceID: answered.ID, Platform: engine.PlatformSlack, UserID: "U9" + xss,
		Rating: engine.RatingUp, Comment: "Great " + xss}); err != nil {
		t.Fatal(err)
	}

	// Failed on Discord: no answer.
	add("failed", &engine.Conversation{AssistantID: seed.ops.ID, Platform: engine.PlatformDiscord, ChannelID: "D-dev",
		ThreadID: "t2", UserID: "U2", Title: "Deploy =cmd|' /C calc'!A0"},
		[]*engine.Turn{{Role: engine.TurnUser, UserID: "U2", UserName: "eve", Content: "=HYPERLINK(\"http://evil\"), \"quoted\"\nsecond line"}},
		&engine.Trace{Outcome: engine.OutcomeFailed, Error: "model unavailable " + xss, Duration: time.Second, UserID: "U2"})
	seed.midway = time.Now()
	time.Sleep(5 * time.Millisecond)

	// Rated down on Mattermost.
	down := &engine.Trace{Outcome: engine.OutcomeAnswered, Duration: time.Second, UserID: "U3", Model: "gpt-test"}
	add("down", &engine.Conversation{AssistantID: seed.helpdesk.ID, Platform: engine.PlatformMattermost, ChannelID: "M-town",
		ThreadID: "t3", UserID: "U3", Title: "Expenses"},
		[]*engine.Turn{
			{Role: engine.TurnUser, UserID: "U3", UserName: "fay", Content: "+1 expenses?"},
			{Role: engine.TurnAssistant, Content: "-Within 30 days.", Outcome: engine.OutcomeAnswered},
		}, down)
	if err := env.store.SaveFeedback(ctx, &engine.Feedback{TraceID: down.ID, Platform: engine.PlatformMattermost, UserID: "U3",
		Rating: engine.RatingDown, Comment: "@wrong"}); err != nil {
		t.Fatal(err)
	}

	// Interrupted in the Playground.
	add("interrupted", &engine.Conversation{AssistantID: seed.helpdesk.ID, Platform: engine.PlatformConsole, ChannelID: "playground",
		ThreadID: "t4", UserID: "console-user", Title: "Holidays"},
		[]*engine.Turn{
			{Role: engine.TurnUser, UserID: "console-user", UserName: "ada", Content: "Holidays?"},
			{Role: engine.TurnAssistant, Content: "Part of an answer", Outcome: engine.OutcomeInterrupted},
		}, &engine.Trace{Outcome: engine.OutcomeInterrupted, Error: "stream stalled", Duration: time.Second})

	// Rejected on Slack.
	add("rejected", &engine.Conversation{AssistantID: seed.helpdesk.ID, Platform: engine.PlatformSlack, ChannelID: "C-random",
		ThreadID: "t5", UserID: "U1", Title: "Huge"},
		[]*engine.Turn{{Role: engine.TurnUser, UserID: "U1", UserName: "dana", Content: "a huge message"}},
		&engine.Trace{Outcome: engine.OutcomeRejected, Error: "message too large"})
	return seed
}

// listedIDs returns the conversation ids of the page's table, in order.
func listedIDs(doc *goquery.Document) []string {
	var ids []string
	doc.Find("table#conversations tbody tr.conversation").Each(func(_ int, s *goquery.Selection) {
		ids = append(ids, s.AttrOr("data-conversation-id", ""))
	})
	return ids
}

// apiIDs returns the conversation ids of a listing from the API.
func apiIDs(t *testing.T, body []byte) []string {
	t.Helper()
	var v struct {
		Conversations []struct {
			ID string `json:"id"`
		} `json:"conversations"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode: %v\n%s", err, body)
	}
	ids := []string{}
	for _, c := range v.Conversations {
		ids = append(ids, c.ID)
	}
	return ids
}

func TestConversationsFilters(t *testing.T) {
	env := mustEnv(t, envOptions{})
	seed := seedConversationsPage(t, env)
	viewer := env.MustSession(env.MustUser("vic", engine.RoleViewer))
	token := env.MustToken(env.MustUser("tok", engine.RoleViewer))
	id := func(names ...string) []string {
		out := []string{}
		for _, n := range names {
			out = append(out, seed.convs[n].ID)
		}
		return out
	}
	today := time.Now().UTC().Format(time.DateOnly)
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	midway := seed.midway.UTC().Format(time.RFC3339Nano)
	tests := []struct {
		name  string
		query url.Values
		want  []string // newest first
	}{
		{"everything", nil, id("rejected", "interrupted", "down", "failed", "answered")},
		{"platform", url.Values{"platform": {"slack"}}, id("rejected", "answered")},
		{"assistant", url.Values{"assistant": {seed.ops.ID}}, id("failed")},
		{"user", url.Values{"user": {"U1"}}, id("rejected", "answered")},
		{"channel", url.Values{"channel": {"M-town"}}, id("down")},
		{"from today", url.Values{"from": {today}}, id("rejected", "interrupted", "down", "failed", "answered")},
		{"from tomorrow", url.Values{"from": {tomorrow}}, id()},
		{"until yesterday", url.Values{"to": {yesterday}}, id()},
		{"until today", url.Values{"to": {today}}, id("rejected", "interrupted", "down", "failed", "answered")},
		{"from a time", url.Values{"from": {midway}}, id("rejected", "interrupted", "down")},
		{"until a time", url.Values{"to": {midway}}, id("failed", "answered")},
		{"rated helpful", url.Values{"feedback": {"up"}}, id("answered")},
		{"rated not helpful", url.Values{"feedback": {"down"}}, id("down")},
		{"rated", url.Values{"feedback": {"rated"}}, id("down", "answered")},
		{"not rated", url.Values{"feedback": {"none"}}, id("rejected", "interrupted", "failed")},
		{"errors only", url.Values{"errors": {"1"}}, id("rejected", "interrupted", "failed")},
		{"errors on slack", url.Values{"errors": {"on"}, "platform": {"slack"}}, id("rejected")},
		{"errors off", url.Values{"errors": {"0"}, "platform": {"mattermost"}}, id("down")},
		{"no match", url.Values{"platform": {"discord"}, "feedback": {"up"}}, id()},
		{"limit", url.Values{"limit": {"2"}}, id("rejected", "interrupted")},
		{"limit and offset", url.Values{"limit": {"2"}, "offset": {"2"}}, id("down", "failed")},
		{"offset past the end", url.Values{"offset": {"50"}}, id()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			qs := ""
			if len(tt.query) > 0 {
				qs = "?" + tt.query.Encode()
			}
			w := env.get("/conversations"+qs, viewer)
			if w.Code != http.StatusOK {
				t.Fatalf("page status %d: %s", w.Code, w.Body)
			}
			doc := mustDoc(t, w.Body.Bytes())
			if got := listedIDs(doc); !slices.Equal(nonNil(got), tt.want) {
				t.Errorf("page lists %v, want %v", got, tt.want)
			}
			if len(tt.want) == 0 && doc.Find("#conversations-empty").Length() != 1 {
				t.Error("no empty state")
			}
			w = env.get("/api/v1/conversations"+qs, token)
			if w.Code != http.StatusOK {
				t.Fatalf("API status %d: %s", w.Code, w.Body)
			}
			if got := apiIDs(t, w.Body.Bytes()); !slices.Equal(got, tt.want) {
				t.Errorf("API lists %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConversationsListPage(t *testing.T) {
	env := mustEnv(t, envOptions{})
	seed := seedConversationsPage(t, env)
	viewer := env.MustSession(env.MustUser("vic", engine.RoleViewer))

	// The form keeps the filters; the table shows each conversation's figures.
	q := url.Values{"platform": {"slack"}, "assistant": {seed.helpdesk.ID}, "user": {"U1"}, "channel": {"C-general" + xss},
		"from": {"2020-01-01"}, "to": {"2099-12-31"}, "feedback": {"up"}, "errors": {"0"}}
	w := env.get("/conversations?"+q.Encode(), viewer)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	doc := mustDoc(t, w.Body.Bytes())
	node := doc.Get(0)
	selectOne(t, node, `a[href="/conversations"][aria-current=page]`)
	form := selectOne(t, node, `form#filters[method=get][action="/conversations"]`)
	selectOne(t, form, `select[name=platform] option[value=slack][selected]`)
	selectOne(t, form, `select[name=assistant] option[selected]`)
	if v := doc.Find(`select[name=assistant] option[selected]`).AttrOr("value", ""); v != seed.helpdesk.ID {
		t.Errorf("selected assistant %q", v)
	}
	for name, want := range map[string]string{"user": "U1", "channel": "C-general" + xss, "from": "2020-01-01", "to": "2099-12-31"} {
		if got := doc.Find(`input[name=`+name+`]`).AttrOr("value", "?"); got != want {
			t.Errorf("input %s = %q, want %q", name, got, want)
		}
	}
	selectOne(t, form, `select[name=feedback] option[value=up][selected]`)
	if doc.Find(`input[name=errors][checked]`).Length() != 0 {
		t.Error("errors checked")
	}
	for _, sel := range []string{`label[for=f-platform]`, `label[for=f-assistant]`, `label[for=f-user]`, `label[for=f-channel]`,
		`label[for=f-from]`, `label[for=f-to]`, `label[for=f-feedback]`, `label[for=f-errors]`} {
		selectOne(t, node, sel)
	}
	row := doc.Find("tr.conversation")
	if row.Length() != 1 {
		t.Fatalf("rows: %d", row.Length())
	}
	cells := row.Children()
	want := []string{"", "slack", "C-general" + xss, "dana " + xssImg + " (U1)", "helpdesk", "Leave " + xss, "2", "answered", ""}
	if cells.Length() != len(want) {
		t.Fatalf("cells: %d", cells.Length())
	}
	cells.Each(func(i int, s *goquery.Selection) {
		if want[i] != "" && strings.TrimSpace(s.Text()) != want[i] {
			t.Errorf("cell %d = %q, want %q", i, strings.TrimSpace(s.Text()), want[i])
		}
	})
	if href := row.Find("a").AttrOr("href", ""); href != "/conversations/"+seed.convs["answered"].ID {
		t.Errorf("link %q", href)
	}
	if got := strings.Join(strings.Fields(row.Find(".feedback-cell").Text()), " "); got != "1 helpful 0 not helpful" {
		t.Errorf("feedback %q", got)
	}
	// The export carries the same filters.
	csvURL, _ := url.Parse(doc.Find("a#export-csv").AttrOr("href", ""))
	if csvURL.Path != "/conversations.csv" || csvURL.Query().Get("channel") != "C-general"+xss || csvURL.Query().Get("feedback") != "up" {
		t.Errorf("export link %s", csvURL)
	}

	// Errors: the last outcome and the count.
	w = env.get("/conversations?errors=1&platform=discord", viewer)
	doc = mustDoc(t, w.Body.Bytes())
	if got := doc.Find("tr.conversation [data-outcome]").AttrOr("data-outcome", ""); got != "failed" {
		t.Errorf("outcome %q", got)
	}
	if got := doc.Find("tr.conversation .error-count").Text(); got != "1 with errors" {
		t.Errorf("error count %q", got)
	}
	selectOne(t, doc.Get(0), `input[name=errors][checked]`)

	// Paging keeps the filters.
	w = env.get("/conversations?limit=2&feedback=none", viewer)
	doc = mustDoc(t, w.Body.Bytes())
	next, _ := url.Parse(doc.Find(`nav.pager a[rel=next]`).AttrOr("href", ""))
	if next.Path != "/conversations" || next.Query().Get("offset") != "2" || next.Query().Get("limit") != "2" || next.Query().Get("feedback") != "none" {
		t.Fatalf("next link %s", next)
	}
	if doc.Find(`nav.pager a[rel=prev]`).Length() != 0 {
		t.Error("a previous link on the first page")
	}
	w = env.get(next.String(), viewer)
	doc = mustDoc(t, w.Body.Bytes())
	if got := listedIDs(doc); !slices.Equal(got, []string{seed.convs["failed"].ID}) {
		t.Errorf("second page %v", got)
	}
	prev, _ := url.Parse(doc.Find(`nav.pager a[rel=prev]`).AttrOr("href", ""))
	if prev.Query().Get("offset") != "" || prev.Query().Get("feedback") != "none" {
		t.Errorf("previous link %s", prev)
	}
	if doc.Find(`nav.pager a[rel=next]`).Length() != 0 {
		t.Error("a next link on the last page")
	}
	if got := doc.Find("#results-summary").Text(); !strings.Contains(got, "3–3") {
		t.Errorf("summary %q", got)
	}

	// Filtered, nothing matches: say so and offer to clear.
	w = env.get("/conversations?platform=discord&feedback=up", viewer)
	doc = mustDoc(t, w.Body.Bytes())
	if !strings.Contains(doc.Find("#conversations-empty").Text(), "No conversation matches these filters") ||
		doc.Find(`#conversations-empty a[href="/conversations"]`).Length() != 1 {
		t.Errorf("empty state: %q", doc.Find("#conversations-empty").Text())
	}
}

func TestConversationsEmptyAndInvalid(t *testing.T) {
	env := mustEnv(t, envOptions{})
	viewer := env.MustSession(env.MustUser("vic", engine.RoleViewer))
	w := env.get("/conversations", viewer)
	doc := mustDoc(t, w.Body.Bytes())
	if w.Code != http.StatusOK || !strings.Contains(doc.Find("#conversations-empty").Text(), "No conversations yet") ||
		doc.Find(`#conversations-empty a[href="/playground"]`).Length() != 1 {
		t.Fatalf("empty state %d: %q", w.Code, doc.Find("#conversations-empty").Text())
	}
	if doc.Find("table#conversations").Length() != 0 {
		t.Error("a table without rows")
	}
	w = env.get("/api/v1/conversations", env.MustToken(viewer.user))
	body := decodeJSON(t, w.Body.Bytes())
	if list, ok := body["conversations"].([]any); !ok || len(list) != 0 || body["next_offset"] != nil {
		t.Errorf("empty listing %s", w.Body)
	}

	token := env.MustToken(viewer.user)
	for _, tt := range []struct{ query, names string }{
		{"platform=" + url.QueryEscape(xss), "Platform"},
		{"feedback=sideways", "sideways"},
		{"errors=maybe", "errors"},
		{"from=31%2F12%2F2025", "from"},
		{"to=tomorrow", "to"},
		{"from=2026-02-01&to=2026-01-01", "before"},
		{"limit=0", "limit"},
		{"limit=500", "limit"},
		{"offset=-1", "offset"},
	} {
		t.Run(tt.query, func(t *testing.T) {
			w := env.get("/conversations?"+tt.query, viewer)
			doc := mustDoc(t, w.Body.Bytes())
			msg := doc.Find("#conversations-error").Text()
			if w.Code != http.StatusBadRequest || !strings.Contains(msg, tt.names) {
				t.Errorf("page: %d %q", w.Code, msg)
			}
			if strings.Contains(w.Body.String(), xss) {
				t.Error("the payload reached the page unescaped")
			}
			selectOne(t, doc.Get(0), "form#filters") // the form stays, to fix the filter
			w = env.get("/api/v1/conversations?"+tt.query, token)
			code, msg := errorOf(t, w.Body.Bytes())
			if w.Code != http.StatusBadRequest || code != engine.EINVALID || !strings.Contains(msg, tt.names) {
				t.Errorf("API: %d %s %q", w.Code, code, msg)
			}
			w = env.get("/conversations.csv?"+tt.query, viewer)
			if w.Code != http.StatusBadRequest {
				t.Errorf("CSV: %d", w.Code)
			}
		})
	}
}

func TestConversationTranscript(t *testing.T) {
	env := mustEnv(t, envOptions{})
	seed := seedConversationsPage(t, env)
	viewer := env.MustSession(env.MustUser("vic", engine.RoleViewer))
	conv := seed.convs["answered"]
	w := env.get("/conversations/"+conv.ID, viewer)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	doc := mustDoc(t, w.Body.Bytes())
	node := doc.Get(0)
	if got := doc.Find("h1").Text(); got != "Leave "+xss {
		t.Errorf("title %q", got)
	}
	selectOne(t, node, `a[href="/conversations"][aria-current=page]`)
	meta := doc.Find("#conversation-meta").Text()
	for _, want := range []string{"slack", "C-general" + xss, "1700000000.000100", "dana " + xssImg, "U1", "helpdesk", "1 helpful, 0 not helpful"} {
		if !strings.Contains(meta, want) {
			t.Errorf("meta lacks %q: %q", want, meta)
		}
	}

	ex := doc.Find("li.exchange")
	if ex.Length() != 1 || ex.AttrOr("data-trace-id", "") != seed.answered.ID {
		t.Fatalf("exchanges: %d", ex.Length())
	}
	// The question, escaped; the answer rendered from Markdown, raw HTML left out.
	q := ex.Find("section.turn-user")
	if got := q.Find(".turn-text").Text(); got != "How many days of leave? "+xss {
		t.Errorf("question %q", got)
	}
	if got := q.Find(".turn-who").Text(); got != "dana "+xssImg+" (U1)" {
		t.Errorf("who %q", got)
	}
	a := ex.Find("section.turn-assistant")
	if got := a.Find(".turn-rendered strong").Text(); got != "25 days" {
		t.Errorf("markdown: %q", got)
	}
	if a.Find(".turn-rendered script, .turn-rendered img").Length() != 0 {
		t.Error("raw HTML in the answer became markup")
	}
	cite := a.Find(".citations li.citation")
	if cite.Length() != 1 || cite.Find("a").AttrOr("href", "") != "/knowledge/handbook/documents/doc-1#chunk-3" ||
		!strings.Contains(cite.Text(), "25 days "+xss) || !strings.Contains(cite.Text(), "Leave › "+xssImg) {
		t.Errorf("citation %q %q", cite.Find("a").AttrOr("href", ""), cite.Text())
	}
	if got := ex.Find(".exchange-status [data-outcome]").AttrOr("data-outcome", ""); got != "answered" {
		t.Errorf("outcome %q", got)
	}
	if got := ex.Find(".exchange-status").Text(); !strings.Contains(got, "2s") || !strings.Contains(got, "gpt-test "+xss) ||
		!strings.Contains(got, "321 tokens in, 54 out") {
		t.Errorf("status line %q", got)
	}
	// Feedback.
	fb := ex.Find(".feedback-list li.feedback-up")
	if fb.Length() != 1 || !strings.Contains(fb.Text(), "slack:U9"+xss) || fb.Find("q").Text() != "Great "+xss {
		t.Errorf("feedback %q", fb.Text())
	}

	// The trace: each step, in order, with its timing and a bar scaled to the turn.
	var steps []string
	ex.Find("table.steps-table tbody tr.step").Each(func(_ int, s *goquery.Selection) {
		steps = append(steps, s.AttrOr("data-step", ""))
	})
	if want := []string{"received", "acknowledged", "retrieval", "model", "tools", "posted"}; !slices.Equal(steps, want) {
		t.Fatalf("steps %v, want %v", steps, want)
	}
	model := ex.Find(`tr.step[data-step=model]`)
	cells := model.Children()
	if cells.Eq(1).Text() != "+400ms" || cells.Eq(2).Text() != "1s" {
		t.Errorf("model step: starts %q, took %q", cells.Eq(1).Text(), cells.Eq(2).Text())
	}
	fill := model.Find("svg.step-bar rect.step-fill")
	if fill.AttrOr("x", "") != "200.0" || fill.AttrOr("width", "") != "500.0" {
		t.Errorf("model bar x=%q width=%q", fill.AttrOr("x", ""), fill.AttrOr("width", ""))
	}
	if model.Find("svg[aria-hidden=true]").Length() != 1 {
		t.Error("the bar is not hidden from screen readers (the table says it)")
	}
	tools := ex.Find(`tr.step[data-step=tools]`)
	if !tools.HasClass("step-failed") || !strings.Contains(tools.Text(), "files__read ok "+xssImg) || tools.Find(".step-error").Text() != "Error: tool said "+xss {
		t.Errorf("tools step %q", tools.Text())
	}
	if got := ex.Find(`tr.step[data-step=retrieval]`).Text(); !strings.Contains(got, "2 passages from handbook "+xss) {
		t.Errorf("retrieval step %q", got)
	}
	// Passages used, linking to their chunk.
	passages := ex.Find("table.passages-table tbody tr.passage")
	if passages.Length() != 2 {
		t.Fatalf("passages %d", passages.Length())
	}
	first := passages.Eq(0).Children()
	if first.Eq(0).Text() != "0.873" || first.Eq(1).Text() != "handbook" || first.Eq(2).Text() != "handbook/leave.md" ||
		first.Eq(3).Find("a").AttrOr("href", "") != "/knowledge/handbook/documents/doc-1#chunk-3" || first.Eq(3).Text() != "Leave "+xss {
		t.Errorf("first passage %q", passages.Eq(0).Text())
	}
	if passages.Eq(1).Find("a").Length() != 0 || passages.Eq(1).Children().Eq(2).Text() != "wiki/"+xssImg {
		t.Errorf("a passage id that is no chunk id got a link: %q", passages.Eq(1).Text())
	}
	settings := ex.Find("dl.settings-list").Text()
	for _, want := range []string{"embedded", "hybrid", "alpha", "0.25", "60", "7", "0.2", "true", "note " + xss} {
		if !strings.Contains(settings, want) {
			t.Errorf("settings lack %q: %q", want, settings)
		}
	}
	// Tool calls of the trace.
	call := ex.Find("table.tool-calls-table tbody tr.tool-call")
	if call.Length() != 1 || call.Find("th").Text() != "files__"+xss || !strings.Contains(call.Text(), "hash-"+xssImg) ||
		!strings.Contains(call.Text(), "400ms") || !strings.Contains(call.Text(), "ok") {
		t.Errorf("tool calls %q", call.Text())
	}

	// Replay: the question, the settings it ran with, the knowledge bases.
	href := ex.Find("a.replay-link").AttrOr("href", "")
	u, err := url.Parse(href)
	if err != nil || u.Path != "/knowledge/search" {
		t.Fatalf("replay link %q", href)
	}
	rq := u.Query()
	for k, want := range map[string]string{"q": "How many days of leave? " + xss, "mode": "hybrid", "fusion": "alpha", "alpha": "0.25",
		"rrf_k": "60", "limit": "7", "min_score": "0.2", "rerank": "1"} {
		if got := rq.Get(k); got != want {
			t.Errorf("replay %s = %q, want %q", k, got, want)
		}
	}
	if got := rq["kb"]; !slices.Equal(got, []string{"handbook", "wiki"}) {
		t.Errorf("replay kb = %v", got)
	}

	// A failed turn: the question, no answer, the outcome and its error.
	w = env.get("/conversations/"+seed.convs["failed"].ID, viewer)
	doc = mustDoc(t, w.Body.Bytes())
	ex = doc.Find("li.exchange")
	if ex.Find("section.turn-assistant").Length() != 0 || ex.Find("section.turn-user").Length() != 1 {
		t.Error("a failed turn shows an answer")
	}
	if got := ex.Find(".exchange-notice").Text(); !strings.Contains(got, "failed") || !strings.Contains(got, "model unavailable "+xss) {
		t.Errorf("notice %q", got)
	}
	if ex.Find("details.trace[open]").Length() != 1 {
		t.Error("the trace of a failed turn is folded")
	}
	if ex.Find("a.replay-link").Length() != 0 {
		t.Error("a replay link for a turn that searched nothing")
	}
	if got := ex.Find(".turn-text").Text(); got != "=HYPERLINK(\"http://evil\"), \"quoted\"\nsecond line" {
		t.Errorf("question %q", got)
	}
	// Interrupted: the partial answer and the notice.
	w = env.get("/conversations/"+seed.convs["interrupted"].ID, viewer)
	doc = mustDoc(t, w.Body.Bytes())
	if got := doc.Find(".exchange-notice").Text(); !strings.Contains(got, "stopped part way") || !strings.Contains(got, "stream stalled") {
		t.Errorf("interrupted notice %q", got)
	}

	// Unknown conversations.
	w = env.get("/conversations/nope", viewer)
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "does not exist") {
		t.Errorf("unknown conversation: %d", w.Code)
	}
	w = env.get("/api/v1/conversations/nope", env.MustToken(viewer.user))
	if code, _ := errorOf(t, w.Body.Bytes()); w.Code != http.StatusNotFound || code != engine.ENOTFOUND {
		t.Errorf("unknown conversation (API): %d %s", w.Code, code)
	}
}

// A conversation that the engine really had: its trace's steps, passages
// and the replay of its retrieval with the assistant's knowledge bases.
func TestConversationTranscriptFromChat(t *testing.T) {
	env := mustEnv(t, envOptions{})
	a := env.MustAssistant("helpdesk", true)
	a.Retrieval = engine.RetrievalSettings{Limit: 3, MinScore: 0.3}
	if err := env.store.UpdateAssistant(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	alice := env.MustUser("alice", engine.RoleViewer)
	env.model.Script(enginetest.Reply{Chunks: []string{"You get 25 days [1]."}})
	if w := env.postChat(env.MustToken(alice), `{"message":"How much leave?"}`); w.Code != http.StatusOK {
		t.Fatalf("chat: %d %s", w.Code, w.Body)
	}
	convs := env.conversations()
	if len(convs) != 1 {
		t.Fatalf("conversations: %d", len(convs))
	}
	viewer := env.MustSession(alice)
	doc := mustDoc(t, env.get("/conversations", viewer).Body.Bytes())
	if got := listedIDs(doc); !slices.Equal(got, []string{convs[0].ID}) {
		t.Fatalf("listed %v", got)
	}
	w := env.get("/conversations/"+convs[0].ID, viewer)
	doc = mustDoc(t, w.Body.Bytes())
	var steps []string
	doc.Find("tr.step").Each(func(_ int, s *goquery.Selection) { steps = append(steps, s.AttrOr("data-step", "")) })
	for _, want := range []string{"assistant", "history", "retrieval", "model", "posted"} {
		if !slices.Contains(steps, want) {
			t.Errorf("steps %v lack %s", steps, want)
		}
	}
	if n := doc.Find("tr.passage").Length(); n != 2 {
		t.Errorf("passages %d", n)
	}
	if got := doc.Find(".turn-user .turn-text").Text(); got != "How much leave?" {
		t.Errorf("question %q", got)
	}
	u, _ := url.Parse(doc.Find("a.replay-link").AttrOr("href", ""))
	rq := u.Query()
	if rq.Get("q") != "How much leave?" || !slices.Equal(rq["kb"], []string{"handbook"}) || rq.Get("limit") != "3" ||
		rq.Get("min_score") != "0.3" || rq.Get("mode") != "lexical" {
		t.Errorf("replay %s", u)
	}
}

func TestConversationsAPI(t *testing.T) {
	env := mustEnv(t, envOptions{})
	seed := seedConversationsPage(t, env)
	token := env.MustToken(env.MustUser("tok", engine.RoleViewer))

	w := env.get("/api/v1/conversations?limit=2&platform=slack", token)
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	var list struct {
		Conversations []map[string]any `json:"conversations"`
		Limit         int              `json:"limit"`
		Offset        int              `json:"offset"`
		NextOffset    *int             `json:"next_offset"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Conversations) != 2 || list.Limit != 2 || list.Offset != 0 || list.NextOffset != nil {
		t.Fatalf("list %s", w.Body)
	}
	c := list.Conversations[1]
	for k, want := range map[string]any{"id": seed.convs["answered"].ID, "platform": "slack", "channel_id": "C-general" + xss,
		"assistant_id": seed.helpdesk.ID, "assistant_name": "helpdesk", "user_id": "U1", "user_name": "dana " + xssImg,
		"title": "Leave " + xss, "turns": 2.0, "last_outcome": "answered", "errors": 0.0, "feedback_up": 1.0, "feedback_down": 0.0} {
		if c[k] != want {
			t.Errorf("%s = %#v, want %#v", k, c[k], want)
		}
	}
	for _, k := range []string{"created_at", "updated_at", "thread_id"} {
		if _, ok := c[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
	w = env.get("/api/v1/conversations?limit=1", token)
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || list.NextOffset == nil || *list.NextOffset != 1 {
		t.Fatalf("next_offset: %s", w.Body)
	}

	w = env.get("/api/v1/conversations/"+seed.convs["answered"].ID, token)
	if w.Code != http.StatusOK {
		t.Fatalf("detail: %d %s", w.Code, w.Body)
	}
	var detail struct {
		Conversation map[string]any `json:"conversation"`
		Turns        []engine.Turn  `json:"turns"`
		Traces       []*struct {
			*engine.Trace
			ToolCalls []engine.ToolCallRecord `json:"tool_calls"`
			Feedback  []engine.Feedback       `json:"feedback"`
			ReplayURL string                  `json:"replay_url"`
		} `json:"traces"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &detail); err != nil {
		t.Fatal(err)
	}
	if detail.Conversation["id"] != seed.convs["answered"].ID || detail.Conversation["feedback_up"] != 1.0 {
		t.Errorf("conversation %v", detail.Conversation)
	}
	if len(detail.Turns) != 2 || detail.Turns[0].Role != engine.TurnUser || detail.Turns[1].Citations[0].PassageID != "doc-1:3" {
		t.Errorf("turns %+v", detail.Turns)
	}
	if len(detail.Traces) != 1 {
		t.Fatalf("traces %d", len(detail.Traces))
	}
	tr := detail.Traces[0]
	if tr.ID != seed.answered.ID || len(tr.Steps) != 6 || len(tr.Passages) != 2 || tr.Retrieval == nil || tr.Retrieval.Limit != 7 ||
		len(tr.ToolCalls) != 1 || tr.ToolCalls[0].Tool != "files__"+xss || len(tr.Feedback) != 1 || tr.Feedback[0].Comment != "Great "+xss ||
		!strings.HasPrefix(tr.ReplayURL, "/knowledge/search?") {
		t.Errorf("trace %+v %+v", tr.Trace, tr)
	}
	// A failed turn's trace comes with empty lists, not null.
	w = env.get("/api/v1/conversations/"+seed.convs["failed"].ID, token)
	body := decodeJSON(t, w.Body.Bytes())
	traces := body["traces"].([]any)
	first := traces[0].(map[string]any)
	if _, ok := first["tool_calls"].([]any); !ok {
		t.Errorf("tool_calls %#v", first["tool_calls"])
	}
	if _, ok := first["feedback"].([]any); !ok {
		t.Errorf("feedback %#v", first["feedback"])
	}
	if first["outcome"] != "failed" {
		t.Errorf("outcome %v", first["outcome"])
	}
}

func TestConversationsCSV(t *testing.T) {
	env := mustEnv(t, envOptions{})
	seed := seedConversationsPage(t, env)
	viewer := env.MustSession(env.MustUser("vic", engine.RoleViewer))
	read := func(t *testing.T, path string) [][]string {
		t.Helper()
		w := env.get(path, viewer)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "text/csv; charset=utf-8" {
			t.Errorf("content type %q", ct)
		}
		if cd := w.Header().Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="conversations-`) {
			t.Errorf("content disposition %q", cd)
		}
		r := csv.NewReader(strings.NewReader(w.Body.String()))
		rows, err := r.ReadAll()
		if err != nil {
			t.Fatalf("not RFC 4180 CSV: %v\n%s", err, w.Body)
		}
		if !slices.Equal(rows[0], conversationCSVHeader) {
			t.Fatalf("header %v", rows[0])
		}
		return rows[1:]
	}
	col := func(name string) int { return slices.Index(conversationCSVHeader, name) }

	rows := read(t, "/conversations.csv")
	// One row per turn: 2 + 1 + 2 + 2 + 1.
	if len(rows) != 8 {
		t.Fatalf("rows: %d", len(rows))
	}
	byTurn := map[string][]string{}
	for _, r := range rows {
		byTurn[r[col("conversation_id")]+"/"+r[col("role")]] = r
	}

	// Quoting survives commas, quotes and newlines; formulas are defused.
	q := byTurn[seed.convs["failed"].ID+"/user"]
	if got := q[col("text")]; got != "'=HYPERLINK(\"http://evil\"), \"quoted\"\nsecond line" {
		t.Errorf("text %q", got)
	}
	if got := q[col("title")]; got != "Deploy =cmd|' /C calc'!A0" {
		t.Errorf("title %q", got)
	}
	if q[col("outcome")] != "failed" || q[col("error")] != "model unavailable "+xss || q[col("trace_id")] == "" {
		t.Errorf("failed turn: %v", q)
	}
	down := byTurn[seed.convs["down"].ID+"/user"]
	if down[col("text")] != "'+1 expenses?" || down[col("trace_id")] != "" {
		t.Errorf("question of an answered turn: %v", down)
	}
	ans := byTurn[seed.convs["down"].ID+"/assistant"]
	if ans[col("text")] != "'-Within 30 days." || ans[col("feedback_down")] != "1" || ans[col("feedback_up")] != "0" ||
		ans[col("model")] != "gpt-test" || ans[col("duration_ms")] != "1000" {
		t.Errorf("answer: %v", ans)
	}
	good := byTurn[seed.convs["answered"].ID+"/assistant"]
	if good[col("tokens_in")] != "321" || good[col("passages")] != "handbook/handbook/leave.md (0.873); wiki/wiki/"+xssImg+" (0.500)" ||
		good[col("citations")] != "[1] handbook/handbook/leave.md" || good[col("assistant")] != "helpdesk" || good[col("platform")] != "slack" {
		t.Errorf("answered: %v", good)
	}
	for _, r := range rows {
		for i, cell := range r {
			if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
				t.Errorf("column %s starts a formula: %q", conversationCSVHeader[i], cell)
			}
		}
	}

	// Filters apply; paging does not.
	rows = read(t, "/conversations.csv?platform=slack&errors=1&limit=1&offset=3")
	if len(rows) != 1 || rows[0][col("conversation_id")] != seed.convs["rejected"].ID {
		t.Errorf("filtered export: %v", rows)
	}
	rows = read(t, "/conversations.csv?feedback=rated")
	if len(rows) != 4 {
		t.Errorf("rated export: %d rows", len(rows))
	}
	rows = read(t, "/conversations.csv?platform=discord&feedback=up")
	if len(rows) != 0 {
		t.Errorf("empty export: %v", rows)
	}

	// API clients export with a token.
	w := env.get("/api/v1/conversations.csv?platform=mattermost", env.MustToken(viewer.user))
	if w.Code != http.StatusOK || strings.Count(w.Body.String(), "\n") != 3 {
		t.Errorf("API export: %d %q", w.Code, w.Body)
	}
}

func TestCSVSafe(t *testing.T) {
	tests := []struct{ in, want string }{
		{"=1+2", "'=1+2"}, {"+1", "'+1"}, {"-1", "'-1"}, {"@SUM(A1)", "'@SUM(A1)"}, {"\tx", "'\tx"}, {"\rx", "'\rx"},
		{"plain", "plain"}, {"", ""}, {"a=b", "a=b"}, {"'=x", "'=x"},
	}
	for _, tt := range tests {
		if got := csvSafe([]string{tt.in})[0]; got != tt.want {
			t.Errorf("csvSafe(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Every text of the conversations pages is escaped: the seed puts a
// payload in titles, user names, channel ids, turns, notices, steps,
// passages, tool calls, feedback and settings.
func TestConversationsXSS(t *testing.T) {
	env := mustEnv(t, envOptions{})
	seed := seedConversationsPage(t, env)
	viewer := env.MustSession(env.MustUser("vic", engine.RoleViewer))
	for _, path := range []string{"/conversations", "/conversations?channel=" + url.QueryEscape(xss), "/conversations/" + seed.convs["answered"].ID,
		"/conversations/" + seed.convs["failed"].ID} {
		w := env.get(path, viewer)
		body := w.Body.String()
		if w.Code >= 500 || strings.Contains(body, xss) || strings.Contains(body, "<img src=x") {
			t.Errorf("%s (%d): a payload reached the page unescaped", path, w.Code)
		}
		doc := MustParseHTML(t, w.Body.Bytes())
		for _, s := range selectAll(t, doc, "script") {
			if src, _ := attr(s, "src"); !strings.HasPrefix(src, "/static/") || textOf(s) != "" {
				t.Errorf("%s: unexpected script %q %q", path, src, textOf(s))
			}
		}
		if n := len(selectAll(t, doc, "img, [onerror], [style]")); n != 0 {
			t.Errorf("%s: %d injected elements or inline styles", path, n)
		}
	}
}

func TestConversationsRBAC(t *testing.T) {
	env := mustEnv(t, envOptions{})
	seed := seedConversationsPage(t, env)
	id := seed.convs["answered"].ID
	pages := []string{"/conversations", "/conversations?errors=1", "/conversations/" + id, "/conversations.csv"}
	apis := []string{"/api/v1/conversations", "/api/v1/conversations/" + id, "/api/v1/conversations.csv"}
	for _, role := range []engine.Role{engine.RoleAdmin, engine.RoleEditor, engine.RoleViewer} {
		u := env.MustUser("user-"+string(role), role)
		session, token := env.MustSession(u), env.MustToken(u)
		for _, p := range pages {
			if w := env.get(p, session); w.Code != http.StatusOK {
				t.Errorf("%s %s: %d", role, p, w.Code)
			}
		}
		for _, p := range apis {
			if w := env.get(p, token); w.Code != http.StatusOK {
				t.Errorf("%s %s (token): %d", role, p, w.Code)
			}
			if w := env.get(p, session); w.Code != http.StatusOK {
				t.Errorf("%s %s (session and CSRF header): %d", role, p, w.Code)
			}
		}
	}
	for _, p := range pages {
		w := env.get(p, nil)
		if w.Code != http.StatusFound || w.Header().Get("Location") != "/login?next="+url.QueryEscape(p) {
			t.Errorf("anonymous %s: %d %q", p, w.Code, w.Header().Get("Location"))
		}
	}
	for _, p := range apis {
		w := env.get(p, nil)
		if code, _ := errorOf(t, w.Body.Bytes()); w.Code != http.StatusUnauthorized || code != engine.EUNAUTHORIZED {
			t.Errorf("anonymous %s: %d", p, w.Code)
		}
		// The session cookie without the page's CSRF header is refused.
		c := env.MustSession(env.MustUser("nocsrf-"+strings.ReplaceAll(strings.Trim(p, "/"), "/", "-"), engine.RoleAdmin))
		c.csrf = ""
		if w := env.get(p, c); w.Code != http.StatusUnauthorized {
			t.Errorf("%s without the CSRF header: %d", p, w.Code)
		}
	}
	// A disabled user is locked out at once.
	u := env.MustUser("gone", engine.RoleAdmin)
	session := env.MustSession(u)
	u.Disabled = true
	if err := env.store.UpdateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	if w := env.get("/conversations", session); w.Code != http.StatusFound {
		t.Errorf("disabled user: %d", w.Code)
	}
}

func TestGroupExchanges(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	traceA := &engine.Trace{ID: "A", StartedAt: at(0), Outcome: engine.OutcomeAnswered}
	traceC := &engine.Trace{ID: "C", StartedAt: at(30), Outcome: engine.OutcomeAwaiting}
	traceB := &engine.Trace{ID: "B", StartedAt: at(50), Outcome: engine.OutcomeAnswered} // resumed after the approval
	traceD := &engine.Trace{ID: "D", StartedAt: at(70), Outcome: engine.OutcomeFailed}   // its question was never saved
	turns := []*engine.Turn{
		{ID: "u1", Role: engine.TurnUser, TraceID: "A", CreatedAt: at(1)},
		{ID: "a1", Role: engine.TurnAssistant, TraceID: "A", CreatedAt: at(2), Outcome: engine.OutcomeAnswered},
		{ID: "old", Role: engine.TurnUser, CreatedAt: at(10)},
		{ID: "old-answer", Role: engine.TurnAssistant, CreatedAt: at(11)},
		{ID: "u3", Role: engine.TurnUser, TraceID: "C", CreatedAt: at(31)},
		{ID: "a3", Role: engine.TurnAssistant, TraceID: "B", CreatedAt: at(51), Outcome: engine.OutcomeAnswered},
	}
	got := groupExchanges(turns, []*engine.Trace{traceA, traceC, traceB, traceD})
	type row struct{ q, a, trace string }
	var rows []row
	for _, x := range got {
		var r row
		if x.Question != nil {
			r.q = x.Question.ID
		}
		if x.Answer != nil {
			r.a = x.Answer.ID
		}
		if x.Trace != nil {
			r.trace = x.Trace.ID
		}
		rows = append(rows, r)
	}
	want := []row{{"u1", "a1", "A"}, {"old", "old-answer", ""}, {"u3", "", "C"}, {"", "a3", "B"}, {"", "", "D"}}
	if !slices.Equal(rows, want) {
		t.Errorf("exchanges %+v, want %+v", rows, want)
	}
	if got[2].outcome() != engine.OutcomeAwaiting || got[4].outcome() != engine.OutcomeFailed || got[1].outcome() != "" {
		t.Errorf("outcomes %q %q %q", got[2].outcome(), got[4].outcome(), got[1].outcome())
	}
}

// conversationRowTemplate is the markup of a row of the conversations
// table as html/template would draw it: conversationRowsHTML must write the
// same bytes, escaping included.
var conversationRowTemplate = template.Must(template.New("rows").Parse(`
{{- range .Rows}}
    <tr class="conversation" data-conversation-id="{{.ID}}">
      <td class="nowrap"><time datetime="{{.StartedAt}}">{{.Started}}</time></td>
      <td>{{.Platform}}</td>
      <td><code class="wrap">{{.ChannelID}}</code></td>
      <td class="wrap">{{.User}}</td>
      <td>{{.Assistant}}</td>
      <th scope="row" class="title-cell"><a href="{{.URL}}">{{if .Title}}{{.Title}}{{else}}Untitled conversation{{end}}</a></th>
      <td class="num">{{.Turns}}</td>
      <td>{{if .LastOutcome}}<span class="badge badge-{{.OutcomeClass}}" data-outcome="{{.LastOutcome}}">{{.LastOutcome}}</span>{{else}}<span class="muted">none</span>{{end}}{{if gt .Errors 0}}<span class="visually-hidden">; </span><span class="error-count muted small">{{.Errors}} with errors</span>{{end}}</td>
      <td class="feedback-cell">{{if .Rated}}<span class="fb fb-up" title="Rated helpful">{{$.Up}}{{.FeedbackUp}}<span class="visually-hidden"> helpful</span></span> <span class="fb fb-down" title="Rated not helpful">{{$.Down}}{{.FeedbackDown}}<span class="visually-hidden"> not helpful</span></span>{{else}}<span class="muted">none</span>{{end}}</td>
    </tr>
{{- end}}`))

func TestConversationRowsHTML(t *testing.T) {
	hostile := []string{xss, xssImg, `a "quoted" 'value' & more`, "1+1=2 <b>", "nul\x00byte", "caf\xc3\xa9 \xff invalid", "\uFDD0\uFFFE"}
	var rows []conversationRow
	for i, h := range hostile {
		cs := conversationSummary{
			Conversation: &engine.Conversation{ID: "id-" + h, AssistantID: "asst-" + h, Platform: engine.Platform("slack" + h),
				ChannelID: "C-" + h, UserID: "U-" + h, Title: "Title " + h, CreatedAt: time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)},
			ConversationStats: engine.ConversationStats{Turns: i, UserName: "name " + h, LastOutcome: engine.Outcome("out" + h),
				Errors: i % 2, FeedbackUp: i % 3, FeedbackDown: i % 2},
		}
		rows = append(rows, newConversationRow(cs))
	}
	// No title, no outcome, no user name, no rating.
	rows = append(rows, newConversationRow(conversationSummary{Conversation: &engine.Conversation{ID: "plain", UserID: "U1"}}))

	up, down := template.HTML(`<svg class="icon">up</svg>`), template.HTML(`<svg class="icon">down</svg>`)
	var want strings.Builder
	if err := conversationRowTemplate.Execute(&want, map[string]any{"Rows": rows, "Up": up, "Down": down}); err != nil {
		t.Fatal(err)
	}
	if got := string(conversationRowsHTML(rows, up, down)); got != want.String() {
		t.Errorf("the rows differ from html/template's:\n got %q\nwant %q", got, want.String())
	}
	if got := conversationRowsHTML(nil, up, down); got != "" {
		t.Errorf("no rows: %q", got)
	}
}

// BenchmarkConversationsPage draws a page of 50 conversations (the store
// aside).
func BenchmarkConversationsPage(b *testing.B) {
	env := mustEnv(b, envOptions{})
	page := conversationsPage{Platforms: consolePlatforms, Query: conversationQuery{Limit: defaultConversationPage}}
	start := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var list []conversationSummary
	for i := range defaultConversationPage {
		list = append(list, conversationSummary{
			Conversation: &engine.Conversation{ID: strconv.Itoa(1e9 + i), AssistantID: "a1", Platform: engine.PlatformSlack,
				ChannelID: "C0ABCDEFGH", ThreadID: "1700000000.000100", UserID: "U0ABCDEFGH",
				Title: "How do I rotate the Slack signing secret in production?", CreatedAt: start.Add(time.Duration(i) * time.Minute)},
			AssistantName: "Support",
			ConversationStats: engine.ConversationStats{Turns: 12, UserName: "Ada Lovelace", LastOutcome: engine.OutcomeAnswered,
				Errors: i % 7 / 6, FeedbackUp: i % 20 / 19},
		})
	}
	tmpl := env.srv.pages["conversations"]
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		page.Rows = make([]conversationRow, len(list))
		for i, cs := range list {
			page.Rows[i] = newConversationRow(cs)
		}
		up, _ := env.srv.pageFragment("conversations", "icon-check")
		down, _ := env.srv.pageFragment("conversations", "icon-x")
		page.RowsHTML = conversationRowsHTML(page.Rows, up, down)
		buf.Reset()
		if err := tmpl.ExecuteTemplate(&buf, "layout", &view{Title: "Conversations", Nav: "conversations", Page: page}); err != nil {
			b.Fatal(err)
		}
	}
}
