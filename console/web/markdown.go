package web

import (
	"bytes"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

// markdown renders answers for the Playground. goldmark leaves raw HTML and
// dangerous link schemes (javascript:, data:) out by default, so model output
// cannot inject markup into the page.
var markdown = goldmark.New(goldmark.WithExtensions(extension.GFM))

// renderMarkdown returns the HTML of a Markdown answer ("" if it cannot be rendered).
func renderMarkdown(src string) string {
	var buf bytes.Buffer
	if err := markdown.Convert([]byte(src), &buf); err != nil {
		return ""
	}
	return buf.String()
}
