package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
)

// chartPoints bounds the points of one line of the chart.
const chartPoints = 250

// chartTitle is the chart's title and the alternative text of its image.
const chartTitle = "One-client query latency, cumulative"

// latencyChart is the cumulative distribution of the one-client query
// latencies of the man-page systems, latency on a log scale; ok is false
// when no system has latencies.
func latencyChart(results []*Result) (c benchkit.LineChart, ok bool) {
	var summary []string
	for _, r := range results {
		if r.Kind != "quality" || len(r.LatencyMS) == 0 {
			continue
		}
		pos := make([]float64, len(r.LatencyMS))
		for i, v := range r.LatencyMS {
			pos[i] = max(v, 0.001) // a log axis has no zero
		}
		x, y := benchkit.CDF(pos, chartPoints)
		c.Series = append(c.Series, benchkit.Series{Name: r.System, X: x, Y: y})
		summary = append(summary, fmt.Sprintf("%s: p50 %s ms, p95 %s ms", r.System, benchkit.MS(r.Latency.P50), benchkit.MS(r.Latency.P95)))
	}
	if len(c.Series) == 0 {
		return c, false
	}
	c.Title = chartTitle
	c.Desc = "Cumulative distribution of the query latencies of each retrieval system on the man-page corpus, one client, " +
		"every query three times; latency on a log scale. " + strings.Join(summary, "; ") + "."
	c.XLabel = "query latency, ms (log scale), one client"
	c.YLabel = "share of queries"
	c.XLog, c.YPct = true, true
	return c, true
}

// writeChart draws the latency chart into img/ next to the Markdown file
// at doc; it writes nothing when no system has latencies.
func writeChart(doc string, results []*Result) error {
	c, ok := latencyChart(results)
	if !ok {
		return nil
	}
	_, err := benchkit.WritePlot(doc, filepath.Join(filepath.Dir(doc), "img", chartFile), chartTitle, c)
	return err
}
