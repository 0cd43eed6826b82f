package extractive

import (
	"regexp"
	"strings"
	"unicode"
)

// blockKind is the Markdown structure of a block.
type blockKind int

const (
	kindParagraph blockKind = iota // also thematic breaks and anything else
	kindHeading                    // ATX or setext heading
	kindList                       // one list item with its continuation and nested items
	kindQuote                      // a blockquote
	kindTable                      // a table: header, delimiter row, body rows
	kindFence                      // a fenced code block, always closed
	kindIndented                   // an indented code block
)

// block is a unit of a passage quoted whole or not at all, unless it has
// to be shortened.
type block struct {
	kind  blockKind
	lines []string // as written, without trailing white space
	gap   bool     // a blank line separates it from the block before
	head  int      // tables: lines of header and delimiter row; 0 for rows cut from a table
}

var (
	fenceRE   = regexp.MustCompile("^([ \t]*)(`{3,}|~{3,})(.*)$")
	atxRE     = regexp.MustCompile(`^ {0,3}#{1,6}(?:[ \t]+|$)`)
	setextRE  = regexp.MustCompile(`^ {0,3}(?:=+|-+)[ \t]*$`)
	breakRE   = regexp.MustCompile(`^ {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$`)
	listRE    = regexp.MustCompile(`^[ \t]*(?:[-*+]|\d{1,9}[.)])(?:[ \t]+|$)`)
	quoteRE   = regexp.MustCompile(`^ {0,3}>[ \t]?`)
	delimRowE = regexp.MustCompile(`^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$`)
)

// indentOf is the width of the leading white space of line, tabs counting
// to the next multiple of four.
func indentOf(line string) int {
	n := 0
	for _, c := range line {
		switch c {
		case ' ':
			n++
		case '\t':
			n += 4 - n%4
		default:
			return n
		}
	}
	return n
}

// fenceOf returns the fence of a line opening a fenced code block at any
// indentation.
func fenceOf(line string) (string, bool) {
	m := fenceRE.FindStringSubmatch(line)
	if m == nil || (m[2][0] == '`' && strings.Contains(m[3], "`")) {
		return "", false
	}
	return m[2], true
}

// closesFence reports whether line closes a block opened with fence.
func closesFence(line, fence string) bool {
	t := strings.TrimLeft(line, " \t")
	return strings.HasPrefix(t, fence) && strings.Trim(t, fence[:1]) == ""
}

// fenceEnd returns the index after the line closing the fence opened at
// lines[i], or len(lines) if it is never closed.
func fenceEnd(lines []string, i int, fence string) int {
	for j := i + 1; j < len(lines); j++ {
		if closesFence(lines[j], fence) {
			return j + 1
		}
	}
	return len(lines)
}

func isTableStart(lines []string, i int) bool {
	return i+1 < len(lines) && strings.Contains(lines[i], "|") &&
		strings.Contains(lines[i+1], "|") && delimRowE.MatchString(lines[i+1])
}

func isTableRow(line string) bool { return strings.HasPrefix(strings.TrimLeft(line, " \t"), "|") }

// startsBlock reports whether lines[i] interrupts a paragraph.
func startsBlock(lines []string, i int) bool {
	line := lines[i]
	if _, ok := fenceOf(line); ok && indentOf(line) < 4 {
		return true
	}
	if indentOf(line) >= 4 {
		return false
	}
	return atxRE.MatchString(line) || quoteRE.MatchString(line) || breakRE.MatchString(line) ||
		listRE.MatchString(line) || isTableStart(lines, i)
}

// parseBlocks splits Markdown text into blocks.
func parseBlocks(text string) []block {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRightFunc(l, unicode.IsSpace)
	}
	var out []block
	gap := false
	for i := 0; i < len(lines); {
		if lines[i] == "" {
			gap = true
			i++
			continue
		}
		b, end := scanBlock(lines, i)
		for len(b.lines) > 1 && b.lines[len(b.lines)-1] == "" {
			b.lines = b.lines[:len(b.lines)-1]
		}
		b.gap = gap && len(out) > 0
		out = append(out, b)
		gap = false
		i = end
	}
	return out
}

