package main

import (
	"cmp"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
)

// section is what this benchmark owns in the benchmarks document.
var section = benchkit.Section{Name: "bench/console"}

// targetMessages is the dataset size issue 8 asks for.
const targetMessages = 1_000_000

// verdict is a page's result against the target.
func verdict(r *PageResult) string {
	switch {
	case r.NotBuilt:
		return "not built (404)"
	case r.Aborted != "":
		return "**FAIL** (stopped: " + r.Aborted + ")"
	case r.Requests == 0:
		return "**FAIL** (no request answered)"
	case r.Errors+r.WarmupErrors > 0:
		return "**FAIL** (errors)"
	case r.Passed():
		return "PASS"
	}
	return "**FAIL**"
}

func seconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d >= time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// thousands writes n with thousands separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// size formats bytes in KiB, MiB or GiB.
func size(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", (b+1023)/1024)
}

func kib(b int64) string {
	v := float64(b) / 1024
	if v < 10 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// pageLabel is the page as requested, with where it led when elsewhere.
func pageLabel(r *PageResult) string {
	label := "`" + r.Page + "`"
	if r.Final != "" {
		label += " → `" + r.Final + "`"
	}
	return label
}

// pageTable is the Markdown table of the pages.
func pageTable(results []*PageResult) string {
	var b strings.Builder
	b.WriteString("| page | requests | requests/s | p50 ms | p95 ms | p99 ms | max ms | errors | KiB per answer | server CPU (cores) | p95 < 50 ms |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range results {
		if r.NotBuilt {
			fmt.Fprintf(&b, "| %s | – | – | – | – | – | – | – | – | – | %s |\n", pageLabel(r), verdict(r))
			continue
		}
		rps, p50, p95, p99, pmax := "–", "–", "–", "–", "–"
		if r.Requests > 0 {
			rps, p50, p95, p99, pmax = benchkit.Rate(r.RPS), benchkit.MS(r.Latency.P50), benchkit.MS(r.Latency.P95),
				benchkit.MS(r.Latency.P99), benchkit.MS(r.Latency.Max)
		}
		errs := fmt.Sprint(r.Errors)
		if r.WarmupErrors > 0 {
			errs += fmt.Sprintf(" (+%d in the warm-up)", r.WarmupErrors)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %.2f | %s |\n",
			pageLabel(r), r.Requests, rps, p50, p95, p99, pmax, errs, kib(r.BodyBytes), r.ServerCPU, verdict(r))
	}
	return b.String()
}

// datasetTable lists the tables with rows, largest first; empty tables
// are named in one line.
func datasetTable(d *Dataset) string {
	var b strings.Builder
	b.WriteString("| table | rows | size (with indexes and TOAST) |\n| --- | ---: | ---: |\n")
	var empty []string
	for _, t := range d.Tables {
		if t.Rows == 0 {
			empty = append(empty, t.Name)
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", t.Name, thousands(t.Rows), size(t.Bytes))
	}
	if len(empty) > 0 {
		slices.Sort(empty)
		fmt.Fprintf(&b, "\nEmpty tables (the seed does not fill them): %s.\n", strings.Join(empty, ", "))
	}
	return b.String()
}

// datasetLine describes the dataset in a sentence.
func datasetLine(d *Dataset) string {
	return fmt.Sprintf("%s messages in %s conversations from %s to %s, %s traces, %s ratings, %s tool calls; database %s",
		thousands(d.Messages), thousands(d.Conversations), d.From.Format(time.DateOnly), d.To.Format(time.DateOnly),
		thousands(d.Traces), thousands(d.Feedback), thousands(d.ToolCalls), size(d.DatabaseBytes))
}

// seedLine says how the dataset was made and how long it took.
func seedLine(d *Dataset) string {
	if d.SeedSeconds == 0 {
		return "seeded by an earlier run (time unknown)"
	}
	var parts []string
	for _, s := range d.SeedSteps {
		if s.Seconds >= 0.05 {
			parts = append(parts, fmt.Sprintf("%s %s", s.Name, seconds(s.Seconds)))
		}
	}
	line := "seeded in " + seconds(d.SeedSeconds)
	if d.Reused {
		line = fmt.Sprintf("seeded on %s (reused with -reuse) in %s", d.SeededAt.Format(time.DateOnly), seconds(d.SeedSeconds))
	}
	if len(parts) > 0 {
		line += " (" + strings.Join(parts, ", ") + ")"
	}
	return line
}

// counts says how many pages passed, failed and are not built.
func counts(results []*PageResult) (passed, failed, notBuilt int) {
	for _, r := range results {
		switch {
		case r.NotBuilt:
			notBuilt++
		case r.Passed():
			passed++
		default:
			failed++
		}
	}
	return passed, failed, notBuilt
}

// target checks issue 8's target: every listed page built and p95 < 50 ms
// on at least a million messages.
func target(r *Run) string {
	passed, failed, notBuilt := counts(r.Results)
	ok := failed == 0 && notBuilt == 0 && passed > 0 && r.Dataset != nil && r.Dataset.Messages >= targetMessages
	var why []string
	if notBuilt > 0 {
		why = append(why, fmt.Sprintf("%d not built", notBuilt))
	}
	if failed > 0 {
		why = append(why, fmt.Sprintf("%d failed", failed))
	}
	if r.Dataset != nil && r.Dataset.Messages < targetMessages {
		why = append(why, fmt.Sprintf("%s messages, not %s", thousands(r.Dataset.Messages), thousands(targetMessages)))
	}
	line := fmt.Sprintf("Pages render with p95 under %d ms with 1M messages in PostgreSQL: %d of %d pages pass", targetP95MS, passed, len(r.Results))
	if ok {
		return line + ": met"
	}
	return line + " (" + strings.Join(why, ", ") + "): **not met**"
}

// notes are the lines under the pages table.
func notes(r *Run) []string {
	var out []string
	out = append(out, fmt.Sprintf("console peak RSS (VmHWM after every page): %s", benchkit.MiB(r.ServerPeakRSSBytes)))
	for _, x := range r.Results {
		switch {
		case x.NotBuilt:
		case x.Aborted != "" || x.Errors+x.WarmupErrors > 0:
			var parts []string
			for _, k := range slices.Sorted(mapsKeys(x.ErrorsBy)) {
				parts = append(parts, fmt.Sprintf("%s ×%d", k, x.ErrorsBy[k]))
			}
			msg := ""
			if x.Message != "" {
				msg = fmt.Sprintf(" (first answer: %q)", x.Message)
			}
			out = append(out, fmt.Sprintf("`%s`: errors, warm-up included: %s%s", x.Path, strings.Join(parts, ", "), msg))
		}
	}
	if d := r.Dataset; d != nil && d.Conversation != "" {
		out = append(out, fmt.Sprintf("`{conversation}` is %s (%d turns); `{from}` and `{to}` are the first and last day of the dataset",
			d.Conversation, d.ConversationTurns))
	}
	return append(out, r.Notes...)
}

// textReport is what the command prints.
func textReport(r *Run) string {
	var b strings.Builder
	fmt.Fprintf(&b, "machine: %s (load average %s at the start)\ndate: %s\nversions: Go %s, PostgreSQL %s\n",
		r.Machine, cmp.Or(r.Load, "unknown"), r.Date.Format(time.RFC3339), r.Go, cmp.Or(r.PostgreSQL, "unknown"))
	if d := r.Dataset; d != nil {
		fmt.Fprintf(&b, "dataset: %s; %s\n", datasetLine(d), seedLine(d))
	}
	fmt.Fprintf(&b, "load: %s\ncommand: %s\n\n", r.load(), r.Command)
	if r.Dataset != nil {
		b.WriteString(datasetTable(r.Dataset))
		b.WriteString("\n")
	}
	b.WriteString(pageTable(r.Results))
	b.WriteString("\n")
	for _, n := range notes(r) {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	fmt.Fprintf(&b, "- %s\n", target(r))
	return b.String()
}

func (r *Run) load() string {
	s := fmt.Sprintf("%d concurrent clients on loopback, %s per page after a %s warm-up", r.Concurrency, r.Duration, r.Warmup)
	if r.Timeout != "" {
		s += ", " + r.Timeout + " timeout per request"
	}
	return s
}

// plotFile is the file of the pages chart, in img/ next to the Markdown file.
const plotFile = "console-pages.svg"

// plotTitle is the chart's title and the alternative text of its image.
const plotTitle = "Console pages: p95 latency on 1M messages"

// pagesChart is the p95 of each page as horizontal bars with the target
// as a line; ok is false when no page has latencies.
func pagesChart(r *Run) (c benchkit.BarChart, ok bool) {
	var p95 []float64
	var parts []string
	for _, x := range r.Results {
		label := x.Page
		if x.Final != "" {
			label += " → " + x.Final
		}
		c.Categories = append(c.Categories, label)
		if x.NotBuilt || x.Requests == 0 {
			p95 = append(p95, math.NaN())
			parts = append(parts, fmt.Sprintf("%s %s", x.Page, strings.Trim(verdict(x), "*")))
			continue
		}
		ok = true
		p95 = append(p95, x.Latency.P95)
		parts = append(parts, fmt.Sprintf("%s %s ms (%s)", x.Page, benchkit.MS(x.Latency.P95), strings.Trim(verdict(x), "*")))
	}
	passed, _, _ := counts(r.Results)
	messages := "the dataset"
	if r.Dataset != nil {
		messages = thousands(r.Dataset.Messages) + " messages"
	}
	c.Title = plotTitle
	if r.Dataset != nil && r.Dataset.Messages != targetMessages {
		c.Title = fmt.Sprintf("Console pages: p95 latency on %s messages", thousands(r.Dataset.Messages))
	}
	c.Desc = fmt.Sprintf("Horizontal bars: the 95th percentile latency of each console page and JSON API endpoint, in milliseconds, "+
		"with %d concurrent clients on %s in PostgreSQL; the dashed line is the %d ms target. %d of %d pages pass. %s.",
		r.Concurrency, messages, targetP95MS, passed, len(r.Results), strings.Join(parts, "; "))
	c.XLabel = "p95 latency, ms (lower is better)"
	c.Series = []benchkit.BarSeries{{Name: "p95", Values: p95}}
	c.Lines = []benchkit.RefLine{{Name: fmt.Sprintf("target: p95 < %d ms", targetP95MS), Value: targetP95MS}}
	c.Missing = "not measured (see the table)"
	return c, ok
}

// reproducibleCommand is the command that measures again on any machine:
// the run's arguments without -reuse and -keep, which name (or keep) a
// database of one machine.
func reproducibleCommand(args []string) string {
	var kept []string
	for i := 0; i < len(args); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !strings.HasPrefix(args[i], "-") {
			kept = append(kept, args[i])
			continue
		}
		switch name {
		case "reuse":
			if !hasValue {
				i++ // its value
			}
			continue
		case "keep":
			continue
		}
		kept = append(kept, args[i])
	}
	return benchkit.Command("bench/console", kept)
}

// makeCommand is what make bench-console runs.
const makeCommand = "go run ./bench/console -out docs/benchmarks.md"

// commandLine is the Command line of the section: the reproducible
// command, and the options that measure a kept database again.
func commandLine(r *Run) string {
	cmd := cmp.Or(r.Reproduce, r.Command)
	line := "`" + cmd + "`"
	if cmd == makeCommand {
		line += " (`make bench-console`)"
	}
	line += "; it seeds a fresh database and drops it at the end. Options: `-keep` keeps the seeded database and prints its URL, `-reuse URL` measures a kept database without seeding it again"
	if r.Dataset != nil && r.Dataset.Reused {
		line += fmt.Sprintf(" (this run measured, with `-reuse`, a database seeded on %s)", r.Dataset.SeededAt.Format(time.DateOnly))
	}
	return line
}

// writeReport writes the pages chart into img/ next to the Markdown file
// at path and the Console pages section of that file (created when
// missing), keeping the rest of the file.
func writeReport(path string, r *Run) error {
	var links []string
	if c, ok := pagesChart(r); ok {
		link, err := benchkit.WritePlot(path, filepath.Join(filepath.Dir(path), "img", plotFile), c.Title, c)
		if err != nil {
			return err
		}
		links = append(links, link)
	}
	body, err := renderSection(r, links)
	if err != nil {
		return err
	}
	return section.Write(path, body)
}

// renderSection is the Markdown section of a run, ending in its data.
func renderSection(r *Run, plotLinks []string) (string, error) {
	var b strings.Builder
	b.WriteString("## Console pages\n\n")
	b.WriteString(methodText)
	fmt.Fprintf(&b, "\n- Machine: %s; 1-minute load average %s when the run started\n", r.Machine, cmp.Or(r.Load, "unknown"))
	fmt.Fprintf(&b, "- Date: %s\n- Versions: Go %s, PostgreSQL %s\n", r.Date.Format(time.RFC3339), r.Go, cmp.Or(r.PostgreSQL, "unknown"))
	if d := r.Dataset; d != nil {
		fmt.Fprintf(&b, "- Dataset: %s\n- Seeding: %s\n", datasetLine(d), seedLine(d))
	}
	fmt.Fprintf(&b, "- Load: %s\n- Command: %s\n\n", r.load(), commandLine(r))
	b.WriteString(pageTable(r.Results))
	b.WriteString("\n")
	for _, n := range notes(r) {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	for _, l := range plotLinks {
		b.WriteString("\n" + l + "\n")
	}
	if r.Dataset != nil {
		b.WriteString("\n### Dataset\n\n")
		b.WriteString(datasetTable(r.Dataset))
	}
	fmt.Fprintf(&b, "\n### Target (issue 8)\n\n- %s\n", target(r))
	data, err := section.DataComment(r)
	if err != nil {
		return "", err
	}
	b.WriteString("\n" + data)
	return b.String(), nil
}

const methodText = `The console (` + "`cmd/console serve`" + `, built from the checkout) on a PostgreSQL database seeded
for the run: a fresh database migrated by ` + "`console migrate`" + `, then filled on the server with
` + "`INSERT … SELECT`" + ` over ` + "`generate_series`" + ` (` + "`bench/console/seed.go`" + `). Conversations hold 1 to 40
question-and-answer pairs (about 5 on average) over 90 days, 45% on Slack, 20% Discord, 15%
Mattermost and 20% in the Playground, across 6 assistants, 120 channels plus DMs and 3,500 chat
users (a few of each much busier than the rest). Every question has a trace (steps, tokens,
durations, passages); 4% failed (no answer turn, as the engine does), 7% found nothing, the rest
were answered, with citations when the assistant has knowledge bases; 3.5% of the answers are
rated and some traces called tools. Rows are written in time order, as the engine writes
them, and the tables are vacuumed and analyzed before the load.

Each page is requested by concurrent clients on loopback (the bench process, on the same
machine), pages with the session cookie of a user signed in through the sign-in form and the
JSON API with an API token; redirects are followed. Latency is from sending a request to having
read the whole answer; the warm-up is left out, and each client sends at least one measured
request, so that a page slower than the window still has latencies. A page passes when its p95
is under 50 ms with no error, warm-up included (an answer other than 2xx, a redirect to the
sign-in page, or no answer within the request timeout); a page that answers 404 is not built
yet and is listed, not measured. "Server CPU" is the console process's CPU time over the page's
load divided by its wall time; the PostgreSQL server's CPU and memory are not counted.
`
