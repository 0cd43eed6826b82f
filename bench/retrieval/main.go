// Command retrieval is ConvoSphere's retrieval evaluation and benchmark.
//
// A known-item evaluation on the Debian man pages of this machine (coreutils
// section 1, manpages sections 4, 5 and 7): each page without its NAME
// section is a document and its NAME description is a query whose answer is
// that page. Each system ingests the pages and answers every query with its
// top 10 passages; the bench reports MRR@10, recall@1/5/10, ingest rate,
// one-client query latency, 8-client throughput and peak RSS. A size test
// measures the embedded index on synthesised corpora of 10k or 1M chunks.
//
//	go run ./bench/retrieval [-systems embedded,weaviate] [-size 10k,1m] [-out docs/benchmarks.md]
//
// Every system is measured in a child process of its own (the same binary
// with -child), so that its peak RSS is its own; the Weaviate server's
// peak RSS is read from /proc. With weaviate systems and no
// CONVOSPHERE_TEST_WEAVIATE_URL, scripts/weaviate.sh starts a server (and
// the bench stops it again).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "retrieval:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	systems     []string
	sizes       []string
	out         string
	cache       string
	passes      int
	clients     int
	weaviateURL string
	settle      time.Duration
	ranks       string
	child       string
	corpusFile  string
	workDir     string
}

func run() error {
	var o options
	var systemsFlag, sizeFlag string
	fs := flag.NewFlagSet("retrieval", flag.ContinueOnError)
	fs.StringVar(&systemsFlag, "systems", "embedded,weaviate", "systems to measure on the man pages: embedded, weaviate (groups) or "+systemNames()+"; none for the size test only")
	fs.StringVar(&sizeFlag, "size", "10k", "size tests of the embedded index: 10k, 100k, 1m, a comma list, or none")
	fs.StringVar(&o.out, "out", "", "Markdown file whose Retrieval section is written (e.g. docs/benchmarks.md); the latency chart goes to img/ beside it")
	fs.StringVar(&o.cache, "cache", ".cache/bench", "directory for the rendered corpus and the systems' working files")
	fs.IntVar(&o.passes, "passes", 3, "timed passes over the queries (one client); the 8-client run sends as many queries")
	fs.IntVar(&o.clients, "clients", 8, "concurrent clients for the throughput run")
	fs.StringVar(&o.weaviateURL, "weaviate-url", os.Getenv("CONVOSPHERE_TEST_WEAVIATE_URL"), "Weaviate to use; empty: start one of the bench's own with scripts/weaviate.sh (state in -cache/services), stopped at the end")
	fs.DurationVar(&o.settle, "settle", 130*time.Second, "wait after a Weaviate import before the timed queries: Weaviate flushes its memtables after 60 s idle, and knowledge/weaviate searches deeper for 2 minutes after a write")
	fs.StringVar(&o.ranks, "ranks", "", "write each query's answer rank per system to this TSV file, to compare systems query by query")
	fs.StringVar(&o.child, "child", "", "internal: measure one system and print its result as JSON")
	fs.StringVar(&o.corpusFile, "corpus", "", "internal: the corpus file, for -child")
	fs.StringVar(&o.workDir, "work", "", "internal: the working directory, for -child")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.child != "" {
		return runChild(ctx, childOptions{System: o.child, CorpusFile: o.corpusFile, WorkDir: o.workDir,
			Passes: o.passes, Clients: o.clients, WeaviateURL: o.weaviateURL, Settle: o.settle})
	}
	var err error
	if o.systems, err = expandSystems(systemsFlag); err != nil {
		return err
	}
	if o.sizes, err = parseSizes(sizeFlag); err != nil {
		return err
	}
	if len(o.systems) == 0 && len(o.sizes) == 0 {
		return errors.New("nothing to measure: name some -systems or a -size")
	}
	return parent(ctx, o)
}

