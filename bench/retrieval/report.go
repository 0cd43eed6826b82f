package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
)

// section is what this benchmark owns in the benchmarks document: the whole
// Retrieval section. Its data comment keeps the last run of each kind of
// result, so that a run of the size test alone keeps the last quality results.
var section = benchkit.Section{Name: "bench/retrieval"}

const chartFile = "retrieval-latency.svg"

// qualityTable is the Markdown table of the man-page results.
func qualityTable(results []*Result) string {
	var b strings.Builder
	b.WriteString("| system | chunks | ingest docs/s | ingest chunks/s | MRR@10 | recall@1 | recall@5 | recall@10 | p50 ms | p95 ms | p99 ms | queries/s (8 clients) | peak RSS bench | peak RSS Weaviate |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range results {
		if r.Kind != "quality" || r.Quality == nil {
			continue
		}
		q := r.Quality
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %.3f | %.3f | %.3f | %.3f | %s | %s | %s | %s | %s | %s |\n",
			r.System, r.Chunks, benchkit.Rate(r.DocsPerSec), benchkit.Rate(r.ChunksPerSec), q.MRR10, q.Recall1, q.Recall5, q.Recall10,
			benchkit.MS(r.Latency.P50), benchkit.MS(r.Latency.P95), benchkit.MS(r.Latency.P99), benchkit.Rate(r.QPS),
			benchkit.MiB(r.PeakRSSBytes), serverRSS(r))
	}
	return b.String()
}

func serverRSS(r *Result) string {
	if r.ServerPeakRSSBytes == 0 {
		return "–"
	}
	return benchkit.MiB(r.ServerPeakRSSBytes)
}

// sizeTable is the Markdown table of the size tests.
func sizeTable(results []*Result) string {
	var b strings.Builder
	b.WriteString("| corpus | chunks | ingest chunks/s | ingest time | query p50 ms | p95 ms | p99 ms | queries/s (8 clients) | known-item recall@10 | index on disk | peak RSS | date |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range results {
		if r.Kind != "size" {
			continue
		}
		recall := "–"
		if r.Quality != nil {
			recall = fmt.Sprintf("%.3f", r.Quality.Recall10)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.System, r.Chunks, benchkit.Rate(r.ChunksPerSec), (time.Duration(r.IngestSeconds * float64(time.Second))).Round(time.Second),
			benchkit.MS(r.Latency.P50), benchkit.MS(r.Latency.P95), benchkit.MS(r.Latency.P99), benchkit.Rate(r.QPS), recall,
			benchkit.MiB(r.IndexBytes), benchkit.MiB(r.PeakRSSBytes), r.date)
	}
	return b.String()
}

// targets checks the targets against the results it can find.
func targets(results []*Result) []string {
	find := func(name string) *Result {
		for _, r := range results {
			if r.System == name {
				return r
			}
		}
		return nil
	}
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	var out []string
	if peer := find("weaviate-peer-bm25"); peer != nil && peer.Quality != nil {
		for _, name := range []string{"embedded-lexical", "embedded-hybrid", "weaviate-bm25", "weaviate-hybrid"} {
			if r := find(name); r != nil && r.Quality != nil {
				note := ""
				if info, _ := lookupSystem(name); info.Hybrid {
					note = " (with the hash embedder, not an embedding model)"
				}
				out = append(out, fmt.Sprintf("MRR@10 of %s ≥ Weaviate's own BM25: %.3f vs %.3f: %s%s",
					name, r.Quality.MRR10, peer.Quality.MRR10, mark(r.Quality.MRR10 >= peer.Quality.MRR10), note))
			}
		}
	}
	for _, c := range []struct {
		name  string
		limit float64
	}{{"size-10k", 10}, {"size-1m", 50}} {
		if r := find(c.name); r != nil {
			out = append(out, fmt.Sprintf("embedded query p95 at %s chunks ≤ %.0f ms: %s ms: %s",
				strings.TrimPrefix(c.name, "size-"), c.limit, benchkit.MS(r.Latency.P95), mark(r.Latency.P95 <= c.limit)))
		}
	}
	for _, name := range []string{"embedded-lexical", "size-10k", "size-100k", "size-1m"} {
		if r := find(name); r != nil {
			out = append(out, fmt.Sprintf("embedded ingest ≥ 500 chunks/s without embeddings (%s): %s chunks/s: %s",
				name, benchkit.Rate(r.ChunksPerSec), mark(r.ChunksPerSec >= 500)))
		}
	}
	return out
}

