package web

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// The knowledge pages: the knowledge bases (/knowledge), one knowledge
// base's documents with the upload form (/knowledge/{kb}), confirmations
// before deleting, the results of an upload sent without JavaScript, and
// the search tester (/knowledge/search, knowledge_search.go). Anyone
// signed in reads and searches; admins and editors create, upload and
// delete. The upload's live progress bar (static/knowledge.js) uses the
// API's event stream (POST /api/v1/knowledge-bases/{kb}/documents with
// Accept: text/event-stream).

// knowledgePageNames are this area's templates (templates/NAME.html).
var knowledgePageNames = []string{"knowledge", "knowledge_base", "knowledge_search", "knowledge_upload", "knowledge_delete"}

// knowledgeRoutes registers this area's pages and API routes.
func (s *Server) knowledgeRoutes(pages, api *gin.RouterGroup) {

	pages.GET("/knowledge", s.showKnowledge)
	pages.GET("/knowledge/search", s.showKnowledgeSearch)
	pages.GET("/knowledge/:kb", s.showKnowledgeBase)
	editors := pages.Group("", s.requireRole(manageKnowledge, engine.RoleAdmin, engine.RoleEditor))
	editors.POST("/knowledge", s.submitKnowledgeBase)
	editors.GET("/knowledge/:kb/delete", s.confirmDeleteKnowledgeBase)
	editors.POST("/knowledge/:kb/delete", s.submitDeleteKnowledgeBase)
	editors.POST("/knowledge/:kb/upload", s.submitUpload)
	editors.GET("/knowledge/:kb/documents/:id/delete", s.confirmDeleteDocument)
	editors.POST("/knowledge/:kb/documents/:id/delete", s.submitDeleteDocument)

	api.GET("/knowledge/search", s.apiKnowledgeSearch)
}

// canManageKnowledge reports whether the signed-in user may create,
// upload and delete.
func canManageKnowledge(c *gin.Context) bool {
	p := principalOf(c)
	return p != nil && (p.User.Role == engine.RoleAdmin || p.User.Role == engine.RoleEditor)
}

// formCSRF checks the csrf field of a page's form against the session.
func formCSRF(c *gin.Context, token string) error {
	if p := principalOf(c); p != nil && equalSecret(token, p.csrf) {
		return nil
	}
	return engine.Errorf(engine.EFORBIDDEN, "The form has expired or came from another site: reload the page and try again.")
}

// parsePageForm reads an application/x-www-form-urlencoded page form and
// checks its CSRF token.
func parsePageForm(c *gin.Context) (url.Values, error) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxFormBytes)
	if err := c.Request.ParseForm(); err != nil {
		return nil, engine.Errorf(engine.EINVALID, "The form could not be read; reload the page and try again.")
	}
	form := c.Request.PostForm
	return form, formCSRF(c, form.Get("csrf"))
}

// ---- /knowledge ----

// knowledgeListPage is the data of /knowledge.
type knowledgeListPage struct {
	KnowledgeBases []knowledgeBaseRow
	Error          string // why the list could not be loaded
	CanManage      bool
	Available      bool // the console has a knowledge service
	Form           knowledgeBaseForm
	Deleted        string // the knowledge base just deleted
}

// knowledgeBaseRow is a knowledge base with its counts and latest change.
type knowledgeBaseRow struct {
	knowledgeBaseJSON
	LastUpdate time.Time
}

// knowledgeBaseForm is the create form: what was typed and what was wrong.
type knowledgeBaseForm struct {
	Name        string
	Description string
	Error       string
	Field       string // "name" or "description" when the error is about one
}

// showKnowledge serves GET /knowledge: the knowledge bases with their
// documents, chunks and last update; editors also get the create form.
func (s *Server) showKnowledge(c *gin.Context) {
	page := knowledgeListPage{}
	if name := c.Query("deleted"); name != "" {
		if (&engine.KnowledgeBase{Name: name}).Validate() == nil {
			page.Deleted = name
		}
	}
	s.renderKnowledgeList(c, http.StatusOK, page)
}

