package indextest

import (
	"context"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"unicode"

	"github.com/convosphere/convosphere/engine"
)

// Dims is the size of the vectors Embed returns.
const Dims = 512

// concepts groups words that mean much the same, as an embedding model
// would place them close together. Each group has a dimension of its own;
// any other word hashes into the dimensions after the groups.
var concepts = [][]string{
	{"rotate", "rotates", "rotating", "renew", "renews", "cycle", "refresh"},
	{"credential", "credentials", "secret", "secrets", "password", "passwords", "key", "keys", "token", "tokens"},
	{"backup", "backups", "back", "archive", "archives", "snapshot", "snapshots", "copies", "copy"},
	{"night", "nightly", "nights", "midnight"},
	{"conversation", "conversations", "thread", "threads", "discussion", "discussions"},
	{"connect", "connects", "connecting", "link", "integrate", "install"},
}

// conceptDims are the dimensions reserved for the concept groups.
const conceptDims = 32

// embedStopwords carry no meaning of their own.
var embedStopwords = strings.Fields(`a an and are as at be by do does each every for from how i in into is it
	its my of on or our the their this that to up us we what when where which with you your`)

// Embed returns the test embedding of text, a deterministic stand-in for an
// embedding model: a bag of the text's words, lowercased, without
// stopwords, where the words of one concept group share a dimension (so
// "archive" is close to "backup" without sharing a letter) and the other
// words hash into the remaining dimensions; normalised to unit length. A
// text without words maps to a vector orthogonal to every word.
func Embed(text string) []float32 {
	v := make([]float64, Dims)
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	})
	for _, w := range words {
		if !slices.Contains(embedStopwords, w) {
			v[dimension(w)]++
		}
	}
	var norm float64
	for _, x := range v {
		norm += x * x
	}
	out := make([]float32, Dims)
	if norm == 0 {
		out[conceptDims-1] = 1 // a reserved dimension no word uses
		return out
	}
	norm = math.Sqrt(norm)
	for i, x := range v {
		out[i] = float32(x / norm)
	}
	return out
}

// dimension returns the dimension a word counts in.
func dimension(w string) int {
	for i, group := range concepts {
		if slices.Contains(group, w) {
			return i
		}
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(w))
	return conceptDims + int(h.Sum32()%uint32(Dims-conceptDims))
}

// Cosine returns the cosine similarity of two vectors of equal length, 0
// when either is zero.
func Cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

// Embedder is an engine.Embedder that returns Embed of each text; it
// counts the texts it embedded. The zero value is ready to use.
type Embedder struct {
	texts atomic.Int64
}

// Texts returns how many texts e embedded.
func (e *Embedder) Texts() int { return int(e.texts.Load()) }

var _ engine.Embedder = (*Embedder)(nil)

// Embed implements engine.Embedder.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		out[i] = Embed(t)
	}
	e.texts.Add(int64(len(texts)))
	return out, nil
}
