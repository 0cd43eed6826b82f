package web

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// listPlatforms serves GET /api/v1/platforms: each chat platform's
// connection state as the bot last reported it ("failed" with the reason
// when, say, Discord refused the bot's token).
func (s *Server) listPlatforms(c *gin.Context) {
	list, err := s.deps.Store.PlatformStatuses(c.Request.Context())
	if err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The platforms' status could not be loaded; please try again in a minute."))
		return
	}
	s.writeJSON(c, http.StatusOK, map[string]any{"platforms": list})
}
