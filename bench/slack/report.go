package main

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
)

// section is what this benchmark owns in the benchmarks document.
var section = benchkit.Section{Name: "bench/slack"}

// The targets for ConvoSphere against Bolt.
const (
	targetSpeedup = 5      // × Bolt's requests/s
	targetP99MS   = 10     // ms
	targetRSS     = 1. / 3 // of Bolt's peak RSS
)

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// table is the Markdown table of the results.
func table(results []*Result) string {
	var b strings.Builder
	b.WriteString("| system | requests | requests/s | ack p50 ms | p99 ms | max ms | errors | peak RSS MiB | RSS at end MiB | server CPU (cores) | client CPU (cores) |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range results {
		errs := strconv.Itoa(r.Errors)
		if r.Failed != "" {
			errs = fmt.Sprintf("%d of %d, warm-up included (failed)", r.Errors+r.WarmupErrors, r.Requests+r.WarmupRequests)
		}
		rps, p50, p99, pmax := benchkit.Rate(r.RPS), benchkit.MS(r.Latency.P50), benchkit.MS(r.Latency.P99), benchkit.MS(r.Latency.Max)
		if r.Requests == 0 {
			rps, p50, p99, pmax = "–", "–", "–", "–"
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %.2f | %.2f |\n",
			r.System, r.Requests, rps, p50, p99, pmax, errs, benchkit.MiBNumber(r.PeakRSSBytes), benchkit.MiBNumber(r.EndRSSBytes), r.CPUCores, r.ClientCPUCores)
	}
	return b.String()
}

// notes are the lines under the table: outbound calls the stub saw, the
// split of each server's memory, errors.
func notes(results []*Result) []string {
	var out []string
	for _, r := range results {
		bot := r.System == systemEmbedded || r.System == systemPostgres
		if bot && r.Failed == "" {
			out = append(out, fmt.Sprintf("%s: chat.postMessage calls the stub saw by %s after the load (information only, not a target): %d",
				r.System, settle, r.StubCalls["chat.postMessage"]))
		}
		if len(r.StubCalls) > 0 {
			var parts []string
			for _, k := range sortedKeys(r.StubCalls) {
				parts = append(parts, fmt.Sprintf("%s %d", k, r.StubCalls[k]))
			}
			out = append(out, fmt.Sprintf("%s: Slack Web API calls: %s", r.System, strings.Join(parts, ", ")))
		} else if !bot {
			out = append(out, r.System+": no Slack Web API call (the stub saw none)")
		}
		if r.EndRSSAnonBytes > 0 || r.EndRSSFileBytes > 0 {
			out = append(out, fmt.Sprintf("%s: resident memory at the end of the load: %s anonymous (heap, stacks, caches), %s file-backed (the executable's code and read-only data, shared libraries)",
				r.System, benchkit.MiB(r.EndRSSAnonBytes), benchkit.MiB(r.EndRSSFileBytes)))
		}
		if len(r.ErrorsBy) > 0 && r.Failed == "" {
			var parts []string
			for _, k := range sortedKeys(r.ErrorsBy) {
				parts = append(parts, fmt.Sprintf("%s ×%d", k, r.ErrorsBy[k]))
			}
			out = append(out, fmt.Sprintf("%s: errors (warm-up included): %s", r.System, strings.Join(parts, ", ")))
		}
	}
	return out
}

// floorNote describes the store floor measurement.
func floorNote(f *StoreFloor) string {
	if f == nil {
		return ""
	}
	if f.Failed != "" && f.Events == 0 {
		return "store floor: not measured: " + f.Failed
	}
	s := fmt.Sprintf("store floor (the embedded store's inbox write alone, %d writers in the bench process, no HTTP): %s events/s on %.2f cores, %.1f µs of CPU per event",
		f.Concurrency, benchkit.Rate(f.EventsPerSec), f.CPUCores, f.CPUMicrosPerEvt)
	if f.Failed != "" {
		s += " (stopped early: " + f.Failed + ")"
	}
	return s
}

