package knowledge

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge/extract"
)

// DefaultMaxFileBytes is the default limit on one document's size.
const DefaultMaxFileBytes = 20 << 20

// maxSourceBytes limits a document's source name.
const maxSourceBytes = 1024

// Config tunes ingestion and retrieval. The zero value gets defaults from New.
type Config struct {
	ChunkSize      int   // characters per chunk at most; default 1200
	ChunkOverlap   int   // characters carried into the next chunk; default 150 (at most a quarter of ChunkSize), negative for none
	MaxFileBytes   int64 // largest document accepted; default 20 MiB
	DefaultLimit   int   // passages returned when a request sets no limit; default 5
	MaxLimit       int   // most passages one request may ask for; default 50
	EmbedBatchSize int   // chunks per call to the embedder; default 64
	// Extract caps text extraction (pages, archive sizes, time per file);
	// its MaxFileBytes follows MaxFileBytes.
	Extract extract.Config
}

// Retrieval defaults, applied when the settings leave them zero.
const (
	DefaultAlpha = 0.5 // alpha fusion weighs both signals equally
	// minRerankCandidates is the fewest passages reranking reorders; it
	// reorders three times the limit when that is more.
	minRerankCandidates = 20
)

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
	if c.EmbedBatchSize == 0 {
		c.EmbedBatchSize = 64
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
	case c.EmbedBatchSize < 0:
		return engine.Errorf(engine.EINVALID, "knowledge: embed batch size must not be negative: use e.g. 64")
	}
	return nil
}

// Reranker scores texts by their relevance to a query: one score per
// text, in input order, higher is more relevant. knowledge/rerank
// implements it for rerank endpoints.
type Reranker interface {
	Rerank(ctx context.Context, query string, texts []string) ([]float64, error)
}

// Deps are the service's collaborators. Store and Index are required.
type Deps struct {
	Store engine.KnowledgeStore
	Index Index
	// Embedder, optional, embeds chunks at ingestion and queries at
	// retrieval; without it every search is lexical.
	Embedder engine.Embedder
	// Reranker, optional, reorders the candidates of searches that ask
	// for reranking.
	Reranker Reranker
	Logger   *slog.Logger
}

