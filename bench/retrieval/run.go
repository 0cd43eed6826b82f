package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
)

// Result is what one child invocation measured for one system.
type Result struct {
	System      string `json:"system"`
	Kind        string `json:"kind"` // "quality" (man pages) or "size" (synthetic)
	Description string `json:"description"`

	Documents     int     `json:"documents"`
	Chunks        int     `json:"chunks"`
	IngestSeconds float64 `json:"ingest_seconds"`
	DocsPerSec    float64 `json:"docs_per_sec"`
	ChunksPerSec  float64 `json:"chunks_per_sec"`

	Quality *Quality `json:"quality,omitempty"`
	// FreshQuality is measured right after the import, before waiting for
	// Weaviate to flush its memtables (Weaviate systems only).
	FreshQuality  *Quality          `json:"fresh_quality,omitempty"`
	FreshLatency  *benchkit.Latency `json:"fresh_latency,omitempty"`
	SettleSeconds float64           `json:"settle_seconds,omitempty"`

	Latency    benchkit.Latency `json:"latency"`     // one client
	LatencyMS  []float64        `json:"latency_ms"`  // every one-client sample, for the chart
	Ranks      []int            `json:"ranks"`       // per query, the first answer's rank (0: not in the top 10), for -ranks
	QPS        float64          `json:"qps"`         // Clients concurrent clients
	Clients    int              `json:"clients"`     // for QPS
	IndexBytes int64            `json:"index_bytes"` // on disk, embedded index only

	// Filled in by the parent.
	PeakRSSBytes       int64 `json:"peak_rss_bytes"`        // the bench process measuring this system
	ServerPeakRSSBytes int64 `json:"server_peak_rss_bytes"` // the Weaviate server, Weaviate systems only

	Notes []string `json:"notes,omitempty"`

	date string // of the run, for the size table
}

// childOptions are passed from the parent to each child invocation.
type childOptions struct {
	System      string
	CorpusFile  string
	WorkDir     string
	Passes      int
	Clients     int
	WeaviateURL string
	Settle      time.Duration
}

