package main

import (
	"math"
	"testing"

	"github.com/convosphere/convosphere/engine"
)

func TestScore(t *testing.T) {
	queries := []Query{
		{Text: "copy files and directories", Answers: []string{"cp.1"}},
		{Text: "move (rename) files", Answers: []string{"mv.1"}},
		{Text: "shared description", Answers: []string{"a.5", "b.5"}},
		{Text: "found at rank ten", Answers: []string{"j.1"}},
		{Text: "not found", Answers: []string{"zz.7"}},
	}
	rankings := [][]string{
		{"cp.1", "mv.1"},         // rank 1
		{"cp.1", "ln.1", "mv.1"}, // rank 3
		{"x.1", "b.5", "a.5"},    // rank 2: either answer counts
		{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j.1"}, // rank 10
		{"cp.1"}, // missing
	}
	got := Score(queries, rankings)
	want := Quality{
		Queries:  5,
		MRR10:    (1 + 1.0/3 + 1.0/2 + 1.0/10 + 0) / 5,
		Recall1:  1.0 / 5,
		Recall5:  3.0 / 5,
		Recall10: 4.0 / 5,
	}
	const eps = 1e-12
	if got.Queries != want.Queries || math.Abs(got.MRR10-want.MRR10) > eps || math.Abs(got.Recall1-want.Recall1) > eps ||
		math.Abs(got.Recall5-want.Recall5) > eps || math.Abs(got.Recall10-want.Recall10) > eps {
		t.Fatalf("Score = %+v, want %+v", got, want)
	}
}

func TestScoreIgnoresRanksBeyondTen(t *testing.T) {
	q := []Query{{Text: "q", Answers: []string{"k"}}}
	r := [][]string{{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"}}
	if got := Score(q, r); got.MRR10 != 0 || got.Recall10 != 0 {
		t.Fatalf("an answer at rank 11 counted: %+v", got)
	}
	if got := Score(nil, nil); got != (Quality{}) {
		t.Fatalf("Score of nothing = %+v", got)
	}
}

func TestDocumentRanking(t *testing.T) {
	ps := []engine.Passage{{Document: "cp.1"}, {Document: "cp.1"}, {Document: "mv.1"}, {Document: "cp.1"}, {Document: "ln.1"}}
	got := DocumentRanking(ps)
	want := []string{"cp.1", "mv.1", "ln.1"}
	if len(got) != len(want) {
		t.Fatalf("DocumentRanking = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("DocumentRanking = %v, want %v", got, want)
		}
	}
}
