package extract_test

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/convosphere/convosphere/knowledge"
	"github.com/convosphere/convosphere/knowledge/extract"
)

// The runbook fixtures were made by a real tool from testdata/runbook.md:
//
//	pandoc testdata/runbook.md -o testdata/runbook.docx     # pandoc 2.17 (Debian 12)
//	pandoc -s testdata/runbook.md -o testdata/runbook.html
//
// so the DOCX has Word's built-in styles, numbering definitions and
// tables as a word processor writes them.

const runbookBody = `# Overview

The bot answers questions in Slack and %s.

## Install

1. Download the binary.
2. Configure it:
%s- set the token
%s- set the channel
3. Start it.

- a bullet
- another bullet

## Settings

| Name | Default | Meaning |
| --- | --- | --- |
| port | 8080 | where it listens |
| timeout | 60s | per file |

` + "```\nfunc main() {\n    fmt.Println(\"hi\")\n}\n```" + `

> A quoted warning.

### Deep heading

Final paragraph with a link.`

// runbook is the text of the runbook with inline code rendered as code and
// nested list items indented by indent.
func runbook(code, indent string) string {
	return fmt.Sprintf(runbookBody, code, indent, indent)
}

func TestExtractFixtures(t *testing.T) {
	x := MustExtractor(t, extract.Config{})
	md, err := os.ReadFile("testdata/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file     string
		wantType string
		text     string
	}{
		// Word has a Title paragraph and an author line, and no inline code.
		{"runbook.docx", extract.ContentTypeDOCX, "# Runbook for the Chat Bot\n\nOps Team\n\n" + runbook("Discord", "    ")},
		// The page's title block is a page-level <header>: dropped.
		{"runbook.html", extract.ContentTypeHTML, runbook("`Discord`", "   ")},
		{"runbook.md", extract.ContentTypeMarkdown, string(md)},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			content, err := os.ReadFile("testdata/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			// Named without an extension: the content decides.
			doc := MustExtract(t, x, strings.TrimSuffix(tt.file, path.Ext(tt.file)), content)
			if doc.ContentType != tt.wantType || doc.Title != "Runbook for the Chat Bot" {
				t.Errorf("type %q title %q", doc.ContentType, doc.Title)
			}
			if doc.Text != tt.text {
				t.Errorf("text:\n%s\n--- want:\n%s", doc.Text, tt.text)
			}

			// The knowledge chunker cuts the text by its headings.
			if tt.wantType == extract.ContentTypeMarkdown {
				return
			}
			parsed := knowledge.Chunker{Size: 200}.Markdown(tt.file, []byte(doc.Text))
			var paths []string
			for _, c := range parsed.Chunks {
				paths = append(paths, strings.Join(c.HeadingPath, " > "))
			}
			paths = slices.Compact(paths)
			want := []string{"Overview", "Overview > Install", "Overview > Settings", "Overview > Settings > Deep heading"}
			if tt.wantType == extract.ContentTypeDOCX {
				want = append([]string{"Runbook for the Chat Bot"}, want...)
			}
			if !slices.Equal(paths, want) {
				t.Errorf("chunk heading paths %q; want %q", paths, want)
			}
		})
	}
}