func systemNames() string {
	var names []string
	for _, s := range systems {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}

// expandSystems turns the -systems list into system names, in the order of
// the systems table.
func expandSystems(list string) ([]string, error) {
	want := map[string]bool{}
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "" || item == "none":
		case item == "embedded" || item == "weaviate":
			for _, s := range systems {
				if s.Backend == item {
					want[s.Name] = true
				}
			}
		default:
			if _, ok := lookupSystem(item); !ok {
				return nil, fmt.Errorf("-systems: unknown system %q: use embedded, weaviate or %s", item, systemNames())
			}
			want[item] = true
		}
	}
	var out []string
	for _, s := range systems {
		if want[s.Name] {
			out = append(out, s.Name)
		}
	}
	return out, nil
}

// parseSizes checks the -size list.
func parseSizes(list string) ([]string, error) {
	var out []string
	for item := range strings.SplitSeq(strings.ToLower(list), ",") {
		switch item = strings.TrimSpace(item); item {
		case "", "none":
		case "10k", "100k", "1m":
			if !slices.Contains(out, item) {
				out = append(out, item)
			}
		default:
			return nil, fmt.Errorf("-size: unknown size %q: use 10k, 100k, 1m or none", item)
		}
	}
	return out, nil
}

// Run is everything one invocation measured, with where and how.
type Run struct {
	Date     time.Time        `json:"date"`
	Command  string           `json:"command"`
	Machine  benchkit.Machine `json:"machine"`
	Go       string           `json:"go"`
	Weaviate string           `json:"weaviate,omitempty"`
	// Load is /proc/loadavg's 1-minute load when the run started: other
	// work on the machine skews latencies.
	Load     string         `json:"load,omitempty"`
	Corpus   *CorpusSummary `json:"corpus,omitempty"`
	Results  []*Result      `json:"results"`
	Failures []string       `json:"failures,omitempty"`
}

// CorpusSummary describes the man-page corpus of a run.
type CorpusSummary struct {
	Pages    int               `json:"pages"`
	ByPkg    map[string]int    `json:"by_package"`
	Queries  int               `json:"queries"`
	Shared   int               `json:"shared"` // queries with more than one answer
	Packages map[string]string `json:"packages"`
	Renderer string            `json:"renderer"`
	Skipped  Skipped           `json:"skipped"`
}

