package weaviate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/weaviate/weaviate-go-client/v4/weaviate/filters"
	"github.com/weaviate/weaviate-go-client/v4/weaviate/graphql"
	"github.com/weaviate/weaviate/entities/models"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
)

const (
	// batchSize is the number of objects in one batch request: large
	// enough to amortise the round trip, small enough (with 1536-float
	// vectors, about 3 MB) to stay a modest request.
	batchSize = 200
	// deleteDocsPerRequest bounds the documents one stale-chunk delete
	// names in its filter.
	deleteDocsPerRequest = 100
)

type docKey struct{ kb, doc string }

// Upsert writes the chunks, then removes every other chunk of their
// documents (see the package documentation).
func (ix *Index) Upsert(ctx context.Context, chunks []knowledge.Chunk) error {
	if len(chunks) == 0 {
		return nil
	}
	docs := make(map[docKey]bool)
	ids := make(map[string]bool, len(chunks))
	for i, c := range chunks {
		switch {
		case c.ID == "" || c.KnowledgeBase == "" || c.DocumentID == "":
			return engine.Errorf(engine.EINVALID, "chunk %d has no id, knowledge base or document id", i)
		case ids[c.ID]:
			return engine.Errorf(engine.EINVALID, "chunk id %q appears twice", c.ID)
		case !filterValue(c.KnowledgeBase) || !filterValue(c.DocumentID):
			return engine.Errorf(engine.EINVALID, "chunk %q: knowledge base %q or document id %q has surrounding spaces, control or invisible characters", c.ID, c.KnowledgeBase, c.DocumentID)
		}
		ids[c.ID] = true
		docs[docKey{c.KnowledgeBase, c.DocumentID}] = true
	}
	dims, err := knowledge.CheckVectors(chunks)
	if err != nil {
		return err
	}
	stripes := make(map[int]bool)
	for d := range docs {
		stripes[ix.docs.stripe(d.kb, d.doc)] = true
	}
	unlock := ix.docs.lock(stripes)
	defer unlock()

	// A knowledge base's vectors keep one size, not counting the
	// documents being replaced.
	var sizes []int
	for kb, d := range dims {
		var replaced []string
		for doc := range docs {
			if doc.kb == kb {
				replaced = append(replaced, doc.doc)
			}
		}
		sort.Strings(replaced)
		if err := ix.checkDimensions(ctx, equal(propKnowledgeBase, kb), d, replaced); err != nil {
			return err
		}
		if !slices.Contains(sizes, d) {
			sizes = append(sizes, d)
		}
	}
	if err := ix.ensureVectorSpaces(ctx, sizes); err != nil {
		return err
	}

	start := time.Now()
	revision := newRevision()
	for from := 0; from < len(chunks); from += batchSize {
		batch := chunks[from:min(from+batchSize, len(chunks))]
		if err := retryReadOnly(ctx, func() error { return ix.writeBatch(ctx, batch, revision) }); err != nil {
			return ix.wrapErr(ctx, err, "write chunks")
		}
	}
	keys := make([]docKey, 0, len(docs))
	for d := range docs {
		keys = append(keys, d)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].kb < keys[j].kb || keys[i].kb == keys[j].kb && keys[i].doc < keys[j].doc
	})
	for from := 0; from < len(keys); from += deleteDocsPerRequest {
		var operands []*filters.WhereBuilder
		for _, d := range keys[from:min(from+deleteDocsPerRequest, len(keys))] {
			operands = append(operands, and(
				equal(propKnowledgeBase, d.kb),
				equal(propDocumentID, d.doc),
				filters.Where().WithPath([]string{propRevision}).WithOperator(filters.NotEqual).WithValueText(revision),
			))
		}
		where := operands[0]
		if len(operands) > 1 {
			where = filters.Where().WithOperator(filters.Or).WithOperands(operands)
		}
		if _, err := ix.deleteWhere(ctx, where, "remove replaced chunks"); err != nil {
			return err
		}
	}
	ix.log.DebugContext(ctx, "upserted chunks", "chunks", len(chunks), "documents", len(docs),
		"duration_ms", time.Since(start).Milliseconds())
	return nil
}

