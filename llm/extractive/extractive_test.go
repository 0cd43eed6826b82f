package extractive_test

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/llm/extractive"
)

func MustNew(tb testing.TB, cfg extractive.Config) *extractive.Responder {
	tb.Helper()
	r, err := extractive.New(cfg)
	if err != nil {
		tb.Fatalf("new responder: %v", err)
	}
	return r
}

// mustStream collects a whole answer and checks the event contract.
func mustStream(tb testing.TB, r *extractive.Responder, req engine.ChatRequest) (string, []engine.StreamEvent) {
	tb.Helper()
	ch, err := r.Stream(context.Background(), req)
	if err != nil {
		tb.Fatalf("stream: %v", err)
	}
	var (
		events []engine.StreamEvent
		text   strings.Builder
	)
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				if len(events) == 0 || events[len(events)-1].Kind != engine.EventDone {
					tb.Fatalf("stream did not end with done: %+v", events)
				}
				return text.String(), events
			}
			if ev.Model != engine.ModelExtractive {
				tb.Fatalf("event model = %q", ev.Model)
			}
			if ev.Kind == engine.EventText {
				text.WriteString(ev.Text)
			}
			events = append(events, ev)
		case <-timeout:
			tb.Fatal("stream did not close")
		}
	}
}

var markerRE = regexp.MustCompile(`\[(\d+)\]`)

