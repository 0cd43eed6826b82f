package web

import (
	"net/http"
	"strings"
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