func (s *Server) renderKnowledgeList(c *gin.Context, status int, page knowledgeListPage) {
	page.CanManage = canManageKnowledge(c)
	page.Available = s.deps.Knowledge != nil
	rows, err := s.knowledgeBaseRows(c.Request.Context())
	if err != nil {
		page.Error = engine.ErrorMessage(err)
		s.log.WarnContext(c.Request.Context(), "list knowledge bases", "error", err)
	}
	page.KnowledgeBases = rows
	v := s.newView(c, "Knowledge")
	v.Nav = "knowledge"
	v.Page = page
	s.render(c, status, "knowledge", v)
}

// knowledgeBaseRows lists every knowledge base, by name, with its counts.
func (s *Server) knowledgeBaseRows(ctx context.Context) ([]knowledgeBaseRow, error) {
	kbs, err := s.deps.Store.ListKnowledgeBases(ctx)
	if err != nil {
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "The knowledge bases could not be loaded; please try again in a minute.")
	}
	assistants, err := s.deps.Store.ListAssistants(ctx)
	if err != nil {
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "The assistants could not be loaded; please try again in a minute.")
	}
	rows := make([]knowledgeBaseRow, 0, len(kbs))
	for _, kb := range kbs {
		docs, err := s.deps.Store.ListDocuments(ctx, kb.Name)
		if err != nil {
			return nil, engine.WrapError(engine.EUNAVAILABLE, err, "The documents could not be loaded; please try again in a minute.")
		}
		rows = append(rows, knowledgeBaseRow{knowledgeBaseJSON: knowledgeBaseOf(kb, docs, assistants), LastUpdate: lastUpdate(kb, docs)})
	}
	slices.SortFunc(rows, func(a, b knowledgeBaseRow) int { return cmp.Compare(a.Name, b.Name) })
	return rows, nil
}

// lastUpdate is the latest change to a knowledge base or its documents.
func lastUpdate(kb *engine.KnowledgeBase, docs []*engine.Document) time.Time {
	t := kb.UpdatedAt
	for _, d := range docs {
		if d.UpdatedAt.After(t) {
			t = d.UpdatedAt
		}
	}
	return t
}

