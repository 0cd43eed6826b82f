// Package extract turns uploaded documents (Markdown, plain text, HTML, PDF
// and DOCX) into Markdown-structured text that the knowledge chunker cuts by
// headings. It is a pure extraction step: bytes in, text out, nothing
// stored.
//
// The type of a file is decided by its content, never by its name: a
// report.pdf that is really an HTML page is read as HTML. The name only
// chooses between Markdown and plain text for UTF-8 text that could be
// either, and names the file in every error.
//
// Every file is extracted under caps (file size, PDF pages, ZIP entries,
// uncompressed bytes, extracted text) and a timeout, so one bad file fails
// alone with an *engine.Error that says what was wrong and how to fix it.
//
// PDFs are read with poppler-utils' pdftotext and pdfinfo (Debian package
// poppler-utils); see pdf.go for why.
package extract

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// Content types Extract reports.
const (
	ContentTypeMarkdown = "text/markdown"
	ContentTypeText     = "text/plain"
	ContentTypeHTML     = "text/html"
	ContentTypePDF      = "application/pdf"
	ContentTypeDOCX     = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
)

// Defaults for the zero fields of a Config.
const (
	DefaultMaxFileBytes         = 20 << 20
	DefaultMaxPages             = 500
	DefaultMaxArchiveEntries    = 2000
	DefaultMaxUncompressedBytes = 100 << 20
	DefaultMaxTextBytes         = 32 << 20
	DefaultTimeout              = 60 * time.Second
)

// Config limits what one file may cost. Zero fields take the defaults.
type Config struct {
	// MaxFileBytes is the largest file accepted; default 20 MiB.
	MaxFileBytes int64
	// MaxPages is the most pages a PDF may have; a longer PDF is refused
	// with ETOOLARGE rather than indexed in part. Default 500.
	MaxPages int
	// MaxArchiveEntries is the most entries a DOCX (ZIP) may have; default 2000.
	MaxArchiveEntries int
	// MaxUncompressedBytes caps the uncompressed size of a DOCX, both the
	// sizes its ZIP directory declares and the bytes actually inflated;
	// default 100 MiB.
	MaxUncompressedBytes int64
	// MaxTextBytes caps the text extracted from one file; default 32 MiB.
	MaxTextBytes int64
	// Timeout is how long one file may take; default 60 s.
	Timeout time.Duration
	// PDFToText is the pdftotext program; default "pdftotext" looked up on
	// PATH. When it cannot be found, PDFs fail with EUNAVAILABLE and
	// everything else still works.
	PDFToText string
	// PDFInfo is the pdfinfo program (page count, title, encryption);
	// default the pdfinfo beside PDFToText, else "pdfinfo" on PATH.
	PDFInfo string
}

