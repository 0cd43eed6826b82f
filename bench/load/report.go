package main

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
	"github.com/convosphere/convosphere/engine"
)

// section is what this benchmark owns in the benchmarks document.
var section = benchkit.Section{Name: "bench/load"}

// Reference points the results are read against.
const (
	ackTargetMS   = 10   // bench/slack's ack p99 target, on an idle bot
	ackDeadlineMS = 3000 // Slack and Discord give up on an ack after 3 s
)

// Run is everything one invocation measured, with where and how.
type Run struct {
	Date       time.Time        `json:"date"`
	Command    string           `json:"command"`
	Machine    benchkit.Machine `json:"machine"`
	Load       string           `json:"load,omitempty"`     // 1-minute load average at the start
	LoadAfter  string           `json:"load_end,omitempty"` // and at the end
	Go         string           `json:"go"`
	Store      string           `json:"store"`
	PostgreSQL string           `json:"postgresql,omitempty"`
	Settings   settings         `json:"settings"`
	Scenarios  []*Scenario      `json:"scenarios"`
	Failures   []string         `json:"failures,omitempty"`
	Notes      []string         `json:"notes,omitempty"`
}

// settings are the knobs of a run, as the report states them.
type settings struct {
	Conversations int     `json:"conversations"`
	Turns         int     `json:"turns"`
	Duration      string  `json:"duration"`
	Ramp          string  `json:"ramp"`
	Think         string  `json:"think"`
	TokensPerSec  float64 `json:"tokens_per_sec"`
	FirstToken    string  `json:"first_token"`
	MinTokens     int     `json:"min_tokens"`
	MaxTokens     int     `json:"max_tokens"`
	Workers       int     `json:"workers"`
	BurstEvents   int     `json:"burst_events"`
	BurstThread   int     `json:"burst_thread"`
	Knowledge     bool    `json:"knowledge"`
}

