package mrkdwn

import (
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/yuin/goldmark/text"
)

func TestConvert(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"plain", "Hello, world.", "Hello, world."},
		{"bold", "**bold** and __bold__", "*bold* and *bold*"},
		{"italic", "*italic* and _italic_", "_italic_ and _italic_"},
		{"bold italic", "***both***", "_*both*_"},
		{"strike", "~~gone~~", "~gone~"},
		{"inline code", "use `a < b && c`", "use `a &lt; b &amp;&amp; c`"},
		{"inline code with backtick", "`` a`b ``", "`aˋb`"},
		{"inline code keeps mentions", "`@here`", "`@here`"},
		{
			"fenced code",
			"```go\nif a < b && c > d {\n\t**x** @here\n}\n```",
			"```\nif a &lt; b &amp;&amp; c &gt; d {\n\t**x** @here\n}\n```",
		},
		{"indented code", "    x := 1\n    y := 2", "```\nx := 1\ny := 2\n```"},
		{"fence inside code", "````\n```go\nx\n```\n````", "```\n``\u200b`go\nx\n``\u200b`\n```"},
		{"heading", "# Title\n\nText", "*Title*\n\nText"},
		{"bold heading", "## **Title** here", "*Title here*"},
		{"setext heading", "Two\nlines\n===", "*Two lines*"},
		{"paragraphs", "p1\n\n\np2", "p1\n\np2"},
		{"soft break", "a\nb", "a\nb"},
		{"hard break", "line one  \nline two\\\nthree", "line one\nline two\nthree"},
		{"thematic break", "a\n\n---\n\nb", "a\n\n———\n\nb"},
		{"link", "[Go](https://go.dev)", "<https://go.dev|Go>"},
		{"link with formatting", "[**bold** link](https://x.io)", "<https://x.io|bold link>"},
		{"mailto link", "[mail](mailto:a@b.c)", "<mailto:a@b.c|mail>"},
		{"upper-case scheme", "[x](HTTPS://X.IO)", "<HTTPS://X.IO|x>"},
		{"link with ampersand", "[q](https://x.io/?a=1&b=2)", "<https://x.io/?a=1&amp;b=2|q>"},
		{"link with entity", "[q](https://x.io/?a=1&amp;b=2)", "<https://x.io/?a=1&amp;b=2|q>"},
		{"pipe and angle in link", "[a|b](https://x.io/?q=a|b>c)", "<https://x.io/?q=a%7Cb%3Ec|a∣b>"},
		{"space in link", "[a](<https://x.io/a b>)", "<https://x.io/a%20b|a>"},
		{"mention in link text", "[<@U1>](https://x.io)", "<https://x.io|&lt;@U1&gt;>"},
		{"empty link text", "[](https://x.io)", "<https://x.io>"},
		{"javascript link", "[click](javascript:alert(1))", "click"},
		{"data link", "[**x**](data:text/html,hi)", "*x*"},
		{"relative link", "[docs](/docs)", "docs"},
		{"scheme without slashes", "[x](https:x.io) [y](http://)", "x y"},
		{"autolink", "<https://go.dev>", "<https://go.dev>"},
		{"bare url", "see https://go.dev/doc_a_b now", "see <https://go.dev/doc_a_b> now"},
		{"www url", "www.example.com", "<http://www.example.com|www.example.com>"},
		{"email autolink", "<bob@example.com>", "<mailto:bob@example.com|bob@example.com>"},
		{"javascript autolink", "<javascript:alert(1)>", "javascript:alert(1)"},
		{"image", "![logo](https://x.io/a.png)", "<https://x.io/a.png|logo>"},
		{"image without alt", "![](https://x.io/a.png)", "<https://x.io/a.png>"},
		{"data image", "![x](data:image/png;base64,AAA)", "x"},
		{"slack control sequences", "hi <!channel> <@U123> <#C42|general>", "hi &lt;!channel&gt; &lt;@U123&gt; &lt;#C42|general&gt;"},
		{"control sequence block", "<!here> hi", "&lt;!here&gt; hi"},
		{"bare mentions", "@here please, @Channel and @EVERYONE", "@\u200bhere please, @\u200bChannel and @\u200bEVERYONE"},
		{"mention via entity", "@&#104;ere", "@\u200bhere"},
		{"not a mention", "mail me@example", "mail me@example"},
		{"raw html", "a <b>bold</b> c", "a &lt;b&gt;bold&lt;/b&gt; c"},
		{"html block", "<div>\n<script>alert(1)</script>\n</div>", "&lt;div&gt;\n&lt;script&gt;alert(1)&lt;/script&gt;\n&lt;/div&gt;"},
		{"entities", "AT&amp;T &copy; 5 &lt; 6 &#35; &#x1F600;", "AT&amp;T © 5 &lt; 6 # 😀"},
		{"backslash escape", "1\\. not a list \\<b\\>", "1. not a list &lt;b&gt;"},
		{"bullets", "- one\n- two\n  - nested\n    - deeper\n- three", "• one\n• two\n    • nested\n        • deeper\n• three"},
		{"ordered", "3. c\n4. d", "3. c\n4. d"},
		{"loose list", "- a\n\n- b", "• a\n\n• b"},
		{"list with paragraphs", "1. a\n\n   more\n2. b", "1. a\n\n    more\n\n2. b"},
		{"list with code", "1. Run:\n   ```sh\n   make\n   ```\n2. Done", "1. Run:\n```\nmake\n```\n2. Done"},
		{"task list", "- [x] done\n- [ ] todo", "• ☑ done\n• ☐ todo"},
		{"blockquote", "> quoted\n> more\n>\n> next\n\nafter", "> quoted\n> more\n>\n> next\n\nafter"},
		{"quoted list", "> - a\n> - b", "> • a\n> • b"},
		{
			"table",
			"| Name | Age | Note |\n|:-----|----:|:---:|\n| Alice | 30 | a & b |\n| Bob | 4 | **x** |",
			"```\nName  | Age | Note\n------+-----+------\nAlice |  30 | a &amp; b\nBob   |   4 |   x\n```",
		},
		{"invalid UTF-8", "a\xffb", "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Convert(tt.in)
			if got != tt.want {
				t.Errorf("Convert(%q):\n got %q\nwant %q", tt.in, got, tt.want)
			}
			checkOutput(t, tt.in, got)
		})
	}
}