// submitKnowledgeBase serves POST /knowledge (editors): creates a
// knowledge base from the form and goes to its page, or shows the form
// again with what was wrong.
func (s *Server) submitKnowledgeBase(c *gin.Context) {
	form, err := parsePageForm(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	f := knowledgeBaseForm{Name: strings.TrimSpace(form.Get("name")), Description: strings.TrimSpace(form.Get("description"))}
	kb, err := s.newKnowledgeBase(c.Request.Context(), f.Name, f.Description, principalOf(c).User)
	if err != nil {
		status, detail := s.describe(c, err, "")
		f.Error = detail.Message
		switch derr := checkDescription(f.Description); {
		case derr != nil && engine.ErrorMessage(derr) == detail.Message:
			f.Field = "description"
		case detail.Code == engine.EINVALID || detail.Code == engine.ECONFLICT:
			f.Field = "name"
		}
		s.renderKnowledgeList(c, status, knowledgeListPage{Form: f})
		return
	}
	redirect(c, http.StatusSeeOther, "/knowledge/"+url.PathEscape(kb.Name)+"?created=1")
}

// ---- /knowledge/{kb} ----

// knowledgeBasePage is the data of /knowledge/{kb}.
type knowledgeBasePage struct {
	KB             knowledgeBaseJSON
	LastUpdate     time.Time
	Documents      []documentRow
	CanManage      bool
	Available      bool
	Created        bool // just created: say what to do next
	Deleted        bool // a document was just deleted
	MaxUploadBytes string
	MaxUploadFiles int
	Accept         string // the file input's accept attribute
}

// documentRow is a document as the knowledge base page lists it.
type documentRow struct {
	*engine.Document
	Size string // human-readable
}

// uploadAccept lists the file types the knowledge service reads, for the
// file input (the server decides by content, not by this list).
const uploadAccept = ".md,.markdown,.txt,.text,.html,.htm,.pdf,.docx,text/markdown,text/plain,text/html,application/pdf," +
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document"

// showKnowledgeBase serves GET /knowledge/{kb}: its documents with their
// status, chunks, size, last update and, for failed ones, why; editors
// also get the upload form and the delete links.
func (s *Server) showKnowledgeBase(c *gin.Context) {
	ctx := c.Request.Context()
	name, err := kbName(c)
	if err != nil {
		s.fail(c, notFoundError(c.Request.URL.Path))
		return
	}
	kb, err := s.knowledgeBase(ctx, name)
	if err != nil {
		s.fail(c, err)
		return
	}
	docs, err := s.deps.Store.ListDocuments(ctx, name)
	if err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The documents could not be loaded; please try again in a minute."))
		return
	}
	assistants, err := s.deps.Store.ListAssistants(ctx)
	if err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The assistants could not be loaded; please try again in a minute."))
		return
	}
	page := knowledgeBasePage{
		KB: knowledgeBaseOf(kb, docs, assistants), LastUpdate: lastUpdate(kb, docs),
		CanManage: canManageKnowledge(c), Available: s.deps.Knowledge != nil,
		Created: c.Query("created") != "", Deleted: c.Query("deleted") != "",
		MaxUploadBytes: humanBytes(s.cfg.MaxUploadBytes), MaxUploadFiles: s.cfg.MaxUploadFiles, Accept: uploadAccept,
	}
	for _, d := range docs {
		page.Documents = append(page.Documents, documentRow{Document: d, Size: humanBytes(d.Size)})
	}
	v := s.newView(c, kb.Name+" · Knowledge")
	v.Nav = "knowledge"
	v.Page = page
	s.render(c, http.StatusOK, "knowledge_base", v)
}

// humanBytes writes a size for people: "812 bytes", "1.5 KB", "20 MB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		if n == 1 {
			return "1 byte"
		}
		return fmt.Sprintf("%d bytes", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	s := fmt.Sprintf("%.1f", v)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + []string{"KB", "MB", "GB", "TB"}[exp]
}

// ---- uploads without JavaScript ----

// uploadResultPage is the data of the page an upload form posted without
// JavaScript lands on.
type uploadResultPage struct {
	KnowledgeBase string
	Results       []uploadResult
	Counts        uploadCounts
	Error         string // the whole upload was refused: nothing was stored
}

// submitUpload serves POST /knowledge/{kb}/upload (editors), the upload
// form sent without JavaScript: the same as the API's upload, answered
// with a page listing each file's result.
func (s *Server) submitUpload(c *gin.Context) {
	ctx := c.Request.Context()
	name, svc, ok := s.kbRequest(c)
	if !ok {
		return
	}
	if _, err := s.knowledgeBase(ctx, name); err != nil {
		s.fail(c, err)
		return
	}
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})
	page := uploadResultPage{KnowledgeBase: name}
	files, fields, err := s.readUpload(c)
	if err == nil {
		err = formCSRF(c, fields.Get("csrf"))
	}
	if err != nil {
		if engine.ErrorCode(err) == engine.EFORBIDDEN {
			s.fail(c, err)
			return
		}
		status, detail := s.describe(c, err, "")
		page.Error = detail.Message
		s.renderUploadResult(c, status, page)
		return
	}
	resp, err := s.ingestFiles(c, svc, name, false, files, nil)
	page.Results = resp.Documents
	for _, r := range resp.Documents {
		page.Counts.add(r.Status)
	}
	status := http.StatusOK
	if err != nil {
		var detail errorDetail
		status, detail = s.describe(c, err, "")
		page.Error = detail.Message
	}
	s.renderUploadResult(c, status, page)
}

func (s *Server) renderUploadResult(c *gin.Context, status int, page uploadResultPage) {
	v := s.newView(c, "Upload to "+page.KnowledgeBase)
	v.Nav = "knowledge"
	v.Page = page
	s.render(c, status, "knowledge_upload", v)
}

