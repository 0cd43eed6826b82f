package web

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// SearchResult is one passage of a knowledge-base search, as the REST API
// and `console knowledge search --jsonl` write it.
type SearchResult struct {
	Document string  `json:"document"` // the document's source name, as ingested
	Chunk    string  `json:"chunk"`    // the chunk's text
	Score    float64 `json:"score"`    // the final score the passage was ranked by
	Heading  string  `json:"heading"`  // the chunk's full heading path joined with " › "; "" above the first heading
}

// SearchResults converts passages, best first, into search results.
func SearchResults(passages []engine.Passage) []SearchResult {
	out := make([]SearchResult, 0, len(passages))
	for _, p := range passages {
		out = append(out, SearchResult{Document: p.Document, Chunk: p.Text, Score: p.Score, Heading: strings.Join(p.HeadingPath, " › ")})
	}
	return out
}

// Search limits: k passages per query.
const (
	DefaultSearchK = 10
	MaxSearchK     = 50
)

// searchRequest is the body of POST /api/v1/knowledge-bases/{kb}/search.
// Query and k are the contract; the other fields tune the search like an
// assistant's retrieval settings and are optional.
type searchRequest struct {
	Query    string   `json:"query"`
	K        *int     `json:"k"`
	Mode     string   `json:"mode"`
	Fusion   string   `json:"fusion"`
	Alpha    *float64 `json:"alpha"`
	RRFK     int      `json:"rrf_k"`
	Rerank   bool     `json:"rerank"`
	MinScore float64  `json:"min_score"`
}

var searchForm = jsonForm{
	Example: `{"query": "how do I connect Slack", "k": 10}`,
	Fields:  `"query", "k", "mode", "fusion", "alpha", "rrf_k", "rerank" and "min_score"`,
	Hint:    `send a JSON object with "query" and optionally "k"`,
}

// searchResponse is the answer of a search: the results in rank order and
// the settings the search applied.
type searchResponse struct {
	Query   string                 `json:"query"`
	Results []SearchResult         `json:"results"`
	Applied engine.AppliedSettings `json:"applied"`
}

// searchKnowledge answers POST /api/v1/knowledge-bases/{kb}/search.
func (s *Server) searchKnowledge(c *gin.Context) {
	ctx := c.Request.Context()
	name, svc, ok := s.kbRequest(c)
	if !ok {
		return
	}
	raw, err := s.readJSONBody(c, int64(s.cfg.MaxMessageBytes)*2+8<<10)
	if err != nil {
		s.fail(c, err)
		return
	}
	var req searchRequest
	if err := decodeJSONBody(raw, &req, searchForm); err != nil {
		s.fail(c, err)
		return
	}
	if err := ValidateSearchQuery(req.Query, s.cfg.MaxMessageBytes); err != nil {
		s.fail(c, err)
		return
	}
	k := DefaultSearchK
	if req.K != nil {
		k = *req.K
	}
	if err := ValidateSearchK(k); err != nil {
		s.fail(c, err)
		return
	}
	settings := engine.RetrievalSettings{Limit: k, MinScore: req.MinScore, Mode: req.Mode, Fusion: req.Fusion,
		Alpha: req.Alpha, RRFK: req.RRFK, Rerank: req.Rerank}
	if err := settings.Validate(); err != nil {
		s.fail(c, err)
		return
	}
	if _, err := s.knowledgeBase(ctx, name); err != nil {
		s.fail(c, err)
		return
	}
	res, err := svc.Retrieve(ctx, engine.RetrievalRequest{Query: req.Query, KnowledgeBases: []string{name}, Settings: settings})
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeJSON(c, http.StatusOK, searchResponse{Query: req.Query, Results: SearchResults(res.Passages), Applied: res.Applied})
}

// ValidateSearchQuery checks a search query: not empty, UTF-8 without NUL
// bytes, at most max bytes (engine.DefaultMaxMessageBytes when max <= 0).
func ValidateSearchQuery(query string, max int) error {
	if max <= 0 {
		max = engine.DefaultMaxMessageBytes
	}
	switch {
	case strings.TrimSpace(query) == "":
		return engine.Errorf(engine.EINVALID, `The query is missing or empty: send {"query": "some keywords or a question"}.`)
	case len(query) > max:
		return engine.Errorf(engine.EINVALID, "The query is %d bytes long: use at most %d.", len(query), max)
	case !utf8.ValidString(query):
		return engine.Errorf(engine.EINVALID, "The query is not valid UTF-8 text: send it as UTF-8.")
	case strings.ContainsRune(query, 0):
		return engine.Errorf(engine.EINVALID, "The query contains a NUL byte: remove it.")
	}
	return nil
}

