package knowledge

import (
	"bytes"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/convosphere/convosphere/engine"
)

// Chunk sizes used when a Chunker or Config leaves them unset.
const (
	DefaultChunkSize    = 1200 // characters (runes)
	DefaultChunkOverlap = 150  // characters (runes)
)

// Chunker cuts documents into chunks of at most Size characters (runes),
// never inside a rune. Each chunk after the first of a section starts with
// up to Overlap characters carried over from the end of the previous one,
// unless that ended in code. Text is kept as written.
type Chunker struct {
	Size    int // <= 0: DefaultChunkSize
	Overlap int // < 0 or 0: none; at most Size/2
}

// Parsed is a document as the chunker read it. Its chunks carry Title,
// HeadingPath, Position and Text; Assign fills in the rest.
type Parsed struct {
	Title  string
	Chunks []Chunk
}

// Assign sets the knowledge base, document id, source and chunk ids.
func (p *Parsed) Assign(knowledgeBase, documentID, source string) {
	for i := range p.Chunks {
		c := &p.Chunks[i]
		c.KnowledgeBase, c.DocumentID, c.Document = knowledgeBase, documentID, source
		c.ID = ChunkID(documentID, c.Position)
	}
}

// Chunk reads content of the given content type (Markdown or plain text, as
// knowledge/extract produces them).
// A document without any text is an EINVALID error.
func (c Chunker) Chunk(source, contentType string, content []byte) (Parsed, error) {
	var p Parsed
	switch contentType {
	case ContentTypeMarkdown:
		p = c.Markdown(source, content)
	case ContentTypeText:
		p = c.PlainText(source, content)
	default:
		return Parsed{}, engine.Errorf(engine.EINVALID, "Unsupported content type %q for %s: the chunker reads Markdown and plain text.", contentType, source)
	}
	if len(p.Chunks) == 0 {
		return Parsed{}, engine.Errorf(engine.EINVALID, "%s has no text to index: add some content to it.", source)
	}
	return p, nil
}

// PlainText cuts text into paragraphs (separated by blank lines) packed into
// chunks. The title is the file name without its extension.
func (c Chunker) PlainText(source string, content []byte) Parsed {
	text := normalizeNewlines(content)
	var blocks []block
	for _, para := range blankLines.Split(text, -1) {
		if para = strings.TrimRight(para, " \t\n"); strings.TrimSpace(para) != "" {
			blocks = append(blocks, block{text: trimBlankLines(para)})
		}
	}
	p := Parsed{Title: titleFromSource(source)}
	c.normalized().pack(&p, section{blocks: blocks})
	return p
}

var blankLines = regexp.MustCompile(`\n[ \t]*\n`)

