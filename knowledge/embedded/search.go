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
// Lexical mode ranks chunks by BM25 over the title, headings and text
// columns; the score is s / (s + 10) where s is the BM25 score (SQLite's
// bm25() negated): in (0, 1), 0.5 for s = 10. BM25 weighs rare terms more,
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
	match := matchQuery(q.Text)
	if match == "" {
		return passages, nil
	}
	columns := `c.id`
	if full {
		columns = `c.id, c.knowledge_base, c.document_id, c.document, c.title, c.heading_path, c.position, c.text`
	}
	query := fmt.Sprintf(`SELECT %s, bm25(chunks_fts, %g, %g, %g) AS rank
		FROM chunks_fts JOIN chunks c ON c.seq = chunks_fts.rowid
		WHERE chunks_fts MATCH ?`, columns, weightTitle, weightHeadings, weightText)
	args := []any{match}
	if len(q.KnowledgeBases) > 0 {
		query += ` AND c.knowledge_base IN (?` + strings.Repeat(`, ?`, len(q.KnowledgeBases)-1) + `)`
		for _, kb := range q.KnowledgeBases {
			args = append(args, kb)
		}
	}
	query += ` ORDER BY rank, c.seq LIMIT ?`
	args = append(args, n)

	rows, err := ix.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, searchError(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			p        engine.Passage
			pathJSON string
			rank     float64
		)
		dest := []any{&p.ID, &rank}
		if full {
			dest = []any{&p.ID, &p.KnowledgeBase, &p.DocumentID, &p.Document, &p.Title, &pathJSON, &p.Position, &p.Text, &rank}
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, searchError(err)
		}
		if full {
			if p.HeadingPath, err = headingPath(p.ID, pathJSON); err != nil {
				return nil, err
			}
		}
		p.Score = score(rank)
		if p.Score < q.MinScore {
			break // rows come best first
		}
		p.Scores.Lexical = ptr(p.Score)
		passages = append(passages, p)
	}
	if err := rows.Err(); err != nil {
		return nil, searchError(err)
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

// score turns SQLite's bm25() (lower is better, negative) into a score in
// (0, 1), higher is better.
func score(rank float64) float64 {
	s := -rank
	if s <= 0 {
		// bm25() is negative for every match; keep a match above zero.
		return 1e-9
	}
	return s / (s + scoreHalf)
}

func ptr(f float64) *float64 { return &f }
