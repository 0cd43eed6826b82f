package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
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
	System         string         `json:"system"`
	Description    string         `json:"description"`
	Requests       int            `json:"requests"` // measured
	Errors         int            `json:"errors"`   // measured
	Seconds        float64        `json:"seconds"`
	RPS            float64        `json:"requests_per_sec"`
	Latency        Latency        `json:"latency"`
	WarmupRequests int            `json:"warmup_requests"`
	WarmupErrors   int            `json:"warmup_errors"`
	PeakRSSBytes   int64          `json:"peak_rss_bytes"` // VmHWM of the server process
	EndRSSBytes    int64          `json:"end_rss_bytes"`  // VmRSS after the load
	CPUCores       float64        `json:"server_cpu_cores"`
	ClientCPUCores float64        `json:"client_cpu_cores"` // the bench process: clients and stub
	ErrorsBy       map[string]int `json:"errors_by,omitempty"`
	StubCalls      map[string]int `json:"stub_calls,omitempty"`
	Failed         string         `json:"failed,omitempty"`
}

// server is a system under test running as a child process.
type server struct {
	name   string
	cmd    *exec.Cmd
	url    string // base URL
	stderr *tailWriter
	done   chan struct{}
}

// measure starts the system, loads it and stops it. A result comes back
// for a system that answered, even when it failed.
func (e *environment) measure(ctx context.Context, name string) (*Result, error) {
	info, _ := lookupSystem(name)
	var (
		srv *server
		err error
	)
	switch name {
	case systemBolt:
		srv, err = e.startBolt(ctx)
	default:
		srv, err = e.startBot(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	pid := srv.cmd.Process.Pid
	e.stub.Reset()
	what := e.opts.duration.String()
	if e.opts.requests > 0 {
		what = fmt.Sprintf("%d requests", e.opts.requests)
	}
	logf("%s: ready (pid %d); %s warm-up, then %s from %d clients", name, pid, e.opts.warmup, what, e.opts.concurrency)
	cpu0, self0, t0 := procCPUSeconds(pid), selfCPUSeconds(), time.Now()
	lr, err := runLoad(ctx, loadConfig{URL: srv.url + eventsPath, Secret: e.secret, Concurrency: e.opts.concurrency,
		Warmup: e.opts.warmup, Duration: e.opts.duration, Requests: e.opts.requests, Maker: newPayloadMaker(time.Now())})
	if err != nil {
		return nil, err
	}
	cpu1, self1, wall := procCPUSeconds(pid), selfCPUSeconds(), time.Since(t0).Seconds()
	res := &Result{System: name, Description: info.Description, Requests: lr.Requests, Errors: lr.Errors,
		Seconds: lr.Seconds, Latency: summarise(lr.Latencies), WarmupRequests: lr.WarmupRequests,
		WarmupErrors: lr.WarmupErrors, PeakRSSBytes: procStatusBytes(pid, "VmHWM"), EndRSSBytes: procStatusBytes(pid, "VmRSS")}
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
	if name != systemBolt {
		// Let the workers answer some events: for information only.
		select {
		case <-ctx.Done():
		case <-time.After(settle):
		}
	}
	if calls := e.stub.Calls(); len(calls) > 0 {
		res.StubCalls = calls
	}
	logf("%s: %d requests in %.1fs (%.0f/s), p50 %.2f ms, p99 %.2f ms, %d errors, peak RSS %s",
		name, res.Requests, res.Seconds, res.RPS, res.Latency.P50, res.Latency.P99, res.Errors, mib(res.PeakRSSBytes))

	all := lr.Requests + lr.WarmupRequests
	allErrs := lr.Errors + lr.WarmupErrors
	if lr.Aborted != "" || (all > 0 && float64(allErrs) > maxFailure*float64(all)) || lr.Requests == 0 {
		res.Failed = failureText(lr, all, allErrs)
		if hint := failureHint(lr); hint != "" {
			res.Failed += "; " + hint
		}
		select {
		case <-srv.done:
			res.Failed += fmt.Sprintf("; %s exited (%s)", name, srv.cmd.ProcessState)
		default:
		}
		if out := srv.stderr.last(1000); out != "" {
			logf("%s: the end of its output:\n%s", name, out)
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
	logf("building ./cmd/bot")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/bot")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/bot: %w", err)
	}
	e.botBin = bin
	return nil
}

// startBot runs cmd/bot on a fresh data directory with its Slack adapter in
// HTTP mode, pointed at the stub.
func (e *environment) startBot(ctx context.Context, name string) (*server, error) {
	if err := e.buildBot(ctx); err != nil {
		return nil, err
	}
	data, err := os.MkdirTemp(e.tmp, name+"-data-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	env := append(withoutPrefix(os.Environ(), "CONVOSPHERE_"),
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
	srv, err := startServer(name, cmd, filepath.Join(e.tmp, name+".log"))
	if err != nil {
		return nil, err
	}
	srv.url = "http://" + addr
	if err := srv.waitReady(ctx, func(c *http.Client) bool {
		resp, err := c.Get(srv.url + "/readyz")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		srv.stop()
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
		logf("bolt: installing @slack/bolt %s with npm ci in %s", want, boltDir)
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
func (e *environment) startBolt(ctx context.Context) (*server, error) {
	if err := e.prepareBolt(ctx); err != nil {
		return nil, err
	}
	port, err := freePort()
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
	srv, err := startServer(systemBolt, cmd, filepath.Join(e.tmp, "bolt.log"))
	if err != nil {
		return nil, err
	}
	srv.url = "http://" + addr
	// The receiver has no health route: ready once it accepts connections.
	if err := srv.waitReady(ctx, func(*http.Client) bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}); err != nil {
		srv.stop()
		return nil, err
	}
	return srv, nil
}

// startServer starts cmd with its output kept in logFile and its last
// lines in memory.
func startServer(name string, cmd *exec.Cmd, logFile string) (*server, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	srv := &server{name: name, cmd: cmd, stderr: &tailWriter{}, done: make(chan struct{})}
	cmd.Stdout = f
	cmd.Stderr = io.MultiWriter(f, srv.stderr)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, cmd.Path, err)
	}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(srv.done)
	}()
	return srv, nil
}

// waitReady polls ready until it says yes, the process exits or
// readyTimeout passes.
func (s *server) waitReady(ctx context.Context, ready func(*http.Client) bool) error {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("%s exited before it was ready (%s); its output:\n%s", s.name, s.cmd.ProcessState, s.stderr.String())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if ready(c) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s; its output:\n%s", s.name, readyTimeout, s.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop asks the server to stop (SIGTERM) and kills it after 30 s.
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		logf("%s did not stop within 30 s: killing it", s.name)
		_ = s.cmd.Process.Kill()
		<-s.done
	}
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
		logf("postgres: no -database-url: running scripts/services.sh start (it starts PostgreSQL and Weaviate on loopback)")
		cmd := exec.CommandContext(ctx, "scripts/services.sh", "start")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			e.pgReason = fmt.Sprintf("scripts/services.sh start: %v (or give -database-url)", err)
			return "", errors.New(e.pgReason)
		}
		if base = postgresURLFromExports(string(out)); base == "" {
			e.pgReason = fmt.Sprintf("scripts/services.sh start printed no PostgreSQL URL: %q", out)
			return "", errors.New(e.pgReason)
		}
		e.run.Notes = append(e.run.Notes, "PostgreSQL from scripts/services.sh start, left running (scripts/services.sh stop stops it and Weaviate)")
	}
	fresh, drop, err := freshDatabase(ctx, base)
	if err != nil {
		logf("postgres: cannot create a fresh database (%v): using %s as it is", err, redactURL(base))
		e.run.Notes = append(e.run.Notes, "convosphere-postgres ran on an existing database: "+err.Error())
		fresh = base
	} else {
		e.pgDrop = drop
	}
	if v, err := serverVersion(ctx, fresh); err == nil {
		e.run.PostgreSQL = v
	}
	e.pgURL = fresh
	return fresh, nil
}

