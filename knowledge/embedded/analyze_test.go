package embedded

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
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
// panic or a term beyond the blob; that what decodes encodes back to
// something that decodes the same; and, reading the bytes as a chunk's
// title, headings and text, that analysed fields survive the column
// (encode, then decode) exactly, with each field's length the sum of its
// terms' frequencies and no term empty, repeated or over the size limit.
func FuzzDecodeTerms(f *testing.F) {
	var a analyzer
	f.Add(encodeTerms(a.analyzeChunk("Title", "H1\nH2", "some text with words")))
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 1, 200, 1})
	f.Add([]byte("Slack setup\x00Setup\nTokens\x00Copy the token. Copying tokens twice copies nothing: the token is secret."))
	f.Add([]byte("café Ångström 日本語 e\u0301\x00utf-8 x86_64 RFC2822 v1.2\x00" + strings.Repeat("z", maxTermBytes+1) + " ok \xff\xfe"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var decoded fieldTerms
		fieldsSeen := 0
		err := decodeTerms(b, func(f int, n uint32) { fieldsSeen++; decoded.length[f] = n }, func(f int, term []byte, freq uint32) {
			if f < 0 || f >= numFields || len(term) > len(b) {
				t.Fatalf("term %q in field %d from a %d-byte blob", term, f, len(b))
			}
			decoded.terms[f] = append(decoded.terms[f], termFreq{string(term), freq})
		})
		if fieldsSeen > numFields {
			t.Fatalf("%d field lengths", fieldsSeen)
		}
		if err == nil {
			if again := roundTrip(t, decoded); !sameTerms(again, decoded) {
				t.Fatalf("decoded %v, re-encoded and decoded %v", decoded, again)
			}
		}

		// The bytes as a chunk's fields, separated by NUL.
		parts := strings.SplitN(string(b), "\x00", numFields)
		for len(parts) < numFields {
			parts = append(parts, "")
		}
		ft := a.analyzeChunk(parts[0], parts[1], parts[2])
		for f := range numFields {
			var sum uint32
			seen := map[string]bool{}
			for _, tf := range ft.terms[f] {
				if tf.term == "" || len(tf.term) > maxTermBytes || seen[tf.term] || tf.freq == 0 || !utf8.ValidString(tf.term) {
					t.Fatalf("field %d: term %q (frequency %d) of %q", f, tf.term, tf.freq, parts[f])
				}
				seen[tf.term] = true
				sum += tf.freq
			}
			if sum != ft.length[f] {
				t.Fatalf("field %d: length %d, frequencies add up to %d", f, ft.length[f], sum)
			}
		}
		if got := roundTrip(t, ft); !sameTerms(got, ft) {
			t.Fatalf("analysed %v, stored and read back %v", ft, got)
		}
	})
}

// roundTrip encodes ft and decodes it again.
func roundTrip(t *testing.T, ft fieldTerms) fieldTerms {
	t.Helper()
	var out fieldTerms
	err := decodeTerms(encodeTerms(ft), func(f int, n uint32) { out.length[f] = n },
		func(f int, term []byte, freq uint32) {
			out.terms[f] = append(out.terms[f], termFreq{string(term), freq})
		})
	if err != nil {
		t.Fatalf("encoded terms do not decode: %v", err)
	}
	return out
}

func sameTerms(a, b fieldTerms) bool {
	if a.length != b.length {
		return false
	}
	for f := range numFields {
		if len(a.terms[f]) != len(b.terms[f]) || len(a.terms[f]) > 0 && !slices.Equal(a.terms[f], b.terms[f]) {
			return false
		}
	}
	return true
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
