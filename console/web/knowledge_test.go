package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
	"github.com/convosphere/convosphere/store/sqlite"
)

// fakeKnowledge ingests into the real store the way the knowledge service
// does (one record per source; the same content again is left alone)
// without an index, and searches with enginetest's fixed passages. Content
// starting with INTERNAL fails with an internal error, content starting
// with UNAVAILABLE is stored and then fails to index.
type fakeKnowledge struct {
	*enginetest.Retriever
	store *sqlite.DB

	mu       sync.Mutex
	ingested []string // the sources Ingest received, in order
}

func (f *fakeKnowledge) Ingest(ctx context.Context, kb, source string, content []byte) (*engine.Document, bool, error) {
	f.mu.Lock()
	f.ingested = append(f.ingested, source)
	f.mu.Unlock()
	switch {
	case len(content) > 1<<10:
		return nil, false, engine.Errorf(engine.ETOOLARGE, "%s is %d bytes, over the limit of 1024 bytes.", source, len(content))
	case !utf8.Valid(content) || bytes.IndexByte(content, 0) >= 0:
		return nil, false, engine.Errorf(engine.EINVALID, "Unsupported file type: %s is not UTF-8 text (it looks binary).", source)
	case bytes.HasPrefix(content, []byte("INTERNAL")):
		return nil, false, errors.New("index file is corrupt")
	}
	sum := sha256.Sum256(content)
	hash := hex.EncodeToString(sum[:])
	prev, err := f.store.DocumentBySource(ctx, kb, source)
	if err == nil && prev.SHA256 == hash && prev.Status == engine.DocumentIndexed {
		prev.Content = nil
		return prev, true, nil
	}
	doc := &engine.Document{KnowledgeBase: kb, Source: source, Title: source, ContentType: "text/markdown",
		Content: content, SHA256: hash, Size: int64(len(content)), Status: engine.DocumentPending}
	if err := f.store.SaveDocument(ctx, doc); err != nil {
		return nil, false, err
	}
	doc.Content = nil
	doc.Status, doc.Chunks = engine.DocumentIndexed, bytes.Count(content, []byte("\n\n"))+1
	var ingestErr error
	if bytes.HasPrefix(content, []byte("UNAVAILABLE")) {
		doc.Status, doc.Chunks, doc.Error = engine.DocumentFailed, 0, "Indexing failed: the search index is unavailable, try again later"
		ingestErr = engine.Errorf(engine.EUNAVAILABLE, "%s", doc.Error)
	}
	if err := f.store.SetDocumentStatus(ctx, doc.ID, doc.Status, doc.Chunks, doc.Error); err != nil {
		return nil, false, err
	}
	return doc, false, ingestErr
}

// DocumentChunks cuts the stored content at blank lines; content starting
// with BROKEN cannot be read.
func (f *fakeKnowledge) DocumentChunks(ctx context.Context, id string) (*engine.Document, []engine.Passage, error) {
	doc, err := f.store.DocumentByID(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	content := string(doc.Content)
	doc.Content = nil
	if strings.HasPrefix(content, "BROKEN") {
		return doc, nil, engine.Errorf(engine.EINVALID, "%s is not valid Markdown any more.", doc.Source)
	}
	var out []engine.Passage
	for i, part := range strings.Split(content, "\n\n") {
		out = append(out, engine.Passage{ID: fmt.Sprintf("%s:%d", id, i), KnowledgeBase: doc.KnowledgeBase, DocumentID: id,
			Document: doc.Source, Title: doc.Title, HeadingPath: []string{"Section " + strconv.Itoa(i)}, Position: i, Text: part})
	}
	return doc, out, nil
}

func (f *fakeKnowledge) DeleteDocument(ctx context.Context, id string) error {
	return f.store.DeleteDocument(ctx, id)
}

func (f *fakeKnowledge) DeleteKnowledgeBase(ctx context.Context, name string) error {
	return f.store.DeleteKnowledgeBase(ctx, name)
}

func (f *fakeKnowledge) sources() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ingested)
}

