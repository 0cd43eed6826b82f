package web

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// view is the data every page gets: who is signed in, the theme, the CSRF
// token and the version, plus the page's own data in Page.
type view struct {
	Title   string
	Theme   string // "light", "dark", or "" to follow the system
	User    *engine.User
	CSRF    string
	Version string
	Nav     string // the current section, for aria-current
	Page    any
}

// newView fills the shared page data from the request.
func (s *Server) newView(c *gin.Context, title string) *view {
	v := &view{Title: title, Theme: themeOf(c.Request), Version: s.cfg.Version}
	if p := principalOf(c); p != nil {
		v.User = p.User
		v.CSRF = p.csrf
	}
	return v
}

// Theme choices persisted in the theme cookie. Anything else follows the
// system's prefers-color-scheme.
const (
	themeLight  = "light"
	themeDark   = "dark"
	themeCookie = "cs_theme"
)

// themeOf reads the theme cookie, so the first paint already has the
// chosen theme.
func themeOf(r *http.Request) string {
	ck, err := r.Cookie(themeCookie)
	if err != nil {
		return ""
	}
	switch ck.Value {
	case themeLight, themeDark:
		return ck.Value
	}
	return ""
}
