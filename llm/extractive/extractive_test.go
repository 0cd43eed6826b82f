package extractive_test

import (
	"context"
	"regexp"
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
		want                 string // must appear in the quote
	}{
		{
			name:     "long sentence of multibyte words",
			question: "Grüße aus Köln",
			text:     strings.Repeat("Schöne Grüße aus Düsseldorf, Köln und München über Straßen ", 30),
			want:     "Grüße",
		},
		{
			name:     "chinese without spaces",
			question: "東京の天気は？",
			text:     strings.Repeat("今日は晴れです", 60) + "東京の天気は雨です。" + strings.Repeat("明日も晴れ", 60),
			want:     "東京の天気",
		},
		{
			name:     "emoji",
			question: "rockets",
			text:     strings.Repeat("🚀 rockets launch 🌕 ", 80),
			want:     "rockets",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := MustNew(t, extractive.Config{MaxQuoteRunes: 120})
			text, _ := mustStream(t, r, engine.ChatRequest{Question: tt.question, Passages: []engine.Passage{{Title: "T", Text: tt.text}}})
			if !utf8.ValidString(text) {
				t.Fatalf("answer is not valid UTF-8: %q", text)
			}
			q := quoteOf(t, text)
			if n := utf8.RuneCountInString(q); n > 120 {
				t.Fatalf("quote has %d runes, limit 120", n)
			}
			if !strings.Contains(q, tt.want) {
				t.Fatalf("quote %q lacks %q", q, tt.want)
			}
			// No word is cut: every word of the quote is a word of the text.
			words := map[string]bool{}
			for _, w := range strings.Fields(tt.text) {
				words[strings.Trim(w, ",.")] = true
			}
			if strings.Contains(tt.text, " ") {
				for _, w := range strings.Fields(strings.Trim(q, "…")) {
					if !words[strings.Trim(w, ",.")] {
						t.Fatalf("quote %q cuts the word %q", q, w)
					}
				}
			}
		})
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
