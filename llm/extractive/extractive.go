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
// the [n] marker of its 1-based position in passages. Each quote is one
// Markdown blockquote of the passage's own lines, so tables, lists and code
// keep their structure.
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
		if section := p.Section(); section != "" {
			fmt.Fprintf(&b, " › %s", section)
		}
		b.WriteString("\n")
		for _, line := range quoteLines(p.Text, terms, r.cfg.MaxQuoteRunes) {
			if line == "" {
				b.WriteString(">\n")
			} else {
				fmt.Fprintf(&b, "> %s\n", line)
			}
		}
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