// part is one part of a multipart test body: a file (name and content
// under field "file"), a plain field, or a raw Content-Disposition.
type part struct {
	name        string
	content     string
	field       bool   // a form field named name, not a file
	disposition string // overrides the Content-Disposition built from name
}

// quoteParam quotes a MIME parameter value, escaping \ and " as mime/multipart does.
func quoteParam(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// multipartBody builds a multipart/form-data body.
func multipartBody(tb testing.TB, parts ...part) (*bytes.Buffer, string) {
	tb.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		switch {
		case p.disposition != "":
			h.Set("Content-Disposition", p.disposition)
		case p.field:
			h.Set("Content-Disposition", "form-data; name="+quoteParam(p.name))
		default:
			h.Set("Content-Disposition", "form-data; name=\"file\"; filename="+quoteParam(p.name))
			h.Set("Content-Type", "application/octet-stream")
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := io.WriteString(pw, p.content); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return &buf, w.FormDataContentType()
}

// upload posts files to a knowledge base as c.
func (e *testEnv) upload(c *client, kb string, parts ...part) *httptest.ResponseRecorder {
	e.tb.Helper()
	body, ct := multipartBody(e.tb, parts...)
	r := httptest.NewRequest(http.MethodPost, "/api/v1/knowledge-bases/"+kb+"/documents", body)
	r.Header.Set("Content-Type", ct)
	c.apply(r)
	return e.serve(r)
}

// send makes a request with a body and content type as c.
func (e *testEnv) send(c *client, method, path, contentType string, body io.Reader) *httptest.ResponseRecorder {
	e.tb.Helper()
	r := httptest.NewRequest(method, path, body)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	c.apply(r)
	return e.serve(r)
}

// uploadReply is the documented shape of an upload's answer.
type uploadReply struct {
	KnowledgeBase string `json:"knowledge_base"`
	Created       bool   `json:"created"`
	Documents     []struct {
		Name       string `json:"name"`
		Status     string `json:"status"`
		DocumentID string `json:"document_id"`
		Chunks     int    `json:"chunks"`
		Error      *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	} `json:"documents"`
}

func decodeStrict[T any](tb testing.TB, body []byte) T {
	tb.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		tb.Fatalf("response does not have the documented shape: %v\n%s", err, body)
	}
	return v
}

func mustUploadReply(tb testing.TB, w *httptest.ResponseRecorder) uploadReply {
	tb.Helper()
	if w.Code != http.StatusOK {
		tb.Fatalf("upload: %d %s", w.Code, w.Body)
	}
	return decodeStrict[uploadReply](tb, w.Body.Bytes())
}

func (e *testEnv) documents(kb string) []*engine.Document {
	e.tb.Helper()
	docs, err := e.store.ListDocuments(context.Background(), kb)
	if err != nil {
		e.tb.Fatal(err)
	}
	return docs
}

func TestUploadDocuments(t *testing.T) {
	e := mustEnv(t, envOptions{})
	admin := e.MustToken(e.MustUser("ada", engine.RoleAdmin))
	editor := e.MustSession(e.MustUser("eve", engine.RoleEditor))
	guide := "# Guide\n\nConnect Slack with the manifest.\n\nThen set the tokens."
	garbage := "\x00\x01\x02\xff\xfe binary"

	// Two files: one indexes, one fails alone with its reason.
	got := mustUploadReply(t, e.upload(admin, "docs", part{name: "guide.md", content: guide}, part{name: "blob.bin", content: garbage}))
	if got.KnowledgeBase != "docs" || !got.Created || len(got.Documents) != 2 {
		t.Fatalf("reply = %+v", got)
	}
	good, bad := got.Documents[0], got.Documents[1]
	if good.Name != "guide.md" || good.Status != "indexed" || good.DocumentID == "" || good.Chunks != 3 || good.Error != nil {
		t.Errorf("good file = %+v", good)
	}
	if bad.Name != "blob.bin" || bad.Status != "failed" || bad.DocumentID != "" || bad.Chunks != 0 ||
		bad.Error == nil || bad.Error.Code != "invalid" || !strings.Contains(bad.Error.Message, "Unsupported file type") {
		t.Errorf("bad file = %+v (error %+v)", bad, bad.Error)
	}
	if docs := e.documents("docs"); len(docs) != 1 || docs[0].Source != "guide.md" {
		t.Fatalf("stored documents = %+v", docs)
	}

	// The same content again (as an editor with a session) is unchanged.
	again := mustUploadReply(t, e.upload(editor, "docs", part{name: "guide.md", content: guide}))
	if again.Created || len(again.Documents) != 1 || again.Documents[0].Status != "unchanged" || again.Documents[0].DocumentID != good.DocumentID {
		t.Fatalf("re-upload = %+v", again)
	}
	// New content under the same name replaces the document, keeping its id.
	changed := mustUploadReply(t, e.upload(editor, "docs", part{name: "guide.md", content: guide + "\n\nMore."}))
	if d := changed.Documents[0]; d.Status != "indexed" || d.DocumentID != good.DocumentID || d.Chunks != 4 {
		t.Fatalf("changed upload = %+v", changed)
	}
	if docs := e.documents("docs"); len(docs) != 1 {
		t.Fatalf("%d documents stored, want 1", len(docs))
	}

	// Form fields are skipped; the file part may have any field name.
	w := e.upload(admin, "docs", part{name: "note", content: "hello", field: true},
		part{disposition: `form-data; name="attachment"; filename="faq.md"`, content: "# FAQ\n\nYes."})
	if r := mustUploadReply(t, w); len(r.Documents) != 1 || r.Documents[0].Name != "faq.md" || r.Documents[0].Status != "indexed" {
		t.Fatalf("upload with a field = %+v", r)
	}
}

func TestUploadRefusesUnsafeNames(t *testing.T) {
	e := mustEnv(t, envOptions{})
	admin := e.MustToken(e.MustUser("ada", engine.RoleAdmin))
	tests := []struct {
		name string
		part part
		want string // in the message
	}{
		{"parent traversal", part{name: "../../x.md"}, "path traversal"},
		{"traversal inside", part{name: "a/../../b.md"}, "path traversal"},
		{"absolute path", part{name: "/etc/passwd"}, "absolute path"},
		{"windows drive", part{name: "C:/Windows/win.ini"}, "absolute path"},
		{"backslashes", part{name: `..\..\x.md`}, "backslash"},
		{"nul byte", part{disposition: `form-data; name="file"; filename*=UTF-8''x%00y.md`}, "NUL"},
		{"control character", part{disposition: `form-data; name="file"; filename*=UTF-8''x%1B%5B2Jy.md`}, "control characters"},
		{"newline", part{disposition: `form-data; name="file"; filename*=UTF-8''x%0Ay.md`}, "control characters"},
		{"invalid utf-8", part{disposition: `form-data; name="file"; filename*=UTF-8''x%FFy.md`}, "UTF-8"},
		{"dot segment", part{name: "./x.md"}, `"." path segment`},
		{"empty segment", part{name: "a//x.md"}, "empty"},
		{"empty name", part{name: ""}, "empty file name"},
		{"too long", part{name: strings.Repeat("a", 600) + ".md"}, "at most 512"},
		{"malformed disposition", part{disposition: `form-data; name="file"; filename="x.md`}, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.part.content = "# Evil\n\nText."
			before := len(e.knowledge.sources())
			r := mustUploadReply(t, e.upload(admin, "safe", tt.part, part{name: "ok.md", content: "# Fine\n\nText."}))
			if len(r.Documents) != 2 {
				t.Fatalf("reply = %+v", r)
			}
			d := r.Documents[0]
			if d.Status != "failed" || d.Error == nil || d.Error.Code != "invalid" || !strings.Contains(d.Error.Message, tt.want) {
				t.Fatalf("unsafe name result = %+v, error %+v; want invalid mentioning %q", d, d.Error, tt.want)
			}
			if ok := r.Documents[1]; ok.Status != "indexed" && ok.Status != "unchanged" {
				t.Errorf("the good file next to it = %+v", ok)
			}
			// Only the good file reached the knowledge service.
			if got := e.knowledge.sources()[before:]; !slices.Equal(got, []string{"ok.md"}) {
				t.Errorf("the service received %q", got)
			}
		})
	}
	for _, d := range e.documents("safe") {
		if d.Source != "ok.md" {
			t.Errorf("stored a document named %q", d.Source)
		}
	}
	// A relative name with folders is a plain name.
	r := mustUploadReply(t, e.upload(admin, "safe", part{name: "setup/slack.md", content: "# Slack\n\nText."}))
	if d := r.Documents[0]; d.Name != "setup/slack.md" || d.Status != "indexed" {
		t.Fatalf("relative name = %+v", d)
	}
}

