package web

import (
	"encoding/xml"
	"errors"
	"html/template"
	"io"
	"math"
	"strings"
	"testing"
)

// xssLabels are payloads that reach charts as labels and series names.
var xssLabels = []string{
	`<script>alert(1)</script>`,
	`"><img src=x onerror=alert(2)>`,
	`</text></svg><script>alert(3)</script>`,
	`a & b 'quoted' <b>`,
	`]]><!--`,
}

// mustSVG parses out as XML, failing unless it is one well-formed <svg>
// element, and returns every text node and attribute value in it.
func mustSVG(tb testing.TB, out template.HTML) (texts []string, elements []string) {
	tb.Helper()
	dec := xml.NewDecoder(strings.NewReader(string(out)))
	dec.Strict = true
	depth := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatalf("not well-formed XML: %v\n%s", err, out)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 && t.Name.Local != "svg" {
				tb.Fatalf("root element <%s>, want <svg>", t.Name.Local)
			}
			depth++
			elements = append(elements, t.Name.Local)
			for _, a := range t.Attr {
				texts = append(texts, a.Value)
				switch a.Name.Local {
				case "xmlns", "class", "id", "viewBox", "role", "aria-labelledby", "focusable", "x", "y", "x1", "x2", "y1", "y2",
					"width", "height", "text-anchor", "dominant-baseline", "d", "cx", "cy", "r", "aria-hidden":
				default:
					tb.Fatalf("unexpected attribute %s on <%s>", a.Name.Local, t.Name.Local)
				}
			}
		case xml.EndElement:
			depth--
			if depth == 0 {
				if _, err := dec.Token(); !errors.Is(err, io.EOF) {
					tb.Fatalf("content after </svg>: %v", err)
				}
				return texts, elements
			}
		case xml.CharData:
			texts = append(texts, string(t))
		}
	}
	tb.Fatal("no complete <svg> element")
	return nil, nil
}

func xssChart() chart {
	return chart{
		ID: "chart-x", Title: "Title " + xssLabels[0], Desc: "Desc " + xssLabels[1], Integer: true,
		Labels: xssLabels,
		Series: []chartSeries{
			{Name: xssLabels[2], Class: "chart-s1", Values: []float64{1, 2, 3, math.NaN(), 5}},
			{Name: xssLabels[3], Class: `chart-s2" onload="alert(4)`, Values: []float64{5, 0, 1, 2, math.NaN()}, Dashed: true},
		},
	}
}

func TestChartsEscapeEverything(t *testing.T) {
	c := xssChart()
	for name, out := range map[string]template.HTML{
		"stacked bars":    c.StackedBars(),
		"lines":           c.Lines(),
		"horizontal bars": c.HorizontalBars(),
	} {
		t.Run(name, func(t *testing.T) {
			texts, elements := mustSVG(t, out)
			for _, el := range elements {
				switch el {
				case "svg", "title", "desc", "g", "line", "text", "rect", "path", "circle":
				default:
					t.Errorf("unexpected element <%s>", el)
				}
			}
			s := string(out)
			for _, bad := range []string{"<script", "<img", `onload="`, "<!--", "<b>"} {
				if strings.Contains(s, bad) {
					t.Errorf("output contains %q", bad)
				}
			}
			// The payloads are there, as text.
			all := strings.Join(texts, "\n")
			for _, want := range []string{"Title " + xssLabels[0], "Desc " + xssLabels[1], xssLabels[2]} {
				if !strings.Contains(all, want) {
					t.Errorf("text %q missing", want)
				}
			}
			if !strings.Contains(s, `role="img" aria-labelledby="chart-x-title chart-x-desc"`) ||
				!strings.Contains(s, `<title id="chart-x-title">`) || !strings.Contains(s, `<desc id="chart-x-desc">`) {
				t.Errorf("no accessible name and description: %.300s", s)
			}
		})
	}
}

