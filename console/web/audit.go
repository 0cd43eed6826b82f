package web

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// The audit log records who changed what and when: recordAudit writes one
// entry for every state-changing request (POST, PUT, PATCH, DELETE) on the
// console's pages and API, named by auditRules; login.go records sign-ins
// and sign-outs; admins read the log on /audit, as CSV on /audit.csv and
// over GET /api/v1/audit.

// auditRule says how recordAudit records one route.
type auditRule struct {
	// Action is the entry's stable dotted name.
	Action string
	// Skip, when set, says why the middleware does not record the route.
	Skip string
	// SecretParams marks a route whose path holds a credential (an
	// invitation token): its parameters never become the target.
	SecretParams bool
}

// auditRules name the action of every state-changing route, keyed by the
// method and gin's route pattern (c.FullPath()). A route missing here is
// still recorded, as "http.<method> <pattern>", and TestAuditRouteCoverage
// fails until it is named: add new routes here.
var auditRules = map[string]auditRule{
	// Sign-in and sign-out: login.go records them with the name tried.
	"POST /login":  {Skip: "recorded by submitLogin"},
	"POST /logout": {Skip: "recorded by logout"},

	// Asking and searching change nothing.
	"POST /api/v1/chat":                       {Skip: "asking is not a change"},
	"POST /api/v1/knowledge-bases/:kb/search": {Skip: "searching is not a change"},
	// MCP clients ask and search too.
	"POST /mcp":   {Skip: "MCP is for asking and searching"},
	"DELETE /mcp": {Skip: "MCP is for asking and searching"},

	// Assistants.
	"POST /api/v1/assistants":       {Action: "assistant.create"},
	"PUT /api/v1/assistants/:id":    {Action: "assistant.update"},
	"DELETE /api/v1/assistants/:id": {Action: "assistant.delete"},

	// Tools, MCP servers and approvals.
	"POST /api/v1/tools/:name/enable":      {Action: "tool.enable"},
	"POST /api/v1/tools/:name/disable":     {Action: "tool.disable"},
	"PUT /api/v1/tool-servers/:name":       {Action: "tool_server.save"},
	"DELETE /api/v1/tool-servers/:name":    {Action: "tool_server.delete"},
	"POST /api/v1/tool-servers/:name/test": {Action: "tool_server.test"},
	"POST /api/v1/tool-approvals/:id":      {Action: "tool_approval.decide"},

	// Knowledge.
	"POST /api/v1/knowledge-bases":                     {Action: "knowledge_base.create"},
	"DELETE /api/v1/knowledge-bases/:kb":               {Action: "knowledge_base.delete"},
	"POST /api/v1/knowledge-bases/:kb/documents":       {Action: "document.upload"},
	"DELETE /api/v1/knowledge-bases/:kb/documents/:id": {Action: "document.delete"},

	// The assistants pages' forms.
	"POST /assistants":            {Action: "assistant.create"},
	"POST /assistants/:id":        {Action: "assistant.update"},
	"POST /assistants/:id/delete": {Action: "assistant.delete"},

	// The knowledge pages' forms.
	"POST /knowledge":                          {Action: "knowledge_base.create"},
	"POST /knowledge/:kb/delete":               {Action: "knowledge_base.delete"},
	"POST /knowledge/:kb/upload":               {Action: "document.upload"},
	"POST /knowledge/:kb/documents/:id/delete": {Action: "document.delete"},

	// Users, their invitations and linked chat identities.
	"POST /api/v1/users":                                          {Action: "user.create"},
	"PATCH /api/v1/users/:id":                                     {Action: "user.update"},
	"POST /api/v1/users/:id/invite":                               {Action: "user.invite"},
	"POST /api/v1/users/:id/identities":                           {Action: "identity.link"},
	"DELETE /api/v1/users/:id/identities/:platform/:chat_user_id": {Action: "identity.unlink"},
	"POST /invite/:token":                                         {Action: "invitation.accept", SecretParams: true},
	"POST /api/v1/invitations/:token":                             {Action: "invitation.accept", SecretParams: true},

	// API tokens.
	"POST /api/v1/tokens":                     {Action: "token.create"},
	"DELETE /api/v1/tokens/:id":               {Action: "token.revoke"},
	"PUT /api/v1/model-providers/:name":       {Action: "model_provider.save"},
	"DELETE /api/v1/model-providers/:name":    {Action: "model_provider.delete"},
	"POST /api/v1/model-providers/:name/test": {Action: "model_provider.test"},

	// Budgets (the engine records "budget.exhausted" itself, as "system").
	"POST /api/v1/budgets":       {Action: "budget.create"},
	"PUT /api/v1/budgets/:id":    {Action: "budget.update"},
	"DELETE /api/v1/budgets/:id": {Action: "budget.delete"},
}

