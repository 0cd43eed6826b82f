// Package knowledge turns documents into searchable chunks and finds the
// passages relevant to a question.
//
// Ingestion keeps every original document in an engine.KnowledgeStore, cuts
// it into chunks (Markdown by structure, plain text by paragraphs), embeds
// them when an embedding model is configured, and hands the chunks to an
// Index. Retrieval embeds the question, asks the Index for lexical (BM25),
// vector or hybrid results (fused as fusion.go describes), optionally
// reranks them through a Reranker, and reports the settings it applied.
// The Index is the backend contract: knowledge/embedded implements it on a
// SQLite file, knowledge/weaviate on a Weaviate server, and
// knowledge/indextest is the conformance suite every implementation passes.
package knowledge

import (
	"context"
	"errors"
	"math"
	"strconv"

	"github.com/convosphere/convosphere/engine"
)

// Content types the pipeline understands.
const (
	ContentTypeMarkdown = "text/markdown"
	ContentTypeText     = "text/plain"
)

// Chunk is a piece of a document small enough to index and to quote.
type Chunk struct {
	ID            string   // ChunkID(DocumentID, Position): stable while the document keeps its id
	KnowledgeBase string   // knowledge base name
	DocumentID    string   // engine.Document.ID
	Document      string   // the document's source: file path or name
	Title         string   // the document's title
	HeadingPath   []string // headings above the chunk, outermost first
	Position      int      // 0-based index of the chunk in its document
	Text          string   // the source text as written
	// Vector is the embedding of the chunk (title, headings and text), nil
	// when no embedding model is configured. Every vector of one knowledge
	// base has the same dimensions.
	Vector []float32
}

// ChunkID returns the id of the chunk at position in a document.
func ChunkID(documentID string, position int) string {
	return documentID + ":" + strconv.Itoa(position)
}

// Passage returns c as a search result with the given score.
func (c Chunk) Passage(score float64) engine.Passage {
	return engine.Passage{
		ID:            c.ID,
		KnowledgeBase: c.KnowledgeBase,
		DocumentID:    c.DocumentID,
		Document:      c.Document,
		Title:         c.Title,
		HeadingPath:   c.HeadingPath,
		Position:      c.Position,
		Text:          c.Text,
		Score:         score,
	}
}

// Query asks an Index for the chunks that best match Text (lexically)
// and Vector (by cosine similarity). Indexes call Normalize first, so that
// every backend applies the same defaults and rejects the same queries.
type Query struct {
	Text string
	// Vector is the embedding of Text; nil means no vector search.
	Vector []float32
	// KnowledgeBases limits the search; empty searches every knowledge base.
	// Names the index does not hold simply match nothing.
	KnowledgeBases []string
	// Limit is the most passages returned; <= 0 means DefaultSearchLimit.
	Limit int
	// MinScore drops passages whose final score is below it.
	MinScore float64
	// Mode is engine.SearchLexical, SearchVector or SearchHybrid; empty
	// means hybrid when Vector is set, else lexical. Vector and hybrid
	// modes need Vector (EINVALID otherwise).
	Mode string
	// Fusion is engine.FusionRRF (default) or engine.FusionAlpha, for hybrid.
	Fusion string
	// Alpha weighs the vector score in alpha fusion: 0 lexical only, 1
	// vector only.
	Alpha float64
	// RRFK is the k of reciprocal rank fusion; <= 0 means 60.
	RRFK int
}

// DefaultSearchLimit is the number of passages an Index returns when the
// query sets no limit.
const DefaultSearchLimit = 10

// ErrDimensions is in the chain of the EINVALID error an Index returns when
// vectors of different dimensions meet in one knowledge base: an Upsert
// whose vectors differ from each other or from the vectors the knowledge
// base already holds, or a Search whose Vector differs from them. It means
// the embedding model changed; Service.Reindex re-embeds the knowledge base.
var ErrDimensions = errors.New("vector dimensions differ")

