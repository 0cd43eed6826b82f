package main

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strconv"
	"strings"
)

// chart is a line chart drawn as a standalone SVG: no script, no external
// style, a <title> and a <desc> that screen readers announce (the desc
// should say what the chart shows in words), labelled axes, and series
// told apart by dash pattern as well as colour.
type chart struct {
	Title  string
	Desc   string
	XLabel string
	YLabel string
	XLog   bool    // logarithmic x axis (values must be positive)
	YMin   float64 // the y axis starts here (0 unless set otherwise) ...
	YMax   float64 // ... and ends here; 0: from the data
	YPct   bool    // y values are fractions, labelled as percentages
	Series []series
}

// series is one line of a chart.
type series struct {
	Name string
	X, Y []float64
}

// Line styles, in the order of the series.
var (
	chartColors = []string{"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9"} // Okabe–Ito
	chartDashes = []string{"", "6 3", "2 3", "8 3 2 3", "1 2", "10 4"}
)

// Chart geometry, in pixels.
const (
	chartW, chartH                       = 760, 420
	padLeft, padRight, padTop, padBottom = 70, 210, 46, 56
	plotW, plotH                         = chartW - padLeft - padRight, chartH - padTop - padBottom
)

// cdf is the empirical cumulative distribution of values: x the sorted
// values, y the share of values at or below each. At most maxPoints
// points are kept (evenly spaced ranks, and always the last).
func cdf(values []float64, maxPoints int) (xs, ys []float64) {
	if len(values) == 0 {
		return nil, nil
	}
	s := slices.Clone(values)
	slices.Sort(s)
	step := 1
	if maxPoints > 1 && len(s) > maxPoints {
		step = (len(s) + maxPoints - 2) / (maxPoints - 1)
	}
	for i := 0; i < len(s); i += step {
		xs = append(xs, s[i])
		ys = append(ys, float64(i+1)/float64(len(s)))
	}
	if (len(s)-1)%step != 0 {
		xs = append(xs, s[len(s)-1])
		ys = append(ys, 1)
	}
	return xs, ys
}

// niceTicks are about n round values (1, 2 or 5 × 10^k apart) covering
// [lo, hi], from the first multiple of the step at or below lo.
func niceTicks(lo, hi float64, n int) []float64 {
	if !(hi > lo) || n < 1 {
		return []float64{lo}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Floor(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, math.Round(v/step)*step)
	}
	if out[len(out)-1] < hi {
		out = append(out, out[len(out)-1]+step)
	}
	return out
}

// logTicks are the 1, 2 and 5 × 10^k values from the largest at or
// below lo to the smallest at or above hi.
func logTicks(lo, hi float64) []float64 {
	var out []float64
	for e := math.Floor(math.Log10(lo)); ; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			next := nextLogTick(v)
			switch {
			case next <= lo*(1+1e-9): // below the first tick
			case len(out) > 0 && out[len(out)-1] >= hi*(1-1e-9):
				return out
			default:
				out = append(out, v)
			}
		}
	}
}

// nextLogTick is the 1-2-5 value after v (a 1-2-5 value).
func nextLogTick(v float64) float64 {
	e := math.Floor(math.Log10(v) + 1e-9)
	switch m := math.Round(v / math.Pow(10, e)); m {
	case 1:
		return 2 * math.Pow(10, e)
	case 2:
		return 5 * math.Pow(10, e)
	}
	return math.Pow(10, e+1)
}

// isPowerOfTen reports whether v is 10^k.
func isPowerOfTen(v float64) bool {
	l := math.Log10(v)
	return math.Abs(l-math.Round(l)) < 1e-9
}

