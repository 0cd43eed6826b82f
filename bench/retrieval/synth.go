package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
	"github.com/convosphere/convosphere/knowledge"
)

// The synthesised corpus for the size test. Words follow Zipf's law over a
// vocabulary whose most frequent ranks are real English function words
// (dropped by the query parser as in real questions) and whose other ranks
// are pronounceable made-up words, shorter for frequent ranks. Chunks are
// 120 to 200 words (about the production chunk size of 1200 characters),
// ten to a document, each under a short heading; documents have a title.
// Queries are known-item: four distinct words of a random chunk.
const (
	synthVocabulary    = 200_000
	synthZipfS         = 1.07 // exponent: English text is close to 1
	synthZipfV         = 2.0
	synthChunksPerDoc  = 10
	synthMinWords      = 120
	synthMaxWords      = 200
	synthQueryWords    = 4
	synthQueries       = 300
	synthKnowledgeBase = "synthetic"
	synthSeed          = 20260401
)

// functionWords are the most frequent English words, roughly in order.
var functionWords = strings.Fields(`the of and to a in is that for it as was with be by on not he i this are or
	his from at which but have an had they you were their one all we can her has there been if more when will
	would who so no she other its may these about than into them only could some out such what then two also`)

var (
	onsets = strings.Fields("b c d f g h j k l m n p r s t v w z br cl dr fl gr pl pr sk sl st tr ch sh th")
	nuclei = strings.Fields("a e i o u ai ea ou io ia")
)

// synthWord is the word of Zipf rank r (0-based): a function word for the
// first ranks, else made-up syllables encoding r, so every rank has its
// own word and frequent ranks have short words.
func synthWord(r int) string {
	if r < len(functionWords) {
		return functionWords[r]
	}
	n := r - len(functionWords)
	base := len(onsets) * len(nuclei)
	var b strings.Builder
	// Length in syllables from n's magnitude, then n's digits in base.
	syll, span := 1, base
	for n >= span {
		n -= span
		syll++
		span *= base
	}
	for range syll {
		d := n % base
		n /= base
		b.WriteString(onsets[d%len(onsets)])
		b.WriteString(nuclei[d/len(onsets)])
	}
	if r%3 == 0 {
		b.WriteString("n") // some closed syllables, for variety
	}
	return b.String()
}

// synthChunk regenerates chunk number i (0-based over the whole corpus).
func synthChunk(i int) (heading string, words []string) {
	rng := rand.New(rand.NewPCG(synthSeed, uint64(i)))
	zipf := rand.NewZipf(rng, synthZipfS, synthZipfV, synthVocabulary-1)
	n := synthMinWords + rng.IntN(synthMaxWords-synthMinWords+1)
	words = make([]string, n)
	for j := range words {
		words[j] = synthWord(int(zipf.Uint64()))
	}
	h := make([]string, 2+rng.IntN(2))
	for j := range h {
		h[j] = synthWord(len(functionWords) + int(zipf.Uint64()))
	}
	return strings.Join(h, " "), words
}

// synthTitle is the title of document d.
func synthTitle(d int) string {
	rng := rand.New(rand.NewPCG(synthSeed+1, uint64(d)))
	zipf := rand.NewZipf(rng, synthZipfS, synthZipfV, synthVocabulary-1)
	t := make([]string, 2+rng.IntN(3))
	for j := range t {
		t[j] = synthWord(len(functionWords) + int(zipf.Uint64()))
	}
	return strings.Join(t, " ")
}

// synthText lays words out as prose: sentences of 8 to 20 words.
func synthText(rng *rand.Rand, words []string) string {
	var b strings.Builder
	next := 8 + rng.IntN(13)
	for j, w := range words {
		switch {
		case j == 0:
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
			continue
		case next == 0:
			b.WriteString(". ")
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
			next = 8 + rng.IntN(13)
			continue
		}
		b.WriteByte(' ')
		b.WriteString(w)
		next--
	}
	b.WriteByte('.')
	return b.String()
}