// postgresURLFromExports finds the PostgreSQL URL in `export NAME=VALUE`
// lines such as those scripts/services.sh start prints.
func postgresURLFromExports(out string) string {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export "))
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if unq, err := strconv.Unquote(value); err == nil {
			value = unq
		} else {
			value = strings.Trim(value, "'")
		}
		if (strings.Contains(name, "POSTGRES") || strings.Contains(name, "_PG_")) &&
			(strings.HasPrefix(value, "postgres://") || strings.HasPrefix(value, "postgresql://")) {
			return value
		}
	}
	return ""
}

// freshDatabase creates a database for this run on the server of base and
// returns its URL and a function that drops it.
func freshDatabase(ctx context.Context, base string) (string, func(), error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, errors.New("-database-url is not a postgres:// URL")
	}
	name := fmt.Sprintf("convosphere_bench_slack_%d", time.Now().UnixNano())
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err == nil {
			_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize())
			conn.Close(ctx)
		}
		if err != nil {
			logf("postgres: could not drop database %s: %v", name, err)
		}
	}
	return u.String(), drop, nil
}

func serverVersion(ctx context.Context, dbURL string) (string, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var v string
	err = conn.QueryRow(ctx, "SHOW server_version").Scan(&v)
	return v, err
}

// redactURL hides the password of a URL in s (from its first "postgres").
func redactURL(s string) string {
	i := strings.Index(s, "postgres")
	if i < 0 {
		return s
	}
	u, err := url.Parse(s[i:])
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return s[:i] + u.String()
}

// freePort is a TCP port on loopback that nothing listens on right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// withoutPrefix drops the environment variables whose names start with
// prefix, so the caller's configuration does not leak into a system.
func withoutPrefix(env []string, prefix string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return out
}

// procStatusBytes reads a "kB" field of /proc/PID/status (VmHWM: peak
// resident set, VmRSS: current); 0 when unknown.
func procStatusBytes(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	return statusField(b, field)
}

func statusField(status []byte, field string) int64 {
	for line := range bytes.SplitSeq(status, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte(field+":")); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// procCPUSeconds is the user and system CPU time of a process (all its
// threads) from /proc/PID/stat, in seconds; -1 when unknown.
func procCPUSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// Fields after the command name, which may hold spaces: state is
	// field 3, utime 14 and stime 15, in clock ticks (USER_HZ, 100).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return float64(u+s) / 100
}

// selfCPUSeconds is the bench process's user and system CPU time; -1
// when unknown.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// tailWriter keeps the last few kilobytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 16<<10 {
		t.buf = t.buf[len(t.buf)-8<<10:]
	}
	return len(p), nil
}

// last is at most n bytes of the end of the output, from a line start.
func (t *tailWriter) last(n int) string {
	t.mu.Lock()
	s := strings.TrimSpace(string(t.buf))
	t.mu.Unlock()
	if len(s) > n {
		s = s[len(s)-n:]
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return s
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	s := strings.TrimSpace(string(t.buf))
	t.mu.Unlock()
	if s == "" {
		return "(nothing)"
	}
	return s
}