// auditRuleFor returns the rule of a route; an unnamed state-changing
// route gets "http.<method> <pattern>" so that nothing goes unrecorded.
func auditRuleFor(method, pattern string) (auditRule, bool) {
	if r, ok := auditRules[method+" "+pattern]; ok {
		return r, true
	}
	return auditRule{Action: "http." + strings.ToLower(method) + " " + pattern}, false
}

// auditChangesState reports whether a request method may change state.
func auditChangesState(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// auditTimeout bounds writing one entry; the request is answered already.
const auditTimeout = 5 * time.Second

// auditCaptureBytes is how much of a JSON answer recordAudit reads to find
// what a route without ids in its path created.
const auditCaptureBytes = 64 << 10

const (
	auditTargetKey = "console.audit.target"
	auditDetailKey = "console.audit.detail"
	auditActorKey  = "console.audit.actor"
)

// setAuditActor names who acted on a request made without a sign-in, once
// the handler knows (the invited user accepting an invitation).
func setAuditActor(c *gin.Context, u *engine.User) { c.Set(auditActorKey, u) }

// setAuditTarget names what a request acted on when the route's path has
// no id (for instance what a create made); it beats the path and the answer.
func setAuditTarget(c *gin.Context, target string) { c.Set(auditTargetKey, target) }

// addAuditDetail adds a short note to the request's audit entry. Never
// pass secrets, passwords, tokens or message bodies.
func addAuditDetail(c *gin.Context, detail string) {
	if prev := c.GetString(auditDetailKey); prev != "" {
		detail = prev + "; " + detail
	}
	c.Set(auditDetailKey, detail)
}

// recordAudit records every state-changing request on the console's pages
// and /api/v1 after its handler ran, with the status it got, refusals
// included. Recording never changes the answer: a store failure is logged.
func (s *Server) recordAudit(c *gin.Context) {
	method, pattern := c.Request.Method, c.FullPath()
	if !auditChangesState(method) || pattern == "" || pattern == "/mcp" || strings.HasPrefix(pattern, "/mcp/") {
		c.Next()
		return
	}
	rule, _ := auditRuleFor(method, pattern)
	if rule.Skip != "" {
		c.Next()
		return
	}
	var capture *auditWriter
	if len(c.Params) == 0 || rule.SecretParams {
		capture = &auditWriter{ResponseWriter: c.Writer}
		c.Writer = capture
	}
	finished := false
	defer func() {
		if capture != nil {
			c.Writer = capture.ResponseWriter
		}
		if !finished {
			// The handler is panicking (the panic goes on to recoverPanics,
			// which answers 500): the attempt is recorded all the same.
			s.writeAudit(c, rule, http.StatusInternalServerError, capture)
		}
	}()
	c.Next()
	finished = true
	s.writeAudit(c, rule, c.Writer.Status(), capture)
}

// writeAudit stores the entry of a request that has been answered.
func (s *Server) writeAudit(c *gin.Context, rule auditRule, status int, capture *auditWriter) {
	e := &engine.AuditEntry{Action: rule.Action, Status: status, Target: auditTargetOf(c, rule, status, capture),
		IP: c.ClientIP(), UserAgent: c.Request.UserAgent()}
	var notes []string
	if p := principalOf(c); p != nil {
		e.ActorID, e.ActorName = p.User.ID, p.User.Name
		if p.Token != nil {
			notes = append(notes, fmt.Sprintf("API token %q", p.Token.Name))
		}
	} else if v, ok := c.Get(auditActorKey); ok {
		if u, _ := v.(*engine.User); u != nil {
			e.ActorID, e.ActorName = u.ID, u.Name
		}
	}
	if d := c.GetString(auditDetailKey); d != "" {
		notes = append(notes, d)
	}
	e.Detail = strings.Join(notes, "; ")
	s.storeAudit(c.Request.Context(), e)
}

// storeAudit writes an entry, detached from the request's cancellation (a
// client that hung up still made its change); failures are only logged.
func (s *Server) storeAudit(ctx context.Context, e *engine.AuditEntry) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	if err := s.deps.Store.RecordAudit(ctx, e); err != nil {
		s.log.ErrorContext(ctx, "record audit entry", "action", e.Action, "target", e.Target,
			"user_id", e.ActorID, "status", e.Status, "error", err)
	}
}

