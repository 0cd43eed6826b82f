package benchkit

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestCDF(t *testing.T) {
	xs, ys := CDF([]float64{3, 1, 2, 4}, 0)
	if !reflect.DeepEqual(xs, []float64{1, 2, 3, 4}) || !reflect.DeepEqual(ys, []float64{0.25, 0.5, 0.75, 1}) {
		t.Errorf("cdf = %v %v", xs, ys)
	}
	if xs, ys := CDF(nil, 10); xs != nil || ys != nil {
		t.Errorf("CDF(nil) = %v %v", xs, ys)
	}
	var many []float64
	for i := 1000; i >= 1; i-- {
		many = append(many, float64(i))
	}
	xs, ys = CDF(many, 50)
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
	c := LineChart{
		Title: "Ack latency <under load>", Desc: "Two platforms & their p99.", XLabel: "ms (log scale)", YLabel: "share",
		XLog: true, YPct: true,
		Series: []Series{
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

	for name, bad := range map[string]LineChart{
		"empty":         {Title: "x"},
		"log of zero":   {Title: "x", XLog: true, Series: []Series{{Name: "a", X: []float64{0, 1}, Y: []float64{0, 1}}}},
		"ragged series": {Title: "x", Series: []Series{{Name: "a", X: []float64{1, 2}, Y: []float64{1}}}},
	} {
		if _, err := bad.SVG(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Over more than three decades only the powers of ten are labelled.
	wide := LineChart{Title: "w", XLog: true, Series: []Series{{Name: "a", X: []float64{0.9, 1100}, Y: []float64{0.5, 1}}}}
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
	one := LineChart{Title: "one", XLog: true, Series: []Series{{Name: "a", X: []float64{1}, Y: []float64{1}}}}
	if svg, err := one.SVG(); err != nil || strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
		t.Errorf("one point: %v\n%s", err, svg)
	}
	linear := LineChart{Title: "RSS", XLabel: "s", YLabel: "MiB", Series: []Series{{Name: "a", X: []float64{0, 60, 120}, Y: []float64{61, 80, 79}}}}
	svg, err = linear.SVG()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(svg, ">120<") || !strings.Contains(svg, ">60<") || !strings.Contains(svg, ">80<") {
		t.Errorf("linear axes miss their ticks:\n%s", svg)
	}
}

// parseSVG checks that svg is well-formed XML and returns its elements
// with their attributes, in document order, and the text of each element
// name.
func parseSVG(t *testing.T, svg string) ([]xml.StartElement, map[string][]string) {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	var elements []xml.StartElement
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
			elements = append(elements, tok.Copy())
			stack = append(stack, tok.Name.Local)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 && strings.TrimSpace(string(tok)) != "" {
				texts[stack[len(stack)-1]] = append(texts[stack[len(stack)-1]], string(tok))
			}
		}
	}
	return elements, texts
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func attrFloat(t *testing.T, e xml.StartElement, name string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(attr(e, name), 64)
	if err != nil {
		t.Fatalf("<%s %s=%q>: %v", e.Name.Local, name, attr(e, name), err)
	}
	return v
}

func TestBarChartSVG(t *testing.T) {
	c := BarChart{
		Title: "Pages <p95>", Desc: "Three pages & a target.", XLabel: "p95, ms",
		Categories: []string{"/", "/conversations?platform=slack", "/missing"},
		Series: []BarSeries{
			{Name: "p50", Values: []float64{5, 20, math.NaN()}},
			{Name: "p95", Values: []float64{10, 40, math.NaN()}},
		},
		Lines:   []RefLine{{Name: "target: p95 < 50 ms", Value: 50}},
		Missing: "not built",
	}
	svg, err := c.SVG()
	if err != nil {
		t.Fatal(err)
	}
	elements, texts := parseSVG(t, svg)
	if len(elements) < 3 || elements[0].Name.Local != "svg" || elements[1].Name.Local != "title" || elements[2].Name.Local != "desc" {
		t.Fatalf("elements start %v, want svg, title, desc", elements[:min(3, len(elements))])
	}
	root := elements[0]
	if attr(root, "role") != "img" || attr(root, "aria-labelledby") != "title desc" || attr(elements[1], "id") != "title" || attr(elements[2], "id") != "desc" {
		t.Errorf("the svg is not labelled by its title and desc: %v", root.Attr)
	}
	if texts["title"][0] != "Pages <p95>" || texts["desc"][0] != "Three pages & a target." {
		t.Errorf("title %q, desc %q", texts["title"], texts["desc"])
	}
	for _, want := range []string{"p95, ms", "/", "/conversations?platform=slack", "/missing", "p50", "p95", "target: p95 < 50 ms", "not built", "10.0", "40.0", "0", "50"} {
		if !slices.Contains(texts["text"], want) {
			t.Errorf("no text %q in the chart: %q", want, texts["text"])
		}
	}
	// The bars: 4 values (the NaNs are not drawn), each with its title, on
	// a linear scale from the plot's left edge: width ∝ value.
	var bars []xml.StartElement
	for _, e := range elements {
		if e.Name.Local == "rect" && attr(e, "height") == strconv.Itoa(barH-2) {
			bars = append(bars, e)
		}
	}
	if len(bars) != 4 {
		t.Fatalf("%d bars, want 4", len(bars))
	}
	left := attrFloat(t, bars[0], "x")
	unit := attrFloat(t, bars[0], "width") / 5 // px per ms
	for i, want := range []float64{5, 10, 20, 40} {
		if x := attrFloat(t, bars[i], "x"); x != left {
			t.Errorf("bar %d starts at %v, not %v", i, x, left)
		}
		if w := attrFloat(t, bars[i], "width"); math.Abs(w-want*unit) > 0.2 {
			t.Errorf("bar %d (%v ms) is %v px wide, want %v", i, want, w, want*unit)
		}
	}
	if y0, y1, y2 := attrFloat(t, bars[0], "y"), attrFloat(t, bars[1], "y"), attrFloat(t, bars[2], "y"); !(y0 < y1 && y1 < y2) {
		t.Errorf("bars not top to bottom: %v %v %v", y0, y1, y2)
	}
	if !strings.Contains(svg, "<title>/conversations?platform=slack, p95: 40.0</title>") {
		t.Error("a bar lacks its title")
	}
	// The target line is at 50 ms on the same scale.
	found := false
	for _, e := range elements {
		if e.Name.Local == "line" && attr(e, "stroke") == refColor && attr(e, "x1") == attr(e, "x2") {
			found = true
			if x := attrFloat(t, e, "x1"); math.Abs(x-(left+50*unit)) > 0.2 {
				t.Errorf("target line at x %v, want %v", x, left+50*unit)
			}
		}
	}
	if !found {
		t.Error("no target line")
	}
	if bars[0].Attr != nil && attr(bars[0], "stroke") != inkColor {
		t.Errorf("bar outline %q, want %s", attr(bars[0], "stroke"), inkColor)
	}

	for name, bad := range map[string]BarChart{
		"empty":      {Title: "x"},
		"no values":  {Title: "x", Categories: []string{"a"}, Series: []BarSeries{{Name: "s", Values: []float64{math.NaN()}}}},
		"negative":   {Title: "x", Categories: []string{"a"}, Series: []BarSeries{{Name: "s", Values: []float64{-1}}}},
		"ragged":     {Title: "x", Categories: []string{"a", "b"}, Series: []BarSeries{{Name: "s", Values: []float64{1}}}},
		"infinitely": {Title: "x", Categories: []string{"a"}, Series: []BarSeries{{Name: "s", Values: []float64{math.Inf(1)}}}},
	} {
		if _, err := bad.SVG(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	zero := BarChart{Title: "z", Categories: []string{"a"}, Series: []BarSeries{{Name: "s", Values: []float64{0}}}}
	if svg, err := zero.SVG(); err != nil || strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
		t.Errorf("all zero: %v\n%s", err, svg)
	}
}

func TestLineChartCoordinates(t *testing.T) {
	c := LineChart{Title: "t", Desc: "d", XLabel: "x", YLabel: "y",
		Series: []Series{{Name: "a", X: []float64{0, 50, 100}, Y: []float64{0, 5, 10}}}}
	svg, err := c.SVG()
	if err != nil {
		t.Fatal(err)
	}
	elements, _ := parseSVG(t, svg)
	for _, e := range elements {
		if e.Name.Local != "polyline" {
			continue
		}
		want := fmt.Sprintf("%d.0,%d.0 %d.0,%d.0 %d.0,%d.0", padLeft, padTop+plotH, padLeft+plotW/2, padTop+plotH/2, padLeft+plotW, padTop)
		if got := attr(e, "points"); got != want {
			t.Errorf("points %q, want %q", got, want)
		}
		return
	}
	t.Error("no polyline")
}

func TestWritePlot(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "docs", "benchmarks.md")
	c := BarChart{Title: "t", Categories: []string{"a"}, Series: []BarSeries{{Name: "s", Values: []float64{1}}}}
	link, err := WritePlot(doc, filepath.Join(dir, "docs", "img", "x.svg"), "Alt text", c)
	if err != nil {
		t.Fatal(err)
	}
	if link != "![Alt text](img/x.svg)" {
		t.Errorf("link %q", link)
	}
	b, err := os.ReadFile(filepath.Join(dir, "docs", "img", "x.svg"))
	if err != nil || !strings.HasPrefix(string(b), "<svg ") {
		t.Errorf("the file: %v\n%s", err, b)
	}
	if _, err := WritePlot(doc, filepath.Join(dir, "y.svg"), "bad", BarChart{Title: "empty"}); err == nil {
		t.Error("an empty chart was written")
	}
}
