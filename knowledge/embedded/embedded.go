// Package embedded is the knowledge index that needs no server: chunks and
// an FTS5 full-text index (BM25 ranking, Porter stemming) in a SQLite file
// of its own, next to the data store. Several processes may open the same
// file (the console and the bot): SQLite's write-ahead log lets readers go
// on while one writer writes.
package embedded

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
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

// schemaVersion is stored in PRAGMA user_version.
const schemaVersion = 1

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
	db   *sql.DB
	path string
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
	text           TEXT NOT NULL
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
`

// migrate creates the schema in a new file and refuses a file written by a
// newer version.
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
	switch {
	case version == schemaVersion:
		return nil
	case version > schemaVersion:
		return engine.Errorf(engine.EINVALID, "knowledge index %s was written by a newer ConvoSphere (schema %d): upgrade, or delete the file and reindex", ix.path, version)
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create knowledge index schema: %w", err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return fmt.Errorf("create knowledge index schema: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create knowledge index schema: %w", err)
	}
	return nil
}

// Upsert replaces the chunks of the documents in chunks, in one transaction.
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
	del, err := tx.PrepareContext(ctx, `DELETE FROM chunks WHERE id = ?`)
	if err != nil {
		return fmt.Errorf("upsert chunks: %w", err)
	}
	defer del.Close()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO chunks
		(id, knowledge_base, document_id, document, title, headings, heading_path, position, text)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("upsert chunks: %w", err)
	}
	defer ins.Close()
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
		if _, err := del.ExecContext(ctx, c.ID); err != nil {
			return fmt.Errorf("upsert chunks: %w", err)
		}
		if _, err := ins.ExecContext(ctx, c.ID, c.KnowledgeBase, c.DocumentID, c.Document, c.Title,
			strings.Join(c.HeadingPath, "\n"), string(pathJSON), c.Position, c.Text); err != nil {
			return fmt.Errorf("upsert chunks: insert %s: %w", c.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("upsert chunks: %w", err)
	}
	return nil
}

// DeleteDocument removes all chunks of a document.
func (ix *Index) DeleteDocument(ctx context.Context, knowledgeBase, documentID string) error {
	if _, err := ix.db.ExecContext(ctx, `DELETE FROM chunks WHERE knowledge_base = ? AND document_id = ?`,
		knowledgeBase, documentID); err != nil {
		return fmt.Errorf("delete document chunks: %w", err)
	}
	return nil
}

// DeleteKnowledgeBase removes all chunks of a knowledge base.
func (ix *Index) DeleteKnowledgeBase(ctx context.Context, knowledgeBase string) error {
	if _, err := ix.db.ExecContext(ctx, `DELETE FROM chunks WHERE knowledge_base = ?`, knowledgeBase); err != nil {
		return fmt.Errorf("delete knowledge base chunks: %w", err)
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

// Search ranks chunks by BM25 over the title, headings and text columns and
// returns the best first. The score is s / (s + 10) where s is the BM25
// score (SQLite's bm25() negated): in (0, 1), 0.5 for s = 10. BM25 weighs
// rare terms more, so in a tiny index, where every term is common, scores
// are close to 0.
func (ix *Index) Search(ctx context.Context, q knowledge.Query) ([]engine.Passage, error) {
	passages := []engine.Passage{}
	match := matchQuery(q.Text)
	if match == "" {
		return passages, nil
	}
	limit := q.Limit
	if limit <= 0 {
		limit = knowledge.DefaultSearchLimit
	}
	query := fmt.Sprintf(`SELECT c.id, c.knowledge_base, c.document_id, c.document, c.title, c.heading_path,
			c.position, c.text, bm25(chunks_fts, %g, %g, %g) AS rank
		FROM chunks_fts JOIN chunks c ON c.seq = chunks_fts.rowid
		WHERE chunks_fts MATCH ?`, weightTitle, weightHeadings, weightText)
	args := []any{match}
	if len(q.KnowledgeBases) > 0 {
		query += ` AND c.knowledge_base IN (?` + strings.Repeat(`, ?`, len(q.KnowledgeBases)-1) + `)`
		for _, kb := range q.KnowledgeBases {
			args = append(args, kb)
		}
	}
	query += ` ORDER BY rank, c.seq LIMIT ?`
	args = append(args, limit)

	rows, err := ix.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("search knowledge index: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			p        engine.Passage
			pathJSON string
			rank     float64
		)
		if err := rows.Scan(&p.ID, &p.KnowledgeBase, &p.DocumentID, &p.Document, &p.Title, &pathJSON,
			&p.Position, &p.Text, &rank); err != nil {
			return nil, fmt.Errorf("search knowledge index: %w", err)
		}
		if err := json.Unmarshal([]byte(pathJSON), &p.HeadingPath); err != nil {
			return nil, fmt.Errorf("search knowledge index: heading path of %s: %w", p.ID, err)
		}
		if len(p.HeadingPath) == 0 {
			p.HeadingPath = nil
		}
		p.Score = score(rank)
		if p.Score < q.MinScore {
			break // rows come best first
		}
		passages = append(passages, p)
	}
	if err := rows.Err(); err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, fmt.Errorf("search knowledge index: %w", err)
	}
	return passages, nil
}

// score turns SQLite's bm25() (lower is better, negative) into a score in
// (0, 1), higher is better.
func score(rank float64) float64 {
	s := -rank
	if s <= 0 {
		// bm25() is negative for every match; keep a match above zero.
		return 1e-9
	}
	return s / (s + scoreHalf)
}
