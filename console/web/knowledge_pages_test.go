package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/chromedp/chromedp"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
	"github.com/convosphere/convosphere/knowledge/embedded"
	"github.com/convosphere/convosphere/knowledge/indextest"
)

// knowledgeXSS is a payload that would run if any page let it through unescaped.
const knowledgeXSS = `<script>alert("x")</script><img src=x onerror=alert(1)>`

// postKnowledgeForm posts an urlencoded form as a signed-in browser: the
// session cookie only (the CSRF token must be in the form).
func (e *testEnv) postKnowledgeForm(c *client, path string, form url.Values) *httptest.ResponseRecorder {
	e.tb.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c != nil && c.session != nil {
		r.AddCookie(c.session)
	}
	return e.serve(r)
}

// postKnowledgeUpload posts a multipart upload form as a signed-in browser.
func (e *testEnv) postKnowledgeUpload(c *client, kb string, parts ...part) *httptest.ResponseRecorder {
	e.tb.Helper()
	body, ct := multipartBody(e.tb, parts...)
	r := httptest.NewRequest(http.MethodPost, "/knowledge/"+kb+"/upload", body)
	r.Header.Set("Content-Type", ct)
	if c != nil && c.session != nil {
		r.AddCookie(c.session)
	}
	return e.serve(r)
}

// mustKnowledgePage gets a page that must answer status, and parses it.
func (e *testEnv) mustKnowledgePage(path string, c *client, status int) *goquery.Document {
	e.tb.Helper()
	w := e.get(path, c)
	if w.Code != status {
		e.tb.Fatalf("GET %s: %d, want %d\n%s", path, w.Code, status, w.Body)
	}
	return mustDoc(e.tb, w.Body.Bytes())
}

// checkKnowledgeEscaped fails when a page carries markup that did not come
// from the templates: a script other than the console's own, or an
// element with an event handler attribute.
func checkKnowledgeEscaped(tb testing.TB, body []byte) {
	tb.Helper()
	doc := mustDoc(tb, body)
	doc.Find("script").Each(func(_ int, s *goquery.Selection) {
		if src, _ := s.Attr("src"); !strings.HasPrefix(src, "/static/") || strings.TrimSpace(s.Text()) != "" {
			tb.Errorf("a script that is not the console's: %q %q", src, s.Text())
		}
	})
	if n := doc.Find("[onerror], [onload], [onclick]").Length(); n > 0 {
		tb.Errorf("%d elements with event handlers", n)
	}
	if strings.Contains(string(body), `<script>alert`) || strings.Contains(string(body), "<img src=x") {
		tb.Errorf("the payload is in the page unescaped")
	}
}

func TestKnowledgePagesEscapeEverything(t *testing.T) {
	e := mustEnv(t, envOptions{})
	ctx := context.Background()
	editor := e.MustSession(e.MustUser("eve", engine.RoleEditor))
	if err := e.store.CreateKnowledgeBase(ctx, &engine.KnowledgeBase{Name: "handbook", Description: "About " + knowledgeXSS}); err != nil {
		t.Fatal(err)
	}
	r := mustUploadReply(t, e.upload(editor, "handbook", part{name: "a" + knowledgeXSS + ".md", content: "# Hi\n\n" + knowledgeXSS}))
	id := r.Documents[0].DocumentID
	if err := e.store.SetDocumentStatus(ctx, id, engine.DocumentFailed, 0, "Parsing failed near "+knowledgeXSS); err != nil {
		t.Fatal(err)
	}
	e.retriever.Passages = []engine.Passage{{ID: "x1", KnowledgeBase: "handbook", DocumentID: id, Document: "a" + knowledgeXSS + ".md",
		Title: "T " + knowledgeXSS, HeadingPath: []string{"H " + knowledgeXSS}, Text: "Chunk " + knowledgeXSS, Score: 0.5}}

	pages := map[string]string{
		"/knowledge":          "About " + knowledgeXSS,
		"/knowledge/handbook": "Parsing failed near " + knowledgeXSS,
		"/knowledge/handbook/documents/" + id + "/delete":      "a" + knowledgeXSS + ".md",
		"/knowledge/search?q=" + url.QueryEscape(knowledgeXSS): "Chunk " + knowledgeXSS,
	}
	for path, want := range pages {
		t.Run(path, func(t *testing.T) {
			w := e.get(path, editor)
			if w.Code != http.StatusOK {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			checkKnowledgeEscaped(t, w.Body.Bytes())
			if text := mustDoc(t, w.Body.Bytes()).Find("main").Text(); !strings.Contains(text, want) {
				t.Errorf("the page does not show %q as text", want)
			}
		})
	}
	// The search page shows the query back, in the form and in the heading.
	doc := e.mustKnowledgePage("/knowledge/search?q="+url.QueryEscape(knowledgeXSS), editor, http.StatusOK)
	if v, _ := doc.Find("#search-q").Attr("value"); v != knowledgeXSS {
		t.Errorf("query field = %q", v)
	}
	// Payloads in form input come back escaped in the error.
	w := e.postKnowledgeForm(editor, "/knowledge", url.Values{"csrf": {editor.csrf}, "name": {knowledgeXSS}, "description": {knowledgeXSS}})
	if w.Code != http.StatusBadRequest {
		t.Fatalf("create with a bad name: %d", w.Code)
	}
	checkKnowledgeEscaped(t, w.Body.Bytes())
	// The upload results page escapes names and reasons.
	w = e.postKnowledgeUpload(editor, "handbook", part{name: "csrf", content: editor.csrf, field: true},
		part{name: "b" + knowledgeXSS + ".bin", content: "\x00\x01binary"})
	if w.Code != http.StatusOK {
		t.Fatalf("upload form: %d %s", w.Code, w.Body)
	}
	checkKnowledgeEscaped(t, w.Body.Bytes())
	if got := mustDoc(t, w.Body.Bytes()).Find(".document-error").Text(); !strings.Contains(got, "b"+knowledgeXSS+".bin") {
		t.Errorf("failure reason = %q", got)
	}
}

func TestKnowledgeRBAC(t *testing.T) {
	e := mustEnv(t, envOptions{})
	e.mustKnowledgeBase("handbook")
	admin := e.MustSession(e.MustUser("ada", engine.RoleAdmin))
	editor := e.MustSession(e.MustUser("eve", engine.RoleEditor))
	viewer := e.MustSession(e.MustUser("vic", engine.RoleViewer))
	r := mustUploadReply(t, e.upload(admin, "handbook", part{name: "leave.md", content: "# Leave\n\n25 days."}))
	id := r.Documents[0].DocumentID

	// Everyone signed in reads and searches.
	for _, c := range []*client{admin, editor, viewer} {
		for _, path := range []string{"/knowledge", "/knowledge/handbook", "/knowledge/search", "/knowledge/search?q=leave",
			"/knowledge/handbook/documents/" + id} {
			if w := e.get(path, c); w.Code != http.StatusOK {
				t.Errorf("%s GET %s: %d", c.user.Role, path, w.Code)
			}
		}
		if w := e.get("/api/v1/knowledge/search?q=leave", c); w.Code != http.StatusOK {
			t.Errorf("%s searches over the API: %d %s", c.user.Role, w.Code, w.Body)
		}
	}
	// Viewers see no management controls.
	list := e.mustKnowledgePage("/knowledge", viewer, http.StatusOK)
	if list.Find("#create-kb").Length() != 0 || list.Find(`a[href$="/delete"]`).Length() != 0 {
		t.Error("a viewer gets the create form or delete links")
	}
	if !strings.Contains(list.Find("#knowledge-bases").Text(), "handbook") {
		t.Error("the viewer does not see the knowledge base")
	}
	kb := e.mustKnowledgePage("/knowledge/handbook", viewer, http.StatusOK)
	if kb.Find("#upload-form").Length() != 0 || kb.Find(`a[href$="/delete"]`).Length() != 0 {
		t.Error("a viewer gets the upload form or delete links")
	}
	for _, c := range []*client{admin, editor} {
		if doc := e.mustKnowledgePage("/knowledge/handbook", c, http.StatusOK); doc.Find("#upload-form").Length() != 1 || doc.Find("#delete-kb").Length() != 1 {
			t.Errorf("%s gets no upload form or delete link", c.user.Role)
		}
		if doc := e.mustKnowledgePage("/knowledge", c, http.StatusOK); doc.Find("#create-kb").Length() != 1 {
			t.Errorf("%s gets no create form", c.user.Role)
		}
	}

	// Viewers are refused every change, even with a valid CSRF token.
	form := url.Values{"csrf": {viewer.csrf}, "name": {"mine"}}
	refused := []*httptest.ResponseRecorder{
		e.postKnowledgeForm(viewer, "/knowledge", form),
		e.postKnowledgeForm(viewer, "/knowledge/handbook/delete", form),
		e.postKnowledgeForm(viewer, "/knowledge/handbook/documents/"+id+"/delete", form),
		e.postKnowledgeUpload(viewer, "handbook", part{name: "csrf", content: viewer.csrf, field: true}, part{name: "x.md", content: "# X"}),
		e.get("/knowledge/handbook/delete", viewer),
		e.get("/knowledge/handbook/documents/"+id+"/delete", viewer),
	}
	for i, w := range refused {
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "needs the admin or editor role") {
			t.Errorf("viewer request %d: %d", i, w.Code)
		}
	}
	if kbs, _ := e.store.ListKnowledgeBases(context.Background()); len(kbs) != 1 {
		t.Errorf("knowledge bases = %d", len(kbs))
	}
	if docs := e.documents("handbook"); len(docs) != 1 {
		t.Errorf("documents = %d", len(docs))
	}
	// Without a session: to the sign-in page.
	if w := e.get("/knowledge/search?q=x", nil); w.Code != http.StatusFound || !strings.HasPrefix(w.Header().Get("Location"), "/login?next=") {
		t.Errorf("anonymous: %d %s", w.Code, w.Header().Get("Location"))
	}
	if w := e.get("/api/v1/knowledge/search?q=x", nil); w.Code != http.StatusUnauthorized {
		t.Errorf("anonymous API search: %d", w.Code)
	}
}

