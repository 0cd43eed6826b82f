package openai_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/llm/openai"
	"github.com/convosphere/convosphere/llm/openaitest"
)

func TestEmbedBatchesInOrder(t *testing.T) {
	srv := openaitest.NewServer(t)
	p := MustNew(t, srv)
	texts := make([]string, 150)
	for i := range texts {
		texts[i] = fmt.Sprintf("document %d about topic %d", i, i%7)
	}
	texts[3] = "" // sent as a blank, still gets a vector
	vecs, err := p.Embed(context.Background(), texts)
	if err != nil {
		t.Fatalf("Embed: %v", err)
	}
	if len(vecs) != len(texts) {
		t.Fatalf("got %d vectors for %d texts", len(vecs), len(texts))
	}
	for i, text := range texts {
		if want := openaitest.Embedding(text, openaitest.DefaultDims); !reflect.DeepEqual(vecs[i], want) {
			t.Fatalf("vector %d does not belong to text %q", i, text)
		}
	}
	var sizes []int
	for _, r := range srv.EmbeddingRequests() {
		sizes = append(sizes, len(r.Input))
		if r.Model != "test-embedding" {
			t.Errorf("model = %q", r.Model)
		}
	}
	if !reflect.DeepEqual(sizes, []int{64, 64, 22}) {
		t.Fatalf("batch sizes = %v, want [64 64 22]", sizes)
	}
}

func TestEmbedRetriesAndErrors(t *testing.T) {
	tests := []struct {
		name         string
		script       []openaitest.Reply
		edit         func(*openai.Config)
		wantCode     string
		wantMessage  string
		wantRequests int
	}{
		{name: "503 then success", script: []openaitest.Reply{{Status: 503}}, wantRequests: 2},
		{name: "429 with retry-after then success", script: []openaitest.Reply{{Status: 429, RetryAfter: "0"}}, wantRequests: 2},
		{name: "401", script: []openaitest.Reply{{Status: 401}}, wantCode: engine.EUNAVAILABLE, wantMessage: "llm.api_key", wantRequests: 1},
		{name: "404 names the embedding model", script: []openaitest.Reply{{Status: 404}}, wantCode: engine.EUNAVAILABLE, wantMessage: `"test-embedding" was not found; an admin should check llm.embedding_model`, wantRequests: 1},
		{
			name: "no embedding model", edit: func(c *openai.Config) { c.EmbeddingModel = "" },
			wantCode: engine.EINVALID, wantMessage: "llm.embedding_model", wantRequests: 0,
		},
		{
			name: "request timeout", script: []openaitest.Reply{{Delay: 300 * time.Millisecond}, {Delay: 300 * time.Millisecond}},
			edit:     func(c *openai.Config) { c.RequestTimeout = 50 * time.Millisecond; c.MaxRetries = 1 },
			wantCode: engine.ETIMEOUT, wantRequests: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := openaitest.NewServer(t)
			srv.ScriptEmbeddings(tt.script...)
			edit := func(*openai.Config) {}
			if tt.edit != nil {
				edit = tt.edit
			}
			p := MustNew(t, srv, edit)
			vecs, err := p.Embed(context.Background(), []string{"alpha", "beta"})
			if got := len(srv.EmbeddingRequests()); got != tt.wantRequests {
				t.Errorf("requests = %d, want %d", got, tt.wantRequests)
			}
			if tt.wantCode == "" {
				if err != nil || len(vecs) != 2 {
					t.Fatalf("Embed() = %d vectors, %v", len(vecs), err)
				}
				return
			}
			if engine.ErrorCode(err) != tt.wantCode || !strings.Contains(engine.ErrorMessage(err), tt.wantMessage) {
				t.Fatalf("Embed() error = %v (code %s), want %s mentioning %q", err, engine.ErrorCode(err), tt.wantCode, tt.wantMessage)
			}
		})
	}
}

// TestEmbedReorders checks vectors follow their "index", not response order.
func TestEmbedReorders(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Input []string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		type item struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		}
		var data []item
		for i := len(req.Input) - 1; i >= 0; i-- {
			data = append(data, item{Index: i, Embedding: []float32{float32(len(req.Input[i])), 1}})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data, "model": "m"})
	}))
	defer srv.Close()
	p, err := openai.New(openai.Config{BaseURL: srv.URL + "/v1", Model: "m", EmbeddingModel: "e", EmbeddingBatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	vecs, err := p.Embed(context.Background(), []string{"a", "bb", "ccc", "dddd", "eeeee"})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vecs {
		if v[0] != float32(i+1) {
			t.Fatalf("vector %d = %v, want first component %d", i, v, i+1)
		}
	}
}

func TestEmbedEmpty(t *testing.T) {
	srv := openaitest.NewServer(t)
	vecs, err := MustNew(t, srv).Embed(context.Background(), nil)
	if err != nil || len(vecs) != 0 || len(srv.EmbeddingRequests()) != 0 {
		t.Fatalf("Embed(nil) = %v, %v with %d requests", vecs, err, len(srv.EmbeddingRequests()))
	}
}
