package weaviate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weaviate/weaviate-go-client/v4/weaviate/filters"
	"github.com/weaviate/weaviate-go-client/v4/weaviate/graphql"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
)

const (
	// scoreHalf is the BM25 score that maps to 0.5: score = s / (s + scoreHalf).
	scoreHalf = 10.0
	// minScore stands in for a BM25 score of 0 of a passage that did match.
	minScore = 1e-9
	// maxResults is the most objects one query may ask for: Weaviate's
	// default QUERY_MAXIMUM_RESULTS.
	maxResults = 10000
	// freshWindow is how long after a write chunks may still be in
	// Weaviate's memtables (it flushes dirty memtables after 60 s by
	// default), with a margin.
	freshWindow = 2 * time.Minute
)

// Search returns the best passages first; see the package documentation for
// the modes and their scores.
func (ix *Index) Search(ctx context.Context, q knowledge.Query) ([]engine.Passage, error) {
	q, err := q.Normalize()
	if err != nil {
		return nil, err
	}
	passages := []engine.Passage{}
	where, ok := kbFilter(q.KnowledgeBases)
	if !ok {
		return passages, nil // none of the names can be held
	}
	s := search{ix: ix, where: where, terms: queryTerms(q.Text), vector: q.Vector}

	start := time.Now()
	switch q.Mode {
	case engine.SearchLexical:
		// More candidates than asked for, cut here: see lexical.
		passages, err = s.lexical(ctx, knowledge.CandidateCount(q.Limit))
		passages = cut(passages, q.Limit, q.MinScore)
	case engine.SearchVector:
		err = s.withDimensionsCheck(ctx, func(ctx context.Context) error {
			var err error
			passages, err = s.nearVector(ctx, q.Limit)
			return err
		})
		passages = cut(passages, q.Limit, q.MinScore)
	default:
		var lexical, vector []engine.Passage
		n := knowledge.CandidateCount(q.Limit)
		err = s.withDimensionsCheck(ctx, func(ctx context.Context) error {
			return concurrently(ctx,
				func(ctx context.Context) (err error) { lexical, err = s.lexical(ctx, n); return err },
				func(ctx context.Context) (err error) { vector, err = s.nearVector(ctx, n); return err },
			)
		})
		if err == nil {
			passages = knowledge.Fuse(q, lexical, vector)
		}
	}
	if err != nil {
		return nil, err
	}
	ix.log.DebugContext(ctx, "searched", "mode", q.Mode, "fusion", q.Fusion, "knowledge_bases", len(q.KnowledgeBases),
		"limit", q.Limit, "results", len(passages), "duration_ms", time.Since(start).Milliseconds())
	return passages, nil
}

// rank orders passages best first, ties by id, so that the order does not
// depend on how many candidates were fetched or in which order Weaviate
// returned equal scores.
func rank(passages []engine.Passage) []engine.Passage {
	sort.SliceStable(passages, func(i, j int) bool {
		if passages[i].Score != passages[j].Score {
			return passages[i].Score > passages[j].Score
		}
		return passages[i].ID < passages[j].ID
	})
	return passages
}

// cut returns the first limit of ranked passages that score at least
// minScore.
func cut(passages []engine.Passage, limit int, minScore float64) []engine.Passage {
	out := passages[:0]
	for _, p := range passages {
		if p.Score < minScore || len(out) == limit {
			break
		}
		out = append(out, p)
	}
	return out
}

// kbFilter returns the filter on knowledge bases (nil for all of them) and
// false when no name in kbs can be held by the index.
func kbFilter(kbs []string) (*filters.WhereBuilder, bool) {
	if len(kbs) == 0 {
		return nil, true
	}
	var names []string
	for _, kb := range kbs {
		if filterValue(kb) {
			names = append(names, kb)
		}
	}
	switch len(names) {
	case 0:
		return nil, false
	case 1:
		return equal(propKnowledgeBase, names[0]), true
	}
	return filters.Where().WithPath([]string{propKnowledgeBase}).WithOperator(filters.ContainsAny).WithValueText(names...), true
}

// search is one Search call's parameters.
type search struct {
	ix     *Index
	where  *filters.WhereBuilder // knowledge bases; nil for all
	terms  string                // prepared query words; "" when there are none
	vector []float32
}

