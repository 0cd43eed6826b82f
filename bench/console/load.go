package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
)

// defaultPages are the pages of issue 8 and their JSON API equivalents.
// {conversation} is a conversation of about 20 turns, {from} and {to} the
// first and last day of the dataset.
var defaultPages = []string{
	"/", "/conversations", "/conversations?platform=slack", "/conversations/{conversation}",
	"/analytics", "/analytics?from={from}&to={to}", "/audit", "/knowledge", "/assistants", "/users", "/tools", "/settings",
	"/api/v1/conversations", "/api/v1/conversations/{conversation}", "/api/v1/analytics", "/api/v1/dashboard",
}

// placeholders are what a page may name in braces.
var placeholders = []string{"conversation", "from", "to"}

// parsePages reads the -pages list: paths from the root, separated by
// commas, each once, with only known placeholders.
func parsePages(list string) ([]string, error) {
	var out []string
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !strings.HasPrefix(item, "/") || strings.HasPrefix(item, "//") {
			return nil, fmt.Errorf("-pages: %q is not a path from the root (such as /conversations)", item)
		}
		if strings.ContainsAny(item, " \t#") {
			return nil, fmt.Errorf("-pages: %q has a space or a fragment", item)
		}
		rest := item
		for {
			i := strings.IndexByte(rest, '{')
			if i < 0 {
				break
			}
			j := strings.IndexByte(rest[i:], '}')
			if j < 0 {
				return nil, fmt.Errorf("-pages: %q has an unclosed {", item)
			}
			if name := rest[i+1 : i+j]; !slices.Contains(placeholders, name) {
				return nil, fmt.Errorf("-pages: %q names {%s}: use {%s}", item, name, strings.Join(placeholders, "}, {"))
			}
			rest = rest[i+j+1:]
		}
		if slices.Contains(out, item) {
			return nil, fmt.Errorf("-pages: %q is listed twice", item)
		}
		out = append(out, item)
	}
	if len(out) == 0 {
		return nil, errors.New("-pages: name at least one page")
	}
	return out, nil
}

// resolvePage fills a page's placeholders.
func resolvePage(page string, values map[string]string) string {
	for _, name := range placeholders {
		page = strings.ReplaceAll(page, "{"+name+"}", values[name])
	}
	return page
}

// isAPI tells the JSON API (an API token) from pages (a session cookie).
func isAPI(page string) bool { return strings.HasPrefix(page, "/api/") }

// loadConfig is one page's load.
type loadConfig struct {
	Client      *http.Client
	URL         string
	Token       string // for the API: Authorization: Bearer
	Concurrency int
	Warmup      time.Duration
	Duration    time.Duration
}

// loadResult is what one page's load measured; requests sent during the
// warm-up only count towards the errors.
type loadResult struct {
	Requests       int
	Errors         int
	Seconds        float64
	Latencies      []time.Duration // sorted
	Bytes          int64           // bodies of the measured requests
	WarmupRequests int
	WarmupErrors   int
	ErrorsBy       map[string]int // warm-up included
	Aborted        string
}

// answer is one request's outcome.
type answer struct {
	Status    int
	FinalPath string // after redirects
	Body      []byte // kept only when asked
	Bytes     int64
	Err       error
}

// get sends one GET (following redirects) and reads the whole answer.
func get(ctx context.Context, c *http.Client, url, token string, keep bool) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return answer{Err: err}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "application/json")
	} else {
		req.Header.Set("Accept", "text/html,application/xhtml+xml")
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{Err: err}
	}
	defer resp.Body.Close()
	a := answer{Status: resp.StatusCode, FinalPath: resp.Request.URL.Path}
	if keep {
		a.Body, err = io.ReadAll(resp.Body)
		a.Bytes = int64(len(a.Body))
	} else {
		a.Bytes, err = io.Copy(io.Discard, resp.Body)
	}
	if err != nil {
		a.Err = fmt.Errorf("reading the answer: %w", err)
	}
	return a
}

// problem is why an answer counts as an error, "" when it does not: not
// 2xx after redirects, or sent to the sign-in page (the session ended).
func (a answer) problem() string {
	switch {
	case a.Err != nil:
		return "error: " + shortError(a.Err)
	case a.FinalPath == "/login":
		return "redirected to /login"
	case a.Status < 200 || a.Status > 299:
		return fmt.Sprintf("%d %s", a.Status, http.StatusText(a.Status))
	}
	return ""
}

// shortError drops the request line Go puts in front of transport errors.
func shortError(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "\": "); i >= 0 {
		s = s[i+3:]
	}
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

// maxFailure is the share of failed requests that stops a page's load.
const maxFailure = 0.1