// scanBlock reads the block starting at the non-blank line lines[i] and
// returns it with the index of the line after it.
func scanBlock(lines []string, i int) (block, int) {
	line := lines[i]
	indent := indentOf(line)
	fence, isFence := fenceOf(line)
	switch {
	case isFence && indent < 4:
		end := fenceEnd(lines, i, fence)
		b := block{kind: kindFence, lines: lines[i:end:end]}
		if end == len(lines) && (end == i+1 || !closesFence(lines[end-1], fence)) {
			b.lines = append(b.lines, strings.Repeat(fence[:1], len(fence))) // close it
		}
		return b, end
	case indent >= 4:
		end := i + 1
		for j := i + 1; j < len(lines) && (lines[j] == "" || indentOf(lines[j]) >= 4); j++ {
			if lines[j] != "" {
				end = j + 1
			}
		}
		return block{kind: kindIndented, lines: lines[i:end]}, end
	case atxRE.MatchString(line):
		return block{kind: kindHeading, lines: lines[i : i+1]}, i + 1
	case isTableStart(lines, i):
		end := i + 2
		for end < len(lines) && lines[end] != "" && strings.Contains(lines[end], "|") {
			end++
		}
		return block{kind: kindTable, lines: lines[i:end], head: 2}, end
	case isTableRow(line): // rows of a table whose header is in another passage
		end := i + 1
		for end < len(lines) && isTableRow(lines[end]) {
			end++
		}
		return block{kind: kindTable, lines: lines[i:end]}, end
	case quoteRE.MatchString(line):
		end := i + 1
		for end < len(lines) && lines[end] != "" && (quoteRE.MatchString(lines[end]) || !startsBlock(lines, end)) {
			end++
		}
		return block{kind: kindQuote, lines: lines[i:end]}, end
	case breakRE.MatchString(line):
		return block{kind: kindParagraph, lines: lines[i : i+1]}, i + 1
	case listRE.MatchString(line):
		end := listItemEnd(lines, i)
		return block{kind: kindList, lines: lines[i:end]}, end
	}
	end := i + 1
	for ; end < len(lines) && lines[end] != ""; end++ {
		if setextRE.MatchString(lines[end]) {
			return block{kind: kindHeading, lines: lines[i : end+1]}, end + 1
		}
		if startsBlock(lines, end) {
			break
		}
	}
	return block{kind: kindParagraph, lines: lines[i:end]}, end
}

// listItemEnd returns the index of the line after the list item starting at
// lines[i]: its lazy and indented continuation lines, nested items and
// code, up to the next item at its level or a block that is not part of it.
func listItemEnd(lines []string, i int) int {
	indent := indentOf(lines[i])
	marker := strings.TrimLeft(listRE.FindString(lines[i]), " \t")
	content := min(indent+len(marker), indent+2)
	end := i + 1
	for end < len(lines) {
		line := lines[end]
		if line == "" { // continue after blank lines only with indented text
			next := end
			for next < len(lines) && lines[next] == "" {
				next++
			}
			if next == len(lines) || indentOf(lines[next]) < content {
				return end
			}
			end = next
			continue
		}
		ind := indentOf(line)
		switch {
		case ind <= indent && listRE.MatchString(line):
			return end // the next item
		case ind > indent:
			if fence, ok := fenceOf(line); ok {
				end = fenceEnd(lines, end, fence)
				continue
			}
		case lines[end-1] == "" || startsBlock(lines, end):
			return end // not a lazy continuation
		}
		end++
	}
	return end
}

// contentBlocks returns the blocks of a passage without its leading
// headings, which the [n] line shows already. A passage of headings alone
// keeps their text.
func contentBlocks(text string) []block {
	blocks := parseBlocks(text)
	for i, b := range blocks {
		if b.kind != kindHeading {
			blocks = blocks[i:]
			blocks[0].gap = false
			return blocks
		}
	}
	var out []block
	for _, b := range blocks {
		_, body := b.prose()
		if body != "" {
			out = append(out, block{kind: kindParagraph, lines: []string{body}, gap: len(out) > 0})
		}
	}
	return out
}

// prose returns the block as a prefix to keep ("- ", "> ", "## ") and its
// text collapsed onto one line, for clipping.
func (b block) prose() (prefix, body string) {
	lines := append([]string(nil), b.lines...)
	switch b.kind {
	case kindList:
		m := listRE.FindString(lines[0])
		lines[0] = lines[0][len(m):]
		prefix = strings.TrimRight(m, " \t") + " "
	case kindQuote:
		for i, l := range lines {
			lines[i] = l[len(quoteRE.FindString(l)):]
		}
		prefix = "> "
	case kindHeading:
		if m := atxRE.FindString(lines[0]); m != "" {
			lines[0] = strings.TrimRight(lines[0][len(m):], "# \t")
			prefix = strings.TrimSpace(m) + " "
		} else { // setext: drop the underline
			lines = lines[:len(lines)-1]
		}
	}
	return prefix, strings.Join(strings.Fields(strings.Join(lines, " ")), " ")
}
