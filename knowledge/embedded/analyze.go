package embedded

import (
	"encoding/binary"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/convosphere/convosphere/knowledge"
)

// The searchable fields of a chunk. Each has its own postings and lengths:
// BM25 is computed per field and summed, as Weaviate's BM25F does.
const (
	fieldTitle = iota
	fieldHeadings
	fieldText
	numFields
)

// maxTerms bounds the terms of one query, so that a long message stays a
// cheap search.
const maxTerms = 32

// maxTermBytes leaves out of the index words longer than any real word
// (hashes, base64, minified code): they would only grow the dictionary.
const maxTermBytes = 100

// An analyzer turns text into index terms: words (runs of letters and
// digits; combining marks are kept inside a word and then removed with the
// rest of its diacritics), lowercased, stopwords left out, and plurals
// folded by Harman's S-stemmer ("files" and "file", "entries" and "entry"
// are one term).
//
// Measured on the man-page evaluation (docs/benchmarks.md), MRR@10: no
// stemming 0.734, the S-stemmer 0.731, Porter2 (Snowball English) 0.704:
// Porter2 conflates words whose meanings differ ("formation" and
// "formatting" both become "format", "information" and "inform" "inform").
// The S-stemmer keeps plurals from missing, the
// commonest mismatch between a question and a text, at almost no cost.
type analyzer struct{}

// terms calls fn with each index term of text, in order.
func (a *analyzer) terms(text string, fn func(term string)) {
	for len(text) > 0 {
		// Skip separators.
		i := 0
		for i < len(text) {
			r, size := utf8.DecodeRuneInString(text[i:])
			if !isSeparator(r) {
				break
			}
			i += size
		}
		text = text[i:]
		// Take a word.
		j, ascii := 0, true
		for j < len(text) {
			r, size := utf8.DecodeRuneInString(text[j:])
			if isSeparator(r) {
				break
			}
			if r >= utf8.RuneSelf {
				ascii = false
			}
			j += size
		}
		word := text[:j]
		text = text[j:]
		if word == "" {
			continue
		}
		if term := a.term(word, ascii); term != "" {
			fn(term)
		}
	}
}

// term returns the index term of one word, "" when it has none.
func (a *analyzer) term(word string, ascii bool) string {
	if ascii {
		word = lowerASCII(word)
	} else {
		word = strings.ToLower(foldDiacritics(word))
	}
	if len(word) > maxTermBytes || knowledge.IsStopword(word) || !strings.ContainsFunc(word, isWordRune) {
		return ""
	}
	return a.stem(word)
}

func (a *analyzer) stem(word string) string {
	if strings.ContainsFunc(word, unicode.IsDigit) {
		return word // codes, versions and identifiers are kept as written
	}
	n := len(word)
	switch {
	case n > 4 && strings.HasSuffix(word, "ies") && !strings.HasSuffix(word, "eies") && !strings.HasSuffix(word, "aies"):
		return word[:n-3] + "y"
	case n > 3 && strings.HasSuffix(word, "es") && !strings.HasSuffix(word, "aes") && !strings.HasSuffix(word, "ees") && !strings.HasSuffix(word, "oes"):
		return word[:n-1]
	case n > 3 && word[n-1] == 's' && word[n-2] != 'u' && word[n-2] != 's':
		return word[:n-1]
	}
	return word
}

// queryTerms returns the distinct index terms of a query, at most maxTerms.
func (a *analyzer) queryTerms(text string) []string {
	var out []string
	seen := make(map[string]bool)
	a.terms(text, func(t string) {
		if seen[t] || len(out) == maxTerms {
			return
		}
		seen[t] = true
		out = append(out, t)
	})
	return out
}

// lowerASCII lowercases an ASCII word, allocating only when it has capitals.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// foldDiacritics removes combining marks after canonical decomposition:
// "café" becomes "cafe", "Ångström" "Angstrom".
func foldDiacritics(s string) string {
	d := norm.NFD.String(s)
	return strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Mn, r) {
			return -1
		}
		return r
	}, d)
}

// isSeparator reports whether r separates words: anything but letters,
// digits and combining marks.
func isSeparator(r rune) bool { return !isWordRune(r) && !unicode.IsMark(r) }

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }

// fieldTerms are the analysed fields of one chunk: each field's length in
// terms and its distinct terms with their frequencies.
type fieldTerms struct {
	length [numFields]uint32
	terms  [numFields][]termFreq
}

type termFreq struct {
	term string
	freq uint32
}

// analyzeChunk analyses the searchable fields of a chunk.
func (a *analyzer) analyzeChunk(title, headings, text string) fieldTerms {
	var ft fieldTerms
	for f, s := range [numFields]string{title, headings, text} {
		counts := make(map[string]uint32)
		var order []string
		a.terms(s, func(t string) {
			if counts[t] == 0 {
				order = append(order, t)
			}
			counts[t]++
			ft.length[f]++
		})
		ft.terms[f] = make([]termFreq, len(order))
		for i, t := range order {
			ft.terms[f][i] = termFreq{t, counts[t]}
		}
	}
	return ft
}

// encodeTerms stores analysed fields in the chunks.terms column: for each
// field its length, its number of distinct terms, then each term's length,
// bytes and frequency, all as unsigned varints. The index rebuilds its
// postings from these without analysing text again.
func encodeTerms(ft fieldTerms) []byte {
	b := make([]byte, 0, 64)
	for f := range numFields {
		b = binary.AppendUvarint(b, uint64(ft.length[f]))
		b = binary.AppendUvarint(b, uint64(len(ft.terms[f])))
		for _, tf := range ft.terms[f] {
			b = binary.AppendUvarint(b, uint64(len(tf.term)))
			b = append(b, tf.term...)
			b = binary.AppendUvarint(b, uint64(tf.freq))
		}
	}
	return b
}

var errTermsBlob = errors.New("malformed terms")

// decodeTerms reads an encodeTerms blob, calling fn with each field's
// length and then with each of its terms (the term's bytes are only valid
// during the call).
func decodeTerms(b []byte, length func(field int, n uint32), term func(field int, term []byte, freq uint32)) error {
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	for f := range numFields {
		n, ok1 := next()
		count, ok2 := next()
		if !ok1 || !ok2 || n > 1<<32-1 {
			return errTermsBlob
		}
		length(f, uint32(n))
		for range count {
			l, ok := next()
			if !ok || l > uint64(len(b)) {
				return errTermsBlob
			}
			t := b[:l]
			b = b[l:]
			freq, ok := next()
			if !ok || freq > 1<<32-1 {
				return errTermsBlob
			}
			term(f, t, uint32(freq))
		}
	}
	if len(b) != 0 {
		return errTermsBlob
	}
	return nil
}
