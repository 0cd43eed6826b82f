// Package textsplit splits and truncates Markdown chat answers to fit a
// platform's message size limit, counted in runes, without leaving a fenced
// code block broken across messages.
//
// A fence is a line whose first non-space characters are three or more
// backticks or tildes; it is closed by a later line of at least as many of the
// same character and nothing else. Indentation is ignored, which is more
// lenient than CommonMark but matches how models write code in list items.
package textsplit

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// minRepairLimit is the smallest limit for which Split closes and reopens
// fences; below it Split only cuts text.
const minRepairLimit = 16

// Split splits text into pieces of at most limit runes each.
//
// It cuts, in order of preference, at a blank line (or around a code block),
// at a line break, after a sentence end (". ", "! ", "? "), at a space, and
// anywhere between runes. A piece that ends inside a fenced code block gets a
// closing fence and the next piece reopens it with the same fence line; both
// count toward the limit. Whitespace at the cuts is dropped, but the
// indentation of a line starting a piece is kept when it is short.
//
// Text that fits is returned unchanged as the only piece; empty or
// whitespace-only text gives nil. A limit below 1 means no limit. Below 16,
// fences are not repaired. Invalid UTF-8 is replaced with U+FFFD.
func Split(text string, limit int) []string {
	pieces, _ := split(text, limit)
	if pieces == nil {
		return nil
	}
	out := make([]string, len(pieces))
	for i, p := range pieces {
		out[i] = p.String()
	}
	return out
}

// piece is one part of a split: a reopened fence line, text taken from the
// input, and a closing fence.
type piece struct {
	open, body, close string
}

func (p piece) String() string { return p.open + p.body + p.close }

// fence is a fenced code block, by byte offsets into the text.
type fence struct {
	openStart, openEnd   int // the opening line, without its newline
	closeStart, closeEnd int // the closing line; both len(text) if unclosed
	char                 byte
	n                    int    // length of the opening marker
	line                 string // opening line without surrounding space, e.g. "```go"
	first, last          int    // first and last non-space rune of the content, -1 if blank
	reopen               string // line reopening the fence in the next piece, "" if it cannot be repaired
	size                 int    // runes from the opening line to the closing one
}

func (f *fence) closer() string { return strings.Repeat(string(f.char), f.n) }

// marker reports whether line looks like a fence line and returns its marker
// character, marker length and info string.
func marker(line string) (c byte, n int, info string, ok bool) {
	t := strings.TrimLeftFunc(line, unicode.IsSpace)
	if len(t) < 3 || (t[0] != '`' && t[0] != '~') {
		return 0, 0, "", false
	}
	c = t[0]
	for n < len(t) && t[n] == c {
		n++
	}
	if n < 3 {
		return 0, 0, "", false
	}
	return c, n, strings.TrimSpace(t[n:]), true
}

// looksFence reports whether the line starting at offset p looks like a fence
// line.
func looksFence(t string, p int) bool {
	for p < len(t) {
		r, size := utf8.DecodeRuneInString(t[p:])
		if r == '\n' || !unicode.IsSpace(r) {
			break
		}
		p += size
	}
	return fenceRun(t[p:])
}

// fenceRun reports whether s starts with three backticks or three tildes.
func fenceRun(s string) bool {
	return len(s) >= 3 && (s[0] == '`' || s[0] == '~') && s[1] == s[0] && s[2] == s[0]
}

func isSpace(r rune) bool { return unicode.IsSpace(r) }

func notSpace(r rune) bool { return !unicode.IsSpace(r) }

// lineEnd returns the offset of the newline ending the line that contains
// offset p, or len(s).
func lineEnd(s string, p int) int {
	if i := strings.IndexByte(s[p:], '\n'); i >= 0 {
		return p + i
	}
	return len(s)
}

// scanFences finds the fenced code blocks of text in order.
func scanFences(text string) []fence {
	var fs []fence
	open := -1
	for ls := 0; ; {
		le := lineEnd(text, ls)
		line := text[ls:le]
		c, n, info, ok := marker(line)
		switch {
		case open < 0 && ok && (c == '~' || !strings.Contains(info, "`")):
			fs = append(fs, fence{openStart: ls, openEnd: le, char: c, n: n, line: strings.TrimSpace(line), first: -1, last: -1})
			open = len(fs) - 1
		case open >= 0 && ok && c == fs[open].char && n >= fs[open].n && info == "":
			fs[open].closeStart, fs[open].closeEnd = ls, le
			open = -1
		case open >= 0:
			if i := strings.IndexFunc(line, notSpace); i >= 0 {
				if fs[open].first < 0 {
					fs[open].first = ls + i
				}
				fs[open].last = ls + strings.LastIndexFunc(line, notSpace)
			}
		}
		if le == len(text) {
			break
		}
		ls = le + 1
	}
	if open >= 0 {
		fs[open].closeStart, fs[open].closeEnd = len(text), len(text)
	}
	return fs
}

