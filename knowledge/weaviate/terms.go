package weaviate

import (
	"crypto/sha1"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-openapi/strfmt"

	"github.com/convosphere/convosphere/knowledge"
)

// maxTerms bounds the words of one query, so a long message stays a cheap
// search.
const maxTerms = 32

// queryTerms returns the words of text that a BM25 query should look for,
// joined by spaces: cut where Weaviate's "word" tokenizer cuts (anything but
// letters and numbers), lowercased, without stopwords and repeats, at most
// maxTerms. What remains is letters, digits and spaces, so it is safe in any
// query syntax. "" means there is nothing to search for.
func queryTerms(text string) string {
	var terms []string
	seen := make(map[string]bool)
	for _, w := range strings.FieldsFunc(strings.ToLower(text), isSeparator) {
		if seen[w] || knowledge.IsStopword(w) {
			continue
		}
		seen[w] = true
		terms = append(terms, w)
		if len(terms) == maxTerms {
			break
		}
	}
	return strings.Join(terms, " ")
}

func isSeparator(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) }

// filterValue reports whether s can be matched exactly in a filter: the
// client quotes filter values with Go's %q, which writes control and
// invisible characters as escapes GraphQL does not know, and "field"
// tokenization trims surrounding spaces. Upsert refuses knowledge base and
// document ids that are not filter values, so a search naming one matches
// nothing.
func filterValue(s string) bool {
	if s == "" || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}

// uuidNamespace is the namespace of chunk object UUIDs (a random UUID fixed
// here; changing it orphans every stored chunk).
var uuidNamespace = [16]byte{0x5b, 0x0e, 0x8c, 0x3a, 0x71, 0x94, 0x4d, 0x2f, 0x9a, 0x6e, 0x13, 0xc8, 0x47, 0xd2, 0x05, 0xb1}

// objectID returns the UUID (version 5: SHA-1 of namespace and name) of the
// object that holds the chunk with the given id.
func objectID(chunkID string) strfmt.UUID {
	h := sha1.New()
	h.Write(uuidNamespace[:])
	h.Write([]byte(chunkID))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	b := hex.EncodeToString(u[:])
	return strfmt.UUID(b[0:8] + "-" + b[8:12] + "-" + b[12:16] + "-" + b[16:20] + "-" + b[20:32])
}
