package web

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Charts are drawn on the server as inline SVG: no script, no chart
// library, nothing the CSP has to allow, and a page that works without
// JavaScript. Every chart has a <title> and a <desc> (role="img"), each
// mark a <title> with its value, and the page shows the same numbers in a
// table. Colours come from CSS classes (chart-s1 … chart-s5, see
// static/analytics.css), so the charts follow the light and dark themes.
// All text is escaped here: the output is trusted as template.HTML.

// chartSeries is one series of a chart.
type chartSeries struct {
	Name   string
	Class  string    // chart-s1 … chart-s5: the colour
	Values []float64 // one per label; NaN is no value (a gap in a line)
	Dashed bool      // lines: dashed, so series differ by more than colour
}

// chart is the data of one chart.
type chart struct {
	ID     string   // unique on the page; the title and desc ids derive from it
	Title  string   // what the chart shows
	Desc   string   // a sentence summing it up, for screen readers
	Labels []string // the categories: days along x, or names down y
	Series []chartSeries
	// Format writes a value for ticks and tooltips; default: an integer.
	Format func(float64) string
	// Max fixes the top of the scale (0: from the data).
	Max float64
	// Integer keeps tick steps whole (counts).
	Integer bool
}

// Chart geometry, in viewBox units (the SVG scales to its container).
const (
	chartWidth       = 720
	chartHeight      = 240
	chartLeft        = 64
	chartRight       = 12
	chartTop         = 12
	chartBottom      = 28
	chartMaxXLabels  = 8
	chartLabelWidth  = 210 // horizontal bars: the name column
	chartValueWidth  = 96  // horizontal bars: the value after the bar
	chartRowHeight   = 28
	chartLabelLength = 30 // characters of a name shown before "…"
)

// Empty reports whether the chart has nothing to draw.
func (c chart) Empty() bool {
	for _, s := range c.Series {
		for _, v := range s.Values {
			if !math.IsNaN(v) && v != 0 {
				return false
			}
		}
	}
	return true
}

func (c chart) format(v float64) string {
	if c.Format != nil {
		return c.Format(v)
	}
	return chartCount(int64(math.Round(v)))
}

// chartNum writes a coordinate.
func chartNum(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

var chartEscape = template.HTMLEscapeString

// open writes the <svg> element with its title and description.
func (c chart) open(b *strings.Builder, height int) {
	id := chartEscape(c.ID)
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="%s" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-title %s-desc" focusable="false">`,
		id, chartWidth, height, id, id)
	fmt.Fprintf(b, `<title id="%s-title">%s</title><desc id="%s-desc">%s</desc>`, id, chartEscape(c.Title), id, chartEscape(c.Desc))
}

// scale returns the top of the value axis and the step between ticks:
// 1, 2 or 5 times a power of ten, about four ticks.
func (c chart) scale(dataMax float64) (top, step float64) {
	if c.Max > 0 {
		return c.Max, c.Max / 4
	}
	if dataMax <= 0 || math.IsNaN(dataMax) {
		dataMax = 1
	}
	raw := dataMax / 4
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step = 10 * mag
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	if c.Integer && step < 1 {
		step = 1
	}
	return math.Ceil(dataMax/step-1e-9) * step, step
}

// grid writes the horizontal grid lines and their values.
func (c chart) grid(b *strings.Builder, top, step float64, y func(float64) float64) {
	b.WriteString(`<g class="chart-grid" aria-hidden="true">`)
	for v := 0.0; v <= top+step/2; v += step {
		yy := chartNum(y(v))
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%s" y2="%s"></line>`, chartLeft, chartWidth-chartRight, yy, yy)
		fmt.Fprintf(b, `<text x="%d" y="%s" text-anchor="end" dominant-baseline="middle">%s</text>`, chartLeft-6, yy, chartEscape(c.format(v)))
	}
	b.WriteString(`</g>`)
}

// xLabels writes the category labels under a chart of n bands, skipping
// some when there are many.
func (c chart) xLabels(b *strings.Builder, band float64) {
	every := max(1, (len(c.Labels)+chartMaxXLabels-1)/chartMaxXLabels)
	b.WriteString(`<g class="chart-axis" aria-hidden="true">`)
	for i, l := range c.Labels {
		if i%every != 0 {
			continue
		}
		x := chartLeft + (float64(i)+0.5)*band
		fmt.Fprintf(b, `<text x="%s" y="%d" text-anchor="middle">%s</text>`, chartNum(x), chartHeight-8, chartEscape(l))
	}
	b.WriteString(`</g>`)
}