// fenceAt returns the fence that a cut at offset p falls inside, if any: the
// opening line is before p and the closing line is not.
func fenceAt(fs []fence, p int) *fence {
	for i := range fs {
		if fs[i].openEnd <= p && p <= fs[i].closeStart {
			return &fs[i]
		}
	}
	return nil
}

// runeOffset returns the byte offset after the first n runes of s.
func runeOffset(s string, n int) int {
	p := 0
	for ; n > 0 && p < len(s); n-- {
		_, size := utf8.DecodeRuneInString(s[p:])
		p += size
	}
	return p
}

// Cut classes, best first.
const (
	classParagraph = iota
	classLine
	classSentence
	classSpace
	classHard
	numClasses
)

type splitter struct {
	text   string
	limit  int
	repair bool
	fences []fence
	broken bool // a cut broke a fence or a fence line
}

// split is Split that also reports whether every piece but the last is
// guaranteed to have balanced fences (the last one is as balanced as text).
func split(text string, limit int) ([]piece, bool) {
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	if strings.TrimSpace(text) == "" {
		return nil, true
	}
	if limit < 1 || utf8.RuneCountInString(text) <= limit {
		return []piece{{body: text}}, true
	}
	s := &splitter{
		text:   strings.TrimRightFunc(text, isSpace),
		limit:  limit,
		repair: limit >= minRepairLimit,
	}
	if s.repair {
		s.fences = scanFences(s.text)
		half := limit / 2
		for i := range s.fences {
			f := &s.fences[i]
			f.size = utf8.RuneCountInString(s.text[f.openStart:f.closeEnd])
			switch {
			case utf8.RuneCountInString(f.line)+2+f.n <= half:
				f.reopen = f.line
			case 2*f.n+2 <= half:
				f.reopen = f.closer()
			}
		}
	}

	var pieces []piece
	var carry *fence
	for start := s.skipSpace(0); start < len(s.text); {
		var p piece
		if carry != nil {
			p.open = carry.reopen + "\n"
		}
		end, f := s.cut(start, utf8.RuneCountInString(p.open))
		p.body = strings.TrimRightFunc(s.text[start:end], isSpace)
		if f != nil {
			p.close = "\n" + f.closer()
		}
		pieces = append(pieces, p)
		carry = f
		start = s.skipSpace(end)
	}
	return pieces, s.repair && !s.broken
}

// skipSpace returns where the piece after a cut at p starts: past the
// whitespace at p, but at the start of the line when the whitespace spans a
// line break or p is a line start, so that a short indentation survives.
func (s *splitter) skipSpace(p int) int {
	t := s.text
	q := p
	for q < len(t) {
		r, size := utf8.DecodeRuneInString(t[q:])
		if !unicode.IsSpace(r) {
			break
		}
		q += size
	}
	if q == len(t) {
		return q
	}
	if i := strings.LastIndexByte(t[p:q], '\n'); i >= 0 {
		p += i + 1
	} else if p > 0 && t[p-1] != '\n' {
		return q
	}
	if utf8.RuneCountInString(t[p:q]) > s.limit/4 {
		return q
	}
	return p
}

type candidate struct {
	p, n int    // offset of the cut, runes before it in the piece
	f    *fence // fence to close at the cut
}

