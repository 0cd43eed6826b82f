package knowledge

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// checkChunks asserts what holds for every chunking: sizes within the
// limit, valid UTF-8, positions in order, no empty chunk, and every fenced
// code block in a chunk closed.
func checkChunks(tb testing.TB, c Chunker, p Parsed) {
	tb.Helper()
	c = c.normalized()
	for i, ch := range p.Chunks {
		if n := utf8.RuneCountInString(ch.Text); n > c.Size {
			tb.Errorf("chunk %d is %d runes, over the size %d:\n%s", i, n, c.Size, ch.Text)
		}
		if !utf8.ValidString(ch.Text) {
			tb.Errorf("chunk %d is not valid UTF-8: %q", i, ch.Text)
		}
		if strings.TrimSpace(ch.Text) == "" {
			tb.Errorf("chunk %d is empty", i)
		}
		if ch.Position != i {
			tb.Errorf("chunk %d has position %d", i, ch.Position)
		}
		if ch.Title != p.Title {
			tb.Errorf("chunk %d has title %q, want %q", i, ch.Title, p.Title)
		}
		if n := strings.Count(ch.Text, "```"); n%2 != 0 {
			tb.Errorf("chunk %d has an unclosed code fence:\n%s", i, ch.Text)
		}
	}
}

func texts(p Parsed) []string {
	out := make([]string, len(p.Chunks))
	for i, c := range p.Chunks {
		out[i] = c.Text
	}
	return out
}

func TestMarkdownSections(t *testing.T) {
	src := "# Slack\n\n## Create the app\n\nOpen the app page.\n\n- one\n- two\n\n### Scopes\n\nAdd `chat:write`.\n\n## Install\n\nInstall it.\n\n# Discord\n\nRegister **commands**.\n"
	p := Chunker{}.Markdown("docs/slack.md", []byte(src))
	checkChunks(t, Chunker{}, p)
	want := []struct {
		path []string
		text string
	}{
		{[]string{"Slack", "Create the app"}, "# Slack\n\n## Create the app\n\nOpen the app page.\n\n- one\n- two"},
		{[]string{"Slack", "Create the app", "Scopes"}, "### Scopes\n\nAdd `chat:write`."},
		{[]string{"Slack", "Install"}, "## Install\n\nInstall it."},
		{[]string{"Discord"}, "# Discord\n\nRegister **commands**."},
	}
	if p.Title != "Slack" {
		t.Errorf("title = %q, want the first H1", p.Title)
	}
	if len(p.Chunks) != len(want) {
		t.Fatalf("got %d chunks %q, want %d", len(p.Chunks), texts(p), len(want))
	}
	for i, w := range want {
		if c := p.Chunks[i]; !slices.Equal(c.HeadingPath, w.path) || c.Text != w.text {
			t.Errorf("chunk %d = %q %q\nwant %q %q", i, c.HeadingPath, c.Text, w.path, w.text)
		}
	}
}

func TestMarkdownTitle(t *testing.T) {
	tests := []struct {
		name, source, src, want string
	}{
		{"first h1", "a.md", "Intro.\n\n## Sub\n\ntext\n\n# The *Title*\n\nmore\n\n# Second\n", "The Title"},
		{"setext h1", "a.md", "Setext Title\n============\n\ntext\n", "Setext Title"},
		{"front matter wins", "a.md", "---\ntitle: \"Slack setup\"\nauthor: x\n---\n# Slack\n\ntext\n", "Slack setup"},
		{"front matter without title", "a.md", "---\nauthor: x\n---\n# Slack\n\ntext\n", "Slack"},
		{"front matter single quotes", "a.md", "---\ntitle: 'It''s'\n---\ntext\n", "It''s"},
		{"file name", "setup/slack-guide.md", "## Only h2\n\ntext\n", "slack-guide"},
		{"no extension", "README", "text\n", "README"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Chunker{}.Markdown(tt.source, []byte(tt.src))
			if p.Title != tt.want {
				t.Errorf("title = %q, want %q", p.Title, tt.want)
			}
			checkChunks(t, Chunker{}, p)
		})
	}
}

