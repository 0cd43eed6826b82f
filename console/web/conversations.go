package web

import (
	"context"
	"encoding/csv"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// conversationRoutes registers this area's pages and API routes: the
// conversations with filters, a transcript with each turn's trace, the CSV
// export and their JSON API. Every signed-in role may read them.
func (s *Server) conversationRoutes(pages, api *gin.RouterGroup) {
	read := s.requireRole("Reading conversations", engine.RoleAdmin, engine.RoleEditor, engine.RoleViewer)
	pages.GET("/conversations", read, s.showConversations)
	pages.GET("/conversations.csv", read, s.exportConversations)
	pages.GET("/conversations/:id", read, s.showConversation)
	api.GET("/conversations", read, s.listConversationsAPI)
	api.GET("/conversations.csv", read, s.exportConversations)
	api.GET("/conversations/:id", read, s.getConversationAPI)
}

// conversationPageNames are this area's pages (templates/NAME.html).
var conversationPageNames = []string{"conversations", "conversation"}

// Paging of the conversation listing.
const (
	defaultConversationPage = 50
	maxConversationPage     = 200
	// conversationExportBatch is how many conversations the CSV export
	// reads at once.
	conversationExportBatch = 200
)

// conversationQuery is a listing's filters as the query string has them:
// ?platform=&assistant=&user=&channel=&from=&to=&feedback=&errors=1&limit=&offset=.
// The page's form, its links and the API share it.
type conversationQuery struct {
	Platform  string
	Assistant string // assistant id
	User      string // platform user id (console user id in the Playground)
	Channel   string
	From      string // YYYY-MM-DD (UTC) or an RFC 3339 time
	To        string // YYYY-MM-DD (UTC, inclusive) or an RFC 3339 time (exclusive)
	Feedback  string // up, down, rated, none
	Errors    bool
	Limit     int
	Offset    int
}

// parseConversationQuery reads the filters of a listing and turns them
// into a store filter. Errors are EINVALID and name the parameter.
func parseConversationQuery(c *gin.Context) (conversationQuery, engine.ConversationFilter, error) {
	q := conversationQuery{
		Platform:  strings.TrimSpace(c.Query("platform")),
		Assistant: strings.TrimSpace(c.Query("assistant")),
		User:      strings.TrimSpace(c.Query("user")),
		Channel:   strings.TrimSpace(c.Query("channel")),
		From:      strings.TrimSpace(c.Query("from")),
		To:        strings.TrimSpace(c.Query("to")),
		Feedback:  strings.TrimSpace(c.Query("feedback")),
		Limit:     defaultConversationPage,
	}
	f := engine.ConversationFilter{
		Platform: engine.Platform(q.Platform), AssistantID: q.Assistant, UserID: q.User, ChannelID: q.Channel,
		Feedback: engine.FeedbackFilter(q.Feedback),
	}
	if q.Platform != "" && !slices.Contains(consolePlatforms, f.Platform) {
		return q, f, engine.Errorf(engine.EINVALID, "Platform %q is unknown: use slack, discord, mattermost or console.", q.Platform)
	}
	if !f.Feedback.Valid() {
		return q, f, engine.Errorf(engine.EINVALID, "Feedback %q is unknown: use up, down, rated or none.", q.Feedback)
	}
	switch e := c.Query("errors"); e {
	case "", "0", "false", "off":
	case "1", "true", "on":
		q.Errors, f.Errors = true, true
	default:
		return q, f, engine.Errorf(engine.EINVALID, "errors %q is invalid: use 1 to list only conversations with a failed, interrupted or rejected turn.", e)
	}
	var err error
	if f.Since, err = parseDateParam("from", q.From, false); err != nil {
		return q, f, err
	}
	if f.Until, err = parseDateParam("to", q.To, true); err != nil {
		return q, f, err
	}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxConversationPage {
			return q, f, engine.Errorf(engine.EINVALID, "limit %q is invalid: use 1 to %d.", l, maxConversationPage)
		}
		q.Limit = n
	}
	if o := c.Query("offset"); o != "" {
		n, err := strconv.Atoi(o)
		if err != nil || n < 0 {
			return q, f, engine.Errorf(engine.EINVALID, "offset %q is invalid: use 0 or more.", o)
		}
		q.Offset = n
	}
	f.Limit, f.Offset = q.Limit, q.Offset
	if err := f.Validate(); err != nil {
		return q, f, engine.Errorf(engine.EINVALID, "The date range is empty: \"from\" must come before \"to\".")
	}
	return q, f, nil
}

// consolePlatforms are the platforms a conversation can come from, in the
// order the filter offers them.
var consolePlatforms = []engine.Platform{engine.PlatformSlack, engine.PlatformDiscord, engine.PlatformMattermost, engine.PlatformConsole}