// TestConvertConcurrent runs Convert from several goroutines, for the race
// detector: the goldmark parser is shared.
func TestConvertConcurrent(t *testing.T) {
	in := "# T\n\n- **a** [l](https://x.io)\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```\nx\n```"
	want := Convert(in)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if got := Convert(in); got != want {
					t.Errorf("Convert = %q, want %q", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"a<b>&c", "a&lt;b&gt;&amp;c"},
		{"&amp;", "&amp;amp;"},
		{"<!here>", "&lt;!here&gt;"},
	}
	for _, tt := range tests {
		if got := Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzConvert checks, on arbitrary Markdown, the promises of the package
// (checkOutput) and that the output is what the rendered lines say, with
// every ``` block closed and no fence inside one.
func FuzzConvert(f *testing.F) {
	f.Add("# Title\n\n**bold** _it_ ~~s~~ `c` [l](https://x.io) <https://y.io>")
	f.Add("<!channel> <@U1> <#C1> @here &lt;!here&gt; &#60;!here&#62;")
	f.Add("[x](javascript:alert(1)) [y](https://a|b>c) ![z](mailto:<a>)")
	f.Add("- a\n  - b\n    1. c\n> q\n\n```go\nx < y\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |")
	f.Add("<div>\n<b>x</b>\n</div>\n\n<a href=\"https://x.io\">x</a>")
	f.Add("www.example.com/<x> me@here.com https://x.io/a|b")
	f.Add("[a](<https://x.io/>b>) [c](https://x.io \"t<i>tle\") \\<@U1\\>")
	f.Add("a\xff\x00b")
	f.Add("[0](https:0)0")
	f.Add("@channel @Here @everyone @&#104;ere [@here](https://x.io) ![@channel](https://x.io/a.png) `@here` *@here*")
	f.Add("> - [x] done\n>   ```\n>   ````\n>   ```\n> 1. a & b > c\n\n    indented & <code>")
	f.Add("| @here | <b> |\n|:-:|--:|\n| &amp; | `x|y` |\n\nSetext @here\n===")
	f.Fuzz(func(t *testing.T, in string) {
		out := Convert(in)
		checkOutput(t, in, out)
		// The lines, as Convert renders them, with which are code.
		src := []byte(strings.ToValidUTF8(in, "\uFFFD"))
		lines := (&renderer{src: src}).children(md.Parser().Parse(text.NewReader(src)), false)
		texts := make([]string, len(lines))
		for i, l := range lines {
			texts[i] = l.text
		}
		if joined := strings.Trim(strings.Join(texts, "\n"), "\n"); joined != out {
			t.Fatalf("Convert(%q) = %q, but the lines join to %q", in, out, joined)
		}
		open := false
		for i, l := range lines {
			bare := strings.TrimLeft(l.text, "> ")
			if !l.code {
				if open {
					t.Fatalf("Convert(%q) = %q: line %d %q is inside a ``` block", in, out, i, l.text)
				}
				if strings.ContainsAny(l.text, "`") {
					continue // an inline code span may show a mention as written
				}
				checkMentions(t, in, out, withoutLinks(l.text))
				continue
			}
			if bare == "```" {
				open = !open
				continue
			}
			if !open || strings.Contains(bare, "```") {
				t.Fatalf("Convert(%q) = %q: code line %d %q outside a block or with a fence", in, out, i, l.text)
			}
		}
		if open {
			t.Fatalf("Convert(%q) = %q: a ``` block is not closed", in, out)
		}
	})
}

// checkMentions fails if text (outside code and links) would notify a
// channel: @here, @channel or @everyone without the zero-width space.
func checkMentions(t *testing.T, in, out, text string) {
	t.Helper()
	lower := strings.ToLower(text)
	for _, w := range []string{"@here", "@channel", "@everyone"} {
		if strings.Contains(lower, w) {
			t.Fatalf("Convert(%q) = %q: %s left live in %q", in, out, w, text)
		}
	}
}

// withoutLinks drops the <url|label> links of a line (their labels are
// checked by checkOutput's parse, and URLs are not read as mentions).
func withoutLinks(s string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			return b.String()
		}
		// Keep the label: it is shown as text.
		if _, label, ok := strings.Cut(s[i+1:i+j], "|"); ok {
			b.WriteString(" " + label + " ")
		}
		s = s[i+j+1:]
	}
}

