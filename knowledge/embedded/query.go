package embedded

import (
	"strings"
	"unicode"

	"github.com/convosphere/convosphere/knowledge"
)

// maxTerms bounds the terms of one query, so that a long message stays a
// cheap search.
const maxTerms = 32

// matchQuery turns free text into a safe FTS5 query: its words, lowercased,
// each quoted as a string (so no input is FTS5 syntax: quotes, parentheses,
// NEAR, AND, *, -, ^ and : are only text), joined with OR so that passages
// matching some of the words still rank. Stopwords are dropped, so a query
// of stopwords only finds nothing. "" means nothing to search for.
func matchQuery(text string) string {
	var terms []string
	seen := make(map[string]bool)
	for _, w := range strings.FieldsFunc(strings.ToLower(text), isSeparator) {
		if seen[w] || knowledge.IsStopword(w) || !strings.ContainsFunc(w, isWordRune) {
			continue
		}
		seen[w] = true
		terms = append(terms, `"`+strings.ReplaceAll(w, `"`, `""`)+`"`)
		if len(terms) == maxTerms {
			break
		}
	}
	return strings.Join(terms, " OR ")
}

// isSeparator reports whether r separates words, as FTS5's unicode61
// tokenizer sees it: anything but letters, digits and combining marks.
func isSeparator(r rune) bool { return !isWordRune(r) && !unicode.IsMark(r) }

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsNumber(r) }
