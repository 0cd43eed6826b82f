package embedded

import (
	"strings"
	"unicode"
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
		if seen[w] || stopwords[w] || !strings.ContainsFunc(w, isWordRune) {
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

// stopwords are English words too common to say what a question is about.
var stopwords = func() map[string]bool {
	m := make(map[string]bool)
	for _, w := range strings.Fields(`
		a about above after again against all am an and any are as at be because been before being
		below between both but by can could did do does doing down during each few for from further
		had has have having he her here hers herself him himself his how i if in into is it its itself
		just let me more most my myself no nor not now of off on once only or other our ours ourselves
		out over own same she should so some such than that the their theirs them themselves then there
		these they this those through to too under until up very was we were what when where which while
		who whom why will with would you your yours yourself yourselves
		cannot don doesn didn isn aren wasn weren won wouldn shouldn couldn d ll m re s t ve
		please tell show explain`) {
		m[w] = true
	}
	return m
}()
