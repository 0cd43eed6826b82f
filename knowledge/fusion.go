package knowledge

import (
	"cmp"
	"math"
	"slices"

	"github.com/convosphere/convosphere/engine"
)

// Hybrid search runs two searches for one question, a lexical one (BM25
// over the words) and a vector one (cosine similarity of embeddings), each
// fetching CandidateCount(limit) candidates, and fuses the two ranked lists
// into one. Every backend fuses with the functions of this file, so a
// setting means the same thing whichever index is configured.
//
// Reciprocal rank fusion (engine.FusionRRF, the default) looks at ranks
// only: a passage scores the sum, over the lists that found it, of
// 1/(k+rank), rank counting from 1. Scores of different signals need no
// calibration, which makes it the safe default. A small k rewards being
// first in one list; a large k rewards being found by both.
//
// Alpha fusion (engine.FusionAlpha) looks at scores: each list is divided
// by its best score (a relative score: the best candidate of each list
// scores 1 and the others keep their proportions, so unlike min-max
// normalisation the last candidate does not fall to 0 and a list of one is
// well defined), a list that did not find a passage gives it 0, and the
// fused score is alpha*vector + (1-alpha)*lexical. Alpha 0 ranks exactly as
// lexical search, alpha 1 exactly as vector search.
//
// Fused scores lie in (0, 1]: passages fusing to 0 (found only by the list
// alpha gives no weight) are left out.

// DefaultRRFK is the k of reciprocal rank fusion when a query sets none.
const DefaultRRFK = 60

// CandidateCount is how many candidates each signal of a hybrid search
// fetches before fusion for a search returning limit passages: four times
// the limit, at least 50.
func CandidateCount(limit int) int { return max(limit*4, 50) }

// RRFScore returns the reciprocal rank fusion score of a passage ranked
// lexicalRank in the lexical list and vectorRank in the vector list
// (counting from 1; 0 when the list does not hold it): the sum of
// 1/(k+rank), divided by 2/(k+1), which a passage first in both lists
// scores, so that scores lie in (0, 1]. A passage first in one list only
// scores 0.5; one found by neither scores 0. k <= 0 means DefaultRRFK.
func RRFScore(k, lexicalRank, vectorRank int) float64 {
	if k <= 0 {
		k = DefaultRRFK
	}
	var sum float64
	for _, r := range []int{lexicalRank, vectorRank} {
		if r > 0 {
			sum += 1 / float64(k+r)
		}
	}
	return min(sum/(2/float64(k+1)), 1)
}

// AlphaScore returns alpha*vector + (1-alpha)*lexical for scores already
// divided by the best score of their list (0 when the list did not find
// the passage).
func AlphaScore(alpha, lexical, vector float64) float64 {
	return min(alpha*vector+(1-alpha)*lexical, 1)
}

// Fuse merges the candidates of a hybrid search into the final ranking,
// best first. lexical and vector are each ranked best first, with Score
// set to that signal's score (the BM25 score normalised to (0, 1], the
// cosine similarity); passages are matched by ID, and a passage keeps the
// fields of the first list that holds it. q, normalised, gives the fusion
// method, Alpha, RRFK, MinScore (applied to the fused score) and Limit.
//
// Each passage returned has Score = Scores.Fused, and Scores.Lexical and
// Scores.Vector set for the lists that found it. Ties keep the order of
// the list with more weight (the vector list for alpha above 0.5, else the
// lexical list), then of the other list.
func Fuse(q Query, lexical, vector []engine.Passage) []engine.Passage {
	type entry struct {
		p                engine.Passage
		lexRank, vecRank int
		lex, vec         float64
		fused            float64
	}
	byID := make(map[string]*entry, len(lexical)+len(vector))
	entries := make([]*entry, 0, len(lexical)+len(vector))
	get := func(p engine.Passage) *entry {
		e := byID[p.ID]
		if e == nil {
			e = &entry{p: p}
			byID[p.ID] = e
			entries = append(entries, e)
		}
		return e
	}
	var maxLex, maxVec float64
	for i, p := range lexical {
		if e := get(p); e.lexRank == 0 {
			e.lexRank, e.lex = i+1, p.Score
			maxLex = max(maxLex, p.Score)
		}
	}
	for i, p := range vector {
		if e := get(p); e.vecRank == 0 {
			e.vecRank, e.vec = i+1, p.Score
			maxVec = max(maxVec, p.Score)
		}
	}
	kept := entries[:0]
	for _, e := range entries {
		switch q.Fusion {
		case engine.FusionAlpha:
			e.fused = AlphaScore(q.Alpha, relative(e.lex, maxLex, e.lexRank), relative(e.vec, maxVec, e.vecRank))
		default:
			e.fused = RRFScore(q.RRFK, e.lexRank, e.vecRank)
		}
		if e.fused > 0 && e.fused >= q.MinScore {
			kept = append(kept, e)
		}
	}
	vectorFirst := q.Fusion == engine.FusionAlpha && q.Alpha > 0.5
	rank := func(r int) int {
		if r == 0 {
			return math.MaxInt
		}
		return r
	}
	slices.SortStableFunc(kept, func(a, b *entry) int {
		if c := cmp.Compare(b.fused, a.fused); c != 0 {
			return c
		}
		first, second := cmp.Compare(rank(a.lexRank), rank(b.lexRank)), cmp.Compare(rank(a.vecRank), rank(b.vecRank))
		if vectorFirst {
			first, second = second, first
		}
		return cmp.Or(first, second, cmp.Compare(a.p.ID, b.p.ID))
	})
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultSearchLimit
	}
	out := make([]engine.Passage, 0, min(limit, len(kept)))
	for _, e := range kept[:min(limit, len(kept))] {
		p := e.p
		p.Score = e.fused
		p.Scores = engine.Scores{Fused: ptr(e.fused)}
		if e.lexRank > 0 {
			p.Scores.Lexical = ptr(e.lex)
		}
		if e.vecRank > 0 {
			p.Scores.Vector = ptr(e.vec)
		}
		out = append(out, p)
	}
	return out
}

// relative divides a score by the best of its list; 0 when the list did
// not find the passage.
func relative(score, best float64, rank int) float64 {
	if rank == 0 || best <= 0 {
		return 0
	}
	return min(score/best, 1)
}

func ptr(f float64) *float64 { return &f }
