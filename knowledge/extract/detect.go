package extract

import (
	"bytes"
	"net/http"
	"path"
	"regexp"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/convosphere/convosphere/engine"
	"golang.org/x/net/html/atom"
)

// sniffLen is how much of a file detection looks at.
const sniffLen = 64 << 10

var (
	utf8BOM    = []byte{0xEF, 0xBB, 0xBF}
	utf16LEBOM = []byte{0xFF, 0xFE}
	utf16BEBOM = []byte{0xFE, 0xFF}
	utf32LEBOM = []byte{0xFF, 0xFE, 0x00, 0x00}
	utf32BEBOM = []byte{0x00, 0x00, 0xFE, 0xFF}
	cfbMagic   = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}
)

// kind is what detection found: a content type and, for text types, the
// content as a string (UTF-8 for Markdown and plain text; HTML may still be
// in the charset its page declares).
type kind struct {
	contentType string
	text        string
}

// Detect says what content is, by its content: one of the ContentType*
// constants, or an EINVALID error naming what the file looks like. name
// only chooses between Markdown and plain text.
func Detect(name string, content []byte) (string, error) {
	k, err := detect(name, content)
	return k.contentType, err
}

// signature is a binary format recognised by its first bytes.
type signature struct {
	offset int
	magic  string
	what   string
}

// signatures name common binary files, so a refusal can say what the file
// looks like. They are only consulted for content that is not text, since
// text may start with the same letters ("BMW", "MZ-1").
var signatures = []signature{
	{0, "\x89PNG\r\n\x1a\n", "a PNG image"},
	{0, "\xFF\xD8\xFF", "a JPEG image"},
	{0, "GIF87a", "a GIF image"},
	{0, "GIF89a", "a GIF image"},
	{0, "BM", "a BMP image"},
	{0, "II*\x00", "a TIFF image"},
	{0, "MM\x00*", "a TIFF image"},
	{0, "\x00\x00\x01\x00", "an icon image"},
	{0, "8BPS", "a Photoshop image"},
	{4, "ftypheic", "a HEIC image"},
	{4, "ftyp", "an MP4 or QuickTime video"},
	{0, "ID3", "an MP3 audio file"},
	{0, "OggS", "an Ogg audio or video file"},
	{0, "fLaC", "a FLAC audio file"},
	{0, "\x1A\x45\xDF\xA3", "a Matroska or WebM video"},
	{0, "\x7FELF", "an ELF executable"},
	{0, "MZ", "a Windows executable"},
	{0, "\xCF\xFA\xED\xFE", "a Mach-O executable"},
	{0, "\xCA\xFE\xBA\xBE", "a Mach-O executable or Java class file"},
	{0, "\x00asm", "a WebAssembly module"},
	{0, "\x1F\x8B", "a gzip archive"},
	{0, "BZh", "a bzip2 archive"},
	{0, "\xFD7zXZ\x00", "an xz archive"},
	{0, "\x28\xB5\x2F\xFD", "a zstd archive"},
	{0, "7z\xBC\xAF\x27\x1C", "a 7-Zip archive"},
	{0, "Rar!\x1A\x07", "a RAR archive"},
	{257, "ustar", "a tar archive"},
	{0, "SQLite format 3\x00", "an SQLite database"},
	{0, "wOFF", "a web font"},
	{0, "wOF2", "a web font"},
	{0, "AT&TFORM", "a DjVu document (convert it to PDF)"},
	{0, "\x00\x01\x00\x00\x00", "a TrueType font"},
	{0, "OTTO", "an OpenType font"},
}

// textSignatures are text formats that are not documents to index as text.
var textSignatures = []signature{
	{0, "{\\rtf", "an RTF document (save it as DOCX or PDF)"},
	{0, "%!PS", "a PostScript file (convert it to PDF)"},
}

// riffKinds name RIFF containers by their form type.
var riffKinds = map[string]string{
	"WEBP": "a WebP image",
	"WAVE": "a WAV audio file",
	"AVI ": "an AVI video",
}

// supported ends every "unsupported file type" message.
const supported = "upload Markdown, plain text (UTF-8), HTML, PDF or DOCX"