func TestUploadPerFileFailures(t *testing.T) {
	e := mustEnv(t, envOptions{})
	admin := e.MustToken(e.MustUser("ada", engine.RoleAdmin))
	secret := "INTERNAL the-secret-document-text"
	r := mustUploadReply(t, e.upload(admin, "docs",
		part{name: "big.md", content: strings.Repeat("x", 2000)},
		part{name: "broken.md", content: secret},
		part{name: "later.md", content: "UNAVAILABLE for now"},
		part{name: "fine.md", content: "# Fine"},
	))
	want := []struct{ status, code string }{{"failed", "too_large"}, {"failed", "internal"}, {"failed", "unavailable"}, {"indexed", ""}}
	for i, w := range want {
		d := r.Documents[i]
		code := ""
		if d.Error != nil {
			code = d.Error.Code
		}
		if d.Status != w.status || code != w.code {
			t.Errorf("file %d = %+v (error %+v), want %s %s", i, d, d.Error, w.status, w.code)
		}
	}
	if m := r.Documents[1].Error.Message; m != internalMessage {
		t.Errorf("an internal error leaks: %q", m)
	}
	if d := r.Documents[2]; d.DocumentID == "" {
		t.Errorf("a stored document that failed to index has no id: %+v", d)
	}
	logs := e.logs.String()
	if strings.Count(logs, "index file is corrupt") != 1 {
		t.Errorf("the internal error is not logged exactly once:\n%s", logs)
	}
	if strings.Contains(logs, "the-secret-document-text") {
		t.Errorf("document contents were logged:\n%s", logs)
	}
}

