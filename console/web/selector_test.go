package web

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// A small subset of CSS selectors for page tests (the module does not
// depend on goquery): compound selectors of a tag, #id, .class, [attr]
// and [attr=value] (value optionally quoted), joined by the descendant
// combinator (a space). "table#tools tr.tool button[data-tool-action=enable]".

type simpleSelector struct {
	tag     string
	id      string
	classes []string
	attrs   [][2]string // name, value; value "\x00" for presence only
}

var selectorPartRE = regexp.MustCompile(`^([a-z0-9]+|\*)?((?:#[\w-]+|\.[\w-]+|\[[\w-]+(?:=(?:"[^"]*"|'[^']*'|[^\]]*))?\])*)$`)
var selectorAtomRE = regexp.MustCompile(`#[\w-]+|\.[\w-]+|\[[\w-]+(?:=(?:"[^"]*"|'[^']*'|[^\]]*))?\]`)

func parseSelector(tb testing.TB, sel string) []simpleSelector {
	tb.Helper()
	var out []simpleSelector
	for _, part := range strings.Fields(sel) {
		m := selectorPartRE.FindStringSubmatch(part)
		if m == nil {
			tb.Fatalf("unsupported selector %q (part %q)", sel, part)
		}
		s := simpleSelector{tag: m[1]}
		if s.tag == "*" {
			s.tag = ""
		}
		for _, atom := range selectorAtomRE.FindAllString(m[2], -1) {
			switch atom[0] {
			case '#':
				s.id = atom[1:]
			case '.':
				s.classes = append(s.classes, atom[1:])
			case '[':
				name, val, ok := strings.Cut(atom[1:len(atom)-1], "=")
				if !ok {
					val = "\x00"
				} else if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') {
					val = val[1 : len(val)-1]
				}
				s.attrs = append(s.attrs, [2]string{name, val})
			}
		}
		out = append(out, s)
	}
	return out
}

func (s simpleSelector) matches(n *html.Node) bool {
	if n.Type != html.ElementNode || (s.tag != "" && n.Data != s.tag) {
		return false
	}
	if s.id != "" {
		if v, _ := attr(n, "id"); v != s.id {
			return false
		}
	}
	if len(s.classes) > 0 {
		v, _ := attr(n, "class")
		have := strings.Fields(v)
		for _, c := range s.classes {
			if !slices.Contains(have, c) {
				return false
			}
		}
	}
	for _, a := range s.attrs {
		v, ok := attr(n, a[0])
		if !ok || (a[1] != "\x00" && v != a[1]) {
			return false
		}
	}
	return true
}

// selectAll returns the elements under n matching the selector, in
// document order, without duplicates.
func selectAll(tb testing.TB, n *html.Node, sel string) []*html.Node {
	tb.Helper()
	chain := parseSelector(tb, sel)
	current := []*html.Node{n}
	for i, s := range chain {
		seen := map[*html.Node]bool{}
		var next []*html.Node
		for _, root := range current {
			for _, m := range findAll(root, "", s.matches) {
				if m == root && i > 0 || seen[m] {
					continue
				}
				seen[m] = true
				next = append(next, m)
			}
		}
		current = next
	}
	return current
}

// selectOne returns the single element matching the selector.
func selectOne(tb testing.TB, n *html.Node, sel string) *html.Node {
	tb.Helper()
	all := selectAll(tb, n, sel)
	if len(all) != 1 {
		tb.Fatalf("%q matches %d elements, want 1", sel, len(all))
	}
	return all[0]
}

func TestSelector(t *testing.T) {
	doc := MustParseHTML(t, []byte(`<div id="a" class="x y"><p class="x" data-k="v">one</p><span><p>two</p></span></div><p id="b">three</p>`))
	tests := []struct {
		sel  string
		want []string
	}{
		{"p", []string{"one", "two", "three"}},
		{"div p", []string{"one", "two"}},
		{"#a .x", []string{"one"}},
		{"div.x.y span p", []string{"two"}},
		{"p[data-k]", []string{"one"}},
		{"p[data-k=v]", []string{"one"}},
		{`p[data-k="w"]`, nil},
		{"p#b", []string{"three"}},
		{"div#b", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, n := range selectAll(t, doc, tt.sel) {
			got = append(got, textOf(n))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q: %q, want %q", tt.sel, got, tt.want)
		}
	}
}
