package embedded

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
)

// BM25 parameters, Weaviate's and Lucene's defaults.
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

// fieldBoost weighs each field's BM25 score. The title is shared by every
// chunk of a document, so it says least about which chunk answers; half
// weight there ranked best on the man-page evaluation (MRR@10 0.731
// against 0.720 with equal weights), and more weight anywhere ranked worse.
var fieldBoost = [numFields]float32{fieldTitle: 0.5, fieldHeadings: 1, fieldText: 1}

// compactRatio is the share of deleted chunks in a knowledge base's
// postings above which the postings are rebuilt from the file.
const compactRatio = 0.25

// postings are the chunks (slots) holding one term in one field, in slot
// order, with the term's frequency in each (at most 255: BM25 saturates
// long before); df counts the live ones.
type postings struct {
	slots []uint32
	freqs []uint8
	df    int
}

// kbLexical is the in-memory inverted index of one knowledge base: a slot
// per chunk (in the order the chunks were added), the fields' lengths per
// slot and the postings of every term. It reflects the file as of version;
// chunks deleted since it was built are marked dead and skipped.
type kbLexical struct {
	kb      string
	version int64
	ids     []string
	seqs    []int64
	slotOf  map[int64]uint32
	dead    []bool
	live    int
	lengths [numFields][]uint32
	sumLen  [numFields]int64
	terms   [numFields]map[string]*postings
}

func newKBLexical(kb string) *kbLexical {
	l := &kbLexical{kb: kb, slotOf: make(map[int64]uint32)}
	for f := range numFields {
		l.terms[f] = make(map[string]*postings)
	}
	return l
}

// add appends a chunk; a chunk already present (by seq) is left alone, so
// replaying a change twice does no harm.
func (l *kbLexical) add(seq int64, id string, blob []byte) error {
	if _, ok := l.slotOf[seq]; ok {
		return nil
	}
	slot := uint32(len(l.ids))
	err := decodeTerms(blob,
		func(f int, n uint32) {
			l.lengths[f] = append(l.lengths[f], n)
			l.sumLen[f] += int64(n)
		},
		func(f int, term []byte, freq uint32) {
			p := l.terms[f][string(term)]
			if p == nil {
				p = &postings{}
				l.terms[f][string(term)] = p
			}
			p.slots = append(p.slots, slot)
			p.freqs = append(p.freqs, uint8(min(freq, math.MaxUint8)))
			p.df++
		})
	if err != nil {
		// Undo the lengths of a half-read blob.
		for f := range numFields {
			if len(l.lengths[f]) > int(slot) {
				l.sumLen[f] -= int64(l.lengths[f][slot])
				l.lengths[f] = l.lengths[f][:slot]
			}
		}
		return fmt.Errorf("chunk %s: %w", id, err)
	}
	l.ids = append(l.ids, id)
	l.seqs = append(l.seqs, seq)
	l.dead = append(l.dead, false)
	l.slotOf[seq] = slot
	l.live++
	return nil
}

// remove marks a chunk dead, given the terms it was indexed with; a chunk
// not present is left alone.
func (l *kbLexical) remove(seq int64, blob []byte) error {
	slot, ok := l.slotOf[seq]
	if !ok {
		return nil
	}
	delete(l.slotOf, seq)
	l.dead[slot] = true
	l.live--
	for f := range numFields {
		l.sumLen[f] -= int64(l.lengths[f][slot])
	}
	return decodeTerms(blob, func(int, uint32) {}, func(f int, term []byte, _ uint32) {
		if p := l.terms[f][string(term)]; p != nil {
			p.df--
		}
	})
}

// needsCompaction says whether enough chunks died to rebuild the postings.
func (l *kbLexical) needsCompaction() bool {
	deadCount := len(l.ids) - l.live
	return deadCount > 1000 && float64(deadCount) > compactRatio*float64(len(l.ids))
}

// lexicalSlot guards one knowledge base's index: searches read it under
// the read lock, bringing it up to date takes the write lock.
type lexicalSlot struct {
	mu   sync.RWMutex
	data *kbLexical
}

// kbState is a knowledge base's row in kb_versions.
type kbState struct {
	kb       string
	version  int64
	logFloor int64
}

