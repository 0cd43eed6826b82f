// Package weaviate is the knowledge index on a Weaviate server
// (weaviate-go-client/v4, tested against Weaviate 1.35.2): BM25 over title,
// headings and text, nearest neighbours over the vectors we bring
// (knowledge.Chunk.Vector; no vectorizer module), and the two fused for
// hybrid search.
//
// # One collection, a knowledge_base property
//
// Every chunk of every knowledge base lives in one collection (default
// ConvoSphereChunk), and each search filters on the knowledge_base property.
// The alternatives were a collection per knowledge base and a tenant per
// knowledge base (multi-tenancy). What decided it:
//
//   - Searching several knowledge bases at once, which assistants do all the
//     time, is one query with one ranking here. With a collection or a
//     tenant per knowledge base it is one query per knowledge base, and BM25
//     scores from different collections or tenants are not comparable: each
//     has its own document frequencies and average lengths, so a rare word
//     in a small knowledge base outscores a good match in a large one, and
//     merging the lists fairly is guesswork. In one collection the BM25
//     statistics are those of all knowledge bases together; that shifts the
//     scores of a knowledge base whose vocabulary differs from the rest a
//     little, but keeps the scores of one query comparable, which a merged
//     list needs.
//   - Many small knowledge bases cost nothing: a knowledge base is a value,
//     not a schema object. Every collection costs a shard, LSM buckets per
//     indexed property and a schema change through Raft, and Weaviate
//     advises against thousands of collections. Tenants are cheap (tens of
//     thousands per node), but every request names exactly one, so
//     "search every knowledge base" would first list the tenants, then fan
//     out.
//   - Deleting a knowledge base is a batch delete by filter (repeated while
//     Weaviate stops at QUERY_MAXIMUM_RESULTS objects per request) instead
//     of dropping a collection or a tenant: slower for a huge knowledge
//     base, and rare.
//   - The filter is an inverted-index lookup (knowledge_base is indexed
//     whole, "field" tokenization) that BM25 and HNSW apply while they
//     search, not after.
//
// Vectors go to named vector spaces of the collection, one per size ("d768"
// holds every 768-dimension vector), added the first time a size is
// written; each chunk records its size in the dims property. So, as the
// Index contract asks, each knowledge base keeps one size while another
// may have another (during a change of embedding model, say), and lexical
// search stays one query over one collection.
//
// # Writes
//
// Objects have deterministic UUIDs (version 5: SHA-1 of the chunk id in a
// fixed namespace), so writing a chunk again replaces it. Upsert writes a
// document's new chunks first, stamped with a fresh revision, then deletes
// the document's chunks of other revisions: a document being reindexed stays
// searchable all along, and a failed write leaves its previous chunks in
// place (some possibly replaced already) rather than none. Writes to one
// document are serialised within a process; Weaviate has no transactions,
// so two processes reindexing one document at the same moment can leave a
// mix, which the next reindex repairs. Adding a vector space makes
// Weaviate refuse writes for a moment; writes wait for it (up to 30 s).
//
// # Search and scores
//
// Scores lie in (0, 1], higher is better:
//
//   - lexical: BM25F with property boosts title 1, headings 1.5, text 1, as
//     the embedded index weighs its columns; the score s becomes
//     s / (s + 10), 0.5 for s = 10, as in the embedded index.
//   - vector: cosine similarity, 1 - Weaviate's cosine distance; chunks with
//     a similarity of 0 or less are no match and are left out.
//   - hybrid: the lexical and the vector search run at the same time, each
//     for knowledge.CandidateCount(limit) candidates, and knowledge.Fuse
//     fuses them (reciprocal rank or alpha fusion, see knowledge/fusion.go),
//     as every backend does, so a setting means the same whichever index is
//     configured. Weaviate's own hybrid operator is not used: its
//     rankedFusion hard-codes k = 60 (Query.RRFK would be ignored), its
//     relativeScoreFusion normalises min-max (the weakest candidate of each
//     list scores 0, and alpha 1 would rank unrelated chunks), and it
//     reports per-signal scores only inside a debug string. Scores.Lexical,
//     Scores.Vector and Scores.Fused are exact here.
//
// Query text never reaches Weaviate as written: it is cut into words the way
// Weaviate's "word" tokenizer cuts them (letters and digits), lowercased,
// stripped of English stopwords, deduplicated and capped at 32 words. What
// remains is letters, digits and spaces, so no input can break the GraphQL
// query the client builds (the client quotes strings with Go's %q, which
// is not GraphQL's escaping for control characters) and a long message
// stays a cheap search.
//
// Weaviate 1.35.2's BM25 mis-ranks chunks written in the last minute or
// so (until its memtables flush) when more of them match than the query's
// limit: good matches go missing even from a generous top k. Lexical
// search therefore asks for knowledge.CandidateCount(limit) candidates and,
// when that list comes back full while the searched knowledge bases hold
// chunks written in the last two minutes, asks again deep enough to rank
// every fresh chunk (see search.lexical). That costs a deeper query for
// those two minutes (on 2 cores, a lexical search right after importing
// 5,000 chunks takes about 160 ms instead of 6 ms) and gets the ranking
// right.
package weaviate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	wv "github.com/weaviate/weaviate-go-client/v4/weaviate"
	"github.com/weaviate/weaviate-go-client/v4/weaviate/fault"
	"github.com/weaviate/weaviate/entities/models"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
)