// textReport is what the command prints.
func textReport(r *Run) string {
	var b strings.Builder
	fmt.Fprintf(&b, "machine: %s (load average %s at the start)\ndate: %s\ngo: %s\n", r.Machine, r.Load, r.Date.Format(time.RFC3339), r.Go)
	if r.Weaviate != "" {
		fmt.Fprintf(&b, "weaviate: %s\n", r.Weaviate)
	}
	fmt.Fprintf(&b, "command: %s\n\n", r.Command)
	if slices.ContainsFunc(r.Results, func(x *Result) bool { return x.Kind == "quality" }) {
		b.WriteString(qualityTable(r.Results))
		b.WriteString("\n")
	}
	if slices.ContainsFunc(r.Results, func(x *Result) bool { return x.Kind == "size" }) {
		for _, x := range r.Results {
			x.date = r.Date.Format("2006-01-02")
		}
		b.WriteString(sizeTable(r.Results))
		b.WriteString("\n")
		for _, x := range r.Results {
			for _, n := range x.Notes {
				fmt.Fprintf(&b, "- %s: %s\n", x.System, n)
			}
		}
	}
	for _, t := range targets(r.Results) {
		fmt.Fprintf(&b, "- %s\n", t)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "FAILED %s\n", f)
	}
	return b.String()
}

// stored is what the document keeps of earlier runs, in a comment, so a
// later run of one part can rewrite the section with the other parts.
type stored struct {
	Quality *Run            `json:"quality,omitempty"` // the last run with man-page results
	Sizes   map[string]*Run `json:"sizes,omitempty"`   // the last run of each size test
}

// writeReport rewrites the Retrieval section of the Markdown file at path
// (creating the file when missing) and writes the latency chart.
func writeReport(path string, r *Run) error {
	doc, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var st stored
	if _, err := section.Data(string(doc), &st); err != nil {
		st = stored{} // unreadable old data is replaced; broken markers fail in section.Write
	}
	// Keep the latency samples out of the document.
	slim := *r
	slim.Results = nil
	hasQuality := false
	for _, x := range r.Results {
		c := *x
		c.LatencyMS, c.Ranks = nil, nil
		if c.Kind == "quality" {
			hasQuality = true
			slim.Results = append(slim.Results, &c)
		}
	}
	if hasQuality {
		q := slim
		st.Quality = &q
		if err := writeChart(path, r.Results); err != nil {
			return err
		}
	}
	for _, x := range r.Results {
		if x.Kind != "size" {
			continue
		}
		c := *x
		c.LatencyMS, c.Ranks = nil, nil
		s := *r
		s.Corpus, s.Results, s.Failures = nil, []*Result{&c}, nil
		if st.Sizes == nil {
			st.Sizes = map[string]*Run{}
		}
		st.Sizes[x.System] = &s
	}
	body, err := renderSection(st)
	if err != nil {
		return err
	}
	return section.Write(path, body)
}

