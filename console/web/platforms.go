package web

import (
	"net/http"
	"strconv"

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

// listToolCalls serves GET /api/v1/tool-calls (admins): the audit of tool
// calls, newest first; ?assistant_id=, ?tool= and ?limit= (at most 500)
// narrow it.
func (s *Server) listToolCalls(c *gin.Context) {
	f := engine.ToolCallFilter{AssistantID: c.Query("assistant_id"), Tool: c.Query("tool"), Limit: 100}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			s.fail(c, engine.Errorf(engine.EINVALID, "limit %q is invalid: use 1 to 500.", l))
			return
		}
		f.Limit = n
	}
	list, err := s.deps.Store.ListToolCalls(c.Request.Context(), f)
	if err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The tool calls could not be loaded; please try again in a minute."))
		return
	}
	s.writeJSON(c, http.StatusOK, map[string]any{"tool_calls": list})
}
