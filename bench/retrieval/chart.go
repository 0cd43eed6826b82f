package main

import (
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// chartPoints bounds the points of one line of the chart.
const chartPoints = 250

// writeChart draws the cumulative distribution of the one-client query
// latencies of the man-page systems as an SVG, latency on a log scale.
func writeChart(path string, results []*Result) error {
	var rs []*Result
	for _, r := range results {
		if r.Kind == "quality" && len(r.LatencyMS) > 0 {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return nil
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range rs {
		for _, v := range r.LatencyMS {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	lo = math.Pow(10, math.Floor(math.Log10(max(lo, 0.01))))
	hi = math.Pow(10, math.Ceil(math.Log10(max(hi, lo*10))))
	const (
		w, h                  = 760, 400
		left, right, top, bot = 60, 220, 20, 50
		plotW, plotH          = w - left - right, h - top - bot
	)
	x := func(v float64) float64 {
		return left + plotW*(math.Log10(max(v, lo))-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))
	}
	y := func(f float64) float64 { return top + plotH*(1-f) }
	colors := []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	for d := lo; d <= hi*1.0001; d *= 10 {
		for _, m := range []float64{1, 2, 5} {
			v := d * m
			if v > hi*1.0001 {
				break
			}
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x(v), top, x(v), top+plotH)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%g</text>`+"\n", x(v), top+plotH+16, v)
		}
	}
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 0.95, 1} {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(f), left+plotW, y(f))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%.0f%%</text>`+"\n", left-6, y(f)+4, f*100)
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", left, top, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">query latency, ms (log scale), one client</text>`+"\n", left+plotW/2, h-12)
	for i, r := range rs {
		s := slices.Clone(r.LatencyMS)
		slices.Sort(s)
		// At most chartPoints points per line: evenly spaced quantiles.
		var pts []string
		step := max(1, len(s)/chartPoints)
		for j := 0; j < len(s); j += step {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s[j]), y(float64(j+1)/float64(len(s)))))
		}
		if (len(s)-1)%step != 0 {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s[len(s)-1]), y(1)))
		}
		c := colors[i%len(colors)]
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"/>`+"\n", c, strings.Join(pts, " "))
		ly := top + 10 + i*20
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", left+plotW+12, ly, left+plotW+32, ly, c)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", left+plotW+38, ly+4, html.EscapeString(r.System))
	}
	b.WriteString("</svg>\n")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
