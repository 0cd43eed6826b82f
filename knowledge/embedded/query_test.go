package embedded

import (
	"strings"
	"testing"
)

func TestMatchQuery(t *testing.T) {
	tests := []struct{ in, want string }{
		{"How do I connect Slack?", `"connect" OR "slack"`},
		{"connect connect SLACK slack", `"connect" OR "slack"`},
		{`"slack" AND (bot OR NOT token)*`, `"slack" OR "bot" OR "token"`},
		{"NEAR(slack bot, 2)", `"near" OR "slack" OR "bot" OR "2"`},
		{"slack-bot's chat:write", `"slack" OR "bot" OR "chat" OR "write"`},
		{"don't do it", ""},
		{"it is the one", `"one"`},
		{"of the and", ""},
		{"the of and", ""},
		{"", ""},
		{"?!()*", ""},
		{"café 日本語 e\u0301", `"café" OR "日本語" OR "e` + "\u0301" + `"`},
		{"\u0301 \u200b", ""},
	}
	for _, tt := range tests {
		if got := matchQuery(tt.in); got != tt.want {
			t.Errorf("matchQuery(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	long := matchQuery(strings.Repeat("word ", 10) + strings.Repeat("x", 3) + " " + fields(100))
	if n := strings.Count(long, " OR ") + 1; n != maxTerms {
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

func TestScore(t *testing.T) {
	tests := []struct {
		rank float64
		want float64
	}{
		{-10, 0.5},
		{-30, 0.75},
		{-1e6, 1e6 / (1e6 + scoreHalf)},
	}
	for _, tt := range tests {
		if got := score(tt.rank); got != tt.want {
			t.Errorf("score(%v) = %v, want %v", tt.rank, got, tt.want)
		}
	}
	if s := score(-1e-7); s <= 0 || s >= score(-1) {
		t.Errorf("score of a tiny bm25 = %v, want in (0, score(-1))", s)
	}
	if s := score(0); s <= 0 {
		t.Errorf("score(0) = %v, want above 0", s)
	}
}
