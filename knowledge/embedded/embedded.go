// Package embedded is the knowledge index that needs no server: chunks,
// their analysed terms and their embedding vectors in a SQLite file of its
// own, next to the data store. Several processes may open the same file
// (the console and the bot): SQLite's write-ahead log lets readers go on
// while one writer writes.
//
// Lexical search is BM25 over an in-memory inverted index per knowledge
// base, built from the stored terms on the first search and kept up to date
// from a change log (see schemaLog), scored term at a time into a dense
// accumulator (see bm25). Postings take about 6 bytes per distinct term of
// a chunk.
//
// Vector search is exact: the cosine similarity of the query with every
// vector of the searched knowledge bases, from an in-memory copy of the
// vectors, normalised to unit length, that the index keeps per knowledge
// base (4 bytes per dimension per chunk) and reloads after any process
// wrote to that knowledge base. Hybrid search fuses the BM25 and vector
// candidates with knowledge.Fuse.
package embedded

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
)

// scoreHalf is the BM25 score that maps to 0.5: score = s / (s + scoreHalf).
const scoreHalf = 10.0

// schemaVersion is stored in PRAGMA user_version. Version 2 added the
// vector and dims columns and the kb_versions table; version 3 replaced
// the FTS5 index with analysed terms and the change log. Older files are
// migrated in place (chunks from version 1 have no vectors: a reindex
// embeds them).
const schemaVersion = 3

// Config says where the index lives.
type Config struct {
	// Path of the index file, e.g. <data_dir>/index.db; its directory is
	// created when missing.
	Path string
	// BusyTimeout is how long a write waits for another writer (another
	// process) before failing; default 10s.
	BusyTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.BusyTimeout == 0 {
		c.BusyTimeout = 10 * time.Second
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case strings.TrimSpace(c.Path) == "":
		return engine.Errorf(engine.EINVALID, "knowledge index: path is empty: set it to a file such as data/index.db")
	case c.Path == ":memory:" || strings.HasPrefix(c.Path, "file:") || strings.ContainsRune(c.Path, '?'):
		return engine.Errorf(engine.EINVALID, "knowledge index: path %q is not a plain file path: use a file such as data/index.db", c.Path)
	case c.BusyTimeout < 0:
		return engine.Errorf(engine.EINVALID, "knowledge index: busy timeout must not be negative")
	}
	return nil
}

// Index is a knowledge.Index in a SQLite file. It is safe for concurrent use.
type Index struct {
	db        *sql.DB
	path      string
	analyzer  analyzer
	vectors   slots[vectorSlot]  // per knowledge base
	postings  slots[lexicalSlot] // per knowledge base
	lastPrune atomic.Int64       // Unix seconds of the last log pruning
}

var _ knowledge.Index = (*Index)(nil)

// Open opens the index file at cfg.Path, creating it (and its directory)
// when missing.
func Open(ctx context.Context, cfg Config) (*Index, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dir := filepath.Dir(cfg.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, engine.WrapError(engine.EINVALID, err, "knowledge index: cannot create directory %s", dir)
		}
	}
	dsn := fmt.Sprintf("%s?_busy_timeout=%d&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate",
		cfg.Path, cfg.BusyTimeout.Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open knowledge index %s: %w", cfg.Path, err)
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	ix := &Index{db: db, path: cfg.Path}
	if err := ix.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return ix, nil
}

// Name implements knowledge.Index.
func (ix *Index) Name() string { return "embedded" }

// Close closes the file.
func (ix *Index) Close() error {
	if err := ix.db.Close(); err != nil {
		return fmt.Errorf("close knowledge index: %w", err)
	}
	return nil
}

// schemaChunks holds the chunks, their embedding vectors and their
// analysed fields (terms, see encodeTerms), from which each process builds
// its in-memory inverted index. seq is AUTOINCREMENT, so a deleted chunk's
// seq is never reused: the change log can name chunks by seq.
const schemaChunks = `
CREATE TABLE chunks (
	seq            INTEGER PRIMARY KEY AUTOINCREMENT,
	id             TEXT NOT NULL UNIQUE,
	knowledge_base TEXT NOT NULL,
	document_id    TEXT NOT NULL,
	document       TEXT NOT NULL,
	title          TEXT NOT NULL,
	headings       TEXT NOT NULL, -- heading path, one per line, for search
	heading_path   TEXT NOT NULL, -- heading path as a JSON array
	position       INTEGER NOT NULL,
	text           TEXT NOT NULL,
	vector         BLOB,                       -- little-endian float32, NULL without an embedding
	dims           INTEGER NOT NULL DEFAULT 0, -- length of vector, 0 without one
	terms          BLOB NOT NULL,              -- analysed title, headings and text (encodeTerms)
	version        INTEGER NOT NULL            -- the knowledge base's version that added the chunk
);
CREATE INDEX chunks_document ON chunks (knowledge_base, document_id);
CREATE INDEX chunks_dims ON chunks (knowledge_base, dims);
CREATE INDEX chunks_version ON chunks (knowledge_base, version);
`