// synthDocument returns the chunks of document d.
func synthDocument(d int) []knowledge.Chunk {
	title := synthTitle(d)
	docID := "doc-" + strconv.Itoa(d)
	chunks := make([]knowledge.Chunk, synthChunksPerDoc)
	for p := range chunks {
		i := d*synthChunksPerDoc + p
		heading, words := synthChunk(i)
		rng := rand.New(rand.NewPCG(synthSeed+2, uint64(i)))
		chunks[p] = knowledge.Chunk{
			ID: knowledge.ChunkID(docID, p), KnowledgeBase: synthKnowledgeBase, DocumentID: docID,
			Document: docID + ".md", Title: title, HeadingPath: []string{title, heading}, Position: p,
			Text: synthText(rng, words),
		}
	}
	return chunks
}

// synthQuery is known-item query q: synthQueryWords distinct words, not
// function words, drawn from a random chunk; it returns the query and the
// chunk's document.
func synthQuery(q, chunks int) (string, string) {
	rng := rand.New(rand.NewPCG(synthSeed+3, uint64(q)))
	i := rng.IntN(chunks)
	_, words := synthChunk(i)
	var pool []string
	seen := map[string]bool{}
	for _, w := range words {
		if !seen[w] && !isFunctionWord(w) {
			seen[w] = true
			pool = append(pool, w)
		}
	}
	rng.Shuffle(len(pool), func(a, b int) { pool[a], pool[b] = pool[b], pool[a] })
	return strings.Join(pool[:min(synthQueryWords, len(pool))], " "), "doc-" + strconv.Itoa(i/synthChunksPerDoc) + ".md"
}

func isFunctionWord(w string) bool { return slices.Contains(functionWords, w) }

// runSize measures the embedded index on a synthesised corpus of n chunks:
// ingest rate (chunks upserted a document at a time, as the service does,
// without embeddings) and one-client query latency.
func runSize(ctx context.Context, o childOptions, n int) (*Result, error) {
	ix, err := openEmbedded(ctx, o.WorkDir)
	if err != nil {
		return nil, err
	}
	defer func() { ix.Close() }()
	docs := n / synthChunksPerDoc
	res := &Result{System: o.System, Kind: "size", Documents: docs, Chunks: docs * synthChunksPerDoc,
		Description: fmt.Sprintf("embedded index, %d synthesised chunks (Zipf vocabulary), Index.Upsert one document (10 chunks) at a time, Index.Search top %d", docs*synthChunksPerDoc, topK)}
	benchkit.Logf("%s: ingesting %d chunks", o.System, res.Chunks)
	start := time.Now()
	last := start
	for d := range docs {
		if err := ix.Upsert(ctx, synthDocument(d)); err != nil {
			return nil, err
		}
		if time.Since(last) > 30*time.Second {
			last = time.Now()
			el := time.Since(start)
			benchkit.Logf("%s: %d/%d chunks, %.0f chunks/s", o.System, (d+1)*synthChunksPerDoc, res.Chunks, float64((d+1)*synthChunksPerDoc)/el.Seconds())
		}
	}
	elapsed := time.Since(start)
	res.IngestSeconds = elapsed.Seconds()
	res.DocsPerSec = float64(docs) / elapsed.Seconds()
	res.ChunksPerSec = float64(res.Chunks) / elapsed.Seconds()
	benchkit.Logf("%s: ingested in %s (%.0f chunks/s)", o.System, elapsed.Round(time.Second), res.ChunksPerSec)

	queries := make([]Query, synthQueries)
	for q := range queries {
		text, doc := synthQuery(q, res.Chunks)
		queries[q] = Query{Text: text, Answers: []string{doc}}
	}
	// Open the file again, as a process starting would: its first search
	// builds the in-memory postings.
	if err := ix.Close(); err != nil {
		return nil, err
	}
	if ix, err = openEmbedded(ctx, o.WorkDir); err != nil {
		return nil, err
	}
	sys := indexSystem{ix}
	_, first, err := timedPass(ctx, sys, queries[:1])
	if err != nil {
		return nil, err
	}
	res.Notes = append(res.Notes, fmt.Sprintf("the first search after opening the file took %s: it loads the knowledge base's postings into memory",
		first[0].Round(10*time.Millisecond)))
	benchkit.Logf("%s: first search after opening %s", o.System, first[0].Round(time.Millisecond))
	if _, _, err := timedPass(ctx, sys, queries[:20]); err != nil {
		return nil, err
	}
	rankings, ds, err := timedPass(ctx, sys, queries)
	if err != nil {
		return nil, err
	}
	q := Score(queries, rankings)
	res.Quality = &q
	res.Latency = benchkit.Summarise(ds)
	for _, d := range ds {
		res.LatencyMS = append(res.LatencyMS, float64(d)/float64(time.Millisecond))
	}
	if res.QPS, err = throughput(ctx, sys, queries, o.Clients, len(queries)); err != nil {
		return nil, err
	}
	res.Clients = o.Clients
	res.IndexBytes = indexBytes(o.WorkDir)
	benchkit.Logf("%s: query p50 %.1f ms, p95 %.1f ms, p99 %.1f ms; %.0f queries/s with %d clients", o.System,
		res.Latency.P50, res.Latency.P95, res.Latency.P99, res.QPS, o.Clients)
	return res, nil
}

