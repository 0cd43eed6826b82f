package weaviate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weaviate/weaviate-go-client/v4/weaviate/filters"
	"github.com/weaviate/weaviate-go-client/v4/weaviate/graphql"

	"github.com/convosphere/convosphere/knowledge"
)

// Vectors live in named vector spaces of the collection, one per size:
// "d768" holds the 768-dimension vectors of every knowledge base that has
// them. A space is added to the collection the first time a vector of its
// size is written, so knowledge bases embedded by different models (for
// instance during a change of model) each keep a space they can be
// searched in, while lexical search stays one query over one collection.
// Each object records its vector's size in the dims property (0 without a
// vector), which is how Upsert and Search find a knowledge base whose
// vectors have another size.

// vectorName names the vector space of vectors of the given size.
func vectorName(dims int) string { return "d" + strconv.Itoa(dims) }

// vectorSpaces remembers which spaces the collection has.
type vectorSpaces struct {
	mu    sync.Mutex // held while a space is added
	known map[string]bool
}

// vectorSpaceConfig is the configuration of a new space: our own vectors
// (no vectorizer module), HNSW over cosine distance.
func vectorSpaceConfig() map[string]any {
	return map[string]any{
		"vectorizer":        map[string]any{"none": map[string]any{}},
		"vectorIndexType":   "hnsw",
		"vectorIndexConfig": map[string]any{"distance": "cosine"},
	}
}