func TestKnowledgeListAndCreate(t *testing.T) {
	e := mustEnv(t, envOptions{})
	editor := e.MustSession(e.MustUser("eve", engine.RoleEditor))

	// The empty state says what to do.
	doc := e.mustKnowledgePage("/knowledge", editor, http.StatusOK)
	if !strings.Contains(doc.Find("#knowledge-empty").Text(), "Create one below") {
		t.Errorf("empty state = %q", doc.Find("#knowledge-empty").Text())
	}
	if cur, _ := doc.Find(`nav a[aria-current="page"]`).Attr("href"); cur != "/knowledge" {
		t.Errorf("current nav = %q", cur)
	}

	// Create: to the new knowledge base's page.
	w := e.postKnowledgeForm(editor, "/knowledge", url.Values{"csrf": {editor.csrf}, "name": {" handbook "}, "description": {"Company handbook"}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/knowledge/handbook?created=1" {
		t.Fatalf("create: %d %s", w.Code, w.Header().Get("Location"))
	}
	doc = e.mustKnowledgePage("/knowledge/handbook?created=1", editor, http.StatusOK)
	if !strings.Contains(doc.Find(`[role="status"]`).Text(), "was created") || !strings.Contains(doc.Find("#documents-empty").Text(), "No documents yet") {
		t.Errorf("new knowledge base page: %q", doc.Find("main").Text())
	}
	if href, _ := doc.Find("#search-link").Attr("href"); href != "/knowledge/search?kb=handbook" {
		t.Errorf("search link = %q", href)
	}

	tests := []struct {
		name, kb, description string
		csrf                  string
		status                int
		want, field           string
	}{
		{"taken", "handbook", "", editor.csrf, http.StatusConflict, "already exists", "kb-name"},
		{"invalid", "Hand Book", "kept text", editor.csrf, http.StatusBadRequest, "lowercase letters", "kb-name"},
		{"reserved", "search", "", editor.csrf, http.StatusBadRequest, "reserved", "kb-name"},
		{"description", "ok", strings.Repeat("d", 1100), editor.csrf, http.StatusBadRequest, "description must be at most", "kb-description"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.postKnowledgeForm(editor, "/knowledge", url.Values{"csrf": {tt.csrf}, "name": {tt.kb}, "description": {tt.description}})
			if w.Code != tt.status {
				t.Fatalf("%d, want %d", w.Code, tt.status)
			}
			doc := mustDoc(t, w.Body.Bytes())
			if msg := doc.Find("#create-error").Text(); !strings.Contains(msg, tt.want) {
				t.Errorf("error = %q, want %q", msg, tt.want)
			}
			// The form keeps what was typed and marks the field.
			if v, _ := doc.Find("#kb-name").Attr("value"); v != strings.TrimSpace(tt.kb) {
				t.Errorf("name kept = %q", v)
			}
			if got := doc.Find("#kb-description").Text(); got != tt.description {
				t.Errorf("description kept = %q", got)
			}
			if inv, _ := doc.Find("#" + tt.field).Attr("aria-invalid"); inv != "true" {
				t.Errorf("%s is not marked invalid", tt.field)
			}
		})
	}
	// A form without the session's token is refused.
	if w := e.postKnowledgeForm(editor, "/knowledge", url.Values{"csrf": {"forged"}, "name": {"other"}}); w.Code != http.StatusForbidden {
		t.Errorf("forged token: %d", w.Code)
	}

	// The list shows counts and the last update.
	mustUploadReply(t, e.upload(editor, "handbook", part{name: "a.md", content: "# A\n\nOne.\n\nTwo."}, part{name: "b.md", content: "UNAVAILABLE"}))
	doc = e.mustKnowledgePage("/knowledge", editor, http.StatusOK)
	row := doc.Find(`tr.kb[data-kb="handbook"]`)
	if got := strings.Join(strings.Fields(row.Find(".kb-documents").Text()), " "); got != "2 1 failed" {
		t.Errorf("documents cell = %q", got)
	}
	if got := row.Find(".kb-chunks").Text(); got != "3" {
		t.Errorf("chunks cell = %q", got)
	}
	if dt, _ := row.Find("time").Attr("datetime"); dt == "" || !strings.HasPrefix(dt, time.Now().UTC().Format("2006-01-02")) {
		t.Errorf("last update = %q", dt)
	}
	if got := row.Find(".kb-description").Text(); got != "Company handbook" {
		t.Errorf("description = %q", got)
	}
}

