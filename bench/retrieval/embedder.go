package main

import (
	"context"
	"hash/fnv"
	"math"
	"strings"
	"unicode"

	"github.com/convosphere/convosphere/engine"
)

// HashEmbedder is a deterministic local embedder for the benchmark: no
// embedding model can be reached here, so hybrid search is measured with
// feature hashing instead. Each lowercased word (stopwords dropped) and each
// character trigram of it (with boundary marks, so "copy" gives "^co",
// "cop", "opy", "py$") is hashed into one of Dims buckets with a hashed
// sign; counts are damped (1+log tf) and the vector is L2-normalised. It
// captures word overlap and some morphology (copy/copies/copied share
// trigrams), nothing of meaning, so it shows what the hybrid plumbing costs
// and does, not what a real embedding model would add.
type HashEmbedder struct {
	Dims int // default 384
}

var _ engine.Embedder = HashEmbedder{}

// Embed implements engine.Embedder.
func (h HashEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out[i] = h.embed(t)
	}
	return out, nil
}

func (h HashEmbedder) dims() int {
	if h.Dims <= 0 {
		return 384
	}
	return h.Dims
}

// trigramWeight is the weight of one character trigram against a whole word's 1.
const trigramWeight = 0.25

func (h HashEmbedder) embed(text string) []float32 {
	counts := map[string]float64{}
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if hashStopwords[w] {
			continue
		}
		counts["w:"+w]++
		r := []rune("^" + w + "$")
		for j := 0; j+3 <= len(r); j++ {
			counts["g:"+string(r[j:j+3])] += trigramWeight
		}
	}
	v := make([]float64, h.dims())
	for f, c := range counts {
		hs := fnv.New64a()
		hs.Write([]byte(f))
		sum := hs.Sum64()
		bucket := int(sum % uint64(len(v)))
		sign := 1.0
		if sum>>63 == 1 {
			sign = -1
		}
		v[bucket] += sign * (1 + math.Log(1+c))
	}
	var norm float64
	for _, x := range v {
		norm += x * x
	}
	out := make([]float32, len(v))
	if norm == 0 {
		// No word at all: a fixed unit vector keeps cosine defined.
		out[0] = 1
		return out
	}
	norm = math.Sqrt(norm)
	for i, x := range v {
		out[i] = float32(x / norm)
	}
	return out
}

// hashStopwords are function words left out of the hashed features.
var hashStopwords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a an and are as at be by for from has have in is it its of on or
		that the this to was were will with which not no can if then than`) {
		m[w] = true
	}
	return m
}()

// embedderOrNil turns a nil *HashEmbedder into a nil engine.Embedder.
func embedderOrNil(h *HashEmbedder) engine.Embedder {
	if h == nil {
		return nil
	}
	return *h
}
