// Command load runs the bot under load, end to end: cmd/bot, built from
// the checkout, with Slack, Discord and Mattermost configured against fakes
// of their APIs served by this command, and a scripted OpenAI-compatible
// model that streams at a realistic speed. It measures:
//
//   - A, concurrent conversations: -conversations threads at once, spread
//     over the three platforms, each asking its next question when the
//     answer to the previous one is complete: ack latency per platform,
//     time to the answer's first message and to the whole answer, one
//     message per question, per-thread order, the bot's memory over time.
//   - B, burst: -burst-events Slack events in threads of -burst-thread,
//     each delivered four times (two at once, like Slack's retries): ack
//     p99, exactly one reply per event, per-thread order, memory.
//   - The engine's own time per answered message, model time excluded,
//     from the traces the bot stored (see methodText in report.go).
//
// Usage, from the repository root:
//
//	go run ./bench/load [-scenarios conversations,burst] [-conversations 200]
//	    [-turns 4] [-duration 2m] [-tokens-per-sec 50] [-burst-events 1000]
//	    [-postgres [-database-url postgres://...]] [-out docs/benchmarks.md]
//
// With -out the "Load (bench/load)" section of that Markdown file is
// written between its markers (the rest of the file is kept) and the plots
// go to the img directory next to it (docs/img/load-*.svg). The bench is a
// program: `go test ./bench/load` runs only the unit tests of its parts.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	scenarios     []string
	conversations int
	turns         int
	duration      time.Duration
	ramp          time.Duration
	think         time.Duration
	turnTimeout   time.Duration
	tokensPerSec  float64
	firstToken    time.Duration
	minTokens     int
	maxTokens     int
	workers       int
	burstEvents   int
	burstThread   int
	burstTimeout  time.Duration
	knowledge     bool
	postgres      bool
	databaseURL   string
	rssInterval   time.Duration
	settle        time.Duration
	out           string
	imgDir        string
	keep          bool
}

func parseFlags(args []string) (options, error) {
	var o options
	var scenarios string
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.StringVar(&scenarios, "scenarios", scenarioConversations+","+scenarioBurst, "comma list of scenarios: "+scenarioConversations+" (A), "+scenarioBurst+" (B)")
	fs.IntVar(&o.conversations, "conversations", 200, "A: concurrent conversations, spread over Slack, Discord and Mattermost")
	fs.IntVar(&o.turns, "turns", 4, "A: questions per conversation (thread); then the slot starts a new one")
	fs.DurationVar(&o.duration, "duration", 2*time.Minute, "A: how long new questions are asked")
	fs.DurationVar(&o.ramp, "ramp", 5*time.Second, "A: the conversations start spread over this time")
	fs.DurationVar(&o.think, "think", 0, "A: wait between an answer and the next question")
	fs.DurationVar(&o.turnTimeout, "turn-timeout", time.Minute, "A: how long a question may wait for its answer")
	fs.Float64Var(&o.tokensPerSec, "tokens-per-sec", 50, "model: streaming speed, tokens (chunks) per second per answer")
	fs.DurationVar(&o.firstToken, "first-token", 200*time.Millisecond, "model: delay before the first token")
	fs.IntVar(&o.minTokens, "min-tokens", 60, "model: shortest answer, tokens")
	fs.IntVar(&o.maxTokens, "max-tokens", 120, "model: longest answer, tokens")
	fs.IntVar(&o.workers, "workers", 200, "bot.workers: events answered at once (each streaming answer holds one)")
	fs.IntVar(&o.burstEvents, "burst-events", 1000, "B: Slack events, each delivered 4 times")
	fs.IntVar(&o.burstThread, "burst-thread", 10, "B: events per thread")
	fs.DurationVar(&o.burstTimeout, "burst-timeout", 3*time.Minute, "B: how long to wait for every answer")
	fs.BoolVar(&o.knowledge, "knowledge", true, "the assistant searches a knowledge base of docs/*.md (ingested with cmd/console)")
	fs.BoolVar(&o.postgres, "postgres", false, "use PostgreSQL (a fresh database per scenario) instead of the embedded store")
	fs.StringVar(&o.databaseURL, "database-url", os.Getenv("CONVOSPHERE_TEST_POSTGRES_URL"), "with -postgres: the server to create databases on; empty: scripts/services.sh postgres")
	fs.DurationVar(&o.rssInterval, "rss-interval", 500*time.Millisecond, "how often the bot's RSS is sampled")
	fs.DurationVar(&o.settle, "settle", 2*time.Second, "wait after a scenario for late (duplicate) messages")
	fs.StringVar(&o.out, "out", "", "Markdown file whose load section is written (e.g. docs/benchmarks.md); empty: print only")
	fs.StringVar(&o.imgDir, "img", "", "directory of the plots; default: img next to -out")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (the bots' logs and data) and print where it is")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for item := range strings.SplitSeq(scenarios, ",") {
		switch item = strings.TrimSpace(item); item {
		case "":
		case scenarioConversations, scenarioBurst:
			o.scenarios = append(o.scenarios, item)
		default:
			return o, fmt.Errorf("-scenarios: unknown scenario %q: use %s or %s", item, scenarioConversations, scenarioBurst)
		}
	}
	switch {
	case len(o.scenarios) == 0:
		return o, errors.New("-scenarios: name at least one scenario")
	case o.conversations < 1 || o.turns < 1 || o.duration <= 0:
		return o, errors.New("-conversations, -turns and -duration must be positive")
	case o.tokensPerSec <= 0 || o.minTokens < 5 || o.maxTokens < o.minTokens:
		return o, errors.New("-tokens-per-sec must be positive and 5 ≤ -min-tokens ≤ -max-tokens")
	case o.workers < 1 || o.workers > 256:
		return o, errors.New("-workers must be 1 to 256 (bot.workers' range)")
	case o.burstEvents < 1 || o.burstThread < 1:
		return o, errors.New("-burst-events and -burst-thread must be positive")
	case o.ramp < 0 || o.think < 0 || o.turnTimeout <= 0 || o.burstTimeout <= 0 || o.rssInterval <= 0 || o.settle < 0:
		return o, errors.New("durations must not be negative (and timeouts, -rss-interval must be positive)")
	}
	if o.imgDir == "" && o.out != "" {
		o.imgDir = filepath.Join(filepath.Dir(o.out), "img")
	}
	return o, nil
}

