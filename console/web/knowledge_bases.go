package web

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// The knowledge-base API. Anyone signed in may list and search knowledge
// bases; creating, uploading and deleting need the admin or editor role
// (routes.go). Knowledge bases and document records are read from the
// store; ingestion, search and deletion go through Deps.Knowledge, which
// keeps the index in step.

// manageKnowledge is what the editor routes are refused as, for viewers.
const manageKnowledge = "Managing knowledge bases"

// knowledgeService returns Deps.Knowledge, or an EUNAVAILABLE error when
// the console runs without one.
func (s *Server) knowledgeService() (Knowledge, error) {
	if s.deps.Knowledge == nil {
		return nil, engine.Errorf(engine.EUNAVAILABLE, "Knowledge bases are not available on this console: it runs without a knowledge service.")
	}
	return s.deps.Knowledge, nil
}

// kbRequest reads the :kb path parameter and the knowledge service of a
// knowledge-base route; on failure it has answered with the error.
func (s *Server) kbRequest(c *gin.Context) (string, Knowledge, bool) {
	name, err := kbName(c)
	if err == nil {
		var svc Knowledge
		if svc, err = s.knowledgeService(); err == nil {
			return name, svc, true
		}
	}
	s.fail(c, err)
	return "", nil, false
}

// kbName returns the :kb path parameter when it is a valid name.
func kbName(c *gin.Context) (string, error) {
	kb := engine.KnowledgeBase{Name: c.Param("kb")}
	if err := kb.Validate(); err != nil {
		return "", err
	}
	return kb.Name, nil
}

// knowledgeBase loads a knowledge base, with an ENOTFOUND error that names it.
func (s *Server) knowledgeBase(ctx context.Context, name string) (*engine.KnowledgeBase, error) {
	kb, err := s.deps.Store.KnowledgeBaseByName(ctx, name)
	switch {
	case engine.IsNotFound(err):
		return nil, engine.Errorf(engine.ENOTFOUND, "Knowledge base %q does not exist: upload documents to it to create it, or check the name.", name)
	case err != nil:
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "The knowledge base could not be loaded; please try again in a minute.")
	}
	return kb, nil
}

// knowledgeBaseJSON is a knowledge base as the API lists it.
type knowledgeBaseJSON struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Documents   int       `json:"documents"` // every stored document, whatever its status
	Indexed     int       `json:"indexed"`
	Failed      int       `json:"failed"`
	Chunks      int       `json:"chunks"`
	Assistants  []string  `json:"assistants"` // the assistants bound to it, the only ones that search it
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// listKnowledgeBases answers GET /api/v1/knowledge-bases:
// {"knowledge_bases": [...]}, ordered by name.
func (s *Server) listKnowledgeBases(c *gin.Context) {
	ctx := c.Request.Context()
	kbs, err := s.deps.Store.ListKnowledgeBases(ctx)
	if err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The knowledge bases could not be loaded; please try again in a minute."))
		return
	}
	assistants, err := s.deps.Store.ListAssistants(ctx)
	if err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The assistants could not be loaded; please try again in a minute."))
		return
	}
	out := make([]knowledgeBaseJSON, 0, len(kbs))
	for _, kb := range kbs {
		docs, err := s.deps.Store.ListDocuments(ctx, kb.Name)
		if err != nil {
			s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The documents could not be loaded; please try again in a minute."))
			return
		}
		out = append(out, knowledgeBaseOf(kb, docs, assistants))
	}
	slices.SortFunc(out, func(a, b knowledgeBaseJSON) int { return cmp.Compare(a.Name, b.Name) })
	s.writeJSON(c, http.StatusOK, map[string]any{"knowledge_bases": out})
}

func knowledgeBaseOf(kb *engine.KnowledgeBase, docs []*engine.Document, assistants []*engine.Assistant) knowledgeBaseJSON {
	j := knowledgeBaseJSON{
		Name: kb.Name, Description: kb.Description, Documents: len(docs), Assistants: []string{},
		CreatedAt: kb.CreatedAt, UpdatedAt: kb.UpdatedAt,
	}
	for _, d := range docs {
		switch d.Status {
		case engine.DocumentIndexed:
			j.Indexed++
			j.Chunks += d.Chunks
		case engine.DocumentFailed:
			j.Failed++
		}
	}
	for _, a := range assistants {
		if slices.Contains(a.KnowledgeBases, kb.Name) {
			j.Assistants = append(j.Assistants, a.Name)
		}
	}
	return j
}