func TestKnowledgeBasePageDocuments(t *testing.T) {
	e := mustEnv(t, envOptions{})
	editor := e.MustSession(e.MustUser("eve", engine.RoleEditor))
	e.MustAssistant("Helper", true)
	r := mustUploadReply(t, e.upload(editor, "handbook", part{name: "leave.md", content: "# Leave\n\n25 days.\n\nMore."},
		part{name: "later.md", content: "UNAVAILABLE now"}))
	leave, later := r.Documents[0].DocumentID, r.Documents[1].DocumentID

	doc := e.mustKnowledgePage("/knowledge/handbook", editor, http.StatusOK)
	rows := doc.Find("#documents tbody tr")
	if rows.Length() != 2 {
		t.Fatalf("%d rows", rows.Length())
	}
	failed := doc.Find(`tr[data-document-id="` + later + `"]`)
	if s, _ := failed.Find("[data-status]").Attr("data-status"); s != "failed" {
		t.Errorf("status = %q", s)
	}
	if msg := failed.Find(".document-error").Text(); !strings.Contains(msg, "the search index is unavailable") {
		t.Errorf("failure reason = %q", msg)
	}
	ok := doc.Find(`tr[data-document-id="` + leave + `"]`)
	if href, _ := ok.Find("th a").Attr("href"); href != "/knowledge/handbook/documents/"+leave {
		t.Errorf("chunk preview link = %q", href)
	}
	cells := ok.Find("td")
	if got := strings.TrimSpace(cells.Eq(1).Text()); got != "3" {
		t.Errorf("chunks = %q", got)
	}
	if got := strings.TrimSpace(cells.Eq(2).Text()); got != "24 bytes" {
		t.Errorf("size = %q", got)
	}
	if got := doc.Find(".kb-stats").Text(); !strings.Contains(got, "Helper") {
		t.Errorf("stats do not name the assistant: %q", got)
	}
	// The upload form: labelled progress bars and a live region, the CSRF token, multiple files.
	form := doc.Find("#upload-form")
	if a, _ := form.Attr("action"); a != "/knowledge/handbook/upload" {
		t.Errorf("upload action = %q", a)
	}
	if v, _ := form.Find(`input[name="csrf"]`).Attr("value"); v != editor.csrf {
		t.Errorf("upload csrf = %q", v)
	}
	if _, multiple := doc.Find("#upload-files").Attr("multiple"); !multiple {
		t.Error("the file input does not take several files")
	}
	for _, id := range []string{"upload-bytes", "upload-indexing"} {
		if doc.Find("progress#"+id).Length() != 1 || doc.Find(`label[for="`+id+`"]`).Length() != 1 {
			t.Errorf("progress %s has no label", id)
		}
	}
	if live, _ := doc.Find("#upload-status").Attr("aria-live"); live != "polite" {
		t.Error("no live region for the upload status")
	}
	if doc.Find(`script[src^="/static/knowledge.js?v="]`).Length() != 1 || doc.Find(`link[href^="/static/knowledge.css?v="]`).Length() != 1 {
		t.Error("knowledge.js or knowledge.css is missing")
	}
	if n := doc.Find("[style]").Length(); n > 0 {
		t.Errorf("%d inline style attributes", n)
	}

	// Unknown and invalid knowledge bases are 404 pages.
	for _, path := range []string{"/knowledge/nope", "/knowledge/Bad..Name"} {
		if w := e.get(path, editor); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d", path, w.Code)
		}
	}
}