func markers(text string) []string {
	var out []string
	for _, m := range markerRE.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestStreamQuotesPassages(t *testing.T) {
	passages := []engine.Passage{
		{ID: "p1", KnowledgeBase: "handbook", Document: "holidays.md", Title: "Holidays", HeadingPath: []string{"Leave", "Vacation"},
			Text: "Employees get 25 days of paid vacation per year. Vacation requests go through the HR portal."},
		{ID: "p2", KnowledgeBase: "handbook", Document: "expenses.md", Title: "Expenses",
			Text: "Travel expenses are reimbursed within a month."},
		{ID: "p3", KnowledgeBase: "handbook", Document: "vacation-carryover.md",
			Text: "Unused vacation days carry over until March."},
		{ID: "p4", KnowledgeBase: "handbook", Document: "it.md", Title: "IT",
			Text: "Laptops are replaced every three years."},
	}
	r := MustNew(t, extractive.Config{})
	text, events := mustStream(t, r, engine.ChatRequest{Question: "How many vacation days do I get?", Passages: passages})

	if !strings.HasPrefix(text, "No language model is configured, so here are the most relevant passages from the knowledge base:") {
		t.Fatalf("answer is not labelled:\n%s", text)
	}
	// p1 and p3 mention vacation; p2 does not, so it comes after them; p4
	// is left out (three passages at most).
	if got := strings.Join(markers(text), ","); got != "1,3,2" {
		t.Fatalf("markers = %s, want 1,3,2:\n%s", got, text)
	}
	for _, want := range []string{
		"[1] **Holidays** › Leave › Vacation\n> Employees get 25 days of paid vacation per year. Vacation requests go through the HR portal.",
		"[3] **vacation-carryover.md**\n> Unused vacation days carry over until March.",
		"[2] **Expenses**",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("answer lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "Laptops") {
		t.Errorf("answer quotes more than 3 passages:\n%s", text)
	}
	if texts := len(events) - 1; texts < 5 {
		t.Errorf("answer came in %d text events, want one per line", texts)
	}
}

func TestStreamNoPassages(t *testing.T) {
	r := MustNew(t, extractive.Config{})
	for _, passages := range [][]engine.Passage{nil, {{ID: "empty", Text: "  \n "}}} {
		text, _ := mustStream(t, r, engine.ChatRequest{Question: "What is the meaning of life?", Passages: passages})
		for _, want := range []string{"could not find anything relevant", "knowledge base", "llm.base_url", "llm.model"} {
			if !strings.Contains(text, want) {
				t.Errorf("answer lacks %q:\n%s", want, text)
			}
		}
		if len(markers(text)) != 0 {
			t.Errorf("answer without passages cites: %s", text)
		}
	}
}

func TestAnswerLabels(t *testing.T) {
	r := MustNew(t, extractive.Config{MaxPassages: 5})
	text := r.Answer("deploy", []engine.Passage{
		{KnowledgeBase: "ops", Title: "Deploy", Text: "Deploy with make."},
		{KnowledgeBase: "dev", Title: "Deploy", Text: "Deploy to staging first."},
		{KnowledgeBase: "dev", Title: "Deploy", Text: "Deploy with make."}, // duplicate text
	})
	if !strings.Contains(text, "from the knowledge bases:") {
		t.Errorf("several knowledge bases are not named as such:\n%s", text)
	}
	if got := strings.Join(markers(text), ","); got != "1,2" {
		t.Errorf("markers = %s, want duplicates dropped:\n%s", got, text)
	}
}

func TestAnswerPicksMatchingSentences(t *testing.T) {
	filler := strings.Repeat("This sentence is about something else entirely and goes on for a while. ", 12)
	passage := filler + "To rotate the signing key, run csctl keys rotate and restart the bot. " + filler
	r := MustNew(t, extractive.Config{MaxQuoteRunes: 300})
	text := r.Answer("How do I rotate the signing key?", []engine.Passage{{Title: "Keys", Text: passage}})
	q := quoteOf(t, text)
	if !strings.Contains(q, "To rotate the signing key, run csctl keys rotate and restart the bot.") {
		t.Fatalf("quote misses the matching sentence: %q", q)
	}
	if n := utf8.RuneCountInString(q); n > 300 {
		t.Fatalf("quote has %d runes, limit 300", n)
	}
	if !strings.HasPrefix(q, "…") || !strings.HasSuffix(q, "…") {
		t.Fatalf("cut quote is not marked with ellipses: %q", q)
	}
}

// quoteOf returns the single quote line of an answer.
func quoteOf(tb testing.TB, text string) string {
	tb.Helper()
	var quotes []string
	for line := range strings.Lines(text) {
		if q, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "> "); ok {
			quotes = append(quotes, q)
		}
	}
	if len(quotes) != 1 {
		tb.Fatalf("want one quote, got %d:\n%s", len(quotes), text)
	}
	return quotes[0]
}

func TestAnswerRuneSafety(t *testing.T) {
	tests := []struct {
		name, question, text string
		max                  int
		want                 string // must appear in the quote
	}{
		{
			name:     "long sentence of multibyte words",
			question: "Grüße aus Köln",
			text:     strings.Repeat("Schöne Grüße aus Düsseldorf, Köln und München über Straßen ", 30),
			max:      120,
			want:     "Grüße",
		},
		{
			name:     "chinese without spaces",
			question: "東京の天気は？",
			text:     strings.Repeat("今日は晴れです", 60) + "東京の天気は雨です。" + strings.Repeat("明日も晴れ", 60),
			max:      120,
			want:     "東京の天気",
		},
		{
			name:     "emoji",
			question: "rockets",
			text:     strings.Repeat("🚀 rockets launch 🌕 ", 80),
			max:      120,
			want:     "rockets",
		},
		{
			name:     "german table",
			question: "Grüße aus München",
			text: "| Stadt | Gruß |\n| --- | --- |\n" + strings.Repeat("| Köln | Schöne Grüße über Straßen |\n", 20) +
				"| München | Grüße aus München |\n" + strings.Repeat("| Düsseldorf | Schöne Grüße über Straßen |\n", 20),
			max:  120,
			want: "| München | Grüße aus München |",
		},
		{
			name:     "chinese list",
			question: "東京の天気は？",
			text:     strings.Repeat("- 今日は晴れです\n", 40) + "- 東京の天気は雨です\n" + strings.Repeat("- 明日も晴れ\n", 40),
			max:      80,
			want:     "- 東京の天気は雨です",
		},
		{
			name:     "emoji code",
			question: "launch",
			text:     "```\n" + strings.Repeat("🚀 launch 🌕\n", 60) + "```",
			max:      80,
			want:     "🚀 launch 🌕",
		},
		{
			name:     "german paragraph between blocks",
			question: "Grüße aus Köln",
			text: "- München\n- Düsseldorf\n\n" + strings.Repeat("Schöne Grüße aus Düsseldorf, Köln und München über Straßen. ", 10) +
				"\n\n| Stadt |\n| --- |\n| Köln |",
			max:  120,
			want: "Grüße",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := MustNew(t, extractive.Config{MaxQuoteRunes: tt.max})
			text, _ := mustStream(t, r, engine.ChatRequest{Question: tt.question, Passages: []engine.Passage{{Title: "T", Text: tt.text}}})
			if !utf8.ValidString(text) {
				t.Fatalf("answer is not valid UTF-8: %q", text)
			}
			q := onlyQuote(t, text)
			checkQuote(t, tt.text, q, tt.max)
			if joined := strings.Join(q, "\n"); !strings.Contains(joined, tt.want) {
				t.Fatalf("quote lacks %q:\n%s", tt.want, joined)
			}
		})
	}
}