// cut chooses where the piece starting at start ends, given pre runes of
// reopened fence before it. It returns the cut offset and the fence to close
// there, if any.
func (s *splitter) cut(start, pre int) (int, *fence) {
	t := s.text
	budget := s.limit - pre
	first := start
	for first < len(t) {
		r, size := utf8.DecodeRuneInString(t[first:])
		if !unicode.IsSpace(r) {
			break
		}
		first += size
	}

	var best [numClasses]candidate
	var fallback candidate
	fenceLine := looksFence(t, start)
	prevBlank, curBlank := false, start == 0 || t[start-1] == '\n'
	nns := start // first offset at or after p that is not a space other than '\n'
	fi := 0
	n := 0
	for p := start; p < len(t); {
		r, size := utf8.DecodeRuneInString(t[p:])
		p += size
		n++
		if n > budget {
			break
		}
		if p == len(t) {
			return p, nil
		}
		if r == '\n' {
			fenceLine = looksFence(t, p)
			prevBlank, curBlank = curBlank, true
		} else if !unicode.IsSpace(r) {
			curBlank = false
		}
		if p <= first {
			continue
		}

		for fi < len(s.fences) && s.fences[fi].closeStart < p {
			fi++
		}
		var f *fence
		if fi < len(s.fences) && s.fences[fi].openEnd <= p {
			f = &s.fences[fi]
		}
		repair := f != nil && f.reopen != ""
		cost := n
		if repair {
			cost += 1 + f.n
		}
		if cost > budget {
			continue
		}
		c := candidate{p: p, n: n}
		if repair {
			c.f = f
		}
		fallback = c

		if nns < p {
			nns = p
			for nns < len(t) {
				r, size := utf8.DecodeRuneInString(t[nns:])
				if r == '\n' || !unicode.IsSpace(r) {
					break
				}
				nns += size
			}
		}
		mid := r != '\n'
		if s.repair {
			if mid && t[p] != '\n' && fenceLine {
				continue // never cut a fence-like line
			}
			if mid && nns < len(t) && t[nns] != '\n' && fenceRun(t[nns:]) {
				continue // the next piece would start with a fence
			}
			if f != nil && !repair {
				continue // inside a fence too long to reopen
			}
			if repair && ((f.openStart >= start && p <= f.first) || p > f.last) {
				continue // would leave an empty code block
			}
			if repair && f.openStart > first && f.size <= s.limit {
				continue // the whole block fits in the next piece
			}
		}

		var class int
		switch {
		case mid && t[p] == '\n':
			class = classLine
		case !mid:
			class = classLine
			opens := f == nil && fi < len(s.fences) && s.fences[fi].openStart == p
			closed := fi > 0 && s.fences[fi-1].closeEnd+1 == p
			if prevBlank || nns == len(t) || t[nns] == '\n' || opens || closed {
				class = classParagraph
			}
		case r == ' ' && p >= 2 && strings.IndexByte(".!?", t[p-2]) >= 0:
			class = classSentence
		case r == ' ' || r == '\t':
			class = classSpace
		default:
			class = classHard
		}
		best[class] = c
	}

	// Prefer the best class that fills at least half the piece, else the best
	// class at all; cut a word only when there is nothing else.
	for _, c := range best[:classHard] {
		if c.p > 0 && c.n >= budget/2 {
			return c.p, c.f
		}
	}
	for _, c := range best {
		if c.p > 0 {
			return c.p, c.f
		}
	}
	s.broken = true
	if fallback.p > 0 {
		return fallback.p, fallback.f
	}
	_, size := utf8.DecodeRuneInString(t[first:])
	return first + size, nil
}

// Truncate cuts text to at most limit runes, suffix (such as "…") included,
// at a rune boundary. When the cut falls inside a fenced code block, the
// suffix goes at the cut and a closing fence follows it. When the kept text
// ends with a fence line, the suffix goes on a line of its own (on the
// fence line it would make "```…" an opening fence). Text that fits is
// returned unchanged; a limit below 1 means no limit.
func Truncate(text string, limit int, suffix string) string {
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	if !utf8.ValidString(suffix) {
		suffix = strings.ToValidUTF8(suffix, "\uFFFD")
	}
	if limit < 1 || utf8.RuneCountInString(text) <= limit {
		return text
	}
	sn := utf8.RuneCountInString(suffix)
	if sn >= limit {
		return suffix[:runeOffset(suffix, limit)]
	}
	fs := scanFences(text)
	budget, end := limit-sn, len(text)
	for {
		body, f := truncateAt(text, fs, budget, end)
		switch {
		case f != nil:
			return body + suffix + "\n" + f.closer()
		case suffix == "" || suffix[0] == '\n' || !endsWithFenceLine(body):
			return body + suffix
		case utf8.RuneCountInString(body) < budget:
			return body + "\n" + suffix
		}
		// No room for the line break: cut before the fence line.
		end = strings.LastIndexByte(body, '\n') + 1
	}
}

// truncateAt cuts text to at most budget runes and at most end bytes, not
// inside a fence line, and trims the spaces the cut leaves at the end. f
// is the fence the cut falls in (nil when none): the caller closes it.
func truncateAt(text string, fs []fence, budget, end int) (body string, f *fence) {
	p := min(avoidFenceLine(text, runeOffset(text, budget)), end)
	f = fenceAt(fs, p)
	if f != nil {
		room := budget - 1 - f.n
		if room < 0 {
			p = f.openStart
		} else if q := runeOffset(text, room); q < p {
			p = avoidFenceLine(text, q)
		}
		if p <= f.first || f.first < 0 {
			p, f = f.openStart, nil
		}
	}
	return strings.TrimRightFunc(text[:p], isSpace), f
}

// endsWithFenceLine reports whether the last line of s is fence-like.
func endsWithFenceLine(s string) bool {
	_, _, _, ok := marker(s[strings.LastIndexByte(s, '\n')+1:])
	return ok
}

// avoidFenceLine moves a cut at p that falls inside a fence-like line back to
// the start of that line.
func avoidFenceLine(text string, p int) int {
	if p == 0 || p == len(text) || text[p-1] == '\n' || text[p] == '\n' {
		return p
	}
	ls := strings.LastIndexByte(text[:p], '\n') + 1
	if _, _, _, ok := marker(text[ls:lineEnd(text, ls)]); ok {
		return ls
	}
	return p
}