func newRevision() string {
	var b [12]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// writeBatch writes chunks in one batch request and checks each object's
// result.
func (ix *Index) writeBatch(ctx context.Context, chunks []knowledge.Chunk, revision string) error {
	objects := make([]*models.Object, len(chunks))
	for i, c := range chunks {
		path := c.HeadingPath
		if path == nil {
			path = []string{}
		}
		objects[i] = &models.Object{
			Class: ix.class,
			ID:    objectID(c.ID),
			Properties: map[string]any{
				propChunkID:       c.ID,
				propKnowledgeBase: c.KnowledgeBase,
				propDocumentID:    c.DocumentID,
				propRevision:      revision,
				propDocument:      c.Document,
				propTitle:         c.Title,
				propHeadings:      strings.Join(c.HeadingPath, "\n"),
				propHeadingPath:   path,
				propPosition:      c.Position,
				propText:          c.Text,
				propDims:          len(c.Vector),
			},
		}
		if len(c.Vector) > 0 {
			objects[i].Vectors = models.Vectors{vectorName(len(c.Vector)): c.Vector}
		}
	}
	res, err := ix.client.Batch().ObjectsBatcher().WithObjects(objects...).Do(ctx)
	if err != nil {
		return ix.wrapErr(ctx, err, "write chunks")
	}
	var failed []string
	for i, r := range res {
		if r.Result == nil || r.Result.Errors == nil || len(r.Result.Errors.Error) == 0 {
			continue
		}
		for _, e := range r.Result.Errors.Error {
			if e != nil {
				id := "?"
				if i < len(chunks) {
					id = chunks[i].ID
				}
				failed = append(failed, fmt.Sprintf("%s: %s", id, e.Message))
			}
		}
	}
	if len(failed) > 0 && isReadOnly(failed[0]) {
		return fmt.Errorf("weaviate write chunks: %s: %w", failed[0], errReadOnly)
	}
	if len(failed) > 0 {
		n := len(failed)
		if len(failed) > 3 {
			failed = failed[:3]
		}
		return ix.wrapErr(ctx, fmt.Errorf("%d chunks not written: %s", n, strings.Join(failed, "; ")), "write chunks")
	}
	if len(res) != len(chunks) {
		return fmt.Errorf("weaviate write chunks: %d results for %d objects", len(res), len(chunks))
	}
	return nil
}

// DeleteDocument removes all chunks of a document.
func (ix *Index) DeleteDocument(ctx context.Context, knowledgeBase, documentID string) error {
	if !filterValue(knowledgeBase) || !filterValue(documentID) {
		return nil // Upsert refuses such names: there is nothing to delete
	}
	unlock := ix.docs.lock(map[int]bool{ix.docs.stripe(knowledgeBase, documentID): true})
	defer unlock()
	n, err := ix.deleteWhere(ctx, and(equal(propKnowledgeBase, knowledgeBase), equal(propDocumentID, documentID)), "delete document")
	if err != nil {
		return err
	}
	ix.log.DebugContext(ctx, "deleted document", "knowledge_base", knowledgeBase, "document_id", documentID, "chunks", n)
	return nil
}

// DeleteKnowledgeBase removes all chunks of a knowledge base.
func (ix *Index) DeleteKnowledgeBase(ctx context.Context, knowledgeBase string) error {
	if !filterValue(knowledgeBase) {
		return nil
	}
	n, err := ix.deleteWhere(ctx, equal(propKnowledgeBase, knowledgeBase), "delete knowledge base")
	if err != nil {
		return err
	}
	ix.log.DebugContext(ctx, "deleted knowledge base", "knowledge_base", knowledgeBase, "chunks", n)
	return nil
}

// deleteWhere deletes the objects matching where, repeating while Weaviate
// stops at its per-request limit, and returns how many it deleted.
func (ix *Index) deleteWhere(ctx context.Context, where *filters.WhereBuilder, op string) (int64, error) {
	var deleted int64
	for {
		var res *models.BatchDeleteResponse
		err := retryReadOnly(ctx, func() error {
			var err error
			res, err = ix.client.Batch().ObjectsBatchDeleter().WithClassName(ix.class).WithWhere(where).Do(ctx)
			switch {
			case err != nil && isReadOnly(err.Error()):
				return fmt.Errorf("%w: %w", errReadOnly, err)
			case err != nil:
				return err
			case res.Results == nil || res.Results.Failed == 0:
				return nil
			}
			deleted += res.Results.Successful
			msg := ""
			for _, o := range res.Results.Objects {
				if o != nil && o.Errors != nil && len(o.Errors.Error) > 0 && o.Errors.Error[0] != nil {
					msg = o.Errors.Error[0].Message
					break
				}
			}
			err = fmt.Errorf("%d objects not deleted: %s", res.Results.Failed, msg)
			if isReadOnly(msg) {
				err = fmt.Errorf("%w: %w", errReadOnly, err)
			}
			return err
		})
		if err != nil {
			return deleted, ix.wrapErr(ctx, err, op)
		}
		if res.Results == nil {
			return deleted, nil
		}
		deleted += res.Results.Successful
		if res.Results.Successful == 0 || res.Results.Limit <= 0 || res.Results.Matches < res.Results.Limit {
			return deleted, nil
		}
	}
}

// Documents lists the documents with their chunk counts, ordered by
// knowledge base and document id.
func (ix *Index) Documents(ctx context.Context, knowledgeBase string) ([]knowledge.IndexedDocument, error) {
	docs := []knowledge.IndexedDocument{}
	var kbs []string
	switch {
	case knowledgeBase != "" && !filterValue(knowledgeBase):
		return docs, nil
	case knowledgeBase != "":
		kbs = []string{knowledgeBase}
	default:
		groups, err := ix.countBy(ctx, propKnowledgeBase, nil)
		if err != nil {
			return nil, err
		}
		for kb := range groups {
			kbs = append(kbs, kb)
		}
		sort.Strings(kbs)
	}
	for _, kb := range kbs {
		groups, err := ix.countBy(ctx, propDocumentID, equal(propKnowledgeBase, kb))
		if err != nil {
			return nil, err
		}
		ids := make([]string, 0, len(groups))
		for id := range groups {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			docs = append(docs, knowledge.IndexedDocument{KnowledgeBase: kb, DocumentID: id, Chunks: groups[id]})
		}
	}
	return docs, nil
}

// countBy counts the objects matching where by the values of a property,
// with an aggregation grouped by it. Weaviate returns the largest groups up
// to the limit (100 when none is given), so the limit is the largest it
// takes: every group comes back.
func (ix *Index) countBy(ctx context.Context, prop string, where *filters.WhereBuilder) (map[string]int, error) {
	agg := ix.client.GraphQL().Aggregate().WithClassName(ix.class).
		WithGroupBy(prop).
		WithLimit(math.MaxInt32).
		WithFields(
			graphql.Field{Name: "groupedBy", Fields: []graphql.Field{{Name: "value"}}},
			graphql.Field{Name: "meta", Fields: []graphql.Field{{Name: "count"}}},
		)
	if where != nil {
		agg = agg.WithWhere(where)
	}
	resp, err := agg.Do(ctx)
	if err != nil {
		return nil, ix.wrapErr(ctx, err, "list documents")
	}
	if err := ix.graphQLErr(ctx, resp.Errors, "list documents"); err != nil {
		return nil, err
	}
	var out struct {
		Aggregate map[string][]struct {
			GroupedBy struct {
				Value string `json:"value"`
			} `json:"groupedBy"`
			Meta struct {
				Count int `json:"count"`
			} `json:"meta"`
		} `json:"Aggregate"`
	}
	if err := decodeData(resp.Data, &out); err != nil {
		return nil, fmt.Errorf("weaviate list documents: %w", err)
	}
	groups := make(map[string]int)
	for _, g := range out.Aggregate[ix.class] {
		if g.Meta.Count > 0 && g.GroupedBy.Value != "" { // "": a chunk replaced while counting
			groups[g.GroupedBy.Value] += g.Meta.Count
		}
	}
	return groups, nil
}

// decodeData decodes the data of a GraphQL response into out.
func decodeData(data map[string]models.JSONObject, out any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func equal(prop, value string) *filters.WhereBuilder {
	return filters.Where().WithPath([]string{prop}).WithOperator(filters.Equal).WithValueText(value)
}

func and(operands ...*filters.WhereBuilder) *filters.WhereBuilder {
	return filters.Where().WithOperator(filters.And).WithOperands(operands)
}