// Defaults of Config.
const (
	DefaultCollection = "ConvoSphereChunk"
	DefaultTimeout    = 30 * time.Second
)

// Config says which Weaviate server and collection hold the index.
type Config struct {
	// URL of the Weaviate server's HTTP API, e.g. http://127.0.0.1:8080
	// (weaviate.url).
	URL string
	// APIKey is sent as a bearer token; empty for a server with anonymous
	// access (weaviate.api_key). A secret: String and LogValue redact it.
	APIKey string
	// Collection is the Weaviate collection (class) of the chunks; it is
	// created on Open when missing. Default ConvoSphereChunk.
	Collection string
	// Timeout bounds each request to Weaviate; default 30s.
	Timeout time.Duration
	// Logger receives debug records of writes and searches (never their
	// text); default: discard.
	Logger *slog.Logger
}

var collectionRE = regexp.MustCompile(`^[A-Z][_0-9A-Za-z]{0,254}$`)

func (c *Config) setDefaults() {
	c.URL = strings.TrimRight(strings.TrimSpace(c.URL), "/")
	if c.Collection == "" {
		c.Collection = DefaultCollection
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first invalid setting, naming its configuration key.
// Zero values are valid where Open supplies a default.
func (c Config) Validate() error {
	c.setDefaults()
	if c.URL == "" {
		return engine.Errorf(engine.EINVALID, "weaviate.url is not set: use the server's HTTP address, e.g. http://127.0.0.1:8080.")
	}
	u, err := url.Parse(c.URL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return engine.Errorf(engine.EINVALID, "weaviate.url %q is not an http(s) URL: use e.g. http://127.0.0.1:8080.", c.URL)
	case u.User != nil:
		return engine.Errorf(engine.EINVALID, "weaviate.url must not contain credentials: put the API key in weaviate.api_key.")
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "":
		return engine.Errorf(engine.EINVALID, "weaviate.url %q has a path or query: use the server's address only, e.g. http://127.0.0.1:8080 (the client adds /v1).", c.URL)
	}
	if !collectionRE.MatchString(c.Collection) {
		return engine.Errorf(engine.EINVALID, "weaviate.collection %q is not a valid collection name: start with an uppercase letter, then letters, digits or underscores, e.g. %s.", c.Collection, DefaultCollection)
	}
	if c.Timeout < 0 {
		return engine.Errorf(engine.EINVALID, "weaviate.timeout must not be negative (default %s).", DefaultTimeout)
	}
	return nil
}

// String prints the configuration with the API key redacted.
func (c Config) String() string {
	return fmt.Sprintf("weaviate.Config{URL:%q Collection:%q Timeout:%s APIKey:%s}", c.URL, c.Collection, c.Timeout, redact(c.APIKey))
}

// LogValue logs the configuration with the API key redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", c.URL),
		slog.String("collection", c.Collection),
		slog.Duration("timeout", c.Timeout),
		slog.String("api_key", redact(c.APIKey)),
	)
}

func redact(secret string) string {
	if secret == "" {
		return "(none)"
	}
	return "(redacted)"
}