// setupDoc is a passage with the structures a quote has to keep.
const setupDoc = "## 2. Give ConvoSphere the tokens\n\n" +
	"Copy these values from the Slack app settings:\n\n" +
	"| Slack setting | where to find it |\n" +
	"| --- | --- |\n" +
	"| Signing secret | Basic Information |\n" +
	"| Bot token | OAuth & Permissions |\n\n" +
	"```sh\n" +
	"export CONVOSPHERE_SLACK_SIGNING_SECRET=abc\n" +
	"\n" +
	"export CONVOSPHERE_SLACK_BOT_TOKEN=xoxb-123\n" +
	"```\n\n" +
	"Then:\n\n" +
	"- restart the bot\n" +
	"- invite it to a channel\n" +
	"  with /invite\n\n" +
	"> Socket Mode needs an app-level token too."

func TestAnswerQuotesMarkdown(t *testing.T) {
	numbered := func(n int, format string) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, format, i)
		}
		return b.String()
	}
	longTable := "| setting | meaning |\n| --- | --- |\n" + numbered(20, "| setting%02d | does thing %02d |\n") +
		"| retention | messages are kept for 30 days |\n" + numbered(20, "| other%02d | does thing %02d |\n")
	bigCode := "```sh\n" + numbered(40, "echo step %02d\n") + "```"
	tests := []struct {
		name, question, text string
		max                  int      // 0: the default
		want                 []string // the quote's lines exactly, if set
		has                  []string // lines the quote must have, in this order
		hasNot               []string // lines the quote must not have
		check                func(t *testing.T, q []string)
	}{
		{
			name:     "whole passage keeps its structure",
			question: "Where do I find the signing secret?",
			text:     setupDoc,
			want: []string{
				"Copy these values from the Slack app settings:",
				"",
				"| Slack setting | where to find it |",
				"| --- | --- |",
				"| Signing secret | Basic Information |",
				"| Bot token | OAuth & Permissions |",
				"",
				"```sh",
				"export CONVOSPHERE_SLACK_SIGNING_SECRET=abc",
				"",
				"export CONVOSPHERE_SLACK_BOT_TOKEN=xoxb-123",
				"```",
				"",
				"Then:",
				"",
				"- restart the bot",
				"- invite it to a channel",
				"  with /invite",
				"",
				"> Socket Mode needs an app-level token too.",
			},
		},
		{
			name:     "budget picks the matching table whole",
			question: "Where do I find the signing secret?",
			text:     setupDoc,
			max:      200,
			has: []string{"| Slack setting | where to find it |", "| --- | --- |",
				"| Signing secret | Basic Information |", "| Bot token | OAuth & Permissions |", "…"},
			hasNot: []string{"```sh"},
		},
		{
			name:     "table cut between rows keeps its header",
			question: "How long is the retention?",
			text:     longTable,
			max:      200,
			has:      []string{"| setting | meaning |", "| --- | --- |", "| … |", "| retention | messages are kept for 30 days |", "| … |"},
			check: func(t *testing.T, q []string) {
				for _, l := range q {
					if !strings.HasPrefix(l, "|") {
						t.Errorf("line %q is not a table row", l)
					}
				}
			},
		},
		{
			name:     "code block left out when it does not fit",
			question: "How does the release script work?",
			text:     "Deploy with the release script below.\n\n" + bigCode + "\n\nThe release script tags the build.",
			max:      200,
			want:     []string{"Deploy with the release script below.", "", "…", "", "The release script tags the build."},
		},
		{
			name:     "code block kept whole when it fits",
			question: "How does the release script work?",
			text: "Deploy with the release script:\n\n```sh\nmake release\nmake tag\n```\n\n" +
				strings.Repeat("Unrelated filler text goes here. ", 40),
			max: 200,
			has: []string{"Deploy with the release script:", "", "```sh", "make release", "make tag", "```", "", "…"},
		},
		{
			name:     "lone long code block is cut between lines and closed",
			question: "What does step 05 echo?",
			text:     bigCode,
			max:      150,
			has:      []string{"```sh", "echo step 05", "```", "", "…"},
			check: func(t *testing.T, q []string) {
				if q[0] != "```sh" {
					t.Errorf("code does not start with its fence: %q", q[0])
				}
			},
		},
		{
			name:     "unclosed fence is closed",
			question: "run",
			text:     "Run:\n\n```sh\nmake run",
			want:     []string{"Run:", "", "```sh", "make run", "```"},
		},
		{
			name:     "list items on separate lines",
			question: "How do I rotate the signing key?",
			text:     numbered(20, "- step %02d: do the thing\n") + "- step 20: rotate the signing key\n" + numbered(20, "- later %02d: do the thing\n"),
			max:      200,
			has:      []string{"…", "", "- step 19: do the thing", "- step 20: rotate the signing key", "- later 00: do the thing", "", "…"},
			check: func(t *testing.T, q []string) {
				for _, l := range q {
					if l != "" && l != "…" && !strings.HasPrefix(l, "- ") {
						t.Errorf("line %q is not a list item", l)
					}
				}
			},
		},
		{
			name:     "long paragraph is clipped between words",
			question: "How do I rotate the signing key?",
			text: "- first item\n\n" + strings.Repeat("Filler words that say nothing much at all. ", 15) +
				"To rotate the signing key, run csctl keys rotate. " + strings.Repeat("More filler words that say nothing much. ", 15),
			max: 200,
			check: func(t *testing.T, q []string) {
				joined := strings.Join(q, "\n")
				if !strings.Contains(joined, "To rotate the signing key, run csctl keys rotate.") {
					t.Errorf("quote misses the matching sentence:\n%s", joined)
				}
			},
		},
		{
			name:     "blockquote and nested list",
			question: "socket",
			text:     "> **Note**\n> Socket Mode needs an app token.\n\n1. First\n   - nested a\n   - nested b\n2. Second",
			want:     []string{"> **Note**", "> Socket Mode needs an app token.", "", "1. First", "   - nested a", "   - nested b", "2. Second"},
		},
		{
			name:     "setext heading dropped",
			question: "make",
			text:     "Setup\n=====\n\nRun make.",
			want:     []string{"Run make."},
		},
		{
			name:     "passage of a heading alone keeps its text",
			question: "title",
			text:     "# Just a title",
			want:     []string{"Just a title"},
		},
		{
			name:     "windows line ends",
			question: "line",
			text:     "Line one\r\n\r\n- a\r\n- b",
			want:     []string{"Line one", "", "- a", "- b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := MustNew(t, extractive.Config{MaxQuoteRunes: tt.max})
			text, _ := mustStream(t, r, engine.ChatRequest{Question: tt.question, Passages: []engine.Passage{
				{Title: "Slack", HeadingPath: []string{"Setup"}, Text: tt.text},
			}})
			if text != r.Answer(tt.question, []engine.Passage{{Title: "Slack", HeadingPath: []string{"Setup"}, Text: tt.text}}) {
				t.Errorf("streamed answer differs from Answer")
			}
			if !strings.Contains(text, "\n[1] **Slack** › Setup\n> ") {
				t.Errorf("quote does not follow the [1] line:\n%s", text)
			}
			q := onlyQuote(t, text)
			max := cmp.Or(tt.max, extractive.DefaultMaxQuoteRunes)
			checkQuote(t, tt.text, q, max)
			joined := strings.Join(q, "\n")
			if tt.want != nil && !slices.Equal(q, tt.want) {
				t.Errorf("quote =\n%s\nwant\n%s", joined, strings.Join(tt.want, "\n"))
			}
			if !hasInOrder(q, tt.has) {
				t.Errorf("quote lacks the lines\n%s\nin this order:\n%s", strings.Join(tt.has, "\n"), joined)
			}
			for _, l := range tt.hasNot {
				if slices.Contains(q, l) {
					t.Errorf("quote has %q:\n%s", l, joined)
				}
			}
			if tt.check != nil {
				tt.check(t, q)
			}
		})
	}
}

