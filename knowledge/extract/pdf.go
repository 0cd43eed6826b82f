package extract

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// PDFs are read with poppler-utils' pdftotext and pdfinfo (Debian package
// poppler-utils), not a pure-Go library. Text extraction from PDF is mostly
// font work: mapping glyphs back to characters through ToUnicode CMaps,
// embedded CFF/TrueType cmaps and standard encodings, then putting glyphs
// back into words, lines and reading order across columns. Poppler has
// done this for twenty years on real-world files; the pure-Go readers
// available handle simple files but lose text on CID fonts, custom
// encodings, broken xref tables and multi-column layouts, and a parser
// panic or endless loop on a hostile file would run inside our process. A
// separate process is also the natural sandbox for a timeout: it is killed
// when its time is up, memory and all.
//
// How the tools are run: no shell; the PDF goes in on stdin and the text
// comes out on stdout, so no temporary file is written; LC_ALL=C keeps
// their messages stable. pdfinfo first gives the page count, the title and
// whether a password is needed; a PDF with more than MaxPages pages is
// refused with ETOOLARGE rather than indexed in part, since a knowledge
// base silently missing the end of a manual answers "not found" with no
// sign why. Then pdftotext -enc UTF-8 (reading order, not -layout, which
// interleaves columns) writes the text with a form feed after each page,
// which gives Document.PageStarts. Its output is capped at MaxTextBytes.

// maxToolStderr is how much of a tool's error output is kept.
const maxToolStderr = 4 << 10

// pdfInfo is what pdfinfo says about a PDF.
type pdfInfo struct {
	title string
	pages int
}

func (x *Extractor) pdf(ctx context.Context, name string, content []byte) (*Document, error) {
	if ok, why := x.PDFSupport(); !ok {
		return nil, engine.Errorf(engine.EUNAVAILABLE, "%s: %s", name, why)
	}
	info, err := x.pdfInfo(ctx, name, content)
	if err != nil {
		return nil, err
	}
	if info.pages > x.cfg.MaxPages {
		return nil, engine.Errorf(engine.ETOOLARGE, "%s: the PDF has %d pages, over the limit of %d: split it into smaller files, or raise the page limit", name, info.pages, x.cfg.MaxPages)
	}
	out, stderr, err := x.run(ctx, x.pdftotext, content, x.cfg.MaxTextBytes,
		"-enc", "UTF-8", "-l", strconv.Itoa(x.cfg.MaxPages), "-", "-")
	if err != nil {
		return nil, x.toolError(ctx, name, "pdftotext", stderr, err)
	}
	doc := pdfDocument(string(out))
	doc.Pages = max(info.pages, len(doc.PageStarts))
	doc.Title = info.title
	if doc.Title == "" {
		doc.Title = firstLine(doc.Text)
	}
	return doc, nil
}

func (x *Extractor) pdfInfo(ctx context.Context, name string, content []byte) (pdfInfo, error) {
	out, stderr, err := x.run(ctx, x.pdfinfo, content, 1<<20, "-enc", "UTF-8", "-")
	if err != nil {
		return pdfInfo{}, x.toolError(ctx, name, "pdfinfo", stderr, err)
	}
	var info pdfInfo
	pagesSeen := false
	for line := range strings.SplitSeq(string(out), "\n") {
		key, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch key {
		case "Title":
			info.title = collapseSpace(v)
		case "Pages":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return pdfInfo{}, engine.Errorf(engine.EINVALID, "%s: the PDF's page count %q cannot be read: it is damaged; save or print it to PDF again", name, truncate(v, 40))
			}
			info.pages, pagesSeen = n, true
		}
	}
	if !pagesSeen {
		return pdfInfo{}, engine.Errorf(engine.EINVALID, "%s: the PDF has no page count: it is damaged; save or print it to PDF again", name)
	}
	return info, nil
}