func parent(ctx context.Context, o options) error {
	r := &Run{Date: time.Now().UTC(), Command: benchkit.Command("bench/retrieval", os.Args[1:]), Machine: benchkit.ReadMachine(), Go: runtime.Version(), Load: benchkit.LoadAverage()}
	if err := os.MkdirAll(o.cache, 0o750); err != nil {
		return err
	}
	var corpusFile string
	if len(o.systems) > 0 {
		c, err := LoadCorpus(ctx, o.cache, benchkit.Logf)
		if err != nil {
			return err
		}
		corpusFile = filepath.Join(o.cache, "manpages.json")
		qs := c.Queries()
		r.Corpus = &CorpusSummary{Pages: len(c.Pages), ByPkg: map[string]int{}, Queries: len(qs),
			Packages: c.Packages, Renderer: c.Renderer, Skipped: c.Skipped}
		for _, p := range c.Pages {
			r.Corpus.ByPkg[p.Package]++
		}
		for _, q := range qs {
			if len(q.Answers) > 1 {
				r.Corpus.Shared++
			}
		}
		benchkit.Logf("corpus: %d pages, %d queries (%d with more than one answer)", len(c.Pages), len(qs), r.Corpus.Shared)
	}
	var server *weaviateServer
	if slices.ContainsFunc(o.systems, func(s string) bool { info, _ := lookupSystem(s); return info.Backend == "weaviate" }) {
		var err error
		if server, err = startWeaviate(ctx, o.weaviateURL, o.cache); err != nil {
			return err
		}
		defer server.stop()
		r.Weaviate = server.Version
		o.weaviateURL = server.URL
		benchkit.Logf("weaviate: %s at %s (pid %d)", server.Version, server.URL, server.PID)
	}
	var names []string
	names = append(names, o.systems...)
	for _, s := range o.sizes {
		names = append(names, "size-"+s)
	}
	for _, name := range names {
		info, _ := lookupSystem(name)
		var srv *weaviateServer
		if info.Backend == "weaviate" {
			srv = server
		}
		res, err := measure(ctx, o, name, corpusFile, srv)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			benchkit.Logf("%s failed: %v", name, err)
			r.Failures = append(r.Failures, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		r.Results = append(r.Results, res)
	}
	fmt.Println()
	fmt.Print(textReport(r))
	if o.ranks != "" && corpusFile != "" {
		if err := writeRanks(o.ranks, corpusFile, r.Results); err != nil {
			return err
		}
		benchkit.Logf("wrote %s", o.ranks)
	}
	if o.out != "" {
		if err := writeReport(o.out, r); err != nil {
			return err
		}
		benchkit.Logf("wrote %s", o.out)
	}
	if len(r.Failures) > 0 {
		return fmt.Errorf("%d of %d measurements failed", len(r.Failures), len(names))
	}
	return nil
}

// measure runs one system in a child process and adds its peak RSS, and
// the server's when srv is set.
func measure(ctx context.Context, o options, name, corpusFile string, srv *weaviateServer) (*Result, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(o.cache, "work-"+name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	args := []string{"-child", name, "-corpus", corpusFile, "-work", work,
		"-passes", fmt.Sprint(o.passes), "-clients", fmt.Sprint(o.clients),
		"-weaviate-url", o.weaviateURL, "-settle", o.settle.String()}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	var stdout bytes.Buffer
	var stderr benchkit.TailWriter
	cmd.Stdout, cmd.Stderr = &stdout, io.MultiWriter(os.Stderr, &stderr)
	serverPeak := srv != nil && srv.resetPeak()
	if srv != nil && !serverPeak && srv.PID != 0 {
		benchkit.Logf("weaviate: cannot reset the server's peak RSS (/proc/%d/clear_refs): it is the peak since the server started", srv.PID)
	}
	if err := cmd.Run(); err != nil {
		if last := stderr.LastLine(); last != "" {
			return nil, fmt.Errorf("%w: %s", err, strings.TrimPrefix(last, "retrieval: "))
		}
		return nil, err
	}
	var res Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("child output: %w", err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.PeakRSSBytes = ru.Maxrss << 10 // kilobytes on Linux
	}
	if res.Kind == "size" {
		res.Notes = append(res.Notes, matchNote(res.Chunks))
	}
	if srv != nil {
		res.ServerPeakRSSBytes = srv.peak()
		if !serverPeak && res.ServerPeakRSSBytes > 0 {
			res.Notes = append(res.Notes, "server peak RSS is since the server started")
		}
	}
	return &res, nil
}

// writeRanks writes a TSV: a query per line, its answers, then each
// system's rank of the first answer (0: not in the top 10).
func writeRanks(path, corpusFile string, results []*Result) error {
	b, err := os.ReadFile(corpusFile)
	if err != nil {
		return err
	}
	var c Corpus
	if err := json.Unmarshal(b, &c); err != nil {
		return err
	}
	var out strings.Builder
	out.WriteString("query\tanswers")
	var rs []*Result
	for _, r := range results {
		if r.Kind == "quality" && len(r.Ranks) > 0 {
			rs = append(rs, r)
			out.WriteString("\t" + r.System)
		}
	}
	out.WriteString("\n")
	for i, q := range c.Queries() {
		out.WriteString(q.Text + "\t" + strings.Join(q.Answers, ","))
		for _, r := range rs {
			fmt.Fprintf(&out, "\t%d", r.Ranks[i])
		}
		out.WriteString("\n")
	}
	return os.WriteFile(path, []byte(out.String()), 0o644)
}
