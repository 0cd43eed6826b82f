package textsplit

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestSplit(t *testing.T) {
	code := "```go\n" + strings.Repeat("fmt.Println(1)\n", 6) + "```"
	tests := []struct {
		name  string
		text  string
		limit int
		want  []string
	}{
		{"empty", "", 10, nil},
		{"whitespace only", " \n\t\n ", 10, nil},
		{"fits unchanged", "  hello world \n", 20, []string{"  hello world \n"}},
		{"exact fit", "hello", 5, []string{"hello"}},
		{"no limit", strings.Repeat("a", 100), 0, []string{strings.Repeat("a", 100)}},
		{"negative limit", "abc def", -1, []string{"abc def"}},
		{
			"paragraph before line break",
			"First paragraph here.\n\nSecond one\nstill second.",
			30,
			[]string{"First paragraph here.", "Second one\nstill second."},
		},
		{
			"line break before sentence",
			"One. Two three four\nfive six seven eight",
			24,
			[]string{"One. Two three four", "five six seven eight"},
		},
		{
			"sentence before space",
			"This is one. And this is two words more",
			20,
			[]string{"This is one.", "And this is two", "words more"},
		},
		{
			"space",
			"alpha beta gamma delta epsilon",
			12,
			[]string{"alpha beta", "gamma delta", "epsilon"},
		},
		{
			"hard cut",
			strings.Repeat("x", 25),
			10,
			[]string{strings.Repeat("x", 10), strings.Repeat("x", 10), strings.Repeat("x", 5)},
		},
		{
			"runes not bytes",
			strings.Repeat("é", 12),
			5,
			[]string{"ééééé", "ééééé", "éé"},
		},
		{
			"emoji",
			"👍👍👍 👍👍👍",
			4,
			[]string{"👍👍👍", "👍👍👍"},
		},
		{
			"cut near the end of the piece wins over an early paragraph break",
			"a\n\nbbb ccc ddd eee fff ggg",
			16,
			[]string{"a\n\nbbb ccc ddd", "eee fff ggg"},
		},
		{
			"early paragraph break wins over a hard cut",
			"a\n\n" + strings.Repeat("b", 30),
			16,
			[]string{"a", strings.Repeat("b", 16), strings.Repeat("b", 14)},
		},
		{
			"code block moves whole to the next piece",
			"Intro text.\n\n" + code + "\n\nOutro.",
			110,
			[]string{"Intro text.", code + "\n\nOutro."},
		},
		{
			"code block closed and reopened",
			code,
			50,
			[]string{
				"```go\nfmt.Println(1)\nfmt.Println(1)\n```",
				"```go\nfmt.Println(1)\nfmt.Println(1)\n```",
				"```go\nfmt.Println(1)\nfmt.Println(1)\n```",
			},
		},
		{
			"tilde fence",
			"~~~\naaaa bbbb\ncccc dddd\n~~~",
			20,
			[]string{"~~~\naaaa bbbb\n~~~", "~~~\ncccc dddd\n~~~"},
		},
		{
			"longer marker kept",
			"````md\n```go\nx := 1\n```\n````",
			24,
			[]string{"````md\n```go\nx := 1\n````", "````md\n```\n````"},
		},
		{
			"indentation in code kept",
			"```py\ndef f():\n    return 1\n    return 2\n```",
			24,
			[]string{"```py\ndef f():\n```", "```py\n    return 1\n```", "```py\n    return 2\n```"},
		},
		{
			"unclosed fence left open in the last piece",
			"```\nline one\nline two",
			16,
			[]string{"```\nline one\n```", "```\nline two"},
		},
		{
			"small limit cuts without repair",
			"```\nabcdef\n```",
			6,
			[]string{"```", "abcdef", "```"},
		},
		{
			"no cut before a mid-line fence",
			"See this: ```x``` and more words",
			16,
			[]string{"See", "this: ```x```", "and more words"},
		},
		{
			"invalid UTF-8 replaced",
			"ab\xffcd ef",
			4,
			[]string{"ab\uFFFDc", "d ef"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Split(tt.text, tt.limit)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Split(%q, %d):\n got %q\nwant %q", tt.text, tt.limit, got, tt.want)
			}
			checkSplit(t, tt.text, tt.limit)
		})
	}
}

