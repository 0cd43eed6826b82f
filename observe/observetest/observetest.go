// Package observetest reads Prometheus metrics in tests: a scrape of a
// /metrics endpoint, parsed with the Prometheus text parser, or a
// registry's gathered families.
package observetest

import (
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are metric families by name.
type Families map[string]*dto.MetricFamily

// Scrape GETs url (a /metrics endpoint) and parses the text format.
func Scrape(tb testing.TB, url string) Families {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain") // the classic text format, not OpenMetrics
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("scrape %s: %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		tb.Fatalf("scrape %s: Content-Type %q, want the Prometheus text format", url, ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatalf("parse the metrics of %s: %v", url, err)
	}
	return fams
}

// Gather collects g's families.
func Gather(tb testing.TB, g prometheus.Gatherer) Families {
	tb.Helper()
	list, err := g.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := Families{}
	for _, f := range list {
		out[f.GetName()] = f
	}
	return out
}

// Value returns the value of the counter or gauge series name{labels}
// (labels as name, value pairs; the series must have exactly these
// labels), 0 when it does not exist (a counter never incremented). For a
// histogram it returns the number of observations.
func (f Families) Value(name string, labels ...string) float64 {
	m := f.series(name, labels)
	switch {
	case m == nil:
		return 0
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

// Sum returns the sum of the observations of the histogram name{labels}.
func (f Families) Sum(name string, labels ...string) float64 {
	if m := f.series(name, labels); m != nil && m.Histogram != nil {
		return m.Histogram.GetSampleSum()
	}
	return 0
}

// Has reports whether the family name exists.
func (f Families) Has(name string) bool { return f[name] != nil }

// Type returns the type of the family name ("" when missing).
func (f Families) Type(name string) string {
	if fam := f[name]; fam != nil {
		return strings.ToLower(fam.GetType().String())
	}
	return ""
}

// Series lists the label sets of the family name, each as "k=v,k=v"
// sorted by key, for failure messages.
func (f Families) Series(name string) []string {
	fam := f[name]
	if fam == nil {
		return nil
	}
	var out []string
	for _, m := range fam.Metric {
		var kv []string
		for _, l := range m.Label {
			kv = append(kv, l.GetName()+"="+l.GetValue())
		}
		sort.Strings(kv)
		out = append(out, strings.Join(kv, ","))
	}
	return out
}

func (f Families) series(name string, labels []string) *dto.Metric {
	fam := f[name]
	if fam == nil {
		return nil
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, m := range fam.Metric {
		if len(m.Label) != len(want) {
			continue
		}
		match := true
		for _, l := range m.Label {
			if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
				match = false
				break
			}
		}
		if match {
			return m
		}
	}
	return nil
}
