package main

import (
	"slices"

	"github.com/convosphere/convosphere/engine"
)

// Quality is the known-item retrieval quality over a set of queries.
//
// The ranking of a query is the list of documents of its top passages in
// the order each document first appears. A query's answer is found at the
// rank of its first answer in that list (any page sharing the description
// counts). MRR@10 is the mean of 1/rank over the queries (0 when no answer
// is in the top 10); recall@k is the share of queries with an answer in the
// top k documents.
type Quality struct {
	Queries  int     `json:"queries"`
	MRR10    float64 `json:"mrr10"`
	Recall1  float64 `json:"recall1"`
	Recall5  float64 `json:"recall5"`
	Recall10 float64 `json:"recall10"`
}

// DocumentRanking returns the documents of passages in order of first
// occurrence.
func DocumentRanking(passages []engine.Passage) []string {
	docs := make([]string, 0, len(passages))
	for _, p := range passages {
		if !slices.Contains(docs, p.Document) {
			docs = append(docs, p.Document)
		}
	}
	return docs
}

// FirstAnswerRank is the 1-based rank of the first answer in ranking, or 0
// when none of the answers is ranked.
func FirstAnswerRank(ranking, answers []string) int {
	for i, d := range ranking {
		if slices.Contains(answers, d) {
			return i + 1
		}
	}
	return 0
}

// Score computes the quality of rankings[i] for queries[i].
func Score(queries []Query, rankings [][]string) Quality {
	q := Quality{Queries: len(queries)}
	if len(queries) == 0 {
		return q
	}
	for i, query := range queries {
		var ranking []string
		if i < len(rankings) {
			ranking = rankings[i]
		}
		r := FirstAnswerRank(ranking, query.Answers)
		if r == 0 || r > 10 {
			continue
		}
		q.MRR10 += 1 / float64(r)
		if r <= 1 {
			q.Recall1++
		}
		if r <= 5 {
			q.Recall5++
		}
		q.Recall10++
	}
	n := float64(len(queries))
	q.MRR10 /= n
	q.Recall1 /= n
	q.Recall5 /= n
	q.Recall10 /= n
	return q
}