// auditTargetOf says what a request acted on: what the handler named, the
// ids in the route's path, or else what a successful create answered (the
// "id" or "name" of its JSON, or the page it redirected to).
func auditTargetOf(c *gin.Context, rule auditRule, status int, capture *auditWriter) string {
	if t := c.GetString(auditTargetKey); t != "" {
		return t
	}
	if len(c.Params) > 0 && !rule.SecretParams {
		parts := make([]string, len(c.Params))
		for i, p := range c.Params {
			parts[i] = strings.TrimPrefix(p.Value, "/")
		}
		return strings.Join(parts, "/")
	}
	if capture == nil || status >= 400 {
		return ""
	}
	if status >= 300 {
		loc, err := url.Parse(c.Writer.Header().Get("Location"))
		if err != nil || loc.Host != "" {
			return ""
		}
		if rest, ok := strings.CutPrefix(loc.Path, strings.TrimSuffix(c.Request.URL.Path, "/")+"/"); ok {
			rest, _, _ = strings.Cut(rest, "/")
			return rest
		}
		return ""
	}
	if capture.full {
		return ""
	}
	return auditTargetFromJSON(capture.body.Bytes())
}

// auditTargetFromJSON finds the "id" (else the "name") of a created thing
// in a JSON answer: at the top level, or in the one object it wraps.
func auditTargetFromJSON(b []byte) string {
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		return ""
	}
	if t := auditIDOrName(top); t != "" {
		return t
	}
	found := ""
	for _, k := range slices.Sorted(maps.Keys(top)) {
		var inner map[string]json.RawMessage
		if json.Unmarshal(top[k], &inner) != nil {
			continue
		}
		if t := auditIDOrName(inner); t != "" {
			if found != "" {
				return "" // several objects: no telling which was created
			}
			found = t
		}
	}
	return found
}

func auditIDOrName(obj map[string]json.RawMessage) string {
	for _, k := range []string{"id", "name"} {
		var v string
		if raw, ok := obj[k]; ok && json.Unmarshal(raw, &v) == nil && v != "" {
			return v
		}
	}
	return ""
}

// auditWriter keeps the first auditCaptureBytes of a JSON answer.
type auditWriter struct {
	gin.ResponseWriter
	body bytes.Buffer
	full bool // more was written than kept, or it is not JSON
}

func (w *auditWriter) keep(b []byte) {
	if w.full {
		return
	}
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		w.full = true
		return
	}
	if room := auditCaptureBytes - w.body.Len(); len(b) > room {
		b, w.full = b[:max(room, 0)], true
	}
	w.body.Write(b)
}

func (w *auditWriter) Write(b []byte) (int, error) {
	w.keep(b)
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *auditWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *auditWriter) WriteString(s string) (int, error) {
	w.keep([]byte(s))
	return w.ResponseWriter.WriteString(s)
}