func TestKnowledgeDeletePages(t *testing.T) {
	e := mustEnv(t, envOptions{})
	editor := e.MustSession(e.MustUser("eve", engine.RoleEditor))
	e.MustAssistant("Helper", true)
	r := mustUploadReply(t, e.upload(editor, "handbook", part{name: "a.md", content: "# A\n\nx"}, part{name: "b.md", content: "# B"}))
	a := r.Documents[0].DocumentID

	// A document: confirm, then delete.
	doc := e.mustKnowledgePage("/knowledge/handbook/documents/"+a+"/delete", editor, http.StatusOK)
	if got := doc.Find("#confirm-title").Text(); !strings.Contains(got, "a.md") {
		t.Errorf("confirmation title = %q", got)
	}
	if !strings.Contains(doc.Find(".notice-error").Text(), "2 chunks") {
		t.Errorf("consequence = %q", doc.Find(".notice-error").Text())
	}
	action, _ := doc.Find("#confirm-delete").Attr("action")
	if w := e.postKnowledgeForm(editor, action, url.Values{"csrf": {"stale"}}); w.Code != http.StatusForbidden {
		t.Errorf("stale token: %d", w.Code)
	}
	if docs := e.documents("handbook"); len(docs) != 2 {
		t.Fatal("a forged form deleted the document")
	}
	w := e.postKnowledgeForm(editor, action, url.Values{"csrf": {editor.csrf}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/knowledge/handbook?deleted=1" {
		t.Fatalf("delete document: %d %s", w.Code, w.Header().Get("Location"))
	}
	if docs := e.documents("handbook"); len(docs) != 1 || docs[0].Source != "b.md" {
		t.Errorf("documents after delete = %v", docs)
	}
	if w := e.postKnowledgeForm(editor, action, url.Values{"csrf": {editor.csrf}}); w.Code != http.StatusNotFound {
		t.Errorf("delete again: %d", w.Code)
	}

	// The knowledge base: the confirmation names the assistants that search it.
	doc = e.mustKnowledgePage("/knowledge/handbook/delete", editor, http.StatusOK)
	if got := doc.Find(".notice-error").Text(); !strings.Contains(got, "1 document") || !strings.Contains(got, "Helper") {
		t.Errorf("consequence = %q", got)
	}
	if v, _ := doc.Find(`#confirm-delete input[name="csrf"]`).Attr("value"); v != editor.csrf {
		t.Errorf("csrf = %q", v)
	}
	w = e.postKnowledgeForm(editor, "/knowledge/handbook/delete", url.Values{"csrf": {editor.csrf}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/knowledge?deleted=handbook" {
		t.Fatalf("delete knowledge base: %d %s", w.Code, w.Header().Get("Location"))
	}
	doc = e.mustKnowledgePage("/knowledge?deleted=handbook", editor, http.StatusOK)
	if !strings.Contains(doc.Find(`[role="status"]`).Text(), "handbook was deleted") {
		t.Errorf("no deletion notice: %q", doc.Find("main").Text())
	}
	if w := e.get("/knowledge/handbook", editor); w.Code != http.StatusNotFound {
		t.Errorf("deleted knowledge base page: %d", w.Code)
	}
}

// uploadStream posts files to the upload API asking for an event stream.
func (e *testEnv) uploadEventStream(c *client, kb string, parts ...part) *httptest.ResponseRecorder {
	e.tb.Helper()
	body, ct := multipartBody(e.tb, parts...)
	r := httptest.NewRequest(http.MethodPost, "/api/v1/knowledge-bases/"+kb+"/documents", body)
	r.Header.Set("Content-Type", ct)
	r.Header.Set("Accept", "text/event-stream")
	c.apply(r)
	return e.serve(r)
}

type uploadFileReply struct {
	Index      int    `json:"index"`
	Done       int    `json:"done"`
	Total      int    `json:"total"`
	Name       string `json:"name"`
	Status     string `json:"status"`
	DocumentID string `json:"document_id"`
	Chunks     int    `json:"chunks"`
	Error      *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func TestUploadStreamsOneEventPerFile(t *testing.T) {
	e := mustEnv(t, envOptions{})
	editor := e.MustSession(e.MustUser("eve", engine.RoleEditor))
	w := e.uploadEventStream(editor, "docs", part{name: "guide.md", content: "# Guide\n\nOne.\n\nTwo."},
		part{name: "blob.bin", content: "\x00\x01 binary"}, part{name: "faq.md", content: "# FAQ"})
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream") {
		t.Fatalf("%d %s\n%s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	events := parseSSE(t, w.Body)
	var names []string
	for _, ev := range events {
		names = append(names, ev.Name)
	}
	if !slices.Equal(names, []string{"start", "file", "file", "file", "done"}) {
		t.Fatalf("events = %v", names)
	}
	start := decodeStrict[uploadStartEvent](t, []byte(events[0].Data))
	if start.KnowledgeBase != "docs" || !start.Created || start.Total != 3 || !slices.Equal(start.Files, []string{"guide.md", "blob.bin", "faq.md"}) {
		t.Errorf("start = %+v", start)
	}
	want := []struct {
		name, status string
		chunks       int
	}{{"guide.md", "indexed", 3}, {"blob.bin", "failed", 0}, {"faq.md", "indexed", 1}}
	for i, w := range want {
		f := decodeStrict[uploadFileReply](t, []byte(events[1+i].Data))
		if f.Index != i || f.Done != i+1 || f.Total != 3 || f.Name != w.name || f.Status != w.status || f.Chunks != w.chunks {
			t.Errorf("file event %d = %+v", i, f)
		}
		if w.status == "failed" && (f.Error == nil || !strings.Contains(f.Error.Message, "Unsupported file type")) {
			t.Errorf("the failed file's reason = %+v", f.Error)
		}
	}
	var done struct {
		uploadReply
		Summary uploadCounts `json:"summary"`
	}
	if err := json.Unmarshal([]byte(events[4].Data), &done); err != nil {
		t.Fatal(err)
	}
	if len(done.Documents) != 3 || done.Summary != (uploadCounts{Indexed: 2, Failed: 1}) || done.KnowledgeBase != "docs" {
		t.Errorf("done = %+v", done)
	}

	// A refused request is a plain JSON error, whatever the Accept header.
	viewer := e.MustSession(e.MustUser("vic", engine.RoleViewer))
	w = e.uploadEventStream(viewer, "docs", part{name: "x.md", content: "# X"})
	if code, _ := errorOf(t, w.Body.Bytes()); w.Code != http.StatusForbidden || code != engine.EFORBIDDEN {
		t.Errorf("viewer: %d %s", w.Code, w.Body)
	}
	body, ct := multipartBody(t, part{name: "note", content: "hi", field: true})
	r := httptest.NewRequest(http.MethodPost, "/api/v1/knowledge-bases/docs/documents", body)
	r.Header.Set("Content-Type", ct)
	r.Header.Set("Accept", "text/event-stream")
	editor.apply(r)
	if w := e.serve(r); w.Code != http.StatusBadRequest || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Errorf("no files: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
}

// gatedKnowledge holds the ingestion of source "slow.md" until the gate opens.
type gatedKnowledge struct {
	*fakeKnowledge
	gate chan struct{}
}

func (g *gatedKnowledge) Ingest(ctx context.Context, kb, source string, content []byte) (*engine.Document, bool, error) {
	if source == "slow.md" {
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	return g.fakeKnowledge.Ingest(ctx, kb, source, content)
}

func TestUploadStreamArrivesAsFilesAreIndexed(t *testing.T) {
	// Over a real connection, the first file's event arrives while the
	// second file is still being indexed.
	e := mustEnv(t, envOptions{})
	gated := &gatedKnowledge{fakeKnowledge: e.knowledge, gate: make(chan struct{})}
	var err error
	e.srv, err = New(Config{}, Deps{Store: e.store, Chat: e.chat, Knowledge: gated})
	if err != nil {
		t.Fatal(err)
	}
	editor := e.MustToken(e.MustUser("eve", engine.RoleEditor))
	srv := httptest.NewServer(e.srv)
	t.Cleanup(srv.Close)
	body, ct := multipartBody(t, part{name: "fast.md", content: "# Fast"}, part{name: "slow.md", content: "# Slow"})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/knowledge-bases/docs/documents", body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Accept", "text/event-stream")
	editor.apply(req)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the stream ended early")
			}
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no event while the second file is being indexed: the stream is buffered")
		}
		return ""
	}
	var seen []string
	for len(seen) < 2 {
		if l := next(); strings.HasPrefix(l, "event: ") {
			seen = append(seen, strings.TrimPrefix(l, "event: "))
		}
	}
	if !slices.Equal(seen, []string{"start", "file"}) {
		t.Fatalf("events before the slow file = %v", seen)
	}
	close(gated.gate)
	rest, _ := io.ReadAll(io.MultiReader(knowledgeLinesReader(lines)))
	if !strings.Contains(string(rest), "event: file") || !strings.Contains(string(rest), "event: done") {
		t.Fatalf("the rest of the stream:\n%s", rest)
	}
}

// knowledgeLinesReader reads the lines left in a channel, each ended by a newline.
func knowledgeLinesReader(lines <-chan string) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		for l := range lines {
			if _, err := io.WriteString(pw, l+"\n"); err != nil {
				return
			}
		}
		pw.Close()
	}()
	return pr
}