func unsupported(name, what string) error {
	return engine.Errorf(engine.EINVALID, "%s: unsupported file type: it is %s; %s", name, what, supported)
}

func detect(name string, content []byte) (kind, error) {
	head := content[:min(len(content), sniffLen)]
	// The PDF header may follow some junk, within the first KiB.
	if bytes.Contains(head[:min(len(head), 1024)], []byte("%PDF-")) {
		return kind{contentType: ContentTypePDF}, nil
	}
	switch {
	case bytes.HasPrefix(content, []byte("PK\x03\x04")):
		return kind{contentType: ContentTypeDOCX}, nil // docx.go tells other ZIPs apart
	case bytes.HasPrefix(content, []byte("PK\x05\x06")):
		return kind{}, unsupported(name, "an empty ZIP archive")
	case bytes.HasPrefix(content, cfbMagic):
		return kind{}, legacyOffice(name, content)
	case bytes.HasPrefix(content, utf32LEBOM), bytes.HasPrefix(content, utf32BEBOM):
		return kind{}, unsupported(name, "UTF-32 text (save it as UTF-8)")
	}
	var text string
	switch {
	case bytes.HasPrefix(content, utf16LEBOM), bytes.HasPrefix(content, utf16BEBOM):
		t, ok := decodeUTF16(content)
		if !ok {
			return kind{}, unsupported(name, "UTF-16 text with an odd number of bytes (damaged? save it as UTF-8)")
		}
		text = t
	default:
		text = string(bytes.TrimPrefix(content, utf8BOM))
	}
	sample := text[:min(len(text), sniffLen)]
	binary := strings.IndexByte(text, 0) >= 0 || controlHeavy(sample)
	valid := utf8.ValidString(text)
	if binary || !valid {
		if what := matchSignature(signatures, head); what != "" {
			return kind{}, unsupported(name, what)
		}
		if len(head) >= 12 && string(head[:4]) == "RIFF" {
			if what, ok := riffKinds[string(head[8:12])]; ok {
				return kind{}, unsupported(name, what)
			}
		}
	}
	switch {
	case binary:
		return kind{}, unsupported(name, describeBinary(head))
	case !valid && strongHTML(sample):
		// HTML declares its charset; anything else must be UTF-8.
		return kind{contentType: ContentTypeHTML, text: text}, nil
	case !valid:
		return kind{}, unsupported(name, "not UTF-8 text (Latin-1 or another legacy encoding? save it as UTF-8)")
	}
	if what := matchSignature(textSignatures, head); what != "" {
		return kind{}, unsupported(name, what)
	}
	switch {
	case strongHTML(sample):
		return kind{contentType: ContentTypeHTML, text: text}, nil
	case isSVG(sample):
		return kind{}, unsupported(name, "an SVG image")
	}
	ext := strings.ToLower(path.Ext(strings.ReplaceAll(name, `\`, "/")))
	// Markdown may hold HTML (a centred logo in a README) and an HTML
	// fragment may look like Markdown: there the name tips the balance,
	// then Markdown signals, then a leading HTML tag.
	switch {
	case markdownExt[ext]:
		return kind{contentType: ContentTypeMarkdown, text: text}, nil
	case htmlExt[ext] && weakHTML(sample):
		return kind{contentType: ContentTypeHTML, text: text}, nil
	case ext != ".txt" && ext != ".text" && looksLikeMarkdown(sample):
		return kind{contentType: ContentTypeMarkdown, text: text}, nil
	case weakHTML(sample):
		return kind{contentType: ContentTypeHTML, text: text}, nil
	}
	return kind{contentType: ContentTypeText, text: text}, nil
}

func matchSignature(sigs []signature, head []byte) string {
	for _, s := range sigs {
		if len(head) >= s.offset+len(s.magic) && string(head[s.offset:s.offset+len(s.magic)]) == s.magic {
			return s.what
		}
	}
	return ""
}

// legacyOffice explains an OLE compound file: either an encrypted Office
// document (its streams are EncryptionInfo and EncryptedPackage) or a
// legacy .doc, .xls or .ppt.
func legacyOffice(name string, content []byte) error {
	if bytes.Contains(content, utf16le("EncryptedPackage")) || bytes.Contains(content, utf16le("EncryptionInfo")) {
		return engine.Errorf(engine.EINVALID, "%s: the document is encrypted (password protected): remove the password in Word (File > Info > Protect Document) and upload it again", name)
	}
	return unsupported(name, "an encrypted or legacy Office document (.doc, .xls or .ppt, an OLE compound file): open it in Word, save it as .docx without a password, and upload that")
}

func utf16le(s string) []byte {
	b := make([]byte, 0, 2*len(s))
	for _, r := range s {
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}

// decodeUTF16 decodes text with a UTF-16 byte order mark. Unpaired
// surrogates become U+FFFD. ok is false for an odd number of bytes.
func decodeUTF16(content []byte) (string, bool) {
	big := bytes.HasPrefix(content, utf16BEBOM)
	b := content[2:]
	if len(b)%2 != 0 {
		return "", false
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		if big {
			u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		} else {
			u[i] = uint16(b[2*i+1])<<8 | uint16(b[2*i])
		}
	}
	return string(utf16.Decode(u)), true
}

// controlHeavy reports whether more than 1% of s are control characters
// other than tab, newline, carriage return and form feed.
func controlHeavy(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' || c == 0x7F {
			n++
		}
	}
	return n*100 > len(s)
}

// describeBinary names binary content as well as net/http can.
func describeBinary(head []byte) string {
	ct := http.DetectContentType(head)
	ct, _, _ = strings.Cut(ct, ";")
	switch {
	case ct == "application/octet-stream" || strings.HasPrefix(ct, "text/"):
		return "binary data, not text"
	case strings.HasPrefix(ct, "image/"):
		return "an image (" + ct + ")"
	case strings.HasPrefix(ct, "audio/"), strings.HasPrefix(ct, "video/"):
		return "audio or video (" + ct + ")"
	}
	return "binary data (" + ct + ")"
}

// markupStart skips white space, comments, an XML declaration and
// processing instructions at the start of s and returns the rest, lower
// case, up to 64 bytes.
func markupStart(s string) string {
	for range 16 {
		s = strings.TrimLeft(s, " \t\r\n\f")
		switch {
		case strings.HasPrefix(s, "<!--"):
			i := strings.Index(s, "-->")
			if i < 0 {
				return ""
			}
			s = s[i+3:]
		case strings.HasPrefix(s, "<?"):
			i := strings.Index(s, "?>")
			if i < 0 {
				return ""
			}
			s = s[i+2:]
		default:
			return strings.ToLower(s[:min(len(s), 64)])
		}
	}
	return ""
}

// strongHTML reports whether s starts like an HTML document.
func strongHTML(s string) bool {
	start := markupStart(s)
	for _, p := range []string{"<!doctype html", "<html", "<head", "<body"} {
		if strings.HasPrefix(start, p) {
			return true
		}
	}
	return false
}

var (
	markdownExt = map[string]bool{".md": true, ".markdown": true, ".mdown": true, ".mkd": true}
	htmlExt     = map[string]bool{".html": true, ".htm": true, ".xhtml": true}
	leadingTag  = regexp.MustCompile(`^<([a-z][a-z0-9]*)[\s/>]`)
)

// weakHTML reports whether s starts, after comments, with an HTML element
// (a fragment such as "<h2>Intro</h2><p>...").
func weakHTML(s string) bool {
	m := leadingTag.FindStringSubmatch(markupStart(s))
	return m != nil && atom.Lookup([]byte(m[1])) != 0
}

func isSVG(s string) bool {
	start := markupStart(s)
	return strings.HasPrefix(start, "<svg") || strings.HasPrefix(start, "<!doctype svg")
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

// looksLikeMarkdown scores Markdown signals: a strong one (heading, fence,
// link, setext underline) counts two, a weak one (list, quote, code span,
// bold, table row) one; three or more is Markdown.
func looksLikeMarkdown(s string) bool {
	score := 0
	for _, re := range mdStrong {
		if re.MatchString(s) {
			score += 2
		}
	}
	for _, re := range mdWeak {
		if re.MatchString(s) {
			score++
		}
	}
	return score >= 3
}
