package extract_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge/extract"
)

// requirePoppler skips the test when pdftotext or pdfinfo is missing, or
// fails it when CONVOSPHERE_REQUIRE_SERVERS=1 (make test, CI).
func requirePoppler(tb testing.TB) {
	tb.Helper()
	for _, tool := range []string{"pdftotext", "pdfinfo"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := tool + " not found: install poppler-utils (apt-get install poppler-utils)"
			if os.Getenv("CONVOSPHERE_REQUIRE_SERVERS") == "1" {
				tb.Fatal(msg)
			}
			tb.Skip(msg)
		}
	}
}

// pdfPage is the text of one page, a line each; nil draws a filled square
// and no text, like a scanned page.
type pdfPage []string

// MustPDF writes a PDF with the given title (none when "") and pages of
// Helvetica text, with a correct cross-reference table.
func MustPDF(tb testing.TB, title string, pages ...pdfPage) []byte {
	tb.Helper()
	esc := strings.NewReplacer(`\`, `\\`, `(`, `\(`, `)`, `\)`)
	var kids []string
	for i := range pages {
		kids = append(kids, fmt.Sprintf("%d 0 R", 5+2*i))
	}
	info := "<< /Producer (convosphere test) >>"
	if title != "" {
		info = fmt.Sprintf("<< /Title (%s) /Producer (convosphere test) >>", esc.Replace(title))
	}
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), len(pages)),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
		info,
	}
	for i, lines := range pages {
		var cs strings.Builder
		if lines == nil {
			cs.WriteString("0.5 g 72 72 400 400 re f\n")
		} else {
			cs.WriteString("BT /F1 12 Tf 72 720 Td 16 TL\n")
			for _, l := range lines {
				fmt.Fprintf(&cs, "(%s) Tj T*\n", esc.Replace(l))
			}
			cs.WriteString("ET\n")
		}
		objs = append(objs,
			fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>", 6+2*i),
			fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", cs.Len(), cs.String()))
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}

func TestExtractPDF(t *testing.T) {
	requirePoppler(t)
	x := MustExtractor(t, extract.Config{})
	pdf := MustPDF(t, "Operations Manual",
		pdfPage{"Chapter one", "", "Restart the worker with care.", "# not a heading"},
		pdfPage{"Chapter two", "Caf\xe9 au lait costs (about) 3 euros."},
		nil,
		pdfPage{"The end"})
	doc := MustExtract(t, x, "manual.txt", pdf) // named .txt: content decides
	if doc.ContentType != extract.ContentTypePDF || doc.Title != "Operations Manual" || doc.Pages != 4 {
		t.Errorf("got type %q title %q pages %d", doc.ContentType, doc.Title, doc.Pages)
	}
	for _, want := range []string{"Restart the worker with care.", `\# not a heading`, "Café au lait costs (about) 3 euros.", "The end"} {
		if !strings.Contains(doc.Text, want) {
			t.Errorf("text %q lacks %q", doc.Text, want)
		}
	}
	if strings.Contains(doc.Text, "\f") {
		t.Errorf("text %q holds form feeds", doc.Text)
	}
	if len(doc.PageStarts) != 4 {
		t.Fatalf("page starts %v; want 4", doc.PageStarts)
	}
	for i, want := range []string{"Chapter one", "Chapter two", "", "The end"} {
		if got := doc.Text[doc.PageStarts[i]:]; !strings.HasPrefix(got, want) {
			t.Errorf("page %d starts with %.20q; want %q", i+1, got, want)
		}
	}

	untitled := MustExtract(t, x, "u.pdf", MustPDF(t, "", pdfPage{"First line is the title", "then more"}))
	if untitled.Title != "First line is the title" {
		t.Errorf("untitled title %q", untitled.Title)
	}
}

