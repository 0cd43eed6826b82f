package extractive

import (
	"strings"
	"unicode"
)

// termSet is the question's words, as matched against passages.
type termSet struct {
	words map[string]bool // stems of words in scripts that use spaces
	grams []string        // rune bigrams of Chinese, Japanese and Korean text
}

// stopwords are question words that say nothing about the topic.
var stopwords = setOf(`a an the is are was were be been being am to of in on for and or but not no
how what when where why who whom which whose do does did done can could should would will shall may might must
i me my we our us you your he she it its they them their this that these those there here
with without about from by at as into onto than then so if any some all please tell explain show give know
have has had get got make need want use`)

func setOf(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// token is a word and its rune offset in the text it came from.
type token struct {
	word   string
	offset int
}

// tokens splits text into lowercased runs of letters and digits.
func tokens(text string) []token {
	var (
		out   []token
		cur   []rune
		start int
		n     int
	)
	flush := func() {
		if len(cur) > 0 {
			out = append(out, token{word: strings.ToLower(string(cur)), offset: start})
			cur = cur[:0]
		}
	}
	for _, r := range text {
		if unicode.IsLetter(r) || unicode.IsNumber(r) {
			if len(cur) == 0 {
				start = n
			}
			cur = append(cur, r)
		} else {
			flush()
		}
		n++
	}
	flush()
	return out
}

func isCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

// stem strips common English inflections so "deploying" matches "deploy".
func stem(w string) string {
	for _, suffix := range []string{"ing", "ed", "s"} {
		base, ok := strings.CutSuffix(w, suffix)
		if ok && len([]rune(base)) >= 3 && !strings.HasSuffix(w, "ss") {
			return base
		}
	}
	return w
}

// termsOf extracts the terms of a question.
func termsOf(question string) termSet {
	t := termSet{words: map[string]bool{}}
	seen := map[string]bool{}
	for _, tok := range tokens(question) {
		rs := []rune(tok.word)
		if isCJK(rs[0]) {
			if len(rs) == 1 && !seen[tok.word] {
				seen[tok.word] = true
				t.grams = append(t.grams, tok.word)
			}
			for i := 0; i+1 < len(rs); i++ {
				if g := string(rs[i : i+2]); !seen[g] {
					seen[g] = true
					t.grams = append(t.grams, g)
				}
			}
			continue
		}
		if len(rs) < 2 || stopwords[tok.word] {
			continue
		}
		t.words[stem(tok.word)] = true
	}
	return t
}

// score counts the distinct terms text contains.
func (t termSet) score(text string) int {
	n := 0
	if len(t.words) > 0 {
		found := map[string]bool{}
		for _, tok := range tokens(text) {
			if s := stem(tok.word); t.words[s] && !found[s] {
				found[s] = true
				n++
			}
		}
	}
	if len(t.grams) > 0 {
		lower := strings.ToLower(text)
		for _, g := range t.grams {
			if strings.Contains(lower, g) {
				n++
			}
		}
	}
	return n
}

// firstMatch returns the rune offset of the first term in text, or -1.
func (t termSet) firstMatch(text string) int {
	first := -1
	for _, tok := range tokens(text) {
		if t.words[stem(tok.word)] {
			first = tok.offset
			break
		}
	}
	lower := strings.ToLower(text)
	for _, g := range t.grams {
		if i := strings.Index(lower, g); i >= 0 {
			if off := len([]rune(lower[:i])); first < 0 || off < first {
				first = off
			}
		}
	}
	return first
}