// createKnowledgeBaseRequest is the body of POST /api/v1/knowledge-bases.
type createKnowledgeBaseRequest struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

var createKnowledgeBaseForm = jsonForm{
	Example: `{"name": "handbook"}`,
	Fields:  `"name" and "description"`,
	Hint:    `send a JSON object with "name" and optionally "description"`,
}

// maxDescriptionBytes bounds a knowledge base's description.
const maxDescriptionBytes = 1024

// createKnowledgeBase answers POST /api/v1/knowledge-bases with 201 and
// the new knowledge base, or 409 when the name is taken. Uploading
// documents creates a missing knowledge base too; this creates an empty one
// with a description.
func (s *Server) createKnowledgeBase(c *gin.Context) {
	raw, err := s.readJSONBody(c, 16<<10)
	if err != nil {
		s.fail(c, err)
		return
	}
	var req createKnowledgeBaseRequest
	if err := decodeJSONBody(raw, &req, createKnowledgeBaseForm); err != nil {
		s.fail(c, err)
		return
	}
	kb, err := s.newKnowledgeBase(c.Request.Context(), req.Name, req.Description, principalOf(c).User)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeJSON(c, http.StatusCreated, knowledgeBaseOf(kb, nil, nil))
}

// reservedKnowledgeBaseNames cannot be given to a new knowledge base: the
// console's pages use them (/knowledge/search is the search tester).
var reservedKnowledgeBaseNames = []string{"search"}

func checkReservedName(name string) error {
	if slices.Contains(reservedKnowledgeBaseNames, name) {
		return engine.Errorf(engine.EINVALID, "Knowledge base name %q is reserved by the console (its page would be /knowledge/%s): pick another name.", name, name)
	}
	return nil
}

// checkDescription checks a knowledge base's description.
func checkDescription(d string) error {
	if len(d) > maxDescriptionBytes || hasControl(d) {
		return engine.Errorf(engine.EINVALID, "The description must be at most %d bytes with no control characters.", maxDescriptionBytes)
	}
	return nil
}

// newKnowledgeBase checks and creates an empty knowledge base; by created it.
func (s *Server) newKnowledgeBase(ctx context.Context, name, description string, by *engine.User) (*engine.KnowledgeBase, error) {
	kb := &engine.KnowledgeBase{Name: name, Description: description}
	if err := kb.Validate(); err != nil {
		return nil, err
	}
	if err := checkReservedName(kb.Name); err != nil {
		return nil, err
	}
	if err := checkDescription(kb.Description); err != nil {
		return nil, err
	}
	err := s.deps.Store.CreateKnowledgeBase(ctx, kb)
	switch {
	case engine.ErrorCode(err) == engine.ECONFLICT:
		return nil, engine.Errorf(engine.ECONFLICT, "Knowledge base %q already exists: pick another name, or upload documents to it.", kb.Name)
	case err != nil:
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "The knowledge base could not be created; please try again in a minute.")
	}
	s.log.InfoContext(ctx, "knowledge base created", "knowledge_base", kb.Name, "user_id", by.ID)
	return kb, nil
}

// deleteKnowledgeBase answers DELETE /api/v1/knowledge-bases/{kb} with 204:
// the knowledge base, its documents and their chunks are gone. Assistants
// bound to it keep the name and find nothing in it.
func (s *Server) deleteKnowledgeBase(c *gin.Context) {
	ctx := c.Request.Context()
	name, svc, ok := s.kbRequest(c)
	if !ok {
		return
	}
	if err := s.removeKnowledgeBase(ctx, svc, name, principalOf(c).User); err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusNoContent)
}

// removeKnowledgeBase deletes a knowledge base that exists, with its
// documents and their chunks; by deleted it.
func (s *Server) removeKnowledgeBase(ctx context.Context, svc Knowledge, name string, by *engine.User) error {
	if _, err := s.knowledgeBase(ctx, name); err != nil {
		return err
	}
	if err := svc.DeleteKnowledgeBase(ctx, name); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "knowledge base deleted", "knowledge_base", name, "user_id", by.ID)
	return nil
}