// schemaLog is the change log. Every write raises the version of the
// knowledge bases it changes (kb_versions), which tells each process that
// its in-memory vectors and postings are stale. A process brings its
// postings up to date from the chunks added since its version and the
// chunks deleted since (chunk_log, filled by a trigger with each deleted
// chunk's terms). Log entries older than an hour are pruned; log_floor is
// the newest version pruned, and a process older than that loads the
// knowledge base again.
const schemaLog = `
CREATE TABLE chunk_log (
	id             INTEGER PRIMARY KEY,
	knowledge_base TEXT NOT NULL,
	version        INTEGER NOT NULL,
	seq            INTEGER NOT NULL,
	terms          BLOB NOT NULL,
	created        INTEGER NOT NULL -- Unix seconds
);
CREATE INDEX chunk_log_version ON chunk_log (knowledge_base, version);
CREATE INDEX chunk_log_created ON chunk_log (created);
CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
	INSERT INTO kb_versions (knowledge_base, version) VALUES (old.knowledge_base, 1)
		ON CONFLICT (knowledge_base) DO UPDATE SET version = version + 1;
	INSERT INTO chunk_log (knowledge_base, version, seq, terms, created)
		SELECT old.knowledge_base, version, old.seq, old.terms, CAST(strftime('%s', 'now') AS INTEGER)
		FROM kb_versions WHERE knowledge_base = old.knowledge_base;
END;
`

const schema = schemaChunks + `
CREATE TABLE kb_versions (
	knowledge_base TEXT PRIMARY KEY,
	version        INTEGER NOT NULL,
	log_floor      INTEGER NOT NULL DEFAULT 0
);
` + schemaLog

// migrateV1 brings a version 1 file to version 2: vectors.
const migrateV1 = `
ALTER TABLE chunks ADD COLUMN vector BLOB;
ALTER TABLE chunks ADD COLUMN dims INTEGER NOT NULL DEFAULT 0;
CREATE INDEX chunks_dims ON chunks (knowledge_base, dims);
CREATE TABLE kb_versions (knowledge_base TEXT PRIMARY KEY, version INTEGER NOT NULL);
INSERT OR IGNORE INTO kb_versions (knowledge_base, version) SELECT DISTINCT knowledge_base, 1 FROM chunks;
`

// migrateV2 brings a version 2 file to version 3: the FTS5 index gives way
// to terms (filled in by the migration in Go) and the change log.
const migrateV2 = `
DROP TRIGGER IF EXISTS chunks_ai;
DROP TRIGGER IF EXISTS chunks_ad;
DROP TRIGGER IF EXISTS chunks_au;
DROP TABLE IF EXISTS chunks_fts;
DROP INDEX IF EXISTS chunks_document;
DROP INDEX IF EXISTS chunks_dims;
ALTER TABLE chunks RENAME TO chunks_v2;
` + schemaChunks + `
INSERT INTO chunks (seq, id, knowledge_base, document_id, document, title, headings, heading_path, position, text, vector, dims, terms, version)
	SELECT seq, id, knowledge_base, document_id, document, title, headings, heading_path, position, text, vector, dims, x'', 0 FROM chunks_v2;
DROP TABLE chunks_v2;
ALTER TABLE kb_versions ADD COLUMN log_floor INTEGER NOT NULL DEFAULT 0;
UPDATE kb_versions SET version = version + 1;
` + schemaLog

