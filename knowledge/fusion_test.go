package knowledge_test

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
)

func TestRRFScore(t *testing.T) {
	tests := []struct {
		k, lex, vec int
		want        float64
	}{
		{60, 1, 1, 1},
		{60, 1, 0, 0.5},
		{60, 0, 1, 0.5},
		{60, 0, 0, 0},
		{60, 2, 2, 61.0 / 62},
		{60, 1, 4, (1.0/61 + 1.0/64) / (2.0 / 61)},
		{1, 1, 4, (1.0/2 + 1.0/5) / 1},
		{1, 2, 2, 2.0 / 3},
		{0, 2, 2, 61.0 / 62}, // default k
		{-5, 1, 0, 0.5},
	}
	for _, tt := range tests {
		if got := knowledge.RRFScore(tt.k, tt.lex, tt.vec); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("RRFScore(%d, %d, %d) = %v, want %v", tt.k, tt.lex, tt.vec, got, tt.want)
		}
	}
}

func TestAlphaScore(t *testing.T) {
	tests := []struct{ alpha, lex, vec, want float64 }{
		{0, 0.4, 1, 0.4},
		{1, 0.4, 1, 1},
		{0.5, 0.4, 1, 0.7},
		{0.25, 1, 0, 0.75},
		{0.5, 1, 1, 1},
	}
	for _, tt := range tests {
		if got := knowledge.AlphaScore(tt.alpha, tt.lex, tt.vec); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("AlphaScore(%v, %v, %v) = %v, want %v", tt.alpha, tt.lex, tt.vec, got, tt.want)
		}
	}
}

func TestCandidateCount(t *testing.T) {
	for limit, want := range map[int]int{1: 50, 10: 50, 13: 52, 50: 200} {
		if got := knowledge.CandidateCount(limit); got != want {
			t.Errorf("CandidateCount(%d) = %d, want %d", limit, got, want)
		}
	}
}

// list makes a ranked candidate list: id/score pairs, best first.
func list(pairs ...any) []engine.Passage {
	var out []engine.Passage
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, engine.Passage{ID: pairs[i].(string), Text: "text of " + pairs[i].(string), Score: pairs[i+1].(float64)})
	}
	return out
}