func TestUploadRefusedRequests(t *testing.T) {
	e := mustEnv(t, envOptions{Config: Config{MaxUploadBytes: 4 << 10, MaxUploadFiles: 3}})
	admin := e.MustToken(e.MustUser("ada", engine.RoleAdmin))
	viewer := e.MustToken(e.MustUser("vic", engine.RoleViewer))
	viewerSession := e.MustSession(e.MustUser("val", engine.RoleViewer))
	body := func(parts ...part) (io.Reader, string) { b, ct := multipartBody(t, parts...); return b, ct }
	file := part{name: "a.md", content: "# A\n\nText."}
	big, bigCT := body(part{name: "big.md", content: strings.Repeat("x", 5<<10)})
	bigBytes, _ := io.ReadAll(big)
	truncated, truncCT := body(file)
	truncBytes, _ := io.ReadAll(truncated)
	many, manyCT := body(file, part{name: "b.md", content: "b"}, part{name: "c.md", content: "c"}, part{name: "d.md", content: "d"})
	onlyField, fieldCT := body(part{name: "note", content: "hi", field: true})

	tests := []struct {
		name   string
		c      *client
		kb     string
		ct     string
		body   io.Reader
		chunk  bool // send without Content-Length
		status int
		code   string
		want   string
	}{
		{"no credentials", nil, "docs", fieldCT, strings.NewReader(""), false, 401, "unauthorized", "Authentication is required"},
		{"viewer token", viewer, "docs", "", nil, false, 403, "forbidden", "needs the admin or editor role"},
		{"viewer session", viewerSession, "docs", "", nil, false, 403, "forbidden", "needs the admin or editor role"},
		{"json body", admin, "docs", "application/json", strings.NewReader(`{"file": "x"}`), false, 415, "unsupported_media_type", "multipart/form-data"},
		{"no content type", admin, "docs", "", strings.NewReader("hello"), false, 415, "unsupported_media_type", "multipart/form-data"},
		{"no boundary", admin, "docs", "multipart/form-data", strings.NewReader("x"), false, 400, "invalid", "boundary"},
		{"no files", admin, "docs", fieldCT, onlyField, false, 400, "invalid", "has no files"},
		{"too large", admin, "docs", bigCT, bytes.NewReader(bigBytes), false, 413, "too_large", "over the limit of 4096 bytes"},
		{"too large, chunked", admin, "docs", bigCT, bytes.NewReader(bigBytes), true, 413, "too_large", "over the limit"},
		{"too many files", admin, "docs", manyCT, many, false, 413, "too_large", "more than 3 files"},
		{"cut off", admin, "docs", truncCT, bytes.NewReader(truncBytes[:len(truncBytes)-10]), false, 400, "invalid", "malformed or was cut off"},
		{"bad knowledge base name", admin, "Bad..Name", "", nil, false, 400, "invalid", "Knowledge base name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.body == nil {
				b, ct := body(file)
				tt.body, tt.ct = b, ct
			}
			r := httptest.NewRequest(http.MethodPost, "/api/v1/knowledge-bases/"+tt.kb+"/documents", tt.body)
			if tt.chunk {
				r.ContentLength = -1
			}
			if tt.ct != "" {
				r.Header.Set("Content-Type", tt.ct)
			}
			tt.c.apply(r)
			w := e.serve(r)
			code, msg := errorOf(t, w.Body.Bytes())
			if w.Code != tt.status || code != tt.code || !strings.Contains(msg, tt.want) {
				t.Fatalf("%d %s %q, want %d %s mentioning %q", w.Code, code, msg, tt.status, tt.code, tt.want)
			}
		})
	}
	// Refused requests change nothing.
	if kbs, err := e.store.ListKnowledgeBases(context.Background()); err != nil || len(kbs) != 0 {
		t.Errorf("knowledge bases after refused uploads: %v %v", kbs, err)
	}
	if got := e.knowledge.sources(); len(got) != 0 {
		t.Errorf("the service received %q", got)
	}
}

