package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// assistantJSON is an assistant as the picker sees it: what it is, and
// which tools it may call under which policy (allow, ask or deny).
type assistantJSON struct {
	ID          string                     `json:"id"`
	Name        string                     `json:"name"`
	Description string                     `json:"description"`
	IsDefault   bool                       `json:"is_default"`
	Tools       []string                   `json:"tools"`
	ToolPolicy  map[string]engine.ToolMode `json:"tool_policy"`
}

// listAssistants answers GET /api/v1/assistants:
// {"assistants": [{"id", "name", "description", "is_default", "tools",
// "tool_policy"}]}, ordered by name.
func (s *Server) listAssistants(c *gin.Context) {
	all, err := s.deps.Store.ListAssistants(c.Request.Context())
	if err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The assistants could not be loaded; please try again in a minute."))
		return
	}
	out := make([]assistantJSON, 0, len(all))
	for _, a := range all {
		out = append(out, assistantJSON{ID: a.ID, Name: a.Name, Description: a.Description, IsDefault: a.IsDefault,
			Tools: nonNil(a.Tools), ToolPolicy: policyOf(a)})
	}
	s.writeJSON(c, http.StatusOK, map[string]any{"assistants": out})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func policyOf(a *engine.Assistant) map[string]engine.ToolMode {
	if a.ToolPolicy == nil {
		return map[string]engine.ToolMode{}
	}
	return a.ToolPolicy
}

// assistantDetail is an assistant as admins manage it: every field, with
// tool_policy always present.
type assistantDetail struct {
	*engine.Assistant
	ToolPolicy map[string]engine.ToolMode `json:"tool_policy"`
}

func detailOf(a *engine.Assistant) assistantDetail {
	a.KnowledgeBases, a.Tools, a.Bindings = nonNil(a.KnowledgeBases), nonNil(a.Tools), nonNil(a.Bindings)
	return assistantDetail{Assistant: a, ToolPolicy: policyOf(a)}
}

// assistantBody is the body of POST /api/v1/assistants and PUT
// /api/v1/assistants/:id: every editable field (PUT replaces them all, a
// field left out is emptied). id, created_at and updated_at may be sent
// back as GET returned them; they are not editable.
type assistantBody struct {
	Name            string                     `json:"name"`
	Description     string                     `json:"description"`
	SystemPrompt    string                     `json:"system_prompt"`
	Model           string                     `json:"model"`
	Temperature     float64                    `json:"temperature"`
	MaxOutputTokens int                        `json:"max_output_tokens"`
	KnowledgeBases  []string                   `json:"knowledge_bases"`
	Tools           []string                   `json:"tools"`
	ToolPolicy      map[string]engine.ToolMode `json:"tool_policy"`
	Bindings        []engine.Binding           `json:"bindings"`
	Retrieval       engine.RetrievalSettings   `json:"retrieval"`
	IsDefault       bool                       `json:"is_default"`

	ID        string          `json:"id"`
	CreatedAt json.RawMessage `json:"created_at"`
	UpdatedAt json.RawMessage `json:"updated_at"`
}

var assistantForm = jsonForm{
	Example: `{"name": "ops", "system_prompt": "…", "tools": ["files__read"], "tool_policy": {"files__read": "ask"}}`,
	Fields: `"name", "description", "system_prompt", "model", "temperature", "max_output_tokens", "knowledge_bases", ` +
		`"tools", "tool_policy", "bindings", "retrieval" and "is_default"`,
	Hint: `send a JSON object with the assistant's fields`,
}

