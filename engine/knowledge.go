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
	Score         float64  `json:"score"`  // the final score the passage was ranked by
	Scores        Scores   `json:"scores"` // each signal's score, for the console's search tester
}

// Scores are a passage's score from each signal of a search. A nil field
// means the signal did not run or did not find the passage.
type Scores struct {
	Lexical *float64 `json:"lexical,omitempty"` // BM25, normalised to (0,1]
	Vector  *float64 `json:"vector,omitempty"`  // cosine similarity
	Fused   *float64 `json:"fused,omitempty"`   // after fusing lexical and vector
	Rerank  *float64 `json:"rerank,omitempty"`  // from the rerank endpoint
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

// Search modes.
const (
	SearchHybrid  = "hybrid"  // lexical and vector, fused; lexical alone when no embedding model is configured
	SearchLexical = "lexical" // BM25 only
	SearchVector  = "vector"  // embeddings only
)

// Fusion methods for hybrid search.
const (
	FusionRRF   = "rrf"   // reciprocal rank fusion: sum of 1/(k+rank)
	FusionAlpha = "alpha" // alpha*vector + (1-alpha)*lexical on normalised scores
)

// RetrievalSettings tune how an assistant searches its knowledge bases. Zero
// values take the defaults documented on each field.
type RetrievalSettings struct {
	Limit    int      `json:"limit,omitempty"`     // passages returned; default 5, at most 50
	MinScore float64  `json:"min_score,omitempty"` // passages whose final score is below are dropped
	Mode     string   `json:"mode,omitempty"`      // hybrid (default), lexical or vector
	Fusion   string   `json:"fusion,omitempty"`    // rrf (default) or alpha
	Alpha    *float64 `json:"alpha,omitempty"`     // weight of the vector score in alpha fusion, 0 to 1; default 0.5
	RRFK     int      `json:"rrf_k,omitempty"`     // the k of reciprocal rank fusion; default 60
	Rerank   bool     `json:"rerank,omitempty"`    // reorder the candidates with the configured rerank endpoint
}

// Validate checks the settings; the error names the setting and its range.
func (s RetrievalSettings) Validate() error {
	switch {
	case s.Limit < 0 || s.Limit > 50:
		return Errorf(EINVALID, "Retrieval limit %d is out of range: use 0 (default 5) to 50.", s.Limit)
	case s.MinScore < 0 || s.MinScore > 1:
		return Errorf(EINVALID, "Minimum score %g is out of range: use 0 to 1.", s.MinScore)
	case s.Alpha != nil && (*s.Alpha < 0 || *s.Alpha > 1):
		return Errorf(EINVALID, "Alpha %g is out of range: use 0 (lexical only) to 1 (vector only).", *s.Alpha)
	case s.RRFK < 0:
		return Errorf(EINVALID, "The RRF k must not be negative (default 60).")
	}
	switch s.Mode {
	case "", SearchHybrid, SearchLexical, SearchVector:
	default:
		return Errorf(EINVALID, "Search mode %q is unknown: use hybrid, lexical or vector.", s.Mode)
	}
	switch s.Fusion {
	case "", FusionRRF, FusionAlpha:
	default:
		return Errorf(EINVALID, "Fusion %q is unknown: use rrf or alpha.", s.Fusion)
	}
	return nil
}

// RetrievalRequest asks knowledge bases for passages relevant to a query.
type RetrievalRequest struct {
	Query          string
	KnowledgeBases []string // only these are searched; an assistant passes the ones bound to it
	Settings       RetrievalSettings
}

// AppliedSettings say what a search actually did, so a trace can show it
// and the console's search tester can replay it.
type AppliedSettings struct {
	Backend  string   `json:"backend"` // e.g. "embedded", "weaviate"
	Mode     string   `json:"mode"`
	Fusion   string   `json:"fusion,omitempty"`
	Alpha    *float64 `json:"alpha,omitempty"`
	RRFK     int      `json:"rrf_k,omitempty"`
	Limit    int      `json:"limit"`
	MinScore float64  `json:"min_score"`
	Rerank   bool     `json:"rerank"`
	// Notes explain where the search differed from what was asked, e.g.
	// "vector search skipped: no embedding model is configured".
	Notes []string `json:"notes,omitempty"`
}

// Retrieval is the result of a search.
type Retrieval struct {
	Passages []Passage       `json:"passages"`
	Applied  AppliedSettings `json:"applied"`
}

// Retriever finds passages in knowledge bases.
type Retriever interface {
	Retrieve(ctx context.Context, req RetrievalRequest) (*Retrieval, error)
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