// TestSplitBalanced checks that realistic answers never need to break a
// fence.
func TestSplitBalanced(t *testing.T) {
	answer := strings.Join([]string{
		"# Setting up",
		"Install the tool first. It takes a minute! Then configure it?",
		"1. Run:\n   ```bash\n   go install example.com/tool@latest\n   tool init --name demo\n   ```\n2. Edit the file:\n   ~~~yaml\n   name: demo\n   port: 8080\n   ~~~",
		"```go\npackage main\n\nimport \"fmt\"\n\nfunc main() {\n\tfor i := 0; i < 10; i++ {\n\t\tfmt.Println(\"line\", i)\n\t}\n}\n```",
		strings.Repeat("A long paragraph with many words in it. ", 20),
	}, "\n\n")
	for _, limit := range []int{20, 24, 33, 50, 64, 100, 200, 2000} {
		pieces, balanced := split(answer, limit)
		if !balanced {
			t.Errorf("limit %d: fences not kept balanced: %q", limit, pieces)
		}
		checkSplit(t, answer, limit)
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		limit  int
		suffix string
		want   string
	}{
		{"fits", "hello", 5, "…", "hello"},
		{"no limit", "hello", 0, "…", "hello"},
		{"cut", "hello world", 8, "…", "hello w…"},
		{"trailing space trimmed", "hello world", 7, "…", "hello…"},
		{"runes", "héllo wörld", 5, "…", "héll…"},
		{"empty suffix", "hello world", 5, "", "hello"},
		{"suffix too long", "hello world", 2, "[…]", "[…"},
		{"suffix fills limit", "hello world", 3, "[…]", "[…]"},
		{"inside fence", "```go\nfmt.Println(1)\nfmt.Println(2)\n```", 25, "…", "```go\nfmt.Println(1)…\n```"},
		{"no room for fence", "intro\n```go\ncode\n```", 12, "…", "intro…"},
		{"not inside a fence line", "intro\n```golang\ncode\n```\n", 10, "…", "intro…"},
		{"after fence", "```\nx\n```\nmore text", 14, "…", "```\nx\n```\nmor…"},
		{"suffix after a closing fence line", "```00\n```\n```", 12, "0", "```00\n```\n0"},
		{"no room for the line break", "```\nx\n```\n\ntail", 10, "…", "```\nx…\n```"},
		{"no room for the line break after an opening", "x\n```\n```y", 6, "…", "x…"},
		{"invalid UTF-8", "a\xffbcdef", 3, "", "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Truncate(tt.text, tt.limit, tt.suffix)
			if got != tt.want {
				t.Errorf("Truncate(%q, %d, %q) = %q, want %q", tt.text, tt.limit, tt.suffix, got, tt.want)
			}
			checkTruncate(t, tt.text, tt.limit, tt.suffix)
		})
	}
}

func FuzzSplit(f *testing.F) {
	f.Add("Hello, world.", 5)
	f.Add("para one\n\npara two. More text! Questions? yes", 12)
	f.Add("```go\nfunc main() {\n\tprintln(1)\n}\n```\n\nafter", 16)
	f.Add("text ```inline``` text\n```\ncode\n  ```x\n```\n~~~~\n~~~\n~~~~", 17)
	f.Add("- item\n  ```\n  code\n  ```\n- item", 20)
	f.Add("````\n```\n````\n"+strings.Repeat("é", 40), 18)
	f.Add("```"+strings.Repeat("x", 50)+"\ny\n```", 30)
	f.Add("\n\n   \t\n", 3)
	f.Add("a\xff\xfeb", 1)
	f.Fuzz(func(t *testing.T, text string, limit int) {
		if limit < 0 {
			limit = -(limit + 1)
		}
		limit %= 300
		checkSplit(t, text, limit)
	})
}

func FuzzTruncate(f *testing.F) {
	f.Add("hello world", 8, "…")
	f.Add("```go\nfmt.Println(1)\n```", 12, "...")
	f.Add("x\n~~~\n\n\n~~~", 7, "")
	f.Add("é\xffé", 2, "\xff")
	f.Fuzz(func(t *testing.T, text string, limit int, suffix string) {
		if limit < 0 {
			limit = -(limit + 1)
		}
		limit %= 300
		checkTruncate(t, text, limit, suffix)
	})
}

// checkSplit checks the properties every split must have.
func checkSplit(t *testing.T, text string, limit int) {
	t.Helper()
	pieces, balanced := split(text, limit)
	got := Split(text, limit)
	if len(got) != len(pieces) {
		t.Fatalf("Split and split disagree: %q vs %q", got, pieces)
	}
	clean := strings.ToValidUTF8(text, "\uFFFD")
	if strings.TrimSpace(clean) == "" {
		if got != nil {
			t.Fatalf("Split(%q) = %q, want nil", text, got)
		}
		return
	}
	if len(got) == 0 {
		t.Fatalf("Split(%q, %d) = nil", text, limit)
	}
	var bodies strings.Builder
	for i, p := range pieces {
		s := got[i]
		if s != p.String() {
			t.Fatalf("piece %d: %q != %q", i, s, p.String())
		}
		if !utf8.ValidString(s) {
			t.Errorf("piece %d is not valid UTF-8: %q", i, s)
		}
		if n := utf8.RuneCountInString(s); limit > 0 && n > limit {
			t.Errorf("piece %d has %d runes, limit %d: %q", i, n, limit, s)
		}
		if strings.TrimSpace(s) == "" {
			t.Errorf("piece %d is blank: %q", i, s)
		}
		if p.open != "" && (!isFenceLine(strings.TrimSuffix(p.open, "\n")) || !strings.HasSuffix(p.open, "\n")) {
			t.Errorf("piece %d reopens with %q", i, p.open)
		}
		if p.close != "" && !isFenceLine(strings.TrimPrefix(p.close, "\n")) {
			t.Errorf("piece %d closes with %q", i, p.close)
		}
		if (p.close != "") != (i+1 < len(pieces) && pieces[i+1].open != "") {
			t.Errorf("piece %d closes with %q but piece %d opens differently", i, p.close, i+1)
		}
		bodies.WriteString(p.body)
	}
	if a, b := dropSpace(bodies.String()), dropSpace(clean); a != b {
		t.Errorf("content changed:\n got %q\nwant %q", a, b)
	}
	if !balanced {
		return
	}
	for i, s := range got {
		want := false
		if i == len(got)-1 {
			want = endsInFence(clean)
		}
		if endsInFence(s) != want {
			t.Errorf("piece %d of %d: ends inside a fence = %v, want %v: %q", i, len(got), !want, want, s)
		}
	}
}

