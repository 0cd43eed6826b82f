package extract_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge/extract"
)

// MustExtractor returns an Extractor for cfg or fails the test.
func MustExtractor(tb testing.TB, cfg extract.Config) *extract.Extractor {
	tb.Helper()
	x, err := extract.New(cfg)
	if err != nil {
		tb.Fatalf("extract.New: %v", err)
	}
	return x
}

// MustExtract extracts content or fails the test.
func MustExtract(tb testing.TB, x *extract.Extractor, name string, content []byte) *extract.Document {
	tb.Helper()
	doc, err := x.Extract(context.Background(), name, content)
	if err != nil {
		tb.Fatalf("Extract(%s): %v", name, err)
	}
	return doc
}

// assertError checks that err is an *engine.Error with code whose message
// names the file and says every one of says.
func assertError(tb testing.TB, err error, code, name string, says ...string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("got no error; want %s naming %s", code, name)
	}
	var e *engine.Error
	if !errors.As(err, &e) {
		tb.Fatalf("error %v (%T) is not an *engine.Error", err, err)
	}
	if e.Code != code {
		tb.Errorf("code = %s (%v); want %s", e.Code, err, code)
	}
	msg := engine.ErrorMessage(err)
	if !strings.Contains(msg, name) {
		tb.Errorf("message %q does not name the file %q", msg, name)
	}
	for _, s := range says {
		if !strings.Contains(msg, s) {
			tb.Errorf("message %q does not say %q", msg, s)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		cfg    extract.Config
		errHas string // "" for valid
	}{
		{"zero is defaults", extract.Config{}, ""},
		{"all set", extract.Config{MaxFileBytes: 1, MaxPages: 1, MaxArchiveEntries: 1, MaxUncompressedBytes: 1, MaxTextBytes: 1, Timeout: time.Second}, ""},
		{"negative file bytes", extract.Config{MaxFileBytes: -1}, "max file bytes"},
		{"negative pages", extract.Config{MaxPages: -1}, "max pages"},
		{"negative entries", extract.Config{MaxArchiveEntries: -1}, "max archive entries"},
		{"negative uncompressed", extract.Config{MaxUncompressedBytes: -1}, "max uncompressed bytes"},
		{"negative text", extract.Config{MaxTextBytes: -1}, "max text bytes"},
		{"negative timeout", extract.Config{Timeout: -time.Second}, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.errHas == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if _, err := extract.New(tt.cfg); err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if engine.ErrorCode(err) != engine.EINVALID || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("Validate = %v; want EINVALID about %q", err, tt.errHas)
			}
			if _, err := extract.New(tt.cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

func TestNewRejectsMissingProgram(t *testing.T) {
	for _, cfg := range []extract.Config{
		{PDFToText: "/nonexistent/pdftotext"},
		{PDFInfo: "/nonexistent/pdfinfo"},
	} {
		_, err := extract.New(cfg)
		if engine.ErrorCode(err) != engine.EINVALID || !strings.Contains(err.Error(), "/nonexistent/") {
			t.Errorf("New(%+v) = %v; want EINVALID naming the path", cfg, err)
		}
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name, file, content string
		want                string // content type, or "" for an error
		errHas              string
	}{
		{"markdown by name", "a.md", "just words", extract.ContentTypeMarkdown, ""},
		{"markdown by content", "README", "# Title\n\nSee [docs](https://example.com).\n\n- one\n", extract.ContentTypeMarkdown, ""},
		{"markdown with leading html", "README", "<div align=\"center\"><img src=\"logo.png\"></div>\n\n# Tool\n\n```sh\nmake\n```\n", extract.ContentTypeMarkdown, ""},
		{"plain text", "notes", "Just some notes.\n\nAnother paragraph.\n", extract.ContentTypeText, ""},
		{"txt name keeps markdown-looking text plain", "a.txt", "# Heading\n\n```\ncode\n```\n", extract.ContentTypeText, ""},
		{"utf-8 bom", "a", "\xEF\xBB\xBFhello", extract.ContentTypeText, ""},
		{"utf-16le bom", "u.txt", "\xFF\xFEh\x00i\x00", extract.ContentTypeText, ""},
		{"utf-16be bom", "u.txt", "\xFE\xFF\x00h\x00i", extract.ContentTypeText, ""},
		{"text starting like a bmp", "cars.txt", "BMW and MZ-1 are names.\n", extract.ContentTypeText, ""},
		{"html doctype", "page", "<!DOCTYPE html><html><body><p>hi</p></body></html>", extract.ContentTypeHTML, ""},
		{"html after comment", "page", "<!-- saved --><html><body>hi</body></html>", extract.ContentTypeHTML, ""},
		{"xhtml", "page.xhtml", "<?xml version=\"1.0\"?>\n<html xmlns=\"http://www.w3.org/1999/xhtml\"><body>x</body></html>", extract.ContentTypeHTML, ""},
		{"html fragment", "frag", "<p>Hello <b>there</b></p>", extract.ContentTypeHTML, ""},
		{"html named .pdf", "report.pdf", "<html><body><h1>Report</h1></body></html>", extract.ContentTypeHTML, ""},
		{"html named .md", "notes.md", "<!doctype html><title>x</title><p>y", extract.ContentTypeHTML, ""},
		{"html in latin-1", "old.html", "<html><head><meta charset=\"iso-8859-1\"></head><body>caf\xe9</body></html>", extract.ContentTypeHTML, ""},
		{"pdf", "a.bin", "%PDF-1.7\n...", extract.ContentTypePDF, ""},
		{"pdf after junk", "a", "junk\n%PDF-1.4\n", extract.ContentTypePDF, ""},
		{"docx named .txt", "a.txt", "PK\x03\x04rest", extract.ContentTypeDOCX, ""},
		{"png", "photo.md", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "", "a PNG image"},
		{"jpeg", "photo.txt", "\xFF\xD8\xFF\xE0\x00\x10JFIF", "", "a JPEG image"},
		{"elf", "tool", "\x7FELF\x02\x01\x01\x00\x00\x00", "", "an ELF executable"},
		{"gzip", "a.tar.gz", "\x1F\x8B\x08\x00\x00\x00", "", "a gzip archive"},
		{"webp", "i", "RIFF\x10\x00\x00\x00WEBPVP8 ", "", "a WebP image"},
		{"nul bytes", "x.md", "abc\x00def", "", "binary data"},
		{"invalid utf-8", "latin1.txt", "caf\xe9 au lait", "", "not UTF-8 text"},
		{"control heavy", "x.txt", strings.Repeat("\x01\x02ab", 20), "", "binary data"},
		{"utf-32", "u", "\xFF\xFE\x00\x00h\x00\x00\x00", "", "UTF-32"},
		{"odd utf-16", "u", "\xFF\xFEh\x00i", "", "UTF-16"},
		{"rtf", "doc.txt", "{\\rtf1\\ansi hello}", "", "an RTF document"},
		{"postscript", "p.pdf", "%!PS-Adobe-3.0\n", "", "PostScript"},
		{"svg", "logo.html", "<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"></svg>", "", "an SVG image"},
		{"empty zip", "a.docx", "PK\x05\x06" + strings.Repeat("\x00", 18), "", "an empty ZIP archive"},
		{"legacy doc", "old.doc", "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1" + strings.Repeat("\x00", 64), "", "legacy Office document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := extract.Detect(tt.file, []byte(tt.content))
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Fatalf("Detect = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			assertError(t, err, engine.EINVALID, tt.file, tt.errHas, "unsupported file type")
		})
	}
}

func TestExtractText(t *testing.T) {
	x := MustExtractor(t, extract.Config{})
	tests := []struct {
		name, file, content string
		wantType, title     string
		text                string
	}{
		{"markdown as written", "guide.md", "---\ntitle: The Guide\n---\n# Setup\r\n\r\nRun it.\r\n", extract.ContentTypeMarkdown, "The Guide", "---\ntitle: The Guide\n---\n# Setup\n\nRun it.\n"},
		{"markdown title from h1", "g.md", "```\n# not a title\n```\n\n# Real Title\n\ntext\n", extract.ContentTypeMarkdown, "Real Title", "```\n# not a title\n```\n\n# Real Title\n\ntext\n"},
		{"plain text, BOM stripped", "faq.txt", "\xEF\xBB\xBFQuestion?\r\nAnswer.\r\n", extract.ContentTypeText, "", "Question?\nAnswer.\n"},
		{"utf-16 converted", "u16.txt", "\xFF\xFEc\x00a\x00f\x00\xE9\x00", extract.ContentTypeText, "", "café"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := MustExtract(t, x, tt.file, []byte(tt.content))
			if doc.ContentType != tt.wantType || doc.Title != tt.title || doc.Text != tt.text {
				t.Errorf("got %q %q %q; want %q %q %q", doc.ContentType, doc.Title, doc.Text, tt.wantType, tt.title, tt.text)
			}
		})
	}
}

func TestExtractEmpty(t *testing.T) {
	x := MustExtractor(t, extract.Config{})
	for _, tt := range []struct{ file, content string }{
		{"empty.md", ""},
		{"blank.txt", " \n\t\r\n "},
		{"bom-only.txt", "\xEF\xBB\xBF"},
		{"empty.html", "<html><head><title>T</title><script>var x = 1;</script></head><body><nav>Menu</nav></body></html>"},
		{"whitespace.docx", string(MustDOCX(t, docxFiles(`<w:p><w:r><w:t xml:space="preserve">   </w:t></w:r></w:p>`)))},
	} {
		t.Run(tt.file, func(t *testing.T) {
			_, err := x.Extract(context.Background(), tt.file, []byte(tt.content))
			assertError(t, err, engine.EINVALID, tt.file, "document is empty")
		})
	}
}

func TestExtractFileSizeCap(t *testing.T) {
	x := MustExtractor(t, extract.Config{MaxFileBytes: 100})
	MustExtract(t, x, "ok.txt", bytes.Repeat([]byte("a"), 100))
	_, err := x.Extract(context.Background(), "big.txt", bytes.Repeat([]byte("a"), 101))
	assertError(t, err, engine.ETOOLARGE, "big.txt", "101 bytes", "limit of 100 bytes")
}

func TestExtractTextCap(t *testing.T) {
	x := MustExtractor(t, extract.Config{MaxTextBytes: 64})
	_, err := x.Extract(context.Background(), "long.md", bytes.Repeat([]byte("word "), 20))
	assertError(t, err, engine.ETOOLARGE, "long.md", "text is over the limit of 64 bytes")
}

// TestExtractEndedContext checks that a file whose time is up fails with
// ETIMEOUT naming it, whatever its type.
func TestExtractEndedContext(t *testing.T) {
	x := MustExtractor(t, extract.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	for _, tt := range []struct{ file, content string }{
		{"a.md", "# Title\n\ntext"},
		{"a.html", "<html><body><p>text</p></body></html>"},
		{"a.docx", string(MustDOCX(t, docxFiles(`<w:p><w:r><w:t>text</w:t></w:r></w:p>`)))},
	} {
		_, err := x.Extract(ctx, tt.file, []byte(tt.content))
		assertError(t, err, engine.ETIMEOUT, tt.file, "took longer than")
	}

	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	_, err := x.Extract(canceled, "b.md", []byte("text"))
	assertError(t, err, engine.EUNAVAILABLE, "b.md", "interrupted")
}

func TestExtractConcurrent(t *testing.T) {
	x := MustExtractor(t, extract.Config{})
	docx := MustDOCX(t, docxFiles(`<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Doc</w:t></w:r></w:p><w:p><w:r><w:t>body</w:t></w:r></w:p>`))
	html := []byte("<html><body><h1>Page</h1><p>body</p></body></html>")
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			name, content, want := "d.docx", docx, "# Doc\n\nbody"
			if i%2 == 1 {
				name, content, want = "p.html", html, "# Page\n\nbody"
			}
			doc, err := x.Extract(context.Background(), name, content)
			if err == nil && doc.Text != want {
				err = errors.New(name + ": got " + doc.Text)
			}
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
