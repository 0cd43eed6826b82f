package extract_test

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"testing"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge/extract"
)

// zipFile is one entry of a test archive.
type zipFile struct {
	name, body string
}

// MustDOCX writes files into a ZIP archive, in order, deflated.
func MustDOCX(tb testing.TB, files []zipFile) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		w, err := zw.Create(f.name)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := w.Write([]byte(f.body)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

const wordNS = `xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"`

// docxFiles are the parts of a minimal Word document whose body is body,
// plus extra parts.
func docxFiles(body string, extra ...zipFile) []zipFile {
	files := []zipFile{
		{"[Content_Types].xml", `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`},
		{"_rels/.rels", `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>`},
		{"word/document.xml", `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document ` + wordNS + `><w:body>` + body + `<w:sectPr><w:pgSz w:w="12240"/></w:sectPr></w:body></w:document>`},
	}
	return append(files, extra...)
}

func para(style, text string) string {
	ppr := ""
	if style != "" {
		ppr = `<w:pPr><w:pStyle w:val="` + style + `"/></w:pPr>`
	}
	return `<w:p>` + ppr + `<w:r><w:t xml:space="preserve">` + text + `</w:t></w:r></w:p>`
}

func item(numID, ilvl int, text string) string {
	return fmt.Sprintf(`<w:p><w:pPr><w:pStyle w:val="ListParagraph"/><w:numPr><w:ilvl w:val="%d"/><w:numId w:val="%d"/></w:numPr></w:pPr><w:r><w:t>%s</w:t></w:r></w:p>`, ilvl, numID, text)
}

func cell(text string) string {
	return `<w:tc><w:tcPr><w:tcW w:w="2000"/></w:tcPr>` + para("", text) + `</w:tc>`
}

const stylesXML = `<?xml version="1.0" encoding="UTF-8"?><w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
<w:style w:type="paragraph" w:styleId="Normal"><w:name w:val="Normal"/></w:style>
<w:style w:type="paragraph" w:styleId="Titel"><w:name w:val="Title"/><w:basedOn w:val="Normal"/></w:style>
<w:style w:type="paragraph" w:styleId="berschrift1"><w:name w:val="heading 1"/><w:basedOn w:val="Normal"/><w:pPr><w:outlineLvl w:val="0"/></w:pPr></w:style>
<w:style w:type="paragraph" w:styleId="berschrift2"><w:name w:val="heading 2"/><w:basedOn w:val="Normal"/></w:style>
<w:style w:type="paragraph" w:styleId="MyChapter"><w:name w:val="My Chapter"/><w:basedOn w:val="berschrift2"/></w:style>
<w:style w:type="paragraph" w:styleId="Verzeichnis1"><w:name w:val="toc 1"/></w:style>
<w:style w:type="paragraph" w:styleId="ListParagraph"><w:name w:val="List Paragraph"/></w:style>
<w:style w:type="paragraph" w:styleId="Bullets"><w:name w:val="Bullets"/><w:pPr><w:numPr><w:numId w:val="1"/></w:numPr></w:pPr></w:style>
</w:styles>`

const numberingXML = `<?xml version="1.0" encoding="UTF-8"?><w:numbering xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
<w:abstractNum w:abstractNumId="0"><w:lvl w:ilvl="0"><w:numFmt w:val="bullet"/><w:lvlText w:val="•"/></w:lvl><w:lvl w:ilvl="1"><w:numFmt w:val="bullet"/></w:lvl></w:abstractNum>
<w:abstractNum w:abstractNumId="1"><w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="decimal"/></w:lvl><w:lvl w:ilvl="1"><w:start w:val="1"/><w:numFmt w:val="lowerLetter"/></w:lvl></w:abstractNum>
<w:num w:numId="1"><w:abstractNumId w:val="0"/></w:num>
<w:num w:numId="2"><w:abstractNumId w:val="1"/></w:num>
</w:numbering>`

const coreXML = `<?xml version="1.0" encoding="UTF-8"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Operations  Handbook</dc:title><dc:creator>Ops</dc:creator></cp:coreProperties>`

func TestExtractDOCX(t *testing.T) {
	x := MustExtractor(t, extract.Config{})
	structured := strings.Join([]string{
		para("Titel", "Operations"),
		para("Verzeichnis1", "Introduction\t3"), // a table of contents entry
		para("berschrift1", "Introduction"),
		`<w:p><w:r><w:t xml:space="preserve">Runs </w:t></w:r><w:r><w:t>join</w:t></w:r><w:r><w:tab/><w:t>after a tab</w:t></w:r><w:r><w:br/><w:t>and a break.</w:t></w:r></w:p>`,
		para("", "# not a heading"),
		para("MyChapter", "Setup"),
		item(1, 0, "first bullet"),
		item(1, 1, "nested bullet"),
		item(1, 0, "second bullet"),
		para("", "Steps:"),
		item(2, 0, "install"),
		item(2, 1, "download"),
		item(2, 1, "unpack"),
		item(2, 0, "configure"),
		para("Bullets", "bullet from its style"),
		`<w:tbl><w:tblPr><w:tblStyle w:val="Grid"/></w:tblPr><w:tblGrid><w:gridCol/></w:tblGrid>` +
			`<w:tr>` + cell("Setting") + cell("Default") + `</w:tr>` +
			`<w:tr>` + cell("timeout") + cell("60 s | per file") + `</w:tr>` +
			`<w:tr><w:tc><w:tcPr><w:gridSpan w:val="2"/></w:tcPr>` + para("", "spans both") + `</w:tc></w:tr></w:tbl>`,
		`<w:p><w:pPr><w:outlineLvl w:val="2"/></w:pPr><w:r><w:t>Outline heading</w:t></w:r></w:p>`,
		`<w:p><w:r><w:t xml:space="preserve">Kept </w:t></w:r><w:del><w:r><w:delText>deleted </w:delText></w:r></w:del><w:ins><w:r><w:t>inserted</w:t></w:r></w:ins><w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText>PAGE</w:instrText></w:r></w:p>`,
		`<w:p><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wps:txbx><w:txbxContent>` + para("", "Text box") + `</w:txbxContent></wps:txbx></w:drawing></mc:Choice><mc:Fallback><w:pict><w:txbxContent>` + para("", "Text box") + `</w:txbxContent></w:pict></mc:Fallback></mc:AlternateContent></w:r><w:r><w:t>Anchor paragraph</w:t></w:r></w:p>`,
		`<w:sdt><w:sdtPr><w:alias w:val="Field"/></w:sdtPr><w:sdtContent>` + para("", "Inside a content control") + `</w:sdtContent></w:sdt>`,
		para("Heading3", "Heading without styles.xml entry"),
		para("", "Last words &amp; more."),
	}, "")
	want := strings.Join([]string{
		"# Operations",
		"# Introduction",
		"Runs join after a tab\nand a break.",
		`\# not a heading`,
		"## Setup",
		"- first bullet\n    - nested bullet\n- second bullet",
		"Steps:",
		"1. install\n    1. download\n    2. unpack\n2. configure",
		"- bullet from its style",
		"| Setting | Default |\n| --- | --- |\n| timeout | 60 s \\| per file |\n| spans both |  |",
		"### Outline heading",
		"Kept inserted",
		"Text box",
		"Anchor paragraph",
		"Inside a content control",
		"### Heading without styles.xml entry",
		"Last words & more.",
	}, "\n\n")

	tests := []struct {
		name      string
		files     []zipFile
		title     string
		wantText  string
		wantCheck func(t *testing.T, text string)
	}{
		{"structure", docxFiles(structured, zipFile{"word/styles.xml", stylesXML}, zipFile{"word/numbering.xml", numberingXML}, zipFile{"docProps/core.xml", coreXML}), "Operations Handbook", want, nil},
		{"title from first heading", docxFiles(para("Heading2", "Release notes") + para("", "Fixed things.")), "Release notes", "## Release notes\n\nFixed things.", nil},
		{"no rels: default main part", docxFiles(para("", "plain"))[2:], "", "plain", nil},
		{"main part from rels", []zipFile{
			{"_rels/.rels", `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="r" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="/word/document2.xml"/></Relationships>`},
			{"word/document2.xml", `<w:document ` + wordNS + `><w:body>` + para("", "second main part") + `</w:body></w:document>`},
		}, "", "second main part", nil},
		{"layout table", docxFiles(`<w:tbl><w:tr><w:tc>` + para("Heading1", "Left") + para("", "left text") + `</w:tc><w:tc>` + para("", "right text") + `</w:tc></w:tr></w:tbl>`), "Left", "# Left\n\nleft text\n\nright text", nil},
		{"list under paragraph starts at level 0", docxFiles(para("", "Intro") + item(1, 2, "deep item first")), "", "Intro\n\n- deep item first", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := MustExtract(t, x, "handbook.docx", MustDOCX(t, tt.files))
			if doc.ContentType != extract.ContentTypeDOCX {
				t.Errorf("content type %q", doc.ContentType)
			}
			if doc.Title != tt.title {
				t.Errorf("title %q; want %q", doc.Title, tt.title)
			}
			if doc.Text != tt.wantText {
				t.Errorf("text:\n%s\n--- want:\n%s", doc.Text, tt.wantText)
			}
		})
	}
}

