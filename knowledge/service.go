package knowledge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/convosphere/convosphere/engine"
)

// DefaultMaxFileBytes is the default limit on one document's size.
const DefaultMaxFileBytes = 20 << 20

// maxSourceBytes limits a document's source name.
const maxSourceBytes = 1024

// Config tunes ingestion and retrieval. The zero value gets defaults from New.
type Config struct {
	ChunkSize    int   // characters per chunk at most; default 1200
	ChunkOverlap int   // characters carried into the next chunk; default 150 (at most a quarter of ChunkSize), negative for none
	MaxFileBytes int64 // largest document accepted; default 20 MiB
	DefaultLimit int   // passages returned when a request sets no limit; default 5
	MaxLimit     int   // most passages one request may ask for; default 50
}

func (c *Config) setDefaults() {
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultChunkSize
	}
	switch {
	case c.ChunkOverlap == 0:
		c.ChunkOverlap = min(DefaultChunkOverlap, c.ChunkSize/4)
	case c.ChunkOverlap < 0:
		c.ChunkOverlap = 0
	}
	if c.MaxFileBytes == 0 {
		c.MaxFileBytes = DefaultMaxFileBytes
	}
	if c.DefaultLimit == 0 {
		c.DefaultLimit = 5
	}
	if c.MaxLimit == 0 {
		c.MaxLimit = 50
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.ChunkSize < 100 || c.ChunkSize > 100_000:
		return engine.Errorf(engine.EINVALID, "knowledge: chunk size %d is out of range: use 100 to 100000 characters", c.ChunkSize)
	case c.ChunkOverlap > c.ChunkSize/2:
		return engine.Errorf(engine.EINVALID, "knowledge: chunk overlap %d is more than half the chunk size %d: lower it", c.ChunkOverlap, c.ChunkSize)
	case c.MaxFileBytes < 0:
		return engine.Errorf(engine.EINVALID, "knowledge: max file bytes must not be negative")
	case c.DefaultLimit < 0 || c.MaxLimit < 0:
		return engine.Errorf(engine.EINVALID, "knowledge: search limits must not be negative")
	case c.DefaultLimit > c.MaxLimit:
		return engine.Errorf(engine.EINVALID, "knowledge: default limit %d is above the max limit %d", c.DefaultLimit, c.MaxLimit)
	}
	return nil
}

// Deps are the service's collaborators. Store and Index are required.
type Deps struct {
	Store  engine.KnowledgeStore
	Index  Index
	Logger *slog.Logger
}

// Service ingests documents into knowledge bases and retrieves passages
// from them. It implements engine.Retriever. It does not own its Index:
// the caller closes it.
type Service struct {
	cfg     Config
	store   engine.KnowledgeStore
	index   Index
	chunker Chunker
	log     *slog.Logger
	locks   keyedMutex
}

var _ engine.Retriever = (*Service)(nil)