func (c *Config) setDefaults() {
	if c.MaxFileBytes == 0 {
		c.MaxFileBytes = DefaultMaxFileBytes
	}
	if c.MaxPages == 0 {
		c.MaxPages = DefaultMaxPages
	}
	if c.MaxArchiveEntries == 0 {
		c.MaxArchiveEntries = DefaultMaxArchiveEntries
	}
	if c.MaxUncompressedBytes == 0 {
		c.MaxUncompressedBytes = DefaultMaxUncompressedBytes
	}
	if c.MaxTextBytes == 0 {
		c.MaxTextBytes = DefaultMaxTextBytes
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
}

// Validate reports the first invalid setting. Zero values are valid: they
// mean the default.
func (c Config) Validate() error {
	switch {
	case c.MaxFileBytes < 0:
		return engine.Errorf(engine.EINVALID, "extract: max file bytes %d is negative: use 0 for the default (20 MiB) or a positive size", c.MaxFileBytes)
	case c.MaxPages < 0:
		return engine.Errorf(engine.EINVALID, "extract: max pages %d is negative: use 0 for the default (500) or a positive count", c.MaxPages)
	case c.MaxArchiveEntries < 0:
		return engine.Errorf(engine.EINVALID, "extract: max archive entries %d is negative: use 0 for the default (2000) or a positive count", c.MaxArchiveEntries)
	case c.MaxUncompressedBytes < 0:
		return engine.Errorf(engine.EINVALID, "extract: max uncompressed bytes %d is negative: use 0 for the default (100 MiB) or a positive size", c.MaxUncompressedBytes)
	case c.MaxTextBytes < 0:
		return engine.Errorf(engine.EINVALID, "extract: max text bytes %d is negative: use 0 for the default (32 MiB) or a positive size", c.MaxTextBytes)
	case c.Timeout < 0:
		return engine.Errorf(engine.EINVALID, "extract: timeout %s is negative: use 0 for the default (60s) or a positive duration", c.Timeout)
	}
	return nil
}

// Document is the text extracted from one file.
type Document struct {
	// ContentType is what the content turned out to be (ContentType*
	// constants), whatever the file name said.
	ContentType string
	// Title is the title the document states (HTML <title>, DOCX core
	// properties, PDF metadata, a Markdown front matter title or first
	// level-1 heading, else the first heading found); empty when it states
	// none, and the caller falls back to the file name.
	Title string
	// Text is Markdown: headings as "#" lines, paragraphs separated by
	// blank lines, "-" and "1." lists, fenced code blocks and pipe tables,
	// so a Markdown chunker can cut it by headings. For text/plain it is
	// the text as written (line ends normalised), to be cut as plain text.
	Text string
	// Pages is the number of pages of a PDF; 0 for other types.
	Pages int
	// PageStarts holds, for a PDF, the byte offset in Text where each page
	// starts (PageStarts[0] is page 1), so a chunk can name its page.
	PageStarts []int
}

// Extractor extracts text from documents. It is safe for concurrent use.
type Extractor struct {
	cfg       Config
	pdftotext string // "" when not found
	pdfinfo   string // "" when not found
}

// New returns an Extractor, or an EINVALID error for a bad setting or a
// PDFToText or PDFInfo path set explicitly that does not name a program.
// A pdftotext missing from PATH is not an error: PDFs then fail alone.
func New(cfg Config) (*Extractor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	x := &Extractor{cfg: cfg}
	var err error
	if x.pdftotext, err = lookTool(cfg.PDFToText, "pdftotext", ""); err != nil {
		return nil, err
	}
	if x.pdfinfo, err = lookTool(cfg.PDFInfo, "pdfinfo", x.pdftotext); err != nil {
		return nil, err
	}
	return x, nil
}

// lookTool resolves a program: the configured path, else the program named
// name beside sibling, else name on PATH. Only a configured path that is
// not a program is an error.
func lookTool(configured, name, sibling string) (string, error) {
	if configured != "" {
		p, err := exec.LookPath(configured)
		if err != nil {
			return "", engine.WrapError(engine.EINVALID, err, "extract: %s %q is not an executable program: fix the path or leave it empty to use %s from PATH", name, configured, name)
		}
		return p, nil
	}
	if sibling != "" {
		if p, err := exec.LookPath(filepath.Join(filepath.Dir(sibling), name)); err == nil {
			return p, nil
		}
	}
	p, _ := exec.LookPath(name) // "" when missing: PDFs then fail alone
	return p, nil
}

// PDFSupport reports whether PDFs can be extracted (pdftotext and pdfinfo
// were found), and if not, why, for a start-up log line or health check.
func (x *Extractor) PDFSupport() (bool, string) {
	if x.pdftotext == "" || x.pdfinfo == "" {
		return false, "PDF support needs poppler-utils (apt-get install poppler-utils): pdftotext or pdfinfo was not found"
	}
	return true, ""
}

// Extract decides what content is and extracts its text. name is the file
// name or path: it names the file in errors and chooses between Markdown
// and plain text, nothing else. The file gets Config.Timeout on top of
// ctx. Errors are *engine.Error with a message for the person who
// uploaded the file: EINVALID for unsupported, encrypted, damaged or empty
// documents; ETOOLARGE when a cap is exceeded; ETIMEOUT when the file took
// too long; EUNAVAILABLE when PDF support is not installed or ctx was
// canceled.
func (x *Extractor) Extract(ctx context.Context, name string, content []byte) (*Document, error) {
	if name == "" {
		name = "document"
	}
	if int64(len(content)) > x.cfg.MaxFileBytes {
		return nil, engine.Errorf(engine.ETOOLARGE, "%s: the file is %s, over the limit of %s: split it into smaller files", name, byteSize(int64(len(content))), byteSize(x.cfg.MaxFileBytes))
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, x.cfg.Timeout)
	defer cancel()
	deadline, _ := ctx.Deadline() // the timeout, or the caller's earlier deadline

	kind, err := detect(name, content)
	if err != nil {
		return nil, err
	}
	var doc *Document
	switch kind.contentType {
	case ContentTypePDF:
		doc, err = x.pdf(ctx, name, content)
	case ContentTypeDOCX:
		doc, err = x.docx(ctx, name, content)
	case ContentTypeHTML:
		doc, err = x.html(ctx, name, kind.text)
	case ContentTypeMarkdown:
		doc = markdownDocument(kind.text)
	default:
		doc = &Document{ContentType: ContentTypeText, Text: normalizeText(kind.text)}
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, contextError(name, err, max(0, deadline.Sub(start)).Round(time.Millisecond))
	}
	if isBlank(doc.Text) {
		if doc.ContentType == ContentTypePDF {
			return nil, engine.Errorf(engine.EINVALID, "%s: document is empty: the PDF has no text layer (a scanned PDF?); OCR it first, for example with ocrmypdf, and upload it again", name)
		}
		return nil, engine.Errorf(engine.EINVALID, "%s: document is empty: it has no text to index; add some text and upload it again", name)
	}
	if int64(len(doc.Text)) > x.cfg.MaxTextBytes {
		return nil, x.textTooLarge(name)
	}
	return doc, nil
}

// contextError turns the end of ctx into ETIMEOUT (naming the time
// allowed) or EUNAVAILABLE naming the file; other errors pass through.
func contextError(name string, err error, allowed time.Duration) error {
	var e *engine.Error
	switch {
	case errors.As(err, &e):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return engine.WrapError(engine.ETIMEOUT, err, "%s: extracting its text took longer than the %s allowed and was stopped: split the file or raise the extraction timeout", name, allowed)
	case errors.Is(err, context.Canceled):
		return engine.WrapError(engine.EUNAVAILABLE, err, "%s: extraction was interrupted: upload it again", name)
	}
	return engine.WrapError(engine.EINTERNAL, err, "%s: extraction failed", name)
}

func (x *Extractor) textTooLarge(name string) error {
	return engine.Errorf(engine.ETOOLARGE, "%s: its text is over the limit of %s: split the document into smaller files", name, byteSize(x.cfg.MaxTextBytes))
}

// byteSize formats n bytes for people: "20 MiB", "1.5 KiB", "12 bytes".
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	suffix := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}[exp]
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %s", int64(v), suffix)
	}
	return fmt.Sprintf("%.1f %s", v, suffix)
}
