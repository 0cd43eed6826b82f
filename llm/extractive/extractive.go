// Package extractive is the zero-configuration responder: an
// engine.LanguageModel that runs no model and answers by quoting the
// retrieved passages that best match the question, each with its [n]
// citation marker, clearly labelled as quotes.
package extractive

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/convosphere/convosphere/engine"
)

// Defaults applied by New to zero fields.
const (
	DefaultMaxPassages   = 3
	DefaultMaxQuoteRunes = 600
)

// minQuoteRunes keeps quotes long enough to be useful.
const minQuoteRunes = 80

// Config tunes the responder. The zero value gets defaults.
type Config struct {
	MaxPassages   int // passages quoted at most; default 3
	MaxQuoteRunes int // length of one quote in runes; default 600
}

func (c *Config) setDefaults() {
	if c.MaxPassages == 0 {
		c.MaxPassages = DefaultMaxPassages
	}
	if c.MaxQuoteRunes == 0 {
		c.MaxQuoteRunes = DefaultMaxQuoteRunes
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.MaxPassages < 0:
		return engine.Errorf(engine.EINVALID, "The extractive responder's max passages must not be negative.")
	case c.MaxQuoteRunes < 0 || (c.MaxQuoteRunes > 0 && c.MaxQuoteRunes < minQuoteRunes):
		return engine.Errorf(engine.EINVALID, "The extractive responder's quote length must be at least %d characters.", minQuoteRunes)
	}
	return nil
}

// Responder answers from passages without a language model.
type Responder struct {
	cfg Config
}

var (
	_ engine.LanguageModel = (*Responder)(nil)
	_ engine.ModelNamer    = (*Responder)(nil)
)

// New returns a responder, or an EINVALID error for a bad setting.
func New(cfg Config) (*Responder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Responder{cfg: cfg}, nil
}

// DefaultModel returns engine.ModelExtractive.
func (r *Responder) DefaultModel() string { return engine.ModelExtractive }