// auditSignIn records a sign-in, a refused sign-in (ActorName is the name
// tried) or a sign-out; login.go calls it.
func (s *Server) auditSignIn(c *gin.Context, action string, user *engine.User, name string, status int, detail string) {
	e := &engine.AuditEntry{Action: action, ActorName: name, Status: status, Detail: detail,
		IP: c.ClientIP(), UserAgent: c.Request.UserAgent()}
	if user != nil {
		e.ActorID, e.ActorName = user.ID, user.Name
	}
	s.storeAudit(c.Request.Context(), e)
}

// signInFailure says why a sign-in was refused, for the audit log only:
// the page says "Invalid name or password." whatever the reason.
func signInFailure(user *engine.User, passwordOK bool) string {
	switch {
	case user == nil:
		return "no user has this name"
	case !passwordOK:
		return "wrong password"
	}
	return "the user is disabled"
}

// Audit actions recorded by login.go.
const (
	auditLogin       = "auth.login"
	auditLoginFailed = "auth.login_failed"
	auditLogout      = "auth.logout"
)

// auditRoutes registers the audit log's page, its CSV export and its API
// (admins only).
func (s *Server) auditRoutes(pages, api *gin.RouterGroup) {
	pages.GET("/audit", s.requireRole("The audit log", engine.RoleAdmin), s.showAudit)
	pages.GET("/audit.csv", s.requireRole("The audit log", engine.RoleAdmin), s.exportAudit)
	api.GET("/audit", s.requireRole("Reading the audit log", engine.RoleAdmin), s.listAudit)
}

// Page sizes of the audit log.
const (
	auditPageSize   = 50
	auditMaxPage    = 10000
	auditAPIMax     = 500
	auditExportPage = 1000
)

// auditListRequest is the query of GET /api/v1/audit, /audit and
// /audit.csv (every field optional).
type auditListRequest struct {
	Actor    string `form:"actor" json:"actor,omitempty"`       // the actor's id or whole name, any case
	Action   string `form:"action" json:"action,omitempty"`     // an action or its beginning, e.g. "assistant."
	Target   string `form:"target" json:"target,omitempty"`     // a part of the target, any case
	From     string `form:"from" json:"from,omitempty"`         // a date (2025-06-01, UTC) or an RFC 3339 time: at or after
	To       string `form:"to" json:"to,omitempty"`             // a date (through that day, UTC) or an RFC 3339 time: before
	Failures bool   `form:"failures" json:"failures,omitempty"` // only refused or failed requests (status 400 or more)
	Limit    int    `form:"limit" json:"limit,omitempty"`       // API: 1 to 500, default 100
	Offset   int    `form:"offset" json:"offset,omitempty"`     // API: entries to skip
}

// auditListResponse is the answer of GET /api/v1/audit.
type auditListResponse struct {
	Entries []*engine.AuditEntry `json:"entries"`
	// NextOffset is the offset of the next page, when there is one.
	NextOffset *int `json:"next_offset,omitempty"`
}

// parseAuditRequest reads the filters of a query; the error says which
// field is wrong and what it should look like.
func parseAuditRequest(q url.Values) (auditListRequest, engine.AuditFilter, error) {
	req := auditListRequest{
		Actor:  strings.TrimSpace(q.Get("actor")),
		Action: strings.TrimSpace(q.Get("action")),
		Target: strings.TrimSpace(q.Get("target")),
		From:   strings.TrimSpace(q.Get("from")),
		To:     strings.TrimSpace(q.Get("to")),
	}
	f := engine.AuditFilter{Actor: req.Actor, ActionPrefix: req.Action, Target: req.Target}
	for _, v := range []struct{ name, value string }{{"actor", req.Actor}, {"action", req.Action}, {"target", req.Target}} {
		switch {
		case !utf8.ValidString(v.value) || strings.ContainsFunc(v.value, unicode.IsControl):
			return req, f, engine.Errorf(engine.EINVALID, "The %s filter contains control characters or invalid UTF-8: type plain text.", v.name)
		case utf8.RuneCountInString(v.value) > engine.AuditMaxTarget:
			return req, f, engine.Errorf(engine.EINVALID, "The %s filter is too long: use at most %d characters.", v.name, engine.AuditMaxTarget)
		}
	}
	var err error
	if f.Since, err = parseDateParam("from", req.From, false); err != nil {
		return req, f, err
	}
	if f.Until, err = parseDateParam("to", req.To, true); err != nil {
		return req, f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return req, f, engine.Errorf(engine.EINVALID, "The period from %s to %s is empty: \"from\" must come before \"to\".", req.From, req.To)
	}
	switch v := strings.ToLower(strings.TrimSpace(q.Get("failures"))); v {
	case "", "0", "false", "off", "no":
	case "1", "true", "on", "yes":
		req.Failures, f.FailuresOnly = true, true
	default:
		return req, f, engine.Errorf(engine.EINVALID, "The failures filter is %q: use true or false.", v)
	}
	return req, f, nil
}

