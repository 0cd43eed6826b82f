package web

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// rgba is a colour with straight alpha, channels 0..255 and alpha 0..1.
type rgba struct{ r, g, b, a float64 }

var rgbaRE = regexp.MustCompile(`^rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*(?:,\s*([\d.]+)\s*)?\)$`)

func parseColor(s string) (rgba, error) {
	s = strings.TrimSpace(s)
	if hex, ok := strings.CutPrefix(s, "#"); ok {
		if len(hex) == 3 {
			hex = string([]byte{hex[0], hex[0], hex[1], hex[1], hex[2], hex[2]})
		}
		if len(hex) != 6 {
			return rgba{}, fmt.Errorf("colour %q: want #rgb or #rrggbb", s)
		}
		v, err := strconv.ParseUint(hex, 16, 32)
		if err != nil {
			return rgba{}, fmt.Errorf("colour %q: %w", s, err)
		}
		return rgba{float64(v >> 16 & 0xff), float64(v >> 8 & 0xff), float64(v & 0xff), 1}, nil
	}
	m := rgbaRE.FindStringSubmatch(s)
	if m == nil {
		return rgba{}, fmt.Errorf("colour %q: want #rrggbb or rgba(r, g, b, a)", s)
	}
	c := rgba{a: 1}
	c.r, _ = strconv.ParseFloat(m[1], 64)
	c.g, _ = strconv.ParseFloat(m[2], 64)
	c.b, _ = strconv.ParseFloat(m[3], 64)
	if m[4] != "" {
		c.a, _ = strconv.ParseFloat(m[4], 64)
	}
	return c, nil
}

// over composites a translucent colour over an opaque one.
func (c rgba) over(base rgba) rgba {
	mix := func(x, y float64) float64 { return x*c.a + y*(1-c.a) }
	return rgba{mix(c.r, base.r), mix(c.g, base.g), mix(c.b, base.b), 1}
}

