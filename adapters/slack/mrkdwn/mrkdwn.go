// Package mrkdwn converts the Markdown that language models write into Slack
// mrkdwn (https://api.slack.com/reference/surfaces/formatting).
//
// The output is safe to post as message text: & < > in the input are escaped,
// so a model cannot produce Slack control sequences such as <!here> or
// <@U123>; the only < in the output start links to http, https or mailto URLs,
// and the only > end them or mark quotes. Bare @channel, @here and @everyone
// outside code get a zero-width space after the @. Raw HTML is shown as text.
package mrkdwn

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	extast "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// zwsp is the zero-width space used to defuse mentions and nested fences.
const zwsp = "\u200b"

var md = goldmark.New(goldmark.WithExtensions(
	extension.Strikethrough,
	extension.Table,
	extension.Linkify,
	extension.TaskList,
))

// Convert converts Markdown to Slack mrkdwn.
//
// Emphasis becomes *bold*, _italic_ and ~strike~; headings become bold lines;
// links become <url|text>; lists use "•" and "1." with nested lists indented
// by four spaces; code blocks and tables become ``` blocks (tables as aligned
// plain text), with the language dropped.
func Convert(markdown string) string {
	src := []byte(strings.ToValidUTF8(markdown, "\uFFFD"))
	doc := md.Parser().Parse(text.NewReader(src))
	r := &renderer{src: src}
	lines := r.children(doc, false)
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.text
	}
	return strings.Trim(strings.Join(out, "\n"), "\n")
}

// Escape escapes &, < and > as Slack requires in all text.
func Escape(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	return escaper.Replace(s)
}

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// line is one output line. Lines of a ``` block are never indented.
type line struct {
	text string
	code bool
}

type renderer struct {
	src []byte
	// open styles, so that nested emphasis of the same kind adds no markers
	bold, italic, strike int
}

// children renders the blocks under n, separated by a blank line unless
// tight.
func (r *renderer) children(n ast.Node, tight bool) []line {
	var out []line
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		ls := r.block(c)
		if len(ls) == 0 {
			continue
		}
		if len(out) > 0 && !tight {
			out = append(out, line{})
		}
		out = append(out, ls...)
	}
	return out
}

func (r *renderer) block(n ast.Node) []line {
	switch n := n.(type) {
	case *ast.Paragraph, *ast.TextBlock:
		return textLines(r.inlines(n))
	case *ast.Heading:
		r.bold++
		s := strings.TrimSpace(strings.ReplaceAll(r.inlines(n), "\n", " "))
		r.bold--
		if s == "" {
			return nil
		}
		return []line{{text: "*" + s + "*"}}
	case *ast.ThematicBreak:
		return []line{{text: "———"}}
	case *ast.CodeBlock, *ast.FencedCodeBlock:
		var b strings.Builder
		for i := 0; i < n.Lines().Len(); i++ {
			seg := n.Lines().At(i)
			b.Write(seg.Value(r.src))
		}
		return codeLines(strings.Split(strings.TrimRight(b.String(), "\n"), "\n"))
	case *ast.HTMLBlock:
		var b strings.Builder
		for i := 0; i < n.Lines().Len(); i++ {
			seg := n.Lines().At(i)
			b.Write(seg.Value(r.src))
		}
		if n.HasClosure() {
			b.Write(n.ClosureLine.Value(r.src))
		}
		return textLines(Escape(defuse(strings.TrimRight(b.String(), "\n"))))
	case *ast.Blockquote:
		inner := r.children(n, false)
		for i, l := range inner {
			if l.text == "" {
				inner[i].text = ">"
			} else {
				inner[i].text = "> " + l.text
			}
		}
		return inner
	case *ast.List:
		return r.list(n)
	case *extast.Table:
		return r.table(n)
	case *ast.LinkReferenceDefinition:
		return nil
	}
	if n.Type() == ast.TypeBlock {
		return r.children(n, false)
	}
	return textLines(r.inline(n))
}

func textLines(s string) []line {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var out []line
	for l := range strings.SplitSeq(s, "\n") {
		out = append(out, line{text: l})
	}
	return out
}

// codeLines wraps verbatim lines in a ``` block.
func codeLines(lines []string) []line {
	out := []line{{text: "```", code: true}}
	for _, l := range lines {
		out = append(out, line{text: Escape(breakFences(l)), code: true})
	}
	return append(out, line{text: "```", code: true})
}