func TestMarkdownFrontMatterNotIndexed(t *testing.T) {
	p := Chunker{}.Markdown("a.md", []byte("---\ntitle: T\nsecret_field: hidden\n---\n\nBody text.\n"))
	if got := texts(p); !slices.Equal(got, []string{"Body text."}) {
		t.Errorf("chunks = %q, want only the body", got)
	}
	// An unclosed front matter is ordinary Markdown.
	p = Chunker{}.Markdown("a.md", []byte("---\ntitle: T\n\nBody text.\n"))
	if len(p.Chunks) == 0 || !strings.Contains(strings.Join(texts(p), "\n"), "Body text.") {
		t.Errorf("chunks = %q, want the body kept", texts(p))
	}
}

func TestMarkdownKeepsSourceAsWritten(t *testing.T) {
	src := "# T\n\nSome *emphasis*, a [link](https://example.com) and `code`.\n\n> quoted\n> text\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n    indented code\n\n<div>html</div>\n"
	p := Chunker{}.Markdown("a.md", []byte(src))
	if len(p.Chunks) != 1 {
		t.Fatalf("got %d chunks, want 1: %q", len(p.Chunks), texts(p))
	}
	if want := strings.TrimSpace(src); p.Chunks[0].Text != want {
		t.Errorf("text = %q\nwant %q", p.Chunks[0].Text, want)
	}
}

func TestMarkdownCRLFAndBOM(t *testing.T) {
	p := Chunker{}.Markdown("a.md", []byte("\xEF\xBB\xBF# Title\r\n\r\nLine one\r\nline two\r\n"))
	if p.Title != "Title" || len(p.Chunks) != 1 || p.Chunks[0].Text != "# Title\n\nLine one\nline two" {
		t.Errorf("got title %q chunks %q", p.Title, texts(p))
	}
}

func TestMarkdownPacking(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("# Guide\n\n")
	for i := range 30 {
		fmt.Fprintf(&sb, "Paragraph %d has a few words to fill the space nicely.\n\n", i)
	}
	c := Chunker{Size: 200, Overlap: 60}
	p := c.Markdown("g.md", []byte(sb.String()))
	checkChunks(t, c, p)
	if len(p.Chunks) < 5 {
		t.Fatalf("got %d chunks, want the section cut into several", len(p.Chunks))
	}
	if !strings.HasPrefix(p.Chunks[0].Text, "# Guide\n\nParagraph 0 ") {
		t.Errorf("first chunk = %q, want the heading first", p.Chunks[0].Text)
	}
	for i, ch := range p.Chunks {
		if !slices.Equal(ch.HeadingPath, []string{"Guide"}) {
			t.Errorf("chunk %d heading path = %q", i, ch.HeadingPath)
		}
		if i == 0 {
			continue
		}
		// Overlap: each chunk starts with the last paragraph of the one before.
		prev := p.Chunks[i-1].Text
		last := prev[strings.LastIndex(prev, "\n\n")+2:]
		if !strings.HasPrefix(ch.Text, last+"\n\n") {
			t.Errorf("chunk %d = %q\ndoes not start with the end of chunk %d: %q", i, ch.Text, i-1, last)
		}
	}
	// Every paragraph is somewhere.
	all := strings.Join(texts(p), "\n")
	for i := range 30 {
		if !strings.Contains(all, fmt.Sprintf("Paragraph %d has", i)) {
			t.Errorf("paragraph %d lost", i)
		}
	}
	// No overlap: chunks partition the paragraphs.
	c.Overlap = 0
	p = c.Markdown("g.md", []byte(sb.String()))
	checkChunks(t, c, p)
	if n := strings.Count(strings.Join(texts(p), "\n"), "Paragraph 7 has"); n != 1 {
		t.Errorf("without overlap paragraph 7 appears %d times", n)
	}
}