func TestUploadFormWithoutJavaScript(t *testing.T) {
	e := mustEnv(t, envOptions{})
	e.mustKnowledgeBase("handbook")
	editor := e.MustSession(e.MustUser("eve", engine.RoleEditor))
	csrf := part{name: "csrf", content: editor.csrf, field: true}
	empty := part{disposition: `form-data; name="files"; filename=""`} // a file input left empty

	w := e.postKnowledgeUpload(editor, "handbook", csrf, part{name: "a.md", content: "# A\n\nx"},
		part{name: "junk.bin", content: "\x00\x00"}, part{name: "c.md", content: "# C"}, empty)
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	doc := mustDoc(t, w.Body.Bytes())
	items := doc.Find("#upload-results li")
	if items.Length() != 3 {
		t.Fatalf("%d results", items.Length())
	}
	var statuses []string
	items.Each(func(_ int, s *goquery.Selection) { v, _ := s.Attr("data-status"); statuses = append(statuses, v) })
	if !slices.Equal(statuses, []string{"indexed", "failed", "indexed"}) {
		t.Errorf("statuses = %v", statuses)
	}
	if got := items.Eq(1).Find(".document-error").Text(); !strings.Contains(got, "Unsupported file type") {
		t.Errorf("failure reason = %q", got)
	}
	if got := doc.Find("#upload-summary").Text(); !strings.Contains(got, "2 indexed, 0 unchanged, 1 failed") {
		t.Errorf("summary = %q", got)
	}
	if href, _ := items.Eq(0).Find("a").Attr("href"); !strings.HasPrefix(href, "/knowledge/handbook/documents/") {
		t.Errorf("link to the document = %q", href)
	}
	if docs := e.documents("handbook"); len(docs) != 2 {
		t.Errorf("stored %d documents", len(docs))
	}

	// Without the CSRF field nothing is stored.
	before := len(e.knowledge.sources())
	if w := e.postKnowledgeUpload(editor, "handbook", part{name: "d.md", content: "# D"}); w.Code != http.StatusForbidden {
		t.Errorf("no csrf: %d", w.Code)
	}
	if w := e.postKnowledgeUpload(editor, "handbook", part{name: "csrf", content: "forged", field: true}, part{name: "d.md", content: "# D"}); w.Code != http.StatusForbidden {
		t.Errorf("forged csrf: %d", w.Code)
	}
	if len(e.knowledge.sources()) != before {
		t.Error("a forged upload reached the knowledge service")
	}
	// No file at all: the page says so.
	w = e.postKnowledgeUpload(editor, "handbook", csrf, empty)
	if w.Code != http.StatusBadRequest || !strings.Contains(mustDoc(t, w.Body.Bytes()).Find("#upload-error").Text(), "has no files") {
		t.Errorf("no file: %d %s", w.Code, w.Body)
	}
	// An unknown knowledge base is a 404 (the page uploads to existing ones).
	if w := e.postKnowledgeUpload(editor, "nope", csrf, part{name: "d.md", content: "# D"}); w.Code != http.StatusNotFound {
		t.Errorf("unknown knowledge base: %d", w.Code)
	}
}

// knowledgeScoredPassages have every combination of signals.
func knowledgeScoredPassages() []engine.Passage {
	f := func(v float64) *float64 { return &v }
	return []engine.Passage{
		{ID: "p1", KnowledgeBase: "handbook", DocumentID: "d1", Document: "leave.md", Title: "Leave policy", Position: 2,
			HeadingPath: []string{"Leave", "Holidays"}, Text: "Everyone gets 25 days of paid leave per year.", Score: 0.0325,
			Scores: engine.Scores{Lexical: f(0.8123), Vector: f(0.71), Fused: f(0.0325)}},
		{ID: "p2", KnowledgeBase: "other", DocumentID: "d2", Document: "expenses.md", Title: "Expenses", Position: 0,
			Text: strings.Repeat("Submit receipts within 30 days. ", 20), Score: 0.0164,
			Scores: engine.Scores{Lexical: f(0.4), Fused: f(0.0164)}},
	}
}