// ValidateSearchK checks the number of passages a search asks for.
func ValidateSearchK(k int) error {
	if k < 1 || k > MaxSearchK {
		return engine.Errorf(engine.EINVALID, "k is %d: ask for 1 to %d passages (default %d).", k, MaxSearchK, DefaultSearchK)
	}
	return nil
}

// The search tester: GET /knowledge/search (the page) and GET
// /api/v1/knowledge/search (the same search as JSON) take the same
// query string, shared with the Conversations area's "replay" links:
//
//	?q=TEXT&kb=NAME&kb=NAME2&mode=hybrid|lexical|vector&fusion=rrf|alpha
//	&alpha=0.5&rrf_k=60&limit=5&min_score=0&rerank=1
//
// Every parameter but q is optional; no kb searches every knowledge base.
// The parameters are engine.RetrievalSettings' fields.

// searchTestParams are the query-string parameters of the search tester,
// kept as typed so that a form with a mistake shows what was sent.
type searchTestParams struct {
	Query          string   `form:"q"`
	HasQuery       bool     `form:"-"` // q was in the query string, even empty
	KnowledgeBases []string `form:"kb"`
	Mode           string   `form:"mode"`      // hybrid (default), lexical or vector
	Fusion         string   `form:"fusion"`    // rrf (default) or alpha
	Alpha          string   `form:"alpha"`     // 0 to 1; default 0.5
	RRFK           string   `form:"rrf_k"`     // default 60
	Limit          string   `form:"limit"`     // 1 to 50; default 5
	MinScore       string   `form:"min_score"` // 0 to 1; default 0
	Rerank         string   `form:"rerank"`    // 1/true/on or 0/false/off
}

// maxSearchKnowledgeBases bounds the kb parameters of one search.
const maxSearchKnowledgeBases = 100

func searchTestParamsOf(q url.Values) searchTestParams {
	trim := func(k string) string { return strings.TrimSpace(q.Get(k)) }
	_, has := q["q"]
	p := searchTestParams{Query: q.Get("q"), HasQuery: has, Mode: trim("mode"), Fusion: trim("fusion"), Alpha: trim("alpha"),
		RRFK: trim("rrf_k"), Limit: trim("limit"), MinScore: trim("min_score"), Rerank: trim("rerank")}
	for _, kb := range q["kb"] {
		if kb = strings.TrimSpace(kb); kb != "" && !slices.Contains(p.KnowledgeBases, kb) {
			p.KnowledgeBases = append(p.KnowledgeBases, kb)
		}
	}
	return p
}

// searchFieldError is what is wrong with one parameter of the tester.
type searchFieldError struct {
	Field   string // the parameter: q, kb, mode, …
	Code    string // an engine error code
	Message string
}

// settings parses and checks the retrieval settings, reporting every bad
// parameter (not only the first).
func (p searchTestParams) settings() (engine.RetrievalSettings, []searchFieldError) {
	var (
		set  engine.RetrievalSettings
		errs []searchFieldError
	)
	bad := func(field string, err error) {
		errs = append(errs, searchFieldError{Field: field, Code: engine.ErrorCode(err), Message: engine.ErrorMessage(err)})
	}
	check := func(field string, s engine.RetrievalSettings) bool {
		if err := s.Validate(); err != nil {
			bad(field, err)
			return false
		}
		return true
	}
	number := func(field, label, raw, hint string) (float64, bool) {
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			bad(field, engine.Errorf(engine.EINVALID, "%s %q is not a number: %s", label, raw, hint))
			return 0, false
		}
		return f, true
	}
	whole := func(field, label, raw, hint string) (int, bool) {
		n, err := strconv.Atoi(raw)
		if err != nil {
			bad(field, engine.Errorf(engine.EINVALID, "%s %q is not a whole number: %s", label, raw, hint))
			return 0, false
		}
		return n, true
	}
	if p.Mode != "" && check("mode", engine.RetrievalSettings{Mode: p.Mode}) {
		set.Mode = p.Mode
	}
	if p.Fusion != "" && check("fusion", engine.RetrievalSettings{Fusion: p.Fusion}) {
		set.Fusion = p.Fusion
	}
	if p.Alpha != "" {
		if a, ok := number("alpha", "Alpha", p.Alpha, "use 0 (lexical only) to 1 (vector only), e.g. 0.5."); ok && check("alpha", engine.RetrievalSettings{Alpha: &a}) {
			set.Alpha = &a
		}
	}
	if p.RRFK != "" {
		if k, ok := whole("rrf_k", "The RRF k", p.RRFK, "use a positive whole number such as 60 (the default)."); ok && check("rrf_k", engine.RetrievalSettings{RRFK: k}) {
			set.RRFK = k
		}
	}
	if p.Limit != "" {
		if n, ok := whole("limit", "The limit", p.Limit, "use 1 to 50, or leave it empty for the default (5)."); ok && check("limit", engine.RetrievalSettings{Limit: n}) {
			set.Limit = n
		}
	}
	if p.MinScore != "" {
		if f, ok := number("min_score", "The minimum score", p.MinScore, "use 0 to 1."); ok && check("min_score", engine.RetrievalSettings{MinScore: f}) {
			set.MinScore = f
		}
	}
	switch strings.ToLower(p.Rerank) {
	case "", "0", "false", "off", "no":
	case "1", "true", "on", "yes":
		set.Rerank = true
	default:
		bad("rerank", engine.Errorf(engine.EINVALID, "Rerank %q is not understood: use 1 (rerank) or 0 (do not).", p.Rerank))
	}
	return set, errs
}