// lexical returns the best n passages by BM25.
//
// Weaviate 1.35.2's BM25 ranks the chunks still in memtables (written in
// the last minute or so, until the memtables flush) wrongly when more of
// them match than the query's limit: block-max WAND prunes them with an
// upper bound that is too low, and a good match written a moment ago goes
// missing even from a generous top k. The bound is exact again when the
// limit is at least the number of fresh chunks. So while the searched
// knowledge bases hold chunks written within freshWindow, a full list is
// not trusted: the search runs again with a limit of n plus the number of
// fresh chunks, asking only for ids and scores, and the fields of the best
// n are read after.
func (s search) lexical(ctx context.Context, n int) ([]engine.Passage, error) {
	if s.terms == "" {
		return []engine.Passage{}, nil
	}
	var (
		hits  []hit
		fresh int
	)
	err := concurrently(ctx,
		func(ctx context.Context) (err error) { hits, err = s.bm25(ctx, n, true); return err },
		func(ctx context.Context) (err error) { fresh, err = s.ix.freshCount(ctx, s.where); return err },
	)
	if err != nil {
		return nil, err
	}
	if len(hits) == n && fresh > 0 {
		if hits, err = s.bm25Deep(ctx, n, min(n+fresh, maxResults)); err != nil {
			return nil, err
		}
		s.ix.log.DebugContext(ctx, "searched deeper for chunks written moments ago", "fresh_chunks", fresh)
	}
	out := make([]engine.Passage, 0, len(hits))
	for _, h := range hits {
		p := h.passage(bm25Score(float64(h.Additional.Score)))
		p.Scores.Lexical = ptr(p.Score)
		out = append(out, p)
	}
	return rank(out), nil
}

// freshCount counts the chunks matching where (nil for all) written within
// freshWindow, by the server's clock.
func (ix *Index) freshCount(ctx context.Context, where *filters.WhereBuilder) (int, error) {
	since := time.Now().Add(ix.skew - freshWindow).UnixMilli()
	recent := filters.Where().WithPath([]string{"_lastUpdateTimeUnix"}).WithOperator(filters.GreaterThan).
		WithValueText(strconv.FormatInt(since, 10))
	if where != nil {
		recent = and(where, recent)
	}
	resp, err := ix.client.GraphQL().Aggregate().WithClassName(ix.class).WithWhere(recent).
		WithFields(graphql.Field{Name: "meta", Fields: []graphql.Field{{Name: "count"}}}).Do(ctx)
	if err != nil {
		return 0, ix.wrapErr(ctx, err, "search")
	}
	if err := ix.graphQLErr(ctx, resp.Errors, "search"); err != nil {
		return 0, err
	}
	var out struct {
		Aggregate map[string][]struct {
			Meta struct {
				Count int `json:"count"`
			} `json:"meta"`
		} `json:"Aggregate"`
	}
	if err := decodeData(resp.Data, &out); err != nil {
		return 0, fmt.Errorf("weaviate search: count fresh chunks: %w", err)
	}
	if groups := out.Aggregate[ix.class]; len(groups) > 0 {
		return groups[0].Meta.Count, nil
	}
	return 0, nil
}

// bm25 runs a BM25 query for the best n chunks, with all their fields or
// (full false) only their object ids and scores.
func (s search) bm25(ctx context.Context, n int, full bool) ([]hit, error) {
	bm25 := s.ix.client.GraphQL().Bm25ArgBuilder().WithQuery(s.terms).WithProperties(bm25Properties...)
	fields := []graphql.Field{{Name: "_additional{id score}"}}
	if full {
		fields = append(append([]graphql.Field{}, chunkFields...), fields...)
	}
	return s.ix.getFields(ctx, s.where, n, fields, func(g *graphql.GetBuilder) { g.WithBM25(bm25) })
}

// bm25Deep ranks the best deep chunks by BM25 and returns the best n with
// all their fields.
func (s search) bm25Deep(ctx context.Context, n, deep int) ([]hit, error) {
	ranked, err := s.bm25(ctx, deep, false)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(ranked, func(i, j int) bool { return ranked[i].Additional.Score > ranked[j].Additional.Score })
	ranked = ranked[:min(n, len(ranked))]
	if len(ranked) == 0 {
		return ranked, nil
	}
	ids := make([]string, len(ranked))
	for i, h := range ranked {
		ids[i] = h.Additional.ID
	}
	byID := filters.Where().WithPath([]string{"id"}).WithOperator(filters.ContainsAny).WithValueText(ids...)
	full, err := s.ix.get(ctx, byID, len(ids), "id", nil)
	if err != nil {
		return nil, err
	}
	found := make(map[string]hit, len(full))
	for _, h := range full {
		found[h.Additional.ID] = h
	}
	out := ranked[:0]
	for _, r := range ranked {
		if h, ok := found[r.Additional.ID]; ok { // else deleted in between
			h.Additional.Score = r.Additional.Score
			out = append(out, h)
		}
	}
	return out, nil
}

// nearVector returns the n passages whose vectors are most similar to the
// query's, leaving out those with a similarity of 0 or less.
func (s search) nearVector(ctx context.Context, n int) ([]engine.Passage, error) {
	near := s.ix.client.GraphQL().NearVectorArgBuilder().WithVector(s.vector).WithTargetVectors(vectorName(len(s.vector)))
	hits, err := s.ix.get(ctx, s.where, n, "distance", func(g *graphql.GetBuilder) { g.WithNearVector(near) })
	if isMissingVectorSpace(err) {
		// No chunk has ever had vectors of this size; whether the
		// knowledge bases hold vectors of another size is for the
		// dimensions check to say.
		return []engine.Passage{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]engine.Passage, 0, len(hits))
	for _, h := range hits {
		sim := 1 - float64(h.Additional.Distance)
		if sim <= 0 {
			continue // orthogonal or opposite: no match
		}
		p := h.passage(min(sim, 1))
		p.Scores.Vector = ptr(p.Score)
		out = append(out, p)
	}
	return rank(out), nil
}

