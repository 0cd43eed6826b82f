package rerank_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge/rerank"
)

// server is a rerank endpoint for tests. handle answers each request; it
// gets the decoded body.
type server struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
}

type request struct {
	Path          string
	Authorization string
	Body          map[string]any
}

func newServer(tb testing.TB, handle func(w http.ResponseWriter, r request)) *server {
	tb.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		req := request{Path: r.URL.Path, Authorization: r.Header.Get("Authorization")}
		if err := json.Unmarshal(raw, &req.Body); err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.requests = append(s.requests, req)
		s.mu.Unlock()
		handle(w, req)
	}))
	tb.Cleanup(s.Close)
	return s
}

func (s *server) Requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.requests...)
}

// strs returns the strings of a JSON array field.
func strs(body map[string]any, key string) []string {
	arr, _ := body[key].([]any)
	out := make([]string, len(arr))
	for i, v := range arr {
		out[i], _ = v.(string)
	}
	return out
}

// relevance is the score the test servers give a text: the share of the
// query's words it contains.
func relevance(query, text string) float64 {
	words := strings.Fields(strings.ToLower(query))
	n := 0
	for _, w := range words {
		if strings.Contains(strings.ToLower(text), w) {
			n++
		}
	}
	return float64(n) / float64(len(words))
}

// cohere answers like Cohere, Jina and vLLM: results sorted by relevance.
func cohere(w http.ResponseWriter, r request) {
	type res struct {
		Index          int     `json:"index"`
		RelevanceScore float64 `json:"relevance_score"`
	}
	docs := strs(r.Body, "documents")
	var results []res
	for i, d := range docs {
		results = append(results, res{i, relevance(r.Body["query"].(string), d)})
	}
	// Best first, as the real services answer.
	for i := range results {
		for j := i + 1; j < len(results); j++ {
			if results[j].RelevanceScore > results[i].RelevanceScore {
				results[i], results[j] = results[j], results[i]
			}
		}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"id": "x", "results": results, "meta": map[string]any{}})
}

// tei answers like Hugging Face TEI, refusing requests without "texts".
func tei(w http.ResponseWriter, r request) {
	texts, ok := r.Body["texts"]
	if !ok {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusUnprocessableEntity)
		fmt.Fprint(w, "Failed to deserialize the JSON body into the target type: missing field `texts` at line 1 column 80")
		return
	}
	type res struct {
		Index int     `json:"index"`
		Score float64 `json:"score"`
	}
	var out []res
	for i, t := range texts.([]any) {
		out = append(out, res{i, relevance(r.Body["query"].(string), t.(string))})
	}
	_ = json.NewEncoder(w).Encode(out)
}

func mustNew(tb testing.TB, cfg rerank.Config) *rerank.Client {
	tb.Helper()
	c, err := rerank.New(cfg, rerank.Deps{})
	if err != nil {
		tb.Fatalf("rerank.New: %v", err)
	}
	return c
}

var texts = []string{
	"Paste the bot token into the console.",
	"Connect Slack with Socket Mode and a bot token.",
	"Back up the index file every night.",
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		cfg    rerank.Config
		msgHas string // "" for valid
	}{
		{"minimal", rerank.Config{URL: "http://localhost:8080"}, ""},
		{"full", rerank.Config{URL: "https://api.cohere.com/v2/", APIKey: "k", Model: "rerank-v3.5", Timeout: time.Second, BatchSize: 10, Format: "Cohere"}, ""},
		{"tei", rerank.Config{URL: "http://tei:80/rerank", Format: rerank.FormatTEI}, ""},
		{"empty url", rerank.Config{}, "rerank.url is empty"},
		{"no scheme", rerank.Config{URL: "localhost:8080"}, "not an http or https URL"},
		{"ftp", rerank.Config{URL: "ftp://host/x"}, "not an http or https URL"},
		{"no host", rerank.Config{URL: "http://"}, "not an http or https URL"},
		{"negative timeout", rerank.Config{URL: "http://h", Timeout: -time.Second}, "rerank.timeout"},
		{"negative batch", rerank.Config{URL: "http://h", BatchSize: -1}, "rerank.batch_size"},
		{"unknown format", rerank.Config{URL: "http://h", Format: "jina"}, "rerank.format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			_, newErr := rerank.New(tt.cfg, rerank.Deps{})
			if tt.msgHas == "" {
				if err != nil || newErr != nil {
					t.Errorf("Validate = %v, New = %v; want valid", err, newErr)
				}
				return
			}
			if engine.ErrorCode(err) != engine.EINVALID || !strings.Contains(err.Error(), tt.msgHas) || engine.ErrorCode(newErr) != engine.EINVALID {
				t.Errorf("Validate = %v, New = %v; want EINVALID saying %q", err, newErr, tt.msgHas)
			}
		})
	}
}

