// Package embedded is the knowledge index that needs no server: chunks, an
// FTS5 full-text index (BM25 ranking, Porter stemming) and the chunks'
// embedding vectors in a SQLite file of its own, next to the data store.
// Several processes may open the same file (the console and the bot):
// SQLite's write-ahead log lets readers go on while one writer writes.
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
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
)

// Column weights of bm25(): a match in a heading says a little more about a
// chunk than one in its text. The title, and the outer headings, are shared
// by every chunk of a document, so heavy weights there would rank a
// document's shortest chunks first whatever their text says; modest weights
// let the text decide between chunks of one document.
const (
	weightTitle    = 1.0
	weightHeadings = 1.5
	weightText     = 1.0
)

// scoreHalf is the BM25 score that maps to 0.5: score = s / (s + scoreHalf).
const scoreHalf = 10.0

// schemaVersion is stored in PRAGMA user_version. Version 2 added the
// vector and dims columns and the kb_versions table; version 1 files are
// migrated in place (their chunks have no vectors: a reindex embeds them).
const schemaVersion = 2

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
	db      *sql.DB
	path    string
	vectors vectorCache
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

const schema = `
CREATE TABLE IF NOT EXISTS chunks (
	seq            INTEGER PRIMARY KEY,
	id             TEXT NOT NULL UNIQUE,
	knowledge_base TEXT NOT NULL,
	document_id    TEXT NOT NULL,
	document       TEXT NOT NULL,
	title          TEXT NOT NULL,
	headings       TEXT NOT NULL, -- heading path, one per line, for search
	heading_path   TEXT NOT NULL, -- heading path as a JSON array
	position       INTEGER NOT NULL,
	text           TEXT NOT NULL,
	vector         BLOB,                      -- little-endian float32, NULL without an embedding
	dims           INTEGER NOT NULL DEFAULT 0 -- length of vector, 0 without one
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks (knowledge_base, document_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5 (
	title, headings, text,
	content = 'chunks', content_rowid = 'seq',
	tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
	INSERT INTO chunks_fts (rowid, title, headings, text) VALUES (new.seq, new.title, new.headings, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
	INSERT INTO chunks_fts (chunks_fts, rowid, title, headings, text) VALUES ('delete', old.seq, old.title, old.headings, old.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_au AFTER UPDATE ON chunks BEGIN
	INSERT INTO chunks_fts (chunks_fts, rowid, title, headings, text) VALUES ('delete', old.seq, old.title, old.headings, old.text);
	INSERT INTO chunks_fts (rowid, title, headings, text) VALUES (new.seq, new.title, new.headings, new.text);
END;
` + schemaVectors

// schemaVectors is what version 2 added: the dims index, which finds the
// dimensions of a knowledge base's vectors and its vectors quickly, and a
// version per knowledge base, raised by every write, which tells each
// process when its in-memory vectors are stale.
const schemaVectors = `
CREATE INDEX IF NOT EXISTS chunks_dims ON chunks (knowledge_base, dims);
CREATE TABLE IF NOT EXISTS kb_versions (
	knowledge_base TEXT PRIMARY KEY,
	version        INTEGER NOT NULL
);
`