// utf8BOM is the byte order mark some editors put at the start of UTF-8 files.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// normalizeNewlines drops a UTF-8 byte order mark and turns CRLF and CR
// line ends into LF.
func normalizeNewlines(content []byte) string {
	content = bytes.TrimPrefix(content, utf8BOM)
	s := strings.ReplaceAll(string(content), "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// trimBlankLines removes leading blank lines and trailing white space but
// keeps the indentation of the first line.
func trimBlankLines(s string) string {
	s = strings.TrimRight(s, " \t\n")
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 || strings.TrimSpace(s[:i]) != "" {
			return s
		}
		s = s[i+1:]
	}
}

// titleFromSource is the base name of source without its extension.
func titleFromSource(source string) string {
	base := path.Base(strings.ReplaceAll(source, `\`, "/"))
	if t := strings.TrimSuffix(base, path.Ext(base)); t != "" {
		return t
	}
	return base
}

func (c Chunker) normalized() Chunker {
	if c.Size <= 0 {
		c.Size = DefaultChunkSize
	}
	if c.Overlap < 0 {
		c.Overlap = 0
	}
	c.Overlap = min(c.Overlap, c.Size/2)
	return c
}

// block is a unit of text kept together in a chunk when it fits.
type block struct {
	text  string
	code  bool   // fenced or indented code: split on lines only, never overlapped
	fence string // for fenced code: the opening fence line
}

// section is the text under one heading.
type section struct {
	path    []string // heading path
	heading string   // the heading line(s) as written, prefixed to the first chunk
	blocks  []block
}

// piece is a unit the packer places; it is never larger than the chunk size.
type piece struct {
	text    string
	code    bool
	heading bool
	overlap bool // carried over from the previous chunk
	join    bool // continues the piece before it in the same block, as written
}

// pack cuts a section into chunks and appends them to p.
func (c Chunker) pack(p *Parsed, s section) {
	var pieces []piece
	if s.heading != "" {
		for i, t := range splitRaw(s.heading, c.Size, proseSeps) {
			pieces = append(pieces, piece{text: t, heading: true, join: i > 0})
		}
	}
	for _, b := range s.blocks {
		for _, pc := range blockPieces(b, c.Size) {
			if strings.TrimSpace(pc.text) == "" {
				continue // white space alone, possible only from odd input
			}
			pieces = append(pieces, pc)
		}
	}

	// curLen bounds the rune length of render(cur) from above (render
	// only trims), so a chunk never exceeds the size; it is kept up to
	// date as pieces are added so that packing stays linear.
	var (
		cur     []piece
		curLen  int
		content bool // cur holds more than overlap and headings
	)
	add := func(pc piece) {
		switch {
		case len(cur) == 0:
			curLen = runeLen(pc.text)
		case pc.join:
			curLen += runeLen(pc.text)
		default:
			curLen += 2 + runeLen(pc.text)
		}
		cur = append(cur, pc)
		content = content || !pc.overlap && !pc.heading
	}
	reset := func(pieces []piece) {
		cur, curLen, content = nil, 0, false
		for _, pc := range pieces {
			add(pc)
		}
	}
	fits := func(pc piece) bool {
		n := runeLen(pc.text)
		if len(cur) > 0 && !pc.join {
			n += 2
		}
		return curLen+n <= c.Size
	}
	for _, pc := range pieces {
		if !fits(pc) {
			if content {
				p.Chunks = append(p.Chunks, Chunk{
					Title:       p.Title,
					HeadingPath: s.path,
					Position:    len(p.Chunks),
					Text:        render(cur),
				})
				reset(c.overlapOf(cur, c.Size-runeLen(pc.text)-2))
			}
			// Still too big: drop carried-over text, then the heading.
			for len(cur) > 0 && !fits(pc) {
				reset(cur[1:])
			}
		}
		add(pc)
	}
	if content {
		p.Chunks = append(p.Chunks, Chunk{
			Title:       p.Title,
			HeadingPath: s.path,
			Position:    len(p.Chunks),
			Text:        render(cur),
		})
	}
}

// render joins pieces into chunk text: a piece that continues its block is
// appended as written, others start a new paragraph.
func render(pieces []piece) string {
	var segs []string
	var sb strings.Builder
	for i, pc := range pieces {
		if i > 0 && !pc.join {
			segs = append(segs, sb.String())
			sb.Reset()
		}
		sb.WriteString(pc.text)
	}
	segs = append(segs, sb.String())
	out := segs[:0]
	for _, s := range segs {
		if s = trimBlankLines(s); s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, "\n\n")
}

// overlapOf returns the text carried from the end of a finished chunk into
// the next: the trailing prose pieces of its last block that fit in budget
// runes, or when none fits the tail of the last one, cut at a sentence or
// word start; nothing after code or a heading.
func (c Chunker) overlapOf(prev []piece, budget int) []piece {
	budget = min(budget, c.Overlap)
	var out []piece
	used := 0
	for i := len(prev) - 1; i >= 0; i-- {
		pc := prev[i]
		if pc.code || pc.heading {
			break
		}
		n := runeLen(strings.TrimSpace(pc.text)) + 2
		if used+n <= budget {
			out = append(out, piece{text: pc.text, overlap: true, join: pc.join})
			used += n
			if !pc.join {
				break // a whole block: stop at block boundaries
			}
			continue
		}
		if rest := budget - 2; used == 0 && rest >= 20 {
			if t := tail(pc.text, rest); t != "" {
				out = append(out, piece{text: t, overlap: true})
			}
		}
		break
	}
	slices.Reverse(out)
	if len(out) > 0 {
		out[0].join = false
	}
	return out
}

// tail returns the end of s of at most max runes (not counting trailing
// white space), starting at a sentence start when one is in range, else at
// a word start; "" when neither is. Trailing white space is kept.
func tail(s string, max int) string {
	trimmed := strings.TrimRightFunc(s, unicode.IsSpace)
	n := runeLen(trimmed)
	if n <= max {
		return strings.TrimLeftFunc(s, unicode.IsSpace)
	}
	window := s[prefixBytes(trimmed, n-max):]
	if m := sentenceStart.FindStringIndex(window); m != nil && m[1] < len(window) {
		return window[m[1]:]
	}
	if i := strings.IndexFunc(window, unicode.IsSpace); i >= 0 {
		return strings.TrimLeftFunc(window[i:], unicode.IsSpace)
	}
	return ""
}

var sentenceStart = regexp.MustCompile(`[.!?。！？]["'”’)\]]*\s+`)

// prefixBytes is the byte length of the first n runes of s.
func prefixBytes(s string, n int) int {
	i := 0
	for n > 0 && i < len(s) {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n--
	}
	return i
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

// blockPieces turns a block into pieces of at most size runes.
func blockPieces(b block, size int) []piece {
	switch {
	case runeLen(b.text) <= size:
		return []piece{{text: b.text, code: b.code}}
	case b.code:
		var out []piece
		for _, t := range splitCode(b, size) {
			out = append(out, piece{text: t, code: true})
		}
		return out
	}
	return splitBlock(b.text, size)
}

// splitBlock cuts an oversized prose block (a paragraph, list or quote that
// may hold fenced code) into pieces of at most size runes: prose regions as
// written at line, sentence or word ends (the packer refills chunks with
// them), fenced code regions whole when they fit and split as code otherwise.
func splitBlock(text string, size int) []piece {
	var out []piece
	var prose []string
	flush := func() {
		if len(prose) > 0 {
			for i, t := range splitRaw(strings.Join(prose, "\n")+"\n", size, proseSeps) {
				out = append(out, piece{text: t, join: i > 0})
			}
			prose = nil
		}
	}
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		fence, ok := fenceOpen(lines[i])
		if !ok {
			prose = append(prose, lines[i])
			continue
		}
		flush()
		j := i + 1
		for j < len(lines) && !fenceCloses(lines[j], fence) {
			j++
		}
		j = min(j, len(lines)-1)
		code := strings.Join(lines[i:j+1], "\n")
		out = append(out, blockPieces(block{text: code, code: true, fence: lines[i]}, size)...)
		i = j
	}
	flush()
	return out
}

// fenceRE matches a code fence, possibly inside block quotes or list items.
var fenceRE = regexp.MustCompile("^[ \t>]*(?:(?:[-*+]|\\d{1,9}[.)])[ \t]+)?[ \t>]*(`{3,}|~{3,})")

// fenceOpen reports whether line opens a fenced code block, and its fence.
func fenceOpen(line string) (string, bool) {
	m := fenceRE.FindStringSubmatch(line)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// fenceCloses reports whether line closes a block opened with fence.
func fenceCloses(line, fence string) bool {
	t := strings.TrimSpace(strings.TrimLeft(line, " \t>"))
	return strings.HasPrefix(t, fence) && strings.Trim(t, fence[:1]) == ""
}

// splitCode cuts an oversized code block on line boundaries. A fenced block
// is cut into fenced pieces (each reopened and closed with the same fence)
// when the fences leave room for code.
func splitCode(b block, size int) []string {
	lines := strings.Split(b.text, "\n")
	open, closing := "", ""
	if b.fence != "" && len(lines) >= 2 {
		open = lines[0]
		lines = lines[1:]
		if fence, ok := fenceOpen(open); ok && fenceCloses(lines[len(lines)-1], fence) {
			closing = lines[len(lines)-1]
			lines = lines[:len(lines)-1]
		} else if ok {
			closing = strings.Repeat(fence[:1], len(fence))
		}
		if runeLen(open)+runeLen(closing)+2 > size/2 {
			open, closing = "", ""
			lines = strings.Split(b.text, "\n")
		}
	}
	wrap := 0
	if open != "" {
		wrap = runeLen(open) + runeLen(closing) + 2
	}
	room := size - wrap
	var out []string
	var cur []string
	curLen := -1
	flush := func() {
		if len(cur) == 0 {
			return
		}
		body := strings.Join(cur, "\n")
		if open != "" {
			body = open + "\n" + body + "\n" + closing
		}
		out = append(out, body)
		cur, curLen = nil, -1
	}
	for _, line := range lines {
		for _, part := range hardSplit(line, room) {
			n := runeLen(part)
			if curLen+1+n > room {
				flush()
			}
			cur = append(cur, part)
			curLen += 1 + n
		}
	}
	flush()
	return out
}

var proseSeps = []*regexp.Regexp{
	regexp.MustCompile(`\n+`),
	regexp.MustCompile(`[.!?。！？]["'”’)\]]*\s+`),
	regexp.MustCompile(`\s+`),
}

// splitRaw cuts text into substrings that together are exactly text, each
// at most size runes once trimmed: at line ends, then sentence ends, then
// white space, then anywhere between runes, only as finely as needed.
func splitRaw(text string, size int, seps []*regexp.Regexp) []string {
	if runeLen(trimBlankLines(text)) <= size {
		return []string{text}
	}
	if len(seps) == 0 {
		return hardSplit(text, size)
	}
	parts := cutAfter(text, seps[0])
	if len(parts) < 2 {
		return splitRaw(text, size, seps[1:])
	}
	var out []string
	for _, p := range parts {
		out = append(out, splitRaw(p, size, seps[1:])...)
	}
	return out
}

// cutAfter splits text after each match of sep.
func cutAfter(text string, sep *regexp.Regexp) []string {
	var parts []string
	last := 0
	for _, m := range sep.FindAllStringIndex(text, -1) {
		if m[0] > last { // a separator with nothing before it stays with the next part
			parts = append(parts, text[last:m[1]])
			last = m[1]
		}
	}
	if last < len(text) {
		parts = append(parts, text[last:])
	}
	return parts
}

// hardSplit cuts s into parts of at most size runes, preferring to cut
// after white space within the last fifth of a part.
func hardSplit(s string, size int) []string {
	size = max(size, 1)
	var out []string
	for s != "" {
		cut := prefixBytes(s, size)
		if cut == len(s) {
			out = append(out, s)
			break
		}
		if i := strings.LastIndexFunc(s[:cut], unicode.IsSpace); i > 0 && runeLen(s[:i]) >= size*4/5 {
			_, n := utf8.DecodeRuneInString(s[i:])
			cut = i + n
		}
		out = append(out, s[:cut])
		s = s[cut:]
	}
	return out
}