func TestConfigRedactsKey(t *testing.T) {
	cfg := rerank.Config{URL: "http://h", APIKey: "sk-very-secret"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "rerank", cfg)
	for _, s := range []string{cfg.String(), fmt.Sprint(cfg), fmt.Sprintf("%v", cfg), buf.String()} {
		if strings.Contains(s, "sk-very-secret") || !strings.Contains(s, "redacted") {
			t.Errorf("printed config %q shows the key or does not say it is redacted", s)
		}
	}
}

func TestRerankCohere(t *testing.T) {
	srv := newServer(t, cohere)
	c := mustNew(t, rerank.Config{URL: srv.URL + "/v2/", APIKey: "key-1", Model: "rerank-v3.5"})
	scores, err := c.Rerank(context.Background(), "slack bot token", texts)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{2.0 / 3, 1, 0}
	if fmt.Sprint(scores) != fmt.Sprint(want) {
		t.Errorf("scores = %v, want %v (input order, whatever the answer's order)", scores, want)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Path != "/v2/rerank" || r.Authorization != "Bearer key-1" || r.Body["model"] != "rerank-v3.5" ||
		r.Body["query"] != "slack bot token" || fmt.Sprint(strs(r.Body, "documents")) != fmt.Sprint(texts) || r.Body["top_n"] != float64(3) {
		t.Errorf("request = %+v", r)
	}
}

func TestRerankTEI(t *testing.T) {
	tests := []struct {
		name   string
		format string
		want   int // requests for two calls
	}{
		{"configured", rerank.FormatTEI, 2},
		{"detected", rerank.FormatAuto, 3}, // one refusal, then TEI's format from then on
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tei)
			c := mustNew(t, rerank.Config{URL: srv.URL, Format: tt.format})
			for range 2 {
				scores, err := c.Rerank(context.Background(), "index night", texts)
				if err != nil {
					t.Fatal(err)
				}
				if want := []float64{0, 0, 1}; fmt.Sprint(scores) != fmt.Sprint(want) {
					t.Errorf("scores = %v, want %v", scores, want)
				}
			}
			reqs := srv.Requests()
			if len(reqs) != tt.want {
				t.Fatalf("%d requests, want %d", len(reqs), tt.want)
			}
			last := reqs[len(reqs)-1]
			if last.Path != "/rerank" || fmt.Sprint(strs(last.Body, "texts")) != fmt.Sprint(texts) || last.Body["truncate"] != true || last.Authorization != "" {
				t.Errorf("TEI request = %+v", last)
			}
		})
	}
}

func TestRerankBatches(t *testing.T) {
	srv := newServer(t, cohere)
	c := mustNew(t, rerank.Config{URL: srv.URL, BatchSize: 2})
	in := append(append([]string{}, texts...), "Slack tokens", "nothing")
	scores, err := c.Rerank(context.Background(), "slack token", in)
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range in {
		if scores[i] != relevance("slack token", text) {
			t.Errorf("score %d = %v, want %v", i, scores[i], relevance("slack token", text))
		}
	}
	if n := len(srv.Requests()); n != 3 {
		t.Errorf("%d requests for 5 texts in batches of 2, want 3", n)
	}
	// Nothing to rerank: no request.
	if scores, err := c.Rerank(context.Background(), "slack", nil); err != nil || len(scores) != 0 {
		t.Errorf("Rerank of no texts = %v, %v", scores, err)
	}
	if n := len(srv.Requests()); n != 3 {
		t.Errorf("Rerank of no texts sent a request")
	}
	if _, err := c.Rerank(context.Background(), "  ", texts); engine.ErrorCode(err) != engine.EINVALID {
		t.Errorf("empty query = %v, want EINVALID", err)
	}
}