func TestExtractPDFErrors(t *testing.T) {
	requirePoppler(t)
	x := MustExtractor(t, extract.Config{MaxPages: 3})
	encrypted, err := os.ReadFile("testdata/encrypted.pdf") // qpdf --encrypt user owner 256
	if err != nil {
		t.Fatal(err)
	}
	valid := MustPDF(t, "", pdfPage{"one"})
	tests := []struct {
		name    string
		content []byte
		code    string
		says    []string
	}{
		{"encrypted", encrypted, engine.EINVALID, []string{"the PDF is encrypted", "remove the password"}},
		{"scanned", MustPDF(t, "Scan", nil, nil), engine.EINVALID, []string{"document is empty", "no text layer", "OCR it first"}},
		{"too many pages", MustPDF(t, "", pdfPage{"1"}, pdfPage{"2"}, pdfPage{"3"}, pdfPage{"4"}), engine.ETOOLARGE, []string{"4 pages", "limit of 3"}},
		{"garbage after the header", []byte("%PDF-1.7\n" + strings.Repeat("\x8f\x01garbage", 50)), engine.EINVALID, []string{"cannot be read", "damaged"}},
		{"truncated", valid[:len(valid)/2], engine.EINVALID, []string{"damaged"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := x.Extract(context.Background(), "upload.pdf", tt.content)
			assertError(t, err, tt.code, "upload.pdf", tt.says...)
		})
	}
	// At the cap is fine.
	MustExtract(t, x, "three.pdf", MustPDF(t, "", pdfPage{"1"}, pdfPage{"2"}, pdfPage{"3"}))
}

// fakeTools writes shell scripts named pdfinfo and pdftotext into a new
// directory and returns their paths.
func fakeTools(tb testing.TB, pdfinfo, pdftotext string) (string, string) {
	tb.Helper()
	dir := tb.TempDir()
	info, text := filepath.Join(dir, "pdfinfo"), filepath.Join(dir, "pdftotext")
	for path, body := range map[string]string{info: pdfinfo, text: pdftotext} {
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	return info, text
}

func TestExtractPDFTimeout(t *testing.T) {
	info, text := fakeTools(t, "echo 'Pages: 1'", "exec sleep 30")
	x := MustExtractor(t, extract.Config{Timeout: 300 * time.Millisecond, PDFToText: text})
	start := time.Now()
	_, err := x.Extract(context.Background(), "slow.pdf", []byte("%PDF-1.4\n"))
	assertError(t, err, engine.ETIMEOUT, "slow.pdf", "took longer than the 300ms allowed")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout took %s", d)
	}
	// pdfinfo was found beside the configured pdftotext.
	x2 := MustExtractor(t, extract.Config{Timeout: 300 * time.Millisecond, PDFToText: text, PDFInfo: info})
	_, err = x2.Extract(context.Background(), "slow.pdf", []byte("%PDF-1.4\n"))
	assertError(t, err, engine.ETIMEOUT, "slow.pdf")
}

func TestExtractPDFToolOutputCap(t *testing.T) {
	_, text := fakeTools(t, "echo 'Pages: 1'", "exec yes 'endless text'")
	x := MustExtractor(t, extract.Config{MaxTextBytes: 1 << 16, PDFToText: text})
	_, err := x.Extract(context.Background(), "endless.pdf", []byte("%PDF-1.4\n"))
	assertError(t, err, engine.ETOOLARGE, "endless.pdf", "text is over the limit of 64 KiB")
}

func TestExtractPDFFakeToolOutput(t *testing.T) {
	_, text := fakeTools(t, "printf 'Title:           \\nPages:           2\\n'", `printf 'Page one\r\nline   \n\n\n\nlast\f\f'`)
	x := MustExtractor(t, extract.Config{PDFToText: text})
	doc := MustExtract(t, x, "f.pdf", []byte("%PDF-1.4\n"))
	if doc.Text != "Page one\nline\n\nlast" || doc.Pages != 2 || doc.Title != "Page one" {
		t.Errorf("got %q pages %d title %q", doc.Text, doc.Pages, doc.Title)
	}
	if len(doc.PageStarts) != 2 || doc.PageStarts[0] != 0 || doc.PageStarts[1] != len(doc.Text) {
		t.Errorf("page starts %v", doc.PageStarts)
	}
}

func TestExtractPDFWithoutPoppler(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	x := MustExtractor(t, extract.Config{})
	if ok, why := x.PDFSupport(); ok || !strings.Contains(why, "poppler-utils") {
		t.Errorf("PDFSupport = %v, %q", ok, why)
	}
	_, err := x.Extract(context.Background(), "a.pdf", []byte("%PDF-1.4\n"))
	assertError(t, err, engine.EUNAVAILABLE, "a.pdf", "PDF support needs poppler-utils", "apt-get install poppler-utils")
	// Everything else still works.
	MustExtract(t, x, "a.md", []byte("# Still fine"))
}
