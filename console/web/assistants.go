package web

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// assistantJSON is an assistant as the picker sees it.
type assistantJSON struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	IsDefault   bool   `json:"is_default"`
}

// listAssistants answers GET /api/v1/assistants:
// {"assistants": [{"name", "description", "is_default"}]}, ordered by name.
func (s *Server) listAssistants(c *gin.Context) {
	all, err := s.deps.Store.ListAssistants(c.Request.Context())
	if err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The assistants could not be loaded; please try again in a minute."))
		return
	}
	out := make([]assistantJSON, 0, len(all))
	for _, a := range all {
		out = append(out, assistantJSON{Name: a.Name, Description: a.Description, IsDefault: a.IsDefault})
	}
	s.writeJSON(c, http.StatusOK, map[string]any{"assistants": out})
}
