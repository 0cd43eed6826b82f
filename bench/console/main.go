// Command console benchmarks the admin console's pages on a large
// dataset (issue 8: "Pages render with p95 under 50 ms with 1M messages in
// PostgreSQL").
//
// It seeds a fresh PostgreSQL database, migrated by the console's own
// `console migrate`, with -messages turns (default 1,000,000) generated on
// the server by INSERT … SELECT: about one conversation per ten turns over
// 90 days across Slack, Discord, Mattermost and the Playground, with
// several assistants, channels and users, a trace per question (steps,
// tokens, durations, outcomes, passages), answers with citations, tool
// calls and feedback on a few percent. Then it starts the real console
// (`console serve`) on loopback, creates an admin and an API token with
// the console's commands, signs in through the sign-in form, and loads
// each page in turn from -concurrency keep-alive clients: pages with the
// session cookie, the JSON API with the token. A page that answers 404 is
// not built yet: it is reported and skipped. For each page it reports
// requests, p50/p95/p99/max latency, errors and whether p95 < 50 ms; and
// the console's peak RSS.
//
// Usage, from the repository root:
//
//	go run ./bench/console [-messages 1000000] [-duration 10s] [-warmup 1s]
//	    [-concurrency 8] [-timeout 30s] [-pages /,/conversations,...]
//	    [-database-url postgres://... | -reuse postgres://.../db] [-keep]
//	    [-bin path/to/console] [-out docs/benchmarks.md]
//
// Without -database-url (or $CONVOSPHERE_TEST_POSTGRES_URL) it runs
// scripts/services.sh postgres and uses the PostgreSQL it prints. The
// seeded database is dropped at the end unless -keep; -reuse URL measures
// a database seeded by an earlier -keep run without seeding again. With
// -out the "Console pages" section of that Markdown file is written
// between its markers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
)

// targetP95MS is issue 8's target.
const targetP95MS = 50

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/console:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	messages    int64
	duration    time.Duration
	warmup      time.Duration
	timeout     time.Duration
	concurrency int
	pages       []string
	databaseURL string
	reuse       string
	keep        bool
	bin         string
	out         string
}

