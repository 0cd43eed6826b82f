package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"golang.org/x/net/html"

	"github.com/convosphere/convosphere/engine"
)

func TestPlaygroundPage(t *testing.T) {
	env := mustEnv(t, envOptions{Config: Config{Version: "v9.8.7"}})
	env.MustAssistant("alpha", false)
	env.MustAssistant("helper", true)
	alice := env.MustSession(env.MustUser("alice", engine.RoleViewer))

	w := env.get("/playground", alice)
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d: %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("content type = %q", ct)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control = %q", cc)
	}
	doc := MustParseHTML(t, w.Body.Bytes())

	// The CSRF token for the chat API is in a meta tag.
	meta := findOne(t, doc, "meta", hasAttr("name", "csrf-token"))
	if v, _ := attr(meta, "content"); v != alice.csrf {
		t.Fatalf("csrf meta = %q, want the session's token", v)
	}
	// The picker lists the assistants with the default preselected.
	sel := findOne(t, doc, "select", hasAttr("id", "assistant"))
	findOne(t, doc, "label", hasAttr("for", "assistant"))
	opts := findAll(sel, "option", nil)
	if len(opts) != 2 {
		t.Fatalf("options = %d", len(opts))
	}
	for _, o := range opts {
		v, _ := attr(o, "value")
		_, selected := attr(o, "selected")
		if selected != (v == "helper") {
			t.Fatalf("option %q selected = %v", v, selected)
		}
	}
	if got := textOf(opts[1]); got != "helper (default) — Answers about helper" {
		t.Fatalf("option text = %q", got)
	}
	// The message box is labelled; the conversation area and status announce changes.
	findOne(t, doc, "textarea", hasAttr("id", "message"))
	findOne(t, doc, "label", hasAttr("for", "message"))
	findOne(t, doc, "ol", hasAttr("id", "messages"))
	findOne(t, doc, "", hasAttr("id", "conversation-status"))
	if live := findAll(doc, "", hasAttr("aria-live", "polite")); len(live) == 0 {
		t.Fatal("no aria-live region")
	}
	findOne(t, doc, "button", hasAttr("id", "new-conversation"))
	// Scripts come from /static only: no inline script (the CSP forbids it).
	var srcs []string
	for _, s := range findAll(doc, "script", nil) {
		src, ok := attr(s, "src")
		if !ok || strings.TrimSpace(textOf(s)) != "" {
			t.Fatal("inline script on the page")
		}
		srcs = append(srcs, src)
	}
	if len(srcs) != 2 || !strings.HasPrefix(srcs[0], "/static/app.js?v=") || !strings.HasPrefix(srcs[1], "/static/playground.js?v=") {
		t.Fatalf("scripts = %v", srcs)
	}
	for _, n := range findAll(doc, "", func(n *html.Node) bool { _, ok := attr(n, "style"); return ok }) {
		t.Fatalf("inline style attribute on <%s>", n.Data)
	}
	// Shared page data: the user, the sign-out form with its token, the version.
	if got := textOf(findOne(t, doc, "span", hasAttr("class", "whoami"))); got != "alice" {
		t.Fatalf("whoami = %q", got)
	}
	logout := findOne(t, doc, "form", hasAttr("action", "/logout"))
	if v, _ := attr(findOne(t, logout, "input", hasAttr("name", "csrf")), "value"); v != alice.csrf {
		t.Fatal("the sign-out form lacks the CSRF token")
	}
	if got := textOf(findOne(t, doc, "footer", nil)); got != "ConvoSphere v9.8.7" {
		t.Fatalf("footer = %q", got)
	}
	if nav := findOne(t, doc, "a", hasAttr("aria-current", "page")); func() string { v, _ := attr(nav, "href"); return v }() != "/playground" {
		t.Fatal("the current page is not marked in the navigation")
	}
	// Icons are inline SVG drawn with currentColor and hidden from screen readers.
	svgs := findAll(doc, "svg", nil)
	if len(svgs) < 5 {
		t.Fatalf("svg icons = %d", len(svgs))
	}
	for _, s := range svgs {
		if v, _ := attr(s, "aria-hidden"); v != "true" {
			t.Fatal("an icon is not aria-hidden")
		}
	}
	if !strings.Contains(w.Body.String(), `stroke="currentColor"`) {
		t.Fatal("icons do not use currentColor")
	}
}

