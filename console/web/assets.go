package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/gin-gonic/gin"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pageNames are the pages the console renders; each has templates/NAME.html
// defining "content", rendered inside templates/layout.html.
var pageNames = []string{
	"error", "login", "invite", "playground", "document", "tools",
	"dashboard", "analytics",
	"assistants", "assistant_form",
	"knowledge", "knowledge_base", "knowledge_search", "knowledge_upload", "knowledge_delete",
	"conversations", "conversation",
	"users", "user", "settings", "audit", "budgets",
}

// sharedTemplates are parsed into every page.
var sharedTemplates = []string{"templates/layout.html", "templates/icons.html"}

// asset is an embedded static file, hashed once at start-up.
type asset struct {
	body        []byte
	contentType string
	hash        string // the content's short SHA-256, used as ETag and version
}

// assets are the embedded static files by name (relative to static/).
type assets struct {
	files map[string]asset
}

func loadAssets() (*assets, error) {
	return loadAssetsFS(staticFS, "static")
}

func loadAssetsFS(fsys fs.FS, root string) (*assets, error) {
	a := &assets{files: map[string]asset{}}
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = http.DetectContentType(body)
		}
		a.files[strings.TrimPrefix(p, root+"/")] = asset{body: body, contentType: ctype, hash: hex.EncodeToString(sum[:8])}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("console: load static assets: %w", err)
	}
	return a, nil
}

// url returns the versioned address of a static file; an unknown name is
// an error, so a template naming a missing asset fails loudly.
func (a *assets) url(name string) (string, error) {
	f, ok := a.files[name]
	if !ok {
		return "", fmt.Errorf("no static file %q", name)
	}
	return "/static/" + name + "?v=" + f.hash, nil
}

// parseTemplates parses every page once, with the shared templates. A
// missing or broken template is an error: the console refuses to start.
func parseTemplates(a *assets) (map[string]*template.Template, error) {
	return parseTemplatesFS(templateFS, pageNames, a)
}

func parseTemplatesFS(fsys fs.FS, names []string, a *assets) (map[string]*template.Template, error) {
	funcs := template.FuncMap{"static": a.url}
	pages := make(map[string]*template.Template, len(names))
	for _, name := range names {
		files := append(append([]string(nil), sharedTemplates...), "templates/"+name+".html")
		for _, f := range files {
			if _, err := fs.Stat(fsys, f); err != nil {
				return nil, fmt.Errorf("console: template %s of page %q: %w", f, name, err)
			}
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(fsys, files...)
		if err != nil {
			return nil, fmt.Errorf("console: parse page %q: %w", name, err)
		}
		for _, want := range []string{"layout", "content"} {
			if t.Lookup(want) == nil {
				return nil, fmt.Errorf("console: page %q defines no %q template", name, want)
			}
		}
		pages[name] = t
	}
	return pages, nil
}

// staticFile serves an embedded asset. A request naming the current
// version may be cached for a year; others must revalidate by ETag.
func (s *Server) staticFile(c *gin.Context) {
	name := strings.TrimPrefix(c.Param("name"), "/")
	f, ok := s.assets.files[name]
	if !ok {
		c.Header("Cache-Control", "no-store")
		c.Data(http.StatusNotFound, "text/plain; charset=utf-8", []byte("404 page not found\n"))
		return
	}
	etag := `"` + f.hash + `"`
	c.Header("ETag", etag)
	if c.Query("v") == f.hash {
		c.Header("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		c.Header("Cache-Control", "public, no-cache")
	}
	if match := c.GetHeader("If-None-Match"); match != "" && etagMatches(match, etag) {
		c.Status(http.StatusNotModified)
		return
	}
	c.Data(http.StatusOK, f.contentType, f.body)
}

// etagMatches reports whether an If-None-Match header names etag.
func etagMatches(header, etag string) bool {
	for part := range strings.SplitSeq(header, ",") {
		part = strings.TrimPrefix(strings.TrimSpace(part), "W/")
		if part == "*" || part == etag {
			return true
		}
	}
	return false
}