// matchNote says how many chunks the size test's queries match, from the
// Zipf law (computed by the parent, so that the child's peak RSS is the
// index's alone).
func matchNote(chunks int) string {
	ranks, norm := zipfRanks()
	shares := make([]float64, synthQueries)
	for q := range shares {
		text, _ := synthQuery(q, chunks)
		shares[q] = expectedMatchShare(text, ranks, norm)
	}
	slices.Sort(shares)
	return fmt.Sprintf("a query's words occur in %.1f%% of the chunks at the median, %.1f%% at the 95th percentile (expected from the Zipf law): an OR query scores that many chunks",
		100*shares[len(shares)/2], 100*shares[len(shares)*95/100])
}

// expectedMatchShare is the share of chunks expected to hold at least one
// of the query's words (the rows an OR query has to rank), from the Zipf
// law the corpus is drawn from, the words taken as independent.
func expectedMatchShare(query string, ranks map[string]int, norm float64) float64 {
	const meanWords = (synthMinWords + synthMaxWords) / 2
	none := 1.0
	for _, w := range strings.Fields(query) {
		r, ok := ranks[w]
		if !ok {
			continue
		}
		p := math.Pow(float64(r)+synthZipfV, -synthZipfS) / norm
		none *= math.Pow(1-p, meanWords)
	}
	return 1 - none
}

// zipfRanks maps each word of the vocabulary to its lowest rank, and
// returns the normalisation of the Zipf law.
func zipfRanks() (map[string]int, float64) {
	ranks := make(map[string]int, synthVocabulary)
	var norm float64
	for r := range synthVocabulary {
		norm += math.Pow(float64(r)+synthZipfV, -synthZipfS)
		if _, ok := ranks[synthWord(r)]; !ok {
			ranks[synthWord(r)] = r
		}
	}
	return ranks, norm
}

// indexBytes is the size of the embedded index files (with WAL) in dir.
func indexBytes(dir string) int64 {
	var n int64
	matches, _ := filepath.Glob(filepath.Join(dir, "index.db*"))
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// indexSystem queries an Index directly (the size test has no store).
type indexSystem struct{ ix knowledge.Index }

func (s indexSystem) Ingest(context.Context, []Page) (int, error) { return 0, nil }
func (s indexSystem) Close() error                                { return nil }
func (s indexSystem) Search(ctx context.Context, query string) ([]string, error) {
	ps, err := s.ix.Search(ctx, knowledge.Query{Text: query, KnowledgeBases: []string{synthKnowledgeBase}, Limit: topK})
	if err != nil {
		return nil, err
	}
	return DocumentRanking(ps), nil
}
