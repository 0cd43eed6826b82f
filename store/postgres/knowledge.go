package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/convosphere/convosphere/engine"
)

// CreateKnowledgeBase stores kb; ECONFLICT when the name is taken.
func (db *DB) CreateKnowledgeBase(ctx context.Context, kb *engine.KnowledgeBase) error {
	if err := kb.Normalize(now()); err != nil {
		return err
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO knowledge_bases (id, name, description, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5)`, kb.ID, kb.Name, kb.Description, kb.CreatedAt, kb.UpdatedAt)
	switch {
	case violates(err, codeUniqueViolation, "knowledge_bases_name_unique"):
		return kb.NameTakenError(err)
	case duplicate(err):
		return engine.WrapError(engine.ECONFLICT, err, "Knowledge base %q already exists.", kb.ID)
	case err != nil:
		return fmt.Errorf("create knowledge base: %w", err)
	}
	return nil
}

const knowledgeBaseColumns = `id, name, description, created_at, updated_at`

func scanKnowledgeBase(s scanner) (*engine.KnowledgeBase, error) {
	var kb engine.KnowledgeBase
	if err := s.Scan(&kb.ID, &kb.Name, &kb.Description, timeCol{&kb.CreatedAt}, timeCol{&kb.UpdatedAt}); err != nil {
		return nil, err
	}
	return &kb, nil
}

// KnowledgeBaseByName returns the knowledge base with the name.
func (db *DB) KnowledgeBaseByName(ctx context.Context, name string) (*engine.KnowledgeBase, error) {
	kb, err := scanKnowledgeBase(db.pool.QueryRow(ctx, `SELECT `+knowledgeBaseColumns+`
		FROM knowledge_bases WHERE name = $1`, name))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, notFound("Knowledge base", name)
	case err != nil:
		return nil, fmt.Errorf("get knowledge base: %w", err)
	}
	return kb, nil
}

// ListKnowledgeBases returns every knowledge base ordered by name.
func (db *DB) ListKnowledgeBases(ctx context.Context) ([]*engine.KnowledgeBase, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+knowledgeBaseColumns+` FROM knowledge_bases ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list knowledge bases: %w", err)
	}
	list, err := collect(rows, scanKnowledgeBase)
	if err != nil {
		return nil, fmt.Errorf("list knowledge bases: %w", err)
	}
	return list, nil
}

// DeleteKnowledgeBase deletes the knowledge base and its documents;
// ENOTFOUND when missing.
func (db *DB) DeleteKnowledgeBase(ctx context.Context, name string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM knowledge_bases WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("delete knowledge base: %w", err)
	}
	return affected(tag, "Knowledge base", name)
}

// SaveDocument inserts d, or replaces the document with the same
// (KnowledgeBase, Source), keeping its ID and CreatedAt; d is filled with
// the stored record. An empty Status is stored as pending. ENOTFOUND when
// the knowledge base does not exist.
func (db *DB) SaveDocument(ctx context.Context, d *engine.Document) error {
	if err := d.Normalize(now()); err != nil {
		return err
	}
	id := d.ID
	content := d.Content
	if content == nil {
		content = []byte{}
	}
	err := db.pool.QueryRow(ctx, `INSERT INTO documents (id, knowledge_base_id, source, title, content_type,
			content, sha256, size, status, error, chunks, created_at, updated_at)
		SELECT $1, k.id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 FROM knowledge_bases k WHERE k.name = $2
		ON CONFLICT (knowledge_base_id, source) DO UPDATE SET title = excluded.title,
			content_type = excluded.content_type, content = excluded.content, sha256 = excluded.sha256,
			size = excluded.size, status = excluded.status, error = excluded.error, chunks = excluded.chunks,
			updated_at = excluded.updated_at
		RETURNING id, created_at`,
		id, d.KnowledgeBase, d.Source, d.Title, d.ContentType, content, d.SHA256, d.Size, string(d.Status), d.Error,
		d.Chunks, d.CreatedAt, d.UpdatedAt,
	).Scan(&d.ID, timeCol{&d.CreatedAt})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return notFound("Knowledge base", d.KnowledgeBase)
	case duplicate(err):
		return engine.WrapError(engine.ECONFLICT, err, "Document %q already exists with another source.", id)
	case err != nil:
		return fmt.Errorf("save document: %w", err)
	}
	return nil
}