func TestRerankErrors(t *testing.T) {
	answer := func(status int, body string) func(http.ResponseWriter, request) {
		return func(w http.ResponseWriter, _ request) {
			w.WriteHeader(status)
			fmt.Fprint(w, body)
		}
	}
	tests := []struct {
		name   string
		handle func(http.ResponseWriter, request)
		code   string
		msgHas []string
	}{
		{"unauthorized", answer(401, `{"message":"invalid api token"}`), engine.EUNAVAILABLE, []string{"rerank.api_key", "HTTP 401", "invalid api token"}},
		{"forbidden", answer(403, `{"error":{"message":"no access"}}`), engine.EUNAVAILABLE, []string{"rerank.api_key", "no access"}},
		{"not found", answer(404, `404 page not found`), engine.EUNAVAILABLE, []string{"no rerank API", "rerank.url", "HTTP 404"}},
		{"too large", answer(413, `{"error":"batch size 40 > maximum allowed batch size 32","error_type":"validation"}`), engine.EUNAVAILABLE, []string{"rerank.batch_size", "maximum allowed batch size"}},
		{"rate limited", answer(429, `{"detail":"slow down"}`), engine.EUNAVAILABLE, []string{"rate limiting", "slow down"}},
		{"bad model", answer(400, `{"detail":[{"msg":"model not found"}]}`), engine.EUNAVAILABLE, []string{"rerank.model", "model not found"}},
		{"server error", answer(500, `boom`), engine.EUNAVAILABLE, []string{"try again later", "HTTP 500"}},
		{"unavailable", answer(503, `{"error":"model is loading"}`), engine.EUNAVAILABLE, []string{"HTTP 503", "model is loading"}},
		{"not JSON", answer(200, `<html>hello</html>`), engine.EUNAVAILABLE, []string{"not a rerank result", "invalid JSON"}},
		{"no results", answer(200, `{"data":[]}`), engine.EUNAVAILABLE, []string{"not a rerank result", `no "results"`}},
		{"index out of range", answer(200, `{"results":[{"index":0,"relevance_score":0.5},{"index":1,"relevance_score":0.5},{"index":7,"relevance_score":0.9}]}`), engine.EUNAVAILABLE, []string{"index 7 out of range"}},
		{"negative index", answer(200, `[{"index":-1,"score":0.5}]`), engine.EUNAVAILABLE, []string{"index -1 out of range"}},
		{"index twice", answer(200, `[{"index":0,"score":0.5},{"index":0,"score":0.4},{"index":1,"score":0.1}]`), engine.EUNAVAILABLE, []string{"index 0 twice"}},
		{"too few", answer(200, `{"results":[{"index":0,"relevance_score":0.5}]}`), engine.EUNAVAILABLE, []string{"1 scores for 3 texts"}},
		{"no score", answer(200, `[{"index":0},{"index":1,"score":1},{"index":2,"score":1}]`), engine.EUNAVAILABLE, []string{"without an index or score"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.handle)
			c := mustNew(t, rerank.Config{URL: srv.URL, Format: rerank.FormatCohere})
			scores, err := c.Rerank(context.Background(), "slack", texts)
			if scores != nil || engine.ErrorCode(err) != tt.code {
				t.Fatalf("Rerank = %v, %v (code %q); want code %q", scores, err, engine.ErrorCode(err), tt.code)
			}
			for _, has := range tt.msgHas {
				if !strings.Contains(engine.ErrorMessage(err), has) {
					t.Errorf("message %q does not say %q", engine.ErrorMessage(err), has)
				}
			}
			for _, text := range texts {
				if strings.Contains(err.Error(), text) {
					t.Errorf("error %q quotes a text", err)
				}
			}
		})
	}
}

func TestRerankUnreachableAndSlow(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL
	closed.Close()
	_, err := mustNew(t, rerank.Config{URL: url}).Rerank(context.Background(), "slack", texts)
	if engine.ErrorCode(err) != engine.EUNAVAILABLE || !strings.Contains(engine.ErrorMessage(err), "cannot be reached") {
		t.Errorf("closed server = %v, want EUNAVAILABLE saying it cannot be reached", err)
	}

	release := make(chan struct{})
	slow := newServer(t, func(w http.ResponseWriter, r request) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		cohere(w, r)
	})
	defer close(release)
	c := mustNew(t, rerank.Config{URL: slow.URL, Timeout: 50 * time.Millisecond})
	_, err = c.Rerank(context.Background(), "slack", texts)
	if engine.ErrorCode(err) != engine.ETIMEOUT || !strings.Contains(engine.ErrorMessage(err), "rerank.timeout") {
		t.Errorf("slow server = %v, want ETIMEOUT naming rerank.timeout", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := mustNew(t, rerank.Config{URL: slow.URL}).Rerank(ctx, "slack", texts); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled = %v, want context.Canceled", err)
	}
}

// TestNoContentInLogs: queries and texts are never logged.
func TestNoContentInLogs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, handle := range []func(http.ResponseWriter, request){tei, func(w http.ResponseWriter, _ request) { w.WriteHeader(500) }} {
		srv := newServer(t, handle)
		c, err := rerank.New(rerank.Config{URL: srv.URL, APIKey: "sk-secret"}, rerank.Deps{Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Rerank(context.Background(), "confidential question", texts)
	}
	out := buf.String()
	if !strings.Contains(out, "rerank failed") || !strings.Contains(out, "switching") {
		t.Errorf("logs miss the failure or the format switch:\n%s", out)
	}
	for _, secret := range append([]string{"confidential question", "sk-secret"}, texts...) {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain %q:\n%s", secret, out)
		}
	}
}