func TestKnowledgeWithoutService(t *testing.T) {
	e := mustEnv(t, envOptions{NoKnowledge: true})
	admin := e.MustToken(e.MustUser("ada", engine.RoleAdmin))
	w := e.upload(admin, "docs", part{name: "a.md", content: "# A"})
	if code, msg := errorOf(t, w.Body.Bytes()); w.Code != http.StatusServiceUnavailable || code != "unavailable" || !strings.Contains(msg, "not available") {
		t.Fatalf("%d %s %s", w.Code, code, msg)
	}
}

// searchReply is the documented shape of a search's answer.
type searchReply struct {
	Query   string `json:"query"`
	Results []struct {
		Document string  `json:"document"`
		Chunk    string  `json:"chunk"`
		Score    float64 `json:"score"`
		Heading  string  `json:"heading"`
	} `json:"results"`
	Applied engine.AppliedSettings `json:"applied"`
}

func (e *testEnv) mustKnowledgeBase(name string) {
	e.tb.Helper()
	if err := e.store.CreateKnowledgeBase(context.Background(), &engine.KnowledgeBase{Name: name}); err != nil {
		e.tb.Fatal(err)
	}
}

func TestSearchKnowledge(t *testing.T) {
	e := mustEnv(t, envOptions{Config: Config{MaxMessageBytes: 256}})
	e.mustKnowledgeBase("handbook")
	viewer := e.MustToken(e.MustUser("vic", engine.RoleViewer))
	search := func(c *client, kb, ct, body string) *httptest.ResponseRecorder {
		return e.send(c, http.MethodPost, "/api/v1/knowledge-bases/"+kb+"/search", ct, strings.NewReader(body))
	}

	// A viewer may search; results come in rank order with the documented fields.
	w := search(viewer, "handbook", "application/json", `{"query": "how much leave?", "k": 10}`)
	if w.Code != http.StatusOK {
		t.Fatalf("search: %d %s", w.Code, w.Body)
	}
	got := decodeStrict[searchReply](t, w.Body.Bytes())
	if got.Query != "how much leave?" || len(got.Results) != 2 {
		t.Fatalf("reply = %+v", got)
	}
	first := got.Results[0]
	if first.Document != "handbook/leave.md" || first.Chunk != testPassages[0].Text || first.Score != 0.9 || first.Heading != "Leave › Holidays" {
		t.Errorf("first result = %+v", first)
	}
	if r := got.Results[1]; r.Document != "handbook/expenses.md" || r.Heading != "" {
		t.Errorf("second result = %+v", r)
	}
	if got.Applied.Backend != "enginetest" || got.Applied.Limit != 10 {
		t.Errorf("applied = %+v", got.Applied)
	}
	reqs := e.retriever.Requests()
	if last := reqs[len(reqs)-1]; !slices.Equal(last.KnowledgeBases, []string{"handbook"}) || last.Query != "how much leave?" {
		t.Errorf("retrieval request = %+v", last)
	}

	// k defaults to 10, settings pass through.
	w = search(viewer, "handbook", "", `{"query": "leave", "k": 1, "min_score": 0.2, "mode": "lexical"}`)
	got = decodeStrict[searchReply](t, w.Body.Bytes())
	if w.Code != http.StatusOK || len(got.Results) != 1 || got.Applied.Limit != 1 || got.Applied.MinScore != 0.2 {
		t.Fatalf("k=1: %d %+v", w.Code, got)
	}
	w = search(viewer, "handbook", "application/json", `{"query": "leave"}`)
	if got = decodeStrict[searchReply](t, w.Body.Bytes()); got.Applied.Limit != DefaultSearchK {
		t.Errorf("default k: applied %+v", got.Applied)
	}

	tests := []struct {
		name   string
		kb     string
		ct     string
		body   string
		status int
		want   string
	}{
		{"unknown knowledge base", "nope", "application/json", `{"query": "leave"}`, 404, `"nope" does not exist`},
		{"invalid knowledge base name", "NO%20PE", "application/json", `{"query": "leave"}`, 400, "Knowledge base name"},
		{"malformed json", "handbook", "application/json", `{"query": `, 400, "not valid JSON"},
		{"not an object", "handbook", "application/json", `["leave"]`, 400, "must be a JSON object"},
		{"missing query", "handbook", "application/json", `{"k": 3}`, 400, "missing or empty"},
		{"empty query", "handbook", "application/json", `{"query": "   "}`, 400, "missing or empty"},
		{"query not a string", "handbook", "application/json", `{"query": 7}`, 400, `Field "query" must be a string`},
		{"k not a number", "handbook", "application/json", `{"query": "x", "k": "ten"}`, 400, `Field "k" must be a whole number`},
		{"k zero", "handbook", "application/json", `{"query": "x", "k": 0}`, 400, "1 to 50"},
		{"k too big", "handbook", "application/json", `{"query": "x", "k": 51}`, 400, "1 to 50"},
		{"unknown field", "handbook", "application/json", `{"query": "x", "limit": 3}`, 400, `Unknown field "limit"`},
		{"bad mode", "handbook", "application/json", `{"query": "x", "mode": "psychic"}`, 400, "Search mode"},
		{"nul byte", "handbook", "application/json", `{"query": "a\u0000b"}`, 400, "NUL"},
		{"invalid utf-8", "handbook", "application/json", "{\"query\": \"caf\xe9\"}", 400, "UTF-8"},
		{"query too long", "handbook", "application/json", `{"query": "` + strings.Repeat("q", 300) + `"}`, 400, "at most 256"},
		{"body too large", "handbook", "application/json", `{"query": "` + strings.Repeat("q", 9<<10) + `"}`, 413, "over"},
		{"multipart", "handbook", "multipart/form-data; boundary=x", `{"query": "x"}`, 415, "JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := search(viewer, tt.kb, tt.ct, tt.body)
			_, msg := errorOf(t, w.Body.Bytes())
			if w.Code != tt.status || !strings.Contains(msg, tt.want) {
				t.Fatalf("%d %q, want %d mentioning %q", w.Code, msg, tt.status, tt.want)
			}
		})
	}
	if strings.Contains(e.logs.String(), "how much leave") {
		t.Errorf("a query was logged:\n%s", e.logs.String())
	}
}

