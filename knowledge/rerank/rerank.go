// Package rerank is a client for the rerank endpoint most rerankers serve:
// POST {base}/rerank with a query and documents, answered with a relevance
// score per document. Cohere, Jina, vLLM and Infinity take
// {"model", "query", "documents", "top_n"} and answer {"results": [{"index",
// "relevance_score"}]}; Hugging Face Text Embeddings Inference (TEI) takes
// {"query", "texts"} and answers [{"index", "score"}]. The client accepts
// both answers, and finds out which request a server wants by itself.
package rerank

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
)

// Request formats.
const (
	FormatAuto   = ""       // Cohere's until a server asks for TEI's
	FormatCohere = "cohere" // {"model", "query", "documents", "top_n"}: Cohere, Jina, vLLM, Infinity
	FormatTEI    = "tei"    // {"query", "texts", "truncate"}: Hugging Face Text Embeddings Inference
)

// Defaults applied to zero fields.
const (
	DefaultTimeout   = 30 * time.Second
	DefaultBatchSize = 32 // TEI's default --max-client-batch-size
)

// maxResponseBytes bounds what is read of an answer.
const maxResponseBytes = 8 << 20

// Config configures a Client. Zero fields get defaults.
type Config struct {
	// URL is the API root; requests go to URL + "/rerank" (a URL that
	// already ends in /rerank is used as it is). For example
	// https://api.cohere.com/v2, https://api.jina.ai/v1, http://localhost:8080
	// (TEI) or http://localhost:8000/v1 (vLLM).
	URL string
	// APIKey is sent as a bearer token when set. It is never logged.
	APIKey string
	// Model names the reranking model; servers that serve one model (TEI)
	// ignore it.
	Model string
	// Timeout bounds each request; default 30s.
	Timeout time.Duration
	// BatchSize is how many documents go in one request; default 32.
	BatchSize int
	// Format is the request format: FormatAuto (default), FormatCohere or
	// FormatTEI.
	Format string
}

func (c *Config) setDefaults() {
	c.URL = strings.TrimRight(strings.TrimSpace(c.URL), "/")
	c.Format = strings.ToLower(strings.TrimSpace(c.Format))
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
}

// Validate reports the first invalid setting, naming its configuration key.
func (c Config) Validate() error {
	c.setDefaults()
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return engine.Errorf(engine.EINVALID, "rerank.url is empty: set the rerank endpoint's base URL, e.g. http://localhost:8080 (TEI) or https://api.cohere.com/v2")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return engine.Errorf(engine.EINVALID, "rerank.url %q is not an http or https URL: use e.g. http://localhost:8080", c.URL)
	case c.Timeout < 0:
		return engine.Errorf(engine.EINVALID, "rerank.timeout must not be negative: use e.g. 30s")
	case c.BatchSize < 0:
		return engine.Errorf(engine.EINVALID, "rerank.batch_size must not be negative: use e.g. 32")
	}
	switch c.Format {
	case FormatAuto, FormatCohere, FormatTEI:
	default:
		return engine.Errorf(engine.EINVALID, "rerank.format %q is unknown: leave it empty, or use cohere (Cohere, Jina, vLLM) or tei", c.Format)
	}
	return nil
}

// String prints the configuration with the API key redacted.
func (c Config) String() string {
	return fmt.Sprintf("rerank.Config{URL:%q Model:%q Format:%q Timeout:%s BatchSize:%d APIKey:%s}",
		c.URL, c.Model, c.Format, c.Timeout, c.BatchSize, redact(c.APIKey))
}

// LogValue logs the configuration with the API key redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", c.URL),
		slog.String("model", c.Model),
		slog.String("format", c.Format),
		slog.String("api_key", redact(c.APIKey)),
	)
}

func redact(secret string) string {
	if secret == "" {
		return "(none)"
	}
	return "(redacted)"
}

// Deps are the client's optional collaborators.
type Deps struct {
	HTTPClient *http.Client // default: a client without a timeout of its own (Config.Timeout applies per request)
	Logger     *slog.Logger
}

// Client reranks texts through a rerank endpoint. It is safe for
// concurrent use.
type Client struct {
	cfg      Config
	endpoint string
	http     *http.Client
	log      *slog.Logger
	tei      atomic.Bool // the server wants TEI's request format
}

var _ knowledge.Reranker = (*Client)(nil)

