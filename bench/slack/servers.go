package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
)

const (
	boltDir      = "bench/slack/bolt"
	readyTimeout = 60 * time.Second
	// settle is how long the bench waits after the load before it reads
	// the stub's call counts of a ConvoSphere system.
	settle = 2 * time.Second
)

// environment holds what the systems of one run share.
type environment struct {
	tmp    string
	stub   *stub
	secret string
	run    *Run
	opts   options

	botBin   string
	boltOK   bool
	pgURL    string
	pgDrop   func()
	pgReason string // why the postgres system cannot run
}

func (e *environment) close() {
	if e.pgDrop != nil {
		e.pgDrop()
	}
}

// Result is what the bench measured for one system.
type Result struct {
	System         string           `json:"system"`
	Description    string           `json:"description"`
	Requests       int              `json:"requests"` // measured
	Errors         int              `json:"errors"`   // measured
	Seconds        float64          `json:"seconds"`
	RPS            float64          `json:"requests_per_sec"`
	Latency        benchkit.Latency `json:"latency"`
	WarmupRequests int              `json:"warmup_requests"`
	WarmupErrors   int              `json:"warmup_errors"`
	PeakRSSBytes   int64            `json:"peak_rss_bytes"` // VmHWM of the server process
	EndRSSBytes    int64            `json:"end_rss_bytes"`  // VmRSS after the load
	// EndRSSAnonBytes and EndRSSFileBytes split EndRSSBytes: memory of the
	// process's own (heap, stacks, caches) and pages of files it maps (its
	// executable's code and read-only data, shared libraries).
	EndRSSAnonBytes int64          `json:"end_rss_anon_bytes,omitempty"`
	EndRSSFileBytes int64          `json:"end_rss_file_bytes,omitempty"`
	CPUCores        float64        `json:"server_cpu_cores"`
	ClientCPUCores  float64        `json:"client_cpu_cores"` // the bench process: clients and stub
	ErrorsBy        map[string]int `json:"errors_by,omitempty"`
	StubCalls       map[string]int `json:"stub_calls,omitempty"`
	Failed          string         `json:"failed,omitempty"`
	Round           int            `json:"round,omitempty"` // of -rounds
}