// migrateV1 brings a version 1 file to version 2.
const migrateV1 = `
ALTER TABLE chunks ADD COLUMN vector BLOB;
ALTER TABLE chunks ADD COLUMN dims INTEGER NOT NULL DEFAULT 0;
` + schemaVectors + `
INSERT OR IGNORE INTO kb_versions (knowledge_base, version) SELECT DISTINCT knowledge_base, 1 FROM chunks;
`

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
	steps := schema
	switch {
	case version == schemaVersion:
		return nil
	case version > schemaVersion:
		return engine.Errorf(engine.EINVALID, "knowledge index %s was written by a newer ConvoSphere (schema %d): upgrade, or delete the file and reindex", ix.path, version)
	case version == 1:
		steps = migrateV1
	}
	if _, err := tx.ExecContext(ctx, steps); err != nil {
		return fmt.Errorf("migrate knowledge index %s from schema %d: %w", ix.path, version, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return fmt.Errorf("migrate knowledge index %s: %w", ix.path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate knowledge index %s: %w", ix.path, err)
	}
	return nil
}

// bumpVersion marks the in-memory vectors of a knowledge base stale in
// every process.
func bumpVersion(ctx context.Context, tx *sql.Tx, knowledgeBase string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO kb_versions (knowledge_base, version) VALUES (?, 1)
		ON CONFLICT (knowledge_base) DO UPDATE SET version = version + 1`, knowledgeBase)
	return err
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

	tx, err := ix.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("upsert chunks: %w", err)
	}
	defer tx.Rollback()
	kbs := make(map[string]bool)
	for d := range docs {
		kbs[d.kb] = true
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
	del, err := tx.PrepareContext(ctx, `DELETE FROM chunks WHERE id = ?`)
	if err != nil {
		return fmt.Errorf("upsert chunks: %w", err)
	}
	defer del.Close()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO chunks
		(id, knowledge_base, document_id, document, title, headings, heading_path, position, text, vector, dims)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("upsert chunks: %w", err)
	}
	defer ins.Close()
	moved := false
	for _, c := range chunks {
		path := c.HeadingPath
		if path == nil {
			path = []string{}
		}
		pathJSON, err := json.Marshal(path)
		if err != nil {
			return fmt.Errorf("upsert chunks: %w", err)
		}
		// An id reused from another document moves the chunk.
		res, err := del.ExecContext(ctx, c.ID)
		if err != nil {
			return fmt.Errorf("upsert chunks: %w", err)
		}
		if n, err := res.RowsAffected(); err == nil && n > 0 {
			moved = true
		}
		var vector []byte
		if len(c.Vector) > 0 {
			vector = encodeVector(c.Vector)
		}
		if _, err := ins.ExecContext(ctx, c.ID, c.KnowledgeBase, c.DocumentID, c.Document, c.Title,
			strings.Join(c.HeadingPath, "\n"), string(pathJSON), c.Position, c.Text, vector, len(c.Vector)); err != nil {
			return fmt.Errorf("upsert chunks: insert %s: %w", c.ID, err)
		}
	}
	if moved {
		// The moved chunk may have left another knowledge base: rare
		// enough to mark every knowledge base stale.
		if _, err := tx.ExecContext(ctx, `UPDATE kb_versions SET version = version + 1`); err != nil {
			return fmt.Errorf("upsert chunks: %w", err)
		}
	}
	for kb := range kbs {
		if err := bumpVersion(ctx, tx, kb); err != nil {
			return fmt.Errorf("upsert chunks: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("upsert chunks: %w", err)
	}
	return nil
}

// DeleteDocument removes all chunks of a document.
func (ix *Index) DeleteDocument(ctx context.Context, knowledgeBase, documentID string) error {
	return ix.deleteWhere(ctx, "delete document chunks", knowledgeBase,
		`DELETE FROM chunks WHERE knowledge_base = ? AND document_id = ?`, knowledgeBase, documentID)
}

// DeleteKnowledgeBase removes all chunks of a knowledge base.
func (ix *Index) DeleteKnowledgeBase(ctx context.Context, knowledgeBase string) error {
	return ix.deleteWhere(ctx, "delete knowledge base chunks", knowledgeBase,
		`DELETE FROM chunks WHERE knowledge_base = ?`, knowledgeBase)
}

// deleteWhere runs a delete from the chunks of knowledgeBase and marks its
// vectors stale, in one transaction.
func (ix *Index) deleteWhere(ctx context.Context, op, knowledgeBase, query string, args ...any) error {
	tx, err := ix.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		if err := bumpVersion(ctx, tx, knowledgeBase); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
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