func run() error {
	var o options
	var pages string
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	fs.Int64Var(&o.messages, "messages", 1_000_000, "messages (turns) to seed")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured load per page, after the warm-up")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "load per page before the measured window, left out of the results")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "per request: a page slower than this is an error")
	fs.IntVar(&o.concurrency, "concurrency", 8, "concurrent clients, each with keep-alive connections")
	fs.StringVar(&pages, "pages", strings.Join(defaultPages, ","), "comma list of pages to load; {conversation}, {from} and {to} are filled in")
	fs.StringVar(&o.databaseURL, "database-url", os.Getenv("CONVOSPHERE_TEST_POSTGRES_URL"), "PostgreSQL server to seed a fresh database on; empty: scripts/services.sh postgres")
	fs.StringVar(&o.reuse, "reuse", "", "measure this database, seeded by an earlier run with -keep, instead of seeding one")
	fs.BoolVar(&o.keep, "keep", false, "keep the seeded database and print its URL (for -reuse)")
	fs.StringVar(&o.bin, "bin", "", "console binary to run; empty: go build ./cmd/console")
	fs.StringVar(&o.out, "out", "", "Markdown file whose Console pages section is written (e.g. docs/benchmarks.md); empty: print only")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.pages, err = parsePages(pages); err != nil {
		return err
	}
	switch {
	case o.messages < 1:
		return errors.New("-messages must be at least 1")
	case o.concurrency < 1:
		return errors.New("-concurrency must be at least 1")
	case o.duration <= 0:
		return errors.New("-duration must be positive")
	case o.warmup < 0:
		return errors.New("-warmup must not be negative")
	case o.timeout <= 0:
		return errors.New("-timeout must be positive")
	}
	if _, err := os.Stat("cmd/console"); err != nil && o.bin == "" {
		return errors.New("run from the repository root (cmd/console not found), or give -bin")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return parent(ctx, o)
}

// Run is everything one invocation measured, with where and how.
type Run struct {
	Date    time.Time `json:"date"`
	Command string    `json:"command"` // as invoked
	// Reproduce is the command without -reuse and -keep (reproducibleCommand).
	Reproduce   string           `json:"reproduce,omitempty"`
	Machine     benchkit.Machine `json:"machine"`
	Load        string           `json:"load,omitempty"` // 1-minute load average at the start
	Go          string           `json:"go"`
	PostgreSQL  string           `json:"postgresql,omitempty"`
	Concurrency int              `json:"concurrency"`
	Warmup      string           `json:"warmup"`
	Duration    string           `json:"duration"`
	Timeout     string           `json:"timeout,omitempty"`
	Dataset     *Dataset         `json:"dataset,omitempty"`
	// ServerPeakRSSBytes is the console's VmHWM after every page.
	ServerPeakRSSBytes int64         `json:"server_peak_rss_bytes"`
	Results            []*PageResult `json:"results"`
	Notes              []string      `json:"notes,omitempty"`
}

func parent(ctx context.Context, o options) error {
	r := &Run{Date: time.Now().UTC(), Command: benchkit.Command("bench/console", os.Args[1:]),
		Reproduce: reproducibleCommand(os.Args[1:]), Machine: benchkit.ReadMachine(),
		Load: benchkit.LoadAverage(), Go: runtime.Version(), Concurrency: o.concurrency, Warmup: o.warmup.String(),
		Duration: o.duration.String(), Timeout: o.timeout.String()}
	tmp, err := os.MkdirTemp("", "convosphere-bench-console-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := consoleBin{path: o.bin, data: filepath.Join(tmp, "data")}
	if bin.path == "" {
		if bin.path, err = buildConsole(ctx, tmp); err != nil {
			return err
		}
	}

	// The database: reused, or fresh and seeded.
	if o.reuse != "" {
		bin.dbURL = o.reuse
	} else {
		base := o.databaseURL
		if base == "" {
			benchkit.Logf("postgres: no -database-url: running scripts/services.sh postgres")
			if base, err = benchkit.StartPostgres(ctx); err != nil {
				return fmt.Errorf("%w (or give -database-url)", err)
			}
		}
		fresh, drop, err := benchkit.FreshDatabase(ctx, base, "convosphere_bench_console")
		if err != nil {
			return fmt.Errorf("create a database on %s: %w", benchkit.RedactURL(base), err)
		}
		seeded := false
		defer func() {
			if o.keep && seeded {
				fmt.Fprintf(os.Stderr, "\nkept the seeded database: %s\nmeasure it again with: go run ./bench/console -reuse '%s'\n", fresh, fresh)
				return
			}
			drop()
		}()
		bin.dbURL = fresh
		benchkit.Logf("database %s: migrating with console migrate", benchkit.RedactURL(fresh))
		t0 := time.Now()
		if _, err := bin.run(ctx, "", "migrate"); err != nil {
			return err
		}
		migrated := time.Since(t0).Seconds()
		benchkit.Logf("seeding %d messages", o.messages)
		t0 = time.Now()
		steps, err := seed(ctx, fresh, o.messages, r.Date)
		if err != nil {
			return err
		}
		seconds := time.Since(t0).Seconds()
		benchkit.Logf("seeded in %s", time.Duration(seconds*float64(time.Second)).Round(100*time.Millisecond))
		steps = append([]SeedStep{{Name: "console migrate", Seconds: migrated}}, steps...)
		if err := recordSeed(ctx, fresh, seedInfo{Bench: "bench/console", Messages: o.messages, SeededAt: r.Date,
			SeedSeconds: seconds, SeedSteps: steps}); err != nil {
			return err
		}
		seeded = true
	}
	if v, err := benchkit.ServerVersion(ctx, bin.dbURL); err == nil {
		r.PostgreSQL = v
	}
	if r.Dataset, err = describe(ctx, bin.dbURL); err != nil {
		return err
	}
	r.Dataset.Reused = o.reuse != ""
	logDataset(r.Dataset)

	// The console, a user signed in and an API token.
	user, password, token, err := bin.signInUser(ctx)
	if err != nil {
		return err
	}
	srv, err := bin.serve(ctx, filepath.Join(tmp, "console.log"))
	if err != nil {
		return err
	}
	defer srv.Stop()
	benchkit.Logf("console: ready at %s (pid %d)", srv.URL, srv.PID())
	transport := &http.Transport{Proxy: nil, MaxIdleConns: 2 * o.concurrency, MaxIdleConnsPerHost: 2 * o.concurrency}
	defer transport.CloseIdleConnections()
	pages, err := signIn(ctx, srv.URL, user, password, transport, o.timeout)
	if err != nil {
		return fmt.Errorf("sign in as %s: %w", user, err)
	}
	api := &http.Client{Transport: transport, Timeout: o.timeout}

	values := map[string]string{
		"conversation": r.Dataset.Conversation,
		"from":         r.Dataset.From.Format(time.DateOnly),
		"to":           r.Dataset.To.Format(time.DateOnly),
	}
	for _, page := range o.pages {
		path := resolvePage(page, values)
		cfg := loadConfig{Client: pages, URL: srv.URL + path, Concurrency: o.concurrency, Warmup: o.warmup, Duration: o.duration}
		if isAPI(page) {
			cfg.Client, cfg.Token = api, token
		}
		res, err := measurePage(ctx, page, path, cfg, srv.PID())
		if err != nil {
			return err
		}
		r.Results = append(r.Results, res)
		logPage(res)
		if srv.Exited() {
			return fmt.Errorf("the console exited during %s (%s); its output:\n%s", path, srv.Cmd.ProcessState, srv.Output.Last(2000))
		}
	}
	r.ServerPeakRSSBytes = benchkit.ProcStatusBytes(srv.PID(), "VmHWM")
	if strings.TrimSpace(srv.Output.String()) != "(nothing)" {
		benchkit.Logf("console: the end of its warnings and errors:\n%s", srv.Output.Last(1500))
	}
	fmt.Println()
	fmt.Print(textReport(r))
	if o.out != "" {
		if err := writeReport(o.out, r); err != nil {
			return err
		}
		benchkit.Logf("wrote %s", o.out)
	}
	return nil
}

func logDataset(d *Dataset) {
	how := "reused"
	if d.SeedSeconds > 0 {
		how = "seeded in " + seconds(d.SeedSeconds)
	}
	benchkit.Logf("dataset: %d messages, %d conversations, %d traces, %d feedback, %d tool calls, %s to %s, %s on disk (%s); conversation %s has %d turns",
		d.Messages, d.Conversations, d.Traces, d.Feedback, d.ToolCalls, d.From.Format(time.DateOnly), d.To.Format(time.DateOnly),
		size(d.DatabaseBytes), how, d.Conversation, d.ConversationTurns)
}

func logPage(r *PageResult) {
	switch {
	case r.NotBuilt:
		benchkit.Logf("%s: not built (404: %s)", r.Path, r.Message)
	default:
		benchkit.Logf("%s: %d requests (%.0f/s), p50 %s ms, p95 %s ms, p99 %s ms, %d errors: %s",
			r.Path, r.Requests, r.RPS, benchkit.MS(r.Latency.P50), benchkit.MS(r.Latency.P95), benchkit.MS(r.Latency.P99), r.Errors, verdict(r))
	}
}