// searchTestRun is a search the tester ran.
type searchTestRun struct {
	Request   engine.RetrievalRequest
	Retrieval *engine.Retrieval
	Took      time.Duration
}

// runSearchTest checks the parameters and searches. Without a query it
// returns (nil, nil): there is nothing to run yet. Bad parameters come
// back all together; a failed search as one error.
func (s *Server) runSearchTest(ctx context.Context, p searchTestParams) (*searchTestRun, []searchFieldError, error) {
	var errs []searchFieldError
	if p.HasQuery || p.Query != "" {
		if strings.TrimSpace(p.Query) == "" {
			errs = append(errs, searchFieldError{Field: "q", Code: engine.EINVALID, Message: "The query is empty: type a question or some keywords (parameter q)."})
		} else if err := ValidateSearchQuery(p.Query, s.cfg.MaxMessageBytes); err != nil {
			errs = append(errs, searchFieldError{Field: "q", Code: engine.ErrorCode(err), Message: engine.ErrorMessage(err)})
		}
	}
	settings, serrs := p.settings()
	errs = append(errs, serrs...)
	kbs, kerrs, err := s.searchKnowledgeBases(ctx, p.KnowledgeBases)
	if err != nil {
		return nil, errs, err
	}
	errs = append(errs, kerrs...)
	if len(errs) > 0 || !p.HasQuery && p.Query == "" {
		return nil, errs, nil
	}
	if len(kbs) == 0 {
		return nil, nil, engine.Errorf(engine.ENOTFOUND, "There is no knowledge base to search yet: create one on the Knowledge page and upload documents to it.")
	}
	svc, err := s.knowledgeService()
	if err != nil {
		return nil, nil, err
	}
	run := &searchTestRun{Request: engine.RetrievalRequest{Query: p.Query, KnowledgeBases: kbs, Settings: settings}}
	start := s.now()
	run.Retrieval, err = svc.Retrieve(ctx, run.Request)
	run.Took = s.now().Sub(start)
	if err != nil {
		return nil, nil, err
	}
	return run, nil, nil
}

// searchKnowledgeBases checks the knowledge bases asked for, or lists
// them all when none was; unknown names are field errors.
func (s *Server) searchKnowledgeBases(ctx context.Context, names []string) ([]string, []searchFieldError, error) {
	if len(names) > maxSearchKnowledgeBases {
		return nil, []searchFieldError{{Field: "kb", Code: engine.EINVALID,
			Message: fmt.Sprintf("%d knowledge bases were asked for: search at most %d at once.", len(names), maxSearchKnowledgeBases)}}, nil
	}
	all, err := s.deps.Store.ListKnowledgeBases(ctx)
	if err != nil {
		return nil, nil, engine.WrapError(engine.EUNAVAILABLE, err, "The knowledge bases could not be loaded; please try again in a minute.")
	}
	if len(names) == 0 {
		out := make([]string, 0, len(all))
		for _, kb := range all {
			out = append(out, kb.Name)
		}
		slices.Sort(out)
		return out, nil, nil
	}
	var errs []searchFieldError
	for _, name := range names {
		if !slices.ContainsFunc(all, func(kb *engine.KnowledgeBase) bool { return kb.Name == name }) {
			errs = append(errs, searchFieldError{Field: "kb", Code: engine.ENOTFOUND,
				Message: fmt.Sprintf("Knowledge base %q does not exist: pick one from the list, or leave them all unticked to search every one.", name)})
		}
	}
	return names, errs, nil
}

