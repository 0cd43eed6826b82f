package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
)

func TestWriteReportKeepsOtherParts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "benchmarks.md")
	other := "# Benchmarks\n\n## Chat\n\nwritten by another benchmark\n"
	if err := os.WriteFile(path, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	q := &Quality{Queries: 2, MRR10: 0.75, Recall1: 0.5, Recall5: 1, Recall10: 1}
	quality := &Run{Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Command: "go run ./bench/retrieval -out x", Go: "go1.26",
		Results: []*Result{
			{System: "embedded-lexical", Kind: "quality", Quality: q, LatencyMS: []float64{1, 2, 3}},
			{System: "weaviate-peer-bm25", Kind: "quality", Quality: &Quality{MRR10: 0.8}, LatencyMS: []float64{2, 3}},
		}}
	if err := writeReport(path, quality); err != nil {
		t.Fatal(err)
	}
	size := &Run{Date: time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC), Command: "go run ./bench/retrieval -size 1m", Go: "go1.26",
		Results: []*Result{{System: "size-1m", Kind: "size", Chunks: 1_000_000, ChunksPerSec: 900, Latency: benchkit.Latency{P95: 60}}}}
	if err := writeReport(path, size); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, want := range []string{
		"## Chat\n\nwritten by another benchmark",
		"## Retrieval",
		"| embedded-lexical | 0 |",
		"MRR@10 of embedded-lexical ≥ Weaviate's own BM25: 0.750 vs 0.800: **not met**",
		"| size-1m | 1000000 | 900 |",
		"embedded query p95 at 1m chunks ≤ 50 ms: 60.0 ms: **not met**",
		"2026-01-02T03:04:05Z",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("missing %q in:\n%s", want, doc)
		}
	}
	if n := strings.Count(doc, "## Retrieval"); n != 1 {
		t.Errorf("%d Retrieval sections", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "img", chartFile)); err != nil {
		t.Errorf("no chart: %v", err)
	}
	// A new quality run replaces the old one and keeps the size result.
	quality.Results[0].Quality = &Quality{MRR10: 0.9}
	if err := writeReport(path, quality); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	doc = string(b)
	if !strings.Contains(doc, "0.900 vs 0.800: met") || !strings.Contains(doc, "| size-1m |") || strings.Contains(doc, "0.750 vs") {
		t.Errorf("rewrite went wrong:\n%s", doc)
	}
}

func TestSynthWordsAreDistinct(t *testing.T) {
	seen := map[string]int{}
	for r := len(functionWords); r < 60_000; r++ {
		w := synthWord(r)
		if prev, ok := seen[w]; ok {
			t.Fatalf("ranks %d and %d are both %q", prev, r, w)
		}
		seen[w] = r
	}
	q, doc := synthQuery(1, 10_000)
	if len(strings.Fields(q)) != synthQueryWords || !strings.HasPrefix(doc, "doc-") {
		t.Fatalf("synthQuery = %q, %q", q, doc)
	}
}