// breakFences puts a zero-width space into runs of three or more backticks,
// which would otherwise end a Slack code block.
func breakFences(s string) string {
	if !strings.Contains(s, "```") {
		return s
	}
	var b strings.Builder
	run := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '`' {
			run = 0
		} else if run++; run == 3 {
			b.WriteString(zwsp)
			run = 1
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func (r *renderer) list(l *ast.List) []line {
	var out []line
	num := l.Start
	for item := l.FirstChild(); item != nil; item = item.NextSibling() {
		marker := "•"
		if l.IsOrdered() {
			marker = strconv.Itoa(num) + "."
			num++
		}
		if len(out) > 0 && !l.IsTight {
			out = append(out, line{})
		}
		body := r.children(item, l.IsTight)
		if len(body) == 0 || body[0].code {
			out = append(out, line{text: marker})
		} else {
			out = append(out, line{text: marker + " " + body[0].text})
			body = body[1:]
		}
		for _, b := range body {
			if !b.code && b.text != "" {
				b.text = "    " + b.text
			}
			out = append(out, b)
		}
	}
	return out
}

func (r *renderer) table(t *extast.Table) []line {
	var rows [][]string
	for row := t.FirstChild(); row != nil; row = row.NextSibling() {
		var cells []string
		for c := row.FirstChild(); c != nil; c = c.NextSibling() {
			cells = append(cells, strings.TrimSpace(r.plain(c)))
		}
		rows = append(rows, cells)
	}
	var widths []int
	for _, cells := range rows {
		for i, c := range cells {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	format := func(cells []string) string {
		parts := make([]string, len(widths))
		for i, w := range widths {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			pad := w - utf8.RuneCountInString(c)
			align := extast.AlignNone
			if i < len(t.Alignments) {
				align = t.Alignments[i]
			}
			switch align {
			case extast.AlignRight:
				c = strings.Repeat(" ", pad) + c
			case extast.AlignCenter:
				c = strings.Repeat(" ", pad/2) + c + strings.Repeat(" ", pad-pad/2)
			default:
				c += strings.Repeat(" ", pad)
			}
			parts[i] = c
		}
		return strings.TrimRight(strings.Join(parts, " | "), " ")
	}
	var lines []string
	for i, cells := range rows {
		lines = append(lines, format(cells))
		if i == 0 {
			rule := make([]string, len(widths))
			for j, w := range widths {
				rule[j] = strings.Repeat("-", w)
			}
			lines = append(lines, strings.Join(rule, "-+-"))
		}
	}
	return codeLines(lines)
}

// inlines renders the inline children of n.
func (r *renderer) inlines(n ast.Node) string {
	var b strings.Builder
	for c := n.FirstChild(); c != nil; {
		if !isText(c) {
			b.WriteString(r.inline(c))
			c = c.NextSibling()
			continue
		}
		// Runs of text are joined first so that a mention split across
		// nodes is still found.
		var t strings.Builder
		for ; c != nil && isText(c); c = c.NextSibling() {
			t.WriteString(r.text(c, "\n"))
		}
		b.WriteString(Escape(defuse(t.String())))
	}
	return b.String()
}

func isText(n ast.Node) bool {
	switch n.(type) {
	case *ast.Text, *ast.String:
		return true
	}
	return false
}

// text returns the plain text of a Text or String node, ending with br when
// the node ends with a line break.
func (r *renderer) text(n ast.Node, br string) string {
	switch n := n.(type) {
	case *ast.Text:
		v := n.Segment.Value(r.src)
		s := string(v)
		if !n.IsRaw() {
			s = unescape(v)
		}
		if n.SoftLineBreak() || n.HardLineBreak() {
			s += br
		}
		return s
	case *ast.String:
		if n.IsRaw() || n.IsCode() {
			return string(n.Value)
		}
		return unescape(n.Value)
	}
	return ""
}

func (r *renderer) inline(n ast.Node) string {
	switch n := n.(type) {
	case *ast.Emphasis:
		if n.Level >= 2 {
			return r.styled(n, &r.bold, "*")
		}
		return r.styled(n, &r.italic, "_")
	case *extast.Strikethrough:
		return r.styled(n, &r.strike, "~")
	case *ast.CodeSpan:
		s := r.codeText(n)
		if strings.TrimSpace(s) == "" {
			return Escape(s)
		}
		// A backtick would end Slack's code span; use a look-alike.
		return "`" + Escape(strings.ReplaceAll(s, "`", "ˋ")) + "`"
	case *ast.Link:
		if u, ok := slackURL(unescape(n.Destination)); ok {
			return link(u, r.label(n))
		}
		return r.inlines(n)
	case *ast.Image:
		if u, ok := slackURL(unescape(n.Destination)); ok {
			return link(u, r.label(n))
		}
		return Escape(defuse(r.label(n)))
	case *ast.AutoLink:
		u, label := string(n.URL(r.src)), string(n.Label(r.src))
		if n.AutoLinkType == ast.AutoLinkEmail && !hasPrefixFold(u, "mailto:") {
			u = "mailto:" + u
		}
		if su, ok := slackURL(u); ok {
			if label == u {
				label = ""
			}
			return link(su, label)
		}
		return Escape(defuse(label))
	case *ast.RawHTML:
		var b strings.Builder
		for i := 0; i < n.Segments.Len(); i++ {
			seg := n.Segments.At(i)
			b.Write(seg.Value(r.src))
		}
		return Escape(defuse(b.String()))
	case *extast.TaskCheckBox:
		if n.IsChecked {
			return "☑ "
		}
		return "☐ "
	case *ast.Text, *ast.String:
		return Escape(defuse(r.text(n, "\n")))
	}
	return r.inlines(n)
}

// styled wraps the children of n in marker unless the style is already open.
func (r *renderer) styled(n ast.Node, depth *int, marker string) string {
	*depth++
	s := r.inlines(n)
	*depth--
	if *depth > 0 || strings.TrimSpace(s) == "" {
		return s
	}
	return marker + s + marker
}

func (r *renderer) codeText(n ast.Node) string {
	var b strings.Builder
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		if t, ok := c.(*ast.Text); ok {
			b.Write(t.Segment.Value(r.src))
		} else {
			b.WriteString(r.plain(c))
		}
	}
	return strings.ReplaceAll(b.String(), "\n", " ")
}

// plain returns the text under n without formatting or escaping, on one line.
func (r *renderer) plain(n ast.Node) string {
	var b strings.Builder
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		switch c := c.(type) {
		case *ast.Text, *ast.String:
			b.WriteString(r.text(c, " "))
		case *ast.CodeSpan:
			b.WriteString(r.codeText(c))
		case *ast.AutoLink:
			b.Write(c.Label(r.src))
		case *ast.RawHTML:
			for i := 0; i < c.Segments.Len(); i++ {
				seg := c.Segments.At(i)
				b.Write(seg.Value(r.src))
			}
		case *extast.TaskCheckBox:
			b.WriteString(r.inline(c))
		default:
			b.WriteString(r.plain(c))
		}
	}
	return strings.ReplaceAll(b.String(), "\n", " ")
}

// label returns the text of a link or image for use inside <url|text>.
func (r *renderer) label(n ast.Node) string {
	return strings.TrimSpace(r.plain(n))
}

// link formats a Slack link; u is already encoded and label is plain text.
func link(u, label string) string {
	if label == "" {
		return "<" + u + ">"
	}
	label = strings.ReplaceAll(label, "|", "∣")
	return "<" + u + "|" + Escape(defuse(label)) + ">"
}

// slackURL returns u encoded for use in <url|text> if it is an http:// ,
// https:// or mailto: URL.
func slackURL(u string) (string, bool) {
	i := strings.IndexByte(u, ':')
	if i < 0 || i+1 == len(u) {
		return "", false
	}
	switch strings.ToLower(u[:i]) {
	case "http", "https":
		if !strings.HasPrefix(u[i+1:], "//") || len(u) == i+3 {
			return "", false
		}
	case "mailto":
	default:
		return "", false
	}
	var b strings.Builder
	for j := 0; j < len(u); j++ {
		switch c := u[j]; {
		case c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == '|' || c == '"':
			b.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(c)|0x100, 16)[1:]))
		case c == '&':
			b.WriteString("&amp;")
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// defuse puts a zero-width space after the @ of @channel, @here and
// @everyone.
func defuse(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '@')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+1])
		s = s[i+1:]
		for _, word := range []string{"channel", "here", "everyone"} {
			if hasPrefixFold(s, word) {
				b.WriteString(zwsp)
				break
			}
		}
	}
}

