package embedded_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
	"github.com/convosphere/convosphere/knowledge/embedded"
)

// synthetic returns n chunks of about 120 words drawn from a vocabulary of
// 5000 with a Zipf distribution, in documents of 10 chunks, with random
// vectors of dims dimensions (none when dims is 0). Words of the 100 most
// frequent start with "s": they play the stopwords, which queries leave out.
func synthetic(n, dims int) []knowledge.Chunk {
	rng := rand.New(rand.NewPCG(7, 11))
	vocab := make([]string, 5000)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("w%x", i*2654435761%1000003)
		if i < 100 {
			vocab[i] = "s" + vocab[i]
		}
	}
	zipf := rand.NewZipf(rng, 1.1, 2, uint64(len(vocab)-1))
	chunks := make([]knowledge.Chunk, n)
	for i := range chunks {
		var sb strings.Builder
		for range 120 {
			sb.WriteString(vocab[zipf.Uint64()])
			sb.WriteByte(' ')
		}
		doc := fmt.Sprintf("doc-%d", i/10)
		chunks[i] = knowledge.Chunk{ID: knowledge.ChunkID(doc, i%10), KnowledgeBase: "bench", DocumentID: doc,
			Document: doc + ".md", Title: doc, Position: i % 10, Text: sb.String()}
		if dims > 0 {
			v := make([]float32, dims)
			for j := range v {
				v[j] = float32(rng.NormFloat64())
			}
			chunks[i].Vector = v
		}
	}
	return chunks
}

func mustLoad(tb testing.TB, ix *embedded.Index, chunks []knowledge.Chunk) {
	tb.Helper()
	ctx := context.Background()
	for start := 0; start < len(chunks); start += 10 {
		if err := ix.Upsert(ctx, chunks[start:min(start+10, len(chunks))]); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkSearch measures one query against 10,000 chunks in each mode;
// it reports the 95th percentile latency as p95-ms.
func BenchmarkSearch(b *testing.B) {
	for _, dims := range []int{384, 1536} {
		chunks := synthetic(10_000, dims)
		ix := MustOpenPath(b, filepath.Join(b.TempDir(), "index.db"))
		mustLoad(b, ix, chunks)
		queries := make([]knowledge.Query, 64)
		rng := rand.New(rand.NewPCG(3, 5))
		for i := range queries {
			var words []string
			for _, w := range strings.Fields(chunks[rng.IntN(len(chunks))].Text) {
				if !strings.HasPrefix(w, "s") && len(words) < 4 {
					words = append(words, w)
				}
			}
			queries[i] = knowledge.Query{Text: strings.Join(words, " "), Vector: chunks[rng.IntN(len(chunks))].Vector, Limit: 10}
		}
		for _, mode := range []string{engine.SearchLexical, engine.SearchVector, engine.SearchHybrid} {
			b.Run(fmt.Sprintf("%s/dims=%d", mode, dims), func(b *testing.B) {
				ctx := context.Background()
				var took []time.Duration
				i := 0
				for b.Loop() {
					q := queries[i%len(queries)]
					q.Mode = mode
					start := time.Now()
					if _, err := ix.Search(ctx, q); err != nil {
						b.Fatal(err)
					}
					took = append(took, time.Since(start))
					i++
				}
				slices.Sort(took)
				b.ReportMetric(float64(took[len(took)*95/100].Microseconds())/1000, "p95-ms")
			})
		}
	}
}

// BenchmarkUpsert measures ingest without vectors: chunks per second.
func BenchmarkUpsert(b *testing.B) {
	chunks := synthetic(2000, 0)
	for b.Loop() {
		b.StopTimer()
		ix := MustOpenPath(b, filepath.Join(b.TempDir(), "index.db"))
		b.StartTimer()
		start := time.Now()
		mustLoad(b, ix, chunks)
		b.ReportMetric(float64(len(chunks))/time.Since(start).Seconds(), "chunks/s")
	}
}
