package extract

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"io"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/convosphere/convosphere/engine"
)

// DOCX is read with archive/zip and encoding/xml, no external tool. The
// archive is checked before anything is inflated: the entry count (from the
// end-of-central-directory record, before the directory is even parsed),
// entry names (absolute paths and ".." are refused: such an archive was
// made to attack unzip tools), and the sum of the declared uncompressed
// sizes. Declared sizes can lie, so every part is also read through a
// budget that stops at MaxUncompressedBytes of inflated data.

// docx extracts a ZIP that is a Word document; other ZIPs (XLSX, PPTX,
// ODF, EPUB, JAR, plain archives) are refused as unsupported.
func (x *Extractor) docx(ctx context.Context, name string, content []byte) (*Document, error) {
	if n, ok := zipEntryCount(content); ok && n > uint64(x.cfg.MaxArchiveEntries) {
		return nil, x.tooManyEntries(name, n)
	}
	zr, err := zip.NewReader(bytes.NewReader(content), int64(len(content)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, engine.WrapError(engine.EINVALID, err, "%s: the file starts like a ZIP archive (DOCX) but cannot be read: it is damaged or truncated; save it again and upload it again", name)
	}
	if len(zr.File) > x.cfg.MaxArchiveEntries {
		return nil, x.tooManyEntries(name, uint64(len(zr.File)))
	}
	parts := make(map[string]*zip.File, len(zr.File))
	var declared uint64
	for _, f := range zr.File {
		if unsafeEntryName(f.Name) {
			return nil, engine.Errorf(engine.EINVALID, "%s: the archive holds an entry with an unsafe path (%q): it was not made by a word processor and may be malicious; save the document again from Word or LibreOffice", name, truncate(f.Name, 80))
		}
		parts[strings.ToLower(f.Name)] = f
		if f.UncompressedSize64 > uint64(x.cfg.MaxUncompressedBytes)-declared {
			return nil, x.tooBigUncompressed(name) // checked before adding: sums of huge sizes wrap
		}
		declared += f.UncompressedSize64
	}
	if what, ok := zipKind(parts); !ok {
		return nil, unsupported(name, what)
	}

	b := &budget{left: x.cfg.MaxUncompressedBytes}
	mainPart := "word/document.xml"
	if f := parts["_rels/.rels"]; f != nil {
		target, err := officeDocumentTarget(b, f)
		if err != nil {
			return nil, x.partError(name, f.Name, err)
		}
		if target != "" {
			mainPart = target
		}
	}
	main := parts[strings.ToLower(mainPart)]
	if main == nil {
		return nil, engine.Errorf(engine.EINVALID, "%s: the Word document has no main part (%s): it is damaged; save it again and upload it again", name, mainPart)
	}
	dir := path.Dir(mainPart)
	st := styles{}
	if f := parts[strings.ToLower(path.Join(dir, "styles.xml"))]; f != nil {
		if st, err = readStyles(b, f); err != nil {
			return nil, x.partError(name, f.Name, err)
		}
	}
	num := numbering{}
	if f := parts[strings.ToLower(path.Join(dir, "numbering.xml"))]; f != nil {
		if num, err = readNumbering(b, f); err != nil {
			return nil, x.partError(name, f.Name, err)
		}
	}
	title := ""
	if f := parts["docprops/core.xml"]; f != nil {
		if title, err = readCoreTitle(b, f); err != nil {
			return nil, x.partError(name, f.Name, err)
		}
	}
	p := &docxParser{ctx: ctx, styles: st, numbering: num, counters: map[string][]int{}, maxText: x.cfg.MaxTextBytes}
	if err := withPart(b, main, p.parse); err != nil {
		if errors.Is(err, errTextTooLarge) {
			return nil, x.textTooLarge(name)
		}
		return nil, x.partError(name, main.Name, err)
	}
	md := p.body.String()
	if title == "" {
		title = firstHeading(md)
	}
	return &Document{ContentType: ContentTypeDOCX, Title: title, Text: md}, nil
}

func (x *Extractor) tooManyEntries(name string, n uint64) error {
	return engine.Errorf(engine.ETOOLARGE, "%s: the archive has %d entries, over the limit of %d (a ZIP bomb?): save the document again from Word, or raise the archive entry limit", name, n, x.cfg.MaxArchiveEntries)
}

func (x *Extractor) tooBigUncompressed(name string) error {
	return engine.Errorf(engine.ETOOLARGE, "%s: the document uncompresses to more than %s (a ZIP bomb?): split it into smaller documents, or raise the uncompressed size limit", name, byteSize(x.cfg.MaxUncompressedBytes))
}

// partError explains a failure to read one part of a DOCX.
func (x *Extractor) partError(name, part string, err error) error {
	var e *engine.Error
	switch {
	case errors.As(err, &e):
		return err
	case errors.Is(err, errBudget):
		return x.tooBigUncompressed(name)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return err
	}
	return engine.WrapError(engine.EINVALID, err, "%s: the part %s of the Word document is damaged (invalid ZIP data or XML): save the document again and upload it again", name, part)
}

// truncate shortens s to at most n bytes, at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// unsafeEntryName reports whether a ZIP entry name is absolute, climbs out
// with "..", or holds a NUL.
func unsafeEntryName(name string) bool {
	s := strings.ReplaceAll(name, `\`, "/")
	switch {
	case s == "", strings.ContainsRune(s, 0), strings.HasPrefix(s, "/"):
		return true
	case len(s) >= 2 && s[1] == ':': // C:
		return true
	}
	for part := range strings.SplitSeq(s, "/") {
		if part == ".." {
			return true
		}
	}
	return false
}

// zipKind tells a Word document from other ZIP-based files by their part
// names; what names a file that is not one.
func zipKind(parts map[string]*zip.File) (what string, isDOCX bool) {
	has := func(p string) bool { return parts[p] != nil }
	hasDir := func(dir string) bool {
		for n := range parts {
			if strings.HasPrefix(n, dir) {
				return true
			}
		}
		return false
	}
	switch {
	case has("word/document.xml"), hasDir("word/") && (has("[content_types].xml") || has("_rels/.rels")):
		return "", true
	case hasDir("xl/"):
		return "an Excel workbook (XLSX; export the sheets as CSV or PDF)", false
	case hasDir("ppt/"):
		return "a PowerPoint presentation (PPTX; export it as PDF)", false
	case has("meta-inf/container.xml"):
		return "an EPUB book", false
	case has("mimetype") && has("content.xml"):
		return "an OpenDocument file (ODT, ODS or ODP; save it as DOCX or PDF)", false
	case has("meta-inf/manifest.mf"):
		return "a Java archive (JAR)", false
	case has("androidmanifest.xml"):
		return "an Android package (APK)", false
	}
	return "a ZIP archive, not a Word document (unzip it and upload the documents inside)", false
}

// zipEntryCount reads the number of entries from the end-of-central-
// directory record (ZIP64 too), before archive/zip allocates the directory.
func zipEntryCount(b []byte) (uint64, bool) {
	const eocdLen = 22
	lo := max(0, len(b)-eocdLen-65535)
	i := bytes.LastIndex(b[lo:], []byte("PK\x05\x06"))
	if i < 0 {
		return 0, false
	}
	i += lo
	if len(b) < i+eocdLen {
		return 0, false
	}
	n := uint64(binary.LittleEndian.Uint16(b[i+10:]))
	if n != 0xFFFF {
		return n, true
	}
	// ZIP64: a locator just before the record points to the ZIP64 record.
	loc := i - 20
	if loc < 0 || string(b[loc:loc+4]) != "PK\x06\x07" {
		return 0, false
	}
	off := binary.LittleEndian.Uint64(b[loc+8:])
	if off > uint64(len(b)-56) || string(b[off:off+4]) != "PK\x06\x06" {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[off+32:]), true
}

var (
	errBudget       = errors.New("uncompressed size limit reached")
	errTextTooLarge = errors.New("text size limit reached")
)

// budget is what may still be inflated from one archive.
type budget struct{ left int64 }

// reader counts what r yields against the budget, failing with errBudget
// once it would go over.
type budgetReader struct {
	r io.Reader
	b *budget
}

func (br budgetReader) Read(p []byte) (int, error) {
	if br.b.left <= 0 {
		// At the limit: fine if the part ends here.
		var one [1]byte
		n, err := br.r.Read(one[:])
		if n > 0 {
			return 0, errBudget
		}
		return 0, err
	}
	if int64(len(p)) > br.b.left {
		p = p[:br.b.left]
	}
	n, err := br.r.Read(p)
	br.b.left -= int64(n)
	return n, err
}

// withPart opens a part and hands fn a reader that keeps to the budget.
func withPart(b *budget, f *zip.File, fn func(io.Reader) error) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	return fn(budgetReader{r: rc, b: b})
}

// decodeXML calls fn for each token of an XML part. fn may call d.Skip.
func decodeXML(r io.Reader, fn func(d *xml.Decoder, tok xml.Token) error) error {
	d := xml.NewDecoder(r)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(d, tok); err != nil {
			return err
		}
	}
}

// val is the value of the attribute with local name key.
func val(el xml.StartElement, key string) (string, bool) {
	for _, a := range el.Attr {
		if a.Name.Local == key {
			return a.Value, true
		}
	}
	return "", false
}

// officeDocumentTarget reads the main part's name from _rels/.rels.
func officeDocumentTarget(b *budget, f *zip.File) (string, error) {
	target := ""
	err := withPart(b, f, func(r io.Reader) error {
		return decodeXML(r, func(_ *xml.Decoder, tok xml.Token) error {
			el, ok := tok.(xml.StartElement)
			if !ok || el.Name.Local != "Relationship" || target != "" {
				return nil
			}
			if typ, _ := val(el, "Type"); strings.HasSuffix(typ, "/officeDocument") {
				t, _ := val(el, "Target")
				if t = strings.TrimPrefix(path.Clean("/"+t), "/"); t != "." {
					target = t
				}
			}
			return nil
		})
	})
	return target, err
}

// readCoreTitle reads dc:title from docProps/core.xml.
func readCoreTitle(b *budget, f *zip.File) (string, error) {
	title := ""
	err := withPart(b, f, func(r io.Reader) error {
		return decodeXML(r, func(d *xml.Decoder, tok xml.Token) error {
			el, ok := tok.(xml.StartElement)
			if !ok || el.Name.Local != "title" || title != "" {
				return nil
			}
			var s string
			if err := d.DecodeElement(&s, &el); err != nil {
				return err
			}
			title = collapseSpace(s)
			return nil
		})
	})
	return title, err
}

// style is what a paragraph style says about structure.
type style struct {
	name    string // lower case, e.g. "heading 1"
	basedOn string
	outline int // outline level + 1 from the style's pPr; 0 for none
	numID   string
	ilvl    int
}

// styles maps style ids to styles.
type styles map[string]style

var headingName = regexp.MustCompile(`^heading\s*([1-9])$`)

// headingLevel is the heading level (1 to 9) of paragraph style id, from
// its name ("heading 2", "Title") or outline level, following basedOn; 0
// for body text. Without styles.xml, ids like "Heading2" are recognised.
func (s styles) headingLevel(id string) int {
	for range 10 {
		st, ok := s[id]
		if !ok {
			st = style{name: strings.ToLower(id)}
		}
		if m := headingName.FindStringSubmatch(st.name); m != nil {
			return int(m[1][0] - '0')
		}
		if st.name == "title" {
			return 1
		}
		if st.outline > 0 {
			return st.outline
		}
		if !ok || st.basedOn == "" {
			return 0
		}
		id = st.basedOn
	}
	return 0
}

// Paragraph roles a style can give beyond headings and lists.
const (
	roleNone = iota
	roleCode
	roleQuote
	roleTOC
)

var (
	codeStyle  = regexp.MustCompile(`code|verbatim|preformatted|plain ?text|macro`)
	quoteStyle = regexp.MustCompile(`quote|block ?text`)
	tocStyle   = regexp.MustCompile(`^toc\s*[1-9]$`)
)

// role says whether paragraph style id (or a style it is based on) marks
// code, a quotation or a table-of-contents entry, by its name.
func (s styles) role(id string) int {
	for range 10 {
		if id == "" {
			return roleNone
		}
		st, ok := s[id]
		name := st.name
		if !ok || name == "" {
			name = strings.ToLower(id)
		}
		switch {
		case tocStyle.MatchString(name):
			return roleTOC
		case codeStyle.MatchString(name):
			return roleCode
		case quoteStyle.MatchString(name):
			return roleQuote
		}
		if !ok {
			return roleNone
		}
		id = st.basedOn
	}
	return roleNone
}

// list is the numbering a style carries, following basedOn.
func (s styles) list(id string) (numID string, ilvl int) {
	for range 10 {
		st, ok := s[id]
		if !ok {
			return "", 0
		}
		if st.numID != "" {
			return st.numID, st.ilvl
		}
		id = st.basedOn
	}
	return "", 0
}

func readStyles(b *budget, f *zip.File) (styles, error) {
	st := styles{}
	var cur *style
	var curID string
	err := withPart(b, f, func(r io.Reader) error {
		return decodeXML(r, func(d *xml.Decoder, tok xml.Token) error {
			switch el := tok.(type) {
			case xml.StartElement:
				switch el.Name.Local {
				case "style":
					curID, _ = val(el, "styleId")
					cur = &style{}
				case "name":
					if cur != nil {
						v, _ := val(el, "val")
						cur.name = strings.ToLower(collapseSpace(v))
					}
				case "basedOn":
					if cur != nil {
						cur.basedOn, _ = val(el, "val")
					}
				case "outlineLvl":
					if v, _ := val(el, "val"); cur != nil {
						if n, err := strconv.Atoi(v); err == nil && n >= 0 && n < 9 {
							cur.outline = n + 1
						}
					}
				case "numId":
					if cur != nil {
						cur.numID, _ = val(el, "val")
					}
				case "ilvl":
					if v, _ := val(el, "val"); cur != nil {
						cur.ilvl, _ = strconv.Atoi(v)
					}
				case "rPr", "tblPr", "trPr", "tcPr", "tblStylePr", "rsid":
					return d.Skip()
				}
			case xml.EndElement:
				if el.Name.Local == "style" && cur != nil {
					if curID != "" {
						st[curID] = *cur
					}
					cur = nil
				}
			}
			return nil
		})
	})
	return st, err
}

// numbering says which list levels are ordered.
type numbering struct {
	abstract map[string]string         // numId -> abstractNumId
	formats  map[string]map[int]string // abstractNumId -> ilvl -> numFmt
	starts   map[string]map[int]int    // abstractNumId -> ilvl -> start
}

func readNumbering(b *budget, f *zip.File) (numbering, error) {
	n := numbering{abstract: map[string]string{}, formats: map[string]map[int]string{}, starts: map[string]map[int]int{}}
	var absID, numID string
	lvl := -1
	err := withPart(b, f, func(r io.Reader) error {
		return decodeXML(r, func(d *xml.Decoder, tok xml.Token) error {
			el, ok := tok.(xml.StartElement)
			if !ok {
				return nil
			}
			switch el.Name.Local {
			case "abstractNum":
				absID, _ = val(el, "abstractNumId")
				numID, lvl = "", -1
				n.formats[absID] = map[int]string{}
				n.starts[absID] = map[int]int{}
			case "num":
				numID, _ = val(el, "numId")
				absID, lvl = "", -1
			case "abstractNumId":
				if numID != "" {
					n.abstract[numID], _ = val(el, "val")
				}
			case "lvl":
				v, _ := val(el, "ilvl")
				lvl, _ = strconv.Atoi(v)
			case "numFmt":
				if absID != "" && lvl >= 0 {
					if _, seen := n.formats[absID][lvl]; !seen {
						n.formats[absID][lvl], _ = val(el, "val")
					}
				}
			case "start":
				if absID != "" && lvl >= 0 {
					v, _ := val(el, "val")
					if s, err := strconv.Atoi(v); err == nil && s >= 0 && s < 1e6 {
						n.starts[absID][lvl] = s
					}
				}
			case "lvlOverride", "rPr", "pPr", "Fallback":
				return d.Skip()
			}
			return nil
		})
	})
	return n, err
}

// ordered reports whether level ilvl of list numID is numbered, and its
// first number.
func (n numbering) ordered(numID string, ilvl int) (bool, int) {
	abs, ok := n.abstract[numID]
	if !ok {
		return false, 1
	}
	start, ok := n.starts[abs][ilvl]
	if !ok {
		start = 1
	}
	switch n.formats[abs][ilvl] {
	case "", "bullet", "none":
		return false, start
	}
	return true, start
}

// docxParser turns word/document.xml into Markdown.
type docxParser struct {
	ctx       context.Context
	styles    styles
	numbering numbering
	counters  map[string][]int // numId -> next number per level
	maxText   int64
	written   int64

	paras  []*docxPara      // open paragraphs (text boxes nest them)
	conts  []*docxContainer // body, then open table cells
	tables []*docxTable
	runs   int  // depth of open runs
	inText bool // inside w:t
	body   docxContainer
}

type docxPara struct {
	text    strings.Builder
	style   string
	numID   string
	ilvl    int
	outline int // outline level + 1; 0 for none
	hasNum  bool
}

// docxBlock is a rendered paragraph, list item, table or code line.
type docxBlock struct {
	text  string
	list  string // the list id of a list item, else ""
	level int    // a list item's level, else -1
	code  bool   // a line of code, kept as written; consecutive lines make one block
}

// docxContainer collects blocks: the body or a table cell.
type docxContainer struct {
	blocks []docxBlock
	span   int // for a table cell: the grid columns it spans
}

func (c *docxContainer) add(b docxBlock) {
	if strings.TrimSpace(b.text) == "" && !b.code {
		return
	}
	if n := len(c.blocks); b.code && n > 0 && c.blocks[n-1].code {
		c.blocks[n-1].text += "\n" + b.text
		return
	}
	c.blocks = append(c.blocks, b)
}

// lastLevel is the level of the list item that ends the container, or -1.
func (c *docxContainer) lastLevel() int {
	if n := len(c.blocks); n > 0 && c.blocks[n-1].list != "" {
		return c.blocks[n-1].level
	}
	return -1
}

// rendered returns the container's blocks as Markdown, code fenced.
func (c *docxContainer) rendered() []string {
	var out []string
	for _, b := range c.blocks {
		if b.code {
			if t := codeBlock(b.text, ""); t != "" {
				out = append(out, t)
			}
			continue
		}
		out = append(out, b.text)
	}
	return out
}

// String joins the blocks: list items tight (unless two lists meet at
// their top level), others with a blank line.
func (c *docxContainer) String() string {
	var sb strings.Builder
	for i, b := range c.blocks {
		text := b.text
		if b.code {
			if text = codeBlock(text, ""); text == "" {
				continue
			}
		}
		if sb.Len() > 0 {
			prev := c.blocks[i-1]
			if b.list != "" && prev.list != "" && (b.list == prev.list || b.level > 0 || prev.level > 0) {
				sb.WriteString("\n")
			} else {
				sb.WriteString("\n\n")
			}
		}
		sb.WriteString(text)
	}
	return sb.String()
}

type docxTable struct {
	rows   [][][]string // row, cell, blocks
	layout bool
}

func (p *docxParser) cont() *docxContainer {
	if len(p.conts) == 0 {
		return &p.body
	}
	return p.conts[len(p.conts)-1]
}

func (p *docxParser) para() *docxPara {
	if len(p.paras) == 0 {
		return nil
	}
	return p.paras[len(p.paras)-1]
}

// skipped are elements whose content is never document text: deleted
// revisions, field instructions, old formatting, the fallback copy of
// alternate content, and properties.
var skipped = map[string]bool{
	"del": true, "moveFrom": true, "instrText": true, "delInstrText": true, "pPrChange": true,
	"rPrChange": true, "sectPr": true, "Fallback": true, "sdtPr": true, "rPr": true, "tblPr": true,
	"tblGrid": true, "trPr": true, "footnoteReference": true, "endnoteReference": true,
}

func (p *docxParser) parse(r io.Reader) error {
	tokens := 0
	return decodeXML(r, func(d *xml.Decoder, tok xml.Token) error {
		if tokens++; tokens%1024 == 0 {
			if err := p.ctx.Err(); err != nil {
				return err
			}
		}
		switch el := tok.(type) {
		case xml.StartElement:
			return p.start(d, el)
		case xml.EndElement:
			return p.end(el)
		case xml.CharData:
			if para := p.para(); p.inText && para != nil {
				para.text.Write(el)
			}
		}
		return nil
	})
}

func (p *docxParser) start(d *xml.Decoder, el xml.StartElement) error {
	local := el.Name.Local
	if skipped[local] {
		return d.Skip()
	}
	para := p.para()
	switch local {
	case "p":
		p.paras = append(p.paras, &docxPara{})
	case "pStyle":
		if para != nil {
			para.style, _ = val(el, "val")
		}
	case "numId":
		if para != nil {
			para.numID, _ = val(el, "val")
			para.hasNum = true
		}
	case "ilvl":
		if para != nil {
			v, _ := val(el, "val")
			para.ilvl, _ = strconv.Atoi(v)
		}
	case "outlineLvl":
		if para != nil {
			v, _ := val(el, "val")
			if n, err := strconv.Atoi(v); err == nil && n >= 0 && n < 9 {
				para.outline = n + 1
			}
		}
	case "tabs": // tab stop definitions, not tab characters
		return d.Skip()
	case "r":
		p.runs++
	case "t":
		p.inText = p.runs > 0
	case "tab", "ptab":
		if para != nil && p.runs > 0 {
			para.text.WriteByte('\t')
		}
	case "br", "cr":
		if para != nil && p.runs > 0 {
			para.text.WriteByte('\n')
		}
	case "noBreakHyphen":
		if para != nil && p.runs > 0 {
			para.text.WriteByte('-')
		}
	case "tbl":
		if len(p.tables) > 0 {
			p.tables[len(p.tables)-1].layout = true // a table in a table: layout
		}
		p.tables = append(p.tables, &docxTable{})
	case "tr":
		if len(p.tables) > 0 {
			t := p.tables[len(p.tables)-1]
			t.rows = append(t.rows, nil)
		}
	case "tc":
		p.conts = append(p.conts, &docxContainer{})
	case "gridSpan":
		if len(p.conts) > 0 {
			v, _ := val(el, "val")
			if n, err := strconv.Atoi(v); err == nil && n > 1 {
				p.conts[len(p.conts)-1].span = min(n, 64)
			}
		}
	}
	return nil
}

func (p *docxParser) end(el xml.EndElement) error {
	switch el.Name.Local {
	case "t":
		p.inText = false
	case "r":
		p.runs = max(0, p.runs-1)
	case "p":
		if len(p.paras) == 0 {
			return nil
		}
		para := p.paras[len(p.paras)-1]
		p.paras = p.paras[:len(p.paras)-1]
		return p.emit(para)
	case "tc":
		if len(p.conts) == 0 {
			return nil
		}
		c := p.conts[len(p.conts)-1]
		p.conts = p.conts[:len(p.conts)-1]
		if len(p.tables) == 0 {
			return nil
		}
		t := p.tables[len(p.tables)-1]
		if len(t.rows) == 0 {
			t.rows = append(t.rows, nil)
		}
		blocks := c.rendered()
		if len(blocks) > 1 || len(blocks) == 1 && (strings.HasPrefix(blocks[0], "#") || strings.HasPrefix(blocks[0], "```")) {
			t.layout = true
		}
		row := &t.rows[len(t.rows)-1]
		*row = append(*row, blocks)
		for range c.span - 1 { // the cell spans columns: pad after it
			*row = append(*row, nil)
		}
	case "tbl":
		if len(p.tables) == 0 {
			return nil
		}
		t := p.tables[len(p.tables)-1]
		p.tables = p.tables[:len(p.tables)-1]
		for _, b := range renderTable(t.rows, t.layout) {
			if err := p.write(docxBlock{text: b, level: -1}); err != nil {
				return err
			}
		}
	}
	return nil
}