// budget works out, from this run's measurements, the CPU that
// acknowledging targetSpeedup × Bolt's rate would take on this machine:
// the clients' and a storing-nothing Go server's CPU per request (from
// go-minimal, the fastest and so the cheapest per request) and the store
// floor's CPU per event. Empty without those measurements.
func budget(r *Run) []string {
	var bolt, min *Result
	for _, x := range r.Results {
		switch {
		case x.Failed != "" || x.RPS <= 0:
		case x.System == systemBolt:
			bolt = x
		case x.System == systemGoMinimal:
			min = x
		}
	}
	f := r.StoreFloor
	if bolt == nil || min == nil || f == nil || f.CPUMicrosPerEvt <= 0 || min.CPUCores <= 0 || min.ClientCPUCores <= 0 {
		return nil
	}
	rate := targetSpeedup * bolt.RPS
	client := min.ClientCPUCores / min.RPS * rate
	server := min.CPUCores / min.RPS * rate
	store := f.CPUMicrosPerEvt / 1e6 * rate
	total := client + server + store
	verdict := "within"
	if total > float64(r.Machine.Cores) {
		verdict = "more than"
	}
	return []string{
		fmt.Sprintf("%d× Bolt's rate is %s acks/s. At that rate the clients need %.2f cores (%.1f µs per request, measured against go-minimal at %s/s), "+
			"a Go server that only checks the signature and acks %.2f cores (go-minimal: %.1f µs per request), and the embedded store's inbox write alone %.2f cores (store floor: %.1f µs per event): "+
			"%.2f cores, %s the machine's %d, before an event is decoded, checked for duplicates by the adapter or answered.",
			targetSpeedup, benchkit.Rate(rate), client, min.ClientCPUCores/min.RPS*1e6, benchkit.Rate(min.RPS),
			server, min.CPUCores/min.RPS*1e6, store, f.CPUMicrosPerEvt, total, verdict, r.Machine.Cores),
	}
}