// readAssistant reads and checks an assistant body into a (keeping a's ID
// and timestamps).
func (s *Server) readAssistant(c *gin.Context, a *engine.Assistant) error {
	var in assistantBody
	if err := readJSON(c, maxSmallBody, &in, assistantForm); err != nil {
		return err
	}
	if in.ID != "" && in.ID != a.ID {
		if a.ID == "" {
			return engine.Errorf(engine.EINVALID, "Field \"id\" is assigned by the server: leave it out when creating an assistant.")
		}
		return engine.Errorf(engine.EINVALID, "Field \"id\" is %q but the address names assistant %q: the id cannot be changed.", in.ID, a.ID)
	}
	a.Name, a.Description, a.SystemPrompt, a.Model = in.Name, in.Description, in.SystemPrompt, strings.TrimSpace(in.Model)
	a.Temperature, a.MaxOutputTokens = in.Temperature, in.MaxOutputTokens
	a.KnowledgeBases, a.Tools, a.ToolPolicy, a.Bindings = in.KnowledgeBases, in.Tools, in.ToolPolicy, in.Bindings
	a.Retrieval, a.IsDefault = in.Retrieval, in.IsDefault
	if err := checkTools(a); err != nil {
		return err
	}
	return a.Validate()
}

// checkTools checks the allowlist and that the policy only names tools of
// it (a policy for a tool the assistant cannot call is a mistake: most
// likely a typo in one of the two names).
func checkTools(a *engine.Assistant) error {
	for i, t := range a.Tools {
		t = strings.TrimSpace(t)
		if t == "" {
			return engine.Errorf(engine.EINVALID, "Field \"tools\" has an empty tool name (entry %d): list full tool names such as \"files__read\".", i+1)
		}
		if slices.Contains(a.Tools[:i], t) {
			return engine.Errorf(engine.EINVALID, "Field \"tools\" lists %q twice.", t)
		}
		a.Tools[i] = t
	}
	keys := make([]string, 0, len(a.ToolPolicy))
	for k := range a.ToolPolicy {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(a.Tools, k) {
			return engine.Errorf(engine.EINVALID, "Field \"tool_policy\" sets %q for %q, which is not in \"tools\": add the tool to \"tools\" or remove its policy.", a.ToolPolicy[k], k)
		}
	}
	return nil
}

// Who may manage assistants: admins and editors create, edit and delete
// them, but only admins may change an assistant's tools and tool policy
// (what it may run, and without asking). Everyone signed in reads them.
func mayManageAssistants(p *principal) bool {
	return p != nil && (p.User.Role == engine.RoleAdmin || p.User.Role == engine.RoleEditor)
}

func mayEditTools(p *principal) bool {
	return p != nil && p.User.Role == engine.RoleAdmin
}

// guardTools refuses a change to the tools or tool policy by anyone but an
// admin; api says whether the request came through the JSON API (for the
// advice). old is the stored assistant, nil when a is new. When the tools
// and the policy each tool gets are unchanged, a keeps old's values as
// stored (an editor's request cannot rewrite them, not even to an
// equivalent form).
func guardTools(p *principal, old, a *engine.Assistant, api bool) error {
	if mayEditTools(p) {
		return nil
	}
	if old == nil {
		if len(a.Tools) == 0 && len(a.ToolPolicy) == 0 {
			return nil
		}
		advice := "Create it without tools"
		if api {
			advice = `Leave "tools" and "tool_policy" out`
		}
		return engine.Errorf(engine.EFORBIDDEN, "Only admins may give an assistant tools or a tool policy; you are signed in as %s with the %s role. "+
			"%s, and ask an admin to add them once the assistant exists.", p.User.Name, p.User.Role, advice)
	}
	if !sameTools(old, a) {
		advice := "Save the other fields without touching the tools"
		if api {
			advice = fmt.Sprintf(`Send "tools" and "tool_policy" as they are (GET /api/v1/assistants/%s returns them)`, old.ID)
		}
		return engine.Errorf(engine.EFORBIDDEN, "Only admins may change an assistant's tools and tool policy; you are signed in as %s with the %s role. "+
			"%s, and ask an admin for the change.", p.User.Name, p.User.Role, advice)
	}
	a.Tools, a.ToolPolicy = old.Tools, old.ToolPolicy
	return nil
}

// sameTools reports whether two assistants may call the same tools, each
// under the same policy (order and explicit "allow" entries aside).
func sameTools(a, b *engine.Assistant) bool {
	if len(a.Tools) != len(b.Tools) {
		return false
	}
	for _, t := range a.Tools {
		if !slices.Contains(b.Tools, t) || a.ToolModeFor(t) != b.ToolModeFor(t) {
			return false
		}
	}
	for _, t := range b.Tools {
		if !slices.Contains(a.Tools, t) {
			return false
		}
	}
	// A policy entry for a tool outside the allowlist is refused by
	// checkTools, so the allowlist's modes are the whole policy.
	return true
}