// Index is a knowledge.Index in a Weaviate collection. It is safe for
// concurrent use.
type Index struct {
	client  *wv.Client
	http    *http.Client      // for the schema calls the client's types cannot make
	headers map[string]string // sent with every request (the API key)
	class   string
	url     string
	timeout time.Duration
	log     *slog.Logger
	docs    docLocks
	spaces  vectorSpaces
	skew    time.Duration // the server's clock minus ours
}

var _ knowledge.Index = (*Index)(nil)

// Open connects to the server and creates the collection when it is
// missing. An unreachable server is EUNAVAILABLE; a collection that exists
// but was not made for chunks is EINVALID.
func Open(ctx context.Context, cfg Config) (*Index, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	u, _ := url.Parse(cfg.URL) // checked by Validate
	headers := map[string]string{}
	if cfg.APIKey != "" {
		headers["Authorization"] = "Bearer " + cfg.APIKey
	}
	ix := &Index{
		http:    &http.Client{Timeout: cfg.Timeout},
		headers: headers,
		class:   cfg.Collection,
		url:     cfg.URL,
		timeout: cfg.Timeout,
		log:     cfg.Logger.With("component", "knowledge_weaviate", "collection", cfg.Collection),
		spaces:  vectorSpaces{known: map[string]bool{}},
	}
	// The client's constructor asks the server for its version without a
	// context, waiting up to the timeout: ask first, with ctx, so that an
	// unreachable server fails Open as fast as ctx says.
	var meta struct {
		Version string `json:"version"`
	}
	sent := time.Now()
	header, err := ix.restHeader(ctx, http.MethodGet, "/v1/meta", nil, &meta)
	if err != nil {
		return nil, err
	}
	if date, err := http.ParseTime(header.Get("Date")); err == nil {
		ix.skew = date.Sub(sent) // whole seconds; freshWindow has the margin
	}
	client, err := wv.NewClient(wv.Config{
		Host:             u.Host,
		Scheme:           u.Scheme,
		Headers:          headers,
		ConnectionClient: ix.http,
		// StartupTimeout 0: no waiting loop, which would log through
		// the standard logger.
	})
	if err != nil {
		return nil, fmt.Errorf("open weaviate index: %w", err)
	}
	ix.client = client
	if err := ix.ensureCollection(ctx); err != nil {
		return nil, err
	}
	ix.log.DebugContext(ctx, "opened weaviate index", "url", cfg.URL, "server_version", meta.Version)
	return ix, nil
}

// Name implements knowledge.Index.
func (ix *Index) Name() string { return "weaviate" }

// Close closes idle connections to the server; the index holds nothing else.
func (ix *Index) Close() error {
	ix.http.CloseIdleConnections()
	return nil
}

// Properties of a chunk object.
const (
	propChunkID       = "chunk_id"
	propKnowledgeBase = "knowledge_base"
	propDocumentID    = "document_id"
	propDocument      = "document"
	propTitle         = "title"
	propHeadings      = "headings" // heading path joined with newlines, for BM25
	propHeadingPath   = "heading_path"
	propPosition      = "position"
	propText          = "text"
	propRevision      = "revision" // which Upsert wrote the chunk
	propDims          = "dims"     // the size of the chunk's vector, 0 without one
)

// bm25Properties are the searched properties with their boosts.
var bm25Properties = []string{propTitle, propHeadings + "^1.5", propText}

func schemaProperties() []*models.Property {
	yes, no := true, false
	filter := func(name string) *models.Property { // matched whole, never searched
		return &models.Property{Name: name, DataType: []string{"text"}, Tokenization: "field",
			IndexFilterable: &yes, IndexSearchable: &no}
	}
	search := func(name string) *models.Property { // BM25 only
		return &models.Property{Name: name, DataType: []string{"text"}, Tokenization: "word",
			IndexFilterable: &no, IndexSearchable: &yes}
	}
	filterInt := func(name string) *models.Property {
		return &models.Property{Name: name, DataType: []string{"int"}, IndexFilterable: &yes}
	}
	stored := func(name, dataType string) *models.Property { // returned, never queried
		p := &models.Property{Name: name, DataType: []string{dataType}, IndexFilterable: &no}
		if dataType == "text" || dataType == "text[]" {
			p.IndexSearchable = &no
		}
		return p
	}
	return []*models.Property{
		filter(propChunkID),
		filter(propKnowledgeBase),
		filter(propDocumentID),
		filter(propRevision),
		filterInt(propDims),
		stored(propDocument, "text"),
		search(propTitle),
		search(propHeadings),
		stored(propHeadingPath, "text[]"),
		stored(propPosition, "int"),
		search(propText),
	}
}