// parseDateParam reads a date (a whole UTC day) or an RFC 3339 time. A
// date that ends a range (end) means the end of that day.
func parseDateParam(name, v string, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.Parse(time.DateOnly, v); err == nil {
		if end {
			d = d.AddDate(0, 0, 1)
		}
		return d, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.Time{}, engine.Errorf(engine.EINVALID, "%s %q is not a date: use YYYY-MM-DD (a day in UTC) or an RFC 3339 time such as 2026-01-31T14:00:00Z.", name, v)
}

// filtered reports whether any filter is set (paging aside).
func (q conversationQuery) filtered() bool {
	return q.Platform != "" || q.Assistant != "" || q.User != "" || q.Channel != "" || q.From != "" ||
		q.To != "" || q.Feedback != "" || q.Errors
}

// values returns the query string of q, without the defaults.
func (q conversationQuery) values() url.Values {
	v := url.Values{}
	for _, kv := range [][2]string{{"platform", q.Platform}, {"assistant", q.Assistant}, {"user", q.User},
		{"channel", q.Channel}, {"from", q.From}, {"to", q.To}, {"feedback", q.Feedback}} {
		if kv[1] != "" {
			v.Set(kv[0], kv[1])
		}
	}
	if q.Errors {
		v.Set("errors", "1")
	}
	if q.Limit != defaultConversationPage && q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Offset > 0 {
		v.Set("offset", strconv.Itoa(q.Offset))
	}
	return v
}

// url returns path with q's query string.
func (q conversationQuery) url(path string) string {
	if enc := q.values().Encode(); enc != "" {
		return path + "?" + enc
	}
	return path
}

// conversationSummary is a conversation with the figures a listing shows
// (GET /api/v1/conversations).
type conversationSummary struct {
	*engine.Conversation
	AssistantName string `json:"assistant_name,omitempty"`
	engine.ConversationStats
}

// conversationList is the body of GET /api/v1/conversations.
type conversationList struct {
	Conversations []conversationSummary `json:"conversations"`
	Limit         int                   `json:"limit"`
	Offset        int                   `json:"offset"`
	// NextOffset is the offset of the next page; absent on the last page.
	NextOffset *int `json:"next_offset,omitempty"`
}

// assistantNames maps assistant ids to names ("" when they cannot be read:
// the listing then shows ids).
func (s *Server) assistantNames(ctx context.Context) ([]*engine.Assistant, map[string]string) {
	list, err := s.deps.Store.ListAssistants(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "list assistants", "error", err)
	}
	names := make(map[string]string, len(list))
	for _, a := range list {
		names[a.ID] = a.Name
	}
	return list, names
}

// summarize lists a page of conversations with their figures. more
// reports whether another page follows.
func (s *Server) summarize(ctx context.Context, f engine.ConversationFilter, names map[string]string) (list []conversationSummary, more bool, err error) {
	limit := f.Limit
	f.Limit++ // one more tells whether there is a next page
	convs, err := s.deps.Store.ListConversations(ctx, f)
	if err != nil {
		if engine.ErrorCode(err) == engine.EINVALID {
			return nil, false, err
		}
		return nil, false, engine.WrapError(engine.EUNAVAILABLE, err, "The conversations could not be loaded; please try again in a minute.")
	}
	if len(convs) > limit {
		convs, more = convs[:limit], true
	}
	ids := make([]string, len(convs))
	for i, c := range convs {
		ids[i] = c.ID
	}
	stats, err := s.deps.Store.ConversationStats(ctx, ids)
	if err != nil {
		return nil, false, engine.WrapError(engine.EUNAVAILABLE, err, "The conversations could not be loaded; please try again in a minute.")
	}
	list = make([]conversationSummary, len(convs))
	for i, c := range convs {
		list[i] = conversationSummary{Conversation: c, AssistantName: names[c.AssistantID], ConversationStats: stats[c.ID]}
	}
	return list, more, nil
}

