package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
)

// Search implements knowledge.Index.
//
// Lexical mode ranks chunks by BM25 over their title, headings and text
// (see bm25); the score is s / (s + 10) where s is the BM25 score: in
// (0, 1), 0.5 for s = 10. BM25 weighs rare terms more,
// so in a tiny index, where every term is common, scores are close to 0.
//
// Vector mode ranks the chunks that have a vector by cosine similarity
// with q.Vector; the score is the similarity, and chunks not above 0 are
// left out. A knowledge base whose vectors have other dimensions than
// q.Vector is an EINVALID error with knowledge.ErrDimensions.
//
// Hybrid mode fuses the best knowledge.CandidateCount(q.Limit) chunks of
// each with knowledge.Fuse.
func (ix *Index) Search(ctx context.Context, q knowledge.Query) ([]engine.Passage, error) {
	q, err := q.Normalize()
	if err != nil {
		return nil, err
	}
	switch q.Mode {
	case engine.SearchVector:
		hits, err := ix.vectorCandidates(ctx, q, q.Limit, q.MinScore)
		if err != nil {
			return nil, err
		}
		for i := range hits {
			hits[i].Scores.Vector = ptr(hits[i].Score)
		}
		return ix.fill(ctx, hits)
	case engine.SearchHybrid:
		// The candidates are not cut by MinScore: it applies to the fused score.
		n, all := knowledge.CandidateCount(q.Limit), q
		all.MinScore = 0
		lexical, err := ix.lexical(ctx, all, n, false)
		if err != nil {
			return nil, err
		}
		vector, err := ix.vectorCandidates(ctx, q, n, 0)
		if err != nil {
			return nil, err
		}
		return ix.fill(ctx, knowledge.Fuse(q, lexical, vector))
	}
	return ix.lexical(ctx, q, q.Limit, true)
}

// lexical returns the best n chunks by BM25 with a score of at least
// q.MinScore, all their fields when full is set, else their id and score.
func (ix *Index) lexical(ctx context.Context, q knowledge.Query, n int, full bool) ([]engine.Passage, error) {
	passages := []engine.Passage{}
	terms := ix.analyzer.queryTerms(q.Text)
	if len(terms) == 0 {
		return passages, nil
	}
	states, err := ix.kbStates(ctx, q.KnowledgeBases)
	if err != nil {
		return nil, err
	}
	slots, release, err := ix.lexicalSlots(ctx, states)
	if err != nil {
		return nil, err
	}
	indexes := make([]*kbLexical, len(slots))
	for i, s := range slots {
		indexes[i] = s.data
	}
	hits := bm25(indexes, terms, n)
	release()
	for _, h := range hits {
		p := engine.Passage{ID: h.id, Score: score(h.score)}
		if p.Score < q.MinScore {
			break // hits come best first
		}
		p.Scores.Lexical = ptr(p.Score)
		passages = append(passages, p)
	}
	if full {
		return ix.fill(ctx, passages)
	}
	return passages, nil
}

// vectorCandidates returns the ids and cosine similarities of the n chunks
// most similar to q.Vector, at least minScore and above 0.
func (ix *Index) vectorCandidates(ctx context.Context, q knowledge.Query, n int, minScore float64) ([]engine.Passage, error) {
	sets, err := ix.knowledgeBaseVectors(ctx, q.KnowledgeBases)
	if err != nil {
		return nil, err
	}
	for _, s := range sets {
		if s.dims != len(q.Vector) {
			return nil, knowledge.DimensionsError(s.kb, s.dims, len(q.Vector))
		}
	}
	qv := slices.Clone(q.Vector)
	normalize(qv)
	hits := nearest(sets, qv, n, minScore)
	out := make([]engine.Passage, len(hits))
	for i, h := range hits {
		out[i] = engine.Passage{ID: h.id, Score: h.score}
	}
	return out, nil
}

// fill reads the fields of ranked passages that carry only an id and
// scores. A chunk deleted since it was ranked is left out.
func (ix *Index) fill(ctx context.Context, ranked []engine.Passage) ([]engine.Passage, error) {
	out := make([]engine.Passage, 0, len(ranked))
	if len(ranked) == 0 {
		return out, nil
	}
	args := make([]any, len(ranked))
	for i, p := range ranked {
		args[i] = p.ID
	}
	rows, err := ix.db.QueryContext(ctx, `SELECT id, knowledge_base, document_id, document, title, heading_path, position, text
		FROM chunks WHERE id IN (?`+strings.Repeat(`, ?`, len(ranked)-1)+`)`, args...)
	if err != nil {
		return nil, searchError(err)
	}
	defer rows.Close()
	found := make(map[string]engine.Passage, len(ranked))
	for rows.Next() {
		var (
			p        engine.Passage
			pathJSON string
		)
		if err := rows.Scan(&p.ID, &p.KnowledgeBase, &p.DocumentID, &p.Document, &p.Title, &pathJSON, &p.Position, &p.Text); err != nil {
			return nil, searchError(err)
		}
		if p.HeadingPath, err = headingPath(p.ID, pathJSON); err != nil {
			return nil, err
		}
		found[p.ID] = p
	}
	if err := rows.Err(); err != nil {
		return nil, searchError(err)
	}
	for _, r := range ranked {
		p, ok := found[r.ID]
		if !ok {
			continue
		}
		p.Score, p.Scores = r.Score, r.Scores
		out = append(out, p)
	}
	return out, nil
}

func headingPath(id, pathJSON string) ([]string, error) {
	var path []string
	if err := json.Unmarshal([]byte(pathJSON), &path); err != nil {
		return nil, fmt.Errorf("search knowledge index: heading path of %s: %w", id, err)
	}
	if len(path) == 0 {
		return nil, nil
	}
	return path, nil
}

// searchError keeps a context's error recognisable and wraps the rest.
func searchError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("search knowledge index: %w", err)
}

// score turns a BM25 score (above 0, unbounded) into a score in (0, 1).
func score(s float64) float64 {
	if s <= 0 {
		return 1e-9 // a match stays above zero
	}
	return s / (s + scoreHalf)
}

func ptr(f float64) *float64 { return &f }