// storeError keeps the store's coded errors (a taken name is a conflict,
// a missing assistant not found) and makes the others "unavailable".
func storeError(err error, format string, args ...any) error {
	var e *engine.Error
	if errors.As(err, &e) && e.Code != engine.EINTERNAL {
		return err
	}
	return engine.WrapError(engine.EUNAVAILABLE, err, format, args...)
}

// createAssistant serves POST /api/v1/assistants (admins and editors; only
// admins may give it tools or a tool policy): 201 with the assistant.
func (s *Server) createAssistant(c *gin.Context) {
	var a engine.Assistant
	if err := s.readAssistant(c, &a); err != nil {
		s.fail(c, err)
		return
	}
	if err := guardTools(principalOf(c), nil, &a, true); err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	if err := s.deps.Store.CreateAssistant(ctx, &a); err != nil {
		s.fail(c, storeError(err, "The assistant could not be saved; please try again in a minute."))
		return
	}
	s.log.InfoContext(ctx, "assistant created", "assistant_id", a.ID, "assistant_name", a.Name, "user_id", principalOf(c).User.ID)
	c.Header("Location", "/api/v1/assistants/"+a.ID)
	s.writeJSON(c, http.StatusCreated, detailOf(&a))
}

// assistantByID loads the assistant of the path.
func (s *Server) assistantByID(c *gin.Context) (*engine.Assistant, error) {
	a, err := s.deps.Store.AssistantByID(c.Request.Context(), c.Param("id"))
	switch {
	case engine.IsNotFound(err):
		return nil, engine.Errorf(engine.ENOTFOUND, "There is no assistant with id %q: GET /api/v1/assistants lists them.", c.Param("id"))
	case err != nil:
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "The assistant could not be loaded; please try again in a minute.")
	}
	return a, nil
}

// getAssistant serves GET /api/v1/assistants/:id: every field.
func (s *Server) getAssistant(c *gin.Context) {
	a, err := s.assistantByID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeJSON(c, http.StatusOK, detailOf(a))
}

// putAssistant serves PUT /api/v1/assistants/:id (admins and editors):
// replaces the editable fields. An editor must send "tools" and
// "tool_policy" unchanged: only admins may change them.
func (s *Server) putAssistant(c *gin.Context) {
	a, err := s.assistantByID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	old := *a
	old.Tools, old.ToolPolicy = slices.Clone(a.Tools), maps.Clone(a.ToolPolicy)
	if err := s.readAssistant(c, a); err != nil {
		s.fail(c, err)
		return
	}
	if err := guardTools(principalOf(c), &old, a, true); err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	if err := s.deps.Store.UpdateAssistant(ctx, a); err != nil {
		s.fail(c, storeError(err, "The assistant could not be saved; please try again in a minute."))
		return
	}
	s.log.InfoContext(ctx, "assistant updated", "assistant_id", a.ID, "assistant_name", a.Name, "user_id", principalOf(c).User.ID)
	s.writeJSON(c, http.StatusOK, detailOf(a))
}

// deleteAssistant serves DELETE /api/v1/assistants/:id (admins and editors): 204.
func (s *Server) deleteAssistant(c *gin.Context) {
	ctx := c.Request.Context()
	err := s.deps.Store.DeleteAssistant(ctx, c.Param("id"))
	switch {
	case engine.IsNotFound(err):
		s.fail(c, engine.Errorf(engine.ENOTFOUND, "There is no assistant with id %q: GET /api/v1/assistants lists them.", c.Param("id")))
	case err != nil:
		s.fail(c, storeError(err, "The assistant could not be deleted; please try again in a minute."))
	default:
		s.log.InfoContext(ctx, "assistant deleted", "assistant_id", c.Param("id"), "user_id", principalOf(c).User.ID)
		c.Status(http.StatusNoContent)
	}
}