// emit renders a finished paragraph into the open container.
func (p *docxParser) emit(para *docxPara) error {
	raw := para.text.String()
	role := p.styles.role(para.style)
	switch {
	case role == roleCode:
		return p.write(docxBlock{text: strings.TrimRight(raw, " \t\n"), level: -1, code: true})
	case isBlank(raw), role == roleTOC:
		return nil // a table of contents holds titles and page numbers
	}
	level := para.outline
	if level == 0 && para.style != "" {
		level = p.styles.headingLevel(para.style)
	}
	if level > 0 {
		return p.write(docxBlock{text: heading(level, raw), level: -1})
	}
	numID, ilvl := para.numID, para.ilvl
	if !para.hasNum && para.style != "" {
		numID, ilvl = p.styles.list(para.style)
	}
	if numID == "" || numID == "0" {
		text := paragraph(raw)
		if role == roleQuote {
			text = quote(text)
		}
		return p.write(docxBlock{text: text, level: -1})
	}
	// Markdown nests an item only under an item one level up; a list
	// after other blocks starts at the top.
	ilvl = max(0, min(ilvl, 8, p.cont().lastLevel()+1))
	marker := "- "
	if ordered, start := p.numbering.ordered(numID, ilvl); ordered {
		c := p.counters[numID]
		for len(c) <= ilvl {
			c = append(c, -1)
		}
		if c[ilvl] < 0 {
			c[ilvl] = start
		}
		marker = strconv.Itoa(c[ilvl]) + ". "
		c[ilvl]++
		for i := ilvl + 1; i < len(c); i++ {
			c[i] = -1 // a deeper list starts again
		}
		p.counters[numID] = c
	}
	pad := strings.Repeat("    ", ilvl)
	item := indent(paragraph(raw), pad+marker, pad+strings.Repeat(" ", len(marker)))
	return p.write(docxBlock{text: item, list: numID, level: ilvl})
}