// searchTestResponse is the answer of GET /api/v1/knowledge/search.
type searchTestResponse struct {
	Query          string                   `json:"query"`
	KnowledgeBases []string                 `json:"knowledge_bases"` // those searched
	Settings       engine.RetrievalSettings `json:"settings"`        // as asked
	Applied        engine.AppliedSettings   `json:"applied"`         // as done, with notes where they differ
	Passages       []searchTestPassage      `json:"passages"`        // best first
	TookMS         int64                    `json:"took_ms"`
}

// searchTestPassage is a passage with every signal's score and the address
// of its chunk in the console.
type searchTestPassage struct {
	Rank          int      `json:"rank"` // from 1
	ID            string   `json:"id"`
	KnowledgeBase string   `json:"knowledge_base"`
	DocumentID    string   `json:"document_id"`
	Document      string   `json:"document"`
	Title         string   `json:"title"`
	HeadingPath   []string `json:"heading_path"`
	Position      int      `json:"position"`
	Text          string   `json:"text"`
	Score         float64  `json:"score"` // the final score it was ranked by
	Scores        struct {
		Lexical *float64 `json:"lexical"` // null: the signal did not run or did not find the passage
		Vector  *float64 `json:"vector"`
		Fused   *float64 `json:"fused"`
		Rerank  *float64 `json:"rerank"`
	} `json:"scores"`
	URL string `json:"url"` // the chunk on its document's page
}

// chunkURL is where a passage's chunk is shown.
func chunkURL(p engine.Passage) string {
	return fmt.Sprintf("/knowledge/%s/documents/%s#chunk-%d", url.PathEscape(p.KnowledgeBase), url.PathEscape(p.DocumentID), p.Position)
}

func searchTestResponseOf(run *searchTestRun) searchTestResponse {
	r := searchTestResponse{Query: run.Request.Query, KnowledgeBases: run.Request.KnowledgeBases, Settings: run.Request.Settings,
		Applied: run.Retrieval.Applied, Passages: make([]searchTestPassage, 0, len(run.Retrieval.Passages)), TookMS: run.Took.Milliseconds()}
	for i, p := range run.Retrieval.Passages {
		sp := searchTestPassage{Rank: i + 1, ID: p.ID, KnowledgeBase: p.KnowledgeBase, DocumentID: p.DocumentID, Document: p.Document,
			Title: p.Title, HeadingPath: p.HeadingPath, Position: p.Position, Text: p.Text, Score: p.Score, URL: chunkURL(p)}
		if sp.HeadingPath == nil {
			sp.HeadingPath = []string{}
		}
		sp.Scores.Lexical, sp.Scores.Vector, sp.Scores.Fused, sp.Scores.Rerank = p.Scores.Lexical, p.Scores.Vector, p.Scores.Fused, p.Scores.Rerank
		r.Passages = append(r.Passages, sp)
	}
	return r
}

// apiKnowledgeSearch serves GET /api/v1/knowledge/search (anyone signed
// in): the search tester's search as JSON.
func (s *Server) apiKnowledgeSearch(c *gin.Context) {
	p := searchTestParamsOf(c.Request.URL.Query())
	if strings.TrimSpace(p.Query) == "" {
		s.fail(c, engine.Errorf(engine.EINVALID, "The query is empty: add ?q= with a question or some keywords."))
		return
	}
	run, errs, err := s.runSearchTest(c.Request.Context(), p)
	if err == nil && len(errs) > 0 {
		err = searchFieldErrors(errs)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeJSON(c, http.StatusOK, searchTestResponseOf(run))
}

// searchFieldErrors joins field errors into one error, coded by the first.
func searchFieldErrors(errs []searchFieldError) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Message
	}
	return engine.Errorf(errs[0].Code, "%s", strings.Join(msgs, " "))
}

// searchTestPage is the data of /knowledge/search.
type searchTestPage struct {
	Params         searchTestParams
	KnowledgeBases []searchKBOption
	FieldErrors    map[string]string // by parameter
	Errors         []searchFieldError
	Error          string // the search itself failed
	Available      bool
	Run            *searchTestView
}

type searchKBOption struct {
	Name    string
	Checked bool
}