func run() error {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		return err
	}
	if _, err := os.Stat("cmd/bot/main.go"); err != nil {
		return errors.New("run from the repository root (cmd/bot/main.go not found)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := &Run{Date: time.Now().UTC(), Command: benchkit.Command("bench/load", os.Args[1:]), Machine: benchkit.ReadMachine(),
		Load: benchkit.LoadAverage(), Go: runtime.Version(), Store: "embedded (SQLite in the data directory)",
		Settings: settings{Conversations: o.conversations, Turns: o.turns, Duration: o.duration.String(), Ramp: o.ramp.String(),
			Think: o.think.String(), TokensPerSec: o.tokensPerSec, FirstToken: o.firstToken.String(), MinTokens: o.minTokens,
			MaxTokens: o.maxTokens, Workers: o.workers, BurstEvents: o.burstEvents, BurstThread: o.burstThread, Knowledge: o.knowledge}}
	if o.postgres {
		r.Store = "PostgreSQL (a fresh database per scenario)"
	}
	e, err := newEnvironment(o, r)
	if err != nil {
		return err
	}
	defer e.close()
	if err := e.build(ctx); err != nil {
		return err
	}
	for _, name := range o.scenarios {
		load := e.conversations
		if name == scenarioBurst {
			load = e.burst
		}
		s, err := e.measured(ctx, name, load)
		if s != nil {
			r.Scenarios = append(r.Scenarios, s)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			benchkit.Logf("%s failed: %v", name, err)
			r.Failures = append(r.Failures, fmt.Sprintf("%s: %v", name, err))
		}
	}
	r.LoadAfter = benchkit.LoadAverage()
	fmt.Println()
	fmt.Print(textReport(r))
	if o.out != "" {
		if err := writeReport(o.out, o.imgDir, r); err != nil {
			return err
		}
		benchkit.Logf("wrote %s and the plots in %s", o.out, o.imgDir)
	}
	if len(r.Failures) > 0 {
		return fmt.Errorf("%d of %d scenarios failed", len(r.Failures), len(o.scenarios))
	}
	return nil
}

// newEnvironment starts the fakes and the model.
func newEnvironment(o options, r *Run) (_ *environment, err error) {
	tmp, err := os.MkdirTemp("", "convosphere-bench-load-")
	if err != nil {
		return nil, err
	}
	e := &environment{opts: o, run: r, tmp: tmp}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	e.slackSecret = hex.EncodeToString(secret)
	if _, e.discordKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
		return nil, err
	}
	if e.slack, err = startSlackFake(); err != nil {
		return nil, err
	}
	if e.discord, err = startDiscordFake(); err != nil {
		return nil, err
	}
	if e.mm, err = startMattermostFake(); err != nil {
		return nil, err
	}
	if e.model, err = startModel(modelConfig{TokensPerSec: o.tokensPerSec, FirstToken: o.firstToken, MinTokens: o.minTokens, MaxTokens: o.maxTokens}); err != nil {
		return nil, err
	}
	return e, nil
}
