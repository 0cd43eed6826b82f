package web

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// inventoryTimeout bounds listing the tools: it connects every MCP server.
const inventoryTimeout = 15 * time.Second

// toolsPage is the data of the tools page. Each section loads on its own:
// one that fails says why and the others still show.
type toolsPage struct {
	Servers        []toolServerRow
	ServersError   string
	Configured     bool // a tool inventory is wired (Deps.Tools)
	Tools          []toolRow
	ToolsError     string
	Approvals      []approvalRow
	ApprovalsError string
	Calls          []toolCallRow
	CallsError     string
}

// toolServerRow is an MCP server without its secrets: the names of its
// environment variables and headers, never their values.
type toolServerRow struct {
	Name      string
	Transport string
	Target    string // the command and its arguments, or the URL without credentials
	Secrets   []string
	// What the edit form starts from: never a secret value.
	Command    string
	Args       string // one per line
	EnvKeys    string // the environment variables' names, one per line
	HeaderKeys string // the headers' names, one per line
	URL        string // the URL, empty when it holds credentials or a query
	URLHidden  bool   // it does: the form leaves it out, and blank keeps it
}

type toolRow struct {
	ToolInfo
	PinnedBy string
	PinnedAt time.Time
	UsedBy   []string // "assistant (mode)"
}

type approvalRow struct {
	ID        string
	Assistant string
	AskedBy   string
	Platform  engine.Platform
	Tools     []approvalToolJSON // Arguments pretty-printed
	CreatedAt time.Time
	ExpiresAt time.Time
}

type toolCallRow struct {
	*engine.ToolCallRecord
	User     string
	Duration string
}

// showTools serves GET /tools (admins): the MCP servers, their tools and
// whether each is enabled, the approvals waiting for a decision and the
// recent tool calls.
func (s *Server) showTools(c *gin.Context) {
	ctx := c.Request.Context()
	var page toolsPage
	page.Servers, page.ServersError = s.toolServerRows(ctx)
	page.Configured = s.deps.Tools != nil
	if page.Configured {
		page.Tools, page.ToolsError = s.toolRows(ctx)
	}
	list, err := s.approvals(ctx, principalOf(c).User, engine.ApprovalPending, 100)
	if err != nil {
		page.ApprovalsError = engine.ErrorMessage(err)
	}
	for _, ap := range list {
		row := approvalRow{ID: ap.ID, Assistant: ap.AssistantName, AskedBy: ap.User.Name, Platform: ap.Thread.Channel.Platform,
			CreatedAt: ap.CreatedAt, ExpiresAt: ap.ExpiresAt}
		if row.AskedBy == "" {
			row.AskedBy = ap.User.ID
		}
		for _, call := range ap.Calls {
			row.Tools = append(row.Tools, approvalToolJSON{Name: call.Name, Arguments: engine.PrettyArguments(call.Arguments, 4000)})
		}
		page.Approvals = append(page.Approvals, row)
	}
	calls, err := s.deps.Store.ListToolCalls(ctx, engine.ToolCallFilter{Limit: 50})
	if err != nil {
		page.CallsError = "The tool calls could not be loaded; please try again in a minute."
		s.log.WarnContext(ctx, "list tool calls", "error", err)
	}
	for _, r := range calls {
		page.Calls = append(page.Calls, toolCallRow{ToolCallRecord: r, User: string(r.Platform) + ":" + r.UserID,
			Duration: r.Duration.Round(time.Millisecond).String()})
	}
	v := s.newView(c, "Tools")
	v.Nav = "tools"
	v.Page = page
	s.render(c, http.StatusOK, "tools", v)
}

func (s *Server) toolServerRows(ctx context.Context) ([]toolServerRow, string) {
	list, err := s.deps.Store.ToolServers(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "list tool servers", "error", err)
		return nil, "The MCP servers could not be loaded; please try again in a minute."
	}
	rows := make([]toolServerRow, 0, len(list))
	for _, t := range list {
		row := toolServerRow{Name: t.Name, Transport: t.Transport, Command: t.Command, Args: strings.Join(t.Args, "\n")}
		if t.Transport == "stdio" {
			row.Target = strings.Join(append([]string{t.Command}, t.Args...), " ")
		} else {
			row.Target = redactURL(t.URL)
			if row.Target == t.URL {
				row.URL = t.URL
			} else {
				row.URLHidden = t.URL != ""
			}
		}
		envKeys, headerKeys := slices.Sorted(maps.Keys(t.Env)), slices.Sorted(maps.Keys(t.Headers))
		for _, k := range envKeys {
			row.Secrets = append(row.Secrets, "env "+k)
		}
		for _, k := range headerKeys {
			row.Secrets = append(row.Secrets, "header "+k)
		}
		row.EnvKeys, row.HeaderKeys = strings.Join(envKeys, "\n"), strings.Join(headerKeys, "\n")
		rows = append(rows, row)
	}
	return rows, ""
}

