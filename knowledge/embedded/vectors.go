package embedded

import (
	"cmp"
	"container/heap"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/convosphere/convosphere/knowledge"
)

// encodeVector returns v as little-endian float32s.
func encodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// decodeVector appends the little-endian float32s of b to dst.
func decodeVector(dst []float32, b []byte) []float32 {
	for i := 0; i+4 <= len(b); i += 4 {
		dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
	}
	return dst
}

// normalize scales v to unit length in place; a zero vector stays zero (and
// so matches nothing).
func normalize(v []float32) {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(sum))
	for i := range v {
		v[i] *= inv
	}
}

// kbVectors are the vectors of one knowledge base as of a version:
// immutable once loaded, shared by concurrent searches.
type kbVectors struct {
	kb      string
	version int64
	dims    int
	ids     []string
	vecs    []float32 // len(ids)*dims, each row of unit length
}

// vectorSlot serialises the loading of one knowledge base's vectors, so
// that concurrent searches after a write load them once.
type vectorSlot struct {
	mu   sync.Mutex
	data *kbVectors
}

// knowledgeBaseVectors returns the current vectors of the knowledge bases
// kbs (all of them when kbs is empty), loading those written since they
// were last loaded.
func (ix *Index) knowledgeBaseVectors(ctx context.Context, kbs []string) ([]*kbVectors, error) {
	versions, err := ix.kbStates(ctx, kbs)
	if err != nil {
		return nil, err
	}
	out := make([]*kbVectors, 0, len(versions))
	for _, v := range versions {
		data, err := ix.loadVectors(ctx, v.kb, v.version)
		if err != nil {
			return nil, err
		}
		if len(data.ids) > 0 {
			out = append(out, data)
		}
	}
	return out, nil
}

// loadVectors returns the vectors of kb at version, from the cache or the
// file. The version is read before the rows, so the rows are at least that
// recent; a write in between only costs one more load.
func (ix *Index) loadVectors(ctx context.Context, kb string, version int64) (*kbVectors, error) {
	s := ix.vectors.slot(kb)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data != nil && s.data.version == version {
		return s.data, nil
	}
	rows, err := ix.db.QueryContext(ctx, `SELECT id, dims, vector FROM chunks WHERE knowledge_base = ? AND dims > 0`, kb)
	if err != nil {
		return nil, fmt.Errorf("search knowledge index: load vectors of %s: %w", kb, err)
	}
	defer rows.Close()
	data := &kbVectors{kb: kb, version: version}
	for rows.Next() {
		var (
			id   string
			dims int
			blob []byte
		)
		if err := rows.Scan(&id, &dims, &blob); err != nil {
			return nil, fmt.Errorf("search knowledge index: load vectors of %s: %w", kb, err)
		}
		switch {
		case data.dims == 0:
			data.dims = dims
		case dims != data.dims:
			return nil, knowledge.DimensionsError(kb, data.dims, dims)
		}
		if len(blob) != 4*dims {
			return nil, fmt.Errorf("search knowledge index: vector of %s is %d bytes, want %d", id, len(blob), 4*dims)
		}
		start := len(data.vecs)
		data.vecs = decodeVector(data.vecs, blob)
		normalize(data.vecs[start:])
		data.ids = append(data.ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search knowledge index: load vectors of %s: %w", kb, err)
	}
	s.data = data
	return data, nil
}

// vectorHit is a chunk found by vector search.
type vectorHit struct {
	score float64
	id    string
}

// better orders hits best first: higher score, then lower id.
func better(a, b vectorHit) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return a.id < b.id
}

// hitHeap is a min-heap of the best hits so far: its root is the worst.
type hitHeap []vectorHit

func (h hitHeap) Len() int           { return len(h) }
func (h hitHeap) Less(i, j int) bool { return better(h[j], h[i]) }
func (h hitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *hitHeap) Push(x any)        { *h = append(*h, x.(vectorHit)) }
func (h *hitHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// parallelWork is the number of multiply-adds above which a search splits
// its vectors between the available cores.
const parallelWork = 1 << 20

// nearest returns the k vectors of sets most similar to q (unit length)
// with a cosine similarity above 0 and at least minScore, best first.
func nearest(sets []*kbVectors, q []float32, k int, minScore float64) []vectorHit {
	type part struct {
		set        *kbVectors
		start, end int
	}
	var parts []part
	total := 0
	for _, s := range sets {
		total += len(s.ids)
	}
	workers := min(runtime.GOMAXPROCS(0), max(1, total*len(q)/parallelWork))
	per := (total + workers - 1) / workers
	for _, s := range sets {
		for start := 0; start < len(s.ids); start += per {
			parts = append(parts, part{s, start, min(start+per, len(s.ids))})
		}
	}
	scan := func(p part, h *hitHeap) {
		dims := p.set.dims
		for i := p.start; i < p.end; i++ {
			score := float64(dot(q, p.set.vecs[i*dims:(i+1)*dims]))
			if score <= 0 || score < minScore {
				continue
			}
			hit := vectorHit{score: min(score, 1), id: p.set.ids[i]}
			switch {
			case h.Len() < k:
				heap.Push(h, hit)
			case better(hit, (*h)[0]):
				(*h)[0] = hit
				heap.Fix(h, 0)
			}
		}
	}
	heaps := make([]hitHeap, len(parts))
	if workers == 1 {
		for i, p := range parts {
			scan(p, &heaps[i])
		}
	} else {
		var wg sync.WaitGroup
		for i, p := range parts {
			wg.Go(func() { scan(p, &heaps[i]) })
		}
		wg.Wait()
	}
	var hits []vectorHit
	for _, h := range heaps {
		hits = append(hits, h...)
	}
	sortHits(hits)
	return hits[:min(k, len(hits))]
}

func sortHits(hits []vectorHit) {
	slices.SortFunc(hits, func(a, b vectorHit) int {
		return cmp.Or(cmp.Compare(b.score, a.score), cmp.Compare(a.id, b.id))
	})
}

// dot is the dot product of two vectors of equal length.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}
