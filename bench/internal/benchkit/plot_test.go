package main

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestCDF(t *testing.T) {
	xs, ys := cdf([]float64{3, 1, 2, 4}, 0)
	if !reflect.DeepEqual(xs, []float64{1, 2, 3, 4}) || !reflect.DeepEqual(ys, []float64{0.25, 0.5, 0.75, 1}) {
		t.Errorf("cdf = %v %v", xs, ys)
	}
	if xs, ys := cdf(nil, 10); xs != nil || ys != nil {
		t.Errorf("cdf(nil) = %v %v", xs, ys)
	}
	var many []float64
	for i := 1000; i >= 1; i-- {
		many = append(many, float64(i))
	}
	xs, ys = cdf(many, 50)
	if len(xs) > 51 || len(xs) < 40 {
		t.Errorf("cdf of 1000 values kept %d points, want about 50", len(xs))
	}
	if xs[0] != 1 || xs[len(xs)-1] != 1000 || ys[len(ys)-1] != 1 {
		t.Errorf("cdf ends (%v, %v) … (%v, %v), want the smallest value and (1000, 1)", xs[0], ys[0], xs[len(xs)-1], ys[len(ys)-1])
	}
	for i := 1; i < len(xs); i++ {
		if xs[i] < xs[i-1] || ys[i] <= ys[i-1] {
			t.Fatalf("cdf not increasing at %d: %v %v", i, xs[i-1:i+1], ys[i-1:i+1])
		}
	}
	if many[0] != 1000 {
		t.Error("cdf sorted its argument")
	}
}

func TestTicks(t *testing.T) {
	tests := []struct {
		lo, hi float64
		n      int
		want   []float64
	}{
		{0, 100, 5, []float64{0, 20, 40, 60, 80, 100}},
		{0, 97, 5, []float64{0, 20, 40, 60, 80, 100}},
		{61.3, 97.2, 6, []float64{60, 70, 80, 90, 100}},
		{61.3, 97.2, 10, []float64{60, 65, 70, 75, 80, 85, 90, 95, 100}},
		{0, 1, 4, []float64{0, 0.5, 1}},
		{3, 3, 4, []float64{3}},
	}
	for _, tt := range tests {
		if got := niceTicks(tt.lo, tt.hi, tt.n); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("niceTicks(%v, %v, %d) = %v, want %v", tt.lo, tt.hi, tt.n, got, tt.want)
		}
	}
	for _, tt := range []struct {
		lo, hi float64
		want   []float64
	}{
		{0.4, 30, []float64{0.2, 0.5, 1, 2, 5, 10, 20, 50}},
		{0.9, 1100, []float64{0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000}},
		{1, 1, []float64{1}},
		{1, 2, []float64{1, 2}},
		{150, 150, []float64{100, 200}},
	} {
		if got := logTicks(tt.lo, tt.hi); !approx(got, tt.want) {
			t.Errorf("logTicks(%v, %v) = %v, want %v", tt.lo, tt.hi, got, tt.want)
		}
	}
	for v, want := range map[float64]string{0: "0", 0.5: "0.5", 20: "20", 1000: "1000", 250000: "2.5e+05"} {
		if got := formatTick(v); got != want {
			t.Errorf("formatTick(%v) = %q, want %q", v, got, want)
		}
	}
}

func approx(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-9*math.Max(1, math.Abs(b[i])) {
			return false
		}
	}
	return true
}

func TestChartSVG(t *testing.T) {
	c := chart{
		Title: "Ack latency <under load>", Desc: "Two platforms & their p99.", XLabel: "ms (log scale)", YLabel: "share",
		XLog: true, YPct: true,
		Series: []series{
			{Name: "slack", X: []float64{0.5, 1, 30}, Y: []float64{0.3, 0.6, 1}},
			{Name: "discord", X: []float64{0.8, 2, 40}, Y: []float64{0.2, 0.9, 1}},
		},
	}
	svg, err := c.SVG()
	if err != nil {
		t.Fatal(err)
	}
	// Well-formed XML, with the accessible name and description first.
	dec := xml.NewDecoder(strings.NewReader(svg))
	var elements []string
	texts := map[string][]string{}
	var stack []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			elements = append(elements, tok.Name.Local)
			stack = append(stack, tok.Name.Local)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 && strings.TrimSpace(string(tok)) != "" {
				texts[stack[len(stack)-1]] = append(texts[stack[len(stack)-1]], string(tok))
			}
		}
	}
	if len(elements) < 3 || elements[0] != "svg" || elements[1] != "title" || elements[2] != "desc" {
		t.Errorf("elements start %v, want svg, title, desc", elements[:min(3, len(elements))])
	}
	if texts["title"][0] != "Ack latency <under load>" || texts["desc"][0] != "Two platforms & their p99." {
		t.Errorf("title %q, desc %q", texts["title"], texts["desc"])
	}
	for _, want := range []string{"ms (log scale)", "share", "slack", "discord", "0.5", "1", "2", "10", "50", "50%", "100%"} {
		found := false
		for _, s := range texts["text"] {
			found = found || s == want
		}
		if !found {
			t.Errorf("no text %q in the chart: %q", want, texts["text"])
		}
	}
	if !strings.Contains(svg, `role="img"`) || !strings.Contains(svg, `aria-labelledby="title desc"`) {
		t.Error("the svg is not labelled by its title and desc")
	}
	if n := strings.Count(svg, "<polyline"); n != 2 {
		t.Errorf("%d lines, want 2", n)
	}
	if !strings.Contains(svg, `stroke-dasharray="6 3"`) {
		t.Error("the second series is not dashed")
	}

	for name, bad := range map[string]chart{
		"empty":         {Title: "x"},
		"log of zero":   {Title: "x", XLog: true, Series: []series{{Name: "a", X: []float64{0, 1}, Y: []float64{0, 1}}}},
		"ragged series": {Title: "x", Series: []series{{Name: "a", X: []float64{1, 2}, Y: []float64{1}}}},
	} {
		if _, err := bad.SVG(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Over more than three decades only the powers of ten are labelled.
	wide := chart{Title: "w", XLog: true, Series: []series{{Name: "a", X: []float64{0.9, 1100}, Y: []float64{0.5, 1}}}}
	svg, err = wide.SVG()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{">1<", ">10<", ">100<", ">1000<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the wide log axis lacks the label %s", want)
		}
	}
	if strings.Contains(svg, ">200<") || strings.Contains(svg, ">0.5<") {
		t.Error("the wide log axis labels its 2s and 5s")
	}
	one := chart{Title: "one", XLog: true, Series: []series{{Name: "a", X: []float64{1}, Y: []float64{1}}}}
	if svg, err := one.SVG(); err != nil || strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
		t.Errorf("one point: %v\n%s", err, svg)
	}
	linear := chart{Title: "RSS", XLabel: "s", YLabel: "MiB", Series: []series{{Name: "a", X: []float64{0, 60, 120}, Y: []float64{61, 80, 79}}}}
	svg, err = linear.SVG()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(svg, ">120<") || !strings.Contains(svg, ">60<") || !strings.Contains(svg, ">80<") {
		t.Errorf("linear axes miss their ticks:\n%s", svg)
	}
}