// migrate creates the schema in a new file, migrates an older file and
// refuses a file written by a newer version.
func (ix *Index) migrate(ctx context.Context) error {
	tx, err := ix.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("open knowledge index %s: %w", ix.path, err)
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("open knowledge index %s: %w", ix.path, err)
	}
	var steps []string
	switch {
	case version == schemaVersion:
		return nil
	case version > schemaVersion:
		return engine.Errorf(engine.EINVALID, "knowledge index %s was written by a newer ConvoSphere (schema %d): upgrade, or delete the file and reindex", ix.path, version)
	case version == 0:
		steps = []string{schema}
	case version == 1:
		steps = []string{migrateV1, migrateV2}
	case version == 2:
		steps = []string{migrateV2}
	}
	for _, step := range steps {
		if _, err := tx.ExecContext(ctx, step); err != nil {
			return fmt.Errorf("migrate knowledge index %s from schema %d: %w", ix.path, version, err)
		}
	}
	if version > 0 {
		if err := ix.analyzeAll(ctx, tx); err != nil {
			return fmt.Errorf("migrate knowledge index %s from schema %d: %w", ix.path, version, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return fmt.Errorf("migrate knowledge index %s: %w", ix.path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate knowledge index %s: %w", ix.path, err)
	}
	return nil
}

// analyzeAll fills in the terms of chunks migrated from an older schema.
func (ix *Index) analyzeAll(ctx context.Context, tx *sql.Tx) error {
	type row struct {
		seq                   int64
		title, headings, text string
	}
	update, err := tx.PrepareContext(ctx, `UPDATE chunks SET terms = ? WHERE seq = ?`)
	if err != nil {
		return err
	}
	defer update.Close()
	for {
		rows, err := tx.QueryContext(ctx, `SELECT seq, title, headings, text FROM chunks WHERE length(terms) = 0 ORDER BY seq LIMIT 1000`)
		if err != nil {
			return err
		}
		var batch []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.seq, &r.title, &r.headings, &r.text); err != nil {
				rows.Close()
				return err
			}
			batch = append(batch, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		for _, r := range batch {
			if _, err := update.ExecContext(ctx, encodeTerms(ix.analyzer.analyzeChunk(r.title, r.headings, r.text)), r.seq); err != nil {
				return err
			}
		}
	}
}

// bumpVersion raises the version of a knowledge base, which marks its
// in-memory vectors and postings stale in every process, and returns it.
func bumpVersion(ctx context.Context, tx *sql.Tx, knowledgeBase string) (int64, error) {
	var v int64
	err := tx.QueryRowContext(ctx, `INSERT INTO kb_versions (knowledge_base, version) VALUES (?, 1)
		ON CONFLICT (knowledge_base) DO UPDATE SET version = version + 1 RETURNING version`, knowledgeBase).Scan(&v)
	return v, err
}

// logRetention is how long the change log keeps a deleted chunk.
const logRetention = time.Hour

// pruneLog deletes the change log's entries older than logRetention, at
// most once a minute per process, raising each knowledge base's log_floor
// to the newest version pruned.
func (ix *Index) pruneLog(ctx context.Context, tx *sql.Tx) error {
	now := time.Now().Unix()
	last := ix.lastPrune.Load()
	if now-last < 60 || !ix.lastPrune.CompareAndSwap(last, now) {
		return nil
	}
	cutoff := now - int64(logRetention/time.Second)
	if _, err := tx.ExecContext(ctx, `UPDATE kb_versions SET log_floor = max(log_floor,
			(SELECT MAX(version) FROM chunk_log l WHERE l.knowledge_base = kb_versions.knowledge_base AND l.created < ?))
		WHERE knowledge_base IN (SELECT knowledge_base FROM chunk_log WHERE created < ?)`, cutoff, cutoff); err != nil {
		return fmt.Errorf("prune change log: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM chunk_log WHERE created < ?`, cutoff); err != nil {
		return fmt.Errorf("prune change log: %w", err)
	}
	return nil
}

// Upsert replaces the chunks of the documents in chunks, in one transaction.
// Vectors must be finite and, within a knowledge base, of one size: the
// size of the vectors it already holds, not counting the documents being
// replaced (EINVALID with knowledge.ErrDimensions otherwise).
func (ix *Index) Upsert(ctx context.Context, chunks []knowledge.Chunk) error {
	if len(chunks) == 0 {
		return nil
	}
	type docKey struct{ kb, doc string }
	docs := make(map[docKey]bool)
	ids := make(map[string]bool, len(chunks))
	for i, c := range chunks {
		switch {
		case c.ID == "" || c.KnowledgeBase == "" || c.DocumentID == "":
			return engine.Errorf(engine.EINVALID, "chunk %d has no id, knowledge base or document id", i)
		case ids[c.ID]:
			return engine.Errorf(engine.EINVALID, "chunk id %q appears twice", c.ID)
		}
		ids[c.ID] = true
		docs[docKey{c.KnowledgeBase, c.DocumentID}] = true
	}
	dims, err := knowledge.CheckVectors(chunks)
	if err != nil {
		return err
	}

	terms := make([][]byte, len(chunks))
	for i, c := range chunks {
		terms[i] = encodeTerms(ix.analyzer.analyzeChunk(c.Title, strings.Join(c.HeadingPath, "\n"), c.Text))
	}

	tx, err := ix.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("upsert chunks: %w", err)
	}
	defer tx.Rollback()
	for d := range docs {
		if _, err := tx.ExecContext(ctx, `DELETE FROM chunks WHERE knowledge_base = ? AND document_id = ?`, d.kb, d.doc); err != nil {
			return fmt.Errorf("upsert chunks: delete old: %w", err)
		}
	}
	for kb, d := range dims {
		var have sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MIN(dims) FROM chunks WHERE knowledge_base = ? AND dims > 0`, kb).Scan(&have); err != nil {
			return fmt.Errorf("upsert chunks: check dimensions: %w", err)
		}
		if have.Valid && int(have.Int64) != d {
			return knowledge.DimensionsError(kb, int(have.Int64), d)
		}
	}
	// The new chunks carry their knowledge base's next version: every
	// process that has not seen it yet reads them.
	versions := make(map[string]int64)
	for d := range docs {
		if _, ok := versions[d.kb]; ok {
			continue
		}
		v, err := bumpVersion(ctx, tx, d.kb)
		if err != nil {
			return fmt.Errorf("upsert chunks: %w", err)
		}
		versions[d.kb] = v
	}
	// An id reused from another document moves the chunk: the delete
	// logs it against its old knowledge base.
	del, err := tx.PrepareContext(ctx, `DELETE FROM chunks WHERE id = ?`)
	if err != nil {
		return fmt.Errorf("upsert chunks: %w", err)
	}
	defer del.Close()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO chunks
		(id, knowledge_base, document_id, document, title, headings, heading_path, position, text, vector, dims, terms, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("upsert chunks: %w", err)
	}
	defer ins.Close()
	for i, c := range chunks {
		path := c.HeadingPath
		if path == nil {
			path = []string{}
		}
		pathJSON, err := json.Marshal(path)
		if err != nil {
			return fmt.Errorf("upsert chunks: %w", err)
		}
		if _, err := del.ExecContext(ctx, c.ID); err != nil {
			return fmt.Errorf("upsert chunks: %w", err)
		}
		var vector []byte
		if len(c.Vector) > 0 {
			vector = encodeVector(c.Vector)
		}
		if _, err := ins.ExecContext(ctx, c.ID, c.KnowledgeBase, c.DocumentID, c.Document, c.Title,
			strings.Join(c.HeadingPath, "\n"), string(pathJSON), c.Position, c.Text, vector, len(c.Vector),
			terms[i], versions[c.KnowledgeBase]); err != nil {
			return fmt.Errorf("upsert chunks: insert %s: %w", c.ID, err)
		}
	}
	if err := ix.pruneLog(ctx, tx); err != nil {
		return fmt.Errorf("upsert chunks: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("upsert chunks: %w", err)
	}
	return nil
}

// DeleteDocument removes all chunks of a document.
func (ix *Index) DeleteDocument(ctx context.Context, knowledgeBase, documentID string) error {
	return ix.inTx(ctx, "delete document chunks", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM chunks WHERE knowledge_base = ? AND document_id = ?`, knowledgeBase, documentID)
		return err
	})
}

