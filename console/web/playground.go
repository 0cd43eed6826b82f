package web

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// playgroundPage is the data of the playground.
type playgroundPage struct {
	Assistants      []*engine.Assistant
	Selected        string // the assistant preselected in the picker
	MaxMessageBytes int
}

// showPlayground shows the chat playground; ?assistant=NAME preselects
// that assistant. The page talks to
// POST /api/v1/chat with the session cookie and the page's CSRF token.
func (s *Server) showPlayground(c *gin.Context) {
	all, err := s.deps.Store.ListAssistants(c.Request.Context())
	if err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The assistants could not be loaded; please try again in a minute."))
		return
	}
	page := playgroundPage{Assistants: all, MaxMessageBytes: s.cfg.MaxMessageBytes}
	// ?assistant=NAME (the Assistants page's "Try in Playground") picks
	// that one; else the default.
	if want := c.Query("assistant"); want != "" {
		for _, a := range all {
			if strings.EqualFold(a.Name, want) {
				page.Selected = a.Name
				break
			}
		}
	}
	for _, a := range all {
		if page.Selected == "" && a.IsDefault {
			page.Selected = a.Name
			break
		}
	}
	if page.Selected == "" && len(all) > 0 {
		page.Selected = all[0].Name
	}
	v := s.newView(c, "Playground")
	v.Nav = "playground"
	v.Page = page
	s.render(c, http.StatusOK, "playground", v)
}