func TestSearchTesterRunsFromTheQueryString(t *testing.T) {
	e := mustEnv(t, envOptions{})
	e.mustKnowledgeBase("handbook")
	e.mustKnowledgeBase("other")
	e.mustKnowledgeBase("unused")
	e.retriever.Passages = knowledgeScoredPassages()
	viewer := e.MustSession(e.MustUser("vic", engine.RoleViewer))

	path := "/knowledge/search?q=how+much+leave&kb=handbook&kb=other&mode=hybrid&fusion=alpha&alpha=0.3&rrf_k=&limit=5&min_score=0.01&rerank=1"
	doc := e.mustKnowledgePage(path, viewer, http.StatusOK)

	// The search ran with the settings of the query string.
	reqs := e.retriever.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d searches", len(reqs))
	}
	got := reqs[0]
	if got.Query != "how much leave" || !slices.Equal(got.KnowledgeBases, []string{"handbook", "other"}) {
		t.Errorf("request = %+v", got)
	}
	s := got.Settings
	if s.Mode != "hybrid" || s.Fusion != "alpha" || s.Alpha == nil || *s.Alpha != 0.3 || s.RRFK != 0 || s.Limit != 5 || s.MinScore != 0.01 || !s.Rerank {
		t.Errorf("settings = %+v", s)
	}

	// The form is prefilled.
	val := func(sel string) string { v, _ := doc.Find(sel).Attr("value"); return v }
	if val("#search-q") != "how much leave" || val("#search-alpha") != "0.3" || val("#search-limit") != "5" || val("#search-min_score") != "0.01" {
		t.Errorf("form values: q=%q alpha=%q limit=%q min=%q", val("#search-q"), val("#search-alpha"), val("#search-limit"), val("#search-min_score"))
	}
	var checked []string
	doc.Find(`input[name="kb"][checked]`).Each(func(_ int, s *goquery.Selection) { v, _ := s.Attr("value"); checked = append(checked, v) })
	if !slices.Equal(checked, []string{"handbook", "other"}) {
		t.Errorf("checked knowledge bases = %v", checked)
	}
	if v, _ := doc.Find("#search-mode option[selected]").Attr("value"); v != "hybrid" {
		t.Errorf("mode selected = %q", v)
	}
	if v, _ := doc.Find("#search-fusion option[selected]").Attr("value"); v != "alpha" {
		t.Errorf("fusion selected = %q", v)
	}
	if _, ok := doc.Find("#search-rerank").Attr("checked"); !ok {
		t.Error("rerank is not ticked")
	}

	// Each result: final score, every signal ("—" when it did not run), the source, a snippet and the chunk link.
	results := doc.Find("#results > li.result")
	if results.Length() != 2 {
		t.Fatalf("%d results", results.Length())
	}
	first, second := results.Eq(0), results.Eq(1)
	scores := func(r *goquery.Selection) []string {
		var out []string
		for _, sig := range []string{"final", "lexical", "vector", "fused", "rerank"} {
			out = append(out, strings.TrimSpace(r.Find(".score-"+sig).Text()))
		}
		return out
	}
	if got := scores(first); !slices.Equal(got, []string{"0.0325", "0.8123", "0.7100", "0.0325", "—no score"}) {
		t.Errorf("first scores = %q", got)
	}
	if got := scores(second); !slices.Equal(got, []string{"0.0164", "0.4000", "—no score", "0.0164", "—no score"}) {
		t.Errorf("second scores = %q", got)
	}
	if href, _ := first.Find(".result-title a").Attr("href"); href != "/knowledge/handbook/documents/d1#chunk-2" {
		t.Errorf("chunk link = %q", href)
	}
	if got := first.Find(".result-title").Text(); got != "Leave policy" {
		t.Errorf("title = %q", got)
	}
	if got := first.Find(".result-heading").Text(); got != "Leave › Holidays" {
		t.Errorf("heading path = %q", got)
	}
	if got := first.Find(".result-document").Text(); got != "leave.md" {
		t.Errorf("document = %q", got)
	}
	if got := second.Find(".result-snippet").Text(); !strings.HasSuffix(got, "…") || len([]rune(got)) > snippetRunes+1 {
		t.Errorf("long snippet = %q", got)
	}

	// The settings the search applied (the retriever's), and what was searched.
	if got := doc.Find("#applied-backend").Text(); got != "enginetest" {
		t.Errorf("applied backend = %q", got)
	}
	if got := doc.Find("#applied-mode").Text(); got != "lexical" {
		t.Errorf("applied mode = %q", got)
	}
	if got := doc.Find("#applied-limit").Text(); got != "5" {
		t.Errorf("applied limit = %q", got)
	}
	if got := doc.Find("#applied-kbs").Text(); got != "handbook, other" {
		t.Errorf("searched = %q", got)
	}

	// Without q the form shows and nothing runs; kb prefills.
	doc = e.mustKnowledgePage("/knowledge/search?kb=unused", viewer, http.StatusOK)
	if doc.Find("#search-results").Length() != 0 || len(e.retriever.Requests()) != 1 {
		t.Error("a search ran without a query")
	}
	if _, ok := doc.Find(`input[name="kb"][value="unused"]`).Attr("checked"); !ok {
		t.Error("kb=unused is not ticked")
	}
	// No kb: every knowledge base.
	e.mustKnowledgePage("/knowledge/search?q=leave", viewer, http.StatusOK)
	if last := e.retriever.Requests()[1]; !slices.Equal(last.KnowledgeBases, []string{"handbook", "other", "unused"}) {
		t.Errorf("searched %v", last.KnowledgeBases)
	}
	// Nothing found: a helpful empty state.
	doc = e.mustKnowledgePage("/knowledge/search?q=leave&kb=unused", viewer, http.StatusOK)
	if !strings.Contains(doc.Find("#results-empty").Text(), "No passage matched") {
		t.Errorf("empty results: %q", doc.Find("#search-results").Text())
	}
	if strings.Contains(e.logs.String(), "how much leave") {
		t.Error("a query was logged")
	}
}

func TestSearchTesterBadSettings(t *testing.T) {
	e := mustEnv(t, envOptions{})
	e.mustKnowledgeBase("handbook")
	viewer := e.MustSession(e.MustUser("vic", engine.RoleViewer))
	token := e.MustToken(e.MustUser("tom", engine.RoleViewer))

	tests := []struct {
		name   string
		query  string
		status int
		want   map[string]string // field → part of its message
	}{
		{"alpha and limit out of range", "q=leave&alpha=2&limit=99", 400, map[string]string{
			"alpha": "Alpha 2 is out of range", "limit": "Retrieval limit 99 is out of range"}},
		{"not numbers", "q=leave&alpha=abc&limit=five&min_score=NaN&rrf_k=1.5", 400, map[string]string{
			"alpha": `Alpha "abc" is not a number`, "limit": `The limit "five" is not a whole number`,
			"min_score": `The minimum score "NaN" is not a number`, "rrf_k": `The RRF k "1.5" is not a whole number`}},
		{"unknown mode and fusion", "q=leave&mode=psychic&fusion=magic&rerank=maybe", 400, map[string]string{
			"mode": `Search mode "psychic" is unknown`, "fusion": `Fusion "magic" is unknown`, "rerank": `Rerank "maybe"`}},
		{"negative values", "q=leave&rrf_k=-1&min_score=-0.5&limit=-3", 400, map[string]string{
			"rrf_k": "must not be negative", "min_score": "out of range", "limit": "out of range"}},
		{"empty query", "q=+&limit=3", 400, map[string]string{"q": "The query is empty"}},
		{"unknown knowledge base", "q=leave&kb=nope", 404, map[string]string{"kb": `"nope" does not exist`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.retriever.Requests())
			doc := e.mustKnowledgePage("/knowledge/search?"+tt.query, viewer, tt.status)
			if doc.Find("#search-results").Length() != 0 || len(e.retriever.Requests()) != before {
				t.Error("the search ran")
			}
			summary := doc.Find("#search-errors")
			if summary.Length() != 1 {
				t.Fatal("no error summary")
			}
			if role, _ := summary.Attr("role"); role != "alert" {
				t.Error("the error summary is not an alert")
			}
			values, _ := url.ParseQuery(tt.query)
			for field, want := range tt.want {
				if got := summary.Find(`li[data-field="` + field + `"]`).Text(); !strings.Contains(got, want) {
					t.Errorf("summary for %s = %q, want %q", field, got, want)
				}
				if field == "kb" {
					continue
				}
				// The field keeps the value and says what is wrong.
				in := doc.Find("#search-" + field)
				if inv, _ := in.Attr("aria-invalid"); inv != "true" {
					t.Errorf("%s is not marked invalid", field)
				}
				if got := doc.Find("#search-" + field + "-error").Text(); !strings.Contains(got, want) {
					t.Errorf("%s error = %q", field, got)
				}
				if in.Is("input") && field != "rerank" {
					kept := strings.TrimSpace(values.Get(field))
					if field == "q" {
						kept = values.Get(field) // the query is kept as typed
					}
					if v, _ := in.Attr("value"); v != kept {
						t.Errorf("%s value = %q, want %q kept", field, v, kept)
					}
				}
			}
			if _, open := doc.Find("details.search-settings").Attr("open"); !open {
				t.Error("the settings are folded away")
			}
			// The API says the same in one JSON error.
			w := e.get("/api/v1/knowledge/search?"+tt.query, token)
			_, msg := errorOf(t, w.Body.Bytes())
			if w.Code != tt.status {
				t.Errorf("API: %d, want %d", w.Code, tt.status)
			}
			for _, want := range tt.want {
				if !strings.Contains(msg, want) {
					t.Errorf("API message %q lacks %q", msg, want)
				}
			}
		})
	}
	// The API needs a query.
	if w := e.get("/api/v1/knowledge/search?kb=handbook", token); w.Code != http.StatusBadRequest {
		t.Errorf("no query: %d", w.Code)
	}
}