// ensureVectorSpaces adds the spaces for the given sizes that the
// collection lacks. The collection is read and written as raw JSON: the
// client's schema types are those of an older Weaviate and would drop
// settings of the server's on the way back.
func (ix *Index) ensureVectorSpaces(ctx context.Context, sizes []int) error {
	ix.spaces.mu.Lock()
	defer ix.spaces.mu.Unlock()
	var missing []string
	for _, d := range sizes {
		if !ix.spaces.known[vectorName(d)] {
			missing = append(missing, vectorName(d))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	var class map[string]any
	if err := ix.rest(ctx, http.MethodGet, "/v1/schema/"+url.PathEscape(ix.class), nil, &class); err != nil {
		return err
	}
	spaces, _ := class["vectorConfig"].(map[string]any)
	if spaces == nil {
		spaces = map[string]any{}
	}
	var added []string
	for _, name := range missing {
		if _, ok := spaces[name]; !ok {
			spaces[name] = vectorSpaceConfig()
			added = append(added, name)
		}
	}
	if len(added) > 0 {
		class["vectorConfig"] = spaces
		if err := ix.rest(ctx, http.MethodPut, "/v1/schema/"+url.PathEscape(ix.class), class, nil); err != nil {
			return err
		}
		sort.Strings(added)
		ix.log.InfoContext(ctx, "added vector spaces to the weaviate collection", "vector_spaces", strings.Join(added, ","))
		if err := ix.waitReady(ctx); err != nil {
			return err
		}
	}
	for name := range spaces {
		ix.spaces.known[name] = true
	}
	return nil
}

// Weaviate makes the collection read-only while it adds a vector space and
// answers the schema change before it is writable again.
const (
	readOnlyWait = 30 * time.Second      // the longest a write waits for it
	readOnlyPoll = 50 * time.Millisecond // how often it looks
)

// waitReady waits until every shard of the collection is writable again.
func (ix *Index) waitReady(ctx context.Context) error {
	return retryReadOnly(ctx, func() error {
		shards, err := ix.client.Schema().ShardsGetter().WithClassName(ix.class).Do(ctx)
		if err != nil {
			return ix.wrapErr(ctx, err, "wait for the collection")
		}
		for _, sh := range shards {
			if sh != nil && sh.Status != "READY" {
				return fmt.Errorf("shard %s is %s: %w", sh.Name, sh.Status, errReadOnly)
			}
		}
		return nil
	})
}

// errReadOnly marks a write refused while a vector space was being added.
var errReadOnly = errors.New("read-only while a vector space is added")

// isReadOnly reports whether a Weaviate error message says the collection
// is read-only because its vector spaces are being changed.
func isReadOnly(msg string) bool {
	return strings.Contains(msg, "read-only due to") && strings.Contains(msg, "UpdateVectorIndexConfig")
}

// retryReadOnly calls write until it does not fail with errReadOnly, for up
// to readOnlyWait.
func retryReadOnly(ctx context.Context, write func() error) error {
	deadline := time.Now().Add(readOnlyWait)
	for {
		err := write()
		if !errors.Is(err, errReadOnly) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(readOnlyPoll):
		}
	}
}

// checkDimensions returns knowledge.DimensionsError when a chunk matching
// where (nil for all), outside the documents in except, has a vector of
// another size than dims.
func (ix *Index) checkDimensions(ctx context.Context, where *filters.WhereBuilder, dims int, except []string) error {
	other := and(
		filters.Where().WithPath([]string{propDims}).WithOperator(filters.NotEqual).WithValueInt(0),
		filters.Where().WithPath([]string{propDims}).WithOperator(filters.NotEqual).WithValueInt(int64(dims)),
	)
	if where != nil {
		other = and(where, other)
	}
	// Grouped by document: the documents being replaced do not count.
	resp, err := ix.client.GraphQL().Aggregate().WithClassName(ix.class).WithWhere(other).
		WithGroupBy(propDocumentID).WithLimit(math.MaxInt32).
		WithFields(
			graphql.Field{Name: "groupedBy", Fields: []graphql.Field{{Name: "value"}}},
			graphql.Field{Name: propKnowledgeBase, Fields: []graphql.Field{{Name: "topOccurrences(limit: 1)", Fields: []graphql.Field{{Name: "value"}}}}},
			graphql.Field{Name: propDims, Fields: []graphql.Field{{Name: "minimum"}, {Name: "maximum"}}},
		).Do(ctx)
	if err != nil {
		return ix.wrapErr(ctx, err, "check vector dimensions")
	}
	if err := ix.graphQLErr(ctx, resp.Errors, "check vector dimensions"); err != nil {
		return err
	}
	var out struct {
		Aggregate map[string][]struct {
			GroupedBy struct {
				Value string `json:"value"`
			} `json:"groupedBy"`
			KnowledgeBase struct {
				TopOccurrences []struct {
					Value string `json:"value"`
				} `json:"topOccurrences"`
			} `json:"knowledge_base"`
			Dims struct {
				Minimum number `json:"minimum"`
				Maximum number `json:"maximum"`
			} `json:"dims"`
		} `json:"Aggregate"`
	}
	if err := decodeData(resp.Data, &out); err != nil {
		return fmt.Errorf("weaviate check vector dimensions: %w", err)
	}
	// An aggregation reads the objects after it has matched them, so a
	// chunk replaced in between reads as missing (sizes 0, no knowledge
	// base): only a real other size counts.
	for _, g := range out.Aggregate[ix.class] {
		if g.GroupedBy.Value == "" || slices.Contains(except, g.GroupedBy.Value) || len(g.KnowledgeBase.TopOccurrences) == 0 {
			continue
		}
		for _, have := range []int{int(g.Dims.Minimum), int(g.Dims.Maximum)} {
			if have != 0 && have != dims {
				return knowledge.DimensionsError(g.KnowledgeBase.TopOccurrences[0].Value, have, dims)
			}
		}
	}
	return nil
}

// rest sends a request to Weaviate's REST API with the index's headers and
// decodes a JSON answer into out (when not nil).
func (ix *Index) rest(ctx context.Context, method, path string, body, out any) error {
	_, err := ix.restHeader(ctx, method, path, body, out)
	return err
}

// restHeader is rest that also returns the answer's header.
func (ix *Index) restHeader(ctx context.Context, method, path string, body, out any) (http.Header, error) {
	op := strings.ToLower(method) + " " + path
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("weaviate %s: %w", op, err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, ix.url+path, r)
	if err != nil {
		return nil, fmt.Errorf("weaviate %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range ix.headers {
		req.Header.Set(k, v)
	}
	resp, err := ix.http.Do(req)
	if err != nil {
		return nil, ix.wrapErr(ctx, err, op)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, ix.wrapErr(ctx, err, op)
	}
	if resp.StatusCode/100 != 2 {
		return nil, ix.wrapErr(ctx, &statusError{code: resp.StatusCode, body: strings.TrimSpace(string(b))}, op)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("weaviate %s: decode answer: %w", op, err)
		}
	}
	return resp.Header, nil
}

// statusError is an answer of Weaviate's REST API with an error status.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.code, e.body) }
