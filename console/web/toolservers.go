package web

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/net/http/httpguts"

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

// redactedValue is how GET shows a secret; sent back, it keeps the stored value.
const redactedValue = "[redacted]"

var toolServerForm = jsonForm{
	Example: `{"transport": "stdio", "command": "npx", "args": ["-y", "@modelcontextprotocol/server-everything"]}`,
	Fields:  `"transport", "command", "args", "env", "url" and "headers"`,
	Hint:    `send {"transport": "stdio", "command": "…", "args": […]} or {"transport": "http", "url": "…"}`,
}

// toolServerOf reads the body of PUT /api/v1/tool-servers/{name} and of
// POST …/{name}/test into the server named by the path. Secrets are
// write-only: an env or header value left empty (or "[redacted]", as GET
// shows it) keeps the value stored under that name, and an empty url
// keeps the stored url; names missing from the body are dropped.
func (s *Server) toolServerOf(c *gin.Context) (*engine.ToolServer, error) {
	var in toolServerJSON
	if err := readJSON(c, 64<<10, &in, toolServerForm); err != nil {
		return nil, err
	}
	ts := &engine.ToolServer{Name: c.Param("name"), Transport: strings.TrimSpace(in.Transport), Command: strings.TrimSpace(in.Command),
		Args: in.Args, Env: in.Env, URL: strings.TrimSpace(in.URL), Headers: in.Headers}
	for k, v := range ts.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return nil, engine.Errorf(engine.EINVALID, "Environment variable %q is invalid: a name has no = and neither has a NUL byte.", k)
		}
	}
	for k, v := range ts.Headers {
		if !httpguts.ValidHeaderFieldName(k) || !httpguts.ValidHeaderFieldValue(v) {
			return nil, engine.Errorf(engine.EINVALID, "Header %q is invalid: a name is letters, digits and -, and a value is on one line.", k)
		}
	}
	var stored *engine.ToolServer
	if keepsAny(ts) {
		list, err := s.deps.Store.ToolServers(c.Request.Context())
		if err != nil {
			return nil, engine.WrapError(engine.EUNAVAILABLE, err, "The MCP servers could not be loaded; please try again in a minute.")
		}
		for _, t := range list {
			if t.Name == ts.Name {
				stored = t
			}
		}
	}
	var err error
	if ts.Env, err = keepSecrets("environment variable", ts.Env, stored, func(t *engine.ToolServer) map[string]string { return t.Env }); err != nil {
		return nil, err
	}
	if ts.Headers, err = keepSecrets("header", ts.Headers, stored, func(t *engine.ToolServer) map[string]string { return t.Headers }); err != nil {
		return nil, err
	}
	if ts.URL == "" && ts.Transport != "stdio" && stored != nil {
		ts.URL = stored.URL
	}
	return ts, nil
}

// keepsAny reports whether a body asks to keep a stored value.
func keepsAny(ts *engine.ToolServer) bool {
	if ts.URL == "" && ts.Transport != "stdio" {
		return true
	}
	for _, m := range []map[string]string{ts.Env, ts.Headers} {
		for _, v := range m {
			if v == "" || v == redactedValue {
				return true
			}
		}
	}
	return false
}

// keepSecrets fills the values a body left empty or "[redacted]" from the
// stored server. An empty value with none stored stays empty; a
// "[redacted]" one with none stored is refused (it would be saved as is).
func keepSecrets(kind string, in map[string]string, stored *engine.ToolServer, of func(*engine.ToolServer) map[string]string) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	var old map[string]string
	if stored != nil {
		old = of(stored)
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		prev, ok := old[k]
		switch {
		case (v == "" || v == redactedValue) && ok:
			v = prev
		case v == redactedValue:
			return nil, engine.Errorf(engine.EINVALID, "The %s %s is %q but no value is stored for it to keep: send its value.", kind, k, redactedValue)
		}
		out[k] = v
	}
	return out, nil
}

// putToolServer serves PUT /api/v1/tool-servers/:name (admins): adds or
// replaces an MCP server; bots and consoles pick it up within seconds.
// Its tools still have to be enabled (console tools enable). Secrets are
// write-only (see toolServerOf).
func (s *Server) putToolServer(c *gin.Context) {
	ts, err := s.toolServerOf(c)
	if err == nil {
		err = ts.Validate()
	}
	if err != nil {
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

// toolServerTestTimeout bounds a connection test: starting a stdio server
// (npx may download it first), initialize and tools/list.
const toolServerTestTimeout = 25 * time.Second

// toolServerTestResponse is the body of POST /api/v1/tool-servers/{name}/test.
type toolServerTestResponse struct {
	OK    bool       `json:"ok"`
	Tools []ToolInfo `json:"tools"`
}

// testToolServer serves POST /api/v1/tool-servers/:name/test (admins):
// connects to the server of the body (as PUT takes it, stored secrets
// kept) without saving it, and lists its tools. 200 with ok and the tools
// (full names, state under the pins); 502 with the reason in words when
// the server cannot be reached.
func (s *Server) testToolServer(c *gin.Context) {
	if s.deps.Tools == nil {
		s.fail(c, errNoTools)
		return
	}
	ts, err := s.toolServerOf(c)
	if err == nil {
		err = ts.Validate()
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), toolServerTestTimeout)
	defer cancel()
	list, err := s.deps.Tools.TestServer(ctx, ts)
	if err != nil {
		if engine.ErrorCode(err) == engine.EINVALID {
			s.fail(c, err)
			return
		}
		msg := engine.ErrorMessage(err)
		if engine.ErrorCode(err) == engine.EINTERNAL {
			msg = err.Error() // admins fix what they can read
		}
		s.log.WarnContext(c.Request.Context(), "MCP server connection test failed", "server", ts.Name, "error", err)
		s.failStatus(c, http.StatusBadGateway, "tool_server_unreachable", msg)
		return
	}
	s.writeJSON(c, http.StatusOK, toolServerTestResponse{OK: true, Tools: nonNil(list)})
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