// ---- deleting, after a confirmation ----

// deletePage asks to confirm a deletion.
type deletePage struct {
	Kind          string // "knowledge base" or "document"
	Name          string
	KnowledgeBase string
	Consequence   string
	Action        string // where the form posts
	Cancel        string // where "Cancel" goes
}

// confirmDeleteKnowledgeBase serves GET /knowledge/{kb}/delete (editors).
func (s *Server) confirmDeleteKnowledgeBase(c *gin.Context) {
	ctx := c.Request.Context()
	name, err := kbName(c)
	if err != nil {
		s.fail(c, notFoundError(c.Request.URL.Path))
		return
	}
	kb, err := s.knowledgeBase(ctx, name)
	if err != nil {
		s.fail(c, err)
		return
	}
	docs, err := s.deps.Store.ListDocuments(ctx, name)
	if err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The documents could not be loaded; please try again in a minute."))
		return
	}
	assistants, _ := s.deps.Store.ListAssistants(ctx)
	j := knowledgeBaseOf(kb, docs, assistants)
	consequence := fmt.Sprintf("Its %d document%s and %d chunk%s are deleted for good.", j.Documents, plural(j.Documents), j.Chunks, plural(j.Chunks))
	if len(j.Assistants) > 0 {
		consequence += fmt.Sprintf(" The assistants that search it (%s) will find nothing in it.", strings.Join(j.Assistants, ", "))
	}
	s.renderDelete(c, deletePage{Kind: "knowledge base", Name: name, KnowledgeBase: name, Consequence: consequence,
		Action: "/knowledge/" + url.PathEscape(name) + "/delete", Cancel: "/knowledge/" + url.PathEscape(name)})
}

// submitDeleteKnowledgeBase serves POST /knowledge/{kb}/delete (editors).
func (s *Server) submitDeleteKnowledgeBase(c *gin.Context) {
	name, svc, ok := s.kbRequest(c)
	if !ok {
		return
	}
	if _, err := parsePageForm(c); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.removeKnowledgeBase(c.Request.Context(), svc, name, principalOf(c).User); err != nil {
		s.fail(c, err)
		return
	}
	redirect(c, http.StatusSeeOther, "/knowledge?deleted="+url.QueryEscape(name))
}

// confirmDeleteDocument serves GET /knowledge/{kb}/documents/{id}/delete (editors).
func (s *Server) confirmDeleteDocument(c *gin.Context) {
	name, err := kbName(c)
	if err != nil {
		s.fail(c, notFoundError(c.Request.URL.Path))
		return
	}
	doc, err := s.documentOf(c.Request.Context(), name, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	base := "/knowledge/" + url.PathEscape(name)
	s.renderDelete(c, deletePage{Kind: "document", Name: doc.Source, KnowledgeBase: name,
		Consequence: fmt.Sprintf("The document and its %d chunk%s are deleted for good; assistants stop finding them at once.", doc.Chunks, plural(doc.Chunks)),
		Action:      base + "/documents/" + url.PathEscape(doc.ID) + "/delete", Cancel: base})
}

// submitDeleteDocument serves POST /knowledge/{kb}/documents/{id}/delete (editors).
func (s *Server) submitDeleteDocument(c *gin.Context) {
	name, svc, ok := s.kbRequest(c)
	if !ok {
		return
	}
	if _, err := parsePageForm(c); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.removeDocument(c.Request.Context(), svc, name, c.Param("id"), principalOf(c).User); err != nil {
		s.fail(c, err)
		return
	}
	redirect(c, http.StatusSeeOther, "/knowledge/"+url.PathEscape(name)+"?deleted=1")
}

func (s *Server) renderDelete(c *gin.Context, page deletePage) {
	v := s.newView(c, "Delete "+page.Name)
	v.Nav = "knowledge"
	v.Page = page
	s.render(c, http.StatusOK, "knowledge_delete", v)
}