// kbStates reads the versions of the knowledge bases kbs (all of them when
// kbs is empty), ordered by name; a knowledge base never written has none.
func (ix *Index) kbStates(ctx context.Context, kbs []string) ([]kbState, error) {
	query := `SELECT knowledge_base, version, log_floor FROM kb_versions`
	var args []any
	if len(kbs) > 0 {
		query += ` WHERE knowledge_base IN (?` + strings.Repeat(`, ?`, len(kbs)-1) + `)`
		for _, kb := range kbs {
			args = append(args, kb)
		}
	}
	query += ` ORDER BY knowledge_base`
	rows, err := ix.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("search knowledge index: read versions: %w", err)
	}
	defer rows.Close()
	var out []kbState
	for rows.Next() {
		var s kbState
		if err := rows.Scan(&s.kb, &s.version, &s.logFloor); err != nil {
			return nil, fmt.Errorf("search knowledge index: read versions: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search knowledge index: read versions: %w", err)
	}
	return out, nil
}

// lexicalSlots returns the slots of the knowledge bases in states, each
// brought up to its version and read-locked: the caller calls release
// when done.
func (ix *Index) lexicalSlots(ctx context.Context, states []kbState) (slots []*lexicalSlot, release func(), err error) {
	release = func() {
		for _, s := range slots {
			s.mu.RUnlock()
		}
	}
	for _, st := range states {
		s := ix.postings.slot(st.kb)
		if err := ix.refresh(ctx, s, st); err != nil {
			release()
			return nil, nil, err
		}
		s.mu.RLock()
		slots = append(slots, s)
	}
	return slots, release, nil
}