// parseAuditInt reads a whole number between lo and hi; def when empty.
func parseAuditInt(q url.Values, field string, def, lo, hi int) (int, error) {
	s := strings.TrimSpace(q.Get(field))
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, engine.Errorf(engine.EINVALID, "The %s %q is not a whole number from %d to %d.", field, s, lo, hi)
	}
	return n, nil
}

// listAudit serves GET /api/v1/audit (admins): the entries matching the
// filters, newest first, a page at a time.
func (s *Server) listAudit(c *gin.Context) {
	q := c.Request.URL.Query()
	req, f, err := parseAuditRequest(q)
	if err == nil {
		req.Limit, err = parseAuditInt(q, "limit", engine.DefaultAuditLimit, 1, auditAPIMax)
	}
	if err == nil {
		req.Offset, err = parseAuditInt(q, "offset", 0, 0, 1<<30)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	f.Limit, f.Offset = req.Limit+1, req.Offset
	list, err := s.deps.Store.ListAudit(c.Request.Context(), f)
	if err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The audit log could not be read; please try again in a minute."))
		return
	}
	resp := auditListResponse{Entries: list}
	if len(list) > req.Limit {
		next := req.Offset + req.Limit
		resp.Entries, resp.NextOffset = list[:req.Limit], &next
	}
	s.writeJSON(c, http.StatusOK, resp)
}

// auditPage is the data of the audit page.
type auditPage struct {
	Filter   auditListRequest // as typed, to fill the form again
	Filtered bool
	Entries  []auditRow
	Error    string // the filters are wrong, or the log could not be read
	Page     int
	NewerURL string
	OlderURL string
	CSVURL   string
	Actions  []string // suggestions for the action filter
}

// auditRow is an entry as the page shows it.
type auditRow struct {
	*engine.AuditEntry
	Actor      string // who, for people
	ActorURL   string // the log filtered on them
	ActionURL  string // the log filtered on the action
	StatusText string
}

// showAudit serves GET /audit (admins): the audit log with its filters.
func (s *Server) showAudit(c *gin.Context) {
	q := c.Request.URL.Query()
	req, f, err := parseAuditRequest(q)
	page := auditPage{Filter: req, Page: 1, Actions: auditActionSuggestions()}
	page.Filtered = req.Actor != "" || req.Action != "" || req.Target != "" || req.From != "" || req.To != "" || req.Failures
	if err == nil {
		page.Page, err = parseAuditInt(q, "page", 1, 1, auditMaxPage)
	}
	status := http.StatusOK
	if err != nil {
		page.Error, status = engine.ErrorMessage(err), http.StatusBadRequest
	} else {
		f.Limit, f.Offset = auditPageSize+1, (page.Page-1)*auditPageSize
		list, err := s.deps.Store.ListAudit(c.Request.Context(), f)
		if err != nil {
			s.log.WarnContext(c.Request.Context(), "list audit entries", "error", err)
			page.Error, status = "The audit log could not be read; please try again in a minute.", http.StatusServiceUnavailable
		}
		more := len(list) > auditPageSize
		if more {
			list = list[:auditPageSize]
		}
		for _, e := range list {
			page.Entries = append(page.Entries, auditRowOf(e))
		}
		query := auditQuery(req)
		page.CSVURL = "/audit.csv" + auditEncodeQuery(query)
		if page.Page > 1 {
			page.NewerURL = "/audit" + auditEncodeQuery(auditWithPage(query, page.Page-1))
		}
		if more && page.Page < auditMaxPage {
			page.OlderURL = "/audit" + auditEncodeQuery(auditWithPage(query, page.Page+1))
		}
	}
	v := s.newView(c, "Audit log")
	v.Nav = "audit"
	v.Page = page
	s.render(c, status, "audit", v)
}