const documentColumns = `d.id, k.name, d.source, d.title, d.content_type, d.sha256, d.size, d.status, d.error,
	d.chunks, d.created_at, d.updated_at`

func scanDocument(s scanner, withContent bool) (*engine.Document, error) {
	var d engine.Document
	dest := []any{&d.ID, &d.KnowledgeBase, &d.Source, &d.Title, &d.ContentType, &d.SHA256, &d.Size, &d.Status,
		&d.Error, &d.Chunks, timeCol{&d.CreatedAt}, timeCol{&d.UpdatedAt}}
	if withContent {
		dest = append(dest, &d.Content)
	}
	if err := s.Scan(dest...); err != nil {
		return nil, err
	}
	if withContent && d.Content == nil {
		d.Content = []byte{}
	}
	return &d, nil
}

func (db *DB) document(ctx context.Context, where string, args ...any) (*engine.Document, error) {
	return scanDocument(db.pool.QueryRow(ctx, `SELECT `+documentColumns+`, d.content
		FROM documents d JOIN knowledge_bases k ON k.id = d.knowledge_base_id WHERE `+where, args...), true)
}

// DocumentByID returns the document with the id, with its content.
func (db *DB) DocumentByID(ctx context.Context, id string) (*engine.Document, error) {
	d, err := db.document(ctx, `d.id = $1`, id)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, notFound("Document", id)
	case err != nil:
		return nil, fmt.Errorf("get document: %w", err)
	}
	return d, nil
}

// DocumentBySource returns the document of the knowledge base with the
// source, with its content.
func (db *DB) DocumentBySource(ctx context.Context, kb, source string) (*engine.Document, error) {
	d, err := db.document(ctx, `k.name = $1 AND d.source = $2`, kb, source)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, engine.Errorf(engine.ENOTFOUND, "Document %q was not found in knowledge base %q.", source, kb)
	case err != nil:
		return nil, fmt.Errorf("get document: %w", err)
	}
	return d, nil
}

// ListDocuments returns the documents of the knowledge base, without their
// content, ordered by source. An unknown knowledge base has none.
func (db *DB) ListDocuments(ctx context.Context, kb string) ([]*engine.Document, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+documentColumns+`
		FROM documents d JOIN knowledge_bases k ON k.id = d.knowledge_base_id
		WHERE k.name = $1 ORDER BY d.source`, kb)
	if err != nil {
		return nil, fmt.Errorf("list documents: %w", err)
	}
	list, err := collect(rows, func(s scanner) (*engine.Document, error) { return scanDocument(s, false) })
	if err != nil {
		return nil, fmt.Errorf("list documents: %w", err)
	}
	return list, nil
}

// SetDocumentStatus records where the document is in the ingestion pipeline.
func (db *DB) SetDocumentStatus(ctx context.Context, id string, status engine.DocumentStatus, chunks int, errMsg string) error {
	tag, err := db.pool.Exec(ctx, `UPDATE documents SET status = $1, chunks = $2, error = $3, updated_at = $4
		WHERE id = $5`, string(status), chunks, errMsg, now(), id)
	if err != nil {
		return fmt.Errorf("set document status: %w", err)
	}
	return affected(tag, "Document", id)
}

// DeleteDocument deletes the document with the id; ENOTFOUND when missing.
func (db *DB) DeleteDocument(ctx context.Context, id string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM documents WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete document: %w", err)
	}
	return affected(tag, "Document", id)
}
