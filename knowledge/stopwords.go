package knowledge

import "strings"

// IsStopword reports whether a lowercased query word is dropped before a
// lexical search, by every backend alike: Weaviate's English preset, the
// pieces of English contractions, and the words of asking ("how do I",
// "could you please"), which say nothing of what a chat question is about.
// Longer lists measured worse on the retrieval benchmark (docs/benchmarks.md):
// words such as "more", "up", "who" or "show" carry meaning in technical
// text, and common words that do not already weigh little in BM25.
func IsStopword(w string) bool { return stopwords[w] }

var stopwords = func() map[string]bool {
	m := make(map[string]bool)
	for _, w := range strings.Fields(`
		a an and are as at be but by for if in into is it no not of on or such that the their then
		there these they this to was will with
		s t d ll m re ve don doesn didn isn aren wasn weren won wouldn shouldn couldn
		how do does did i me my you your can could should would please`) {
		m[w] = true
	}
	return m
}()