// Stream answers req from req.Question and req.Passages. The answer comes
// as one EventText per line, then EventDone; every event names
// engine.ModelExtractive. It stops when ctx ends.
func (r *Responder) Stream(ctx context.Context, req engine.ChatRequest) (<-chan engine.StreamEvent, error) {
	text := r.Answer(req.Question, req.Passages)
	out := make(chan engine.StreamEvent)
	go func() {
		defer close(out)
		send := func(ev engine.StreamEvent) bool {
			ev.Model = engine.ModelExtractive
			if ctx.Err() != nil {
				return false
			}
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		stopped := func() {
			ev := engine.StreamEvent{Kind: engine.EventError, Model: engine.ModelExtractive,
				Err: engine.WrapError(engine.ETIMEOUT, ctx.Err(), "The answer was stopped before it was complete.")}
			select { // only if the reader is still there
			case out <- ev:
			default:
			}
		}
		for line := range strings.Lines(text) {
			if !send(engine.StreamEvent{Kind: engine.EventText, Text: line}) {
				stopped()
				return
			}
		}
		if !send(engine.StreamEvent{Kind: engine.EventDone}) {
			stopped()
		}
	}()
	return out, nil
}

// Answer composes the reply to question from passages: a label saying no
// language model is configured, then quotes of the best passages, each with
// the [n] marker of its 1-based position in passages.
func (r *Responder) Answer(question string, passages []engine.Passage) string {
	picked := r.pick(question, passages)
	if len(picked) == 0 {
		return "I could not find anything relevant to your question in the knowledge base.\n\n" +
			"No language model is configured, so I can only answer with passages from the knowledge base; " +
			"an admin can configure one (llm.base_url and llm.model) for full answers."
	}
	terms := termsOf(question)
	kbs := map[string]bool{}
	for _, i := range picked {
		kbs[passages[i].KnowledgeBase] = true
	}
	source := "the knowledge base"
	if len(kbs) > 1 {
		source = "the knowledge bases"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "No language model is configured, so here are the most relevant passages from %s:\n", source)
	for _, i := range picked {
		p := passages[i]
		fmt.Fprintf(&b, "\n[%d] **%s**", i+1, titleOf(p))
		if len(p.HeadingPath) > 0 {
			fmt.Fprintf(&b, " › %s", strings.Join(p.HeadingPath, " › "))
		}
		fmt.Fprintf(&b, "\n> %s\n", quote(p.Text, terms, r.cfg.MaxQuoteRunes))
	}
	return strings.TrimRight(b.String(), "\n")
}

func titleOf(p engine.Passage) string {
	for _, s := range []string{p.Title, p.Document} {
		if s = strings.Join(strings.Fields(s), " "); s != "" {
			return s
		}
	}
	return "Untitled document"
}

// pick returns the indexes of the passages to quote: passages that share
// words with the question before those that do not, otherwise in retrieval
// order, without empty passages or repeats.
func (r *Responder) pick(question string, passages []engine.Passage) []int {
	terms := termsOf(question)
	type cand struct {
		index   int
		matches bool
	}
	var cands []cand
	seen := map[string]bool{}
	for i, p := range passages {
		norm := strings.Join(strings.Fields(p.Text), " ")
		if norm == "" || seen[norm] || (p.ID != "" && seen["id:"+p.ID]) {
			continue
		}
		seen[norm] = true
		if p.ID != "" {
			seen["id:"+p.ID] = true
		}
		cands = append(cands, cand{index: i, matches: terms.score(norm) > 0})
	}
	sort.SliceStable(cands, func(a, b int) bool { return cands[a].matches && !cands[b].matches })
	var out []int
	for _, c := range cands {
		if len(out) == r.cfg.MaxPassages {
			break
		}
		out = append(out, c.index)
	}
	return out
}

// quote returns the part of text that best matches terms, at most max
// runes, collapsed onto one line. Sentences are kept whole where they fit;
// ellipses mark what was left out; no word or rune is cut in half (text
// without spaces, like Chinese, is cut between runes).
func quote(text string, terms termSet, max int) string {
	sents := sentences(text)
	if len(sents) == 0 {
		return ""
	}
	whole := strings.Join(sents, " ")
	if utf8.RuneCountInString(whole) <= max {
		return whole
	}
	best := 0
	scores := make([]int, len(sents))
	for i, s := range sents {
		scores[i] = terms.score(s)
		if scores[i] > scores[best] {
			best = i
		}
	}
	// Reserve room for the ellipses on both sides.
	budget := max - 2
	first, last := best, best
	size := utf8.RuneCountInString(sents[best])
	if size > budget {
		return clip(sents[best], terms, budget, best > 0, best < len(sents)-1)
	}
	for {
		next, prev := last+1, first-1
		canNext := next < len(sents) && size+1+utf8.RuneCountInString(sents[next]) <= budget
		canPrev := prev >= 0 && size+1+utf8.RuneCountInString(sents[prev]) <= budget
		switch {
		case canNext && (!canPrev || scores[next] >= scores[prev]):
			last = next
			size += 1 + utf8.RuneCountInString(sents[next])
		case canPrev:
			first = prev
			size += 1 + utf8.RuneCountInString(sents[prev])
		default:
			q := strings.Join(sents[first:last+1], " ")
			if first > 0 {
				q = "…" + q
			}
			if last < len(sents)-1 {
				q += "…"
			}
			return q
		}
	}
}

// clip cuts a sentence longer than budget runes around its first matching
// term, on word boundaries.
func clip(s string, terms termSet, budget int, before, after bool) string {
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
		q = "…" + q
	}
	if end < len(r) || after {
		q += "…"
	}
	return q
}

// sentences splits text into sentences with whitespace collapsed, dropping
// Markdown heading marks (the heading path is shown separately).
func sentences(text string) []string {
	var out []string
	for _, para := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		para = strings.Join(strings.Fields(para), " ")
		if strings.HasPrefix(para, "#") {
			para = strings.TrimSpace(strings.TrimLeft(para, "#"))
		}
		if para == "" {
			continue
		}
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
	}
	return out
}
