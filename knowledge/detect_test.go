package knowledge

import (
	"strings"
	"testing"

	"github.com/convosphere/convosphere/engine"
)

func TestDetectContentType(t *testing.T) {
	tests := []struct {
		name, source, content string
		want                  string // content type, or "" for an error
		errHas                string
	}{
		{"md extension", "a.md", "plain words", ContentTypeMarkdown, ""},
		{"markdown extension", "docs/A.MARKDOWN", "plain words", ContentTypeMarkdown, ""},
		{"txt extension", "a.txt", "# Heading\n\n```\ncode\n```\n", ContentTypeText, ""},
		{"sniffed markdown", "README", "# Title\n\nSee [the docs](https://example.com).\n\n- one\n", ContentTypeMarkdown, ""},
		{"sniffed markdown fence", "notes", "Run:\n\n```sh\nmake\n```\n\n- then this\n", ContentTypeMarkdown, ""},
		{"sniffed plain", "notes", "Just some notes.\n\nAnother paragraph.\n", ContentTypeText, ""},
		{"shell comment is not enough", "script", "# comment\necho hi\n", ContentTypeText, ""},
		{"utf8 bom", "a", "\xEF\xBB\xBFhello", ContentTypeText, ""},
		{"binary nul", "image.png", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "", "image.png is not UTF-8 text"},
		{"binary md name", "fake.md", "abc\x00def", "", "fake.md is not UTF-8 text"},
		{"invalid utf8", "latin1.txt", "caf\xe9 au lait", "", "latin1.txt is not UTF-8 text"},
		{"control heavy", "x.txt", strings.Repeat("\x01\x02ab", 20), "", "not UTF-8 text"},
		{"pdf", "manual.pdf", "%PDF-1.7\n...", "", "manual.pdf is a PDF document"},
		{"docx", "spec.docx", "PK\x03\x04rest", "", "spec.docx is a ZIP archive"},
		{"utf16", "u.txt", "\xFF\xFEh\x00i\x00", "", "UTF-16"},
		{"html content", "page", "<!DOCTYPE html><html><body>hi</body></html>", "", "page is an HTML page"},
		{"html extension", "page.html", "hello", "", "HTML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DetectContentType(tt.source, []byte(tt.content))
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Errorf("DetectContentType = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if engine.ErrorCode(err) != engine.EINVALID {
				t.Fatalf("DetectContentType = %q, %v; want an EINVALID error", got, err)
			}
			msg := engine.ErrorMessage(err)
			if !strings.Contains(msg, tt.errHas) || !strings.Contains(msg, "Unsupported file type") {
				t.Errorf("message %q does not say %q", msg, tt.errHas)
			}
		})
	}
}