// isMissingVectorSpace reports whether err says that the collection has no
// vector index of the searched name.
func isMissingVectorSpace(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "target vector") && strings.Contains(msg, "not found")
}

// withDimensionsCheck runs search while it checks that the searched
// knowledge bases hold no vectors of another size than the query's; a
// mismatch is the error (knowledge.ErrDimensions), whatever search found.
func (s search) withDimensionsCheck(ctx context.Context, search func(context.Context) error) error {
	var mismatch error
	err := concurrently(ctx,
		func(ctx context.Context) error {
			mismatch = s.ix.checkDimensions(ctx, s.where, len(s.vector), nil)
			return mismatch
		},
		search,
	)
	if mismatch != nil && !errors.Is(mismatch, context.Canceled) {
		return mismatch
	}
	return err
}

// concurrently runs the calls at the same time; when one fails, the others
// are cancelled and the first failure is returned, not the cancellations
// it caused.
func concurrently(ctx context.Context, calls ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Go(func() {
			if errs[i] = call(ctx); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	var first error
	for _, err := range errs {
		switch {
		case err == nil:
		case !errors.Is(err, context.Canceled):
			return err
		case first == nil:
			first = err
		}
	}
	return first
}

// bm25Score maps a BM25 score in (0, ∞) to (0, 1).
func bm25Score(s float64) float64 {
	if s <= 0 {
		return minScore
	}
	return max(s/(s+scoreHalf), minScore)
}

func ptr(f float64) *float64 { return &f }

// hit is one object of a Get query.
type hit struct {
	ChunkID       string   `json:"chunk_id"`
	KnowledgeBase string   `json:"knowledge_base"`
	DocumentID    string   `json:"document_id"`
	Document      string   `json:"document"`
	Title         string   `json:"title"`
	HeadingPath   []string `json:"heading_path"`
	Position      int      `json:"position"`
	Text          string   `json:"text"`
	Additional    struct {
		ID       string `json:"id"`
		Score    number `json:"score"`
		Distance number `json:"distance"`
	} `json:"_additional"`
}

func (h hit) passage(score float64) engine.Passage {
	path := h.HeadingPath
	if len(path) == 0 {
		path = nil
	}
	return engine.Passage{
		ID:            h.ChunkID,
		KnowledgeBase: h.KnowledgeBase,
		DocumentID:    h.DocumentID,
		Document:      h.Document,
		Title:         h.Title,
		HeadingPath:   path,
		Position:      h.Position,
		Text:          h.Text,
		Score:         score,
	}
}

// number is a float that Weaviate sends as a JSON number or, for scores,
// as a string.
type number float64

func (n *number) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			return nil
		}
		f, err := strconv.ParseFloat(s, 64)
		*n = number(f)
		return err
	}
	var f float64
	err := json.Unmarshal(b, &f)
	*n = number(f)
	return err
}

var chunkFields = []graphql.Field{
	{Name: propChunkID}, {Name: propKnowledgeBase}, {Name: propDocumentID}, {Name: propDocument},
	{Name: propTitle}, {Name: propHeadingPath}, {Name: propPosition}, {Name: propText},
}

// get runs a Get query for at most limit chunks matching where, with the
// given _additional fields and the search argument that with sets (none
// when with is nil).
func (ix *Index) get(ctx context.Context, where *filters.WhereBuilder, limit int, additional string, with func(*graphql.GetBuilder)) ([]hit, error) {
	fields := append([]graphql.Field{}, chunkFields...)
	if additional != "" {
		fields = append(fields, graphql.Field{Name: "_additional{" + additional + "}"})
	}
	return ix.getFields(ctx, where, limit, fields, with)
}

func (ix *Index) getFields(ctx context.Context, where *filters.WhereBuilder, limit int, fields []graphql.Field, with func(*graphql.GetBuilder)) ([]hit, error) {
	g := ix.client.GraphQL().Get().WithClassName(ix.class).WithFields(fields...).WithLimit(limit)
	if with != nil {
		with(g)
	}
	if where != nil {
		g.WithWhere(where)
	}
	resp, err := g.Do(ctx)
	if err != nil {
		return nil, ix.wrapErr(ctx, err, "search")
	}
	if err := ix.graphQLErr(ctx, resp.Errors, "search"); err != nil {
		return nil, err
	}
	var out struct {
		Get map[string][]hit `json:"Get"`
	}
	if err := decodeData(resp.Data, &out); err != nil {
		return nil, ix.wrapErr(ctx, err, "search: decode response")
	}
	return out.Get[ix.class], nil
}
