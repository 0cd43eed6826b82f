// Command slack benchmarks how fast a Slack app acknowledges Events API
// requests: signed app_mention event_callback payloads are POSTed on
// loopback to POST /slack/events by concurrent keep-alive clients, and the
// bench reports requests/s, ack latency (p50, p99, max: request sent to
// response read), errors and the server's peak RSS.
//
// Systems, measured one after another in one run, each started fresh:
//
//   - convosphere-embedded: cmd/bot with the default embedded store (SQLite
//     in a fresh data directory); each ack includes the durable inbox write.
//   - convosphere-postgres: the same bot with CONVOSPHERE_DATABASE_URL set,
//     on a fresh database created for the run.
//   - bolt: a minimal Slack Bolt for JavaScript app (bench/slack/bolt: the
//     default HTTP receiver, an app_mention listener that does nothing, so
//     Bolt only acks). Its dependencies are installed with npm ci on first use.
//
// Usage, from the repository root:
//
//	go run ./bench/slack [-systems convosphere-embedded,convosphere-postgres,bolt]
//	    [-duration 20s | -requests N] [-concurrency 32] [-warmup 2s]
//	    [-database-url postgres://...] [-out docs/benchmarks.md]
//
// With -out the "Slack event acknowledgement" section of that Markdown file
// is written between its begin/end markers (appended when absent, replaced
// when present; the rest of the file is kept). Without -database-url (or
// $CONVOSPHERE_TEST_POSTGRES_URL) the postgres system runs
// scripts/services.sh postgres and uses the PostgreSQL URL it prints. A Slack
// Web API stub served by the bench answers the bots' outbound calls. The
// bench needs go, node and npm on the PATH.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "slack:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	systems     []string
	duration    time.Duration
	requests    int
	concurrency int
	warmup      time.Duration
	out         string
	databaseURL string
	floor       time.Duration
	rounds      int
}

// systemInfo describes a system under test.
type systemInfo struct {
	Name        string
	Description string
}

// systems are the ones -systems can name, in the order they run.
var systems = []systemInfo{
	{"convosphere-embedded", "cmd/bot, default embedded store (SQLite in the data directory), durable inbox write before the ack"},
	{"convosphere-postgres", "cmd/bot with PostgreSQL (CONVOSPHERE_DATABASE_URL), durable inbox write before the ack"},
	{"bolt", "Slack Bolt for JavaScript, default HTTP receiver, app_mention listener that only acks"},
	{"go-minimal", "reference, not a target: the smallest Go app (net/http, slack-go's signature check, 200), nothing stored"},
}

const (
	systemBolt     = "bolt"
	systemEmbedded = "convosphere-embedded"
	systemPostgres = "convosphere-postgres"
	// systemGoMinimal is the machine's reference point: what a Go server
	// that stores nothing reaches under the same clients.
	systemGoMinimal = "go-minimal"
)

func lookupSystem(name string) (systemInfo, bool) {
	for _, s := range systems {
		if s.Name == name {
			return s, true
		}
	}
	return systemInfo{}, false
}

