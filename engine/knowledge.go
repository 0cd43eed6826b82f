package engine

import (
	"context"
	"regexp"
	"time"
)

// Passage is a chunk of a knowledge-base document returned by retrieval.
type Passage struct {
	ID            string   `json:"id"` // chunk id, stable across searches
	KnowledgeBase string   `json:"knowledge_base"`
	DocumentID    string   `json:"document_id"`
	Document      string   `json:"document"` // source: file path or name
	Title         string   `json:"title"`
	HeadingPath   []string `json:"heading_path,omitempty"`
	Position      int      `json:"position"` // chunk index in the document
	Text          string   `json:"text"`
	Score         float64  `json:"score"`
}

// Citation tells a reader where part of an answer came from.
type Citation struct {
	Index         int    `json:"index"` // the [n] marker used in the answer
	PassageID     string `json:"passage_id,omitempty"`
	KnowledgeBase string `json:"knowledge_base,omitempty"`
	Document      string `json:"document"`
	Title         string `json:"title"`
	Section       string `json:"section,omitempty"` // heading path joined with " › "
	Snippet       string `json:"snippet"`
}

// RetrievalRequest asks knowledge bases for passages relevant to a query.
type RetrievalRequest struct {
	Query          string
	KnowledgeBases []string
	Limit          int
	MinScore       float64
}

// Retriever finds passages in knowledge bases.
type Retriever interface {
	Retrieve(ctx context.Context, req RetrievalRequest) ([]Passage, error)
}

// Embedder turns texts into vectors.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// KnowledgeBase is a named collection of documents that assistants search.
type KnowledgeBase struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"` // unique slug, referenced by assistants
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

var kbNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Validate checks a knowledge base before it is stored.
func (kb *KnowledgeBase) Validate() error {
	if !kbNameRE.MatchString(kb.Name) {
		return Errorf(EINVALID, "Knowledge base name %q is invalid: use 1 to 64 lowercase letters, digits, dashes or underscores.", kb.Name)
	}
	return nil
}

// DocumentStatus is where a document is in the ingestion pipeline.
type DocumentStatus string

// Document statuses.
const (
	DocumentPending DocumentStatus = "pending"
	DocumentIndexed DocumentStatus = "indexed"
	DocumentFailed  DocumentStatus = "failed"
)

// Document is an original file of a knowledge base. The original bytes are
// kept so that re-chunking or re-embedding needs no re-upload.
type Document struct {
	ID            string         `json:"id"`
	KnowledgeBase string         `json:"knowledge_base"`
	Source        string         `json:"source"` // unique within the knowledge base: path or file name
	Title         string         `json:"title"`
	ContentType   string         `json:"content_type"`
	Content       []byte         `json:"-"`
	SHA256        string         `json:"sha256"`
	Size          int64          `json:"size"`
	Status        DocumentStatus `json:"status"`
	Error         string         `json:"error,omitempty"`
	Chunks        int            `json:"chunks"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
}
