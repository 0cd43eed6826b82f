package web

import (
	"html/template"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// documentPage shows a knowledge document chunk by chunk: where a citation
// (…/documents/ID#chunk-N) points.
type documentPage struct {
	Doc    *engine.Document
	Chunks []documentChunk
	Error  string // why the chunks cannot be shown
}

type documentChunk struct {
	Position int
	Section  string
	HTML     template.HTML // the chunk's text rendered from Markdown, raw HTML left out
}

// showDocument serves GET /knowledge/:kb/documents/:id to anyone signed in.
func (s *Server) showDocument(c *gin.Context) {
	if s.deps.Knowledge == nil {
		s.fail(c, engine.Errorf(engine.EUNAVAILABLE, "Knowledge bases are not available on this console."))
		return
	}
	doc, chunks, err := s.deps.Knowledge.DocumentChunks(c.Request.Context(), c.Param("id"))
	switch {
	case engine.IsNotFound(err) || doc != nil && doc.KnowledgeBase != c.Param("kb"):
		s.fail(c, notFoundError(c.Request.URL.Path))
		return
	case doc == nil:
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The document could not be loaded; please try again in a minute."))
		return
	}
	page := documentPage{Doc: doc}
	if err != nil {
		page.Error = "The document's text could not be read: " + engine.ErrorMessage(err)
	}
	for _, ch := range chunks {
		page.Chunks = append(page.Chunks, documentChunk{
			Position: ch.Position,
			Section:  strings.Join(ch.HeadingPath, " › "),
			HTML:     template.HTML(demoteHeadings(renderMarkdown(ch.Text))), // renderMarkdown escapes raw HTML
		})
	}
	title := doc.Title
	if title == "" {
		title = doc.Source
	}
	v := s.newView(c, title)
	v.Nav = "knowledge"
	v.Page = page
	s.render(c, http.StatusOK, "document", v)
}

// headingDemotion moves a chunk's headings below the page's own (h1 the
// document, chunks under it): # becomes h3, ## h4, deeper h5 and h6.
var headingDemotion = strings.NewReplacer(
	"<h1", "<h3", "</h1>", "</h3>", "<h2", "<h4", "</h2>", "</h4>",
	"<h3", "<h5", "</h3>", "</h5>", "<h4", "<h6", "</h4>", "</h6>",
	"<h5", "<h6", "</h5>", "</h6>",
)

// demoteHeadings applies headingDemotion to HTML from renderMarkdown, in
// which every tag is goldmark's (raw HTML is escaped).
func demoteHeadings(html string) string { return headingDemotion.Replace(html) }