// toolError explains a failed pdfinfo or pdftotext run.
func (x *Extractor) toolError(ctx context.Context, name, tool, stderr string, err error) error {
	var exitErr *exec.ExitError
	switch {
	case errors.Is(err, errTextTooLarge):
		return x.textTooLarge(name)
	case ctx.Err() != nil:
		return ctx.Err() // Extract turns it into ETIMEOUT
	case strings.Contains(stderr, "Incorrect password"):
		return engine.Errorf(engine.EINVALID, "%s: the PDF is encrypted: remove the password and upload it again", name)
	case errors.As(err, &exitErr):
		first, _, _ := strings.Cut(strings.TrimSpace(stderr), "\n")
		return engine.WrapError(engine.EINVALID, errors.New(tool+": "+exitErr.String()+": "+first),
			"%s: the PDF cannot be read: it is damaged or not really a PDF; save or print it to PDF again and upload it again", name)
	}
	return engine.WrapError(engine.EUNAVAILABLE, err, "%s: %s could not be run: check the poppler-utils installation", name, tool)
}

// run runs a tool with stdin as its input and returns its output, cut off
// (errTextTooLarge) past maxOut bytes, and the start of its error output.
func (x *Extractor) run(ctx context.Context, prog string, stdin []byte, maxOut int64, args ...string) ([]byte, string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	stdout := &cappedBuffer{max: maxOut, overflow: cancel}
	stderr := &cappedBuffer{max: maxToolStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = time.Second // stop waiting on pipes a killed tool's children hold
	err := cmd.Run()
	if stdout.over {
		return nil, stderr.String(), errTextTooLarge
	}
	return stdout.Bytes(), stderr.String(), err
}

// cappedBuffer keeps the first max bytes written to it and drops the rest,
// calling overflow (once) when something is dropped. Writes never fail, so
// the tool is stopped by overflow rather than by a broken pipe. It has no
// ReadFrom, so io.Copy goes through Write.
type cappedBuffer struct {
	buf      bytes.Buffer
	max      int64
	over     bool
	overflow func()
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	room := b.max - int64(b.buf.Len())
	if int64(len(p)) > room {
		b.buf.Write(p[:max(0, room)])
		if !b.over && b.overflow != nil {
			b.overflow()
		}
		b.over = true
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *cappedBuffer) Bytes() []byte  { return b.buf.Bytes() }
func (b *cappedBuffer) String() string { return b.buf.String() }

var (
	spaceBeforeNewline = regexp.MustCompile(`[ \t]+\n`)
	manyNewlines       = regexp.MustCompile(`\n{3,}`)
	falseHeading       = regexp.MustCompile(`(?m)^( {0,3})(#{1,6}(?:[ \t]|$)|=+[ \t]*$|-{2,}[ \t]*$)`)
)

// pdfDocument turns pdftotext output (a form feed after each page) into
// paragraphs, recording where each page starts. PDF text has no markup, so
// lines that Markdown would read as headings are escaped.
func pdfDocument(out string) *Document {
	pages := strings.Split(out, "\f")
	if len(pages) > 1 && strings.TrimSpace(pages[len(pages)-1]) == "" {
		pages = pages[:len(pages)-1]
	}
	doc := &Document{ContentType: ContentTypePDF}
	var sb strings.Builder
	for _, page := range pages {
		page = strings.Map(func(r rune) rune {
			if r < 0x20 && r != '\n' && r != '\t' || r == 0x7F {
				return -1
			}
			return r
		}, normalizeText(page))
		page = spaceBeforeNewline.ReplaceAllString(page+"\n", "\n")
		page = manyNewlines.ReplaceAllString(page, "\n\n")
		page = falseHeading.ReplaceAllString(strings.Trim(page, "\n"), `$1\$2`)
		if sb.Len() > 0 && page != "" {
			sb.WriteString("\n\n")
		}
		doc.PageStarts = append(doc.PageStarts, sb.Len())
		sb.WriteString(page)
	}
	doc.Text = sb.String()
	return doc
}

// firstLine is the first non-blank line of text, if it is short enough to
// be a title.
func firstLine(text string) string {
	for l := range strings.SplitSeq(text, "\n") {
		if l = collapseSpace(strings.TrimPrefix(l, `\`)); l != "" {
			if len(l) > 120 {
				return ""
			}
			return l
		}
	}
	return ""
}
