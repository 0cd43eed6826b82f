package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
	"github.com/convosphere/convosphere/knowledge/embedded"
	"github.com/convosphere/convosphere/store/sqlite"
)

// kbName is the knowledge base the man pages are ingested into.
const kbName = "manpages"

// topK is how many passages each query retrieves.
const topK = 10

// System is one retrieval system under test.
type System interface {
	// Ingest indexes every page; it returns the chunks indexed.
	Ingest(ctx context.Context, pages []Page) (chunks int, err error)
	// Search returns the documents of the top topK passages for query,
	// in order of first occurrence.
	Search(ctx context.Context, query string) ([]string, error)
	Close() error
}

// systemInfo describes a system for the report.
type systemInfo struct {
	Name        string
	Backend     string // "embedded" or "weaviate"
	Description string
	Hybrid      bool // uses the local hash embedder
}

// systems are the ones -systems can name; "embedded" and "weaviate" name groups.
var systems = []systemInfo{
	{"embedded-lexical", "embedded", "ConvoSphere embedded index (in-memory BM25F over a SQLite file) through knowledge.Service, lexical mode", false},
	{"embedded-hybrid", "embedded", "ConvoSphere embedded index through knowledge.Service, hybrid mode (BM25 + vectors, RRF), hash embedder", true},
	{"weaviate-peer-bm25", "weaviate", "Weaviate's own BM25, queried directly with weaviate-go-client on the same chunks (the baseline)", false},
	{"weaviate-bm25", "weaviate", "ConvoSphere Weaviate backend (knowledge/weaviate) through knowledge.Service, lexical mode", false},
	{"weaviate-hybrid", "weaviate", "ConvoSphere Weaviate backend through knowledge.Service, hybrid mode, hash embedder", true},
}

func lookupSystem(name string) (systemInfo, bool) {
	for _, s := range systems {
		if s.Name == name {
			return s, true
		}
	}
	return systemInfo{}, false
}

// serviceSystem runs queries through the production pipeline: a
// knowledge.Service over a SQLite store and some Index.
type serviceSystem struct {
	store    *sqlite.DB
	index    knowledge.Index
	svc      *knowledge.Service
	settings engine.RetrievalSettings
}

// newServiceSystem opens a SQLite store in dir and a service over index.
// With an embedder the service ingests vectors and searches in hybrid mode.
func newServiceSystem(ctx context.Context, dir string, index knowledge.Index, embedder engine.Embedder) (*serviceSystem, error) {
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "convosphere.db")})
	if err != nil {
		return nil, err
	}
	svc, err := newService(store, index, embedder)
	if err != nil {
		store.Close()
		return nil, err
	}
	if err := store.CreateKnowledgeBase(ctx, &engine.KnowledgeBase{Name: kbName}); err != nil {
		store.Close()
		return nil, err
	}
	mode := engine.SearchLexical
	if embedder != nil {
		mode = engine.SearchHybrid
	}
	return &serviceSystem{store: store, index: index, svc: svc,
		settings: engine.RetrievalSettings{Limit: topK, Mode: mode}}, nil
}

// newService is the service as production builds it (default chunking,
// batching and limits).
func newService(store engine.KnowledgeStore, index knowledge.Index, embedder engine.Embedder) (*knowledge.Service, error) {
	return knowledge.New(knowledge.Config{}, knowledge.Deps{Store: store, Index: index, Embedder: embedder})
}

func (s *serviceSystem) Ingest(ctx context.Context, pages []Page) (int, error) {
	chunks := 0
	for _, p := range pages {
		doc, err := s.svc.Ingest(ctx, kbName, p.Doc, []byte(p.Text))
		if err != nil {
			return chunks, fmt.Errorf("ingest %s: %w", p.Doc, err)
		}
		chunks += doc.Chunks
	}
	return chunks, nil
}

func (s *serviceSystem) Search(ctx context.Context, query string) ([]string, error) {
	r, err := s.svc.Retrieve(ctx, engine.RetrievalRequest{Query: query, KnowledgeBases: []string{kbName}, Settings: s.settings})
	if err != nil {
		return nil, err
	}
	if s.settings.Mode == engine.SearchHybrid && r.Applied.Mode != engine.SearchHybrid {
		return nil, fmt.Errorf("asked for hybrid search, the service applied %q (%v)", r.Applied.Mode, r.Applied.Notes)
	}
	return DocumentRanking(r.Passages), nil
}

func (s *serviceSystem) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Leave a shared server (Weaviate) as it was found.
	derr := s.svc.DeleteKnowledgeBase(ctx, kbName)
	return joinErr(derr, s.index.Close(), s.store.Close())
}

func joinErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// openEmbedded opens the embedded index in dir.
func openEmbedded(ctx context.Context, dir string) (*embedded.Index, error) {
	return embedded.Open(ctx, embedded.Config{Path: filepath.Join(dir, "index.db")})
}

// timedPass runs every query once, one at a time, and returns each
// query's ranking and duration.
func timedPass(ctx context.Context, sys System, queries []Query) ([][]string, []time.Duration, error) {
	rankings := make([][]string, len(queries))
	ds := make([]time.Duration, len(queries))
	for i, q := range queries {
		start := time.Now()
		r, err := sys.Search(ctx, q.Text)
		ds[i] = time.Since(start)
		if err != nil {
			return nil, nil, fmt.Errorf("query %q: %w", q.Text, err)
		}
		rankings[i] = r
	}
	return rankings, ds, nil
}

// throughput runs n queries (cycling through queries) from clients
// concurrent clients and returns queries per second.
func throughput(ctx context.Context, sys System, queries []Query, clients, n int) (float64, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, clients)
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if _, err := sys.Search(ctx, queries[i%len(queries)].Text); err != nil {
					errs[c] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := joinErr(errs...); err != nil {
		return 0, err
	}
	return float64(n) / elapsed.Seconds(), nil
}
