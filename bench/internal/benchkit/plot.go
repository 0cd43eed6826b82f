package benchkit

import (
	"cmp"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// LineChart is a line chart drawn as a standalone SVG: no script, no external
// style, a <title> and a <desc> that screen readers announce (the desc
// should say what the chart shows in words), labelled axes, and series
// told apart by dash pattern as well as colour.
type LineChart struct {
	Title  string
	Desc   string
	XLabel string
	YLabel string
	XLog   bool    // logarithmic x axis (values must be positive)
	YMin   float64 // the y axis starts here (0 unless set otherwise) ...
	YMax   float64 // ... and ends here; 0: from the data
	YPct   bool    // y values are fractions, labelled as percentages
	Series []Series
}

// Series is one line of a LineChart.
type Series struct {
	Name string
	X, Y []float64
}

// Colours. Text, axes and outlines are the design system's Deep Indigo
// on white (15:1). Lines are Deep Indigo and the Okabe–Ito colours, which
// colour-blind readers tell apart, with the orange darkened so that every
// line has at least 3:1 against the white background; they differ by dash
// pattern too. Bars are filled with the design system's Deep Indigo, Soft
// Azure and Accent Lime (then the line colours) and outlined in Deep
// Indigo, so that every bar's edge has 15:1 whatever its fill.
const (
	inkColor  = "#23224A" // --text, Deep Indigo
	gridColor = "#D5D9E0"
	minorGrid = "#EBEEF2"
	refColor  = "#D55E00" // reference lines (targets): Okabe–Ito vermillion, 3.9:1
)

// Line styles, in the order of the series.
var (
	chartColors = []string{inkColor, "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#8F5F00"}
	chartDashes = []string{"", "6 3", "2 3", "8 3 2 3", "1 2", "10 4"}
	barColors   = []string{inkColor, "#5BC6E8", "#B6E74B", "#0072B2", "#CC79A7", "#F5E9DD"}
)

// Chart geometry, in pixels.
const (
	chartW, chartH                       = 760, 420
	padLeft, padRight, padTop, padBottom = 70, 210, 46, 56
	plotW, plotH                         = chartW - padLeft - padRight, chartH - padTop - padBottom
)

// CDF is the empirical cumulative distribution of values: x the sorted
// values, y the share of values at or below each. At most maxPoints
// points are kept (evenly spaced ranks, and always the last).
func CDF(values []float64, maxPoints int) (xs, ys []float64) {
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
func (c LineChart) SVG() (string, error) {
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
	svgHeader(&b, chartW, chartH, c.Title, c.Desc)
	b.WriteString(`<g aria-hidden="true">` + "\n")
	// On a log axis of more than three decades only the powers of ten
	// are labelled; the 2s and 5s are lighter lines.
	labelAll := !c.XLog || math.Log10(xticks[len(xticks)-1]/xticks[0]) <= 3.01
	for _, v := range xticks {
		if !labelAll && !isPowerOfTen(v) {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", px(v), padTop, px(v), padTop+plotH, minorGrid)
			continue
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", px(v), padTop, px(v), padTop+plotH, gridColor)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px(v), padTop+plotH+16, formatTick(v))
	}
	for _, v := range yticks {
		label := formatTick(v)
		if c.YPct {
			label = formatTick(v*100) + "%"
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`+"\n", padLeft, py(v), padLeft+plotW, py(v), gridColor)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padLeft-6, py(v)+4, label)
	}
	b.WriteString("</g>\n")
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="%s"/>`+"\n", padLeft, padTop, plotW, plotH, inkColor)
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

// svgHeader starts a standalone SVG of w × h pixels whose accessible name
// and description are title and desc (role="img", aria-labelledby), on a
// white background, with the title written on top.
func svgHeader(b *strings.Builder, w, h int, title, desc string) {
	esc := html.EscapeString
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-labelledby="title desc" font-family="sans-serif" font-size="12" fill="%s">`+"\n",
		w, h, w, h, inkColor)
	fmt.Fprintf(b, "<title id=\"title\">%s</title>\n<desc id=\"desc\">%s</desc>\n", esc(title), esc(desc))
	fmt.Fprintf(b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", w, h)
	fmt.Fprintf(b, `<text x="16" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", esc(title))
}

// BarChart is a horizontal bar chart drawn as a standalone SVG, with the
// same accessibility as LineChart: one row per category, top to bottom,
// one bar per series in each row, each bar labelled with its value, and
// reference lines (targets) across the rows.
type BarChart struct {
	Title      string
	Desc       string   // what the chart shows, in words, with its figures
	XLabel     string   // the value axis
	Categories []string // the rows
	Series     []BarSeries
	Lines      []RefLine
	// Format writes a bar's value label; default: 3 significant digits.
	Format func(float64) string
	// Missing is written in place of a bar whose value is NaN; default "–".
	Missing string
}

// BarSeries is one bar per category; NaN for a category without a value.
type BarSeries struct {
	Name   string
	Values []float64
}

// RefLine is a labelled vertical line at Value on the value axis.
type RefLine struct {
	Name  string
	Value float64
}

// Bar chart geometry, in pixels.
const (
	barH, barGap           = 16, 12 // bar height; space between rows
	barTop, barBottom      = 74, 52 // above the first row (title, legend, line labels); below the last (ticks, axis label)
	barRight               = 90     // right of the plot, for the value labels
	charWidth              = 6.6    // of a 12 px sans-serif character, about
	barLeftMin, barLeftMax = 90, 340
)

// FormatValue writes v with about three significant digits.
func FormatValue(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100 || a == 0:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 2, 64)
}

// SVG draws the chart. It fails when there is nothing to draw, a series
// does not have a value per category, or a value is negative.
func (c BarChart) SVG() (string, error) {
	if len(c.Categories) == 0 || len(c.Series) == 0 {
		return "", fmt.Errorf("chart %q: no data", c.Title)
	}
	hi := 0.0
	values := 0
	for _, s := range c.Series {
		if len(s.Values) != len(c.Categories) {
			return "", fmt.Errorf("chart %q: series %q has %d values for %d categories", c.Title, s.Name, len(s.Values), len(c.Categories))
		}
		for _, v := range s.Values {
			switch {
			case math.IsNaN(v):
				continue
			case v < 0 || math.IsInf(v, 0):
				return "", fmt.Errorf("chart %q: series %q has the value %v", c.Title, s.Name, v)
			}
			hi = max(hi, v)
			values++
		}
	}
	if values == 0 {
		return "", fmt.Errorf("chart %q: no data", c.Title)
	}
	for _, l := range c.Lines {
		hi = max(hi, l.Value)
	}
	if hi == 0 {
		hi = 1
	}
	format := c.Format
	if format == nil {
		format = FormatValue
	}
	missing := cmp.Or(c.Missing, "–")
	longest := 0
	for _, cat := range c.Categories {
		longest = max(longest, len([]rune(cat)))
	}
	left := min(max(int(float64(longest)*charWidth)+24, barLeftMin), barLeftMax)
	w := chartW
	pw := w - left - barRight
	rowH := len(c.Series)*barH + barGap
	ph := len(c.Categories) * rowH
	h := barTop + ph + barBottom
	ticks := niceTicks(0, hi, 6)
	x1 := ticks[len(ticks)-1]
	px := func(v float64) float64 { return float64(left) + float64(pw)*v/x1 }

	esc := html.EscapeString
	var b strings.Builder
	svgHeader(&b, w, h, c.Title, c.Desc)
	// The legend, under the title.
	lx := 16
	for i, s := range c.Series {
		fmt.Fprintf(&b, `<rect x="%d" y="37" width="12" height="12" fill="%s" stroke="%s"/>`+"\n", lx, barColors[i%len(barColors)], inkColor)
		fmt.Fprintf(&b, `<text x="%d" y="47">%s</text>`+"\n", lx+20, esc(s.Name))
		lx += 20 + int(float64(len([]rune(s.Name)))*charWidth) + 24
	}
	for _, l := range c.Lines {
		fmt.Fprintf(&b, `<line x1="%d" y1="43" x2="%d" y2="43" stroke="%s" stroke-width="2" stroke-dasharray="6 3"/>`+"\n", lx, lx+24, refColor)
		fmt.Fprintf(&b, `<text x="%d" y="47">%s</text>`+"\n", lx+30, esc(l.Name))
		lx += 30 + int(float64(len([]rune(l.Name)))*charWidth) + 24
	}
	b.WriteString(`<g aria-hidden="true">` + "\n")
	for _, v := range ticks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", px(v), barTop, px(v), barTop+ph, gridColor)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px(v), barTop+ph+16, formatTick(v))
	}
	b.WriteString("</g>\n")
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", left+pw/2, h-14, esc(c.XLabel))
	var labels strings.Builder
	for i, cat := range c.Categories {
		y := barTop + i*rowH + barGap/2
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+len(c.Series)*barH/2+4, esc(cat))
		for j, s := range c.Series {
			by := y + j*barH
			v := s.Values[i]
			if math.IsNaN(v) {
				fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", left+6, by+barH-4, esc(missing))
				continue
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s" stroke="%s"><title>%s</title></rect>`+"\n",
				left, by+1, px(v)-float64(left), barH-2, barColors[j%len(barColors)], inkColor, esc(fmt.Sprintf("%s, %s: %s", cat, s.Name, format(v))))
			// Drawn last, with a white halo, over any reference line.
			fmt.Fprintf(&labels, `<text x="%.1f" y="%d" stroke="#fff" stroke-width="3" paint-order="stroke">%s</text>`+"\n", px(v)+4, by+barH-4, esc(format(v)))
		}
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`+"\n", left, barTop, left, barTop+ph, inkColor)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`+"\n", left, barTop+ph, left+pw, barTop+ph, inkColor)
	for _, l := range c.Lines {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="6 3"><title>%s</title></line>`+"\n",
			px(l.Value), barTop-6, px(l.Value), barTop+ph, refColor, esc(l.Name))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px(l.Value), barTop-10, formatTick(l.Value))
	}
	b.WriteString(labels.String())
	b.WriteString("</svg>\n")
	return b.String(), nil
}

// Plot is a chart that draws itself as SVG.
type Plot interface{ SVG() (string, error) }

// WritePlot draws p into the file path (its directory created when
// missing) and returns the Markdown image that shows it from the document
// doc: ![alt](path relative to doc's directory).
func WritePlot(doc, path, alt string, p Plot) (string, error) {
	svg, err := p.SVG()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(svg), 0o644); err != nil {
		return "", err
	}
	rel, err := filepath.Rel(filepath.Dir(doc), path)
	if err != nil {
		rel = path
	}
	return fmt.Sprintf("![%s](%s)", alt, filepath.ToSlash(rel)), nil
}