// checkOutput checks that out is valid UTF-8, that every < in it starts a
// well-formed link to an http, https or mailto URL and every > ends one or
// marks a quote, and that every & starts &amp;, &lt; or &gt;, so that no
// Slack control sequence or stray entity comes out.
func checkOutput(t *testing.T, in, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("Convert(%q) = %q: invalid UTF-8", in, out)
	}
	closers := map[int]bool{}
	for i := 0; i < len(out); i++ {
		if out[i] != '<' {
			continue
		}
		rest := out[i+1:]
		lower := strings.ToLower(rest)
		if !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://") && !strings.HasPrefix(lower, "mailto:") {
			t.Fatalf("Convert(%q) = %q: unescaped < at %d", in, out, i)
		}
		end := strings.IndexByte(rest, '>')
		if end < 0 {
			t.Fatalf("Convert(%q) = %q: unterminated link at %d", in, out, i)
		}
		inner := rest[:end]
		u, _, _ := strings.Cut(inner, "|")
		if strings.ContainsAny(inner, "<\n") || strings.Count(inner, "|") > 1 || strings.ContainsAny(u, " \t") {
			t.Fatalf("Convert(%q) = %q: malformed link %q", in, out, inner)
		}
		closers[i+1+end] = true
	}
	lineStart := 0
	for i := 0; i < len(out); i++ {
		switch out[i] {
		case '\n':
			lineStart = i + 1
		case '>':
			// A quote marker: only markers, list bullets and numbers before it.
			if !closers[i] && strings.Trim(out[lineStart:i], "> •.0123456789") != "" {
				t.Fatalf("Convert(%q) = %q: unescaped > at %d", in, out, i)
			}
		case '&':
			if r := out[i:]; !strings.HasPrefix(r, "&amp;") && !strings.HasPrefix(r, "&lt;") && !strings.HasPrefix(r, "&gt;") {
				t.Fatalf("Convert(%q) = %q: unescaped & at %d", in, out, i)
			}
		}
	}
}
