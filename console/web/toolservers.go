package web

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// toolServerJSON is an MCP server as the API shows it: env and header
// values are secrets and never leave the server.
type toolServerJSON struct {
	Name      string            `json:"name"`
	Transport string            `json:"transport"`
	Command   string            `json:"command,omitempty"`
	Args      []string          `json:"args,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	URL       string            `json:"url,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
}

func redactedValues(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k := range m {
		out[k] = "[redacted]"
	}
	return out
}

// listToolServers serves GET /api/v1/tool-servers (admins).
func (s *Server) listToolServers(c *gin.Context) {
	list, err := s.deps.Store.ToolServers(c.Request.Context())
	if err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The MCP servers could not be loaded; please try again in a minute."))
		return
	}
	out := make([]toolServerJSON, 0, len(list))
	for _, t := range list {
		out = append(out, toolServerJSON{Name: t.Name, Transport: t.Transport, Command: t.Command, Args: t.Args,
			Env: redactedValues(t.Env), URL: t.URL, Headers: redactedValues(t.Headers)})
	}
	s.writeJSON(c, http.StatusOK, map[string]any{"tool_servers": out})
}

// putToolServer serves PUT /api/v1/tool-servers/:name (admins): adds or
// replaces an MCP server; bots and consoles pick it up within seconds.
// Its tools still have to be enabled (console tools enable).
func (s *Server) putToolServer(c *gin.Context) {
	var in toolServerJSON
	if err := c.ShouldBindJSON(&in); err != nil {
		s.fail(c, engine.Errorf(engine.EINVALID, "The body is not a JSON MCP server: %v. Send {\"transport\": \"stdio\", \"command\": \"…\", \"args\": […]} or {\"transport\": \"http\", \"url\": \"…\"}.", err))
		return
	}
	ts := &engine.ToolServer{Name: c.Param("name"), Transport: in.Transport, Command: in.Command, Args: in.Args,
		Env: in.Env, URL: in.URL, Headers: in.Headers}
	if err := ts.Validate(); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.deps.Store.SaveToolServer(c.Request.Context(), ts); err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The MCP server could not be saved; please try again in a minute."))
		return
	}
	s.writeJSON(c, http.StatusOK, toolServerJSON{Name: ts.Name, Transport: ts.Transport, Command: ts.Command, Args: ts.Args,
		Env: redactedValues(ts.Env), URL: ts.URL, Headers: redactedValues(ts.Headers)})
}

// deleteToolServer serves DELETE /api/v1/tool-servers/:name (admins).
func (s *Server) deleteToolServer(c *gin.Context) {
	err := s.deps.Store.DeleteToolServer(c.Request.Context(), c.Param("name"))
	switch {
	case engine.IsNotFound(err):
		s.fail(c, engine.Errorf(engine.ENOTFOUND, "There is no MCP server named %q.", c.Param("name")))
	case err != nil:
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The MCP server could not be deleted; please try again in a minute."))
	default:
		c.Status(http.StatusNoContent)
	}
}