// refresh brings a slot up to at least st.version: from the change log
// when it can, else by loading the knowledge base again.
func (ix *Index) refresh(ctx context.Context, s *lexicalSlot, st kbState) error {
	s.mu.RLock()
	current := s.data != nil && s.data.version >= st.version
	s.mu.RUnlock()
	if current {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data != nil && s.data.version >= st.version {
		return nil
	}
	if s.data != nil && s.data.version >= st.logFloor && !s.data.needsCompaction() {
		if err := ix.applyChanges(ctx, s.data, st.version); err == nil {
			return nil
		} else if ctx.Err() != nil {
			return searchError(err)
		}
		// A failed replay leaves the index half updated: load it again.
	}
	data, err := ix.loadLexical(ctx, st)
	if err != nil {
		s.data = nil
		return err
	}
	s.data = data
	return nil
}

// loadLexical builds a knowledge base's index from its chunks. The version
// is read before the rows, so the rows are at least that recent; the
// changes replayed later skip what the rows already hold.
func (ix *Index) loadLexical(ctx context.Context, st kbState) (*kbLexical, error) {
	rows, err := ix.db.QueryContext(ctx, `SELECT seq, id, terms FROM chunks WHERE knowledge_base = ? ORDER BY seq`, st.kb)
	if err != nil {
		return nil, searchError(fmt.Errorf("load %s: %w", st.kb, err))
	}
	defer rows.Close()
	l := newKBLexical(st.kb)
	l.version = st.version
	for rows.Next() {
		var (
			seq  int64
			id   string
			blob []byte
		)
		if err := rows.Scan(&seq, &id, &blob); err != nil {
			return nil, searchError(fmt.Errorf("load %s: %w", st.kb, err))
		}
		if err := l.add(seq, id, blob); err != nil {
			return nil, fmt.Errorf("search knowledge index: load %s: %w", st.kb, err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, searchError(fmt.Errorf("load %s: %w", st.kb, err))
	}
	return l, nil
}

// applyChanges replays the changes to l's knowledge base after l.version:
// first the chunks deleted (from the change log), then the chunks added.
// Chunk seqs are never reused, so the order of the two is safe.
func (ix *Index) applyChanges(ctx context.Context, l *kbLexical, version int64) error {
	rows, err := ix.db.QueryContext(ctx, `SELECT seq, terms FROM chunk_log
		WHERE knowledge_base = ? AND version > ? ORDER BY version, id`, l.kb, l.version)
	if err != nil {
		return err
	}
	for rows.Next() {
		var (
			seq  int64
			blob []byte
		)
		if err := rows.Scan(&seq, &blob); err != nil {
			rows.Close()
			return err
		}
		if err := l.remove(seq, blob); err != nil {
			rows.Close()
			return err
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = ix.db.QueryContext(ctx, `SELECT seq, id, terms FROM chunks
		WHERE knowledge_base = ? AND version > ? ORDER BY seq`, l.kb, l.version)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			seq  int64
			id   string
			blob []byte
		)
		if err := rows.Scan(&seq, &id, &blob); err != nil {
			return err
		}
		if err := l.add(seq, id, blob); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	l.version = version
	return nil
}

// lexicalHit is a chunk found by BM25.
type lexicalHit = vectorHit

// accumulators are reused between searches: one float32 per slot.
var accumulators = sync.Pool{New: func() any { return new([]float32) }}

// bm25 returns the best n chunks of the read-locked indexes for the query
// terms, with their BM25 scores (above 0), best first.
//
// The score is Weaviate's BM25F: for each field, each term adds
// idf × boost × tf·(k1+1) / (tf + k1·(1 − b + b·len/avglen)), with the field's
// own length and average length; idf = ln(1 + (N − n + 0.5) / (n + 0.5)),
// where N counts the chunks of the searched knowledge bases and n is the
// term's document frequency averaged over the fields that hold it. Each
// index is scored term at a time into a dense accumulator, which touches
// each posting once: for the long postings of common words that is much
// cheaper than a document-at-a-time merge.
func bm25(indexes []*kbLexical, terms []string, n int) []lexicalHit {
	var total int64
	var sumLen [numFields]int64
	for _, l := range indexes {
		total += int64(l.live)
		for f := range numFields {
			sumLen[f] += l.sumLen[f]
		}
	}
	if total == 0 || len(terms) == 0 || n <= 0 {
		return nil
	}
	N := float64(total)
	idf := make([]float32, len(terms))
	for i, t := range terms {
		var df, fields int
		for f := range numFields {
			var fdf int
			for _, l := range indexes {
				if p := l.terms[f][t]; p != nil {
					fdf += p.df
				}
			}
			if fdf > 0 {
				df += fdf
				fields++
			}
		}
		if fields == 0 {
			continue
		}
		nt := float64(df) / float64(fields)
		idf[i] = float32(math.Log(1 + (N-nt+0.5)/(nt+0.5)))
	}
	var avg [numFields]float32
	for f := range numFields {
		avg[f] = float32(max(float64(sumLen[f])/N, 1))
	}

	h := make(hitHeap, 0, n)
	accp := accumulators.Get().(*[]float32)
	defer accumulators.Put(accp)
	for _, l := range indexes {
		acc := *accp
		if cap(acc) < len(l.ids) {
			acc = make([]float32, len(l.ids))
		}
		acc = acc[:len(l.ids)]
		clear(acc)
		*accp = acc
		for f := range numFields {
			c1 := float32(bm25K1 * (1 - bm25B))
			c2 := float32(bm25K1*bm25B) / avg[f]
			lengths := l.lengths[f]
			for i, t := range terms {
				p := l.terms[f][t]
				if p == nil || idf[i] == 0 {
					continue
				}
				w := idf[i] * fieldBoost[f] * (bm25K1 + 1)
				freqs := p.freqs[:len(p.slots)]
				for j, slot := range p.slots {
					tf := float32(freqs[j])
					acc[slot] += w * tf / (tf + c1 + c2*float32(lengths[slot]))
				}
			}
		}
		for slot, s := range acc {
			if s <= 0 || l.dead[slot] {
				continue
			}
			hit := lexicalHit{score: float64(s), id: l.ids[slot]}
			switch {
			case len(h) < n:
				heap.Push(&h, hit)
			case better(hit, h[0]):
				h[0] = hit
				heap.Fix(&h, 0)
			}
		}
	}
	hits := []lexicalHit(h)
	sortHits(hits)
	return hits
}

// Warm loads the postings of every knowledge base into memory, so that the
// first question after a start does not wait for it (a million chunks take
// tens of seconds to load). Searches may run meanwhile.
func (ix *Index) Warm(ctx context.Context) error {
	states, err := ix.kbStates(ctx, nil)
	if err != nil {
		return err
	}
	for _, st := range states {
		if err := ix.refresh(ctx, ix.postings.slot(st.kb), st); err != nil {
			return err
		}
	}
	return nil
}
