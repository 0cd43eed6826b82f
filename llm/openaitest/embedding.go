package openaitest

import (
	"hash/fnv"
	"math"
	"strings"
	"unicode"
)

// Embedding returns the vector the server gives text: a hashed bag of its
// lowercased words, normalised to unit length, so texts sharing words are
// close. A text without words maps to the first unit vector.
func Embedding(text string, dims int) []float32 {
	if dims <= 0 {
		dims = DefaultDims
	}
	v := make([]float64, dims)
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	})
	for _, w := range words {
		h := fnv.New32a()
		_, _ = h.Write([]byte(w))
		v[h.Sum32()%uint32(dims)]++
	}
	var norm float64
	for _, x := range v {
		norm += x * x
	}
	out := make([]float32, dims)
	if norm == 0 {
		out[0] = 1
		return out
	}
	norm = math.Sqrt(norm)
	for i, x := range v {
		out[i] = float32(x / norm)
	}
	return out
}
