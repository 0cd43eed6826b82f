package web

import (
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

// svgWriter builds a chart's markup. A chart has hundreds of marks (a bar
// per day and series, a point per day), so it appends to one buffer
// rather than going through fmt.
type svgWriter struct{ b []byte }

// raw writes markup as it is.
func (w *svgWriter) raw(parts ...string) {
	for _, p := range parts {
		w.b = append(w.b, p...)
	}
}

// text writes text, escaped.
func (w *svgWriter) text(s string) { w.b = append(w.b, chartEscape(s)...) }

// num writes a coordinate (as chartNum).
func (w *svgWriter) num(v float64) { w.b = strconv.AppendFloat(w.b, math.Round(v*10)/10, 'f', -1, 64) }

// int writes a whole number.
func (w *svgWriter) int(n int) { w.b = strconv.AppendInt(w.b, int64(n), 10) }

// attr writes ` name="value"`, the value a coordinate.
func (w *svgWriter) attr(name string, v float64) {
	w.raw(" ", name, `="`)
	w.num(v)
	w.b = append(w.b, '"')
}

// title writes the <title> of a mark: "label · series: value".
func (w *svgWriter) title(label, series, value string) {
	w.raw("<title>")
	w.text(label)
	w.raw(" · ")
	w.text(series)
	w.raw(": ")
	w.text(value)
	w.raw("</title>")
}

func (w *svgWriter) html() template.HTML { return template.HTML(w.b) }

// open writes the <svg> element with its title and description.
func (c chart) open(w *svgWriter, height int) {
	id := chartEscape(c.ID)
	w.raw(`<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="`, id, `" viewBox="0 0 `)
	w.int(chartWidth)
	w.raw(" ")
	w.int(height)
	w.raw(`" role="img" aria-labelledby="`, id, "-title ", id, `-desc" focusable="false">`)
	w.raw(`<title id="`, id, `-title">`)
	w.text(c.Title)
	w.raw(`</title><desc id="`, id, `-desc">`)
	w.text(c.Desc)
	w.raw(`</desc>`)
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
func (c chart) grid(w *svgWriter, top, step float64, y func(float64) float64) {
	w.raw(`<g class="chart-grid" aria-hidden="true">`)
	for v := 0.0; v <= top+step/2; v += step {
		yy := chartNum(y(v))
		w.raw(`<line x1="`)
		w.int(chartLeft)
		w.raw(`" x2="`)
		w.int(chartWidth - chartRight)
		w.raw(`" y1="`, yy, `" y2="`, yy, `"></line><text x="`)
		w.int(chartLeft - 6)
		w.raw(`" y="`, yy, `" text-anchor="end" dominant-baseline="middle">`)
		w.text(c.format(v))
		w.raw(`</text>`)
	}
	w.raw(`</g>`)
}

// xLabels writes the category labels under a chart of n bands, skipping
// some when there are many.
func (c chart) xLabels(w *svgWriter, band float64) {
	every := max(1, (len(c.Labels)+chartMaxXLabels-1)/chartMaxXLabels)
	w.raw(`<g class="chart-axis" aria-hidden="true">`)
	for i, l := range c.Labels {
		if i%every != 0 {
			continue
		}
		w.raw(`<text`)
		w.attr("x", chartLeft+(float64(i)+0.5)*band)
		w.raw(` y="`)
		w.int(chartHeight - 8)
		w.raw(`" text-anchor="middle">`)
		w.text(l)
		w.raw(`</text>`)
	}
	w.raw(`</g>`)
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

	w := &svgWriter{b: make([]byte, 0, 1024+n*len(c.Series)*128)}
	c.open(w, chartHeight)
	c.grid(w, top, step, y)
	w.raw(`<g class="chart-marks">`)
	classes := make([]string, len(c.Series))
	for j, s := range c.Series {
		classes[j] = chartEscape(s.Class)
	}
	for i, label := range c.Labels {
		base := 0.0
		x := chartLeft + float64(i)*band + (band-barW)/2
		for j, s := range c.Series {
			v := s.Values[i]
			if math.IsNaN(v) || v <= 0 {
				continue
			}
			y0, y1 := y(base), y(base+v)
			w.raw(`<rect class="chart-bar `, classes[j], `"`)
			w.attr("x", x)
			w.attr("y", y1)
			w.attr("width", barW)
			w.attr("height", math.Max(y0-y1, 0.5))
			w.raw(`>`)
			w.title(label, s.Name, c.format(v))
			w.raw(`</rect>`)
			base += v
		}
	}
	w.raw(`</g>`)
	c.xLabels(w, band)
	w.raw(`</svg>`)
	return w.html()
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

	w := &svgWriter{b: make([]byte, 0, 1024+n*len(c.Series)*128)}
	c.open(w, chartHeight)
	c.grid(w, top, step, y)
	w.raw(`<g class="chart-marks">`)
	for _, s := range c.Series {
		class := "chart-line " + s.Class
		if s.Dashed {
			class += " chart-dashed"
		}
		// The path: M (move) where a segment starts, L (line) after it,
		// each command followed by a space (the last one dropped).
		path := len(w.b)
		for i, v := range s.Values[:n] {
			if math.IsNaN(v) {
				continue
			}
			if len(w.b) == path {
				w.raw(`<path class="`, chartEscape(class), `" d="`)
			}
			if i == 0 || math.IsNaN(s.Values[i-1]) {
				w.raw("M")
			} else {
				w.raw("L")
			}
			w.num(x(i))
			w.raw(" ")
			w.num(y(v))
			w.raw(" ")
		}
		if len(w.b) > path {
			w.b = w.b[:len(w.b)-1]
			w.raw(`"></path>`)
		}
		dotClass := chartEscape(s.Class)
		for i, v := range s.Values[:n] {
			if math.IsNaN(v) {
				continue
			}
			w.raw(`<circle class="chart-dot `, dotClass, `"`)
			w.attr("cx", x(i))
			w.attr("cy", y(v))
			w.raw(` r="3">`)
			w.title(c.Labels[i], s.Name, c.format(v))
			w.raw(`</circle>`)
		}
	}
	w.raw(`</g>`)
	c.xLabels(w, band)
	w.raw(`</svg>`)
	return w.html()
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
	w := &svgWriter{b: make([]byte, 0, 1024+n*len(c.Series)*160)}
	c.open(w, height)
	w.raw(`<g class="chart-marks">`)
	for i, label := range c.Labels {
		rowY := float64(chartTop + i*chartRowHeight)
		mid := chartNum(rowY + chartRowHeight/2)
		short := label
		if utf8.RuneCountInString(short) > chartLabelLength {
			short = string([]rune(short)[:chartLabelLength-1]) + "…"
		}
		w.raw(`<text class="chart-label" x="`)
		w.int(chartLabelWidth - 8)
		w.raw(`" y="`, mid, `" text-anchor="end" dominant-baseline="middle"><title>`)
		w.text(label)
		w.raw(`</title>`)
		w.text(short)
		w.raw(`</text>`)
		x := float64(chartLabelWidth)
		for _, s := range c.Series {
			v := s.Values[i]
			if math.IsNaN(v) || v <= 0 {
				continue
			}
			bw := math.Max(v/top*plotW, 0.5)
			w.raw(`<rect class="chart-bar `, chartEscape(s.Class), `"`)
			w.attr("x", x)
			w.attr("y", rowY+4)
			w.attr("width", bw)
			w.raw(` height="`)
			w.int(chartRowHeight - 8)
			w.raw(`">`)
			w.title(label, s.Name, c.format(v))
			w.raw(`</rect>`)
			x += bw
		}
		w.raw(`<text class="chart-value"`)
		w.attr("x", x+6)
		w.raw(` y="`, mid, `" dominant-baseline="middle">`)
		w.text(c.format(totals[i]))
		w.raw(`</text>`)
	}
	w.raw(`</g></svg>`)
	return w.html()
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