// hasInOrder reports whether want appears in lines as a subsequence.
func hasInOrder(lines, want []string) bool {
	for _, l := range lines {
		if len(want) > 0 && l == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}

var citeLineRE = regexp.MustCompile(`^\[\d+\] \*\*`)

// quotesOf returns the quotes of an answer, each as its lines without the
// "> " prefix, and fails if a line of a quote does not start with ">".
func quotesOf(tb testing.TB, text string) [][]string {
	tb.Helper()
	var out [][]string
	in := false
	for line := range strings.Lines(text) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case citeLineRE.MatchString(line):
			out = append(out, nil)
			in = true
		case line == "":
			in = false
		case in:
			q, ok := strings.CutPrefix(line, "> ")
			if line == ">" {
				q, ok = "", true
			}
			if !ok {
				tb.Fatalf("quote line %q does not start with \"> \":\n%s", line, text)
			}
			out[len(out)-1] = append(out[len(out)-1], q)
		}
	}
	return out
}

func onlyQuote(tb testing.TB, text string) []string {
	tb.Helper()
	qs := quotesOf(tb, text)
	if len(qs) != 1 || len(qs[0]) == 0 {
		tb.Fatalf("want one quote, got %d:\n%s", len(qs), text)
	}
	return qs[0]
}

