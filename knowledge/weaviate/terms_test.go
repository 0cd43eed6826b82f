package weaviate

import (
	"regexp"
	"strings"
	"testing"
)

func TestQueryTerms(t *testing.T) {
	tests := []struct{ in, want string }{
		{"How do I connect Slack?", "connect slack"},
		{`"slack" OR (connect*)`, "slack connect"},
		{"slack;DROP TABLE chunks;--", "slack drop table chunks"},
		{"\x00slack\u200bbot\U0010FFFF", "slack bot"},
		{"Slack slack SLACK", "slack"},
		{"接続 slack café", "接続 slack café"},
		{"the", ""},
		{"?!", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := queryTerms(tt.in); got != tt.want {
			t.Errorf("queryTerms(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	long := queryTerms(strings.Repeat("word ", 10) + strings.Join(strings.Fields("a1 a2 a3 a4 a5 a6 a7 a8 a9 b1 b2 b3 b4 b5 b6 b7 b8 b9 c1 c2 c3 c4 c5 c6 c7 c8 c9 d1 d2 d3 d4 d5 d6 d7 d8 d9"), " "))
	if n := len(strings.Fields(long)); n != maxTerms {
		t.Errorf("a long query keeps %d terms, want %d", n, maxTerms)
	}
}

func TestObjectID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := objectID("doc:0"), objectID("doc:1")
	if !re.MatchString(string(a)) {
		t.Errorf("objectID = %s, want a version 5 UUID", a)
	}
	if a == b || a != objectID("doc:0") {
		t.Errorf("objectID is not one stable UUID per chunk id: %s, %s", a, b)
	}
}

func TestFilterValue(t *testing.T) {
	for _, ok := range []string{"docs", "doc-1:0", "Überweisung", "a b"} {
		if !filterValue(ok) {
			t.Errorf("filterValue(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", " docs", "docs ", "do\x00cs", "docs\u200b", "docs\n", "\xff"} {
		if filterValue(bad) {
			t.Errorf("filterValue(%q) = true", bad)
		}
	}
}