// runLoad requests one page from cfg.Concurrency clients in a loop: a
// warm-up, then the measured window. Each client sends at least one
// measured request, so that a page slower than the window still has
// latencies. It stops early once more than 10% of at least 20 requests
// failed.
func runLoad(ctx context.Context, cfg loadConfig) (*loadResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		total, failed atomic.Int64
		mu            sync.Mutex
		res           = &loadResult{ErrorsBy: map[string]int{}}
		wg            sync.WaitGroup
		start         = time.Now()
		measureStart  = start.Add(cfg.Warmup)
		measureEnd    = measureStart.Add(cfg.Duration)
	)
	for range cfg.Concurrency {
		wg.Go(func() {
			var (
				lat                []time.Duration
				n, errs, wn, wErrs int
				bytes              int64
				errorsBy           = map[string]int{}
			)
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(measureEnd) && n > 0 {
					break
				}
				measured := !t0.Before(measureStart)
				a := get(ctx, cfg.Client, cfg.URL, cfg.Token, false)
				d := time.Since(t0)
				if a.Err != nil && ctx.Err() != nil {
					break // stopped: this request counts nowhere
				}
				total.Add(1)
				p := a.problem()
				if p != "" {
					failed.Add(1)
					errorsBy[p]++
				}
				switch {
				case measured:
					n++
					lat = append(lat, d)
					bytes += a.Bytes
					if p != "" {
						errs++
					}
				default:
					wn++
					if p != "" {
						wErrs++
					}
				}
			}
			mu.Lock()
			res.Requests += n
			res.Errors += errs
			res.WarmupRequests += wn
			res.WarmupErrors += wErrs
			res.Bytes += bytes
			res.Latencies = append(res.Latencies, lat...)
			for k, v := range errorsBy {
				res.ErrorsBy[k] += v
			}
			mu.Unlock()
		})
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if n, f := total.Load(), failed.Load(); n >= 20 && float64(f) > maxFailure*float64(n) {
					cancel(fmt.Errorf("%d of the first %d requests failed", f, n))
					return
				}
			}
		}
	}()
	wg.Wait()
	close(done)
	end := time.Now()
	slices.Sort(res.Latencies)
	if end.After(measureStart) {
		res.Seconds = end.Sub(measureStart).Seconds()
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		res.Aborted = cause.Error()
	} else if err := ctx.Err(); err != nil {
		return res, err // interrupted
	}
	return res, nil
}

// PageResult is what the bench found for one page.
type PageResult struct {
	Page     string `json:"page"`            // as listed, with placeholders
	Path     string `json:"path,omitempty"`  // as requested
	Final    string `json:"final,omitempty"` // the path after redirects, when another
	NotBuilt bool   `json:"not_built,omitempty"`
	Status   int    `json:"status,omitempty"`  // of the first request
	Message  string `json:"message,omitempty"` // of a first answer that was not 2xx
	Requests int    `json:"requests"`
	Errors   int    `json:"errors"`
	// Requests and errors of the warm-up (not in the latencies).
	WarmupRequests int              `json:"warmup_requests"`
	WarmupErrors   int              `json:"warmup_errors"`
	ErrorsBy       map[string]int   `json:"errors_by,omitempty"` // warm-up included
	Aborted        string           `json:"aborted,omitempty"`
	Seconds        float64          `json:"seconds"`
	RPS            float64          `json:"requests_per_sec"`
	Latency        benchkit.Latency `json:"latency"`
	// BodyBytes is the mean size of an answer.
	BodyBytes      int64   `json:"body_bytes"`
	ServerCPU      float64 `json:"server_cpu_cores"`
	ServerRSSBytes int64   `json:"server_rss_bytes"` // VmRSS after the page's load
}

// Passed reports whether the page met the target: built, no errors
// (warm-up included), p95 under the target.
func (p *PageResult) Passed() bool {
	return !p.NotBuilt && p.Requests > 0 && p.Errors+p.WarmupErrors == 0 && p.Aborted == "" && p.Latency.P95 < targetP95MS
}

// measurePage probes the page once (a 404 means it is not built yet),
// then loads it.
func measurePage(ctx context.Context, page, path string, cfg loadConfig, pid int) (*PageResult, error) {
	r := &PageResult{Page: page, Path: path}
	probe := get(ctx, cfg.Client, cfg.URL, cfg.Token, true)
	if probe.Err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.Message = shortError(probe.Err)
	}
	r.Status = probe.Status
	if probe.FinalPath != "" && probe.FinalPath != strings.SplitN(path, "?", 2)[0] {
		r.Final = probe.FinalPath
	}
	if probe.Status == http.StatusNotFound {
		r.NotBuilt, r.Message = true, pageMessage(probe.Body)
		return r, nil
	}
	if probe.problem() != "" && probe.Err == nil {
		r.Message = pageMessage(probe.Body)
	}
	cpu0, t0 := benchkit.ProcCPUSeconds(pid), time.Now()
	lr, err := runLoad(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cpu1, wall := benchkit.ProcCPUSeconds(pid), time.Since(t0).Seconds()
	r.Requests, r.Errors, r.Aborted, r.Seconds = lr.Requests, lr.Errors, lr.Aborted, lr.Seconds
	r.WarmupRequests, r.WarmupErrors = lr.WarmupRequests, lr.WarmupErrors
	r.Latency = benchkit.Summarise(lr.Latencies)
	if len(lr.ErrorsBy) > 0 {
		r.ErrorsBy = lr.ErrorsBy
	}
	if lr.Seconds > 0 {
		r.RPS = float64(lr.Requests) / lr.Seconds
	}
	if lr.Requests > 0 {
		r.BodyBytes = lr.Bytes / int64(lr.Requests)
	}
	if cpu0 >= 0 && cpu1 >= cpu0 && wall > 0 {
		r.ServerCPU = (cpu1 - cpu0) / wall
	}
	r.ServerRSSBytes = benchkit.ProcStatusBytes(pid, "VmRSS")
	return r, nil
}