// Normalize returns q with its defaults applied (Limit, Mode, Fusion,
// RRFK) or an EINVALID error naming what is wrong: an unknown mode or
// fusion, vector or hybrid mode without a Vector, a Vector or score that
// is not a finite number, Alpha outside 0 to 1.
func (q Query) Normalize() (Query, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultSearchLimit
	}
	if q.RRFK <= 0 {
		q.RRFK = DefaultRRFK
	}
	if q.Fusion == "" {
		q.Fusion = engine.FusionRRF
	}
	if q.Mode == "" {
		q.Mode = engine.SearchLexical
		if len(q.Vector) > 0 {
			q.Mode = engine.SearchHybrid
		}
	}
	switch q.Mode {
	case engine.SearchLexical:
	case engine.SearchVector, engine.SearchHybrid:
		if len(q.Vector) == 0 {
			return q, engine.Errorf(engine.EINVALID, "A %s search needs the query's embedding: set Query.Vector, or search in lexical mode.", q.Mode)
		}
	default:
		return q, engine.Errorf(engine.EINVALID, "Search mode %q is unknown: use hybrid, lexical or vector.", q.Mode)
	}
	switch q.Fusion {
	case engine.FusionRRF, engine.FusionAlpha:
	default:
		return q, engine.Errorf(engine.EINVALID, "Fusion %q is unknown: use rrf or alpha.", q.Fusion)
	}
	switch {
	case math.IsNaN(q.Alpha) || q.Alpha < 0 || q.Alpha > 1:
		return q, engine.Errorf(engine.EINVALID, "Alpha %g is out of range: use 0 (lexical only) to 1 (vector only).", q.Alpha)
	case math.IsNaN(q.MinScore) || math.IsInf(q.MinScore, 0):
		return q, engine.Errorf(engine.EINVALID, "The minimum score is not a finite number: use a number from 0 to 1.")
	}
	if q.Mode != engine.SearchLexical {
		for _, x := range q.Vector {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return q, engine.Errorf(engine.EINVALID, "The query vector holds a value that is not a finite number: check the embedding model.")
			}
		}
	}
	return q, nil
}

// CheckVectors returns an EINVALID error when a chunk's vector holds a
// value that is not a finite number or when the vectors of one knowledge
// base differ in dimensions (with ErrDimensions in its chain); else it
// returns the dimensions of each knowledge base's vectors (chunks without
// a vector do not count). Indexes call it at the start of Upsert.
func CheckVectors(chunks []Chunk) (map[string]int, error) {
	dims := make(map[string]int)
	for i, c := range chunks {
		if len(c.Vector) == 0 {
			continue
		}
		for _, x := range c.Vector {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, engine.Errorf(engine.EINVALID, "The vector of chunk %d (%s) holds a value that is not a finite number: check the embedding model.", i, c.ID)
			}
		}
		switch d, ok := dims[c.KnowledgeBase]; {
		case !ok:
			dims[c.KnowledgeBase] = len(c.Vector)
		case d != len(c.Vector):
			return nil, engine.WrapError(engine.EINVALID, ErrDimensions,
				"The chunks for knowledge base %q have vectors of %d and %d dimensions: embed every chunk with the same model.", c.KnowledgeBase, d, len(c.Vector))
		}
	}
	return dims, nil
}

// DimensionsError is the error an Index returns when vectors of want
// dimensions are written to, or searched in, a knowledge base that holds
// vectors of have dimensions.
func DimensionsError(knowledgeBase string, have, want int) error {
	return engine.WrapError(engine.EINVALID, ErrDimensions,
		"Knowledge base %q holds vectors of %d dimensions, not %d: the embedding model changed, so reindex the knowledge base to embed every document with the new model.",
		knowledgeBase, have, want)
}

// IndexedDocument says how many chunks of a document an Index holds.
type IndexedDocument struct {
	KnowledgeBase string
	DocumentID    string
	Chunks        int
}

// Index is a search backend for chunks. Implementations are safe for
// concurrent use.
//
// Scores are higher for better matches and lie in (0, 1]; they are
// comparable within one index but not across backends, so MinScore is a
// setting to tune per backend.
type Index interface {
	// Name names the backend ("embedded", "weaviate") in the settings a
	// search reports.
	Name() string
	// Upsert stores chunks, first removing every chunk of the documents
	// they belong to, so a document's chunks are replaced as a whole.
	// Chunks need an ID, KnowledgeBase and DocumentID (EINVALID otherwise).
	// Vectors are optional; those of one knowledge base have one size
	// (see CheckVectors and ErrDimensions). A rejected Upsert changes
	// nothing.
	Upsert(ctx context.Context, chunks []Chunk) error
	// DeleteDocument removes all chunks of a document; a document the
	// index does not hold is not an error.
	DeleteDocument(ctx context.Context, knowledgeBase, documentID string) error
	// DeleteKnowledgeBase removes all chunks of a knowledge base.
	DeleteKnowledgeBase(ctx context.Context, knowledgeBase string) error
	// Search returns the best passages first. No match is an empty result,
	// never an error: any query text is acceptable. The query is checked
	// and completed with Query.Normalize (EINVALID when it is wrong).
	// Lexical mode scores by BM25; vector mode by cosine similarity with
	// q.Vector, leaving out chunks without a vector and chunks not above
	// 0; hybrid mode fuses CandidateCount(limit) candidates of each with
	// Fuse. Each passage's Scores hold the scores of the signals that
	// found it (and Fused in hybrid mode); Score is the one it is ranked
	// by. A q.Vector whose dimensions differ from a searched knowledge
	// base's vectors is an EINVALID error with ErrDimensions.
	Search(ctx context.Context, q Query) ([]engine.Passage, error)
	// Documents lists the documents the index holds chunks of, in one
	// knowledge base or, when knowledgeBase is "", in all of them.
	Documents(ctx context.Context, knowledgeBase string) ([]IndexedDocument, error)
	Close() error
}