// redactURL leaves credentials and the query out of a server's URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an invalid URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	return u.String()
}

// toolRows lists the tools with who enabled them and which assistants may
// call them under which policy.
func (s *Server) toolRows(ctx context.Context) ([]toolRow, string) {
	ictx, cancel := context.WithTimeout(ctx, inventoryTimeout)
	defer cancel()
	list, err := s.deps.Tools.Inventory(ictx)
	msg := ""
	if err != nil {
		s.log.WarnContext(ctx, "tool inventory", "error", err)
		msg = inventoryError(err)
	}
	pins := map[string]*engine.ToolPin{}
	if ps, err := s.deps.Store.ToolPins(ctx); err == nil {
		for _, p := range ps {
			pins[p.Tool] = p
		}
	}
	assistants, _ := s.deps.Store.ListAssistants(ctx)
	rows := make([]toolRow, 0, len(list))
	for _, t := range list {
		row := toolRow{ToolInfo: t}
		if p := pins[t.Name]; p != nil {
			row.PinnedBy, row.PinnedAt = p.PinnedBy, p.PinnedAt
		}
		for _, a := range assistants {
			if slices.Contains(a.Tools, t.Name) {
				row.UsedBy = append(row.UsedBy, fmt.Sprintf("%s (%s)", a.Name, a.ToolModeFor(t.Name)))
			}
		}
		rows = append(rows, row)
	}
	return rows, msg
}

// inventoryError says why some tools are missing. Admins see the servers'
// errors: they are the ones who can fix them.
func inventoryError(err error) string {
	if e := engine.ErrorMessage(err); engine.ErrorCode(err) != engine.EINTERNAL {
		return e
	}
	return "Some MCP servers could not be reached, so their tools are missing: " + err.Error()
}

var errNoTools = engine.Errorf(engine.EUNAVAILABLE, "Tools are not configured on this console: no MCP tool registry is available.")

// listTools serves GET /api/v1/tools (admins): {"tools": [{"name",
// "description", "state", "hash"}]}, with "warning" when some servers
// could not be reached.
func (s *Server) listTools(c *gin.Context) {
	if s.deps.Tools == nil {
		s.fail(c, errNoTools)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), inventoryTimeout)
	defer cancel()
	list, err := s.deps.Tools.Inventory(ctx)
	if err != nil && len(list) == 0 {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "%s", inventoryError(err)))
		return
	}
	body := map[string]any{"tools": nonNil(list)}
	if err != nil {
		s.log.WarnContext(c.Request.Context(), "tool inventory", "error", err)
		body["warning"] = inventoryError(err)
	}
	s.writeJSON(c, http.StatusOK, body)
}

// enableTool serves POST /api/v1/tools/:name/enable (admins): pins the
// tool as its server describes it now.
func (s *Server) enableTool(c *gin.Context) {
	s.setTool(c, true)
}

// disableTool serves POST /api/v1/tools/:name/disable (admins).
func (s *Server) disableTool(c *gin.Context) {
	s.setTool(c, false)
}

func (s *Server) setTool(c *gin.Context, enable bool) {
	if s.deps.Tools == nil {
		s.fail(c, errNoTools)
		return
	}
	ctx := c.Request.Context()
	name, p := c.Param("name"), principalOf(c)
	var err error
	state, event := "not enabled", "tool disabled"
	if enable {
		ictx, cancel := context.WithTimeout(ctx, inventoryTimeout)
		err = s.deps.Tools.Enable(ictx, name, "console:"+p.User.Name)
		cancel()
		state, event = "enabled", "tool enabled"
	} else {
		err = s.deps.Tools.Disable(ctx, name)
		if engine.IsNotFound(err) {
			err = engine.Errorf(engine.ENOTFOUND, "Tool %q is not enabled.", name)
		}
	}
	if err != nil {
		if engine.ErrorCode(err) == engine.EINTERNAL {
			err = engine.WrapError(engine.EUNAVAILABLE, err, "%s", inventoryError(err))
		}
		s.fail(c, err)
		return
	}
	s.log.InfoContext(ctx, event, "tool", name, "user_id", p.User.ID)
	s.writeJSON(c, http.StatusOK, map[string]any{"tool": map[string]string{"name": name, "state": state}})
}