// New returns a client, or an EINVALID error naming the bad setting.
func New(cfg Config, deps Deps) (*Client, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, endpoint: cfg.URL, http: deps.HTTPClient, log: deps.Logger}
	if !strings.HasSuffix(c.endpoint, "/rerank") {
		c.endpoint += "/rerank"
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("component", "rerank")
	c.tei.Store(cfg.Format == FormatTEI)
	return c, nil
}

// Rerank returns the relevance of each text to query, in input order:
// higher is more relevant. Cohere, Jina, vLLM and TEI (without raw scores,
// its default) give scores from 0 to 1. Texts are sent in batches of
// Config.BatchSize; scores of one model are comparable across batches.
// Failures are EUNAVAILABLE (ETIMEOUT when the endpoint is too slow) with
// a message that says what to check.
func (c *Client) Rerank(ctx context.Context, query string, texts []string) ([]float64, error) {
	if strings.TrimSpace(query) == "" {
		return nil, engine.Errorf(engine.EINVALID, "The rerank query is empty: give the question the texts are ranked for.")
	}
	scores := make([]float64, 0, len(texts))
	for start := 0; start < len(texts); start += c.cfg.BatchSize {
		batch := texts[start:min(start+c.cfg.BatchSize, len(texts))]
		got, err := c.rerankBatch(ctx, query, batch)
		if err != nil {
			return nil, err
		}
		scores = append(scores, got...)
	}
	return scores, nil
}

// rerankBatch sends one request, switching to TEI's format once when the
// server asks for it.
func (c *Client) rerankBatch(ctx context.Context, query string, texts []string) ([]float64, error) {
	start := time.Now()
	tei := c.tei.Load()
	scores, status, body, err := c.post(ctx, query, texts, tei)
	if err != nil && !tei && c.cfg.Format == FormatAuto && wantsTexts(status, body) {
		c.log.InfoContext(ctx, "rerank endpoint wants the TEI request format; switching", "url", c.cfg.URL)
		c.tei.Store(true)
		scores, _, _, err = c.post(ctx, query, texts, true)
	}
	if err != nil {
		c.log.WarnContext(ctx, "rerank failed", "url", c.cfg.URL, "texts", len(texts),
			"duration_ms", time.Since(start).Milliseconds(), "error", err)
		return nil, err
	}
	c.log.DebugContext(ctx, "reranked", "texts", len(texts), "duration_ms", time.Since(start).Milliseconds())
	return scores, nil
}

// wantsTexts reports whether a refusal says the request needs a "texts"
// field, as TEI's does.
func wantsTexts(status int, body []byte) bool {
	return (status == http.StatusUnprocessableEntity || status == http.StatusBadRequest) &&
		bytes.Contains(body, []byte("texts"))
}

type cohereRequest struct {
	Model     string   `json:"model,omitempty"`
	Query     string   `json:"query"`
	Documents []string `json:"documents"`
	TopN      int      `json:"top_n"`
}

type teiRequest struct {
	Query     string   `json:"query"`
	Texts     []string `json:"texts"`
	Truncate  bool     `json:"truncate"`
	RawScores bool     `json:"raw_scores"`
}

// result is one entry of either answer.
type result struct {
	Index          *int     `json:"index"`
	RelevanceScore *float64 `json:"relevance_score"`
	Score          *float64 `json:"score"`
}

// post sends one request. On a refusal it returns the status and body with
// the error, so that the caller can retry in another format.
func (c *Client) post(ctx context.Context, query string, texts []string, tei bool) ([]float64, int, []byte, error) {
	var payload any = cohereRequest{Model: c.cfg.Model, Query: query, Documents: texts, TopN: len(texts)}
	if tei {
		payload = teiRequest{Query: query, Texts: texts, Truncate: true}
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("encode rerank request: %w", err)
	}
	reqCtx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, 0, nil, engine.WrapError(engine.EINVALID, err, "rerank.url %q does not make a valid request URL", c.cfg.URL)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, 0, nil, ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			return nil, 0, nil, engine.WrapError(engine.ETIMEOUT, err, "The rerank endpoint %s did not answer within %s: check that it is up, or raise rerank.timeout.", c.cfg.URL, c.cfg.Timeout)
		}
		return nil, 0, nil, engine.WrapError(engine.EUNAVAILABLE, err, "The rerank endpoint %s cannot be reached: check rerank.url and that the server is running.", c.cfg.URL)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, 0, nil, ctx.Err()
	case err != nil:
		return nil, 0, nil, engine.WrapError(engine.EUNAVAILABLE, err, "The rerank endpoint %s broke off its answer: try again later.", c.cfg.URL)
	case len(raw) > maxResponseBytes:
		return nil, 0, nil, engine.Errorf(engine.EUNAVAILABLE, "The rerank endpoint %s answered with more than %d bytes: check rerank.url.", c.cfg.URL, maxResponseBytes)
	}
	if resp.StatusCode/100 != 2 {
		return nil, resp.StatusCode, raw, c.statusError(resp.StatusCode, raw)
	}
	scores, err := parse(raw, len(texts))
	if err != nil {
		return nil, resp.StatusCode, raw, engine.WrapError(engine.EUNAVAILABLE, err, "The rerank endpoint %s answered with something that is not a rerank result (%s): check rerank.url points at a rerank API.", c.cfg.URL, err)
	}
	return scores, resp.StatusCode, raw, nil
}

