package knowledge

import (
	"strings"

	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/text"
)

// Markdown cuts a Markdown document by its structure: a new section starts
// at every heading, and a section's blocks (paragraphs, lists, quotes, code,
// tables) are packed into chunks as written, the heading line first. A
// heading with nothing under it is prefixed to a deeper heading that
// follows, or else dropped (unless headings are all the document has). A fenced code block is split
// (on lines, each piece fenced again) only when it alone exceeds the chunk
// size. Each chunk carries its heading path. The title is the front matter's
// title, else the first level-1 heading, else the file name.
func (c Chunker) Markdown(source string, content []byte) Parsed {
	c = c.normalized()
	src := normalizeNewlines(content)
	fmTitle, body := frontMatter(src)
	b := []byte(body)
	doc := parser.NewParser(
		parser.WithBlockParsers(parser.DefaultBlockParsers()...),
		parser.WithInlineParsers(parser.DefaultInlineParsers()...),
		parser.WithParagraphTransformers(parser.DefaultParagraphTransformers()...),
	).Parse(text.NewReader(b))

	var nodes []ast.Node
	for n := doc.FirstChild(); n != nil; n = n.NextSibling() {
		nodes = append(nodes, n)
	}
	// A top-level block runs from the start of its first line to the start
	// of the next block, so markers, fences and indentation stay as written.
	starts := make([]int, len(nodes))
	for i, n := range nodes {
		starts[i] = lineStart(body, blockPos(n, body))
	}

	p := Parsed{Title: fmTitle}
	var (
		cur      section
		stack    []heading
		carried  string // headings of empty sections, prefixed to the next one
		carriedL int    // level of the last carried heading
	)
	var dropped []string // headings of empty sections not carried
	flush := func(nextLevel int) {
		switch {
		case len(cur.blocks) > 0:
			c.pack(&p, cur)
		case cur.heading == "":
		case nextLevel > stack[len(stack)-1].level:
			carried, carriedL = cur.heading, stack[len(stack)-1].level
		default:
			dropped = append(dropped, cur.heading)
		}
	}
	for i, n := range nodes {
		end := len(body)
		if i+1 < len(nodes) {
			end = starts[i+1]
		}
		raw := trimBlankLines(body[starts[i]:end])
		if strings.TrimSpace(raw) == "" {
			continue
		}
		switch n := n.(type) {
		case *ast.Heading:
			title := inlineText(n, b)
			if p.Title == "" && n.Level == 1 && title != "" {
				p.Title = title
			}
			flush(n.Level)
			for len(stack) > 0 && stack[len(stack)-1].level >= n.Level {
				stack = stack[:len(stack)-1]
			}
			if title == "" {
				title = strings.TrimSpace(strings.Trim(strings.TrimSpace(raw), "#"))
			}
			stack = append(stack, heading{level: n.Level, text: title})
			path := make([]string, len(stack))
			for j, h := range stack {
				path[j] = h.text
			}
			if carried != "" && carriedL < n.Level {
				raw = carried + "\n\n" + raw
			}
			carried = ""
			cur = section{path: path, heading: raw}
		case *ast.FencedCodeBlock:
			first, _, _ := strings.Cut(raw, "\n")
			cur.blocks = append(cur.blocks, block{text: raw, code: true, fence: first})
		case *ast.CodeBlock:
			cur.blocks = append(cur.blocks, block{text: raw, code: true})
		case *ast.ThematicBreak:
			// a visual separator: nothing to search or quote
		case *ast.HTMLBlock:
			if n.HTMLBlockType == ast.HTMLBlockType2 {
				continue // an HTML comment: invisible when the page is read
			}
			cur.blocks = append(cur.blocks, block{text: raw})
		default:
			cur.blocks = append(cur.blocks, block{text: raw})
		}
	}
	flush(0)
	if len(p.Chunks) == 0 && len(dropped) > 0 {
		// Headings only: they are all the text there is.
		c.pack(&p, section{blocks: []block{{text: strings.Join(dropped, "\n\n")}}})
	}
	if p.Title == "" {
		p.Title = titleFromSource(source)
	}
	for i := range p.Chunks {
		p.Chunks[i].Title = p.Title
	}
	return p
}

type heading struct {
	level int
	text  string
}

// blockPos is where a block starts in src, or the end of src when the
// parser did not record it.
func blockPos(n ast.Node, src string) int {
	if pos := n.Pos(); pos >= 0 && pos <= len(src) {
		return pos
	}
	if l := n.Lines(); l != nil && l.Len() > 0 {
		return l.At(0).Start
	}
	return len(src)
}

// lineStart is the offset of the start of the line holding offset i.
func lineStart(s string, i int) int {
	return strings.LastIndexByte(s[:i], '\n') + 1
}

// inlineText is the plain text of a heading: the text of its inline nodes
// without Markdown markup, white space collapsed.
func inlineText(n ast.Node, src []byte) string {
	var sb strings.Builder
	_ = ast.Walk(n, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.Text:
			sb.Write(n.Segment.Value(src))
			if n.SoftLineBreak() || n.HardLineBreak() {
				sb.WriteByte(' ')
			}
		case *ast.String:
			sb.Write(n.Value)
		case *ast.AutoLink:
			sb.Write(n.Label(src))
		case *ast.RawHTML:
			return ast.WalkSkipChildren, nil
		}
		return ast.WalkContinue, nil
	})
	return strings.Join(strings.Fields(sb.String()), " ")
}

// frontMatter splits a leading YAML front matter block ("---" lines) from
// src and returns its title, if any, and the rest of the document.
func frontMatter(src string) (title, body string) {
	if !strings.HasPrefix(src, "---\n") {
		return "", src
	}
	rest := src[len("---\n"):]
	offset := 0
	for offset <= len(rest) {
		line, after, found := strings.Cut(rest[offset:], "\n")
		if l := strings.TrimRight(line, " \t"); l == "---" || l == "..." {
			return yamlTitle(rest[:offset]), after
		}
		if !found {
			break
		}
		offset += len(line) + 1
	}
	return "", src
}

// yamlTitle reads a top-level "title:" scalar from YAML front matter.
func yamlTitle(yaml string) string {
	for line := range strings.SplitSeq(yaml, "\n") {
		v, ok := strings.CutPrefix(line, "title:")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		} else if i := strings.Index(v, " #"); i >= 0 {
			v = strings.TrimSpace(v[:i])
		}
		if v != "" && v != "|" && v != ">" {
			return v
		}
	}
	return ""
}