func TestListKnowledgeBasesAndDocuments(t *testing.T) {
	e := mustEnv(t, envOptions{})
	e.MustAssistant("Helper", true)
	admin := e.MustToken(e.MustUser("ada", engine.RoleAdmin))
	viewer := e.MustToken(e.MustUser("vic", engine.RoleViewer))
	mustUploadReply(t, e.upload(admin, "handbook", part{name: "leave.md", content: "# Leave\n\n25 days."},
		part{name: "later.md", content: "UNAVAILABLE now"}, part{name: "junk.bin", content: "\x00\x00"}))
	mustUploadReply(t, e.upload(admin, "other", part{name: "x.md", content: "# X"}))

	w := e.get("/api/v1/knowledge-bases", viewer)
	if w.Code != http.StatusOK {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	list := decodeStrict[struct {
		KnowledgeBases []knowledgeBaseJSON `json:"knowledge_bases"`
	}](t, w.Body.Bytes()).KnowledgeBases
	if len(list) != 2 || list[0].Name != "handbook" || list[1].Name != "other" {
		t.Fatalf("list = %+v", list)
	}
	if h := list[0]; h.Documents != 2 || h.Indexed != 1 || h.Failed != 1 || h.Chunks != 2 || !slices.Equal(h.Assistants, []string{"Helper"}) {
		t.Errorf("handbook = %+v", h)
	}
	if o := list[1]; o.Documents != 1 || len(o.Assistants) != 0 {
		t.Errorf("other = %+v", o)
	}

	w = e.get("/api/v1/knowledge-bases/handbook/documents", viewer)
	docs := decodeStrict[struct {
		KnowledgeBase string         `json:"knowledge_base"`
		Documents     []documentJSON `json:"documents"`
	}](t, w.Body.Bytes())
	if w.Code != http.StatusOK || docs.KnowledgeBase != "handbook" || len(docs.Documents) != 2 {
		t.Fatalf("documents: %d %+v", w.Code, docs)
	}
	later, leave := docs.Documents[0], docs.Documents[1]
	if later.Name != "later.md" || later.Status != engine.DocumentFailed || later.Chunks != 0 || !strings.Contains(later.Error, "unavailable") {
		t.Errorf("failed document = %+v", later)
	}
	if leave.Name != "leave.md" || leave.Status != engine.DocumentIndexed || leave.Chunks != 2 || leave.Error != "" || leave.SHA256 == "" || leave.Size == 0 {
		t.Errorf("indexed document = %+v", leave)
	}
	if w := e.get("/api/v1/knowledge-bases/missing/documents", viewer); w.Code != http.StatusNotFound {
		t.Errorf("unknown knowledge base: %d", w.Code)
	}
}

func TestManageKnowledgeBases(t *testing.T) {
	e := mustEnv(t, envOptions{})
	editor := e.MustToken(e.MustUser("eve", engine.RoleEditor))
	viewer := e.MustToken(e.MustUser("vic", engine.RoleViewer))
	create := func(c *client, body string) *httptest.ResponseRecorder {
		return e.send(c, http.MethodPost, "/api/v1/knowledge-bases", "application/json", strings.NewReader(body))
	}

	w := create(editor, `{"name": "handbook", "description": "Company handbook"}`)
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	if kb := decodeStrict[knowledgeBaseJSON](t, w.Body.Bytes()); kb.Name != "handbook" || kb.Description != "Company handbook" {
		t.Errorf("created = %+v", kb)
	}
	for _, tt := range []struct {
		name   string
		c      *client
		body   string
		status int
	}{
		{"taken", editor, `{"name": "handbook"}`, 409},
		{"invalid name", editor, `{"name": "Hand Book"}`, 400},
		{"control characters", editor, `{"name": "x", "description": "a\u0007b"}`, 400},
		{"viewer", viewer, `{"name": "mine"}`, 403},
	} {
		t.Run("create "+tt.name, func(t *testing.T) {
			w := create(tt.c, tt.body)
			if _, msg := errorOf(t, w.Body.Bytes()); w.Code != tt.status || msg == "" {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tt.status)
			}
		})
	}

	r := mustUploadReply(t, e.upload(editor, "handbook", part{name: "a.md", content: "# A"}, part{name: "b.md", content: "# B"}))
	id := r.Documents[0].DocumentID
	del := func(c *client, path string) *httptest.ResponseRecorder {
		return e.send(c, http.MethodDelete, path, "", nil)
	}
	if w := del(viewer, "/api/v1/knowledge-bases/handbook/documents/"+id); w.Code != http.StatusForbidden {
		t.Errorf("viewer deletes a document: %d", w.Code)
	}
	e.mustKnowledgeBase("other")
	if w := del(editor, "/api/v1/knowledge-bases/other/documents/"+id); w.Code != http.StatusNotFound {
		t.Errorf("delete through another knowledge base: %d", w.Code)
	}
	if w := del(editor, "/api/v1/knowledge-bases/handbook/documents/"+id); w.Code != http.StatusNoContent {
		t.Fatalf("delete document: %d %s", w.Code, w.Body)
	}
	if docs := e.documents("handbook"); len(docs) != 1 || docs[0].Source != "b.md" {
		t.Errorf("documents after delete = %+v", docs)
	}
	if w := del(editor, "/api/v1/knowledge-bases/handbook/documents/"+id); w.Code != http.StatusNotFound {
		t.Errorf("delete again: %d", w.Code)
	}
	if w := del(viewer, "/api/v1/knowledge-bases/handbook"); w.Code != http.StatusForbidden {
		t.Errorf("viewer deletes a knowledge base: %d", w.Code)
	}
	if w := del(editor, "/api/v1/knowledge-bases/handbook"); w.Code != http.StatusNoContent {
		t.Fatalf("delete knowledge base: %d %s", w.Code, w.Body)
	}
	if w := del(editor, "/api/v1/knowledge-bases/handbook"); w.Code != http.StatusNotFound {
		t.Errorf("delete it again: %d", w.Code)
	}
	w = e.send(viewer, http.MethodPost, "/api/v1/knowledge-bases/handbook/search", "application/json", strings.NewReader(`{"query": "a"}`))
	if w.Code != http.StatusNotFound {
		t.Errorf("search a deleted knowledge base: %d", w.Code)
	}
	if logs := e.logs.String(); !strings.Contains(logs, `"msg":"knowledge base deleted"`) {
		t.Errorf("deletion not logged:\n%s", logs)
	}
}

func TestUploadTooLargeOverHTTP(t *testing.T) {
	// Over a real connection the client must get the 413, not a reset,
	// whether it announces the size or streams the body.
	e := mustEnv(t, envOptions{Config: Config{MaxUploadBytes: 64 << 10}})
	admin := e.MustToken(e.MustUser("ada", engine.RoleAdmin))
	srv := httptest.NewServer(e.srv)
	t.Cleanup(srv.Close)
	body, ct := multipartBody(t, part{name: "big.md", content: strings.Repeat("x", 2<<20)})
	raw := body.Bytes()
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%t", chunked), func(t *testing.T) {
			var r io.Reader = bytes.NewReader(raw)
			if chunked {
				r = io.MultiReader(r) // hides the length: sent chunked
			}
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/knowledge-bases/docs/documents", r)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", ct)
			admin.apply(req)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatalf("the client got no answer: %v", err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if code, _ := errorOf(t, b); resp.StatusCode != http.StatusRequestEntityTooLarge || code != engine.ETOOLARGE {
				t.Fatalf("%s %s", resp.Status, b)
			}
		})
	}
	if got := e.knowledge.sources(); len(got) != 0 {
		t.Errorf("the service received %q", got)
	}
}