// rawEntry is an archive entry written as given, declared sizes included.
type rawEntry struct {
	name         string
	data         []byte // uncompressed
	declaredSize uint64 // 0: the real size
}

// mustRawZip writes entries deflated, with their declared sizes, which may lie.
func mustRawZip(tb testing.TB, entries []rawEntry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		var comp bytes.Buffer
		fw, _ := flate.NewWriter(&comp, flate.BestCompression)
		fw.Write(e.data)
		fw.Close()
		size := e.declaredSize
		if size == 0 {
			size = uint64(len(e.data))
		}
		w, err := zw.CreateRaw(&zip.FileHeader{
			Name: e.name, Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(e.data),
			CompressedSize64: uint64(comp.Len()), UncompressedSize64: size,
		})
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(comp.Bytes())
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestExtractDOCXBadArchives(t *testing.T) {
	x := MustExtractor(t, extract.Config{MaxArchiveEntries: 20, MaxUncompressedBytes: 1 << 20})
	doc := docxFiles(para("", "hello"))
	manyEntries := append([]zipFile(nil), doc...)
	for i := range 30 {
		manyEntries = append(manyEntries, zipFile{fmt.Sprintf("word/media/image%d.png", i), "x"})
	}
	// More than 65535 entries take a ZIP64 directory end; stored, not
	// deflated, to build quickly.
	var zip64 bytes.Buffer
	zw := zip.NewWriter(&zip64)
	for i := range 70_000 {
		if _, err := zw.CreateHeader(&zip.FileHeader{Name: "f" + strconv.Itoa(i), Method: zip.Store}); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	body := []byte(`<w:document ` + wordNS + `><w:body>` + para("", strings.Repeat("zero ", 300_000)) + `</w:body></w:document>`)
	encrypted := append([]byte("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"), make([]byte, 504)...)
	encrypted = append(encrypted, []byte("E\x00n\x00c\x00r\x00y\x00p\x00t\x00e\x00d\x00P\x00a\x00c\x00k\x00a\x00g\x00e\x00")...)

	tests := []struct {
		name    string
		content []byte
		code    string
		says    []string
	}{
		{"too many entries", MustDOCX(t, manyEntries), engine.ETOOLARGE, []string{"33 entries", "limit of 20"}},
		{"too many entries in a ZIP64 directory", zip64.Bytes(), engine.ETOOLARGE, []string{"70000 entries"}},
		{"declared size over the cap", mustRawZip(t, []rawEntry{{name: "word/document.xml", data: body[:100], declaredSize: 1 << 40}}), engine.ETOOLARGE, []string{"uncompresses to more than 1 MiB"}},
		{"declared sizes that wrap around", mustRawZip(t, []rawEntry{{name: "word/document.xml", data: body[:100], declaredSize: 1 << 63}, {name: "b", data: []byte("b"), declaredSize: 1 << 63}}), engine.ETOOLARGE, []string{"ZIP bomb"}},
		{"real size over the cap", mustRawZip(t, []rawEntry{{name: "word/document.xml", data: body}}), engine.ETOOLARGE, []string{"uncompresses to more than 1 MiB"}},
		{"declared size that lies", mustRawZip(t, []rawEntry{{name: "word/document.xml", data: body, declaredSize: 1000}}), engine.EINVALID, []string{"word/document.xml", "damaged"}},
		{"parent path entry", MustDOCX(t, append(docxFiles(para("", "x")), zipFile{"../../etc/cron.d/x", "y"})), engine.EINVALID, []string{"unsafe path", "../../etc/cron.d/x"}},
		{"absolute path entry", MustDOCX(t, append(docxFiles(para("", "x")), zipFile{"/etc/passwd", "y"})), engine.EINVALID, []string{"unsafe path"}},
		{"windows path entry", MustDOCX(t, append(docxFiles(para("", "x")), zipFile{`word\..\..\x`, "y"})), engine.EINVALID, []string{"unsafe path"}},
		{"xlsx", MustDOCX(t, []zipFile{{"[Content_Types].xml", "<Types/>"}, {"xl/workbook.xml", "<workbook/>"}}), engine.EINVALID, []string{"unsupported file type", "an Excel workbook"}},
		{"pptx", MustDOCX(t, []zipFile{{"[Content_Types].xml", "<Types/>"}, {"ppt/presentation.xml", "<p/>"}}), engine.EINVALID, []string{"a PowerPoint presentation"}},
		{"odt", MustDOCX(t, []zipFile{{"mimetype", "application/vnd.oasis.opendocument.text"}, {"content.xml", "<x/>"}}), engine.EINVALID, []string{"an OpenDocument file"}},
		{"plain zip", MustDOCX(t, []zipFile{{"notes.txt", "hello"}}), engine.EINVALID, []string{"a ZIP archive, not a Word document"}},
		{"truncated zip", MustDOCX(t, doc)[:200], engine.EINVALID, []string{"damaged or truncated"}},
		{"invalid xml", MustDOCX(t, []zipFile{{"word/document.xml", "<w:document><w:body><w:p>"}}), engine.EINVALID, []string{"word/document.xml", "damaged"}},
		{"missing main part", MustDOCX(t, []zipFile{{"[Content_Types].xml", "<Types/>"}, {"word/styles.xml", stylesXML}}), engine.EINVALID, []string{"no main part"}},
		{"encrypted docx", encrypted, engine.EINVALID, []string{"encrypted", "remove the password"}},
		{"legacy doc", append([]byte("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"), make([]byte, 1024)...), engine.EINVALID, []string{"legacy Office document", "save it as .docx"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := x.Extract(context.Background(), "upload.docx", tt.content)
			assertError(t, err, tt.code, "upload.docx", tt.says...)
		})
	}
}

func TestExtractDOCXTextCap(t *testing.T) {
	x := MustExtractor(t, extract.Config{MaxTextBytes: 1000})
	var body strings.Builder
	for range 100 {
		body.WriteString(para("", "twenty bytes of text"))
	}
	_, err := x.Extract(context.Background(), "long.docx", MustDOCX(t, docxFiles(body.String())))
	assertError(t, err, engine.ETOOLARGE, "long.docx", "text is over the limit")
}
