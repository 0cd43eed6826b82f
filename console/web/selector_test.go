package web

import (
	"testing"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"
)

// Page tests select elements with CSS selectors (goquery, which uses
// cascadia): mustDoc parses a response body; selectAll and selectOne
// work on an already parsed node.

// mustDoc parses an HTML body for goquery.
func mustDoc(tb testing.TB, body []byte) *goquery.Document {
	tb.Helper()
	return goquery.NewDocumentFromNode(MustParseHTML(tb, body))
}

// selectAll returns the elements under n that match sel.
func selectAll(tb testing.TB, n *html.Node, sel string) []*html.Node {
	tb.Helper()
	return goquery.NewDocumentFromNode(n).Find(sel).Nodes
}

// selectOne returns the one element under n that matches sel; the test
// fails unless there is exactly one.
func selectOne(tb testing.TB, n *html.Node, sel string) *html.Node {
	tb.Helper()
	found := selectAll(tb, n, sel)
	if len(found) != 1 {
		tb.Fatalf("selector %q matched %d elements, want 1", sel, len(found))
	}
	return found[0]
}