// parse reads either answer and returns a score per text, in input order.
func parse(raw []byte, n int) ([]float64, error) {
	var results []result
	trimmed := bytes.TrimSpace(raw)
	switch {
	case len(trimmed) > 0 && trimmed[0] == '[':
		if err := json.Unmarshal(trimmed, &results); err != nil {
			return nil, errors.New("invalid JSON")
		}
	default:
		var wrapped struct {
			Results *[]result `json:"results"`
		}
		if err := json.Unmarshal(trimmed, &wrapped); err != nil {
			return nil, errors.New("invalid JSON")
		}
		if wrapped.Results == nil {
			return nil, errors.New(`no "results"`)
		}
		results = *wrapped.Results
	}
	scores := make([]float64, n)
	seen := make([]bool, n)
	for _, r := range results {
		score := r.RelevanceScore
		if score == nil {
			score = r.Score
		}
		switch {
		case r.Index == nil || score == nil:
			return nil, errors.New("a result without an index or score")
		case *r.Index < 0 || *r.Index >= n:
			return nil, fmt.Errorf("index %d out of range for %d texts", *r.Index, n)
		case seen[*r.Index]:
			return nil, fmt.Errorf("index %d twice", *r.Index)
		}
		seen[*r.Index] = true
		scores[*r.Index] = *score
	}
	if len(results) != n {
		return nil, fmt.Errorf("%d scores for %d texts", len(results), n)
	}
	return scores, nil
}

// statusError turns a refusal into an error that says what to check.
func (c *Client) statusError(status int, body []byte) error {
	detail := serverMessage(body)
	if detail != "" {
		detail = " (" + detail + ")"
	}
	var msg string
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		msg = "refused the API key: check rerank.api_key"
	case status == http.StatusNotFound || status == http.StatusMethodNotAllowed:
		msg = "has no rerank API at " + c.endpoint + ": set rerank.url to the API root, e.g. http://localhost:8080 (TEI) or https://api.cohere.com/v2"
	case status == http.StatusRequestEntityTooLarge:
		msg = "refused the texts as too large: lower rerank.batch_size or the chunk size"
	case status == http.StatusTooManyRequests:
		msg = "is rate limiting requests: try again later, or raise the endpoint's limits"
	case status/100 == 4:
		msg = "refused the request: check rerank.model and rerank.format"
	default:
		msg = "failed: try again later, and check the endpoint's logs"
	}
	return engine.Errorf(engine.EUNAVAILABLE, "The rerank endpoint %s %s (HTTP %d%s).", c.cfg.URL, msg, status, detail)
}

// serverMessage extracts a short error message from an error body.
func serverMessage(body []byte) string {
	var e struct {
		Message string          `json:"message"`
		Error   json.RawMessage `json:"error"`
		Detail  json.RawMessage `json:"detail"`
	}
	msg := ""
	if json.Unmarshal(body, &e) == nil {
		msg = e.Message
		for _, raw := range []json.RawMessage{e.Error, e.Detail} {
			if msg != "" || len(raw) == 0 {
				continue
			}
			var s string
			var obj struct {
				Message string `json:"message"`
			}
			switch {
			case json.Unmarshal(raw, &s) == nil:
				msg = s
			case json.Unmarshal(raw, &obj) == nil:
				msg = obj.Message
			default:
				msg = string(raw)
			}
		}
	} else {
		msg = string(body)
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if r := []rune(msg); len(r) > 200 {
		msg = string(r[:200]) + "…"
	}
	return msg
}
