// Package knowledge turns documents into searchable chunks and finds the
// passages relevant to a question.
//
// Ingestion keeps every original document in an engine.KnowledgeStore, cuts
// it into chunks (Markdown by structure, plain text by paragraphs) and hands
// the chunks to an Index. Retrieval asks the Index. The Index is the backend
// contract: knowledge/embedded implements it on a SQLite FTS5 file, and
// knowledge/indextest is the conformance suite every implementation passes.
package knowledge

import (
	"context"
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
// and Vector (by cosine similarity).
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
	Upsert(ctx context.Context, chunks []Chunk) error
	// DeleteDocument removes all chunks of a document; a document the
	// index does not hold is not an error.
	DeleteDocument(ctx context.Context, knowledgeBase, documentID string) error
	// DeleteKnowledgeBase removes all chunks of a knowledge base.
	DeleteKnowledgeBase(ctx context.Context, knowledgeBase string) error
	// Search returns the best passages first. No match is an empty result,
	// never an error: any query text is acceptable.
	Search(ctx context.Context, q Query) ([]engine.Passage, error)
	// Documents lists the documents the index holds chunks of, in one
	// knowledge base or, when knowledgeBase is "", in all of them.
	Documents(ctx context.Context, knowledgeBase string) ([]IndexedDocument, error)
	Close() error
}
