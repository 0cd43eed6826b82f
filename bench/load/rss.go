package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
)

// rssSample is the bot's resident set at a time of a scenario.
type rssSample struct {
	Seconds float64 `json:"s"` // since the scenario started
	Bytes   int64   `json:"b"`
}

// sampleRSS reads VmRSS of pid from /proc every interval until ctx ends,
// and returns the samples.
func sampleRSS(ctx context.Context, pid int, start time.Time, interval time.Duration) []rssSample {
	var out []rssSample
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if b := benchkit.ProcStatusBytes(pid, "VmRSS"); b > 0 {
			out = append(out, rssSample{Seconds: time.Since(start).Seconds(), Bytes: b})
		}
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
	}
}

// memory summarises the samples of a scenario's steady part.
type memory struct {
	Samples       int     `json:"samples"`
	StartBytes    int64   `json:"start_bytes"`
	MaxBytes      int64   `json:"max_bytes"`
	EndBytes      int64   `json:"end_bytes"`
	FirstHalfMax  int64   `json:"first_half_max_bytes"`
	SecondHalfMax int64   `json:"second_half_max_bytes"`
	GrowthPercent float64 `json:"growth_percent"` // of the second half's max over the first half's
	// TrendMiBPerMin is the least-squares slope of the RSS over the
	// window: a slow leak shows here before it shows in the halves.
	TrendMiBPerMin float64 `json:"trend_mib_per_min"`
	Bounded        bool    `json:"bounded"`
	PeakBytes      int64   `json:"peak_bytes"` // VmHWM of the process at the end
	WindowSeconds  float64 `json:"window_seconds"`
	WindowFromSecs float64 `json:"window_from_seconds"`
}

// boundedGrowth is how much more the second half of a run may reach than
// the first before the memory is said not to be bounded.
const boundedGrowth = 10 // percent

// summariseRSS describes the samples within [from, to) seconds: the
// highest resident set of each half, and whether the second half stayed
// within boundedGrowth percent of the first (a leak, growing with the
// messages answered, would not).
func summariseRSS(samples []rssSample, from, to float64) memory {
	var m memory
	var in []rssSample
	for _, s := range samples {
		if s.Seconds >= from && s.Seconds < to {
			in = append(in, s)
		}
	}
	m.Samples = len(in)
	if len(in) == 0 {
		return m
	}
	m.WindowFromSecs, m.WindowSeconds = from, to-from
	m.StartBytes, m.EndBytes = in[0].Bytes, in[len(in)-1].Bytes
	mid := from + (to-from)/2
	for _, s := range in {
		m.MaxBytes = max(m.MaxBytes, s.Bytes)
		if s.Seconds < mid {
			m.FirstHalfMax = max(m.FirstHalfMax, s.Bytes)
		} else {
			m.SecondHalfMax = max(m.SecondHalfMax, s.Bytes)
		}
	}
	m.TrendMiBPerMin = slope(in) * 60 / (1 << 20)
	if m.FirstHalfMax > 0 && m.SecondHalfMax > 0 {
		m.GrowthPercent = 100 * float64(m.SecondHalfMax-m.FirstHalfMax) / float64(m.FirstHalfMax)
		m.Bounded = m.GrowthPercent <= boundedGrowth
	}
	return m
}

// slope is the least-squares slope of bytes over seconds; 0 for fewer
// than two distinct times.
func slope(samples []rssSample) float64 {
	n := float64(len(samples))
	var sx, sy, sxx, sxy float64
	for _, s := range samples {
		x, y := s.Seconds, float64(s.Bytes)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	d := n*sxx - sx*sx
	if n < 2 || d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// machineBusySeconds is the CPU time all processes of the machine have
// used (user, nice, system, irq, softirq, steal) from the first line of
// /proc/stat, in seconds; -1 when unknown.
func machineBusySeconds() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	return statBusySeconds(b)
}

// statBusySeconds reads the busy time of the aggregate "cpu" line of a
// /proc/stat text, in seconds (its fields are in USER_HZ, 100 on Linux).
func statBusySeconds(stat []byte) float64 {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return -1
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system (idle iowait) irq softirq steal
		v, err := strconv.ParseInt(string(f[i]), 10, 64)
		if err != nil {
			return -1
		}
		busy += v
	}
	return float64(busy) / 100
}

// runtimeSample is what the bot's GET /metrics said of its Go runtime.
type runtimeSample struct {
	Seconds    float64 `json:"s"`
	HeapInuse  int64   `json:"heap"` // go_memstats_heap_inuse_bytes
	Goroutines int64   `json:"g"`    // go_goroutines
}

// sampleRuntime reads the bot's /metrics every interval until ctx ends.
func sampleRuntime(ctx context.Context, metricsURL string, start time.Time, interval time.Duration) []runtimeSample {
	var out []runtimeSample
	c := &http.Client{Timeout: interval}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
		if err == nil {
			if resp, err := c.Do(req); err == nil {
				g := gauges(resp.Body, "go_memstats_heap_inuse_bytes", "go_goroutines")
				resp.Body.Close()
				if g["go_goroutines"] > 0 {
					out = append(out, runtimeSample{Seconds: time.Since(start).Seconds(),
						HeapInuse: int64(g["go_memstats_heap_inuse_bytes"]), Goroutines: int64(g["go_goroutines"])})
				}
			}
		}
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
	}
}

// gauges reads the named metrics without labels from a Prometheus text
// exposition.
func gauges(r io.Reader, names ...string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		for _, n := range names {
			if name == n {
				if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
					out[n] = v
				}
			}
		}
	}
	return out
}

// runtimeStats summarises the runtime samples within [from, to) seconds.
type runtimeStats struct {
	Samples         int   `json:"samples"`
	HeapStart       int64 `json:"heap_start_bytes"`
	HeapMax         int64 `json:"heap_max_bytes"`
	HeapEnd         int64 `json:"heap_end_bytes"`
	GoroutinesStart int64 `json:"goroutines_start"`
	GoroutinesMax   int64 `json:"goroutines_max"`
	GoroutinesEnd   int64 `json:"goroutines_end"`
}

func summariseRuntime(samples []runtimeSample, from, to float64) runtimeStats {
	var st runtimeStats
	for _, s := range samples {
		if s.Seconds < from || s.Seconds >= to {
			continue
		}
		if st.Samples == 0 {
			st.HeapStart, st.GoroutinesStart = s.HeapInuse, s.Goroutines
		}
		st.Samples++
		st.HeapMax, st.GoroutinesMax = max(st.HeapMax, s.HeapInuse), max(st.GoroutinesMax, s.Goroutines)
		st.HeapEnd, st.GoroutinesEnd = s.HeapInuse, s.Goroutines
	}
	return st
}