// DeleteKnowledgeBase removes all chunks of a knowledge base. Its change
// log goes too: every process loads the (now empty) knowledge base again.
func (ix *Index) DeleteKnowledgeBase(ctx context.Context, knowledgeBase string) error {
	return ix.inTx(ctx, "delete knowledge base chunks", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM chunks WHERE knowledge_base = ?`, knowledgeBase); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM chunk_log WHERE knowledge_base = ?`, knowledgeBase); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE kb_versions SET log_floor = version WHERE knowledge_base = ?`, knowledgeBase)
		return err
	})
}

// inTx runs fn and prunes the change log in one transaction. The delete
// trigger raises the versions of the knowledge bases it deletes from.
func (ix *Index) inTx(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	tx, err := ix.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := ix.pruneLog(ctx, tx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// Documents lists the documents the index holds, ordered by knowledge base
// and document id.
func (ix *Index) Documents(ctx context.Context, knowledgeBase string) ([]knowledge.IndexedDocument, error) {
	q := `SELECT knowledge_base, document_id, COUNT(*) FROM chunks`
	var args []any
	if knowledgeBase != "" {
		q += ` WHERE knowledge_base = ?`
		args = append(args, knowledgeBase)
	}
	q += ` GROUP BY knowledge_base, document_id ORDER BY knowledge_base, document_id`
	rows, err := ix.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list indexed documents: %w", err)
	}
	defer rows.Close()
	docs := []knowledge.IndexedDocument{}
	for rows.Next() {
		var d knowledge.IndexedDocument
		if err := rows.Scan(&d.KnowledgeBase, &d.DocumentID, &d.Chunks); err != nil {
			return nil, fmt.Errorf("list indexed documents: %w", err)
		}
		docs = append(docs, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list indexed documents: %w", err)
	}
	return docs, nil
}

// slots holds one S per knowledge base searched so far (its in-memory
// vectors or postings), created on first use.
type slots[S any] struct {
	mu sync.Mutex
	m  map[string]*S
}

func (c *slots[S]) slot(kb string) *S {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*S)
	}
	s := c.m[kb]
	if s == nil {
		s = new(S)
		c.m[kb] = s
	}
	return s
}
