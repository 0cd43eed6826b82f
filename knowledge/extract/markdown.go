package extract

import (
	"regexp"
	"strings"
	"unicode"
)

// This file writes Markdown for the extractors and reads what little the
// package needs of Markdown and plain text.

// normalizeText turns CRLF and CR line ends into LF.
func normalizeText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

func isBlank(s string) bool {
	return strings.TrimFunc(s, unicode.IsSpace) == ""
}

// markdownDocument is a Markdown file as it is, its title from front
// matter or its first level-1 heading.
func markdownDocument(text string) *Document {
	text = normalizeText(text)
	return &Document{ContentType: ContentTypeMarkdown, Title: markdownTitle(text), Text: text}
}

var (
	atxH1     = regexp.MustCompile(`^ {0,3}#[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$`)
	fenceLine = regexp.MustCompile("^ {0,3}(`{3,}|~{3,})")
)

// markdownTitle is a YAML front matter "title:" or else the first ATX
// level-1 heading outside code fences.
func markdownTitle(text string) string {
	lines := strings.Split(text, "\n")
	if len(lines) > 0 && strings.TrimRight(lines[0], " \t") == "---" {
		for i := 1; i < len(lines); i++ {
			l := strings.TrimRight(lines[i], " \t")
			if l == "---" || l == "..." {
				lines = lines[i+1:]
				break
			}
			if v, ok := strings.CutPrefix(l, "title:"); ok {
				if v = strings.Trim(strings.TrimSpace(v), `"'`); v != "" {
					return v
				}
			}
		}
	}
	fence := ""
	for _, l := range lines {
		if m := fenceLine.FindStringSubmatch(l); m != nil {
			if fence == "" {
				fence = m[1]
			} else if strings.HasPrefix(m[1], fence) {
				fence = ""
			}
			continue
		}
		if fence != "" {
			continue
		}
		if m := atxH1.FindStringSubmatch(l); m != nil && strings.TrimSpace(m[1]) != "" {
			return strings.TrimSpace(m[1])
		}
	}
	return ""
}

// collapseSpace turns every run of white space (non-breaking spaces too)
// into one space, trimming the ends.
func collapseSpace(s string) string {
	return strings.Join(strings.FieldsFunc(s, isSpace), " ")
}

func isSpace(r rune) bool { return unicode.IsSpace(r) || r == '\u00a0' }

var (
	listBlock     = regexp.MustCompile(`^(?:[-+*]|\d{1,9}[.)]) `)
	closingHashes = regexp.MustCompile(`(^|[ \t])#+$`)
	blockStart    = regexp.MustCompile(`^(#{1,6}(?:[ \t]|$)|>|[-+*][ \t]|\d{1,9}[.)](?:[ \t]|$)|` + "```|~~~" + `|=+[ \t]*$|-+[ \t]*$)`)
)

// escapeLine backslash-escapes the start of a line of prose that Markdown
// would read as a heading, quote, list item, fence or setext underline.
func escapeLine(line string) string {
	if blockStart.MatchString(line) {
		if i := strings.IndexFunc(line, func(r rune) bool { return r < '0' || r > '9' }); i > 0 {
			return line[:i] + `\` + line[i:] // "1." becomes "1\."
		}
		return `\` + line
	}
	return line
}

// paragraph renders prose: each line trimmed and escaped, empty lines
// dropped.
func paragraph(s string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = collapseSpace(l); l != "" {
			out = append(out, escapeLine(l))
		}
	}
	return strings.Join(out, "\n")
}

// heading renders a heading of level 1 to 6 on one line; "" for no text.
func heading(level int, text string) string {
	text = collapseSpace(text)
	if text == "" {
		return ""
	}
	level = max(1, min(level, 6))
	if closingHashes.MatchString(text) {
		text += " #" // keep a trailing " #" from reading as a closing sequence
	}
	return strings.Repeat("#", level) + " " + text
}

// codeBlock fences code with a fence longer than any run of backticks in
// it. Trailing blank lines go; indentation stays.
func codeBlock(code, lang string) string {
	code = strings.TrimRight(normalizeText(code), " \t\n")
	for strings.HasPrefix(code, "\n") {
		code = code[1:]
	}
	if strings.TrimSpace(code) == "" {
		return ""
	}
	longest, run := 0, 0
	for _, r := range code {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", max(3, longest+1))
	lang = strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("+-_#.", r) {
			return r
		}
		return -1
	}, lang)
	return fence + lang + "\n" + code + "\n" + fence
}

// table renders rows as a Markdown pipe table, the first row as its
// header; short rows are padded. Cells are single lines.
func table(rows [][]string) string {
	cols := 0
	for _, r := range rows {
		cols = max(cols, len(r))
	}
	if cols == 0 {
		return ""
	}
	var sb strings.Builder
	line := func(cells []string) {
		sb.WriteString("|")
		for i := range cols {
			c := ""
			if i < len(cells) {
				c = tableCell(cells[i])
			}
			sb.WriteString(" " + c + " |")
		}
		sb.WriteString("\n")
	}
	line(rows[0])
	sb.WriteString("|" + strings.Repeat(" --- |", cols) + "\n")
	for _, r := range rows[1:] {
		line(r)
	}
	return strings.TrimSuffix(sb.String(), "\n")
}

func tableCell(s string) string {
	s = collapseSpace(s)
	return strings.ReplaceAll(s, "|", `\|`)
}

// blankRows reports whether every cell of every row is empty.
func blankRows(rows [][]string) bool {
	for _, r := range rows {
		for _, c := range r {
			if strings.TrimSpace(c) != "" {
				return false
			}
		}
	}
	return true
}

// indent prefixes the first line of s with first and the others with rest
// (blank lines stay blank).
func indent(s, first, rest string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		switch {
		case i == 0:
			lines[i] = first + l
		case l == "":
		default:
			lines[i] = rest + l
		}
	}
	return strings.Join(lines, "\n")
}

// quote prefixes every line of s with "> ".
func quote(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l == "" {
			lines[i] = ">"
		} else {
			lines[i] = "> " + l
		}
	}
	return strings.Join(lines, "\n")
}

// joinBlocks joins non-empty blocks with blank lines.
func joinBlocks(blocks []string) string {
	out := blocks[:0:0]
	for _, b := range blocks {
		if strings.TrimSpace(b) != "" {
			out = append(out, b)
		}
	}
	return strings.Join(out, "\n\n")
}

// firstHeading is the text of the first heading line of Markdown md.
func firstHeading(md string) string {
	fence := ""
	for l := range strings.SplitSeq(md, "\n") {
		if m := fenceLine.FindStringSubmatch(l); m != nil {
			if fence == "" {
				fence = m[1]
			} else if strings.HasPrefix(m[1], fence) {
				fence = ""
			}
			continue
		}
		if fence != "" || !strings.HasPrefix(l, "#") {
			continue
		}
		t := strings.TrimLeft(l, "#")
		if len(l)-len(t) <= 6 && strings.HasPrefix(t, " ") {
			t = strings.TrimSuffix(strings.TrimSpace(t), " #")
			return strings.TrimSpace(t)
		}
	}
	return ""
}