func auditRowOf(e *engine.AuditEntry) auditRow {
	row := auditRow{AuditEntry: e, Actor: e.ActorName, StatusText: http.StatusText(e.Status)}
	switch {
	case e.ActorName != "":
		row.ActorURL = "/audit" + auditEncodeQuery(url.Values{"actor": {e.ActorName}})
	case e.ActorID != "":
		row.Actor = e.ActorID
		row.ActorURL = "/audit" + auditEncodeQuery(url.Values{"actor": {e.ActorID}})
	}
	row.ActionURL = "/audit" + auditEncodeQuery(url.Values{"action": {e.Action}})
	return row
}

// auditQuery is the query string of the filters (pages and CSV share it).
func auditQuery(req auditListRequest) url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"actor": req.Actor, "action": req.Action, "target": req.Target, "from": req.From, "to": req.To} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if req.Failures {
		q.Set("failures", "1")
	}
	return q
}

func auditWithPage(q url.Values, page int) url.Values {
	out := maps.Clone(q)
	if page > 1 {
		out.Set("page", strconv.Itoa(page))
	}
	return out
}

func auditEncodeQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// auditActionSuggestions are the action prefixes the filter offers: each
// area ("assistant.") and each named action.
func auditActionSuggestions() []string {
	seen := map[string]bool{}
	for _, a := range []string{auditLogin, auditLoginFailed, auditLogout} {
		seen[a], seen["auth."] = true, true
	}
	for _, r := range auditRules {
		if r.Action == "" {
			continue
		}
		seen[r.Action] = true
		if area, _, ok := strings.Cut(r.Action, "."); ok {
			seen[area+"."] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// exportAudit serves GET /audit.csv (admins): every entry matching the
// filters, newest first, as CSV. Cells that a spreadsheet would take for
// a formula are prefixed with an apostrophe.
func (s *Server) exportAudit(c *gin.Context) {
	ctx := c.Request.Context()
	_, f, err := parseAuditRequest(c.Request.URL.Query())
	if err != nil {
		s.fail(c, err)
		return
	}
	f.Limit, f.Offset = auditExportPage, 0
	// The first page is read before answering, so that a store failure is
	// still an error page rather than a cut file.
	list, err := s.deps.Store.ListAudit(ctx, f)
	if err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The audit log could not be read; please try again in a minute."))
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="convosphere-audit-%s.csv"`, s.now().UTC().Format("20060102-150405")))
	h.Set("Cache-Control", "no-store")
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	_ = w.Write([]string{"time", "actor_id", "actor_name", "action", "target", "detail", "status", "ip", "user_agent"})
	rows := 0
	for {
		for _, e := range list {
			_ = w.Write([]string{e.At.UTC().Format(time.RFC3339Nano), auditCSVCell(e.ActorID), auditCSVCell(e.ActorName), auditCSVCell(e.Action),
				auditCSVCell(e.Target), auditCSVCell(e.Detail), strconv.Itoa(e.Status), auditCSVCell(e.IP), auditCSVCell(e.UserAgent)})
		}
		rows += len(list)
		if len(list) < f.Limit {
			break
		}
		last := list[len(list)-1]
		f.BeforeAt, f.BeforeID = last.At, last.ID
		if list, err = s.deps.Store.ListAudit(ctx, f); err != nil {
			// The header is sent: all that can be done is to stop and log.
			s.log.ErrorContext(ctx, "export audit log", "rows", rows, "error", err)
			break
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		s.log.WarnContext(ctx, "write audit csv", "rows", rows, "error", err)
	}
}

// auditCSVCell defuses a text cell that a spreadsheet would run as a formula.
func auditCSVCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