func TestPlaygroundWithoutAssistants(t *testing.T) {
	env := mustEnv(t, envOptions{})
	alice := env.MustSession(env.MustUser("alice", engine.RoleViewer))
	w := env.get("/playground", alice)
	doc := MustParseHTML(t, w.Body.Bytes())
	if len(findAll(doc, "form", hasAttr("id", "composer"))) != 0 {
		t.Fatal("a chat form without assistants")
	}
	if !strings.Contains(textOf(doc), "No assistant exists yet") {
		t.Fatal("no explanation for the missing assistants")
	}
}

func TestThemeFromCookie(t *testing.T) {
	env := mustEnv(t, envOptions{})
	tests := []struct {
		cookie  string
		want    string // data-theme, "" for none
		pressed string // the switch button marked pressed
	}{
		{"", "", "system"},
		{"dark", "dark", "dark"},
		{"light", "light", "light"},
		{"purple", "", "system"},
	}
	for _, tt := range tests {
		t.Run("cookie="+tt.cookie, func(t *testing.T) {
			var cookies []*http.Cookie
			if tt.cookie != "" {
				cookies = append(cookies, &http.Cookie{Name: "cs_theme", Value: tt.cookie})
			}
			w := env.get("/login", nil, cookies...)
			doc := MustParseHTML(t, w.Body.Bytes())
			root := findOne(t, doc, "html", nil)
			got, ok := attr(root, "data-theme")
			if got != tt.want || ok != (tt.want != "") {
				t.Fatalf("data-theme = %q (present %v), want %q", got, ok, tt.want)
			}
			for _, b := range findAll(doc, "button", func(n *html.Node) bool { _, ok := attr(n, "data-theme-choice"); return ok }) {
				choice, _ := attr(b, "data-theme-choice")
				pressed, _ := attr(b, "aria-pressed")
				if (pressed == "true") != (choice == tt.pressed) {
					t.Fatalf("button %s aria-pressed = %s", choice, pressed)
				}
			}
		})
	}
}

func TestSecurityHeaders(t *testing.T) {
	env := mustEnv(t, envOptions{})
	for _, path := range []string{"/login", "/healthz", "/api/v1/assistants", "/static/app.css"} {
		w := env.get(path, nil)
		h := w.Header()
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Fatalf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Fatalf("%s: CSP allows inline code: %q", path, csp)
		}
		for k, v := range map[string]string{
			"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY",
		} {
			if h.Get(k) != v {
				t.Fatalf("%s: %s = %q, want %q", path, k, h.Get(k), v)
			}
		}
	}
}

func TestStaticAssets(t *testing.T) {
	env := mustEnv(t, envOptions{})
	for name, ctype := range map[string]string{
		"app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
		"playground.js": "text/javascript; charset=utf-8", "favicon.svg": "image/svg+xml",
	} {
		u, err := env.srv.assets.url(name)
		if err != nil {
			t.Fatal(err)
		}
		w := env.get(u, nil)
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != ctype || w.Body.Len() == 0 {
			t.Fatalf("%s = %d %q", u, w.Code, w.Header().Get("Content-Type"))
		}
		if cc := w.Header().Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Fatalf("%s: Cache-Control = %q", u, cc)
		}
		etag := w.Header().Get("ETag")
		// Without the version, the browser must revalidate, and may get a 304.
		w = env.get("/static/"+name, nil)
		if cc := w.Header().Get("Cache-Control"); cc != "public, no-cache" {
			t.Fatalf("unversioned %s: Cache-Control = %q", name, cc)
		}
		r := httptest.NewRequest(http.MethodGet, "/static/"+name, nil)
		r.Header.Set("If-None-Match", etag)
		if w := env.serve(r); w.Code != http.StatusNotModified || w.Body.Len() != 0 {
			t.Fatalf("revalidate %s = %d", name, w.Code)
		}
	}
	if w := env.get("/static/nope.css", nil); w.Code != http.StatusNotFound {
		t.Fatalf("missing asset = %d", w.Code)
	}
	if _, err := env.srv.assets.url("nope.css"); err == nil {
		t.Fatal("an unknown asset got a URL")
	}
}