func TestMarkdownLongParagraph(t *testing.T) {
	sentence := "Slack retries an event when it is not acknowledged in three seconds. "
	src := "# Events\n\n" + strings.Repeat(sentence, 40)
	c := Chunker{Size: 300, Overlap: 80}
	p := c.Markdown("e.md", []byte(src))
	checkChunks(t, c, p)
	if len(p.Chunks) < 8 {
		t.Fatalf("got %d chunks, want the paragraph cut", len(p.Chunks))
	}
	for i, ch := range p.Chunks {
		// Cut at sentence ends: every chunk is whole sentences.
		if !strings.HasPrefix(ch.Text, "Slack retries") && !strings.HasPrefix(ch.Text, "# Events") {
			t.Errorf("chunk %d starts mid-sentence: %q", i, ch.Text)
		}
		if !strings.HasSuffix(ch.Text, "seconds.") {
			t.Errorf("chunk %d ends mid-sentence: %q", i, ch.Text)
		}
	}
}

func TestMarkdownCodeBlocks(t *testing.T) {
	code := "```go\nfunc main() {\n\tfmt.Println(\"hello\")\n}\n```"
	t.Run("kept whole", func(t *testing.T) {
		src := "# Code\n\n" + strings.Repeat("Words before the code block. ", 8) + "\n\n" + code + "\n\nAfter.\n"
		c := Chunker{Size: 280, Overlap: 50}
		p := c.Markdown("c.md", []byte(src))
		checkChunks(t, c, p)
		found := false
		for _, ch := range p.Chunks {
			if strings.Contains(ch.Text, code) {
				found = true
			}
		}
		if !found {
			t.Errorf("code block split although it fits: %q", texts(p))
		}
		// No overlap is carried out of code.
		for i, ch := range p.Chunks[1:] {
			if strings.HasPrefix(ch.Text, "}") || strings.HasPrefix(ch.Text, "```\n") {
				t.Errorf("chunk %d starts inside code: %q", i+1, ch.Text)
			}
		}
	})
	t.Run("oversized split on lines and refenced", func(t *testing.T) {
		var lines []string
		for i := range 60 {
			lines = append(lines, fmt.Sprintf("line_%02d := compute(%d) // comment", i, i))
		}
		big := "~~~python\n" + strings.Join(lines, "\n") + "\n~~~"
		c := Chunker{Size: 400, Overlap: 100}
		p := c.Markdown("c.md", []byte("# Big\n\n"+big+"\n"))
		checkChunks(t, c, p)
		if len(p.Chunks) < 5 {
			t.Fatalf("got %d chunks, want the code cut", len(p.Chunks))
		}
		var got []string
		for i, ch := range p.Chunks {
			body := ch.Text
			if i == 0 {
				body = strings.TrimPrefix(body, "# Big\n\n")
			}
			if !strings.HasPrefix(body, "~~~python\n") || !strings.HasSuffix(body, "\n~~~") {
				t.Errorf("chunk %d is not a fenced piece: %q", i, ch.Text)
			}
			inner := strings.TrimSuffix(strings.TrimPrefix(body, "~~~python\n"), "\n~~~")
			got = append(got, strings.Split(inner, "\n")...)
		}
		if !slices.Equal(got, lines) {
			t.Errorf("code lines not kept whole and in order: got %d lines", len(got))
		}
	})
	t.Run("long line in code", func(t *testing.T) {
		src := "```\n" + strings.Repeat("x", 1000) + "\n```\n"
		c := Chunker{Size: 300}
		p := c.Markdown("c.md", []byte(src))
		checkChunks(t, c, p)
		if n := strings.Count(strings.Join(texts(p), ""), "x"); n != 1000 {
			t.Errorf("kept %d of 1000 characters", n)
		}
	})
	t.Run("code in an oversized list", func(t *testing.T) {
		item := "- step with some explanation that takes room in the list\n"
		src := strings.Repeat(item, 6) + "- run:\n\n  ```sh\n  make run\n  ```\n" + strings.Repeat(item, 6)
		c := Chunker{Size: 300, Overlap: 60}
		p := c.Markdown("l.md", []byte(src))
		checkChunks(t, c, p)
		if !strings.Contains(strings.Join(texts(p), "\n"), "  ```sh\n  make run\n  ```") {
			t.Errorf("fenced code in the list was split: %q", texts(p))
		}
	})
}