// renderSection writes the Retrieval section from the stored runs.
func renderSection(st stored) (string, error) {
	var b strings.Builder
	b.WriteString("## Retrieval\n\n")
	b.WriteString(methodText)
	if q := st.Quality; q != nil {
		b.WriteString("\n### Man-page known-item evaluation\n\n")
		fmt.Fprintf(&b, "- Machine: %s; 1-minute load average %s when the run started\n- Date: %s\n- Go: %s\n", q.Machine, q.Load, q.Date.Format(time.RFC3339), q.Go)
		if q.Weaviate != "" {
			fmt.Fprintf(&b, "- Weaviate: %s (single node on loopback, started by scripts/weaviate.sh)\n", q.Weaviate)
		}
		fmt.Fprintf(&b, "- Command: `%s`\n", q.Command)
		if c := q.Corpus; c != nil {
			var pkgs []string
			for _, p := range slices.Sorted(mapKeys(c.Packages)) {
				pkgs = append(pkgs, fmt.Sprintf("%s %s (%d pages)", p, c.Packages[p], c.ByPkg[p]))
			}
			fmt.Fprintf(&b, "- Corpus: %d pages from %s; %d symlinked aliases and %d `.so` stubs skipped",
				c.Pages, strings.Join(pkgs, ", "), c.Skipped.Symlinks, c.Skipped.SoStubs)
			if len(c.Skipped.NoName) > 0 {
				fmt.Fprintf(&b, ", %d without a NAME description (%s)", len(c.Skipped.NoName), strings.Join(c.Skipped.NoName, ", "))
			}
			fmt.Fprintf(&b, "; %d queries (%d of them answered by more than one page). Rendered with `%s`.\n",
				c.Queries, c.Shared, c.Renderer)
		}
		b.WriteString("\n")
		b.WriteString(qualityTable(q.Results))
		b.WriteString("\n")
		for _, x := range q.Results {
			if x.FreshQuality != nil && x.FreshLatency != nil {
				fmt.Fprintf(&b, "- %s right after its import: MRR@10 %.3f, recall@10 %.3f, p50 %s ms, p95 %s ms (the table is measured %.0f s after the import).\n",
					x.System, x.FreshQuality.MRR10, x.FreshQuality.Recall10, benchkit.MS(x.FreshLatency.P50), benchkit.MS(x.FreshLatency.P95), x.SettleSeconds)
			}
			for _, n := range x.Notes {
				fmt.Fprintf(&b, "- %s: %s.\n", x.System, n)
			}
		}
		for _, f := range q.Failures {
			fmt.Fprintf(&b, "- Not measured: %s\n", f)
		}
		fmt.Fprintf(&b, "\n![%s](img/%s)\n", chartTitle, chartFile)
	}
	if len(st.Sizes) > 0 {
		b.WriteString("\n### Embedded index size test\n\n")
		var results []*Result
		var runs []*Run
		for _, name := range []string{"size-10k", "size-100k", "size-1m"} {
			if s := st.Sizes[name]; s != nil && len(s.Results) == 1 {
				s.Results[0].date = s.Date.Format("2006-01-02")
				results = append(results, s.Results[0])
				runs = append(runs, s)
			}
		}
		b.WriteString(sizeText)
		b.WriteString(sizeTable(results))
		b.WriteString("\n")
		for _, s := range runs {
			fmt.Fprintf(&b, "- %s: %s (load average %s at the start), Go %s, `%s`\n", s.Results[0].System, s.Machine, s.Load, s.Go, s.Command)
			for _, n := range s.Results[0].Notes {
				fmt.Fprintf(&b, "  - %s.\n", n)
			}
		}
	}
	var all []*Result
	if st.Quality != nil {
		all = append(all, st.Quality.Results...)
	}
	for _, s := range st.Sizes {
		all = append(all, s.Results...)
	}
	if ts := targets(all); len(ts) > 0 {
		b.WriteString("\n### Targets (issue 3)\n\n")
		for _, t := range ts {
			fmt.Fprintf(&b, "- %s\n", t)
		}
	}
	data, err := section.DataComment(st)
	if err != nil {
		return "", err
	}
	b.WriteString("\n" + data)
	return b.String(), nil
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

const methodText = `Known-item retrieval on the Debian man pages installed on the machine: the pages of the
packages coreutils (section 1) and manpages (sections 4, 5, 7). Each real page (symlinked
aliases and ` + "`.so`" + ` stubs skipped), rendered to text without its NAME section, is a document
named like ` + "`cp.1`" + `; its NAME description ("copy files and directories") is a query whose
answer is that page (pages sharing a description all count). Every system ingests the same
documents through its normal path and answers each query with its top 10 passages; passages
are reduced to documents in order of first appearance. MRR@10 is the mean reciprocal rank of
the first answer (0 beyond rank 10); recall@k is the share of queries with an answer in the top
k documents.

Systems:

- **embedded-lexical**: the default, ` + "`knowledge.Service`" + ` (production chunking: 1200 characters,
  150 overlap) over a SQLite store and the embedded index, lexical (BM25) search.
- **embedded-hybrid**: the same with an embedder, hybrid search (BM25 + vectors, fused).
- **weaviate-peer-bm25**: the baseline. Weaviate's own BM25 on the same chunks (our chunker,
  title, headings and text as searchable properties, defaults otherwise), imported and queried
  directly over Weaviate's REST and GraphQL API, with no ConvoSphere logic.
- **weaviate-bm25** / **weaviate-hybrid**: ` + "`knowledge.Service`" + ` over our Weaviate backend
  (` + "`knowledge/weaviate`" + `), lexical and hybrid.

No hosted embedding model is reachable on the benchmark machine, so **the hybrid rows use a
deterministic local embedder**: feature hashing of words and character trigrams into 384
dimensions (` + "`bench/retrieval/embedder.go`" + `). It knows word overlap and some morphology,
nothing of meaning: the hybrid rows measure the cost and the plumbing of hybrid search, not
what a real embedding model would add.

Ingest rates are for the whole pipeline, one document at a time (store the original, chunk,
embed for the hybrid rows, index). Latency is one client running every query three times
after a warm-up, measured around the search call (` + "`Service.Retrieve`" + `, or the HTTP request
for the peer); throughput is 8 concurrent clients sending as many queries. Each system runs in
a process of its own: "peak RSS bench" is that process's maximum resident set (getrusage),
which for the embedded rows is the whole system; "peak RSS Weaviate" is the server's VmHWM
from /proc, reset before each system (` + "`/proc/PID/clear_refs`" + `). Weaviate 1.35.2 can leave
fresh documents out of BM25 results with a small limit until its memtables flush (about 60 s
after an import), and our backend searches deeper for two minutes after a write to make up for
it; so each Weaviate row runs the queries once right after its import (listed below the table)
and is measured once that time has passed (` + "`-settle`" + `, default 130 s).
`

const sizeText = `Synthesised corpora for the embedded index alone (` + "`Index.Upsert`" + ` one document of ten
chunks at a time, as the service does, no embeddings; ` + "`Index.Search`" + ` top 10). Words follow
Zipf's law (exponent 1.07) over a 200,000-word vocabulary whose most frequent ranks are English
function words and the rest made-up words; chunks are 120 to 200 words under a heading, ten per
titled document. 300 queries of four distinct words from a random chunk, one client after a
warm-up; the known-item recall says whether that chunk's document came back in the top 10.

`