func TestStackedBars(t *testing.T) {
	c := chart{ID: "m", Title: "t", Desc: "d", Integer: true, Labels: []string{"Mar 1", "Mar 2", "Mar 3"},
		Series: []chartSeries{
			{Name: "slack", Class: "chart-s1", Values: []float64{3, 0, 1}},
			{Name: "discord", Class: "chart-s2", Values: []float64{1, 0, 0}},
		}}
	out := string(c.StackedBars())
	// One rect per non-zero value, each with its value.
	if n := strings.Count(out, "<rect "); n != 3 {
		t.Fatalf("%d bars, want 3", n)
	}
	for _, want := range []string{"<title>Mar 1 · slack: 3</title>", "<title>Mar 1 · discord: 1</title>", "<title>Mar 3 · slack: 1</title>"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
	// The scale: 0 to 4 in whole steps.
	for _, tick := range []string{">0</text>", ">1</text>", ">4</text>"} {
		if !strings.Contains(out, tick) {
			t.Errorf("missing tick %q", tick)
		}
	}
	if strings.Contains(out, ">0.5</text>") || strings.Contains(out, ">5</text>") {
		t.Error("ticks are not whole or go past the data")
	}
}

func TestLinesLeaveGaps(t *testing.T) {
	c := chart{ID: "l", Title: "t", Desc: "d", Labels: []string{"a", "b", "c", "d", "e"},
		Series: []chartSeries{{Name: "p95", Class: "chart-s4", Dashed: true, Values: []float64{1, 2, math.NaN(), 4, 5}}}}
	out := string(c.Lines())
	if n := strings.Count(out, "<circle "); n != 4 {
		t.Errorf("%d points, want 4", n)
	}
	start := strings.Index(out, ` d="`)
	path := out[start+4 : start+4+strings.Index(out[start+4:], `"`)]
	if strings.Count(path, "M") != 2 || strings.Count(path, "L") != 2 {
		t.Errorf("path %q: want two segments of two points", path)
	}
	if !strings.Contains(out, `class="chart-line chart-s4 chart-dashed"`) {
		t.Error("the dashed series is not dashed")
	}
	// A fixed scale (ratios): nothing above it.
	c = chart{ID: "r", Title: "t", Desc: "d", Labels: []string{"a"}, Max: 1, Format: analyticsPercent,
		Series: []chartSeries{{Name: "helpful", Class: "chart-s2", Values: []float64{0.5}}}}
	out = string(c.Lines())
	for _, tick := range []string{">0%</text>", ">50%</text>", ">100%</text>", "<title>a · helpful: 50%</title>"} {
		if !strings.Contains(out, tick) {
			t.Errorf("missing %q", tick)
		}
	}
}

func TestHorizontalBarsShortenLabels(t *testing.T) {
	long := strings.Repeat("x", 50)
	c := chart{ID: "h", Title: "t", Desc: "d", Labels: []string{long, "b"},
		Series: []chartSeries{{Name: "in", Class: "chart-s1", Values: []float64{1500, 0}}, {Name: "out", Class: "chart-s2", Values: []float64{500, 0}}}}
	out := string(c.HorizontalBars())
	mustSVG(t, template.HTML(out))
	if !strings.Contains(out, "<title>"+long+"</title>"+strings.Repeat("x", chartLabelLength-1)+"…</text>") {
		t.Errorf("the long label is not shortened with its full text in a title: %s", out)
	}
	if !strings.Contains(out, ">2,000</text>") || !strings.Contains(out, ">0</text>") {
		t.Error("the totals are not written after the bars")
	}
	if n := strings.Count(out, "<rect "); n != 2 {
		t.Errorf("%d bars, want 2", n)
	}
}

func TestChartEmptyAndScale(t *testing.T) {
	if !(chart{Labels: []string{"a"}, Series: []chartSeries{{Values: []float64{0}}, {Values: []float64{math.NaN()}}}}).Empty() {
		t.Error("zeros and gaps are not empty")
	}
	if (chart{Labels: []string{"a"}, Series: []chartSeries{{Values: []float64{0.1}}}}).Empty() {
		t.Error("a value is empty")
	}
	if out := (chart{}).StackedBars() + (chart{}).Lines() + (chart{}).HorizontalBars(); out != "" {
		t.Errorf("no labels drew %q", out)
	}
	tests := []struct {
		max, top, step float64
		integer        bool
	}{
		{0, 1, 0.5, false},
		{3, 3, 1, true},
		{7, 8, 2, true},
		{0.6, 0.6, 0.2, false},
		{2800, 3000, 1000, false},
		{5235, 6000, 2000, false},
		{123456, 150000, 50000, true},
	}
	for _, tt := range tests {
		top, step := (chart{Integer: tt.integer}).scale(tt.max)
		if math.Abs(top-tt.top) > 1e-9 || math.Abs(step-tt.step) > 1e-9 {
			t.Errorf("scale(%v) = %v, %v; want %v, %v", tt.max, top, step, tt.top, tt.step)
		}
	}
}

func TestChartCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4200: "-4,200"} {
		if got := chartCount(n); got != want {
			t.Errorf("chartCount(%d) = %q, want %q", n, got, want)
		}
	}
}