// listConversationsAPI serves GET /api/v1/conversations: the conversations
// matching the filters, most recently active first, a page at a time.
func (s *Server) listConversationsAPI(c *gin.Context) {
	q, f, err := parseConversationQuery(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	_, names := s.assistantNames(ctx)
	list, more, err := s.summarize(ctx, f, names)
	if err != nil {
		s.fail(c, err)
		return
	}
	body := conversationList{Conversations: list, Limit: q.Limit, Offset: q.Offset}
	if more {
		next := q.Offset + q.Limit
		body.NextOffset = &next
	}
	s.writeJSON(c, http.StatusOK, body)
}

// conversationsPage is the data of the conversations page.
type conversationsPage struct {
	Query      conversationQuery
	Platforms  []engine.Platform
	Assistants []*engine.Assistant
	Rows       []conversationRow
	RowsHTML   template.HTML // the rows, drawn by conversationRowsHTML
	Error      string        // a bad filter, or why the list could not be loaded
	Filtered   bool
	First      int // the rows' positions, from 1
	Last       int
	PrevURL    string
	NextURL    string
	CSVURL     string
	ClearURL   string
}

// conversationRow is one line of the table, its cells written out in
// advance (conversationRowsHTML draws it).
type conversationRow struct {
	ID           string
	URL          string
	Started      string // 2006-01-02 15:04 (UTC)
	StartedAt    string // the same, RFC 3339, for <time datetime>
	Platform     string
	ChannelID    string
	User         string // name and id
	Assistant    string // name, or id when the assistant is gone
	Title        string // "" when the conversation has none
	Turns        int
	LastOutcome  string
	OutcomeClass string
	Errors       int
	FeedbackUp   int
	FeedbackDown int
	Rated        bool // rated either way
}

// newConversationRow lays out one conversation for the table.
func newConversationRow(cs conversationSummary) conversationRow {
	created := cs.CreatedAt.UTC()
	row := conversationRow{ID: cs.ID, URL: "/conversations/" + url.PathEscape(cs.ID),
		Started: created.Format("2006-01-02 15:04"), StartedAt: created.Format("2006-01-02T15:04:05Z"),
		Platform: string(cs.Platform), ChannelID: cs.ChannelID, User: cs.UserID, Assistant: cs.AssistantName, Title: cs.Title,
		Turns: cs.Turns, LastOutcome: string(cs.LastOutcome), OutcomeClass: outcomeClass(cs.LastOutcome), Errors: cs.Errors,
		FeedbackUp: cs.FeedbackUp, FeedbackDown: cs.FeedbackDown, Rated: cs.FeedbackUp != 0 || cs.FeedbackDown != 0}
	if row.Assistant == "" {
		row.Assistant = cs.AssistantID
	}
	if cs.UserName != "" && cs.UserName != cs.UserID {
		row.User = cs.UserName + " (" + cs.UserID + ")"
	}
	return row
}

// conversationRowsHTML draws the rows of the conversations table (the
// header is in conversations.html); iconUp and iconDown are the icons of
// the feedback cell.
//
// The rows are written here rather than in the template: a page lists 50
// to 200 of them, a dozen values each, and html/template spends about
// 15 µs on a row (a reflective call to an escaper per value), which was
// more than half of the page's time in the console. Every value goes
// through escapeHTML, which escapes text and quoted attribute values
// exactly as html/template does (TestConversationRowsHTML checks that the
// two agree on hostile values); the URL is a path this package builds.
func conversationRowsHTML(rows []conversationRow, iconUp, iconDown template.HTML) template.HTML {
	var b strings.Builder
	b.Grow(len(rows) * 1024)
	text := func(s string) { _, _ = escapeHTML.WriteString(&b, s) }
	num := func(n int) { b.WriteString(strconv.Itoa(n)) }
	for _, r := range rows {
		b.WriteString("\n    <tr class=\"conversation\" data-conversation-id=\"")
		text(r.ID)
		b.WriteString("\">\n      <td class=\"nowrap\"><time datetime=\"")
		text(r.StartedAt)
		b.WriteString("\">")
		text(r.Started)
		b.WriteString("</time></td>\n      <td>")
		text(r.Platform)
		b.WriteString("</td>\n      <td><code class=\"wrap\">")
		text(r.ChannelID)
		b.WriteString("</code></td>\n      <td class=\"wrap\">")
		text(r.User)
		b.WriteString("</td>\n      <td>")
		text(r.Assistant)
		b.WriteString("</td>\n      <th scope=\"row\" class=\"title-cell\"><a href=\"")
		text(r.URL)
		b.WriteString("\">")
		if r.Title != "" {
			text(r.Title)
		} else {
			b.WriteString("Untitled conversation")
		}
		b.WriteString("</a></th>\n      <td class=\"num\">")
		num(r.Turns)
		b.WriteString("</td>\n      <td>")
		if r.LastOutcome != "" {
			b.WriteString("<span class=\"badge badge-")
			text(r.OutcomeClass)
			b.WriteString("\" data-outcome=\"")
			text(r.LastOutcome)
			b.WriteString("\">")
			text(r.LastOutcome)
			b.WriteString("</span>")
		} else {
			b.WriteString("<span class=\"muted\">none</span>")
		}
		if r.Errors > 0 {
			b.WriteString("<span class=\"visually-hidden\">; </span><span class=\"error-count muted small\">")
			num(r.Errors)
			b.WriteString(" with errors</span>")
		}
		b.WriteString("</td>\n      <td class=\"feedback-cell\">")
		if r.Rated {
			b.WriteString("<span class=\"fb fb-up\" title=\"Rated helpful\">")
			b.WriteString(string(iconUp))
			num(r.FeedbackUp)
			b.WriteString("<span class=\"visually-hidden\"> helpful</span></span> <span class=\"fb fb-down\" title=\"Rated not helpful\">")
			b.WriteString(string(iconDown))
			num(r.FeedbackDown)
			b.WriteString("<span class=\"visually-hidden\"> not helpful</span></span>")
		} else {
			b.WriteString("<span class=\"muted\">none</span>")
		}
		b.WriteString("</td>\n    </tr>")
	}
	return template.HTML(b.String())
}

// escapeHTML escapes text for HTML text and quoted attribute values as
// html/template does: the same characters, the same entities (it has no
// exported function for it; template.HTMLEscapeString leaves + alone).
var escapeHTML = strings.NewReplacer("\x00", "\uFFFD", `"`, "&#34;", "&", "&amp;", "'", "&#39;", "+", "&#43;", "<", "&lt;", ">", "&gt;")

// pageFragment renders a template of a page that takes no data, such as
// an icon.
func (s *Server) pageFragment(page, name string) (template.HTML, error) {
	t, ok := s.pages[page]
	if !ok {
		return "", fmt.Errorf("no page %q", page)
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, name, nil); err != nil {
		return "", err
	}
	return template.HTML(b.String()), nil // the template escaped it
}

// showConversations serves GET /conversations: the conversations with
// filters kept in the URL.
func (s *Server) showConversations(c *gin.Context) {
	ctx := c.Request.Context()
	q, f, err := parseConversationQuery(c)
	assistants, names := s.assistantNames(ctx)
	page := conversationsPage{Query: q, Platforms: consolePlatforms, Assistants: assistants, Filtered: q.filtered(), ClearURL: "/conversations"}
	csv := q
	csv.Limit, csv.Offset = 0, 0
	page.CSVURL = csv.url("/conversations.csv")
	status := http.StatusOK
	var (
		list []conversationSummary
		more bool
	)
	if err == nil {
		list, more, err = s.summarize(ctx, f, names)
	}
	if err != nil {
		status, _ = s.describe(c, err, "")
		page.Error = engine.ErrorMessage(err)
		if status == http.StatusInternalServerError {
			page.Error = internalMessage
		}
	}
	page.Rows = make([]conversationRow, len(list))
	for i, cs := range list {
		page.Rows[i] = newConversationRow(cs)
	}
	if len(page.Rows) > 0 {
		up, err := s.pageFragment("conversations", "icon-check")
		if err != nil {
			s.fail(c, fmt.Errorf("render the conversations: %w", err))
			return
		}
		down, err := s.pageFragment("conversations", "icon-x")
		if err != nil {
			s.fail(c, fmt.Errorf("render the conversations: %w", err))
			return
		}
		page.RowsHTML = conversationRowsHTML(page.Rows, up, down)
	}
	if len(list) > 0 {
		page.First, page.Last = q.Offset+1, q.Offset+len(list)
	}
	if q.Offset > 0 {
		prev := q
		prev.Offset = max(q.Offset-q.Limit, 0)
		page.PrevURL = prev.url("/conversations")
	}
	if more {
		next := q
		next.Offset = q.Offset + q.Limit
		page.NextURL = next.url("/conversations")
	}
	v := s.newView(c, "Conversations")
	v.Nav = "conversations"
	v.Page = page
	s.render(c, status, "conversations", v)
}

// outcomeClass is the badge style of an outcome.
func outcomeClass(o engine.Outcome) string {
	switch {
	case o == engine.OutcomeAnswered || o == engine.OutcomeExtractive:
		return "ok"
	case o.IsError():
		return "warn"
	}
	return "off"
}

// outcomeNotice says what an outcome meant for the person who asked.
func outcomeNotice(o engine.Outcome) string {
	switch o {
	case engine.OutcomeExtractive:
		return "No language model answered: quoted passages were posted."
	case engine.OutcomeNoAnswer:
		return "Nothing relevant was found; the user was told so."
	case engine.OutcomeInterrupted:
		return "The answer stopped part way: the partial answer was kept and marked as interrupted."
	case engine.OutcomeFailed:
		return "No answer: the turn failed and the user got the reason."
	case engine.OutcomeRejected:
		return "The message was rejected and the user got the reason."
	case engine.OutcomeAwaiting:
		return "A tool call waited for a person's approval."
	}
	return ""
}

// transcript is a conversation with its turns grouped into exchanges: the
// turns of one trace (a question and its answer) with that trace.
type transcript struct {
	Conv      *engine.Conversation
	Stats     engine.ConversationStats
	Assistant *engine.Assistant // nil when it no longer exists
	Exchanges []*exchange
}

// exchange is one question and its answer, with the trace that recorded
// them. Any part may be missing: a failed turn has no answer, an answer
// after an approval has no question of its own, old turns have no trace.
type exchange struct {
	Question  *engine.Turn
	Answer    *engine.Turn
	Trace     *engine.Trace
	ToolCalls []*engine.ToolCallRecord
	Feedback  []*engine.Feedback
	ReplayURL string
}

// at is when the exchange began.
func (x *exchange) at() time.Time {
	switch {
	case x.Question != nil:
		return x.Question.CreatedAt
	case x.Trace != nil:
		return x.Trace.StartedAt
	case x.Answer != nil:
		return x.Answer.CreatedAt
	}
	return time.Time{}
}

// outcome is how the exchange ended: its trace's outcome, else its answer's.
func (x *exchange) outcome() engine.Outcome {
	if x.Trace != nil && x.Trace.Outcome != "" {
		return x.Trace.Outcome
	}
	if x.Answer != nil {
		return x.Answer.Outcome
	}
	return ""
}

// loadTranscript reads a conversation, its turns, traces, feedback and tool
// calls. A conversation that does not exist is ENOTFOUND.
func (s *Server) loadTranscript(ctx context.Context, id string) (*transcript, error) {
	unavailable := func(err error) error {
		return engine.WrapError(engine.EUNAVAILABLE, err, "The conversation could not be loaded; please try again in a minute.")
	}
	conv, err := s.deps.Store.ConversationByID(ctx, id)
	switch {
	case engine.IsNotFound(err):
		return nil, engine.Errorf(engine.ENOTFOUND, "Conversation %q does not exist: pick one from the list of conversations.", id)
	case err != nil:
		return nil, unavailable(err)
	}
	tr := &transcript{Conv: conv}
	if a, err := s.deps.Store.AssistantByID(ctx, conv.AssistantID); err == nil {
		tr.Assistant = a
	} else if !engine.IsNotFound(err) {
		return nil, unavailable(err)
	}
	stats, err := s.deps.Store.ConversationStats(ctx, []string{id})
	if err != nil {
		return nil, unavailable(err)
	}
	tr.Stats = stats[id]
	turns, err := s.deps.Store.Turns(ctx, id, 0)
	if err != nil {
		return nil, unavailable(err)
	}
	traces, err := s.deps.Store.ListTraces(ctx, id)
	if err != nil {
		return nil, unavailable(err)
	}
	feedback, err := s.deps.Store.ConversationFeedback(ctx, id)
	if err != nil {
		return nil, unavailable(err)
	}
	tr.Exchanges = groupExchanges(turns, traces)
	for _, x := range tr.Exchanges {
		if x.Trace == nil {
			continue
		}
		for _, fb := range feedback {
			if fb.TraceID == x.Trace.ID {
				x.Feedback = append(x.Feedback, fb)
			}
		}
		x.ToolCalls, err = s.deps.Store.ListToolCalls(ctx, engine.ToolCallFilter{TraceID: x.Trace.ID, Limit: 500})
		if err != nil {
			return nil, unavailable(err)
		}
		slices.Reverse(x.ToolCalls) // the audit lists newest first; a trace reads in order
		x.ReplayURL = replayURL(x, tr.Assistant)
	}
	return tr, nil
}

// groupExchanges pairs turns with their traces, in the order they happened.
func groupExchanges(turns []*engine.Turn, traces []*engine.Trace) []*exchange {
	byTrace := map[string]*exchange{}
	var out []*exchange
	for _, t := range traces {
		x := &exchange{Trace: t}
		byTrace[t.ID] = x
		out = append(out, x)
	}
	var untraced *exchange // the last exchange of turns without a trace
	for _, t := range turns {
		x := byTrace[t.TraceID]
		switch {
		case t.TraceID == "" && t.Role != engine.TurnUser && untraced != nil && untraced.Answer == nil:
			x = untraced // an old answer after its question
		case x == nil || t.TraceID == "":
			x = &exchange{}
			out = append(out, x)
			if t.TraceID != "" {
				byTrace[t.TraceID] = x
			}
		case t.Role == engine.TurnUser && x.Question != nil, t.Role != engine.TurnUser && x.Answer != nil:
			// A second turn of the same role and trace: its own exchange.
			x = &exchange{}
			out = append(out, x)
		}
		if t.Role == engine.TurnUser {
			x.Question = t
		} else {
			x.Answer = t
		}
		untraced = nil
		if t.TraceID == "" {
			untraced = x
		}
	}
	slices.SortStableFunc(out, func(a, b *exchange) int { return a.at().Compare(b.at()) })
	return out
}

// replayURL opens the search tester with an exchange's question, the
// settings its retrieval ran with and the knowledge bases it searched: the
// assistant's and those the passages came from (the trace does not keep
// the list). "" when there is nothing to replay.
func replayURL(x *exchange, a *engine.Assistant) string {
	if x.Question == nil || x.Trace == nil || strings.TrimSpace(x.Question.Content) == "" {
		return ""
	}
	searched := x.Trace.Retrieval != nil || slices.ContainsFunc(x.Trace.Steps, func(s engine.TraceStep) bool { return s.Name == engine.StepRetrieval })
	if !searched {
		return ""
	}
	v := url.Values{"q": {x.Question.Content}}
	var kbs []string
	if a != nil {
		kbs = append(kbs, a.KnowledgeBases...)
	}
	for _, p := range x.Trace.Passages {
		if p.KnowledgeBase != "" && !slices.Contains(kbs, p.KnowledgeBase) {
			kbs = append(kbs, p.KnowledgeBase)
		}
	}
	for _, kb := range kbs {
		v.Add("kb", kb)
	}
	if r := x.Trace.Retrieval; r != nil {
		if r.Mode != "" {
			v.Set("mode", r.Mode)
		}
		if r.Fusion != "" {
			v.Set("fusion", r.Fusion)
		}
		if r.Alpha != nil {
			v.Set("alpha", strconv.FormatFloat(*r.Alpha, 'g', -1, 64))
		}
		if r.RRFK > 0 {
			v.Set("rrf_k", strconv.Itoa(r.RRFK))
		}
		if r.Limit > 0 {
			v.Set("limit", strconv.Itoa(r.Limit))
		}
		v.Set("min_score", strconv.FormatFloat(r.MinScore, 'g', -1, 64))
		if r.Rerank {
			v.Set("rerank", "1")
		}
	}
	return "/knowledge/search?" + v.Encode()
}

// conversationDetail is the body of GET /api/v1/conversations/{id}.
type conversationDetail struct {
	Conversation conversationSummary `json:"conversation"`
	Turns        []*engine.Turn      `json:"turns"`
	Traces       []traceDetail       `json:"traces"`
}

// traceDetail is a trace with its tool calls, its feedback and the search
// tester's address that replays its retrieval.
type traceDetail struct {
	*engine.Trace
	ToolCalls []*engine.ToolCallRecord `json:"tool_calls"`
	Feedback  []*engine.Feedback       `json:"feedback"`
	ReplayURL string                   `json:"replay_url,omitempty"`
}

// getConversationAPI serves GET /api/v1/conversations/{id}: the
// conversation, its turns in order and its traces, oldest first.
func (s *Server) getConversationAPI(c *gin.Context) {
	tr, err := s.loadTranscript(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	body := conversationDetail{
		Conversation: conversationSummary{Conversation: tr.Conv, ConversationStats: tr.Stats},
		Turns:        []*engine.Turn{},
		Traces:       []traceDetail{},
	}
	if tr.Assistant != nil {
		body.Conversation.AssistantName = tr.Assistant.Name
	}
	for _, x := range tr.Exchanges {
		for _, t := range []*engine.Turn{x.Question, x.Answer} {
			if t != nil {
				body.Turns = append(body.Turns, t)
			}
		}
	}
	slices.SortStableFunc(body.Turns, func(a, b *engine.Turn) int { return a.CreatedAt.Compare(b.CreatedAt) })
	for _, x := range tr.Exchanges {
		if x.Trace != nil {
			body.Traces = append(body.Traces, traceDetail{Trace: x.Trace, ToolCalls: nonNil(x.ToolCalls),
				Feedback: nonNil(x.Feedback), ReplayURL: x.ReplayURL})
		}
	}
	slices.SortStableFunc(body.Traces, func(a, b traceDetail) int { return a.StartedAt.Compare(b.StartedAt) })
	s.writeJSON(c, http.StatusOK, body)
}

// conversationPage is the data of the transcript page.
type conversationPage struct {
	Conv          *engine.Conversation
	Stats         engine.ConversationStats
	Title         string
	Assistant     string
	AssistantGone bool
	Exchanges     []exchangeView
}

// exchangeView is an exchange as the transcript shows it.
type exchangeView struct {
	Number       int
	Anchor       string
	Question     *turnView
	Answer       *turnView
	Outcome      engine.Outcome
	OutcomeClass string
	Notice       string
	Error        string
	Open         bool // the trace starts unfolded (the turn went wrong)
	Trace        *traceView
	ToolCalls    []toolCallView
	Feedback     []feedbackView
	ReplayURL    string
}

// The views of the transcript are flat structs of what the template shows,
// times written out: html/template reads a plain field much faster than a
// field of an embedded struct (a reflective search) or a method chain such
// as .CreatedAt.UTC.Format, and a transcript shows hundreds of them.

type turnView struct {
	ID        string
	At        string // RFC 3339 (UTC), for <time datetime>
	AtText    string // 2006-01-02 15:04:05 UTC
	Content   string
	Who       string
	HTML      template.HTML // an answer rendered from Markdown (raw HTML left out)
	Citations []citationView
}

type citationView struct {
	Index                                   int
	Title, Document, KnowledgeBase, Section string
	Snippet                                 string
	URL                                     string
}

type traceView struct {
	ID                  string
	Model               string
	TokensIn, TokensOut int
	Took                string
	Steps               []stepView
	Passages            []passageView
	Settings            []settingView
	Retrieved           bool
}

type stepView struct {
	Name   string
	Start  string // since the turn began
	Took   string
	Detail string
	Error  string
	X, W   string // the bar, in a 1000-wide view box
}

type passageView struct {
	ID, KnowledgeBase, Document, Title string
	Score                              string
	URL                                string
}

type settingView struct{ Name, Value string }

type toolCallView struct {
	Tool, ArgumentsHash, Outcome string
	Took                         string
	Class                        string
}

type feedbackView struct {
	Helpful    bool
	Who        string
	At, AtText string // when it was last changed
	Comment    string
}

// transcriptTime writes a time for <time datetime> and for reading.
func transcriptTime(t time.Time, layout string) (at, text string) {
	t = t.UTC()
	return t.Format("2006-01-02T15:04:05Z"), t.Format(layout)
}

// showConversation serves GET /conversations/{id}: the transcript with
// each turn's trace.
func (s *Server) showConversation(c *gin.Context) {
	tr, err := s.loadTranscript(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	page := conversationPage{Conv: tr.Conv, Stats: tr.Stats, Title: conversationTitle(tr.Conv), Assistant: tr.Conv.AssistantID, AssistantGone: tr.Assistant == nil}
	if tr.Assistant != nil {
		page.Assistant = tr.Assistant.Name
	}
	for i, x := range tr.Exchanges {
		page.Exchanges = append(page.Exchanges, newExchangeView(i, x))
	}
	v := s.newView(c, page.Title)
	v.Nav = "conversations"
	v.Page = page
	s.render(c, http.StatusOK, "conversation", v)
}

// conversationTitle is a conversation's title, or a stand-in.
func conversationTitle(c *engine.Conversation) string {
	if t := strings.TrimSpace(c.Title); t != "" {
		return t
	}
	return "Conversation in " + c.ChannelID
}

func newExchangeView(i int, x *exchange) exchangeView {
	v := exchangeView{Number: i + 1, Anchor: "turn-" + strconv.Itoa(i+1), Outcome: x.outcome(), ReplayURL: x.ReplayURL}
	v.OutcomeClass = outcomeClass(v.Outcome)
	v.Notice = outcomeNotice(v.Outcome)
	v.Open = v.Outcome.IsError()
	if x.Question != nil {
		who := x.Question.UserName
		if who == "" {
			who = x.Question.UserID
		} else if x.Question.UserID != "" && x.Question.UserID != who {
			who += " (" + x.Question.UserID + ")"
		}
		v.Question = newTurnView(x.Question, who)
	}
	if x.Answer != nil {
		a := newTurnView(x.Answer, "Assistant")
		a.HTML = template.HTML(renderMarkdown(x.Answer.Content)) // renderMarkdown leaves raw HTML out
		for _, ct := range x.Answer.Citations {
			a.Citations = append(a.Citations, citationView{Index: ct.Index, Title: ct.Title, Document: ct.Document,
				KnowledgeBase: ct.KnowledgeBase, Section: ct.Section, Snippet: ct.Snippet, URL: passageURL(ct.KnowledgeBase, ct.PassageID)})
		}
		v.Answer = a
	}
	if t := x.Trace; t != nil {
		v.Error = t.Error
		v.Trace = newTraceView(t)
	}
	for _, tc := range x.ToolCalls {
		cls := "ok"
		if tc.Outcome != engine.ToolOK {
			cls = "warn"
		}
		v.ToolCalls = append(v.ToolCalls, toolCallView{Tool: tc.Tool, ArgumentsHash: tc.ArgumentsHash, Outcome: tc.Outcome,
			Took: formatDuration(tc.Duration), Class: cls})
	}
	for _, fb := range x.Feedback {
		f := feedbackView{Helpful: fb.Rating == engine.RatingUp, Who: string(fb.Platform) + ":" + fb.UserID, Comment: fb.Comment}
		f.At, f.AtText = transcriptTime(fb.UpdatedAt, "2006-01-02 15:04 UTC")
		v.Feedback = append(v.Feedback, f)
	}
	return v
}

func newTurnView(t *engine.Turn, who string) *turnView {
	v := &turnView{ID: t.ID, Content: t.Content, Who: who}
	v.At, v.AtText = transcriptTime(t.CreatedAt, "2006-01-02 15:04:05 UTC")
	return v
}

// newTraceView lays a trace's steps out on a timeline scaled to the turn:
// each bar starts where its step started and is as long as it took.
func newTraceView(t *engine.Trace) *traceView {
	v := &traceView{ID: t.ID, Model: t.Model, TokensIn: t.TokensIn, TokensOut: t.TokensOut,
		Took: formatDuration(t.Duration), Retrieved: t.Retrieval != nil}
	steps := slices.Clone(t.Steps)
	slices.SortStableFunc(steps, func(a, b engine.TraceStep) int { return a.StartedAt.Compare(b.StartedAt) })
	total := t.Duration
	for _, st := range steps {
		total = max(total, st.StartedAt.Sub(t.StartedAt)+st.Duration)
	}
	for _, st := range steps {
		off := max(st.StartedAt.Sub(t.StartedAt), 0)
		x, w := 0.0, 1000.0
		if total > 0 {
			x = float64(off) / float64(total) * 1000
			w = float64(st.Duration) / float64(total) * 1000
		}
		w = max(w, 2) // a step too short to see still shows
		x = min(x, 1000-w)
		v.Steps = append(v.Steps, stepView{Name: st.Name, Start: "+" + formatDuration(off), Took: formatDuration(st.Duration),
			Detail: st.Detail, Error: st.Error, X: strconv.FormatFloat(x, 'f', 1, 64), W: strconv.FormatFloat(w, 'f', 1, 64)})
	}
	for _, p := range t.Passages {
		v.Passages = append(v.Passages, passageView{ID: p.ID, KnowledgeBase: p.KnowledgeBase, Document: p.Document, Title: p.Title,
			Score: strconv.FormatFloat(p.Score, 'f', 3, 64), URL: passageURL(p.KnowledgeBase, p.ID)})
	}
	if r := t.Retrieval; r != nil {
		add := func(name, value string) { v.Settings = append(v.Settings, settingView{name, value}) }
		add("Backend", r.Backend)
		add("Mode", r.Mode)
		if r.Fusion != "" {
			add("Fusion", r.Fusion)
		}
		if r.Alpha != nil {
			add("Alpha", strconv.FormatFloat(*r.Alpha, 'g', -1, 64))
		}
		if r.RRFK > 0 {
			add("RRF k", strconv.Itoa(r.RRFK))
		}
		add("Limit", strconv.Itoa(r.Limit))
		add("Minimum score", strconv.FormatFloat(r.MinScore, 'g', -1, 64))
		add("Rerank", strconv.FormatBool(r.Rerank))
		for _, n := range r.Notes {
			add("Note", n)
		}
	}
	return v
}

// passageURL is the knowledge page of a passage, from its id (the chunk id
// "documentID:position"); "" when the id has another form.
func passageURL(kb, passageID string) string {
	doc, pos, ok := cutLast(passageID, ":")
	if kb == "" || !ok || doc == "" {
		return ""
	}
	if _, err := strconv.Atoi(pos); err != nil {
		return ""
	}
	return "/knowledge/" + url.PathEscape(kb) + "/documents/" + url.PathEscape(doc) + "#chunk-" + pos
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// formatDuration rounds a duration for reading: 840ms, 1.25s, 2m3s.
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0ms"
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// conversationCSVHeader names the export's columns: one row per turn, the
// conversation's columns repeated on each. The trace columns (outcome to
// error) are filled once per exchange, on its last turn (the answer, or
// the question when there is none), so that sums over the file count each
// answer once.
var conversationCSVHeader = []string{
	"conversation_id", "conversation_started_at", "platform", "channel_id", "thread_id", "assistant",
	"conversation_user_id", "title", "turn_id", "turn_at", "role", "user_id", "user_name", "text", "citations",
	"outcome", "trace_id", "model", "tokens_in", "tokens_out", "duration_ms", "passages",
	"feedback_up", "feedback_down", "error",
}

// exportConversations serves GET /conversations.csv (and
// /api/v1/conversations.csv): every turn of the conversations matching the
// listing's filters (limit and offset aside), as CSV (RFC 4180), streamed
// a batch of conversations at a time.
func (s *Server) exportConversations(c *gin.Context) {
	_, f, err := parseConversationQuery(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	_, names := s.assistantNames(ctx)
	f.Limit, f.Offset = conversationExportBatch, 0
	first, err := s.deps.Store.ListConversations(ctx, f)
	if err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The conversations could not be exported; please try again in a minute."))
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="conversations-%s.csv"`, s.now().UTC().Format("20060102-150405")))
	h.Set("Cache-Control", "no-store")
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	_ = w.Write(conversationCSVHeader)
	rows := 0
	for batch := first; ; {
		for _, conv := range batch {
			n, err := s.writeConversationCSV(ctx, w, conv, names[conv.AssistantID])
			rows += n
			if err != nil {
				s.abortExport(c, rows, err)
				return
			}
		}
		w.Flush()
		if err := w.Error(); err != nil {
			s.abortExport(c, rows, err)
			return
		}
		c.Writer.Flush()
		if len(batch) < f.Limit {
			break
		}
		f.Offset += f.Limit
		if batch, err = s.deps.Store.ListConversations(ctx, f); err != nil {
			s.abortExport(c, rows, err)
			return
		}
	}
	s.log.InfoContext(ctx, "conversations exported", "rows", rows, "user_id", principalOf(c).User.ID)
}

// abortExport ends an export that failed after it began: the status is
// sent, so the connection is cut and the client sees an incomplete
// download rather than a file that looks whole.
func (s *Server) abortExport(c *gin.Context, rows int, err error) {
	s.log.ErrorContext(c.Request.Context(), "export conversations", "rows", rows, "error", err)
	panic(http.ErrAbortHandler)
}

// writeConversationCSV writes the rows of one conversation.
func (s *Server) writeConversationCSV(ctx context.Context, w *csv.Writer, conv *engine.Conversation, assistant string) (int, error) {
	turns, err := s.deps.Store.Turns(ctx, conv.ID, 0)
	if err != nil {
		return 0, err
	}
	traces, err := s.deps.Store.ListTraces(ctx, conv.ID)
	if err != nil {
		return 0, err
	}
	feedback, err := s.deps.Store.ConversationFeedback(ctx, conv.ID)
	if err != nil {
		return 0, err
	}
	if assistant == "" {
		assistant = conv.AssistantID
	}
	convCols := []string{conv.ID, csvTime(conv.CreatedAt), string(conv.Platform), conv.ChannelID, conv.ThreadID, assistant, conv.UserID, conv.Title}
	n := 0
	for _, x := range groupExchanges(turns, traces) {
		parts := []*engine.Turn{x.Question, x.Answer}
		last := -1
		for i, t := range parts {
			if t != nil {
				last = i
			}
		}
		if last < 0 { // a trace without turns: one row for it
			parts, last = []*engine.Turn{nil}, 0
		}
		for i, t := range parts {
			if t == nil && len(parts) > 1 {
				continue
			}
			row := slices.Clone(convCols)
			if t != nil {
				var cites []string
				for _, ct := range t.Citations {
					cites = append(cites, fmt.Sprintf("[%d] %s", ct.Index, strings.TrimSpace(ct.KnowledgeBase+"/"+ct.Document)))
				}
				row = append(row, t.ID, csvTime(t.CreatedAt), string(t.Role), t.UserID, t.UserName, t.Content, strings.Join(cites, "; "))
			} else {
				row = append(row, "", "", "", "", "", "", "")
			}
			if i == last && x.Trace != nil {
				tr := x.Trace
				up, down := 0, 0
				for _, fb := range feedback {
					switch {
					case fb.TraceID != tr.ID:
					case fb.Rating == engine.RatingUp:
						up++
					default:
						down++
					}
				}
				var passages []string
				for _, p := range tr.Passages {
					passages = append(passages, fmt.Sprintf("%s/%s (%.3f)", p.KnowledgeBase, p.Document, p.Score))
				}
				row = append(row, string(x.outcome()), tr.ID, tr.Model, strconv.Itoa(tr.TokensIn), strconv.Itoa(tr.TokensOut),
					strconv.FormatInt(tr.Duration.Milliseconds(), 10), strings.Join(passages, "; "), strconv.Itoa(up), strconv.Itoa(down), tr.Error)
			} else {
				outcome := ""
				if t != nil {
					outcome = string(t.Outcome)
				}
				row = append(row, outcome, "", "", "", "", "", "", "", "", "")
			}
			if err := w.Write(csvSafe(row)); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// csvTime is a time in the export: RFC 3339 in UTC.
func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// csvSafe defuses formula injection: a spreadsheet runs a cell that starts
// with = + - @ (or a tab or carriage return) as a formula, so such a cell
// gets a leading apostrophe and is read as text. encoding/csv does the
// quoting of RFC 4180.
func csvSafe(row []string) []string {
	for i, cell := range row {
		if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
			row[i] = "'" + cell
		}
	}
	return row
}
