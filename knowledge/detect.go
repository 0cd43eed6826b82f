package knowledge

import (
	"bytes"
	"path"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/convosphere/convosphere/engine"
)

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// sniffBytes is how much of a file DetectContentType looks at for signals.
const sniffBytes = 64 << 10

// DetectContentType decides how to read a document from its content, using
// its source name only to choose between text formats: valid UTF-8 text is
// Markdown when the name ends in .md or .markdown, plain text when it ends
// in .txt, and otherwise Markdown when the text shows Markdown structure.
// Anything else is an EINVALID "unsupported file type" error naming source.
func DetectContentType(source string, content []byte) (string, error) {
	if err := checkText(source, content); err != nil {
		return "", err
	}
	switch strings.ToLower(path.Ext(strings.ReplaceAll(source, `\`, "/"))) {
	case ".md", ".markdown":
		return ContentTypeMarkdown, nil
	case ".txt", ".text":
		return ContentTypeText, nil
	}
	if looksLikeMarkdown(content) {
		return ContentTypeMarkdown, nil
	}
	return ContentTypeText, nil
}

const supportedTypes = "add Markdown (.md, .markdown) or plain text (.txt) files in UTF-8"

func unsupported(source, why string) error {
	return engine.Errorf(engine.EINVALID, "Unsupported file type: %s %s; %s.", source, why, supportedTypes)
}

// checkText rejects what is not UTF-8 text, saying what it looks like.
func checkText(source string, content []byte) error {
	switch {
	case bytes.HasPrefix(content, []byte("%PDF-")):
		return unsupported(source, "is a PDF document (not supported yet)")
	case bytes.HasPrefix(content, []byte("PK\x03\x04")):
		return unsupported(source, "is a ZIP archive, such as a DOCX or XLSX file (not supported yet)")
	case bytes.HasPrefix(content, []byte{0xFE, 0xFF}), bytes.HasPrefix(content, []byte{0xFF, 0xFE}):
		return unsupported(source, "is UTF-16 text (save it as UTF-8)")
	}
	body := bytes.TrimPrefix(content, utf8BOM)
	if bytes.IndexByte(body, 0) >= 0 || !utf8.Valid(body) || controlHeavy(body) {
		return unsupported(source, "is not UTF-8 text (it looks binary)")
	}
	head := strings.ToLower(strings.TrimSpace(string(body[:min(len(body), 512)])))
	ext := strings.ToLower(path.Ext(source))
	if ext == ".html" || ext == ".htm" || strings.HasPrefix(head, "<!doctype html") || strings.HasPrefix(head, "<html") {
		return unsupported(source, "is an HTML page (not supported yet)")
	}
	return nil
}

// controlHeavy reports whether more than 1% of the first bytes are control
// characters other than tab, newline, carriage return and form feed.
func controlHeavy(b []byte) bool {
	b = b[:min(len(b), sniffBytes)]
	n := 0
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' || c == 0x7F {
			n++
		}
	}
	return n*100 > len(b)
}

var (
	mdStrong = []*regexp.Regexp{
		regexp.MustCompile(`(?m)^#{1,6}[ \t]+\S`),                 // ATX heading
		regexp.MustCompile("(?m)^[ \t]{0,3}(```|~~~)"),            // code fence
		regexp.MustCompile(`\[[^\]\n]+\]\([^)\s]+\)`),             // inline link
		regexp.MustCompile(`(?m)^\S[^\n]*\n[ \t]*(=+|-+)[ \t]*$`), // setext heading
	}
	mdWeak = []*regexp.Regexp{
		regexp.MustCompile(`(?m)^[ \t]*[-*+][ \t]+\S`),    // bullet list
		regexp.MustCompile(`(?m)^[ \t]*\d+[.)][ \t]+\S`),  // numbered list
		regexp.MustCompile(`(?m)^>[ \t]?\S`),              // block quote
		regexp.MustCompile("`[^`\n]+`"),                   // code span
		regexp.MustCompile(`\*\*[^*\n]+\*\*|__[^_\n]+__`), // strong emphasis
		regexp.MustCompile(`(?m)^\|.*\|[ \t]*$`),          // table row
	}
)

// looksLikeMarkdown scores Markdown signals in the first bytes: a strong
// signal (heading, fence, link, setext underline) counts two, a weak one
// (list, quote, code span, bold, table) one; three or more is Markdown.
func looksLikeMarkdown(content []byte) bool {
	b := content[:min(len(content), sniffBytes)]
	score := 0
	for _, re := range mdStrong {
		if re.Match(b) {
			score += 2
		}
	}
	for _, re := range mdWeak {
		if re.Match(b) {
			score++
		}
	}
	return score >= 3
}
