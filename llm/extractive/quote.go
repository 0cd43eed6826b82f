package extractive

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ellipsis marks text left out: on a line of its own between blocks, at
// the ends of clipped prose, and as a table row ("| … |") for left-out rows.
const (
	ellipsis   = "…"
	omittedRow = "| … |"
)

// minShortRunes is the least room worth shortening a block into when
// other blocks are quoted already.
const minShortRunes = 40

// piece is a block, whole or shortened, chosen for a quote.
type piece struct {
	index     int      // of the block
	lines     []string // as quoted
	cutBefore bool     // the start of the block was left out (code)
	cutAfter  bool     // the end of the block was left out (code)
}

// quoteLines returns the lines of the quote of a passage: its blocks that
// best match terms, in document order, at most max runes when joined with
// newlines. Blocks are kept as written where they fit; a paragraph, list
// item or blockquote that does not is clipped between words; a table is
// cut between rows and keeps its header; a code block is quoted whole or
// not at all unless it is the best match and alone too long, when it is
// cut between lines and its fence closed. Lines of "…" mark what was left
// out.
func quoteLines(text string, terms termSet, max int) []string {
	blocks := contentBlocks(text)
	if len(blocks) == 0 {
		return nil
	}
	q := &quoter{blocks: blocks, terms: terms, max: max}
	all := make([]piece, len(blocks))
	for i := range blocks {
		all[i] = q.whole(i)
	}
	if lines := q.render(all); linesLen(lines) <= max {
		return lines
	}

	scores := make([]int, len(blocks))
	best := 0
	for i, b := range blocks {
		scores[i] = terms.score(strings.Join(b.lines, "\n"))
		if scores[i] > scores[best] {
			best = i
		}
	}
	// The best block first, then the other matching ones by score and
	// closeness to it.
	var order []int
	for i := range blocks {
		if i == best || scores[i] > 0 {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool {
		i, j := order[a], order[b]
		if scores[i] != scores[j] {
			return scores[i] > scores[j]
		}
		return abs(i-best) < abs(j-best)
	})
	for _, i := range order {
		first := len(q.picked) == 0
		if !q.add(q.whole(i)) && (first || (blocks[i].kind != kindFence && blocks[i].kind != kindIndented)) {
			q.addShortened(i, first)
		}
	}

	// Then the blocks around them for context, nearest first, the one
	// after a quoted block before the one before it.
	in := make([]bool, len(blocks))
	for _, p := range q.picked {
		in[p.index] = true
	}
	type cand struct{ index, dist, before int }
	var cands []cand
	for i := range blocks {
		if in[i] {
			continue
		}
		c := cand{index: i, dist: len(blocks)}
		for _, p := range q.picked {
			d, before := abs(i-p.index), 0
			if i < p.index {
				before = 1
			}
			if d < c.dist || (d == c.dist && before < c.before) {
				c.dist, c.before = d, before
			}
		}
		cands = append(cands, c)
	}
	sort.Slice(cands, func(a, b int) bool {
		x, y := cands[a], cands[b]
		if x.dist != y.dist {
			return x.dist < y.dist
		}
		if x.before != y.before {
			return x.before < y.before
		}
		return x.index < y.index
	})
	for _, c := range cands {
		i := c.index
		if ((i > 0 && in[i-1]) || (i+1 < len(blocks) && in[i+1])) && q.add(q.whole(i)) {
			in[i] = true
		}
	}
	return q.render(q.picked)
}

// quoter collects the pieces of one quote.
type quoter struct {
	blocks []block
	terms  termSet
	max    int
	picked []piece // in document order
}

func (q *quoter) whole(i int) piece { return piece{index: i, lines: q.blocks[i].lines} }

// with returns the picked pieces with p added in its place.
func (q *quoter) with(p piece) []piece {
	i := sort.Search(len(q.picked), func(k int) bool { return q.picked[k].index >= p.index })
	out := make([]piece, 0, len(q.picked)+1)
	out = append(out, q.picked[:i]...)
	out = append(out, p)
	return append(out, q.picked[i:]...)
}

// add picks p if the quote still fits.
func (q *quoter) add(p piece) bool {
	ps := q.with(p)
	if linesLen(q.render(ps)) > q.max {
		return false
	}
	q.picked = ps
	return true
}

// addShortened picks block i shortened to the room left, if there is
// enough of it. The first block picked is always quoted, if need be as
// clipped prose.
func (q *quoter) addShortened(i int, first bool) {
	room := q.max - linesLen(q.render(q.with(piece{index: i, lines: []string{""}})))
	if !first && room < minShortRunes {
		return
	}
	for range 4 { // shrink by what cut markers add
		p, ok := q.shorten(i, room)
		if !ok {
			break
		}
		over := linesLen(q.render(q.with(p))) - q.max
		if over <= 0 {
			q.picked = q.with(p)
			return
		}
		room -= over
	}
	if first {
		prefix, body := q.blocks[i].prose()
		q.picked = q.with(piece{index: i, lines: []string{prefix + clipProse(body, q.terms, max(room-runeLen(prefix), 1))}})
	}
}

// shorten returns block i cut to at most room runes.
func (q *quoter) shorten(i, room int) (piece, bool) {
	b := q.blocks[i]
	p := piece{index: i}
	switch b.kind {
	case kindFence, kindIndented:
		body := b.lines
		var open, closing []string
		if b.kind == kindFence {
			open, closing = body[:1], body[len(body)-1:]
			body = body[1 : len(body)-1]
		}
		avail := room - 2*runeLen(ellipsis+"\n\n") // for "…" lines around a cut block
		if b.kind == kindFence {
			avail -= runeLen(open[0]) + runeLen(closing[0]) + 2
		}
		if len(body) == 0 || avail < 3 {
			return p, false
		}
		body = append([]string(nil), body...)
		for k, l := range body {
			if runeLen(l) > avail { // a line longer than the room
				body[k] = clip(l, q.terms, avail-2, false, false)
			}
		}
		first, last, ok := q.window(body, avail)
		if !ok {
			return p, false
		}
		p.lines = append(append(append(p.lines, open...), body[first:last+1]...), closing...)
		p.cutBefore, p.cutAfter = first > 0, last < len(body)-1
		return p, true
	case kindTable:
		header, rows := b.lines[:b.head], b.lines[b.head:]
		avail := room - linesLen(header) - min(len(header), 1) - 2*(1+runeLen(omittedRow))
		first, last, ok := q.window(rows, avail)
		if len(rows) == 0 || !ok {
			return p, false
		}
		p.lines = append(p.lines, header...)
		if first > 0 {
			p.lines = append(p.lines, omittedRow)
		}
		p.lines = append(p.lines, rows[first:last+1]...)
		if last < len(rows)-1 {
			p.lines = append(p.lines, omittedRow)
		}
		return p, true
	}
	prefix, body := b.prose()
	avail := room - runeLen(prefix)
	if body == "" || avail < 10 {
		return p, false
	}
	p.lines = []string{prefix + clipProse(body, q.terms, avail)}
	return p, true
}

// window returns a run of lines that fits in room runes when joined with
// newlines: from the first line if that reaches the best matching one,
// else around it.
func (q *quoter) window(lines []string, room int) (first, last int, ok bool) {
	if len(lines) == 0 {
		return 0, 0, false
	}
	sizes := make([]int, len(lines))
	scores := make([]int, len(lines))
	best := 0
	for i, l := range lines {
		sizes[i] = runeLen(l)
		scores[i] = q.terms.score(l)
		if scores[i] > scores[best] {
			best = i
		}
	}
	if first, last, ok := grow(sizes, make([]int, len(sizes)), 0, room); ok && last >= best {
		return first, last, true
	}
	return grow(sizes, scores, best, room)
}

// render lays the pieces out as quote lines: pieces that follow each other
// in the passage as written, with a blank line where it had one; a "…"
// paragraph where something was left out.
func (q *quoter) render(ps []piece) []string {
	var out []string
	gap := false
	emit := func(lines ...string) {
		if gap && len(out) > 0 {
			out = append(out, "")
		}
		gap = false
		out = append(out, lines...)
	}
	omit := func() {
		if len(out) > 0 && out[len(out)-1] == ellipsis {
			return
		}
		gap = true
		emit(ellipsis)
		gap = true
	}
	for k, p := range ps {
		switch {
		case k == 0:
			if p.index > 0 || p.cutBefore {
				omit()
			}
		case p.index > ps[k-1].index+1 || ps[k-1].cutAfter || p.cutBefore:
			omit()
		case q.blocks[p.index].gap:
			gap = true
		}
		emit(p.lines...)
	}
	if len(ps) > 0 {
		if last := ps[len(ps)-1]; last.index < len(q.blocks)-1 || last.cutAfter {
			omit()
		}
	}
	return out
}

// linesLen is the length in runes of lines joined with newlines.
func linesLen(lines []string) int {
	n := max(len(lines)-1, 0)
	for _, l := range lines {
		n += runeLen(l)
	}
	return n
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// grow returns the run first..last of items around best whose sizes, with
// one rune between neighbours, add up to at most budget, taking the
// better matching neighbour first (the later one on ties); ok is false if
// best alone does not fit.
func grow(sizes, scores []int, best, budget int) (first, last int, ok bool) {
	size := sizes[best]
	if size > budget {
		return 0, 0, false
	}
	first, last = best, best
	for {
		next, prev := last+1, first-1
		canNext := next < len(sizes) && size+1+sizes[next] <= budget
		canPrev := prev >= 0 && size+1+sizes[prev] <= budget
		switch {
		case canNext && (!canPrev || scores[next] >= scores[prev]):
			last = next
			size += 1 + sizes[next]
		case canPrev:
			first = prev
			size += 1 + sizes[prev]
		default:
			return first, last, true
		}
	}
}

// clipProse returns the part of a paragraph that best matches terms, at
// most max runes, collapsed onto one line. Sentences are kept whole where
// they fit; ellipses mark what was left out; no word or rune is cut in half
// (text without spaces, like Chinese, is cut between runes).
func clipProse(text string, terms termSet, max int) string {
	sents := sentences(text)
	if len(sents) == 0 {
		return ""
	}
	whole := strings.Join(sents, " ")
	if runeLen(whole) <= max {
		return whole
	}
	best := 0
	sizes := make([]int, len(sents))
	scores := make([]int, len(sents))
	for i, s := range sents {
		sizes[i] = runeLen(s)
		scores[i] = terms.score(s)
		if scores[i] > scores[best] {
			best = i
		}
	}
	// Reserve room for the ellipses on both sides.
	budget := max - 2
	first, last, ok := grow(sizes, scores, best, budget)
	if !ok {
		return clip(sents[best], terms, budget, best > 0, best < len(sents)-1)
	}
	q := strings.Join(sents[first:last+1], " ")
	if first > 0 {
		q = ellipsis + q
	}
	if last < len(sents)-1 {
		q += ellipsis
	}
	return q
}

// clip cuts a sentence longer than budget runes around its first matching
// term, on word boundaries.
func clip(s string, terms termSet, budget int, before, after bool) string {
	budget = max(budget, 1)
	r := []rune(s)
	focus := terms.firstMatch(s) // rune offset, -1 if none
	start := 0
	if focus > budget/3 {
		start = focus - budget/3
	}
	start = min(start, max(0, len(r)-budget))
	if start > 0 { // begin at the next word
		for i := start; i < len(r) && i < start+budget/4; i++ {
			if unicode.IsSpace(r[i-1]) && !unicode.IsSpace(r[i]) {
				start = i
				break
			}
		}
	}
	end := min(start+budget, len(r))
	if end < len(r) { // end before a word that would be cut
		for i := end; i > start+budget/2; i-- {
			if unicode.IsSpace(r[i]) {
				end = i
				break
			}
		}
	}
	q := strings.TrimSpace(string(r[start:end]))
	if start > 0 || before {
		q = ellipsis + q
	}
	if end < len(r) || after {
		q += ellipsis
	}
	return q
}

// sentences splits a paragraph into sentences with white space collapsed.
func sentences(text string) []string {
	para := strings.Join(strings.Fields(text), " ")
	var out []string
	start := 0
	rs := []rune(para)
	for i, c := range rs {
		end := -1
		switch {
		case strings.ContainsRune("。！？", c):
			end = i + 1
		case strings.ContainsRune(".!?…", c) && i+1 < len(rs) && rs[i+1] == ' ':
			end = i + 1
		}
		if end > start {
			if s := strings.TrimSpace(string(rs[start:end])); s != "" {
				out = append(out, s)
			}
			start = end
		}
	}
	if s := strings.TrimSpace(string(rs[start:])); s != "" {
		out = append(out, s)
	}
	return out
}