// searchTestView is a search as the page shows it.
type searchTestView struct {
	Query          string
	KnowledgeBases []string
	Results        []searchResultRow
	Applied        appliedView
	Took           string
}

type searchResultRow struct {
	Rank      int
	Title     string
	Document  string
	KB        string
	Heading   string
	Snippet   string
	URL       string
	Final     string
	Lexical   string // "" when the signal did not run or did not find it
	Vector    string
	Fused     string
	Rerank    string
	Truncated bool
}

// appliedView is engine.AppliedSettings formatted for the page.
type appliedView struct {
	Backend  string
	Mode     string
	Fusion   string
	Alpha    string
	RRFK     string
	Limit    int
	MinScore string
	Rerank   bool
	Notes    []string
}

// snippetRunes is how much of a passage the tester shows.
const snippetRunes = 320

func formatScore(f float64) string { return strconv.FormatFloat(f, 'f', 4, 64) }

func optionalScore(f *float64) string {
	if f == nil {
		return ""
	}
	return formatScore(*f)
}

// snippet is the start of a passage's text on one line.
func snippet(text string) (string, bool) {
	flat := strings.Join(strings.Fields(text), " ")
	if utf8.RuneCountInString(flat) <= snippetRunes {
		return flat, false
	}
	r := []rune(flat)[:snippetRunes]
	return strings.TrimRightFunc(string(r), unicode.IsSpace) + "…", true
}

func searchTestViewOf(run *searchTestRun) *searchTestView {
	a := run.Retrieval.Applied
	v := &searchTestView{Query: run.Request.Query, KnowledgeBases: run.Request.KnowledgeBases,
		Took: fmt.Sprintf("%d ms", run.Took.Milliseconds()),
		Applied: appliedView{Backend: a.Backend, Mode: a.Mode, Fusion: a.Fusion, Limit: a.Limit,
			MinScore: strconv.FormatFloat(a.MinScore, 'f', -1, 64), Rerank: a.Rerank, Notes: a.Notes}}
	if a.Alpha != nil {
		v.Applied.Alpha = strconv.FormatFloat(*a.Alpha, 'f', -1, 64)
	}
	if a.RRFK != 0 {
		v.Applied.RRFK = strconv.Itoa(a.RRFK)
	}
	for i, p := range run.Retrieval.Passages {
		row := searchResultRow{Rank: i + 1, Title: cmp.Or(p.Title, p.Document), Document: p.Document, KB: p.KnowledgeBase,
			Heading: strings.Join(p.HeadingPath, " › "), URL: chunkURL(p), Final: formatScore(p.Score),
			Lexical: optionalScore(p.Scores.Lexical), Vector: optionalScore(p.Scores.Vector),
			Fused: optionalScore(p.Scores.Fused), Rerank: optionalScore(p.Scores.Rerank)}
		row.Snippet, row.Truncated = snippet(p.Text)
		v.Results = append(v.Results, row)
	}
	return v
}

// showKnowledgeSearch serves GET /knowledge/search (anyone signed in):
// the form, prefilled from the query string, and, when q is there, the
// search's results with each signal's score and the settings applied.
func (s *Server) showKnowledgeSearch(c *gin.Context) {
	ctx := c.Request.Context()
	p := searchTestParamsOf(c.Request.URL.Query())
	page := searchTestPage{Params: p, Available: s.deps.Knowledge != nil, FieldErrors: map[string]string{}}
	status := http.StatusOK
	run, errs, err := s.runSearchTest(ctx, p)
	switch {
	case err != nil:
		var detail errorDetail
		status, detail = s.describe(c, err, "")
		page.Error = detail.Message
	case len(errs) > 0:
		status = httpStatus(errs[0].Code)
		page.Errors = errs
		for _, e := range errs {
			if _, ok := page.FieldErrors[e.Field]; !ok {
				page.FieldErrors[e.Field] = e.Message
			}
		}
	case run != nil:
		page.Run = searchTestViewOf(run)
	}
	if kbs, err := s.deps.Store.ListKnowledgeBases(ctx); err == nil {
		for _, kb := range kbs {
			page.KnowledgeBases = append(page.KnowledgeBases, searchKBOption{Name: kb.Name, Checked: slices.Contains(p.KnowledgeBases, kb.Name)})
		}
		slices.SortFunc(page.KnowledgeBases, func(a, b searchKBOption) int { return cmp.Compare(a.Name, b.Name) })
	}
	v := s.newView(c, "Search tester · Knowledge")
	v.Nav = "knowledge"
	v.Page = page
	s.render(c, status, "knowledge_search", v)
}