func TestFuse(t *testing.T) {
	// Binary fractions, so that equal sums are exactly equal.
	lexical := list("a", 1.0, "b", 0.5, "c", 0.25, "d", 0.125)
	vector := list("e", 1.0, "c", 0.75, "a", 0.5, "f", 0.25)
	tests := []struct {
		name   string
		q      knowledge.Query
		want   []string
		scores map[string]float64
	}{
		{"rrf", knowledge.Query{Fusion: engine.FusionRRF, RRFK: 60},
			// a: ranks 1 and 3; c: 3 and 2; e: -, 1; b: 2, -; d: 4, -; f: -, 4.
			// d and f tie: the lexical order first.
			[]string{"a", "c", "e", "b", "d", "f"},
			map[string]float64{"a": knowledge.RRFScore(60, 1, 3), "c": knowledge.RRFScore(60, 3, 2), "e": 0.5, "f": knowledge.RRFScore(60, 0, 4)}},
		{"rrf small k", knowledge.Query{Fusion: engine.FusionRRF, RRFK: 1},
			[]string{"a", "c", "e", "b", "d", "f"},
			map[string]float64{"a": 0.75, "e": 0.5, "b": 1.0 / 3}},
		{"rrf limit and min score", knowledge.Query{Fusion: engine.FusionRRF, RRFK: 60, Limit: 3, MinScore: 0.6},
			[]string{"a", "c"}, nil},
		{"alpha 0 is the lexical order", knowledge.Query{Fusion: engine.FusionAlpha, Alpha: 0},
			[]string{"a", "b", "c", "d"},
			map[string]float64{"a": 1, "b": 0.5, "c": 0.25, "d": 0.125}},
		{"alpha 1 is the vector order", knowledge.Query{Fusion: engine.FusionAlpha, Alpha: 1},
			[]string{"e", "c", "a", "f"},
			map[string]float64{"e": 1, "c": 0.75, "a": 0.5, "f": 0.25}},
		{"alpha 0.5", knowledge.Query{Fusion: engine.FusionAlpha, Alpha: 0.5},
			// a: (1 + 0.5)/2; c: (0.25 + 0.75)/2 ties e: (0 + 1)/2, and
			// keeps the lexical order; b: 0.25; f: 0.125; d: 0.0625.
			[]string{"a", "c", "e", "b", "f", "d"},
			map[string]float64{"a": 0.75, "c": 0.5, "e": 0.5, "b": 0.25, "f": 0.125, "d": 0.0625}},
		{"alpha ties follow the heavier list", knowledge.Query{Fusion: engine.FusionAlpha, Alpha: 0.75, Limit: 3},
			// e: 0.75; c: 0.25×0.25 + 0.75×0.75 = 0.625 ties a: 0.25 + 0.75×0.5,
			// and keeps the vector order.
			[]string{"e", "c", "a"},
			map[string]float64{"e": 0.75, "c": 0.625, "a": 0.625}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := knowledge.Fuse(tt.q, lexical, vector)
			if ids(got) == nil || !slices.Equal(ids(got), tt.want) {
				t.Fatalf("Fuse = %q, want %q", ids(got), tt.want)
			}
			for _, p := range got {
				if p.Scores.Fused == nil || *p.Scores.Fused != p.Score || p.Score <= 0 || p.Score > 1 || p.Text != "text of "+p.ID {
					t.Errorf("%s: score %v, fused %v, text %q", p.ID, p.Score, p.Scores.Fused, p.Text)
				}
				if want, ok := tt.scores[p.ID]; ok && math.Abs(p.Score-want) > 1e-12 {
					t.Errorf("%s scored %v, want %v", p.ID, p.Score, want)
				}
				inLex, inVec := slices.ContainsFunc(lexical, func(l engine.Passage) bool { return l.ID == p.ID }), slices.ContainsFunc(vector, func(v engine.Passage) bool { return v.ID == p.ID })
				if (p.Scores.Lexical != nil) != inLex || (p.Scores.Vector != nil) != inVec {
					t.Errorf("%s: lexical %v vector %v set, want %v %v", p.ID, p.Scores.Lexical != nil, p.Scores.Vector != nil, inLex, inVec)
				}
			}
			for _, p := range got {
				if p.ID == "c" && (*p.Scores.Lexical != 0.25 || *p.Scores.Vector != 0.75) {
					t.Errorf("c's signal scores = %v and %v, want 0.25 and 0.75", *p.Scores.Lexical, *p.Scores.Vector)
				}
			}
		})
	}
	// Empty lists, a list repeating an id.
	if got := knowledge.Fuse(knowledge.Query{}, nil, nil); got == nil || len(got) != 0 {
		t.Errorf("Fuse of nothing = %#v, want empty", got)
	}
	got := knowledge.Fuse(knowledge.Query{RRFK: 60}, list("a", 0.5, "a", 0.4), nil)
	if len(got) != 1 || *got[0].Scores.Lexical != 0.5 || got[0].Score != 0.5 {
		t.Errorf("repeated id = %+v", got)
	}
	// The default limit applies.
	var many []engine.Passage
	for i := range 30 {
		many = append(many, engine.Passage{ID: string(rune('a' + i)), Score: 1 / float64(i+1)})
	}
	if got := knowledge.Fuse(knowledge.Query{}, many, nil); len(got) != knowledge.DefaultSearchLimit {
		t.Errorf("Fuse without a limit returned %d, want %d", len(got), knowledge.DefaultSearchLimit)
	}
}