// measure starts the system, loads it and stops it. A result comes back
// for a system that answered, even when it failed.
func (e *environment) measure(ctx context.Context, name string) (*Result, error) {
	info, _ := lookupSystem(name)
	var (
		srv *benchkit.Server
		err error
	)
	switch name {
	case systemBolt:
		srv, err = e.startBolt(ctx)
	case systemGoMinimal:
		srv, err = e.startGoMinimal(ctx)
	default:
		srv, err = e.startBot(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	pid := srv.PID()
	e.stub.Reset()
	what := e.opts.duration.String()
	if e.opts.requests > 0 {
		what = fmt.Sprintf("%d requests", e.opts.requests)
	}
	benchkit.Logf("%s: ready (pid %d); %s warm-up, then %s from %d clients", name, pid, e.opts.warmup, what, e.opts.concurrency)
	cpu0, self0, t0 := benchkit.ProcCPUSeconds(pid), benchkit.SelfCPUSeconds(), time.Now()
	lr, err := runLoad(ctx, loadConfig{URL: srv.URL + eventsPath, Secret: e.secret, Concurrency: e.opts.concurrency,
		Warmup: e.opts.warmup, Duration: e.opts.duration, Requests: e.opts.requests, Maker: newPayloadMaker(time.Now())})
	if err != nil {
		return nil, err
	}
	cpu1, self1, wall := benchkit.ProcCPUSeconds(pid), benchkit.SelfCPUSeconds(), time.Since(t0).Seconds()
	res := &Result{System: name, Description: info.Description, Requests: lr.Requests, Errors: lr.Errors,
		Seconds: lr.Seconds, Latency: benchkit.Summarise(lr.Latencies), WarmupRequests: lr.WarmupRequests,
		WarmupErrors: lr.WarmupErrors, PeakRSSBytes: benchkit.ProcStatusBytes(pid, "VmHWM"), EndRSSBytes: benchkit.ProcStatusBytes(pid, "VmRSS"),
		EndRSSAnonBytes: benchkit.ProcStatusBytes(pid, "RssAnon"), EndRSSFileBytes: benchkit.ProcStatusBytes(pid, "RssFile")}
	if lr.Seconds > 0 {
		res.RPS = float64(lr.Requests) / lr.Seconds
	}
	if cpu0 >= 0 && cpu1 >= cpu0 && wall > 0 {
		res.CPUCores = (cpu1 - cpu0) / wall
	}
	if self0 >= 0 && self1 >= self0 && wall > 0 {
		res.ClientCPUCores = (self1 - self0) / wall
	}
	if len(lr.ErrorsBy) > 0 {
		res.ErrorsBy = lr.ErrorsBy
	}
	if name == systemEmbedded || name == systemPostgres {
		// Let the workers answer some events: for information only.
		select {
		case <-ctx.Done():
		case <-time.After(settle):
		}
	}
	if calls := e.stub.Calls(); len(calls) > 0 {
		res.StubCalls = calls
	}
	benchkit.Logf("%s: %d requests in %.1fs (%.0f/s), p50 %.2f ms, p99 %.2f ms, %d errors, peak RSS %s",
		name, res.Requests, res.Seconds, res.RPS, res.Latency.P50, res.Latency.P99, res.Errors, benchkit.MiB(res.PeakRSSBytes))

	all := lr.Requests + lr.WarmupRequests
	allErrs := lr.Errors + lr.WarmupErrors
	if lr.Aborted != "" || (all > 0 && float64(allErrs) > maxFailure*float64(all)) || lr.Requests == 0 {
		res.Failed = failureText(lr, all, allErrs)
		if hint := failureHint(lr); hint != "" {
			res.Failed += "; " + hint
		}
		if srv.Exited() {
			res.Failed += fmt.Sprintf("; %s exited (%s)", name, srv.Cmd.ProcessState)
		}
		if out := srv.Output.Last(1000); out != "" {
			benchkit.Logf("%s: the end of its output:\n%s", name, out)
		}
		return res, errors.New(res.Failed)
	}
	return res, nil
}

// failureText says why a system's load failed.
func failureText(lr *loadResult, all, allErrs int) string {
	var b strings.Builder
	if all == 0 {
		b.WriteString("no request was answered")
	} else {
		fmt.Fprintf(&b, "%d of %d requests failed (more than %.0f%%; aborted)", allErrs, all, maxFailure*100)
	}
	if len(lr.ErrorsBy) > 0 {
		var parts []string
		for _, k := range sortedKeys(lr.ErrorsBy) {
			parts = append(parts, fmt.Sprintf("%s ×%d", k, lr.ErrorsBy[k]))
		}
		fmt.Fprintf(&b, ": %s", strings.Join(parts, ", "))
	}
	if lr.FirstBody != "" {
		fmt.Fprintf(&b, " (first answer: %q)", lr.FirstBody)
	}
	return b.String()
}

func failureHint(lr *loadResult) string {
	for k := range lr.ErrorsBy {
		switch {
		case strings.HasPrefix(k, "404"):
			return "the server has no POST " + eventsPath + " endpoint (for cmd/bot: the Slack HTTP adapter is not there or CONVOSPHERE_SLACK_MODE=http is not honoured)"
		case strings.HasPrefix(k, "401"), strings.HasPrefix(k, "403"):
			return "the server rejected the signature: check that it reads the signing secret from the environment the bench sets"
		}
	}
	return ""
}

// buildBot builds cmd/bot once per run.
func (e *environment) buildBot(ctx context.Context) error {
	if e.botBin != "" {
		return nil
	}
	bin := filepath.Join(e.tmp, "bot")
	if err := benchkit.Build(ctx, "./cmd/bot", bin); err != nil {
		return err
	}
	e.botBin = bin
	return nil
}

// startGoMinimal builds and runs bench/slack/goack, the reference app.
func (e *environment) startGoMinimal(ctx context.Context) (*benchkit.Server, error) {
	bin := filepath.Join(e.tmp, "goack")
	if err := benchkit.Build(ctx, "./bench/slack/goack", bin); err != nil {
		return nil, err
	}
	port, err := benchkit.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin)
	cmd.Env = append(benchkit.WithoutPrefix(os.Environ(), "CONVOSPHERE_"), "ADDR="+addr, "SLACK_SIGNING_SECRET="+e.secret)
	return e.startListening(ctx, systemGoMinimal, cmd, addr)
}

// startListening starts cmd, logging to the run's directory, and waits
// until it accepts connections on addr (the apps have no health route).
func (e *environment) startListening(ctx context.Context, name string, cmd *exec.Cmd, addr string) (*benchkit.Server, error) {
	srv, err := benchkit.StartServer(name, cmd, filepath.Join(e.tmp, name+".log"))
	if err != nil {
		return nil, err
	}
	srv.URL = "http://" + addr
	if err := srv.WaitReady(ctx, readyTimeout, benchkit.TCPReady(addr)); err != nil {
		srv.Stop()
		return nil, err
	}
	return srv, nil
}

// startBot runs cmd/bot on a fresh data directory with its Slack adapter in
// HTTP mode, pointed at the stub.
func (e *environment) startBot(ctx context.Context, name string) (*benchkit.Server, error) {
	if err := e.buildBot(ctx); err != nil {
		return nil, err
	}
	data, err := os.MkdirTemp(e.tmp, name+"-data-")
	if err != nil {
		return nil, err
	}
	port, err := benchkit.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	env := append(benchkit.WithoutPrefix(os.Environ(), "CONVOSPHERE_"),
		"CONVOSPHERE_DATA_DIR="+data,
		"CONVOSPHERE_BOT_ADDR="+addr,
		"CONVOSPHERE_CONSOLE_ADDR=127.0.0.1:0",
		"CONVOSPHERE_SLACK_MODE=http",
		"CONVOSPHERE_SLACK_SIGNING_SECRET="+e.secret,
		"CONVOSPHERE_SLACK_BOT_TOKEN=xoxb-bench",
		"CONVOSPHERE_SLACK_API_URL="+e.stub.APIURL(),
		"CONVOSPHERE_LOG_LEVEL=warn",
	)
	if name == systemPostgres {
		dbURL, err := e.postgres(ctx)
		if err != nil {
			return nil, err
		}
		env = append(env, "CONVOSPHERE_DATABASE_URL="+dbURL)
	}
	cmd := exec.Command(e.botBin)
	cmd.Env = env
	srv, err := benchkit.StartServer(name, cmd, filepath.Join(e.tmp, name+".log"))
	if err != nil {
		return nil, err
	}
	srv.URL = "http://" + addr
	if err := srv.WaitReady(ctx, readyTimeout, benchkit.HTTPReady(srv.URL+"/readyz")); err != nil {
		srv.Stop()
		return nil, err
	}
	return srv, nil
}

// prepareBolt installs the Bolt app's dependencies when they are missing
// or not the pinned version, and records the versions.
func (e *environment) prepareBolt(ctx context.Context) error {
	if e.boltOK {
		return nil
	}
	want, err := pinnedBolt()
	if err != nil {
		return err
	}
	if have := installedBolt(); have != want {
		benchkit.Logf("bolt: installing @slack/bolt %s with npm ci in %s", want, boltDir)
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = boltDir
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("npm ci in %s: %w", boltDir, err)
		}
		if have := installedBolt(); have != want {
			return fmt.Errorf("npm ci installed @slack/bolt %q, package.json pins %q", have, want)
		}
	}
	out, err := exec.CommandContext(ctx, "node", "--version").Output()
	if err != nil {
		return fmt.Errorf("node --version: %w", err)
	}
	e.run.Node = strings.TrimSpace(string(out))
	e.run.Bolt = want
	e.boltOK = true
	return nil
}