func TestSearchTesterFailures(t *testing.T) {
	e := mustEnv(t, envOptions{})
	viewer := e.MustSession(e.MustUser("vic", engine.RoleViewer))
	// No knowledge base at all.
	doc := e.mustKnowledgePage("/knowledge/search?q=leave", viewer, http.StatusNotFound)
	if !strings.Contains(doc.Find("#search-error").Text(), "no knowledge base to search yet") {
		t.Errorf("error = %q", doc.Find("main").Text())
	}
	if v, _ := doc.Find("#search-q").Attr("value"); v != "leave" {
		t.Error("the form is not kept")
	}
	// The search fails: said in words, form kept; internal details stay in the log.
	e.mustKnowledgeBase("handbook")
	e.retriever.Err = engine.Errorf(engine.EUNAVAILABLE, "The search index is busy; try again.")
	doc = e.mustKnowledgePage("/knowledge/search?q=leave", viewer, http.StatusServiceUnavailable)
	if !strings.Contains(doc.Find("#search-error").Text(), "The search index is busy") {
		t.Errorf("error = %q", doc.Find("#search-error").Text())
	}
	e.retriever.Err = io.ErrUnexpectedEOF
	doc = e.mustKnowledgePage("/knowledge/search?q=leave", viewer, http.StatusInternalServerError)
	if got := doc.Find("#search-error").Text(); !strings.Contains(got, internalMessage) || strings.Contains(got, "EOF") {
		t.Errorf("internal error shown as %q", got)
	}
	if !strings.Contains(e.logs.String(), "unexpected EOF") {
		t.Error("the internal error was not logged")
	}
	// Without a knowledge service the page says so.
	e2 := mustEnv(t, envOptions{NoKnowledge: true})
	e2.mustKnowledgeBase("handbook")
	v2 := e2.MustSession(e2.MustUser("vic", engine.RoleViewer))
	doc = e2.mustKnowledgePage("/knowledge/search?q=leave", v2, http.StatusServiceUnavailable)
	if doc.Find("#knowledge-unavailable").Length() != 1 || !strings.Contains(doc.Find("#search-error").Text(), "not available") {
		t.Errorf("without a service: %q", doc.Find("main").Text())
	}
	if doc := e2.mustKnowledgePage("/knowledge/handbook", e2.MustSession(e2.MustUser("ed", engine.RoleEditor)), http.StatusOK); doc.Find("#upload-form").Length() != 0 {
		t.Error("an upload form without a knowledge service")
	}
}

func TestSearchAPIScores(t *testing.T) {
	e := mustEnv(t, envOptions{})
	e.mustKnowledgeBase("handbook")
	e.mustKnowledgeBase("other")
	e.retriever.Passages = knowledgeScoredPassages()
	token := e.MustToken(e.MustUser("vic", engine.RoleViewer))
	w := e.get("/api/v1/knowledge/search?q=leave&kb=handbook&mode=lexical&limit=3", token)
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	got := decodeStrict[searchTestResponse](t, w.Body.Bytes())
	if got.Query != "leave" || !slices.Equal(got.KnowledgeBases, []string{"handbook"}) || got.Settings.Mode != "lexical" || got.Settings.Limit != 3 {
		t.Errorf("response = %+v", got)
	}
	if len(got.Passages) != 1 {
		t.Fatalf("passages = %+v", got.Passages)
	}
	p := got.Passages[0]
	if p.Rank != 1 || p.URL != "/knowledge/handbook/documents/d1#chunk-2" || p.Scores.Lexical == nil || *p.Scores.Lexical != 0.8123 ||
		p.Scores.Rerank != nil || !slices.Equal(p.HeadingPath, []string{"Leave", "Holidays"}) {
		t.Errorf("passage = %+v", p)
	}
	// Signals that did not run are null, not left out.
	if !strings.Contains(w.Body.String(), `"rerank":null`) {
		t.Errorf("body = %s", w.Body)
	}
}

// realKnowledge adapts the real knowledge service to Knowledge, as
// cmd/console does.
type realKnowledge struct {
	*knowledge.Service
	store engine.KnowledgeStore
}

func (k realKnowledge) Ingest(ctx context.Context, kb, source string, content []byte) (*engine.Document, bool, error) {
	prev, perr := k.store.DocumentBySource(ctx, kb, source)
	doc, err := k.Service.Ingest(ctx, kb, source, content)
	if err != nil {
		return doc, false, err
	}
	return doc, perr == nil && prev.ID == doc.ID && prev.UpdatedAt.Equal(doc.UpdatedAt), nil
}

func (k realKnowledge) DocumentChunks(ctx context.Context, id string) (*engine.Document, []engine.Passage, error) {
	doc, chunks, err := k.Chunks(ctx, id)
	out := make([]engine.Passage, len(chunks))
	for i, c := range chunks {
		out[i] = c.Passage(0)
	}
	return doc, out, err
}