// luminance is WCAG 2.x relative luminance.
func (c rgba) luminance() float64 {
	lin := func(v float64) float64 {
		v /= 255
		if v <= 0.04045 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(c.r) + 0.7152*lin(c.g) + 0.0722*lin(c.b)
}

// contrast is the WCAG 2.x contrast ratio of two opaque colours.
func contrast(a, b rgba) float64 {
	la, lb := a.luminance(), b.luminance()
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

var tokenRE = regexp.MustCompile(`(?m)^\s*--([a-z0-9-]+):\s*light-dark\((.+)\);\s*$`)

// themeTokens parses the colour tokens of app.css: one map per theme.
func themeTokens(tb testing.TB) (light, dark map[string]rgba) {
	tb.Helper()
	css, err := staticFS.ReadFile("static/app.css")
	if err != nil {
		tb.Fatal(err)
	}
	light, dark = map[string]rgba{}, map[string]rgba{}
	for _, m := range tokenRE.FindAllStringSubmatch(string(css), -1) {
		args := splitTopLevel(m[2])
		if len(args) != 2 {
			tb.Fatalf("--%s: light-dark() needs two colours, got %q", m[1], m[2])
		}
		l, err := parseColor(args[0])
		if err != nil {
			tb.Fatalf("--%s light: %v", m[1], err)
		}
		d, err := parseColor(args[1])
		if err != nil {
			tb.Fatalf("--%s dark: %v", m[1], err)
		}
		light[m[1]], dark[m[1]] = l, d
	}
	if len(light) < 10 {
		tb.Fatalf("found only %d colour tokens in app.css", len(light))
	}
	return light, dark
}

// splitTopLevel splits at commas outside parentheses.
func splitTopLevel(s string) []string {
	var (
		out   []string
		depth int
		start int
	)
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// TestContrast checks every text pair the components use against WCAG AA
// (4.5:1 for text, 3:1 for focus rings and input borders) in both themes.
func TestContrast(t *testing.T) {
	light, dark := themeTokens(t)
	pairs := []struct {
		fg, bg string
		over   string // the opaque colour under a translucent bg
		min    float64
	}{
		{fg: "text", bg: "bg", min: 4.5},
		{fg: "text", bg: "bg-secondary", min: 4.5},
		{fg: "text", bg: "surface", min: 4.5},
		{fg: "text", bg: "hover", over: "bg-secondary", min: 4.5},
		{fg: "text", bg: "hover", over: "bg", min: 4.5},
		{fg: "text-muted", bg: "bg", min: 4.5},
		{fg: "text-muted", bg: "bg-secondary", min: 4.5},
		{fg: "text-muted", bg: "surface", min: 4.5},
		{fg: "text-muted", bg: "bubble-ai", min: 4.5},
		{fg: "link", bg: "bg", min: 4.5},
		{fg: "link", bg: "bg-secondary", min: 4.5},
		{fg: "link", bg: "bubble-ai", min: 4.5},
		{fg: "on-primary", bg: "primary", min: 4.5},
		{fg: "on-secondary", bg: "secondary", min: 4.5},
		{fg: "on-accent", bg: "accent", min: 4.5},
		{fg: "on-bubble-user", bg: "bubble-user", min: 4.5},
		{fg: "on-bubble-ai", bg: "bubble-ai", min: 4.5},
		{fg: "danger", bg: "danger-bg", min: 4.5},
		{fg: "danger", bg: "bg", min: 4.5},
		{fg: "focus", bg: "bg", min: 3},
		{fg: "focus", bg: "bg-secondary", min: 3},
		{fg: "focus", bg: "surface", min: 3},
		{fg: "border", bg: "bg", min: 3},
		{fg: "border", bg: "bg-secondary", min: 3},
	}
	for _, theme := range []struct {
		name   string
		tokens map[string]rgba
	}{{"light", light}, {"dark", dark}} {
		for _, p := range pairs {
			t.Run(theme.name+"/"+p.fg+" on "+p.bg, func(t *testing.T) {
				fg, ok1 := theme.tokens[p.fg]
				bg, ok2 := theme.tokens[p.bg]
				if !ok1 || !ok2 {
					t.Fatalf("token missing: --%s %v, --%s %v", p.fg, ok1, p.bg, ok2)
				}
				if p.over != "" {
					bg = bg.over(theme.tokens[p.over])
				}
				if bg.a != 1 || fg.a != 1 {
					t.Fatalf("translucent colour in a text pair: say what it is drawn over")
				}
				if got := contrast(fg, bg); got < p.min {
					t.Fatalf("contrast %.2f:1, want at least %.1f:1", got, p.min)
				}
			})
		}
	}
	// The seed's muted slate fails AA; it must not come back.
	seed, _ := parseColor("#7A869A")
	if light["text-muted"] == seed || dark["text-muted"] == seed {
		t.Fatal("--text-muted is the seed's #7A869A, which fails AA")
	}
}

// TestContrastFormula pins the formula to the design system's table.
func TestContrastFormula(t *testing.T) {
	tests := []struct {
		fg, bg string
		want   float64
	}{
		{"#23224A", "#F7F9FB", 14.2},
		{"#7A869A", "#F7F9FB", 3.49},
		{"#7A869A", "#23224A", 4.08},
		{"#23224A", "#5BC6E8", 7.64},
		{"#000", "#fff", 21},
	}
	for _, tt := range tests {
		fg, _ := parseColor(tt.fg)
		bg, _ := parseColor(tt.bg)
		if got := contrast(fg, bg); math.Abs(got-tt.want) > 0.01*tt.want {
			t.Errorf("contrast(%s, %s) = %.2f, want %.2f", tt.fg, tt.bg, got, tt.want)
		}
	}
}

// TestTokensUsed checks that the stylesheet uses only defined variables and
// no literal colours outside the token block.
func TestTokensUsed(t *testing.T) {
	css, err := staticFS.ReadFile("static/app.css")
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	for _, m := range regexp.MustCompile(`--([a-z0-9-]+):`).FindAllStringSubmatch(string(css), -1) {
		defined[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`var\(--([a-z0-9-]+)\)`).FindAllStringSubmatch(string(css), -1) {
		if !defined[m[1]] {
			t.Errorf("var(--%s) is not defined", m[1])
		}
	}
	_, rules, ok := strings.Cut(string(css), ":root[data-theme=\"dark\"]")
	if !ok {
		t.Fatal("no dark theme selector")
	}
	if lit := regexp.MustCompile(`#[0-9a-fA-F]{3,6}\b|rgba?\(`).FindString(rules); lit != "" {
		t.Errorf("literal colour %q outside the tokens", lit)
	}
}