// write adds a block to the open container, counting the text.
func (p *docxParser) write(b docxBlock) error {
	p.written += int64(len(b.text)) + 2
	if p.written > p.maxText {
		return errTextTooLarge
	}
	p.cont().add(b)
	return nil
}

// renderTable renders table rows (cells of blocks) as a Markdown table, or
// as the blocks of its cells when it is a layout table (layout set, or a
// single column).
func renderTable(rows [][][]string, layout bool) []string {
	rows = dropEmptyColumns(rows)
	cols := 0
	for _, r := range rows {
		cols = max(cols, len(r))
	}
	if layout || cols < 2 {
		var out []string
		for _, r := range rows {
			for _, c := range r {
				out = append(out, c...)
			}
		}
		return out
	}
	cells := make([][]string, len(rows))
	for i, r := range rows {
		for _, c := range r {
			cells[i] = append(cells[i], strings.Join(c, " "))
		}
	}
	if blankRows(cells) {
		return nil
	}
	return []string{table(cells)}
}

// dropEmptyColumns removes the columns that are empty in every row
// (spacers in layout and menu tables).
func dropEmptyColumns(rows [][][]string) [][][]string {
	var used []bool
	for _, r := range rows {
		for i, c := range r {
			for len(used) <= i {
				used = append(used, false)
			}
			used[i] = used[i] || len(c) > 0
		}
	}
	out := make([][][]string, len(rows))
	for i, r := range rows {
		for j, c := range r {
			if used[j] {
				out[i] = append(out[i], c)
			}
		}
	}
	return out
}