func TestTemplatesFailLoudly(t *testing.T) {
	a, err := loadAssets()
	if err != nil {
		t.Fatal(err)
	}
	good := fstest.MapFS{
		"templates/layout.html": {Data: []byte(`{{define "layout"}}<p>{{template "content" .}}</p>{{end}}`)},
		"templates/icons.html":  {Data: []byte(`{{define "icon-x"}}<svg></svg>{{end}}`)},
		"templates/one.html":    {Data: []byte(`{{define "content"}}one{{end}}`)},
		"templates/bad.html":    {Data: []byte(`{{define "content"}}{{.Oops}{{end}}`)},
		"templates/empty.html":  {Data: []byte(`no content here`)},
	}
	tests := []struct {
		name  string
		pages []string
		ok    bool
	}{
		{"all present", []string{"one"}, true},
		{"missing page", []string{"one", "two"}, false},
		{"syntax error", []string{"bad"}, false},
		{"no content template", []string{"empty"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseTemplatesFS(good, tt.pages, a)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	// Every page of the console parses and renders.
	pages, err := parseTemplates(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != len(pageNames) {
		t.Fatalf("pages = %d", len(pages))
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	env := mustEnv(t, envOptions{})
	w := env.get("/api/v1/nope", nil)
	if code, _ := errorOf(t, w.Body.Bytes()); w.Code != http.StatusNotFound || code != engine.ENOTFOUND {
		t.Fatalf("unknown API path = %d %s", w.Code, w.Body)
	}
	w = env.get("/nope", nil)
	if w.Code != http.StatusNotFound || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("unknown page = %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	doc := MustParseHTML(t, w.Body.Bytes())
	if got := textOf(findOne(t, doc, "h1", nil)); got != "404 · Not Found" {
		t.Fatalf("error page title = %q", got)
	}
	w = env.get("/api/v1/chat", nil)
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
		t.Fatalf("GET chat = %d, Allow %q", w.Code, w.Header().Get("Allow"))
	}
	if code, _ := errorOf(t, w.Body.Bytes()); code != "method_not_allowed" {
		t.Fatalf("code = %s", code)
	}
}

// TestDocumentPage: a citation's link shows the document chunk by chunk,
// each chunk an anchor; unknown documents, or one asked for under another
// knowledge base, are 404; signed-out users are sent to sign in.
func TestDocumentPage(t *testing.T) {
	env := mustEnv(t, envOptions{})
	ctx := context.Background()
	if err := env.store.CreateKnowledgeBase(ctx, &engine.KnowledgeBase{Name: "handbook"}); err != nil {
		t.Fatal(err)
	}
	doc, _, err := env.knowledge.Ingest(ctx, "handbook", "leave.md", []byte("# Leave\n\nEveryone gets **25 days**.\n\n<script>alert(1)</script> Ask HR."))
	if err != nil {
		t.Fatal(err)
	}
	viewer := env.MustSession(env.MustUser("vera", engine.RoleViewer))
	w := env.get("/knowledge/handbook/documents/"+doc.ID, viewer)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	page := MustParseHTML(t, w.Body.Bytes())
	if got := textOf(findOne(t, page, "h1", nil)); got != "leave.md" {
		t.Errorf("title %q", got)
	}
	chunks := findAll(page, "li", hasAttr("class", "chunk"))
	if len(chunks) != 3 {
		t.Fatalf("%d chunks, want 3", len(chunks))
	}
	second := findOne(t, page, "li", hasAttr("id", "chunk-1"))
	findOne(t, second, "strong", nil) // Markdown rendered
	if strings.Contains(w.Body.String(), "<script>alert") {
		t.Error("raw HTML from a document reached the page")
	}
	for _, tt := range []struct{ path, why string }{
		{"/knowledge/other/documents/" + doc.ID, "another knowledge base"},
		{"/knowledge/handbook/documents/nope", "an unknown document"},
	} {
		if w := env.get(tt.path, viewer); w.Code != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", tt.why, w.Code)
		}
	}
	if w := env.get("/knowledge/handbook/documents/"+doc.ID, nil); w.Code != http.StatusSeeOther && w.Code != http.StatusFound {
		t.Errorf("signed out: status %d, want a redirect to sign in", w.Code)
	}
	broken, _, err := env.knowledge.Ingest(ctx, "handbook", "broken.md", []byte("BROKEN content"))
	if err != nil {
		t.Fatal(err)
	}
	w = env.get("/knowledge/handbook/documents/"+broken.ID, viewer)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "could not be read") {
		t.Errorf("unreadable document: %d, want the page with the reason", w.Code)
	}
}