func TestKnowledgePagesWithTheEmbeddedIndex(t *testing.T) {
	// The real knowledge service, the embedded index and a deterministic
	// embedder: upload through the stream, then the search tester shows
	// lexical, vector and fused scores, and notes what it did not apply.
	e := mustEnv(t, envOptions{})
	ctx := context.Background()
	ix, err := embedded.Open(ctx, embedded.Config{Path: filepath.Join(t.TempDir(), "index.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	svc, err := knowledge.New(knowledge.Config{}, knowledge.Deps{Store: e.store, Index: ix, Embedder: &indextest.Embedder{}})
	if err != nil {
		t.Fatal(err)
	}
	e.srv, err = New(Config{}, Deps{Store: e.store, Chat: e.chat, Knowledge: realKnowledge{Service: svc, store: e.store}})
	if err != nil {
		t.Fatal(err)
	}
	editor := e.MustSession(e.MustUser("eve", engine.RoleEditor))
	e.mustKnowledgeBase("handbook")
	w := e.uploadEventStream(editor, "handbook",
		part{name: "leave.md", content: "# Leave policy\n\n## Vacation\n\nEveryone gets 25 days of paid vacation leave per year.\n"},
		part{name: "expenses.md", content: "# Expenses\n\nSubmit receipts within 30 days.\n"},
		part{name: "garbage.bin", content: "\x7fELF\x00\x00\x01binary\x00"})
	events := parseSSE(t, w.Body)
	if len(events) != 5 || events[3].Name != "file" || !strings.Contains(events[3].Data, `"status":"failed"`) || events[4].Name != "done" {
		t.Fatalf("events = %+v", events)
	}

	doc := e.mustKnowledgePage("/knowledge/search?q=vacation+leave+days&kb=handbook&rerank=1", editor, http.StatusOK)
	first := doc.Find("#results > li.result").First()
	if first.Find(".result-document").Text() != "leave.md" {
		t.Fatalf("first result = %q", first.Text())
	}
	for _, sig := range []string{"lexical", "vector", "fused"} {
		if got := strings.TrimSpace(first.Find(".score-" + sig).Text()); got == "" || strings.Contains(got, "—") {
			t.Errorf("%s score = %q", sig, got)
		}
	}
	if got := first.Find(".score-rerank").Text(); !strings.Contains(got, "—") {
		t.Errorf("rerank score = %q", got)
	}
	if got := doc.Find("#applied-backend").Text() + " " + doc.Find("#applied-mode").Text() + " " + doc.Find("#applied-fusion").Text(); got != "embedded hybrid rrf" {
		t.Errorf("applied = %q", got)
	}
	if got := doc.Find("#applied-rrf_k").Text(); got != "60" {
		t.Errorf("rrf k = %q", got)
	}
	if got := doc.Find("#applied-notes").Text(); !strings.Contains(got, "reranking skipped") {
		t.Errorf("notes = %q", got)
	}
	href, _ := first.Find(".result-title a").Attr("href")
	page := e.mustKnowledgePage(strings.Split(href, "#")[0], editor, http.StatusOK)
	if page.Find("#"+strings.Split(href, "#")[1]).Length() != 1 {
		t.Errorf("the chunk link %q does not land on a chunk", href)
	}
	// The knowledge base page lists both stored documents (the binary one was never stored).
	kb := e.mustKnowledgePage("/knowledge/handbook", editor, http.StatusOK)
	if n := kb.Find("#documents tbody tr").Length(); n != 2 {
		t.Errorf("%d documents listed", n)
	}
}

// TestKnowledgeUploadInTheBrowser: an editor picks three files; the bytes
// bar fills, then the indexing bar advances file by file while the results
// appear one at a time (the third file waits at a gate), the failed file
// with its reason, and a summary at the end.
func TestKnowledgeUploadInTheBrowser(t *testing.T) {
	ctx := mustBrowser(t)
	e := mustEnv(t, envOptions{})
	gated := &gatedKnowledge{fakeKnowledge: e.knowledge, gate: make(chan struct{})}
	var err error
	if e.srv, err = New(Config{}, Deps{Store: e.store, Chat: e.chat, Knowledge: gated}); err != nil {
		t.Fatal(err)
	}
	e.mustKnowledgeBase("handbook")
	e.MustUser("eve", engine.RoleEditor)
	srv := httptest.NewServer(e.srv)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	var files []string
	for _, f := range [][2]string{{"guide.md", "# Guide\n\nOne.\n\nTwo."}, {"blob.bin", "\x00\x01 binary <b>"}, {"slow.md", "# Slow"}} {
		p := filepath.Join(dir, f[0])
		if err := os.WriteFile(p, []byte(f[1]), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return s
	}
	do(
		chromedp.Navigate(srv.URL+"/login?next=/knowledge/handbook"),
		chromedp.WaitVisible(chromedp.CSS(`#login-name`)),
		chromedp.SendKeys(chromedp.CSS(`#login-name`), "eve"),
		chromedp.SendKeys(chromedp.CSS(`#login-password`), testPassword),
		chromedp.Submit(chromedp.CSS(`#login-password`)),
		chromedp.WaitVisible(chromedp.CSS(`#upload-files`)),
		chromedp.SetUploadFiles(chromedp.CSS(`#upload-files`), files),
		chromedp.Click(chromedp.CSS(`#upload-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#upload-results li:nth-child(2)`)),
	)
	// Two files done, the third is being indexed.
	if got := eval(`[document.getElementById('upload-bytes').value, document.getElementById('upload-indexing').value, document.getElementById('upload-indexing').max].join(' ')`); got != "1 2 3" {
		t.Errorf("progress (bytes, indexed, total) = %q", got)
	}
	if got := eval(`document.getElementById('upload-status').textContent`); !strings.Contains(got, "File 2 of 3: blob.bin: failed: Unsupported file type") || !strings.Contains(got, "Indexing slow.md") {
		t.Errorf("status = %q", got)
	}
	if got := eval(`document.getElementById('upload-submit').disabled ? 'busy' : 'idle'`); got != "busy" {
		t.Error("the upload button is not disabled while uploading")
	}
	close(gated.gate)
	do(chromedp.WaitVisible(chromedp.CSS(`#upload-done`)))
	if got := eval(`document.getElementById('upload-status').textContent`); got != "Done: 2 indexed, 0 unchanged, 1 failed." {
		t.Errorf("final status = %q", got)
	}
	if got := eval(`Array.from(document.querySelectorAll('#upload-results li')).map(li => li.dataset.status).join(' ')`); got != "indexed failed indexed" {
		t.Errorf("results = %q", got)
	}
	if got := eval(`document.querySelector('#upload-results li:nth-child(2) .document-error').textContent`); !strings.Contains(got, "blob.bin") {
		t.Errorf("failure reason = %q", got)
	}
	if got := eval(`String(document.querySelectorAll('#upload-results b, #upload-results script').length)`); got != "0" {
		t.Error("server text became markup")
	}
	do(
		chromedp.Click(chromedp.CSS(`#upload-done a`)),
		chromedp.WaitVisible(chromedp.CSS(`#documents`)),
	)
	if got := eval(`String(document.querySelectorAll('#documents tbody tr').length)`); got != "2" {
		t.Errorf("%s documents listed after the upload", got)
	}
}