func TestQueryNormalize(t *testing.T) {
	vec := []float32{1, 0}
	tests := []struct {
		name string
		q    knowledge.Query
		want knowledge.Query // "" Mode means an EINVALID error
	}{
		{"lexical defaults", knowledge.Query{Text: "x"},
			knowledge.Query{Text: "x", Limit: knowledge.DefaultSearchLimit, Mode: engine.SearchLexical, Fusion: engine.FusionRRF, RRFK: 60}},
		{"vector means hybrid", knowledge.Query{Text: "x", Vector: vec, Limit: 3},
			knowledge.Query{Text: "x", Vector: vec, Limit: 3, Mode: engine.SearchHybrid, Fusion: engine.FusionRRF, RRFK: 60}},
		{"kept", knowledge.Query{Vector: vec, Mode: engine.SearchVector, Fusion: engine.FusionAlpha, Alpha: 0.3, RRFK: 5},
			knowledge.Query{Vector: vec, Limit: knowledge.DefaultSearchLimit, Mode: engine.SearchVector, Fusion: engine.FusionAlpha, Alpha: 0.3, RRFK: 5}},
		{"lexical ignores a bad vector", knowledge.Query{Mode: engine.SearchLexical, Vector: []float32{float32(math.Inf(1))}},
			knowledge.Query{Mode: engine.SearchLexical, Vector: []float32{float32(math.Inf(1))}, Limit: knowledge.DefaultSearchLimit, Fusion: engine.FusionRRF, RRFK: 60}},
		{"vector without vector", knowledge.Query{Mode: engine.SearchVector}, knowledge.Query{}},
		{"hybrid without vector", knowledge.Query{Mode: engine.SearchHybrid}, knowledge.Query{}},
		{"unknown mode", knowledge.Query{Mode: "dense"}, knowledge.Query{}},
		{"unknown fusion", knowledge.Query{Fusion: "sum"}, knowledge.Query{}},
		{"alpha NaN", knowledge.Query{Alpha: math.NaN()}, knowledge.Query{}},
		{"alpha above 1", knowledge.Query{Alpha: 1.01}, knowledge.Query{}},
		{"min score NaN", knowledge.Query{MinScore: math.NaN()}, knowledge.Query{}},
		{"vector NaN", knowledge.Query{Mode: engine.SearchVector, Vector: []float32{float32(math.NaN())}}, knowledge.Query{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.q.Normalize()
			if tt.want.Mode == "" {
				if engine.ErrorCode(err) != engine.EINVALID {
					t.Errorf("Normalize = %+v, %v; want EINVALID", got, err)
				}
				return
			}
			if err != nil || got.Mode != tt.want.Mode || got.Limit != tt.want.Limit || got.Fusion != tt.want.Fusion ||
				got.RRFK != tt.want.RRFK || got.Alpha != tt.want.Alpha || len(got.Vector) != len(tt.want.Vector) {
				t.Errorf("Normalize = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestCheckVectors(t *testing.T) {
	c := func(kb string, v ...float32) knowledge.Chunk {
		return knowledge.Chunk{ID: kb + "x", KnowledgeBase: kb, DocumentID: "d", Vector: v}
	}
	dims, err := knowledge.CheckVectors([]knowledge.Chunk{c("a", 1, 2), c("a"), c("b", 1, 2, 3), c("a", 0, 0)})
	if err != nil || dims["a"] != 2 || dims["b"] != 3 || len(dims) != 2 {
		t.Errorf("CheckVectors = %v, %v", dims, err)
	}
	_, err = knowledge.CheckVectors([]knowledge.Chunk{c("a", 1, 2), c("a", 1, 2, 3)})
	if engine.ErrorCode(err) != engine.EINVALID || !errors.Is(err, knowledge.ErrDimensions) {
		t.Errorf("mixed dimensions = %v, want EINVALID with ErrDimensions", err)
	}
	if _, err := knowledge.CheckVectors([]knowledge.Chunk{c("a", 1, float32(math.NaN()))}); engine.ErrorCode(err) != engine.EINVALID {
		t.Errorf("NaN = %v, want EINVALID", err)
	}
	err = knowledge.DimensionsError("docs", 768, 384)
	if engine.ErrorCode(err) != engine.EINVALID || !errors.Is(err, knowledge.ErrDimensions) {
		t.Errorf("DimensionsError = %v", err)
	}
}