func (ix *Index) collectionClass() *models.Class {
	return &models.Class{
		Class:       ix.class,
		Description: "ConvoSphere knowledge-base chunks (knowledge/weaviate)",
		// Vectors go to named spaces, one per size, added as they come
		// (vectors.go). Weaviate gives a collection without them a
		// collection-wide vector index; it is not built (skip).
		Vectorizer:        "none",
		VectorIndexConfig: map[string]any{"skip": true},
		InvertedIndexConfig: &models.InvertedIndexConfig{
			// Stopwords are removed from queries here (terms.go); the
			// server's list would be a second, different one.
			Stopwords: &models.StopwordConfig{Preset: "none"},
			// Search asks whether chunks were written moments ago
			// (freshCount in search.go).
			IndexTimestamps: true,
		},
		Properties: schemaProperties(),
	}
}

// ensureCollection creates the collection, or checks that the existing one
// has the properties of a chunk.
func (ix *Index) ensureCollection(ctx context.Context) error {
	class, err := ix.client.Schema().ClassGetter().WithClassName(ix.class).Do(ctx)
	if err != nil && statusCode(err) != 404 {
		return ix.wrapErr(ctx, err, "open index")
	}
	if err == nil && class != nil {
		return ix.checkClass(class)
	}
	err = ix.client.Schema().ClassCreator().WithClass(ix.collectionClass()).Do(ctx)
	if err != nil {
		// Another process may have created it in the meantime.
		if class, gerr := ix.client.Schema().ClassGetter().WithClassName(ix.class).Do(ctx); gerr == nil && class != nil {
			return ix.checkClass(class)
		}
		return ix.wrapErr(ctx, err, "create collection")
	}
	ix.log.InfoContext(ctx, "created weaviate collection", "url", ix.url)
	return nil
}

func (ix *Index) checkClass(class *models.Class) error {
	for name := range class.VectorConfig {
		ix.spaces.known[name] = true
	}
	have := make(map[string]string, len(class.Properties))
	for _, p := range class.Properties {
		have[p.Name] = strings.Join(p.DataType, ",")
	}
	for _, want := range schemaProperties() {
		if got, ok := have[want.Name]; !ok || got != want.DataType[0] {
			return engine.Errorf(engine.EINVALID,
				"Weaviate collection %s exists but does not hold ConvoSphere chunks (property %s is missing or not %s): set weaviate.collection to another name.",
				ix.class, want.Name, want.DataType[0])
		}
	}
	if class.InvertedIndexConfig == nil || !class.InvertedIndexConfig.IndexTimestamps {
		return engine.Errorf(engine.EINVALID,
			"Weaviate collection %s does not index timestamps, which ConvoSphere needs: set weaviate.collection to a new name and reindex the knowledge bases.", ix.class)
	}
	return nil
}

// statusCode is the HTTP status of a Weaviate error, or 0.
func statusCode(err error) int {
	var werr *fault.WeaviateClientError
	if errors.As(err, &werr) && werr.IsUnexpectedStatusCode {
		return werr.StatusCode
	}
	var serr *statusError
	if errors.As(err, &serr) {
		return serr.code
	}
	return 0
}

// docLocks serialise writes to one document within the process: Upsert's
// write-then-delete-stale steps of two concurrent upserts of a document
// would otherwise delete each other's chunks.
type docLocks struct {
	stripes [64]sync.Mutex
}

func (l *docLocks) stripe(kb, doc string) int {
	h := fnv.New32a()
	h.Write([]byte(kb))
	h.Write([]byte{0})
	h.Write([]byte(doc))
	return int(h.Sum32() % uint32(len(l.stripes)))
}

// lock locks the stripes of the given stripe indexes in ascending order
// (so that two callers never wait on each other) and returns the unlock.
func (l *docLocks) lock(stripes map[int]bool) func() {
	var held []int
	for i := range l.stripes {
		if stripes[i] {
			l.stripes[i].Lock()
			held = append(held, i)
		}
	}
	return func() {
		for _, i := range held {
			l.stripes[i].Unlock()
		}
	}
}
