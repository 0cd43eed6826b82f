package benchkit

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Latency summarises durations in milliseconds.
type Latency struct {
	Samples int     `json:"samples"`
	Mean    float64 `json:"mean_ms"`
	P50     float64 `json:"p50_ms"`
	P95     float64 `json:"p95_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
}

// Percentile is the nearest-rank percentile p (0 < p ≤ 100) of sorted
// durations: the smallest sample that at least p% of the samples do not
// exceed. Zero for no samples.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// Summarise describes durations (sorted or not; ds is not changed).
func Summarise(ds []time.Duration) Latency {
	l := Latency{Samples: len(ds)}
	if len(ds) == 0 {
		return l
	}
	sorted := ds
	if !slices.IsSorted(ds) {
		sorted = slices.Clone(ds)
		slices.Sort(sorted)
	}
	var sum time.Duration
	for _, d := range sorted {
		sum += d
	}
	l.Mean = Millis(sum) / float64(len(sorted))
	l.P50 = Millis(Percentile(sorted, 50))
	l.P95 = Millis(Percentile(sorted, 95))
	l.P99 = Millis(Percentile(sorted, 99))
	l.Max = Millis(sorted[len(sorted)-1])
	return l
}

// Millis is d in milliseconds.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// MS formats milliseconds for a table: three significant digits or so.
func MS(v float64) string {
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// Rate formats a rate (per second) for a table.
func Rate(v float64) string {
	if v < 100 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// MiB formats bytes as "123 MiB"; "n/a" when not known (0 or less).
func MiB(b int64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

// MiBNumber formats bytes in MiB with a decimal, for a column headed
// "MiB"; "n/a" when not known.
func MiBNumber(b int64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", float64(b)/(1<<20))
}
