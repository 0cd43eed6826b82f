package main

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/convosphere/convosphere/knowledge"
	"github.com/convosphere/convosphere/knowledge/weaviate"
)

// backendCollection is the collection the bench gives our Weaviate backend,
// so that it never touches the chunks of tests or users on the same server.
const backendCollection = "BenchRetrievalChunk"

// backendIndex is our Weaviate backend in a collection of its own, dropped
// again on Close.
type backendIndex struct {
	*weaviate.Index
	admin *peer
}

// openWeaviateIndex opens ConvoSphere's Weaviate backend at rawURL in a
// fresh collection.
func openWeaviateIndex(ctx context.Context, rawURL string) (knowledge.Index, error) {
	admin := &peer{base: strings.TrimRight(rawURL, "/"), http: &http.Client{Timeout: time.Minute}}
	if err := admin.do(ctx, http.MethodDelete, "/v1/schema/"+backendCollection, nil, nil); err != nil && !isStatus(err, http.StatusNotFound) {
		return nil, err
	}
	ix, err := weaviate.Open(ctx, weaviate.Config{URL: rawURL, Collection: backendCollection})
	if err != nil {
		return nil, err
	}
	return &backendIndex{Index: ix, admin: admin}, nil
}

func (b *backendIndex) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return joinErr(b.admin.do(ctx, http.MethodDelete, "/v1/schema/"+backendCollection, nil, nil), b.Index.Close())
}