// runChild measures one system and writes its Result as JSON to stdout.
func runChild(ctx context.Context, o childOptions) error {
	var (
		res *Result
		err error
	)
	switch o.System {
	case "size-10k":
		res, err = runSize(ctx, o, 10_000)
	case "size-100k":
		res, err = runSize(ctx, o, 100_000)
	case "size-1m":
		res, err = runSize(ctx, o, 1_000_000)
	default:
		res, err = runQuality(ctx, o)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", o.System, err)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// openSystem opens the named system with its state in dir.
func openSystem(ctx context.Context, info systemInfo, o childOptions) (System, error) {
	var emb *HashEmbedder
	if info.Hybrid {
		emb = &HashEmbedder{}
	}
	switch info.Name {
	case "embedded-lexical", "embedded-hybrid":
		ix, err := openEmbedded(ctx, o.WorkDir)
		if err != nil {
			return nil, err
		}
		s, err := newServiceSystem(ctx, o.WorkDir, ix, embedderOrNil(emb))
		if err != nil {
			ix.Close()
			return nil, err
		}
		return s, nil
	case "weaviate-bm25", "weaviate-hybrid":
		ix, err := openWeaviateIndex(ctx, o.WeaviateURL)
		if err != nil {
			return nil, err
		}
		s, err := newServiceSystem(ctx, o.WorkDir, ix, embedderOrNil(emb))
		if err != nil {
			ix.Close()
			return nil, err
		}
		return s, nil
	case "weaviate-peer-bm25":
		return newPeer(ctx, o.WeaviateURL, o.WorkDir)
	}
	return nil, fmt.Errorf("unknown system %q", info.Name)
}

// preparer is a System with work to do before its timed ingest.
type preparer interface {
	Prepare(ctx context.Context, pages []Page) error
}

// runQuality ingests the man-page corpus into a system and measures it.
func runQuality(ctx context.Context, o childOptions) (*Result, error) {
	info, ok := lookupSystem(o.System)
	if !ok {
		return nil, fmt.Errorf("unknown system %q", o.System)
	}
	b, err := os.ReadFile(o.CorpusFile)
	if err != nil {
		return nil, err
	}
	var corpus Corpus
	if err := json.Unmarshal(b, &corpus); err != nil {
		return nil, fmt.Errorf("corpus %s: %w", o.CorpusFile, err)
	}
	queries := corpus.Queries()
	sys, err := openSystem(ctx, info, o)
	if err != nil {
		return nil, err
	}
	defer func() {
		if sys != nil {
			sys.Close()
		}
	}()
	res := &Result{System: info.Name, Kind: "quality", Description: info.Description, Documents: len(corpus.Pages), Clients: o.Clients}

	if p, ok := sys.(preparer); ok {
		if err := p.Prepare(ctx, corpus.Pages); err != nil {
			return nil, err
		}
	}
	benchkit.Logf("%s: ingesting %d pages", info.Name, len(corpus.Pages))
	start := time.Now()
	chunks, err := sys.Ingest(ctx, corpus.Pages)
	if err != nil {
		return nil, err
	}
	imported := time.Now()
	elapsed := imported.Sub(start)
	res.Chunks, res.IngestSeconds = chunks, elapsed.Seconds()
	res.DocsPerSec = float64(len(corpus.Pages)) / elapsed.Seconds()
	res.ChunksPerSec = float64(chunks) / elapsed.Seconds()
	benchkit.Logf("%s: %d chunks in %.1fs (%.0f docs/s, %.0f chunks/s)", info.Name, chunks, elapsed.Seconds(), res.DocsPerSec, res.ChunksPerSec)

	if info.Backend == "weaviate" {
		// Known Weaviate 1.35.2 behaviour (docs/benchmarks.md): until its
		// memtables flush, BM25 with a small limit can miss documents. Measure
		// the fresh quality, then wait for the flush and measure for real.
		rankings, ds, err := timedPass(ctx, sys, queries)
		if err != nil {
			return nil, err
		}
		fresh, freshLatency := Score(queries, rankings), benchkit.Summarise(ds)
		res.FreshQuality, res.FreshLatency = &fresh, &freshLatency
		benchkit.Logf("%s: right after the import: MRR@10 %.3f, p95 %.1f ms", info.Name, fresh.MRR10, freshLatency.P95)
		if wait := time.Until(imported.Add(o.Settle)); wait > 0 {
			benchkit.Logf("%s: waiting %s for Weaviate to flush its memtables", info.Name, wait.Round(time.Second))
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
		}
		res.SettleSeconds = o.Settle.Seconds()
	}

	// Warm up caches and connections, then one client, pass after pass.
	if _, _, err := timedPass(ctx, sys, queries[:min(20, len(queries))]); err != nil {
		return nil, err
	}
	var all []time.Duration
	for pass := range max(o.Passes, 1) {
		rankings, ds, err := timedPass(ctx, sys, queries)
		if err != nil {
			return nil, err
		}
		if pass == 0 {
			q := Score(queries, rankings)
			res.Quality = &q
			for i, query := range queries {
				res.Ranks = append(res.Ranks, FirstAnswerRank(rankings[i], query.Answers))
			}
		}
		all = append(all, ds...)
	}
	res.Latency = benchkit.Summarise(all)
	for _, d := range all {
		res.LatencyMS = append(res.LatencyMS, float64(d)/float64(time.Millisecond))
	}
	if res.QPS, err = throughput(ctx, sys, queries, o.Clients, max(o.Passes, 1)*len(queries)); err != nil {
		return nil, err
	}
	benchkit.Logf("%s: MRR@10 %.3f, p95 %.1f ms, %.0f queries/s with %d clients", info.Name, res.Quality.MRR10, res.Latency.P95, res.QPS, o.Clients)
	if info.Backend == "embedded" {
		res.IndexBytes = indexBytes(o.WorkDir)
	}
	err = sys.Close()
	sys = nil
	return res, err
}