// unescape resolves backslash escapes and entity and numeric character
// references in Markdown text, as CommonMark does for text and URLs.
func unescape(v []byte) string {
	if !strings.ContainsAny(string(v), "\\&\x00") {
		return string(v)
	}
	var b strings.Builder
	for i := 0; i < len(v); {
		switch c := v[i]; {
		case c == '\\' && i+1 < len(v) && util.IsPunct(v[i+1]):
			b.WriteByte(v[i+1])
			i += 2
		case c == '&':
			if s, n := reference(v[i:]); n > 0 {
				b.WriteString(s)
				i += n
			} else {
				b.WriteByte(c)
				i++
			}
		case c == 0:
			b.WriteString("\uFFFD")
			i++
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// reference decodes the character reference at the start of v ("&amp;",
// "&#35;", "&#x23;") and returns it with its length, or 0 if there is none.
func reference(v []byte) (string, int) {
	end := -1
	for i := 1; i < len(v) && i < 40; i++ {
		if v[i] == ';' {
			end = i
			break
		}
	}
	if end < 2 {
		return "", 0
	}
	name := string(v[1:end])
	if name[0] != '#' {
		for _, c := range []byte(name) {
			if !util.IsAlphaNumeric(c) {
				return "", 0
			}
		}
		if e, ok := util.LookUpHTML5EntityByName(name); ok {
			return string(e.Characters), end + 1
		}
		return "", 0
	}
	digits, base, maxLen := name[1:], 10, 7
	if digits != "" && (digits[0] == 'x' || digits[0] == 'X') {
		digits, base, maxLen = digits[1:], 16, 6
	}
	if digits == "" || len(digits) > maxLen {
		return "", 0
	}
	n, err := strconv.ParseUint(digits, base, 32)
	if err != nil {
		return "", 0
	}
	if n == 0 || n > utf8.MaxRune {
		return "\uFFFD", end + 1
	}
	return string(rune(n)), end + 1
}