func (r *Run) scenario(name string) *Scenario {
	for _, s := range r.Scenarios {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func mark(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

func ms(v float64, samples int) string {
	if samples == 0 {
		return "–"
	}
	return benchkit.MS(v)
}

// conversationsTable is scenario A's table, a row per platform.
func conversationsTable(s *Scenario) string {
	var b strings.Builder
	b.WriteString("| platform | conversations | questions | answered | ack p50 ms | ack p99 ms | ack max ms | first update p50 ms | p99 ms | complete p50 ms | p99 ms | one message per event | missing | duplicated | order violations |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, p := range s.Platforms {
		ack50, ack99, ackMax := ms(p.Ack.P50, p.Ack.Samples), ms(p.Ack.P99, p.Ack.Samples), ms(p.Ack.Max, p.Ack.Samples)
		if p.Platform == platMattermost {
			ack50, ack99, ackMax = "n/a", "n/a", "n/a"
		}
		d := p.Delivery
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s | %d | %d | %d | %d |\n",
			p.Platform, p.Conversations, p.Questions, d.Answered, ack50, ack99, ackMax,
			ms(p.FirstUpdate.P50, p.FirstUpdate.Samples), ms(p.FirstUpdate.P99, p.FirstUpdate.Samples),
			ms(p.Complete.P50, p.Complete.Samples), ms(p.Complete.P99, p.Complete.Samples),
			d.ExactlyOne, d.Missing, d.Duplicated, d.OrderViolations)
	}
	return b.String()
}

// burstTable is scenario B's table.
func burstTable(s *Scenario) string {
	var b strings.Builder
	b.WriteString("| events | deliveries | ack p50 ms | ack p99 ms | ack max ms | failed deliveries | answered | exactly one reply | missing | duplicated | order violations | sent in s | all answered after s |\n")
	b.WriteString("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, p := range s.Platforms {
		d := p.Delivery
		fmt.Fprintf(&b, "| %d | %d | %s | %s | %s | %d | %d | %d | %d | %d | %d | %.1f | %.1f |\n",
			p.Questions, p.Deliveries, ms(p.Ack.P50, p.Ack.Samples), ms(p.Ack.P99, p.Ack.Samples), ms(p.Ack.Max, p.Ack.Samples),
			p.AckErrors, d.Answered, d.ExactlyOne, d.Missing, d.Duplicated, d.OrderViolations, s.LoadSeconds, s.DrainSeconds)
	}
	return b.String()
}

// memoryTable has a row per scenario.
func memoryTable(ss []*Scenario) string {
	var b strings.Builder
	b.WriteString("| scenario | RSS at start of window MiB | max MiB | at end MiB | first-half max MiB | second-half max MiB | growth | trend MiB/min | bounded (≤ 10% growth) | peak (VmHWM) MiB | bot CPU (cores) | bench CPU (cores) | other processes' CPU (cores) |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n")
	for _, s := range ss {
		m := s.Memory
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %+.1f%% | %+.1f | %s | %s | %.2f | %.2f | %.2f |\n", s.Name,
			benchkit.MiBNumber(m.StartBytes), benchkit.MiBNumber(m.MaxBytes), benchkit.MiBNumber(m.EndBytes),
			benchkit.MiBNumber(m.FirstHalfMax), benchkit.MiBNumber(m.SecondHalfMax), m.GrowthPercent, m.TrendMiBPerMin, yesNo(m.Bounded),
			benchkit.MiBNumber(m.PeakBytes), s.BotCPUCores, s.BenchCPUCores, s.OtherCPUCores)
	}
	return b.String()
}

// runtimeTable has a row per scenario: the bot's goroutines and Go heap
// over the memory window, from its /metrics.
func runtimeTable(ss []*Scenario) string {
	var b strings.Builder
	b.WriteString("| scenario | goroutines at start of window | max | at end | Go heap in use at start MiB | max MiB | at end MiB |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, s := range ss {
		rt := s.Runtime
		if rt.Samples == 0 {
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %s | %s |\n", s.Name, rt.GoroutinesStart, rt.GoroutinesMax, rt.GoroutinesEnd,
			benchkit.MiBNumber(rt.HeapStart), benchkit.MiBNumber(rt.HeapMax), benchkit.MiBNumber(rt.HeapEnd))
	}
	return b.String()
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// overheadTable has a row per scenario: the engine's own time per
// answered message, and the other parts of the trace for scale.
func overheadTable(ss []*Scenario) string {
	var b strings.Builder
	b.WriteString("| scenario | answered traces | engine p50 ms | engine p99 ms | without posting p50 ms | p99 ms | posted p50 ms | p99 ms | model p50 ms | received→handled p50 ms | p99 ms |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, s := range ss {
		o := s.Overhead
		post, model, recv := o.Steps[engine.StepPosted], o.Steps[engine.StepModel], o.Steps[engine.StepReceived]
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.Name, o.Answered,
			ms(o.Engine.P50, o.Engine.Samples), ms(o.Engine.P99, o.Engine.Samples),
			ms(o.EngineNoPost.P50, o.EngineNoPost.Samples), ms(o.EngineNoPost.P99, o.EngineNoPost.Samples),
			ms(post.P50, post.Samples), ms(post.P99, post.Samples), ms(model.P50, model.Samples),
			ms(recv.P50, recv.Samples), ms(recv.P99, recv.Samples))
	}
	return b.String()
}

// stepsLine lists the p50 and p99 of each step of a scenario's traces.
func stepsLine(s *Scenario) string {
	order := []string{engine.StepReceived, engine.StepAssistant, engine.StepHistory, engine.StepRetrieval, engine.StepModel, engine.StepTools, engine.StepPosted}
	var parts []string
	for _, name := range order {
		if l, ok := s.Overhead.Steps[name]; ok {
			parts = append(parts, fmt.Sprintf("%s %s / %s", name, benchkit.MS(l.P50), benchkit.MS(l.P99)))
		}
	}
	return strings.Join(parts, ", ")
}

// checks are the run's verdicts.
func checks(r *Run) []string {
	var out []string
	if s := r.scenario(scenarioConversations); s != nil && s.Failed == "" {
		d := s.All
		out = append(out, fmt.Sprintf("%s: every question answered, with exactly one message each: %d of %d (%d missing, %d duplicated, %d turns timed out): %s",
			s.Name, d.ExactlyOne, d.Events, d.Missing, d.Duplicated, s.TurnTimeouts, mark(d.ExactlyOne == d.Events && d.Answered == d.Events)))
		out = append(out, fmt.Sprintf("%s: per-thread order: %d violations: %s", s.Name, d.OrderViolations, mark(d.OrderViolations == 0)))
		for _, p := range s.Platforms {
			if p.Platform == platMattermost || p.Ack.Samples == 0 {
				continue
			}
			out = append(out, fmt.Sprintf("%s, %s: ack p99 %s ms under load: < %d ms (bench/slack's target on an idle bot): %s; < %d ms (the platform's deadline): %s",
				s.Name, p.Platform, benchkit.MS(p.Ack.P99), ackTargetMS, mark(p.Ack.P99 < ackTargetMS), ackDeadlineMS, mark(p.Ack.P99 < ackDeadlineMS)))
		}
		out = append(out, fmt.Sprintf("%s: memory bounded (second-half max within %d%% of the first half's): %+.1f%% (trend %+.1f MiB/min over the window): %s",
			s.Name, boundedGrowth, s.Memory.GrowthPercent, s.Memory.TrendMiBPerMin, mark(s.Memory.Bounded)))
	}
	if s := r.scenario(scenarioBurst); s != nil && s.Failed == "" {
		d := s.All
		out = append(out, fmt.Sprintf("%s: exactly %d replies, one per event: %d events with exactly one, %d missing, %d duplicated (%d extra), %d stray: %s",
			s.Name, d.Events, d.ExactlyOne, d.Missing, d.Duplicated, d.Extra, d.Stray, mark(d.ExactlyOne == d.Events && d.Stray == 0)))
		out = append(out, fmt.Sprintf("%s: per-thread order: %d violations: %s", s.Name, d.OrderViolations, mark(d.OrderViolations == 0)))
		for _, p := range s.Platforms {
			out = append(out, fmt.Sprintf("%s: ack p99 %s ms over %d deliveries: < %d ms: %s; < %d ms: %s; failed deliveries %d",
				s.Name, benchkit.MS(p.Ack.P99), p.Ack.Samples, ackTargetMS, mark(p.Ack.P99 < ackTargetMS), ackDeadlineMS, mark(p.Ack.P99 < ackDeadlineMS), p.AckErrors))
		}
	}
	return out
}

// notes are the details under the tables.
func notes(r *Run) []string {
	var out []string
	for _, s := range r.Scenarios {
		if s.Failed != "" {
			out = append(out, fmt.Sprintf("%s **failed**: %s", s.Name, s.Failed))
		}
		out = append(out, fmt.Sprintf("%s: questions sent for %.1f s, the last answer %.1f s after the last question; the model served %d requests, %d tokens (at most %d streams at once)",
			s.Name, s.LoadSeconds, s.DrainSeconds, s.ModelRequests, s.ModelTokens, s.ModelPeak))
		if s.ModelAborted > 0 {
			out = append(out, fmt.Sprintf("%s: the bot left %d model streams before their end", s.Name, s.ModelAborted))
		}
		if s.SendErrors > 0 {
			out = append(out, fmt.Sprintf("%s: %d questions could not be sent", s.Name, s.SendErrors))
		}
		for _, p := range s.Platforms {
			if len(p.Calls) == 0 {
				continue
			}
			var parts []string
			for _, k := range sortedKeys(p.Calls) {
				parts = append(parts, fmt.Sprintf("%s %d", k, p.Calls[k]))
			}
			out = append(out, fmt.Sprintf("%s, %s fake: %s", s.Name, p.Platform, strings.Join(parts, ", ")))
			if p.AckErrors > 0 && s.Name != scenarioBurst {
				out = append(out, fmt.Sprintf("%s, %s: %d of %d deliveries were not acknowledged (no 2xx within 30 s); the bench does not retry them", s.Name, p.Platform, p.AckErrors, p.Deliveries))
			}
			for _, ex := range p.Delivery.OrderExamples {
				out = append(out, fmt.Sprintf("%s, %s: out of order: %s", s.Name, p.Platform, ex))
			}
		}
		if s.All.Stray > 0 {
			out = append(out, fmt.Sprintf("%s: %d messages the fakes could not attribute to a question", s.Name, s.All.Stray))
		}
		o := s.Overhead
		var outcomes []string
		for _, k := range sortedKeys(o.Outcomes) {
			outcomes = append(outcomes, fmt.Sprintf("%s %d", cmp.Or(k, "(none)"), o.Outcomes[k]))
		}
		out = append(out, fmt.Sprintf("%s: %d traces (%s); step p50 / p99 ms: %s", s.Name, o.Traces, strings.Join(outcomes, ", "), stepsLine(s)))
		if s.Name == scenarioBurst {
			out = append(out, fmt.Sprintf("%s: a thread's questions are answered one at a time, in order, so the `received` step of its later questions includes the wait for the earlier answers", s.Name))
		}
		if o.Errors > 0 {
			out = append(out, fmt.Sprintf("%s: %d traces recorded an error, e.g. %q", s.Name, o.Errors, o.ErrorSample))
		}
	}
	return append(out, r.Notes...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (r *Run) versions() string {
	v := "Go " + r.Go
	if r.PostgreSQL != "" {
		v += ", PostgreSQL " + r.PostgreSQL
	}
	return v
}

func (r *Run) settingsLine() string {
	s := r.Settings
	kb := "an assistant with no knowledge base"
	if s.Knowledge {
		kb = "the assistant searches a knowledge base of docs/*.md (embedded BM25 index) for every question"
	}
	return fmt.Sprintf("%d conversations × %d turns for %s (ramp-up %s, think time %s); model %.0f tokens/s after %s, answers %d–%d tokens; bot.workers %d; burst %d events in threads of %d; %s",
		s.Conversations, s.Turns, s.Duration, s.Ramp, s.Think, s.TokensPerSec, s.FirstToken, s.MinTokens, s.MaxTokens, s.Workers, s.BurstEvents, s.BurstThread, kb)
}

// textReport is what the command prints.
func textReport(r *Run) string {
	var b strings.Builder
	fmt.Fprintf(&b, "machine: %s (load average %s at the start, %s at the end)\ndate: %s\nversions: %s\nstore: %s\nsettings: %s\ncommand: %s\n\n",
		r.Machine, r.Load, r.LoadAfter, r.Date.Format(time.RFC3339), r.versions(), r.Store, r.settingsLine(), r.Command)
	writeTables(&b, r)
	for _, n := range notes(r) {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	for _, c := range checks(r) {
		fmt.Fprintf(&b, "- %s\n", c)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "FAILED %s\n", f)
	}
	return b.String()
}

func writeTables(b *strings.Builder, r *Run) {
	if s := r.scenario(scenarioConversations); s != nil && len(s.Platforms) > 0 {
		b.WriteString("### A: concurrent conversations\n\n")
		b.WriteString(conversationsTable(s) + "\n")
	}
	if s := r.scenario(scenarioBurst); s != nil && len(s.Platforms) > 0 {
		b.WriteString("### B: burst of retried Slack events\n\n")
		b.WriteString(burstTable(s) + "\n")
	}
	if len(r.Scenarios) > 0 {
		b.WriteString("### Memory and CPU\n\n")
		b.WriteString(memoryTable(r.Scenarios) + "\n")
		b.WriteString("The bot's Go runtime over the same windows (its `GET /metrics`):\n\n")
		b.WriteString(runtimeTable(r.Scenarios) + "\n")
		b.WriteString("### Engine overhead per message (model time excluded)\n\n")
		b.WriteString(overheadTable(r.Scenarios) + "\n")
	}
}

// plotFile is a chart and the file it is written to.
type plotFile struct {
	file string
	c    benchkit.LineChart
}

// plots are the charts of a run.
func plots(r *Run) []plotFile {
	var out []plotFile
	var ack, answer, eng, rss []benchkit.Series
	for _, s := range r.Scenarios {
		for _, p := range s.Platforms {
			if len(p.ackMS) > 0 {
				x, y := benchkit.CDF(positive(p.ackMS), 400)
				ack = append(ack, benchkit.Series{Name: fmt.Sprintf("%s: %s", s.Name, p.Platform), X: x, Y: y})
			}
			if s.Name == scenarioConversations {
				if x, y := benchkit.CDF(positive(p.firstMS), 400); len(x) > 0 {
					answer = append(answer, benchkit.Series{Name: p.Platform + ": first update", X: x, Y: y})
				}
				if x, y := benchkit.CDF(positive(p.completeMS), 400); len(x) > 0 {
					answer = append(answer, benchkit.Series{Name: p.Platform + ": complete", X: x, Y: y})
				}
			}
		}
		if x, y := benchkit.CDF(positive(s.Overhead.EngineMS), 400); len(x) > 0 {
			eng = append(eng, benchkit.Series{Name: s.Name, X: x, Y: y})
		}
		if len(s.rss) > 0 {
			var x, y []float64
			for _, smp := range s.rss {
				x = append(x, smp.Seconds)
				y = append(y, float64(smp.Bytes)/(1<<20))
			}
			rss = append(rss, benchkit.Series{Name: s.Name + ": RSS", X: x, Y: y})
		}
		if len(s.runtime) > 0 {
			var x, y []float64
			for _, smp := range s.runtime {
				x = append(x, smp.Seconds)
				y = append(y, float64(smp.HeapInuse)/(1<<20))
			}
			rss = append(rss, benchkit.Series{Name: s.Name + ": Go heap", X: x, Y: y})
		}
	}
	if len(ack) > 0 {
		out = append(out, plotFile{"load-ack.svg", benchkit.LineChart{
			Title:  "Acknowledgement latency under load",
			Desc:   "Cumulative distribution of the time from sending a signed Slack event or Discord interaction to reading the bot's answer, per scenario and platform, latency on a log scale. " + ackSummary(r),
			XLabel: "ack latency, ms (log scale)", YLabel: "share of deliveries", XLog: true, YPct: true, Series: ack}})
	}
	if len(answer) > 0 {
		out = append(out, plotFile{"load-answer.svg", benchkit.LineChart{
			Title:  "Time to the answer, concurrent conversations",
			Desc:   "Cumulative distribution, per platform, of the time from sending a question to the first message of its answer and to the whole answer being visible, with the scripted model streaming; log scale.",
			XLabel: "time since the question was sent, ms (log scale)", YLabel: "share of questions", XLog: true, YPct: true, Series: answer}})
	}
	if len(eng) > 0 {
		out = append(out, plotFile{"load-engine.svg", benchkit.LineChart{
			Title:  "Engine overhead per answered message",
			Desc:   "Cumulative distribution of the engine's own time per answered message: trace duration minus the received step (inbox wait) and the model steps, per scenario; log scale.",
			XLabel: "engine time per message, ms (log scale)", YLabel: "share of messages", XLog: true, YPct: true, Series: eng}})
	}
	if len(rss) > 0 {
		out = append(out, plotFile{"load-rss.svg", benchkit.LineChart{
			Title:  "Bot memory over time",
			Desc:   "The bot process's resident set (VmRSS from /proc) and its Go heap in use (go_memstats_heap_inuse_bytes from its /metrics) during each scenario, in MiB, against seconds since the bot was ready. " + rssSummary(r),
			XLabel: "seconds since the scenario started", YLabel: "MiB", Series: rss}})
	}
	return out
}

func positive(v []float64) []float64 {
	out := make([]float64, 0, len(v))
	for _, x := range v {
		out = append(out, max(x, 0.001))
	}
	return out
}

func ackSummary(r *Run) string {
	var parts []string
	for _, s := range r.Scenarios {
		for _, p := range s.Platforms {
			if p.Ack.Samples > 0 {
				parts = append(parts, fmt.Sprintf("%s %s: p50 %s ms, p99 %s ms", s.Name, p.Platform, benchkit.MS(p.Ack.P50), benchkit.MS(p.Ack.P99)))
			}
		}
	}
	return strings.Join(parts, "; ") + "."
}

func rssSummary(r *Run) string {
	var parts []string
	for _, s := range r.Scenarios {
		parts = append(parts, fmt.Sprintf("%s: max %s, at the end %s", s.Name, benchkit.MiB(s.Memory.MaxBytes), benchkit.MiB(s.Memory.EndBytes)))
	}
	return strings.Join(parts, "; ") + "."
}

// writeReport writes the plots next to the Markdown file (in imgDir) and
// the section of the file.
func writeReport(path, imgDir string, r *Run) error {
	var links []string
	if err := os.MkdirAll(imgDir, 0o755); err != nil {
		return err
	}
	for _, p := range plots(r) {
		link, err := benchkit.WritePlot(path, filepath.Join(imgDir, p.file), p.c.Title, p.c)
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
	b.WriteString("## Load (bench/load)\n\n")
	b.WriteString(methodText)
	fmt.Fprintf(&b, "\n- Machine: %s; 1-minute load average %s when the run started, %s when it ended\n", r.Machine, cmp.Or(r.Load, "unknown"), cmp.Or(r.LoadAfter, "unknown"))
	fmt.Fprintf(&b, "- Date: %s\n- Versions: %s\n- Store: %s\n- Settings: %s\n- Command: `%s`\n\n",
		r.Date.Format(time.RFC3339), r.versions(), r.Store, r.settingsLine(), r.Command)
	writeTables(&b, r)
	for _, l := range plotLinks {
		b.WriteString(l + "\n\n")
	}
	if cs := checks(r); len(cs) > 0 {
		b.WriteString("### Checks\n\n")
		for _, c := range cs {
			fmt.Fprintf(&b, "- %s\n", c)
		}
		b.WriteString("\n")
	}
	b.WriteString("### Details\n\n")
	for _, n := range notes(r) {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "- Not measured: %s\n", f)
	}
	data, err := section.DataComment(r)
	if err != nil {
		return "", err
	}
	b.WriteString("\n" + data)
	return b.String(), nil
}

const methodText = "`cmd/bot`, built from the checkout, runs on loopback with its default embedded store (SQLite in a fresh data directory; `-postgres` uses a fresh PostgreSQL database instead) and all three platforms configured, each pointed at a fake served by the bench: a Slack Web API (answers posted with `chat.postMessage` and edited with `chat.update`; `chat.startStream` answers `unknown_method`), Discord's REST API (the answer edited into the deferred response of an `/ask` interaction) and a Mattermost server (REST and the `/api/v4/websocket` events). Events are signed as the platforms sign them (HMAC-SHA256 with the signing secret for Slack, Ed25519 for Discord). The language model is a scripted OpenAI-compatible server: `POST /v1/chat/completions` streams server-sent events, one token per chunk at the configured rate after a first-token delay, answers of 60–120 tokens that cite [1] and end with a fixed sentence, and the usage in a last chunk. Each scenario starts a fresh bot; rate limits are off (`rate_limits.user_per_minute` and `channel_per_minute` 0) and `bot.workers` is high enough that streaming answers do not queue behind each other (each answer holds a worker for its whole stream).\n\n" +
	"- **A: concurrent conversations.** The conversations are spread evenly over Slack (`app_mention` in a thread), Discord (`/ask`, a user per conversation) and Mattermost (direct messages in a thread); each asks its next question when the answer to the previous one is complete, and starts a new thread after its last turn, until the duration is over.\n" +
	"- **B: burst.** Slack events in threads, every thread at once; each event is delivered four times, two deliveries at a time (the retries marked with `X-Slack-Retry-Num`), and a thread's next event follows once its deliveries were acknowledged. The bench then waits for every answer.\n\n" +
	"Definitions. **Ack**: from sending a delivery to having read the bot's whole HTTP answer (2xx; for Discord, the deferred response `{\"type\":5}`); Mattermost events come over the websocket, which has no acknowledgement. **First update**: from sending the question (its first delivery) to the first message of the answer (Slack `chat.postMessage`, the first edit of Discord's deferred response, Mattermost `POST /posts`). **Complete**: from sending the question to the first platform call after which the answer's message shows its last sentence. **One message per event**: the messages the bot created for each event, attributed by the answer's Slack message metadata (`event_payload.event_id`), Mattermost post props (`convosphere_event`) or Discord interaction token; an event with none is missing, with more than one duplicated. **Order**: in each thread, the answers' first messages, and their completions, must come in the order the questions were asked. **Memory**: the bot's VmRSS from `/proc` every half second; it is bounded when the highest RSS in the second half of the steady window (scenario A: after the ramp-up) is within 10% of the first half's; the trend is the least-squares slope over the window. The bot's goroutines and Go heap in use come from its `GET /metrics` every 2 s. **CPU**: the cores the bot, the bench (its clients, the fakes and the model) and every other process of the machine (from `/proc/stat`; with `-postgres`, PostgreSQL's server is among them) used while the questions were sent and answered: the clients and fakes share the machine with the bot, and other work on a shared machine skews the latencies. **Engine overhead**: read from the traces the bot stored (one per answered message, from the adapter receiving the event to the answer posted): the trace's duration minus its `received` step (receipt to `Engine.Handle`: the inbox write, the wait in the inbox, the claim, the user lookup) and minus its `model` steps (the request to the model until its last chunk, which includes the first-token delay, the streaming and the answer's edits made while it streams). What remains is the engine's own work: resolving the assistant, loading and saving the conversation's turns, retrieval, building the prompt, and the `posted` step (the replier's final platform calls and the outbox record); the table also gives it without `posted`. Worker time outside `Engine.Handle` (completing the inbox event) and saving the trace are not in it.\n"