// Service ingests documents into knowledge bases and retrieves passages
// from them. It implements engine.Retriever. It does not own its Index:
// the caller closes it.
type Service struct {
	cfg      Config
	store    engine.KnowledgeStore
	index    Index
	embedder engine.Embedder
	reranker Reranker
	chunker  Chunker
	extract  *extract.Extractor
	log      *slog.Logger
	locks    keyedMutex
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
	cfg.Extract.MaxFileBytes = cfg.MaxFileBytes
	ex, err := extract.New(cfg.Extract)
	if err != nil {
		return nil, err
	}
	if ok, why := ex.PDFSupport(); !ok {
		log.Info("PDF files cannot be ingested", "component", "knowledge", "reason", why)
	}
	return &Service{
		extract:  ex,
		cfg:      cfg,
		store:    deps.Store,
		index:    deps.Index,
		embedder: deps.Embedder,
		reranker: deps.Reranker,
		chunker:  Chunker{Size: cfg.ChunkSize, Overlap: cfg.ChunkOverlap},
		log:      log.With("component", "knowledge"),
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
	contentType, parsed, err := s.parse(ctx, source, content)
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

// parse extracts the text of a file (its type decided by its content) and
// cuts it into chunks by structure. A file without text is an EINVALID error.
func (s *Service) parse(ctx context.Context, source string, content []byte) (string, Parsed, error) {
	doc, err := s.extract.Extract(ctx, source, content)
	if err != nil {
		return "", Parsed{}, err
	}
	contentType := ContentTypeMarkdown
	if doc.ContentType == extract.ContentTypeText {
		contentType = ContentTypeText
	}
	parsed, err := s.chunker.Chunk(source, contentType, []byte(doc.Text))
	if err != nil {
		return "", Parsed{}, err
	}
	if doc.Title != "" {
		parsed.Title = doc.Title
		for i := range parsed.Chunks {
			parsed.Chunks[i].Title = doc.Title
		}
	}
	return doc.ContentType, parsed, nil
}

// index1 embeds (when an embedder is configured) and indexes a stored
// document's chunks and records the outcome on it.
func (s *Service) index1(ctx context.Context, doc *engine.Document, parsed Parsed) error {
	start := time.Now()
	parsed.Assign(doc.KnowledgeBase, doc.ID, doc.Source)
	if err := s.embedChunks(ctx, doc.Source, parsed.Chunks); err != nil {
		return s.fail(ctx, doc, err)
	}
	if err := s.index.Upsert(ctx, parsed.Chunks); err != nil {
		return s.fail(ctx, doc, err)
	}
	if err := s.store.SetDocumentStatus(ctx, doc.ID, engine.DocumentIndexed, len(parsed.Chunks), ""); err != nil {
		return err
	}
	doc.Status, doc.Chunks, doc.Error = engine.DocumentIndexed, len(parsed.Chunks), ""
	s.log.DebugContext(ctx, "document indexed", "knowledge_base", doc.KnowledgeBase, "document_id", doc.ID,
		"source", doc.Source, "chunks", len(parsed.Chunks), "embedded", s.embedder != nil,
		"duration_ms", time.Since(start).Milliseconds())
	return nil
}

// EmbedText is what is embedded, and reranked, for a chunk: its title and
// heading path on a line before its text, so that a chunk is also found by
// what its document and section are about.
func EmbedText(title string, headingPath []string, text string) string {
	var parts []string
	for _, p := range append([]string{title}, headingPath...) {
		if p = strings.TrimSpace(p); p != "" && (len(parts) == 0 || parts[len(parts)-1] != p) {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return text
	}
	return strings.Join(parts, " › ") + "\n\n" + text
}

// embedChunks sets the vectors of chunks, in batches, when an embedder is
// configured. Any failure is the whole document's: no chunk is indexed
// without its vector.
func (s *Service) embedChunks(ctx context.Context, source string, chunks []Chunk) error {
	if s.embedder == nil || len(chunks) == 0 {
		return nil
	}
	dims := 0
	for start := 0; start < len(chunks); start += s.cfg.EmbedBatchSize {
		batch := chunks[start:min(start+s.cfg.EmbedBatchSize, len(chunks))]
		texts := make([]string, len(batch))
		for i, c := range batch {
			texts[i] = EmbedText(c.Title, c.HeadingPath, c.Text)
		}
		vectors, err := s.embedder.Embed(ctx, texts)
		if err != nil {
			code := engine.ErrorCode(err)
			if code == engine.EINTERNAL {
				code = engine.EUNAVAILABLE
			}
			return engine.WrapError(code, err, "Embedding %s failed: %s. Add it again once the embedding model works.", source,
				strings.TrimSuffix(engine.ErrorMessage(err), "."))
		}
		if len(vectors) != len(batch) {
			return engine.Errorf(engine.EUNAVAILABLE, "Embedding %s failed: the embedding model returned %d vectors for %d chunks. Check the embedding model.", source, len(vectors), len(batch))
		}
		for i, v := range vectors {
			switch {
			case len(v) == 0:
				return engine.Errorf(engine.EUNAVAILABLE, "Embedding %s failed: the embedding model returned an empty vector. Check the embedding model.", source)
			case dims != 0 && len(v) != dims:
				return engine.Errorf(engine.EUNAVAILABLE, "Embedding %s failed: the embedding model returned vectors of %d and %d dimensions. Check the embedding model.", source, dims, len(v))
			}
			dims = len(v)
			batch[i].Vector = v
		}
	}
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
// removes chunks of documents the store no longer has. It re-chunks with
// the current chunk settings and, when an embedder is configured,
// re-embeds every chunk: after a change of chunk settings or embedding
// model, nothing needs uploading again. When the new model's vectors have
// other dimensions than those the index holds, the knowledge base is
// cleared from the index first (its searches find less until the reindex
// ends). Documents that fail are marked failed and listed in the report;
// the error is for the whole operation only.
func (s *Service) Reindex(ctx context.Context, kb string) (IngestReport, error) {
	if _, err := s.knowledgeBase(ctx, kb); err != nil {
		return IngestReport{KnowledgeBase: kb}, err
	}
	return s.reindex(ctx, kb, nil)
}

// reindex reindexes the documents of kb that want reports true for (all
// when want is nil) and removes index orphans. Reindexing all of them, it
// clears the knowledge base from the index and starts again when the
// index refuses the dimensions of the new vectors.
func (s *Service) reindex(ctx context.Context, kb string, want func(*engine.Document) bool) (IngestReport, error) {
	report := IngestReport{KnowledgeBase: kb}
	docs, err := s.store.ListDocuments(ctx, kb)
	if err != nil {
		return report, err
	}
	if err := s.removeOrphans(ctx, kb, docs); err != nil {
		return report, err
	}
	cleared := false
	for i := 0; i < len(docs); i++ {
		d := docs[i]
		if want != nil && !want(d) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return report, err
		}
		res := IngestResult{Source: d.Source, DocumentID: d.ID}
		chunks, err := s.reindexDocument(ctx, d.ID)
		switch {
		case err != nil && want == nil && !cleared && errors.Is(err, ErrDimensions):
			s.log.InfoContext(ctx, "embedding dimensions changed: clearing the knowledge base from the index before reindexing it",
				"knowledge_base", kb)
			if err := s.index.DeleteKnowledgeBase(ctx, kb); err != nil {
				return report, err
			}
			cleared, report, i = true, IngestReport{KnowledgeBase: kb}, -1
		case err != nil:
			res.Err, res.Reason = err, engine.ErrorMessage(err)
			report.Failed = append(report.Failed, res)
		default:
			res.Chunks = chunks
			report.OK = append(report.OK, res)
		}
	}
	s.log.InfoContext(ctx, "knowledge base reindexed", "knowledge_base", kb,
		"ok", len(report.OK), "failed", len(report.Failed), "embedded", s.embedder != nil)
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
	_, parsed, err := s.parse(ctx, doc.Source, content)
	if err != nil {
		return 0, s.fail(ctx, doc, err)
	}
	if err := s.index1(ctx, doc, parsed); err != nil {
		return 0, err
	}
	return len(parsed.Chunks), nil
}

// Chunks returns a stored document (without its content) and its chunks
// as the current settings cut them, which are the chunks indexed unless
// the settings changed since (a reindex re-cuts them). Citations point into
// these: chunk n of document d is knowledge.ChunkID(d, n).
func (s *Service) Chunks(ctx context.Context, documentID string) (*engine.Document, []Chunk, error) {
	doc, err := s.store.DocumentByID(ctx, documentID)
	if err != nil {
		return nil, nil, err
	}
	content := doc.Content
	doc.Content = nil
	_, parsed, err := s.parse(ctx, doc.Source, content)
	if err != nil {
		return doc, nil, err
	}
	parsed.Assign(doc.KnowledgeBase, doc.ID, doc.Source)
	return doc, parsed.Chunks, nil
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
//
// The mode defaults to hybrid, with rrf fusion (k 60) or alpha fusion
// (alpha 0.5). Without an embedder, or when embedding the query fails, or
// when the knowledge base was embedded with a model of other dimensions,
// the search is lexical and a note says why. With Rerank and a Reranker,
// the best max(3×limit, 20) candidates are reranked, each passage's Score
// becomes its rerank score (Scores keep the others), and MinScore applies
// to the rerank score; when reranking fails the search order is kept and
// a note says so. AppliedSettings report what was done, and Notes every
// setting that was asked for but not applied.
func (s *Service) Retrieve(ctx context.Context, req engine.RetrievalRequest) (*engine.Retrieval, error) {
	start := time.Now()
	text := strings.TrimSpace(req.Query)
	set := req.Settings
	switch {
	case text == "":
		return nil, engine.Errorf(engine.EINVALID, "The search query is empty: type a question or some keywords.")
	case !utf8.ValidString(text) || strings.ContainsRune(text, 0):
		return nil, engine.Errorf(engine.EINVALID, "The search query is not valid UTF-8 text or contains a NUL byte: retype it.")
	case math.IsNaN(set.MinScore):
		return nil, engine.Errorf(engine.EINVALID, "The minimum score is not a number: use a number from 0 to 1.")
	case set.Alpha != nil && math.IsNaN(*set.Alpha):
		return nil, engine.Errorf(engine.EINVALID, "Alpha is not a number: use a number from 0 (lexical only) to 1 (vector only).")
	}
	if err := set.Validate(); err != nil {
		return nil, err
	}
	limit := set.Limit
	if limit <= 0 {
		limit = s.cfg.DefaultLimit
	}
	limit = min(limit, s.cfg.MaxLimit)
	applied := engine.AppliedSettings{Backend: s.index.Name(), Limit: limit, MinScore: set.MinScore}
	note := func(format string, args ...any) { applied.Notes = append(applied.Notes, fmt.Sprintf(format, args...)) }

	q := Query{
		Text:           text,
		KnowledgeBases: slices.Compact(slices.Sorted(slices.Values(req.KnowledgeBases))),
		Limit:          limit,
		MinScore:       set.MinScore,
		Mode:           cmp.Or(set.Mode, engine.SearchHybrid),
	}
	if q.Mode != engine.SearchLexical {
		switch vec, err := s.embedQuery(ctx, text); {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case s.embedder == nil:
			note("%s search skipped: no embedding model is configured; lexical (BM25) search only", q.Mode)
			q.Mode = engine.SearchLexical
		case err != nil:
			s.log.WarnContext(ctx, "embed query failed: searching lexically", "error", err)
			note("%s search skipped: embedding the query failed (%s); lexical (BM25) search only", q.Mode, engine.ErrorMessage(err))
			q.Mode = engine.SearchLexical
		default:
			q.Vector = vec
		}
	}
	rerank := set.Rerank && s.reranker != nil
	if set.Rerank && s.reranker == nil {
		note("reranking skipped: no rerank endpoint is configured")
	}
	if rerank {
		q.Limit, q.MinScore = max(3*limit, minRerankCandidates), 0
	}
	s.applyFusion(&q, set, note)

	passages, err := s.index.Search(ctx, q)
	if err != nil && q.Mode != engine.SearchLexical && errors.Is(err, ErrDimensions) {
		s.log.WarnContext(ctx, "vector search impossible: searching lexically", "knowledge_bases", q.KnowledgeBases, "error", err)
		note("%s search skipped: %s; lexical (BM25) search only", q.Mode, strings.TrimSuffix(engine.ErrorMessage(err), "."))
		q.Mode, q.Vector, q.Fusion, q.Alpha, q.RRFK = engine.SearchLexical, nil, "", 0, 0
		passages, err = s.index.Search(ctx, q)
	}
	if err != nil {
		return nil, err
	}
	applied.Mode = q.Mode
	if q.Mode == engine.SearchHybrid {
		applied.Fusion = q.Fusion
		if q.Fusion == engine.FusionAlpha {
			applied.Alpha = &q.Alpha
		} else {
			applied.RRFK = q.RRFK
		}
	}
	if rerank {
		reranked, err := s.rerank(ctx, text, passages)
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			s.log.WarnContext(ctx, "rerank failed: keeping the search order", "error", err)
			note("reranking failed (%s): passages are in search order", engine.ErrorMessage(err))
		default:
			passages, applied.Rerank = reranked, true
		}
		passages = slices.DeleteFunc(passages, func(p engine.Passage) bool { return p.Score < set.MinScore })
		passages = passages[:min(limit, len(passages))]
	}
	if passages == nil {
		passages = []engine.Passage{}
	}
	s.log.DebugContext(ctx, "retrieved", "knowledge_bases", q.KnowledgeBases, "mode", applied.Mode, "fusion", applied.Fusion,
		"rerank", applied.Rerank, "passages", len(passages), "notes", len(applied.Notes), "duration_ms", time.Since(start).Milliseconds())
	return &engine.Retrieval{Passages: passages, Applied: applied}, nil
}

// applyFusion sets the fusion of a hybrid query from the settings, with
// their defaults, and notes the settings that do not apply to q's mode.
func (s *Service) applyFusion(q *Query, set engine.RetrievalSettings, note func(string, ...any)) {
	if q.Mode != engine.SearchHybrid {
		if set.Fusion != "" || set.Alpha != nil || set.RRFK != 0 {
			note("fusion settings (fusion, alpha, rrf_k) ignored: they apply to hybrid search only")
		}
		return
	}
	q.Fusion = cmp.Or(set.Fusion, engine.FusionRRF)
	if q.Fusion == engine.FusionAlpha {
		q.Alpha = DefaultAlpha
		if set.Alpha != nil {
			q.Alpha = *set.Alpha
		}
		if set.RRFK != 0 {
			note("rrf_k ignored: it applies to rrf fusion only")
		}
		return
	}
	q.RRFK = cmp.Or(set.RRFK, DefaultRRFK)
	if set.Alpha != nil {
		note("alpha ignored: it applies to alpha fusion only")
	}
}

// embedQuery returns the query's vector; nil without an embedder.
func (s *Service) embedQuery(ctx context.Context, text string) ([]float32, error) {
	if s.embedder == nil {
		return nil, nil
	}
	vectors, err := s.embedder.Embed(ctx, []string{text})
	switch {
	case err != nil:
		return nil, err
	case len(vectors) != 1 || len(vectors[0]) == 0:
		return nil, engine.Errorf(engine.EUNAVAILABLE, "The embedding model returned no vector for the query.")
	}
	return vectors[0], nil
}

// rerank scores passages with the reranker and orders them by that score,
// best first (ties keep the search order). Each passage's Score becomes
// its rerank score.
func (s *Service) rerank(ctx context.Context, query string, passages []engine.Passage) ([]engine.Passage, error) {
	if len(passages) == 0 {
		return passages, nil
	}
	texts := make([]string, len(passages))
	for i, p := range passages {
		texts[i] = EmbedText(p.Title, p.HeadingPath, p.Text)
	}
	scores, err := s.reranker.Rerank(ctx, query, texts)
	if err != nil {
		return nil, err
	}
	if len(scores) != len(passages) {
		return nil, engine.Errorf(engine.EUNAVAILABLE, "The rerank endpoint returned %d scores for %d passages.", len(scores), len(passages))
	}
	out := slices.Clone(passages)
	for i := range out {
		if math.IsNaN(scores[i]) || math.IsInf(scores[i], 0) {
			return nil, engine.Errorf(engine.EUNAVAILABLE, "The rerank endpoint returned a score that is not a finite number.")
		}
		out[i].Score = scores[i]
		out[i].Scores.Rerank = &scores[i]
	}
	slices.SortStableFunc(out, func(a, b engine.Passage) int { return cmp.Compare(b.Score, a.Score) })
	return out, nil
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