func TestMarkdownUnicode(t *testing.T) {
	// Multi-byte text without spaces or sentence ends must be cut between runes.
	src := "# 日本語\n\n" + strings.Repeat("設定手順をここに書きます", 60)
	c := Chunker{Size: 100, Overlap: 20}
	p := c.Markdown("ja.md", []byte(src))
	checkChunks(t, c, p)
	if len(p.Chunks) < 7 {
		t.Errorf("got %d chunks", len(p.Chunks))
	}
	emoji := "# E\n\n" + strings.Repeat("🚀👩‍💻 ", 200)
	p = c.Markdown("e.md", []byte(emoji))
	checkChunks(t, c, p)
}

func TestMarkdownHeadingOnly(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"lone heading", "# Title\n", []string{"# Title"}},
		{"empty siblings", "## A\n## B\n\ntext\n", []string{"## B\n\ntext"}},
		{"headings only", "# A\n# B\n", []string{"# A\n\n# B"}},
		{"nested empties carried", "# A\n## B\n### C\n\ntext\n", []string{"# A\n\n## B\n\n### C\n\ntext"}},
		{"text before headings", "Intro.\n\n# A\n\nBody.\n", []string{"Intro.", "# A\n\nBody."}},
		{"thematic breaks dropped", "one\n\n***\n\ntwo\n", []string{"one\n\ntwo"}},
		{"empty", "", nil},
		{"blank", "\n \n\t\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Chunker{}.Markdown("a.md", []byte(tt.src))
			if got := texts(p); !slices.Equal(got, tt.want) {
				t.Errorf("chunks = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPlainText(t *testing.T) {
	src := "First paragraph\nstill first.\n\n\n  Second paragraph.\n \nThird.\n"
	p := Chunker{}.PlainText("notes/faq.txt", []byte(src))
	if p.Title != "faq" {
		t.Errorf("title = %q", p.Title)
	}
	if got := texts(p); !slices.Equal(got, []string{"First paragraph\nstill first.\n\n  Second paragraph.\n\nThird."}) {
		t.Errorf("chunks = %q", got)
	}
	for _, ch := range p.Chunks {
		if ch.HeadingPath != nil {
			t.Errorf("plain text chunk has heading path %q", ch.HeadingPath)
		}
	}
	c := Chunker{Size: 120, Overlap: 40}
	long := strings.Repeat("A short paragraph about one thing.\n\n", 30)
	p = c.PlainText("x.txt", []byte(long))
	checkChunks(t, c, p)
	if len(p.Chunks) < 8 {
		t.Errorf("got %d chunks", len(p.Chunks))
	}
}

func TestChunkByContentType(t *testing.T) {
	c := Chunker{}
	if _, err := c.Chunk("a.md", "application/pdf", []byte("x")); err == nil {
		t.Error("unknown content type accepted")
	}
	if _, err := c.Chunk("a.md", ContentTypeMarkdown, []byte("---\ntitle: x\n---\n")); err == nil {
		t.Error("document without text accepted")
	}
	p, err := c.Chunk("a.txt", ContentTypeText, []byte("# not a heading\n"))
	if err != nil || len(p.Chunks) != 1 || p.Chunks[0].HeadingPath != nil {
		t.Errorf("plain text = %+v, %v", p, err)
	}
	p.Assign("docs", "doc1", "a.txt")
	if ch := p.Chunks[0]; ch.ID != "doc1:0" || ch.KnowledgeBase != "docs" || ch.DocumentID != "doc1" || ch.Document != "a.txt" {
		t.Errorf("assigned chunk = %+v", ch)
	}
}

// FuzzChunker checks the invariants on arbitrary input, Markdown and
// plain text: no chunk over the size, none empty, all valid UTF-8, in
// position order under the document's title. Plain text without code
// fences keeps every word: each chunk is a stretch of the text (white
// space aside), the first starts it and the last ends it, and without
// overlap the chunks are the text exactly.
func FuzzChunker(f *testing.F) {
	f.Add("# T\n\n```\ncode\n```\n\ntext", 100, 20)
	f.Add(strings.Repeat("word ", 100), 50, 10)
	f.Add("- a\n  ```\n  b\n\n> c", 60, 0)
	f.Add("---\ntitle: Front\n---\n# H1\n\n## H2\n\n"+strings.Repeat("Sentence one. Sentence two! ", 20)+"\n\n    indented code\n    more", 80, 30)
	f.Add("\ufeffCRLF line\r\nnext\r\rold mac\n\n\n   \t\n"+strings.Repeat("日本語のテキスト。", 30), 50, 25)
	f.Add("| a | b |\n|---|---|\n| 1 | 2 |\n\n<!-- hidden -->\n\n~~~~\n~~~\n"+strings.Repeat("x", 300)+"\n~~~~", 60, 100)
	f.Fuzz(func(t *testing.T, src string, size, overlap int) {
		if !utf8.ValidString(src) || size < 50 || size > 2000 {
			return
		}
		c := Chunker{Size: size, Overlap: overlap}
		md, txt := c.Markdown("f.md", []byte(src)), c.PlainText("f.txt", []byte(src))
		for _, p := range []Parsed{md, txt} {
			for i, ch := range p.Chunks {
				if n := utf8.RuneCountInString(ch.Text); n > c.normalized().Size {
					t.Errorf("chunk %d is %d runes, over %d", i, n, size)
				}
				if !utf8.ValidString(ch.Text) || strings.TrimSpace(ch.Text) == "" {
					t.Errorf("chunk %d is invalid or empty: %q", i, ch.Text)
				}
				if ch.Position != i || ch.Title != p.Title {
					t.Errorf("chunk %d has position %d and title %q, want %q", i, ch.Position, ch.Title, p.Title)
				}
			}
		}

		// Plain text: the words, in order. (Code fences are left out: a
		// code block split in pieces gets its fence lines in each piece.)
		if txt.Title != "f" {
			t.Errorf("plain text title %q", txt.Title)
		}
		norm := normalizeNewlines([]byte(src))
		for line := range strings.SplitSeq(norm, "\n") {
			if _, fenced := fenceOpen(line); fenced {
				return
			}
		}
		whole := dropSpace(norm)
		if whole == "" {
			if len(txt.Chunks) != 0 {
				t.Errorf("%d chunks of blank text", len(txt.Chunks))
			}
			return
		}
		if len(txt.Chunks) == 0 {
			t.Fatalf("no chunk of %q", src)
		}
		for i, ch := range txt.Chunks {
			if !strings.Contains(whole, dropSpace(ch.Text)) {
				t.Fatalf("plain text chunk %d is not a stretch of the text: %q", i, ch.Text)
			}
		}
		if first := dropSpace(txt.Chunks[0].Text); !strings.HasPrefix(whole, first) {
			t.Fatalf("the first chunk %q does not start the text", first)
		}
		if last := dropSpace(txt.Chunks[len(txt.Chunks)-1].Text); !strings.HasSuffix(whole, last) {
			t.Fatalf("the last chunk %q does not end the text", last)
		}
		var joined strings.Builder
		noOverlap := Chunker{Size: size}
		for _, ch := range noOverlap.PlainText("f.txt", []byte(src)).Chunks {
			joined.WriteString(dropSpace(ch.Text))
		}
		if joined.String() != whole {
			t.Fatalf("chunks without overlap lost or added text:\n got %q\nwant %q", joined.String(), whole)
		}
	})
}

// dropSpace removes white space, which chunking may change.
func dropSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

func TestMarkdownSkipsHTMLComments(t *testing.T) {
	src := "# Guide\n\nVisible text.\n\n<!-- generated data {\"secret_marker\": 1} -->\n\n<div>shown html</div>\n\nMore text.\n"
	p := Chunker{}.Markdown("guide.md", []byte(src))
	var all strings.Builder
	for _, c := range p.Chunks {
		all.WriteString(c.Text)
	}
	if strings.Contains(all.String(), "secret_marker") {
		t.Errorf("an HTML comment was indexed: %q", all.String())
	}
	for _, want := range []string{"Visible text.", "shown html", "More text."} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("chunks lack %q: %q", want, all.String())
		}
	}
}