// targets checks the targets for each ConvoSphere system.
func targets(results []*Result) []string {
	find := func(name string) *Result {
		for _, r := range results {
			if r.System == name && r.Failed == "" {
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
	bolt := find(systemBolt)
	var out []string
	for _, name := range []string{systemEmbedded, systemPostgres} {
		r := find(name)
		if r == nil {
			continue
		}
		if bolt != nil && bolt.RPS > 0 {
			out = append(out, fmt.Sprintf("%s throughput ≥ %d× Bolt's: %s vs %s requests/s (%.1f×): %s",
				name, targetSpeedup, benchkit.Rate(r.RPS), benchkit.Rate(bolt.RPS), r.RPS/bolt.RPS, mark(r.RPS >= targetSpeedup*bolt.RPS)))
		}
		out = append(out, fmt.Sprintf("%s p99 ack < %d ms: %s ms: %s", name, targetP99MS, benchkit.MS(r.Latency.P99), mark(r.Latency.P99 < targetP99MS)))
		if bolt != nil && bolt.PeakRSSBytes > 0 && r.PeakRSSBytes > 0 {
			out = append(out, fmt.Sprintf("%s peak RSS < 1/3 of Bolt's: %s vs %s: %s",
				name, benchkit.MiB(r.PeakRSSBytes), benchkit.MiB(bolt.PeakRSSBytes), mark(float64(r.PeakRSSBytes) < targetRSS*float64(bolt.PeakRSSBytes))))
		}
	}
	return out
}

// load describes the load of a run.
func (r *Run) load() string {
	what := r.Duration + " per system"
	if r.Requests > 0 {
		what = fmt.Sprintf("%d requests per system", r.Requests)
	}
	load := fmt.Sprintf("%d concurrent keep-alive clients, %s after a %s warm-up", r.Concurrency, what, r.Warmup)
	if r.RoundCount > 1 {
		load += fmt.Sprintf(", %d rounds", r.RoundCount)
	}
	return load
}

// versions lists the software versions of a run.
func (r *Run) versions() string {
	parts := []string{"Go " + r.Go}
	if r.Node != "" {
		parts = append(parts, "Node "+r.Node)
	}
	if r.Bolt != "" {
		parts = append(parts, "@slack/bolt "+r.Bolt)
	}
	if r.PostgreSQL != "" {
		parts = append(parts, "PostgreSQL "+r.PostgreSQL)
	}
	return strings.Join(parts, ", ")
}

// roundNotes list every round of each system, when there were several.
func roundNotes(r *Run) []string {
	var out []string
	for _, chosen := range r.Results {
		var parts []string
		for _, x := range r.Rounds {
			if x.System != chosen.System {
				continue
			}
			if x.Failed != "" {
				parts = append(parts, fmt.Sprintf("round %d failed", x.Round))
				continue
			}
			parts = append(parts, fmt.Sprintf("%s/s, p99 %s ms, peak RSS %s", benchkit.Rate(x.RPS), benchkit.MS(x.Latency.P99), benchkit.MiB(x.PeakRSSBytes)))
		}
		if len(parts) > 1 {
			out = append(out, fmt.Sprintf("%s, every round in order: %s; the table shows round %d, the median by requests/s",
				chosen.System, strings.Join(parts, "; "), chosen.Round))
		}
	}
	return out
}

// allNotes are the notes of a run: the systems', their rounds', the store
// floor's, the run's.
func allNotes(r *Run) []string {
	out := append(notes(r.Results), roundNotes(r)...)
	if n := floorNote(r.StoreFloor); n != "" {
		out = append(out, n)
	}
	return append(out, r.Notes...)
}

// textReport is what the command prints.
func textReport(r *Run) string {
	var b strings.Builder
	fmt.Fprintf(&b, "machine: %s (load average %s at the start)\ndate: %s\nversions: %s\nload: %s\ncommand: %s\n\n",
		r.Machine, r.Load, r.Date.Format(time.RFC3339), r.versions(), r.load(), r.Command)
	if len(r.Results) > 0 {
		b.WriteString(table(r.Results))
		b.WriteString("\n")
	}
	for _, n := range allNotes(r) {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	for _, t := range append(targets(r.Results), budget(r)...) {
		fmt.Fprintf(&b, "- %s\n", t)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "FAILED %s\n", f)
	}
	return b.String()
}

// plotFile is a chart and the file it is written to, in img/ next to the
// Markdown file.
type plotFile struct {
	file string
	c    benchkit.BarChart
}

// plots are the charts of a run: ack latency and throughput per system,
// for the systems that were measured.
func plots(r *Run) []plotFile {
	var names []string
	var p50, p99, rps []float64
	var lat, thr []string
	for _, x := range r.Results {
		if x.Failed != "" || x.Requests == 0 {
			continue
		}
		names = append(names, x.System)
		p50, p99, rps = append(p50, x.Latency.P50), append(p99, x.Latency.P99), append(rps, x.RPS)
		lat = append(lat, fmt.Sprintf("%s p50 %s ms, p99 %s ms", x.System, benchkit.MS(x.Latency.P50), benchkit.MS(x.Latency.P99)))
		thr = append(thr, fmt.Sprintf("%s %s requests/s", x.System, benchkit.Rate(x.RPS)))
	}
	if len(names) == 0 {
		return nil
	}
	load := fmt.Sprintf("%d concurrent keep-alive clients on loopback", r.Concurrency)
	return []plotFile{
		{"slack-ack.svg", benchkit.BarChart{
			Title: "Slack event acknowledgement latency",
			Desc: fmt.Sprintf("Horizontal bars: the median (p50) and 99th percentile (p99) time from sending a signed app_mention event to reading the answer, "+
				"in milliseconds, per system, with %s; the dashed line is the %d ms p99 target. %s.", load, targetP99MS, strings.Join(lat, "; ")),
			XLabel:     "ack latency, ms (lower is better)",
			Categories: names,
			Series:     []benchkit.BarSeries{{Name: "p50", Values: p50}, {Name: "p99", Values: p99}},
			Lines:      []benchkit.RefLine{{Name: fmt.Sprintf("target: p99 < %d ms", targetP99MS), Value: targetP99MS}},
		}},
		{"slack-throughput.svg", benchkit.BarChart{
			Title: "Slack events acknowledged per second",
			Desc: fmt.Sprintf("Horizontal bars: the signed app_mention events each system acknowledged per second in the measured window, with %s. %s.",
				load, strings.Join(thr, "; ")),
			XLabel:     "requests/s (higher is better)",
			Categories: names,
			Series:     []benchkit.BarSeries{{Name: "requests/s", Values: rps}},
			Format:     benchkit.Rate,
		}},
	}
}

// writeReport writes the plots into img/ next to the Markdown file at path
// and the Slack section of that file, replacing the one between the
// markers or appending one, and keeping the rest of the file. The file is
// created when missing.
func writeReport(path string, r *Run) error {
	var links []string
	for _, p := range plots(r) {
		link, err := benchkit.WritePlot(path, filepath.Join(filepath.Dir(path), "img", p.file), p.c.Title, p.c)
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
	b.WriteString("## Slack event acknowledgement\n\n")
	b.WriteString(methodText)
	fmt.Fprintf(&b, "\n- Machine: %s; 1-minute load average %s when the run started\n", r.Machine, cmp.Or(r.Load, "unknown"))
	fmt.Fprintf(&b, "- Date: %s\n- Versions: %s\n- Load: %s\n- Command: `%s`\n\n", r.Date.Format(time.RFC3339), r.versions(), r.load(), r.Command)
	if len(r.Results) > 0 {
		b.WriteString(table(r.Results))
		b.WriteString("\n")
	}
	for _, n := range allNotes(r) {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "- Not measured: %s\n", f)
	}
	for _, l := range plotLinks {
		b.WriteString("\n" + l + "\n")
	}
	if ts := targets(r.Results); len(ts) > 0 {
		b.WriteString("\n### Targets\n\n")
		for _, t := range ts {
			fmt.Fprintf(&b, "- %s\n", t)
		}
	}
	if bs := budget(r); len(bs) > 0 {
		b.WriteString("\n### What this machine allows\n\n")
		for _, t := range bs {
			fmt.Fprintf(&b, "%s\n", t)
		}
	}
	data, err := section.DataComment(r)
	if err != nil {
		return "", err
	}
	b.WriteString("\n" + data)
	return b.String(), nil
}

const methodText = `Signed Slack Events API requests on loopback: each request is a distinct ` + "`app_mention`" + `
` + "`event_callback`" + ` payload (Slack's documented shape, its own ` + "`event_id`" + ` and message ` + "`ts`" + `),
signed with the signing secret over the current timestamp (` + "`X-Slack-Signature`" + `,
` + "`X-Slack-Request-Timestamp`" + `) and POSTed to ` + "`/slack/events`" + ` by concurrent clients, each on its own
keep-alive connection, from the bench process (on the same machine: the clients, their HMAC
signing and the server share the cores). Ack latency is from sending a request to having read
the whole answer; requests/s counts the requests answered in the measured window; the warm-up
is left out. An answer other than 2xx is an error, and a system with more than 1% errors is
not counted. Each system runs as a child process started fresh for each round (by default three rounds,
every system once per round, in turn, so that a slow spell of a shared machine does not fall on
one system alone); the table shows each system's median round by requests/s, and the notes
list every round. The Go binaries are built for the run and then dropped from the page cache, so
that they start as deployed ones do, read from disk (run straight from the pages the linker
wrote, the bot showed 2 to 10 MiB more file-backed memory). A system's peak RSS
is the server process's VmHWM from /proc (the node process for Bolt), read after the load;
"server CPU" is the process's CPU time over the load divided by its wall time, and "client
CPU" the same for the bench process (the clients, their signing and the Web API stub): on a
small machine the clients' share bounds what any server can show. For
convosphere-postgres the PostgreSQL server's own memory and CPU are not counted.

Systems:

- **convosphere-embedded**: ` + "`cmd/bot`" + ` with its Slack adapter in HTTP mode and the default
  embedded store (SQLite in a fresh data directory): every ack follows the durable inbox write.
- **convosphere-postgres**: the same with ` + "`CONVOSPHERE_DATABASE_URL`" + ` on a fresh PostgreSQL database.
- **bolt**: a minimal Slack Bolt for JavaScript app (` + "`bench/slack/bolt`" + `): the default HTTP
  receiver and an ` + "`app_mention`" + ` listener that does nothing, so Bolt only acks. Token verification is
  off and the bot's ids are given, so Bolt calls no Web API method, not even ` + "`auth.test`" + `.
- **go-minimal**: a reference point for the machine, not a system under test
  (` + "`bench/slack/goack`" + `): the smallest Slack app in Go, net/http and slack-go's
  ` + "`SecretsVerifier`" + `, acking every signed request with 200 without decoding or storing it. What it
  reaches is what these clients let any Go server reach here.

Before the systems, the **store floor** measures the embedded store's inbox write alone: as many
goroutines as the load has clients call the SQLite store's ` + "`Enqueue`" + ` in the bench process (the
group commit that a bot's ack waits for) with distinct events shaped like the Slack adapter's, for
` + "`-store-floor`" + ` (10 s by default); its CPU time per event is what that write costs, however fast the
code around it.

Outbound Slack Web API calls (the bot answering the events after the ack) go to a stub served
by the bench; they are counted for information and are not part of the ack.
`