// New returns a service, or an error naming the missing dependency or bad setting.
func New(cfg Config, deps Deps) (*Service, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Index == nil {
		return nil, engine.Errorf(engine.EINVALID, "knowledge: store and index are required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{
		cfg:     cfg,
		store:   deps.Store,
		index:   deps.Index,
		chunker: Chunker{Size: cfg.ChunkSize, Overlap: cfg.ChunkOverlap},
		log:     log.With("component", "knowledge"),
	}, nil
}

// Ingest adds or replaces the document source of knowledge base kb and
// indexes it. An unchanged document that is already indexed is left alone.
// The original is stored before indexing; when indexing fails the document
// is marked failed with the reason, none of its chunks stay in the index,
// and the error is returned.
func (s *Service) Ingest(ctx context.Context, kb, source string, content []byte) (*engine.Document, error) {
	doc, _, err := s.ingest(ctx, kb, source, content)
	return doc, err
}

// ingest is Ingest that also reports whether the document was unchanged.
func (s *Service) ingest(ctx context.Context, kb, source string, content []byte) (*engine.Document, bool, error) {
	source, err := cleanSource(source)
	if err != nil {
		return nil, false, err
	}
	if err := s.checkSize(source, int64(len(content))); err != nil {
		return nil, false, err
	}
	if _, err := s.knowledgeBase(ctx, kb); err != nil {
		return nil, false, err
	}
	contentType, err := DetectContentType(source, content)
	if err != nil {
		return nil, false, err
	}
	sum := sha256.Sum256(content)
	hash := hex.EncodeToString(sum[:])

	unlock := s.locks.lock(kb + "\x00" + source)
	defer unlock()

	old, err := s.store.DocumentBySource(ctx, kb, source)
	switch {
	case err == nil && old.SHA256 == hash && old.Status == engine.DocumentIndexed:
		old.Content = nil
		return old, true, nil
	case err != nil && !engine.IsNotFound(err):
		return nil, false, err
	}
	parsed, err := s.chunker.Chunk(source, contentType, content)
	if err != nil {
		return nil, false, err
	}
	doc := &engine.Document{
		KnowledgeBase: kb,
		Source:        source,
		Title:         parsed.Title,
		ContentType:   contentType,
		Content:       content,
		SHA256:        hash,
		Size:          int64(len(content)),
		Status:        engine.DocumentPending,
	}
	if err := s.store.SaveDocument(ctx, doc); err != nil {
		return nil, false, err
	}
	doc.Content = nil
	return doc, false, s.index1(ctx, doc, parsed)
}

// index1 indexes a stored document's chunks and records the outcome on it.
func (s *Service) index1(ctx context.Context, doc *engine.Document, parsed Parsed) error {
	start := time.Now()
	parsed.Assign(doc.KnowledgeBase, doc.ID, doc.Source)
	if err := s.index.Upsert(ctx, parsed.Chunks); err != nil {
		return s.fail(ctx, doc, err)
	}
	if err := s.store.SetDocumentStatus(ctx, doc.ID, engine.DocumentIndexed, len(parsed.Chunks), ""); err != nil {
		return err
	}
	doc.Status, doc.Chunks, doc.Error = engine.DocumentIndexed, len(parsed.Chunks), ""
	s.log.DebugContext(ctx, "document indexed", "knowledge_base", doc.KnowledgeBase, "document_id", doc.ID,
		"source", doc.Source, "chunks", len(parsed.Chunks), "duration_ms", time.Since(start).Milliseconds())
	return nil
}

// fail removes what the index may hold of doc, marks it failed and returns
// the indexing error as an *engine.Error.
func (s *Service) fail(ctx context.Context, doc *engine.Document, cause error) error {
	err := cause
	switch {
	case errors.Is(cause, context.DeadlineExceeded):
		err = engine.WrapError(engine.ETIMEOUT, cause, "Indexing %s took too long and was stopped: add it again", doc.Source)
	case errors.Is(cause, context.Canceled):
		err = engine.WrapError(engine.EUNAVAILABLE, cause, "Indexing %s was interrupted: add it again", doc.Source)
	case engine.ErrorCode(cause) == engine.EINTERNAL:
		err = engine.WrapError(engine.EUNAVAILABLE, cause, "Indexing %s failed: the search index is unavailable, try again later", doc.Source)
	}
	// Clean up even when ctx is what failed.
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if derr := s.index.DeleteDocument(cleanup, doc.KnowledgeBase, doc.ID); derr != nil {
		s.log.WarnContext(ctx, "remove chunks of failed document", "knowledge_base", doc.KnowledgeBase,
			"document_id", doc.ID, "error", derr)
	}
	reason := engine.ErrorMessage(err)
	if serr := s.store.SetDocumentStatus(cleanup, doc.ID, engine.DocumentFailed, 0, reason); serr != nil {
		return errors.Join(err, serr)
	}
	doc.Status, doc.Chunks, doc.Error = engine.DocumentFailed, 0, reason
	return err
}

func (s *Service) checkSize(source string, size int64) error {
	switch {
	case size == 0:
		return engine.Errorf(engine.EINVALID, "%s is empty: add some text to it.", source)
	case size > s.cfg.MaxFileBytes:
		return engine.Errorf(engine.ETOOLARGE, "%s is %d bytes, over the limit of %d bytes: split it into smaller files.", source, size, s.cfg.MaxFileBytes)
	}
	return nil
}

// knowledgeBase returns the named knowledge base or a helpful ENOTFOUND.
func (s *Service) knowledgeBase(ctx context.Context, name string) (*engine.KnowledgeBase, error) {
	kb, err := s.store.KnowledgeBaseByName(ctx, name)
	if engine.IsNotFound(err) {
		return nil, engine.WrapError(engine.ENOTFOUND, err, "Knowledge base %q does not exist: create it first.", name)
	}
	return kb, err
}

// cleanSource checks a document's source name and normalises its path
// separators to slashes.
func cleanSource(source string) (string, error) {
	source = strings.TrimSpace(strings.ReplaceAll(source, `\`, "/"))
	switch {
	case source == "":
		return "", engine.Errorf(engine.EINVALID, "The document has no name: give its file name or path.")
	case len(source) > maxSourceBytes:
		return "", engine.Errorf(engine.EINVALID, "The document name is %d bytes long: use at most %d.", len(source), maxSourceBytes)
	case !utf8.ValidString(source) || strings.ContainsFunc(source, unicode.IsControl):
		return "", engine.Errorf(engine.EINVALID, "The document name %q contains control characters or invalid UTF-8: rename the file.", source)
	}
	return source, nil
}

// DeleteDocument removes a document from the index and the store.
func (s *Service) DeleteDocument(ctx context.Context, id string) error {
	doc, err := s.store.DocumentByID(ctx, id)
	if err != nil {
		return err
	}
	unlock := s.locks.lock(doc.KnowledgeBase + "\x00" + doc.Source)
	defer unlock()
	// The index first: a stored document missing from the index is
	// repaired by Sync, while chunks without a document would be found.
	if err := s.index.DeleteDocument(ctx, doc.KnowledgeBase, doc.ID); err != nil {
		return err
	}
	return s.store.DeleteDocument(ctx, id)
}

// DeleteKnowledgeBase removes a knowledge base and its documents from the
// index and the store.
func (s *Service) DeleteKnowledgeBase(ctx context.Context, name string) error {
	if _, err := s.knowledgeBase(ctx, name); err != nil {
		return err
	}
	if err := s.index.DeleteKnowledgeBase(ctx, name); err != nil {
		return err
	}
	return s.store.DeleteKnowledgeBase(ctx, name)
}

// Reindex rebuilds the index of knowledge base kb from the stored
// originals, one document at a time (searches keep working meanwhile), and
// removes chunks of documents the store no longer has. Documents that fail
// are marked failed and listed in the report; the error is for the whole
// operation only.
func (s *Service) Reindex(ctx context.Context, kb string) (IngestReport, error) {
	if _, err := s.knowledgeBase(ctx, kb); err != nil {
		return IngestReport{KnowledgeBase: kb}, err
	}
	return s.reindex(ctx, kb, nil)
}

// reindex reindexes the documents of kb that want reports true for (all
// when want is nil) and removes index orphans.
func (s *Service) reindex(ctx context.Context, kb string, want func(*engine.Document) bool) (IngestReport, error) {
	report := IngestReport{KnowledgeBase: kb}
	docs, err := s.store.ListDocuments(ctx, kb)
	if err != nil {
		return report, err
	}
	if err := s.removeOrphans(ctx, kb, docs); err != nil {
		return report, err
	}
	for _, d := range docs {
		if want != nil && !want(d) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return report, err
		}
		res := IngestResult{Source: d.Source, DocumentID: d.ID}
		chunks, err := s.reindexDocument(ctx, d.ID)
		switch {
		case err != nil:
			res.Err, res.Reason = err, engine.ErrorMessage(err)
			report.Failed = append(report.Failed, res)
		default:
			res.Chunks = chunks
			report.OK = append(report.OK, res)
		}
	}
	s.log.InfoContext(ctx, "knowledge base reindexed", "knowledge_base", kb,
		"ok", len(report.OK), "failed", len(report.Failed))
	return report, nil
}

// reindexDocument chunks and indexes one stored document again.
func (s *Service) reindexDocument(ctx context.Context, id string) (int, error) {
	doc, err := s.store.DocumentByID(ctx, id)
	if err != nil {
		return 0, err
	}
	unlock := s.locks.lock(doc.KnowledgeBase + "\x00" + doc.Source)
	defer unlock()
	content := doc.Content
	doc.Content = nil
	contentType := doc.ContentType
	if contentType != ContentTypeMarkdown && contentType != ContentTypeText {
		if contentType, err = DetectContentType(doc.Source, content); err != nil {
			return 0, s.fail(ctx, doc, err)
		}
	}
	parsed, err := s.chunker.Chunk(doc.Source, contentType, content)
	if err != nil {
		return 0, s.fail(ctx, doc, err)
	}
	if err := s.index1(ctx, doc, parsed); err != nil {
		return 0, err
	}
	return len(parsed.Chunks), nil
}

// removeOrphans deletes from the index the documents of kb not in docs.
func (s *Service) removeOrphans(ctx context.Context, kb string, docs []*engine.Document) error {
	indexed, err := s.index.Documents(ctx, kb)
	if err != nil {
		return err
	}
	for _, d := range indexed {
		if !slices.ContainsFunc(docs, func(doc *engine.Document) bool { return doc.ID == d.DocumentID }) {
			if err := s.index.DeleteDocument(ctx, kb, d.DocumentID); err != nil {
				return err
			}
		}
	}
	return nil
}

// Sync brings the index in line with the store, for start-up: documents
// that are pending, or indexed but missing from the index (or with another
// chunk count), are indexed again, and chunks of documents or knowledge
// bases the store no longer has are removed. Failed documents are left for
// an explicit Reindex.
func (s *Service) Sync(ctx context.Context) error {
	start := time.Now()
	kbs, err := s.store.ListKnowledgeBases(ctx)
	if err != nil {
		return err
	}
	indexed, err := s.index.Documents(ctx, "")
	if err != nil {
		return err
	}
	counts := make(map[string]int, len(indexed))
	gone := make(map[string]bool)
	for _, d := range indexed {
		counts[d.KnowledgeBase+"\x00"+d.DocumentID] = d.Chunks
		if !slices.ContainsFunc(kbs, func(kb *engine.KnowledgeBase) bool { return kb.Name == d.KnowledgeBase }) {
			gone[d.KnowledgeBase] = true
		}
	}
	for kb := range gone {
		if err := s.index.DeleteKnowledgeBase(ctx, kb); err != nil {
			return err
		}
	}
	reindexed, failed := 0, 0
	for _, kb := range kbs {
		report, err := s.reindex(ctx, kb.Name, func(d *engine.Document) bool {
			n, ok := counts[d.KnowledgeBase+"\x00"+d.ID]
			switch d.Status {
			case engine.DocumentPending:
				return true
			case engine.DocumentIndexed:
				return !ok || n != d.Chunks
			}
			return false
		})
		if err != nil {
			return err
		}
		reindexed += len(report.OK)
		failed += len(report.Failed)
		for _, f := range report.Failed {
			s.log.WarnContext(ctx, "document failed to index", "knowledge_base", kb.Name,
				"document_id", f.DocumentID, "source", f.Source, "error", f.Err)
		}
	}
	s.log.InfoContext(ctx, "knowledge index synced", "knowledge_bases", len(kbs), "reindexed", reindexed,
		"failed", failed, "duration_ms", time.Since(start).Milliseconds())
	return nil
}

// Retrieve returns the passages of the requested knowledge bases that best
// match the query, best first, and the settings the search applied. No
// knowledge base means all of them; unknown ones are simply empty. Limit <= 0
// means Config.DefaultLimit and is capped at Config.MaxLimit.
func (s *Service) Retrieve(ctx context.Context, req engine.RetrievalRequest) (*engine.Retrieval, error) {
	q := strings.TrimSpace(req.Query)
	set := req.Settings
	switch {
	case q == "":
		return nil, engine.Errorf(engine.EINVALID, "The search query is empty: type a question or some keywords.")
	case !utf8.ValidString(q) || strings.ContainsRune(q, 0):
		return nil, engine.Errorf(engine.EINVALID, "The search query is not valid UTF-8 text or contains a NUL byte: retype it.")
	case math.IsNaN(set.MinScore):
		return nil, engine.Errorf(engine.EINVALID, "The minimum score is not a number: use a number from 0 to 1.")
	}
	if err := set.Validate(); err != nil {
		return nil, err
	}
	limit := set.Limit
	if limit <= 0 {
		limit = s.cfg.DefaultLimit
	}
	limit = min(limit, s.cfg.MaxLimit)
	applied := engine.AppliedSettings{Backend: s.index.Name(), Mode: engine.SearchLexical, Limit: limit, MinScore: set.MinScore}
	if set.Mode == engine.SearchHybrid || set.Mode == engine.SearchVector {
		applied.Notes = append(applied.Notes, "vector search skipped: no embedding model is configured; lexical (BM25) search only")
	}
	if set.Rerank {
		applied.Notes = append(applied.Notes, "reranking skipped: no rerank endpoint is configured")
	}
	kbs := slices.Compact(slices.Sorted(slices.Values(req.KnowledgeBases)))
	passages, err := s.index.Search(ctx, Query{Text: q, KnowledgeBases: kbs, Limit: limit, MinScore: set.MinScore})
	if err != nil {
		return nil, err
	}
	if passages == nil {
		passages = []engine.Passage{}
	}
	return &engine.Retrieval{Passages: passages, Applied: applied}, nil
}

// keyedMutex serialises work on one key (a document) within the process.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[string]*keyLock)
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