var fenceLineRE = regexp.MustCompile("^ {0,3}(`{3,}|~{3,})")

// checkQuote checks what holds for every quote of passage: valid UTF-8;
// within max runes but for omission marks; code fences closed; and every
// line a line of the passage, an omission mark, a closing fence, or
// clipped text of whole words of the passage.
func checkQuote(tb testing.TB, passage string, q []string, max int) {
	tb.Helper()
	joined := strings.Join(q, "\n")
	if !utf8.ValidString(joined) {
		tb.Fatalf("quote is not valid UTF-8: %q", joined)
	}
	total, marks := utf8.RuneCountInString(joined), 0
	for _, l := range q {
		if l == "" || l == "…" || l == "| … |" {
			marks += utf8.RuneCountInString(l) + 1
		}
	}
	if total-marks > max || total > max+12 {
		tb.Errorf("quote has %d runes (%d of them omission marks), limit %d:\n%s", total, marks, max, joined)
	}
	open := ""
	for _, l := range q {
		if m := fenceLineRE.FindStringSubmatch(l); m != nil {
			switch {
			case open == "":
				open = m[1]
			case strings.HasPrefix(m[1], open) && strings.TrimSpace(l) == m[1]:
				open = ""
			}
		}
	}
	if open != "" {
		tb.Errorf("quote leaves a code fence open:\n%s", joined)
	}

	norm := strings.ReplaceAll(passage, "\r\n", "\n")
	lines := map[string]bool{}
	for l := range strings.Lines(norm) {
		lines[strings.TrimRight(l, " \t\n")] = true
	}
	words := map[string]bool{}
	for _, w := range strings.Fields(norm) {
		words[w] = true
	}
	collapsed := strings.Join(strings.Fields(norm), " ")
	for _, l := range q {
		if lines[l] || l == "…" || l == "| … |" || fenceLineRE.MatchString(l) && strings.Trim(l, "`~ ") == "" {
			continue
		}
		for part := range strings.SplitSeq(l, "…") {
			part = strings.TrimSpace(part)
			if !strings.Contains(collapsed, part) {
				tb.Errorf("quote line %q is not from the passage", l)
			}
			if !strings.Contains(norm, " ") {
				continue // text without spaces is cut between runes
			}
			for _, w := range strings.Fields(part) {
				if !words[w] {
					tb.Errorf("quote line %q cuts the word %q", l, w)
				}
			}
		}
	}
}

func TestStreamCancelled(t *testing.T) {
	r := MustNew(t, extractive.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := r.Stream(ctx, engine.ChatRequest{Question: "x", Passages: []engine.Passage{{Title: "A", Text: "x y z"}}})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan struct{})
	go func() {
		for ev := range ch {
			if ev.Kind == engine.EventDone {
				t.Error("cancelled stream reported done")
			}
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("cancelled stream did not close")
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		cfg extractive.Config
		ok  bool
	}{
		{extractive.Config{}, true},
		{extractive.Config{MaxPassages: 1, MaxQuoteRunes: 200}, true},
		{extractive.Config{MaxPassages: -1}, false},
		{extractive.Config{MaxQuoteRunes: 10}, false},
	}
	for _, tt := range tests {
		_, err := extractive.New(tt.cfg)
		if (err == nil) != tt.ok {
			t.Errorf("New(%+v) = %v, want ok=%v", tt.cfg, err, tt.ok)
		}
		if err != nil && engine.ErrorCode(err) != engine.EINVALID {
			t.Errorf("New(%+v) error code = %s", tt.cfg, engine.ErrorCode(err))
		}
	}
	if got := MustNew(t, extractive.Config{}).DefaultModel(); got != engine.ModelExtractive {
		t.Errorf("DefaultModel() = %q", got)
	}
}