// formatTick writes a tick value without needless digits.
func formatTick(v float64) string {
	if v == 0 {
		return "0"
	}
	if math.Abs(v) >= 1e5 || math.Abs(v) < 1e-3 {
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// SVG draws the chart. It fails when there is nothing to draw or a log
// axis gets a value that is not positive.
func (c chart) SVG() (string, error) {
	xlo, xhi := math.Inf(1), math.Inf(-1)
	ylo, yhi := c.YMin, c.YMax
	points := 0
	for _, s := range c.Series {
		if len(s.X) != len(s.Y) {
			return "", fmt.Errorf("chart %q: series %q has %d x and %d y values", c.Title, s.Name, len(s.X), len(s.Y))
		}
		for i, x := range s.X {
			if c.XLog && !(x > 0) {
				return "", fmt.Errorf("chart %q: series %q has x = %v on a log axis", c.Title, s.Name, x)
			}
			xlo, xhi = min(xlo, x), max(xhi, x)
			if c.YMax == 0 {
				yhi = max(yhi, s.Y[i])
			}
			ylo = min(ylo, s.Y[i])
			points++
		}
	}
	if points == 0 {
		return "", fmt.Errorf("chart %q: no data", c.Title)
	}
	var xticks []float64
	if c.XLog {
		xticks = logTicks(xlo, xhi)
		if len(xticks) == 1 {
			xticks = append(xticks, nextLogTick(xticks[0]))
		}
	} else {
		if xhi == xlo {
			xhi = xlo + 1
		}
		xticks = niceTicks(min(xlo, 0), xhi, 8)
	}
	if yhi <= ylo {
		yhi = ylo + 1
	}
	var yticks []float64
	if c.YPct {
		yticks = []float64{0, 0.25, 0.5, 0.75, 0.9, 1}
		ylo, yhi = 0, 1
	} else {
		yticks = niceTicks(ylo, yhi, 6)
		ylo, yhi = yticks[0], yticks[len(yticks)-1]
	}
	x0, x1 := xticks[0], xticks[len(xticks)-1]
	px := func(v float64) float64 {
		if c.XLog {
			return padLeft + plotW*(math.Log10(v)-math.Log10(x0))/(math.Log10(x1)-math.Log10(x0))
		}
		return padLeft + plotW*(v-x0)/(x1-x0)
	}
	py := func(v float64) float64 { return padTop + plotH*(1-(v-ylo)/(yhi-ylo)) }

	esc := html.EscapeString
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-labelledby="title desc" font-family="sans-serif" font-size="12">`+"\n",
		chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, "<title id=\"title\">%s</title>\n<desc id=\"desc\">%s</desc>\n", esc(c.Title), esc(c.Desc))
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", padLeft, esc(c.Title))
	b.WriteString(`<g aria-hidden="true">` + "\n")
	// On a log axis of more than three decades only the powers of ten
	// are labelled; the 2s and 5s are lighter lines.
	labelAll := !c.XLog || math.Log10(xticks[len(xticks)-1]/xticks[0]) <= 3.01
	for _, v := range xticks {
		if !labelAll && !isPowerOfTen(v) {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>`+"\n", px(v), padTop, px(v), padTop+plotH)
			continue
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", px(v), padTop, px(v), padTop+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px(v), padTop+plotH+16, formatTick(v))
	}
	for _, v := range yticks {
		label := formatTick(v)
		if c.YPct {
			label = formatTick(v*100) + "%"
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", padLeft, py(v), padLeft+plotW, py(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padLeft-6, py(v)+4, label)
	}
	b.WriteString("</g>\n")
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", padLeft, padTop, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", padLeft+plotW/2, chartH-14, esc(c.XLabel))
	fmt.Fprintf(&b, `<text x="16" y="%d" text-anchor="middle" transform="rotate(-90 16 %d)">%s</text>`+"\n", padTop+plotH/2, padTop+plotH/2, esc(c.YLabel))
	for i, s := range c.Series {
		color, dash := chartColors[i%len(chartColors)], chartDashes[i%len(chartDashes)]
		dashAttr := ""
		if dash != "" {
			dashAttr = fmt.Sprintf(` stroke-dasharray="%s"`, dash)
		}
		pts := make([]string, 0, len(s.X))
		for j := range s.X {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.X[j]), py(s.Y[j])))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"><title>%s</title></polyline>`+"\n",
			color, dashAttr, strings.Join(pts, " "), esc(s.Name))
		ly := padTop + 10 + i*22
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"%s/>`+"\n", padLeft+plotW+12, ly, padLeft+plotW+40, ly, color, dashAttr)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", padLeft+plotW+46, ly+4, esc(s.Name))
	}
	b.WriteString("</svg>\n")
	return b.String(), nil
}