// StackedBars draws one bar per label, its series stacked.
func (c chart) StackedBars() template.HTML {
	n := len(c.Labels)
	if n == 0 {
		return ""
	}
	totals := make([]float64, n)
	for _, s := range c.Series {
		for i, v := range s.Values[:n] {
			if !math.IsNaN(v) {
				totals[i] += v
			}
		}
	}
	top, step := c.scale(chartMax(totals))
	plotH := float64(chartHeight - chartTop - chartBottom)
	y := func(v float64) float64 { return chartTop + plotH - v/top*plotH }
	band := float64(chartWidth-chartLeft-chartRight) / float64(n)
	barW := math.Max(1, band*0.7)

	var b strings.Builder
	c.open(&b, chartHeight)
	c.grid(&b, top, step, y)
	b.WriteString(`<g class="chart-marks">`)
	for i, label := range c.Labels {
		base := 0.0
		x := chartLeft + float64(i)*band + (band-barW)/2
		for _, s := range c.Series {
			v := s.Values[i]
			if math.IsNaN(v) || v <= 0 {
				continue
			}
			y0, y1 := y(base), y(base+v)
			fmt.Fprintf(&b, `<rect class="chart-bar %s" x="%s" y="%s" width="%s" height="%s"><title>%s</title></rect>`,
				chartEscape(s.Class), chartNum(x), chartNum(y1), chartNum(barW), chartNum(math.Max(y0-y1, 0.5)),
				chartEscape(label+" · "+s.Name+": "+c.format(v)))
			base += v
		}
	}
	b.WriteString(`</g>`)
	c.xLabels(&b, band)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// Lines draws one line per series across the labels; NaN values leave gaps.
func (c chart) Lines() template.HTML {
	n := len(c.Labels)
	if n == 0 {
		return ""
	}
	dataMax := 0.0
	for _, s := range c.Series {
		dataMax = math.Max(dataMax, chartMax(s.Values[:n]))
	}
	top, step := c.scale(dataMax)
	plotH := float64(chartHeight - chartTop - chartBottom)
	y := func(v float64) float64 { return chartTop + plotH - math.Min(v, top)/top*plotH }
	band := float64(chartWidth-chartLeft-chartRight) / float64(n)
	x := func(i int) float64 { return chartLeft + (float64(i)+0.5)*band }

	var b strings.Builder
	c.open(&b, chartHeight)
	c.grid(&b, top, step, y)
	b.WriteString(`<g class="chart-marks">`)
	for _, s := range c.Series {
		var d strings.Builder
		pen := false
		for i, v := range s.Values[:n] {
			if math.IsNaN(v) {
				pen = false
				continue
			}
			cmd := "L"
			if !pen {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%s %s ", cmd, chartNum(x(i)), chartNum(y(v)))
			pen = true
		}
		class := "chart-line " + s.Class
		if s.Dashed {
			class += " chart-dashed"
		}
		if path := strings.TrimSpace(d.String()); path != "" {
			fmt.Fprintf(&b, `<path class="%s" d="%s"></path>`, chartEscape(class), path)
		}
		for i, v := range s.Values[:n] {
			if math.IsNaN(v) {
				continue
			}
			fmt.Fprintf(&b, `<circle class="chart-dot %s" cx="%s" cy="%s" r="3"><title>%s</title></circle>`,
				chartEscape(s.Class), chartNum(x(i)), chartNum(y(v)), chartEscape(c.Labels[i]+" · "+s.Name+": "+c.format(v)))
		}
	}
	b.WriteString(`</g>`)
	c.xLabels(&b, band)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// HorizontalBars draws one row per label, its series stacked to the right,
// with the label before the bar and the total after it.
func (c chart) HorizontalBars() template.HTML {
	n := len(c.Labels)
	if n == 0 {
		return ""
	}
	totals := make([]float64, n)
	for _, s := range c.Series {
		for i, v := range s.Values[:n] {
			if !math.IsNaN(v) {
				totals[i] += v
			}
		}
	}
	top := chartMax(totals)
	if top <= 0 {
		top = 1
	}
	height := chartTop*2 + n*chartRowHeight
	plotW := float64(chartWidth - chartLabelWidth - chartValueWidth)
	var b strings.Builder
	c.open(&b, height)
	b.WriteString(`<g class="chart-marks">`)
	for i, label := range c.Labels {
		rowY := float64(chartTop + i*chartRowHeight)
		mid := chartNum(rowY + chartRowHeight/2)
		short := label
		if utf8.RuneCountInString(short) > chartLabelLength {
			short = string([]rune(short)[:chartLabelLength-1]) + "…"
		}
		fmt.Fprintf(&b, `<text class="chart-label" x="%d" y="%s" text-anchor="end" dominant-baseline="middle"><title>%s</title>%s</text>`,
			chartLabelWidth-8, mid, chartEscape(label), chartEscape(short))
		x := float64(chartLabelWidth)
		for _, s := range c.Series {
			v := s.Values[i]
			if math.IsNaN(v) || v <= 0 {
				continue
			}
			w := math.Max(v/top*plotW, 0.5)
			fmt.Fprintf(&b, `<rect class="chart-bar %s" x="%s" y="%s" width="%s" height="%d"><title>%s</title></rect>`,
				chartEscape(s.Class), chartNum(x), chartNum(rowY+4), chartNum(w), chartRowHeight-8,
				chartEscape(label+" · "+s.Name+": "+c.format(v)))
			x += w
		}
		fmt.Fprintf(&b, `<text class="chart-value" x="%s" y="%s" dominant-baseline="middle">%s</text>`,
			chartNum(x+6), mid, chartEscape(c.format(totals[i])))
	}
	b.WriteString(`</g></svg>`)
	return template.HTML(b.String())
}

// chartMax is the largest value that is not NaN (0 for none).
func chartMax(vs []float64) float64 {
	m := 0.0
	for _, v := range vs {
		if !math.IsNaN(v) && v > m {
			m = v
		}
	}
	return m
}

// chartCount writes an integer with thousands separators: 1,234,567.
func chartCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