// documentJSON is a document as the API lists it. Error is the reason a
// failed document did not index.
type documentJSON struct {
	ID          string                `json:"id"`
	Name        string                `json:"name"`
	Title       string                `json:"title"`
	ContentType string                `json:"content_type"`
	Size        int64                 `json:"size"`
	SHA256      string                `json:"sha256"`
	Status      engine.DocumentStatus `json:"status"`
	Chunks      int                   `json:"chunks"`
	Error       string                `json:"error,omitempty"`
	CreatedAt   time.Time             `json:"created_at"`
	UpdatedAt   time.Time             `json:"updated_at"`
}

// listDocuments answers GET /api/v1/knowledge-bases/{kb}/documents:
// {"knowledge_base": "…", "documents": [...]}, ordered by name.
func (s *Server) listDocuments(c *gin.Context) {
	ctx := c.Request.Context()
	name, err := kbName(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if _, err := s.knowledgeBase(ctx, name); err != nil {
		s.fail(c, err)
		return
	}
	docs, err := s.deps.Store.ListDocuments(ctx, name)
	if err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The documents could not be loaded; please try again in a minute."))
		return
	}
	out := make([]documentJSON, 0, len(docs))
	for _, d := range docs {
		out = append(out, documentJSON{
			ID: d.ID, Name: d.Source, Title: d.Title, ContentType: d.ContentType, Size: d.Size, SHA256: d.SHA256,
			Status: d.Status, Chunks: d.Chunks, Error: d.Error, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		})
	}
	s.writeJSON(c, http.StatusOK, map[string]any{"knowledge_base": name, "documents": out})
}

// deleteDocument answers DELETE /api/v1/knowledge-bases/{kb}/documents/{id}
// with 204: the document and all its chunks are gone.
func (s *Server) deleteDocument(c *gin.Context) {
	ctx := c.Request.Context()
	name, svc, ok := s.kbRequest(c)
	if !ok {
		return
	}
	if err := s.removeDocument(ctx, svc, name, c.Param("id"), principalOf(c).User); err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusNoContent)
}

// documentOf loads document id of knowledge base kb, with an ENOTFOUND
// error when it is missing or belongs to another knowledge base.
func (s *Server) documentOf(ctx context.Context, kb, id string) (*engine.Document, error) {
	notFound := engine.Errorf(engine.ENOTFOUND, "Knowledge base %q has no document %q: list its documents for their ids.", kb, id)
	doc, err := s.deps.Store.DocumentByID(ctx, id)
	switch {
	case engine.IsNotFound(err):
		return nil, notFound
	case err != nil:
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "The document could not be loaded; please try again in a minute.")
	case doc.KnowledgeBase != kb:
		return nil, notFound
	}
	doc.Content = nil
	return doc, nil
}

// removeDocument deletes document id of knowledge base kb and all its
// chunks; by deleted it.
func (s *Server) removeDocument(ctx context.Context, svc Knowledge, kb, id string, by *engine.User) error {
	if _, err := s.documentOf(ctx, kb, id); err != nil {
		return err
	}
	if err := svc.DeleteDocument(ctx, id); err != nil {
		if engine.IsNotFound(err) {
			err = engine.Errorf(engine.ENOTFOUND, "Knowledge base %q has no document %q: list its documents for their ids.", kb, id)
		}
		return err
	}
	s.log.InfoContext(ctx, "document deleted", "knowledge_base", kb, "document_id", id, "user_id", by.ID)
	return nil
}

// readJSONBody reads a JSON request body of at most limit bytes and checks
// that it is UTF-8 (encoding/json would silently replace bad bytes).
func (s *Server) readJSONBody(c *gin.Context, limit int64) ([]byte, error) {
	if err := checkJSONContentType(c.GetHeader("Content-Type")); err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, engine.Errorf(engine.ETOOLARGE, "The request body is over %d bytes: send a smaller one.", limit)
		}
		return nil, engine.WrapError(engine.EINVALID, err, "The request body could not be read; send it again.")
	}
	if !utf8.Valid(raw) {
		return nil, engine.Errorf(engine.EINVALID, "The request body is not valid UTF-8 (first bad byte at offset %d): send the JSON as UTF-8.", firstInvalidUTF8(raw))
	}
	return raw, nil
}

// hasControl reports whether s holds a control character (NUL included).
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}