// pinnedBolt is the @slack/bolt version bench/slack/bolt/package.json pins.
func pinnedBolt() (string, error) {
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	b, err := os.ReadFile(filepath.Join(boltDir, "package.json"))
	if err == nil {
		err = json.Unmarshal(b, &pkg)
	}
	if err != nil {
		return "", fmt.Errorf("%s/package.json: %w", boltDir, err)
	}
	v := pkg.Dependencies["@slack/bolt"]
	if v == "" {
		return "", fmt.Errorf("%s/package.json has no @slack/bolt dependency", boltDir)
	}
	return v, nil
}

// installedBolt is the version in node_modules, "" when not installed.
func installedBolt() string {
	var pkg struct {
		Version string `json:"version"`
	}
	b, err := os.ReadFile(filepath.Join(boltDir, "node_modules", "@slack", "bolt", "package.json"))
	if err != nil || json.Unmarshal(b, &pkg) != nil {
		return ""
	}
	return pkg.Version
}

// startBolt runs the minimal Bolt app (node directly, so that the child's
// pid is the node process).
func (e *environment) startBolt(ctx context.Context) (*benchkit.Server, error) {
	if err := e.prepareBolt(ctx); err != nil {
		return nil, err
	}
	port, err := benchkit.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command("node", "app.js")
	cmd.Dir = boltDir
	cmd.Env = append(os.Environ(),
		"PORT="+strconv.Itoa(port),
		"HOST=127.0.0.1",
		"SLACK_SIGNING_SECRET="+e.secret,
		"SLACK_API_URL="+e.stub.APIURL(),
		"NODE_ENV=production",
	)
	return e.startListening(ctx, systemBolt, cmd, addr)
}

// postgres is the URL of the database the postgres system runs on: a
// fresh one on the server of -database-url (or of scripts/services.sh),
// dropped at the end of the run.
func (e *environment) postgres(ctx context.Context) (string, error) {
	if e.pgURL != "" {
		return e.pgURL, nil
	}
	if e.pgReason != "" {
		return "", errors.New(e.pgReason)
	}
	base := e.opts.databaseURL
	if base == "" {
		benchkit.Logf("postgres: no -database-url: running scripts/services.sh postgres (it starts PostgreSQL on loopback when it is not running)")
		var err error
		if base, err = benchkit.StartPostgres(ctx); err != nil {
			e.pgReason = fmt.Sprintf("%v (or give -database-url)", err)
			return "", errors.New(e.pgReason)
		}
		e.run.Notes = append(e.run.Notes, "PostgreSQL from scripts/services.sh postgres, left running (scripts/services.sh stop stops it)")
	}
	fresh, drop, err := benchkit.FreshDatabase(ctx, base, "convosphere_bench_slack")
	if err != nil {
		benchkit.Logf("postgres: cannot create a fresh database (%v): using %s as it is", err, benchkit.RedactURL(base))
		e.run.Notes = append(e.run.Notes, "convosphere-postgres ran on an existing database: "+err.Error())
		fresh = base
	} else {
		e.pgDrop = drop
	}
	if v, err := benchkit.ServerVersion(ctx, fresh); err == nil {
		e.run.PostgreSQL = v
	}
	e.pgURL = fresh
	return fresh, nil
}