func systemNames() string {
	var names []string
	for _, s := range systems {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}

// parseSystems turns the -systems list into system names in run order.
func parseSystems(list string) ([]string, error) {
	want := map[string]bool{}
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if _, ok := lookupSystem(item); !ok {
			return nil, fmt.Errorf("-systems: unknown system %q: use %s", item, systemNames())
		}
		want[item] = true
	}
	var out []string
	for _, s := range systems {
		if want[s.Name] {
			out = append(out, s.Name)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-systems: name at least one of " + systemNames())
	}
	return out, nil
}

func run() error {
	var o options
	var systemsFlag string
	fs := flag.NewFlagSet("slack", flag.ContinueOnError)
	fs.StringVar(&systemsFlag, "systems", systemEmbedded+","+systemPostgres+","+systemBolt+","+systemGoMinimal, "comma list of systems to measure: "+systemNames())
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "measured load per system (after the warm-up); ignored with -requests")
	fs.IntVar(&o.requests, "requests", 0, "measured requests per system instead of -duration (0: use -duration)")
	fs.IntVar(&o.concurrency, "concurrency", 32, "concurrent clients, each on its own keep-alive connection")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "load before the measured window, left out of the results")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds: every system is measured once per round, in turn; the table shows each system's median round")
	fs.DurationVar(&o.floor, "store-floor", 10*time.Second, "how long to measure the embedded store's inbox write alone, before the systems (0: skip)")
	fs.StringVar(&o.out, "out", "", "Markdown file whose Slack section is written (e.g. docs/benchmarks.md); empty: print only")
	fs.StringVar(&o.databaseURL, "database-url", os.Getenv("CONVOSPHERE_TEST_POSTGRES_URL"), "PostgreSQL for convosphere-postgres (a fresh database is created on it when allowed); empty: scripts/services.sh postgres")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.systems, err = parseSystems(systemsFlag); err != nil {
		return err
	}
	if o.rounds < 1 {
		return errors.New("-rounds must be at least 1")
	}
	if o.concurrency < 1 {
		return errors.New("-concurrency must be at least 1")
	}
	if o.requests < 0 || (o.requests == 0 && o.duration <= 0) {
		return errors.New("give a positive -duration or -requests")
	}
	if o.warmup < 0 {
		return errors.New("-warmup must not be negative")
	}
	if _, err := os.Stat("bench/slack/bolt/app.js"); err != nil {
		return errors.New("run from the repository root (bench/slack/bolt/app.js not found)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return parent(ctx, o)
}

// medianRound is the round of a system with the median requests/s (of an
// even number, the slower of the middle two); a failed round counts only
// when every round failed.
func medianRound(all []*Result) *Result {
	var ok []*Result
	for _, r := range all {
		if r.Failed == "" {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return all[len(all)-1]
	}
	slices.SortStableFunc(ok, func(a, b *Result) int { return cmp.Compare(a.RPS, b.RPS) })
	return ok[(len(ok)-1)/2]
}

// Run is everything one invocation measured, with where and how.
type Run struct {
	Date        time.Time        `json:"date"`
	Command     string           `json:"command"`
	Machine     benchkit.Machine `json:"machine"`
	Load        string           `json:"load,omitempty"` // 1-minute load average at the start
	Go          string           `json:"go"`
	Node        string           `json:"node,omitempty"`
	Bolt        string           `json:"bolt,omitempty"`
	PostgreSQL  string           `json:"postgresql,omitempty"`
	Concurrency int              `json:"concurrency"`
	RoundCount  int              `json:"round_count,omitempty"` // -rounds
	Warmup      string           `json:"warmup"`
	Duration    string           `json:"duration,omitempty"`
	Requests    int              `json:"requests,omitempty"`
	Results     []*Result        `json:"results"`          // per system, its median round
	Rounds      []*Result        `json:"rounds,omitempty"` // every round, when there were several
	StoreFloor  *StoreFloor      `json:"store_floor,omitempty"`
	Failures    []string         `json:"failures,omitempty"`
	Notes       []string         `json:"notes,omitempty"`
}

func parent(ctx context.Context, o options) error {
	r := &Run{Date: time.Now().UTC(), Command: benchkit.Command("bench/slack", os.Args[1:]), Machine: benchkit.ReadMachine(), Load: benchkit.LoadAverage(),
		Go: runtime.Version(), Concurrency: o.concurrency, RoundCount: o.rounds, Warmup: o.warmup.String()}
	if o.requests > 0 {
		r.Requests = o.requests
	} else {
		r.Duration = o.duration.String()
	}
	tmp, err := os.MkdirTemp("", "convosphere-bench-slack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	stub, err := startStub()
	if err != nil {
		return err
	}
	defer stub.Close()
	benchkit.Logf("Slack Web API stub at %s", stub.URL)

	secret := newSecret()
	env := &environment{tmp: tmp, stub: stub, secret: secret, run: r, opts: o}
	defer env.close()

	if o.floor > 0 {
		benchkit.Logf("store floor: %d writers calling the embedded store's Enqueue for %s", o.concurrency, o.floor)
		r.StoreFloor = measureStoreFloor(ctx, tmp, o.concurrency, o.floor)
		benchkit.Logf("store floor: %.0f events/s, %.1f µs of CPU per event %s", r.StoreFloor.EventsPerSec, r.StoreFloor.CPUMicrosPerEvt, r.StoreFloor.Failed)
	}
	// Rounds: every system once per round, in turn, so that a slow spell
	// of a shared machine falls on all of them; a system that fails is not
	// measured again.
	rounds := map[string][]*Result{}
	failed := map[string]bool{}
	for round := 1; round <= o.rounds; round++ {
		for _, name := range o.systems {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if failed[name] {
				continue
			}
			if o.rounds > 1 {
				benchkit.Logf("%s: round %d of %d", name, round, o.rounds)
			}
			res, err := env.measure(ctx, name)
			if res != nil {
				res.Round = round
				rounds[name] = append(rounds[name], res)
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				benchkit.Logf("%s failed: %v", name, err)
				r.Failures = append(r.Failures, fmt.Sprintf("%s: %v", name, err))
				failed[name] = true
			}
		}
	}
	for _, name := range o.systems {
		all := rounds[name]
		if len(all) == 0 {
			continue
		}
		r.Results = append(r.Results, medianRound(all))
		if len(all) > 1 {
			r.Rounds = append(r.Rounds, all...)
		}
	}
	fmt.Println()
	fmt.Print(textReport(r))
	if o.out != "" {
		if err := writeReport(o.out, r); err != nil {
			return err
		}
		benchkit.Logf("wrote %s", o.out)
	}
	if len(r.Failures) > 0 {
		return fmt.Errorf("%d of %d systems failed", len(r.Failures), len(o.systems))
	}
	return nil
}