func checkTruncate(t *testing.T, text string, limit int, suffix string) {
	t.Helper()
	got := Truncate(text, limit, suffix)
	clean := strings.ToValidUTF8(text, "\uFFFD")
	if !utf8.ValidString(got) {
		t.Errorf("Truncate(%q, %d, %q) = %q: invalid UTF-8", text, limit, suffix, got)
	}
	if limit < 1 || utf8.RuneCountInString(clean) <= limit {
		if got != clean {
			t.Errorf("Truncate(%q, %d, %q) = %q, want it unchanged", text, limit, suffix, got)
		}
		return
	}
	if n := utf8.RuneCountInString(got); n > limit {
		t.Errorf("Truncate(%q, %d, %q) = %q: %d runes", text, limit, suffix, got, n)
	}
	sfx := strings.ToValidUTF8(suffix, "\uFFFD")
	if utf8.RuneCountInString(sfx) >= limit {
		return
	}
	// got is a prefix of the text and the suffix: after it a closing
	// fence, or before it a line break when the prefix ends with a fence
	// line. The shapes can overlap ("```0" may be "```" and the suffix
	// "0"): got is right when one reading of it is.
	type reading struct{ body, closer string }
	var readings []reading
	if i := strings.LastIndexByte(got, '\n'); i >= 0 && isFenceLine(got[i+1:]) && strings.HasSuffix(got[:i], sfx) {
		readings = append(readings, reading{got[:i-len(sfx)], got[i:]})
	}
	if body, ok := strings.CutSuffix(got, "\n"+sfx); ok && fenceLike(body) {
		readings = append(readings, reading{body, ""})
	}
	if body, ok := strings.CutSuffix(got, sfx); ok {
		readings = append(readings, reading{body, ""})
	}
	var why []string
	for _, r := range readings {
		switch {
		case !strings.HasPrefix(clean, r.body):
			why = append(why, fmt.Sprintf("%q is not a prefix of the text", r.body))
		case endsInFence(r.body + r.closer):
			why = append(why, fmt.Sprintf("%q+%q leaves a fence open", r.body, r.closer))
		case r.closer == "" && sfx != "" && sfx[0] != '\n' && strings.HasSuffix(got, r.body+sfx) && fenceLike(r.body):
			why = append(why, fmt.Sprintf("the suffix is on the fence line of %q", r.body))
		default:
			return
		}
	}
	t.Fatalf("Truncate(%q, %d, %q) = %q: not the text's prefix, the suffix and a closing fence (%s)", text, limit, suffix, got, strings.Join(why, "; "))
}

// fenceLike reports whether the last line of s starts (after spaces) like
// a fence: three backticks or tildes.
func fenceLike(s string) bool {
	t := strings.TrimLeft(s[strings.LastIndexByte(s, '\n')+1:], " \t")
	return strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~")
}

// isFenceLine reports whether line is a fence line with nothing around it.
func isFenceLine(line string) bool {
	if len(line) < 3 || line != strings.TrimSpace(line) {
		return false
	}
	c := line[0]
	return (c == '`' || c == '~') && line[1] == c && line[2] == c
}

// endsInFence reports whether s ends inside a fenced code block. It is
// written independently of scanFences.
func endsInFence(s string) bool {
	var open string // marker of the open fence
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		n := 0
		for n < len(t) && (t[n] == '`' || t[n] == '~') && t[n] == t[0] {
			n++
		}
		if n < 3 {
			continue
		}
		info := strings.TrimSpace(t[n:])
		switch {
		case open == "" && (t[0] == '~' || !strings.Contains(info, "`")):
			open = t[:n]
		case open != "" && t[0] == open[0] && n >= len(open) && info == "":
			open = ""
		}
	}
	return open != ""
}

func dropSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}
