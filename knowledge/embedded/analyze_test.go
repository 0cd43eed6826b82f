package embedded

import (
	"slices"
	"strings"
	"testing"
)

func TestQueryTerms(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"How do I connect Slack?", []string{"connect", "slack"}},
		{"connect connects SLACK slack", []string{"connect", "slack"}},
		{`"slack" AND (bot OR NOT token)*`, []string{"slack", "bot", "token"}},
		{"copy files and directories", []string{"copy", "file", "directory"}},
		{"status statuses buses glasses shoes", []string{"status", "statuse", "buse", "glasse", "shoe"}},
		{"entries queries series is was", []string{"entry", "query", "sery"}},
		{"slack-bot's chat:write", []string{"slack", "bot", "chat", "write"}},
		{"don't do it", nil},
		{"it is the one", []string{"one"}},
		{"of the and", nil},
		{"", nil},
		{"?!()*", nil},
		{"café Ångström 日本語 e\u0301", []string{"cafe", "angstrom", "日本語", "e"}},
		{"utf-8 x86_64 RFC2822 v1.2", []string{"utf", "8", "x86", "64", "rfc2822", "v1", "2"}},
		{"\u0301 \u200b", nil},
		{strings.Repeat("z", maxTermBytes+1) + " ok", []string{"ok"}},
	}
	var a analyzer
	for _, tt := range tests {
		if got := a.queryTerms(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("queryTerms(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if n := len(a.queryTerms(strings.Repeat("word ", 10) + fields(100))); n != maxTerms {
		t.Errorf("long query has %d terms, want %d", n, maxTerms)
	}
}

func fields(n int) string {
	var sb strings.Builder
	for i := range n {
		sb.WriteString(" term")
		sb.WriteByte(byte('a' + i%26))
		sb.WriteByte(byte('a' + i/26))
	}
	return sb.String()
}

func TestTermsRoundTrip(t *testing.T) {
	var a analyzer
	ft := a.analyzeChunk("Slack setup", "Setup\nTokens", "Copy the token. Copying tokens twice copies nothing: the token is secret.")
	type got struct {
		field int
		term  string
		freq  uint32
	}
	var terms []got
	var lengths []uint32
	err := decodeTerms(encodeTerms(ft),
		func(_ int, n uint32) { lengths = append(lengths, n) },
		func(f int, term []byte, freq uint32) { terms = append(terms, got{f, string(term), freq}) })
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint32{2, 2, 9}; !slices.Equal(lengths, want) {
		t.Errorf("lengths = %v, want %v", lengths, want)
	}
	want := []got{
		{fieldTitle, "slack", 1}, {fieldTitle, "setup", 1},
		{fieldHeadings, "setup", 1}, {fieldHeadings, "token", 1},
		{fieldText, "copy", 2}, {fieldText, "token", 3}, {fieldText, "copying", 1}, {fieldText, "twice", 1},
		{fieldText, "nothing", 1}, {fieldText, "secret", 1},
	}
	if !slices.Equal(terms, want) {
		t.Errorf("terms = %v, want %v", terms, want)
	}
}

// FuzzDecodeTerms checks that a damaged terms column is an error, never a
// panic or a term beyond the blob.
func FuzzDecodeTerms(f *testing.F) {
	var a analyzer
	f.Add(encodeTerms(a.analyzeChunk("Title", "H1\nH2", "some text with words")))
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 1, 200, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		fieldsSeen := 0
		_ = decodeTerms(b, func(int, uint32) { fieldsSeen++ }, func(f int, term []byte, _ uint32) {
			if f < 0 || f >= numFields || len(term) > len(b) {
				t.Fatalf("term %q in field %d from a %d-byte blob", term, f, len(b))
			}
		})
		if fieldsSeen > numFields {
			t.Fatalf("%d field lengths", fieldsSeen)
		}
	})
}

func TestScore(t *testing.T) {
	tests := []struct {
		bm25 float64
		want float64
	}{
		{10, 0.5},
		{30, 0.75},
		{1e6, 1e6 / (1e6 + scoreHalf)},
	}
	for _, tt := range tests {
		if got := score(tt.bm25); got != tt.want {
			t.Errorf("score(%v) = %v, want %v", tt.bm25, got, tt.want)
		}
	}
	if s := score(1e-7); s <= 0 || s >= score(1) {
		t.Errorf("score of a tiny bm25 = %v, want in (0, score(1))", s)
	}
	if s := score(0); s <= 0 {
		t.Errorf("score(0) = %v, want above 0", s)
	}
}
