package web

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// The RBAC matrix: every route of the router × {anonymous, viewer, editor,
// admin} × {session, API token}, checked against rbacMatrix. Security tests
// over the same routes are in security_test.go; both use secFixture.

// rbacMatrix is the least role that may use each route, keyed by
// "METHOD pattern" as gin registers it. A route missing from here (and
// from rbacSkipped) fails TestRBACMatrix: give every new route its role.
var rbacMatrix = map[string]engine.Role{
	// Public: anyone, signed in or not.
	"GET /api/v1/openapi.json": rolePublic, // describes the API, holds no data (openapi.go)

	// Dashboard, playground, analytics: every role.
	"GET /":                  engine.RoleViewer,
	"GET /playground":        engine.RoleViewer,
	"GET /analytics":         engine.RoleViewer,
	"GET /analytics.csv":     engine.RoleViewer,
	"GET /api/v1/dashboard":  engine.RoleViewer,
	"GET /api/v1/analytics":  engine.RoleViewer,
	"GET /api/v1/platforms":  engine.RoleViewer, // docs/api.md: any signed-in user
	"POST /api/v1/chat":      engine.RoleViewer,
	"GET /api/v1/assistants": engine.RoleViewer,

	// Assistants: every role reads, editors and admins manage (only admins
	// change tools and their policy, checked in the handlers).
	"GET /assistants":                 engine.RoleViewer,
	"GET /assistants/:id":             engine.RoleViewer,
	"GET /assistants/new":             engine.RoleEditor,
	"POST /assistants":                engine.RoleEditor,
	"GET /assistants/:id/edit":        engine.RoleEditor,
	"POST /assistants/:id":            engine.RoleEditor,
	"POST /assistants/:id/delete":     engine.RoleEditor,
	"GET /api/v1/assistants/:id":      engine.RoleViewer,
	"POST /api/v1/assistants":         engine.RoleEditor,
	"PUT /api/v1/assistants/:id":      engine.RoleEditor,
	"DELETE /api/v1/assistants/:id":   engine.RoleEditor,
	"GET /api/v1/tool-approvals":      engine.RoleViewer, // the user's own, every one for admins
	"POST /api/v1/tool-approvals/:id": engine.RoleViewer, // the asker or an admin (checked per approval)

	// Knowledge: every role reads and searches, editors and admins manage.
	"GET /knowledge":                                   engine.RoleViewer,
	"GET /knowledge/search":                            engine.RoleViewer,
	"GET /knowledge/:kb":                               engine.RoleViewer,
	"GET /knowledge/:kb/documents/:id":                 engine.RoleViewer,
	"POST /knowledge":                                  engine.RoleEditor,
	"GET /knowledge/:kb/delete":                        engine.RoleEditor,
	"POST /knowledge/:kb/delete":                       engine.RoleEditor,
	"POST /knowledge/:kb/upload":                       engine.RoleEditor,
	"GET /knowledge/:kb/documents/:id/delete":          engine.RoleEditor,
	"POST /knowledge/:kb/documents/:id/delete":         engine.RoleEditor,
	"GET /api/v1/knowledge/search":                     engine.RoleViewer,
	"GET /api/v1/knowledge-bases":                      engine.RoleViewer,
	"GET /api/v1/knowledge-bases/:kb/documents":        engine.RoleViewer,
	"POST /api/v1/knowledge-bases/:kb/search":          engine.RoleViewer,
	"POST /api/v1/knowledge-bases":                     engine.RoleEditor,
	"DELETE /api/v1/knowledge-bases/:kb":               engine.RoleEditor,
	"POST /api/v1/knowledge-bases/:kb/documents":       engine.RoleEditor,
	"DELETE /api/v1/knowledge-bases/:kb/documents/:id": engine.RoleEditor,

	// Conversations: every role reads.
	"GET /conversations":            engine.RoleViewer,
	"GET /conversations.csv":        engine.RoleViewer,
	"GET /conversations/:id":        engine.RoleViewer,
	"GET /api/v1/conversations":     engine.RoleViewer,
	"GET /api/v1/conversations.csv": engine.RoleViewer,
	"GET /api/v1/conversations/:id": engine.RoleViewer,

	// Tools, MCP servers, the tool call audit: admins.
	"GET /tools":                           engine.RoleAdmin,
	"GET /api/v1/tools":                    engine.RoleAdmin,
	"POST /api/v1/tools/:name/enable":      engine.RoleAdmin,
	"POST /api/v1/tools/:name/disable":     engine.RoleAdmin,
	"GET /api/v1/tool-servers":             engine.RoleAdmin,
	"PUT /api/v1/tool-servers/:name":       engine.RoleAdmin,
	"DELETE /api/v1/tool-servers/:name":    engine.RoleAdmin,
	"POST /api/v1/tool-servers/:name/test": engine.RoleAdmin,
	"GET /api/v1/tool-calls":               engine.RoleAdmin,

	// Users, the audit log, settings (API tokens, model providers): admins.
	"GET /users":                        engine.RoleAdmin,
	"GET /users/:id":                    engine.RoleAdmin,
	"GET /api/v1/users":                 engine.RoleAdmin,
	"POST /api/v1/users":                engine.RoleAdmin,
	"GET /api/v1/users/:id":             engine.RoleAdmin,
	"PATCH /api/v1/users/:id":           engine.RoleAdmin,
	"POST /api/v1/users/:id/invite":     engine.RoleAdmin,
	"GET /api/v1/users/:id/identities":  engine.RoleAdmin,
	"POST /api/v1/users/:id/identities": engine.RoleAdmin,
	"DELETE /api/v1/users/:id/identities/:platform/:chat_user_id": engine.RoleAdmin,
	"GET /audit":                              engine.RoleAdmin,
	"GET /audit.csv":                          engine.RoleAdmin,
	"GET /api/v1/audit":                       engine.RoleAdmin,
	"GET /settings":                           engine.RoleAdmin,
	"GET /api/v1/tokens":                      engine.RoleAdmin,
	"POST /api/v1/tokens":                     engine.RoleAdmin,
	"DELETE /api/v1/tokens/:id":               engine.RoleAdmin,
	"GET /api/v1/model-providers":             engine.RoleAdmin,
	"PUT /api/v1/model-providers/:name":       engine.RoleAdmin,
	"DELETE /api/v1/model-providers/:name":    engine.RoleAdmin,
	"POST /api/v1/model-providers/:name/test": engine.RoleAdmin,

	// Budgets: every role reads them with their usage, admins manage them.
	"GET /budgets":               engine.RoleViewer,
	"GET /api/v1/budgets":        engine.RoleViewer,
	"POST /api/v1/budgets":       engine.RoleAdmin,
	"PUT /api/v1/budgets/:id":    engine.RoleAdmin,
	"DELETE /api/v1/budgets/:id": engine.RoleAdmin,
}

// rbacSkipped are the routes the matrix leaves out, and why: none of them
// has a role to check.
var rbacSkipped = map[string]string{
	"GET /healthz":                    "liveness probe: no sign-in by design (health_test.go)",
	"HEAD /healthz":                   "liveness probe: no sign-in by design (health_test.go)",
	"GET /readyz":                     "readiness probe: no sign-in by design (health_test.go)",
	"HEAD /readyz":                    "readiness probe: no sign-in by design (health_test.go)",
	"GET /static/*name":               "embedded CSS, scripts and icons: public, nothing secret (pages_test.go)",
	"GET /login":                      "the sign-in form: for signed-out visitors (login_test.go)",
	"POST /login":                     "signs in: for signed-out visitors, guarded by its own double-submit token (login_test.go)",
	"POST /logout":                    "signs out whoever is signed in, whatever the role (login_test.go; CSRF in security_test.go)",
	"GET /invite/:token":              "an invitation link: the token in the path is the credential, no session (users_test.go)",
	"POST /invite/:token":             "accepts an invitation: the token is the credential (users_test.go)",
	"POST /api/v1/invitations/:token": "accepts an invitation over the API: the token is the credential (users_test.go)",
	"GET /mcp":                        "MCP endpoint: only with an MCP handler, API tokens only, no roles (cmd/console/mcp_test.go)",
	"POST /mcp":                       "MCP endpoint: only with an MCP handler, API tokens only, no roles (cmd/console/mcp_test.go)",
	"DELETE /mcp":                     "MCP endpoint: only with an MCP handler, API tokens only, no roles (cmd/console/mcp_test.go)",
}

// rolePublic marks a route in rbacMatrix that needs no sign-in.
const rolePublic engine.Role = ""

// roleRank orders the roles: a role may use what a lower one may.
func roleRank(r engine.Role) int {
	switch r {
	case engine.RoleViewer:
		return 1
	case engine.RoleEditor:
		return 2
	case engine.RoleAdmin:
		return 3
	}
	return 0
}

var secRoles = []engine.Role{engine.RoleViewer, engine.RoleEditor, engine.RoleAdmin}

// secRoute is a registered route.
type secRoute struct {
	Method, Pattern string
}

func (r secRoute) key() string { return r.Method + " " + r.Pattern }
func (r secRoute) api() bool   { return strings.HasPrefix(r.Pattern, "/api/") }
func (r secRoute) safe() bool  { return r.Method == http.MethodGet || r.Method == http.MethodHead }

// routes lists the router's routes, sorted, without the skipped ones.
func (f *secFixture) routes() []secRoute {
	var out []secRoute
	for _, rt := range f.env.srv.router.Routes() {
		r := secRoute{rt.Method, rt.Path}
		if _, skip := rbacSkipped[r.key()]; skip {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

// rbacMissing is an id or a name that nothing has: state-changing requests
// of the matrix name it, so that an allowed request changes nothing.
const rbacMissing = "rbac-missing"

// path fills a route's parameters: seeded objects for reads, rbacMissing
// for state-changing requests (which thus change nothing).
func (f *secFixture) path(r secRoute) string {
	segs := strings.Split(r.Pattern, "/")
	for i, s := range segs {
		if s == "" || (s[0] != ':' && s[0] != '*') {
			continue
		}
		segs[i] = url.PathEscape(f.param(segs[i-1], s[1:], r.safe()))
	}
	return strings.Join(segs, "/")
}

func (f *secFixture) param(after, name string, safe bool) string {
	if name == "platform" {
		return string(engine.PlatformSlack)
	}
	if !safe {
		return rbacMissing
	}
	switch name + " after " + after {
	case "kb after knowledge", "kb after knowledge-bases":
		return f.kb
	case "id after assistants":
		return f.assistant.ID
	case "id after documents":
		return f.document.ID
	case "id after conversations":
		return f.conversation.ID
	case "id after users":
		return f.users[engine.RoleViewer].ID
	case "id after tokens":
		return f.tokenIDs[engine.RoleViewer]
	case "id after tool-approvals":
		return f.approval.ID
	case "name after tools":
		return "files__read"
	case "name after model-providers":
		return "openai"
	case "name after tool-servers":
		return "files"
	case "name after static":
		return "app.css"
	}
	// A new parameter: a harmless value until the fixture seeds one.
	return rbacMissing
}

// secQuery completes the reads that need a query to do their work.
var secQuery = map[string]string{
	"GET /analytics.csv":           "dataset=" + analyticsDatasets[0],
	"GET /knowledge/search":        "q=leave",
	"GET /api/v1/knowledge/search": "q=leave",
}

// request builds a harmless request for r as c (nil: anonymous): an empty
// JSON body for the API (refused as invalid), a form with only the CSRF
// field for pages.
func (f *secFixture) request(r secRoute, c *client) *http.Request {
	var req *http.Request
	switch {
	case r.safe():
		path := f.path(r)
		if q, ok := secQuery[r.key()]; ok {
			path += "?" + q
		}
		req = httptest.NewRequest(r.Method, path, nil)
	case r.api():
		req = httptest.NewRequest(r.Method, f.path(r), nil)
		req.Header.Set("Content-Type", "application/json")
	default:
		form := url.Values{}
		if c != nil && c.csrf != "" {
			form.Set("csrf", c.csrf)
		}
		req = httptest.NewRequest(r.Method, f.path(r), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	c.apply(req)
	return req
}

// rbacOutcome is what a response says about access.
func rbacOutcome(w *httptest.ResponseRecorder) string {
	switch {
	case w.Code == http.StatusUnauthorized:
		return "unauthenticated (401)"
	case (w.Code == http.StatusFound || w.Code == http.StatusSeeOther) && strings.HasPrefix(w.Header().Get("Location"), "/login"):
		return "sent to sign in"
	case w.Code == http.StatusForbidden:
		return "forbidden (403)"
	case w.Code >= 500:
		return fmt.Sprintf("server error (%d)", w.Code)
	}
	return "allowed"
}

func TestRBACMatrix(t *testing.T) {
	f := mustSecFixture(t)
	routes := f.routes()
	seen := map[string]bool{}
	for _, r := range routes {
		seen[r.key()] = true
	}
	for key := range rbacMatrix {
		if !seen[key] {
			t.Errorf("rbacMatrix names %s, which is not a route: remove or rename it", key)
		}
	}
	for key := range rbacSkipped {
		if _, both := rbacMatrix[key]; both {
			t.Errorf("%s is both in rbacMatrix and in rbacSkipped", key)
		}
	}
	if len(routes) < 60 {
		t.Fatalf("only %d routes: the matrix sees no router", len(routes))
	}

	for _, r := range routes {
		min, ok := rbacMatrix[r.key()]
		if !ok {
			t.Errorf("%s has no expectation: add it to rbacMatrix (rbac_matrix_test.go) with the least role that may use it, or to rbacSkipped with the reason", r.key())
			continue
		}
		check := func(who string, c *client, want string) {
			t.Helper()
			w := f.env.serve(f.request(r, c))
			if got := rbacOutcome(w); got != want {
				t.Errorf("%s as %s: %s (%d), want %s: %.300s", r.key(), who, got, w.Code, want, w.Body)
			}
			if w.Code >= 400 {
				checkNoLeak(t, r.key()+" as "+who, w.Body.Bytes())
			}
		}
		switch {
		case min == rolePublic:
			check("anonymous", nil, "allowed")
		case r.api():
			check("anonymous", nil, "unauthenticated (401)")
		default:
			check("anonymous", nil, "sent to sign in")
			// API tokens open the API only, never the pages.
			check("admin API token", f.tokens[engine.RoleAdmin], "sent to sign in")
		}
		for _, role := range secRoles {
			want := "allowed"
			if roleRank(role) < roleRank(min) {
				want = "forbidden (403)"
			}
			check(string(role)+" session", f.sessions[role], want)
			if r.api() {
				check(string(role)+" API token", f.tokens[role], want)
			}
		}
	}
}

// ---- the fixture shared with security_test.go ----

// Payloads stored in every text field the pages show. secXSS breaks out of
// text, attributes, <textarea> and <title>; secJS is a link to script;
// secMarkdown is what a model might answer.
const (
	secXSS      = `</textarea></title><script>alert(1)</script>"><img src=x onerror=alert(1)>'><svg onload=alert(1)>`
	secJS       = `javascript:alert(1)`
	secMarkdown = "[click](javascript:alert(1)) ![pic](javascript:alert(1)) <a href=\"javascript:alert(1)\">raw</a> " +
		"<iframe src=\"javascript:alert(1)\"></iframe> **bold** " + secXSS
)

// secFixture is one console with a user and a session and an API token per
// role, and one of every object the pages show, with secXSS wherever text
// comes from users, chats, models or clients.
type secFixture struct {
	env       *testEnv
	inv       *fakeInventory
	providers *secProviders
	users     map[engine.Role]*engine.User
	sessions  map[engine.Role]*client
	tokens    map[engine.Role]*client
	tokenIDs  map[engine.Role]string

	xssUser      *engine.User // named and displayed with secXSS
	assistant    *engine.Assistant
	kb           string
	document     *engine.Document // indexed, named with secXSS
	failed       *engine.Document // failed, named secJS, its error secXSS
	conversation *engine.Conversation
	trace        *engine.Trace
	approval     *engine.ToolApproval // pending, from Slack
	spare        *engine.Assistant    // and knowledge base "spare" with spareDoc
	spareDoc     *engine.Document
}

func mustSecFixture(t *testing.T) *secFixture {
	t.Helper()
	ctx := context.Background()
	inv := &fakeInventory{tools: []ToolInfo{
		{Name: "files__read", Description: "Reads " + secXSS, State: "enabled", Hash: "h1"},
		{Name: "files__write", Description: secJS, State: "not enabled", Hash: "h2"},
		{Name: "evil__" + secXSS, Description: secXSS, State: "changed", Hash: "h3"},
	}}
	providers := &secProviders{list: map[string]*engine.ModelProvider{
		"openai": {Name: "openai", BaseURL: "https://api.example.com/v1?" + url.QueryEscape(secXSS), Models: []string{secXSS, secJS}, APIKeySealed: []byte("sealed")},
	}}
	env := mustEnv(t, envOptions{Inventory: inv})
	// The console again, with model providers (mustEnv has no option for them).
	srv, err := New(Config{}, Deps{Store: env.store, Chat: env.chat, Knowledge: env.knowledge, Tools: inv, Providers: providers,
		Logger: slog.New(slog.NewJSONHandler(env.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	env.srv = srv
	f := &secFixture{
		env: env, inv: inv, providers: providers,
		users: map[engine.Role]*engine.User{}, sessions: map[engine.Role]*client{},
		tokens: map[engine.Role]*client{}, tokenIDs: map[engine.Role]string{},
	}
	st := env.store
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// Users: one per role, and one whose names are payloads.
	for _, role := range secRoles {
		u := env.MustUser("sec-"+string(role), role)
		u.DisplayName = string(role) + " " + secXSS
		must(st.UpdateUser(ctx, u))
		f.users[role], f.sessions[role] = u, env.MustSession(u)
		f.tokens[role] = env.MustToken(u)
		list, err := st.ListAPITokens(ctx, u.ID)
		must(err)
		f.tokenIDs[role] = list[0].ID
		must(st.CreateAPIToken(ctx, &engine.APIToken{UserID: u.ID, Name: secXSS, TokenHash: engine.HashSecret("sec-" + string(role))}))
	}
	f.xssUser = &engine.User{Name: "x" + secXSS, DisplayName: secXSS, Role: engine.RoleViewer, PasswordHash: mustPasswordHash(t)}
	must(st.CreateUser(ctx, f.xssUser))
	for _, id := range []*engine.Identity{
		{Platform: engine.PlatformSlack, ChatUserID: secXSS, UserID: f.xssUser.ID},
		{Platform: engine.PlatformDiscord, ChatUserID: secJS, UserID: f.xssUser.ID},
		{Platform: engine.PlatformSlack, ChatUserID: "U-viewer", UserID: f.users[engine.RoleViewer].ID},
	} {
		must(st.LinkIdentity(ctx, id))
	}

	// Knowledge: a base with an indexed and a failed document.
	f.kb = "handbook"
	must(st.CreateKnowledgeBase(ctx, &engine.KnowledgeBase{Name: f.kb, Description: secXSS}))
	must(st.CreateKnowledgeBase(ctx, &engine.KnowledgeBase{Name: "wiki", Description: secJS}))
	doc, _, err := env.knowledge.Ingest(ctx, f.kb, "leave "+secXSS+".md", []byte("# Leave "+secXSS+"\n\n"+secMarkdown))
	must(err)
	f.document = doc
	f.failed = &engine.Document{KnowledgeBase: f.kb, Source: secJS, Title: secXSS, ContentType: "text/markdown",
		Content: []byte(secXSS), SHA256: "00", Size: 1, Status: engine.DocumentPending}
	must(st.SaveDocument(ctx, f.failed))
	must(st.SetDocumentStatus(ctx, f.failed.ID, engine.DocumentFailed, 0, "Parsing failed near "+secXSS))
	env.retriever.Passages = []engine.Passage{{ID: doc.ID + ":0", KnowledgeBase: f.kb, DocumentID: doc.ID, Document: doc.Source,
		Title: "Leave " + secXSS, HeadingPath: []string{secXSS, secJS}, Text: secMarkdown, Score: 0.9}}

	// An assistant with payloads in every free-text field.
	f.assistant = &engine.Assistant{Name: "helper", Description: secXSS, SystemPrompt: secXSS, Model: secXSS,
		KnowledgeBases: []string{f.kb, secXSS}, Tools: []string{"files__read", secXSS},
		ToolPolicy: map[string]engine.ToolMode{secXSS: engine.ToolAsk},
		Bindings: []engine.Binding{{Platform: engine.PlatformSlack, ChannelID: secXSS, Trigger: engine.TriggerMention},
			{Platform: engine.PlatformDiscord, ChannelID: secJS, Trigger: engine.TriggerAll}},
		IsDefault: true}
	must(st.CreateAssistant(ctx, f.assistant))

	// A conversation from Slack with a full trace, feedback and a tool call.
	f.conversation = &engine.Conversation{AssistantID: f.assistant.ID, Platform: engine.PlatformSlack, ChannelID: secXSS,
		ThreadID: "1700000000.000100", UserID: secXSS, Title: secXSS}
	must(st.EnsureConversation(ctx, f.conversation))
	now := time.Now().Add(-time.Minute)
	f.trace = &engine.Trace{ConversationID: f.conversation.ID, AssistantID: f.assistant.ID, AssistantName: secXSS,
		Platform: engine.PlatformSlack, ChannelID: secXSS, UserID: secXSS, Model: secXSS, TokensIn: 120, TokensOut: 30,
		Passages:  []engine.PassageRef{{ID: doc.ID + ":0", KnowledgeBase: f.kb, Document: secJS, Title: secXSS, Score: 0.9}},
		Retrieval: &engine.AppliedSettings{Backend: secXSS, Mode: engine.SearchHybrid, Fusion: engine.FusionRRF, RRFK: 60, Limit: 5, Notes: []string{secXSS}},
		Outcome:   engine.OutcomeAnswered, Error: secXSS, StartedAt: now, Duration: time.Second}
	for _, step := range []engine.TraceStep{
		{Name: engine.StepReceived, StartedAt: now, Duration: time.Millisecond, Detail: secXSS},
		{Name: engine.StepRetrieval, StartedAt: now, Duration: time.Millisecond, Detail: secXSS, Error: secXSS},
		{Name: engine.StepTools, StartedAt: now, Duration: time.Millisecond, Detail: secJS, Error: secXSS},
	} {
		f.trace.AddStep(step)
	}
	must(st.SaveTrace(ctx, f.trace))
	for _, turn := range []*engine.Turn{
		{Role: engine.TurnUser, UserID: secXSS, UserName: secXSS, Content: secMarkdown},
		{Role: engine.TurnAssistant, Content: secMarkdown + " [1]", Outcome: engine.OutcomeAnswered,
			Citations: []engine.Citation{{Index: 1, PassageID: doc.ID + ":0", KnowledgeBase: secJS, Document: secJS,
				Title: secXSS, Section: secXSS, Snippet: secXSS}}},
	} {
		turn.ConversationID, turn.TraceID = f.conversation.ID, f.trace.ID
		must(st.AddTurn(ctx, turn))
	}
	must(st.SaveFeedback(ctx, &engine.Feedback{TraceID: f.trace.ID, Platform: engine.PlatformSlack, UserID: secXSS,
		Rating: engine.RatingDown, Comment: secXSS}))
	must(st.RecordToolCall(ctx, &engine.ToolCallRecord{TraceID: f.trace.ID, AssistantID: f.assistant.ID, AssistantName: secXSS,
		Platform: engine.PlatformSlack, UserID: secXSS, Tool: secXSS, ArgumentsHash: secXSS, Outcome: engine.ToolOK, Duration: time.Second}))

	// A tool approval waiting in a Slack thread, asked by the viewer.
	thread := &engine.Conversation{AssistantID: f.assistant.ID, Platform: engine.PlatformSlack, ChannelID: "C-sec",
		ThreadID: "sec-thread", UserID: "U-viewer", Title: secXSS}
	must(st.EnsureConversation(ctx, thread))
	f.approval = &engine.ToolApproval{TraceID: "sec-trace", EventID: "Ev-sec", AssistantID: f.assistant.ID, AssistantName: secXSS,
		ConversationID: thread.ID,
		Thread:         engine.Thread{Channel: engine.Channel{Platform: engine.PlatformSlack, ID: "C-sec", Name: secXSS}, ID: "sec-thread"},
		User:           engine.ChatUser{ID: "U-viewer", Name: secXSS},
		Calls:          []engine.ToolCall{{ID: "c1", Name: secXSS, Arguments: fmt.Sprintf(`{"path": %q, "url": %q}`, secXSS, secJS)}},
		State:          []byte(`{}`), Status: engine.ApprovalPending, CreatedAt: now, ExpiresAt: time.Now().Add(time.Hour)}
	must(st.CreateApproval(ctx, f.approval))

	// Spares for the forms to delete (the API deletes the others).
	f.spare = &engine.Assistant{Name: "spare", KnowledgeBases: []string{}}
	must(st.CreateAssistant(ctx, f.spare))
	must(st.CreateKnowledgeBase(ctx, &engine.KnowledgeBase{Name: "spare"}))
	f.spareDoc, _, err = env.knowledge.Ingest(ctx, "spare", "spare.md", []byte("# Spare"))
	must(err)

	// MCP servers, pins, platform states and the audit log.
	must(st.SaveToolServer(ctx, &engine.ToolServer{Name: "files", Transport: "stdio", Command: secXSS, Args: []string{secXSS, secJS},
		Env: map[string]string{"API_TOKEN": "s3cret"}}))
	must(st.SaveToolServer(ctx, &engine.ToolServer{Name: "web", Transport: "http", URL: "https://mcp.example.com/" + url.PathEscape(secXSS)}))
	must(st.SetToolPin(ctx, &engine.ToolPin{Tool: "files__read", Hash: "h1", PinnedBy: secXSS}))
	must(st.SetPlatformStatus(ctx, &engine.PlatformStatus{Platform: engine.PlatformSlack, State: "failed", Detail: secXSS}))
	env.mustAudit(&engine.AuditEntry{ActorID: f.xssUser.ID, ActorName: secXSS, Action: "assistant.update", Target: secXSS,
		Detail: secXSS, Status: 200, IP: "192.0.2.1", UserAgent: secXSS})
	env.mustAudit(&engine.AuditEntry{ActorName: secJS, Action: "auth.login_failed", Target: secJS, Status: 401, UserAgent: secJS})

	// A budget of the payload channel, used up by its trace (the dashboard's banner).
	must(st.SaveBudget(ctx, &engine.Budget{ID: "sec-budget", Scope: engine.BudgetScopeChannel, Target: engine.BudgetTarget(engine.PlatformSlack, secXSS),
		Period: engine.BudgetMonth, MaxTokens: 100, Action: engine.BudgetRefuse}))
	return f
}

// secProviders keeps model providers in memory; Models lists the
// configured models instead of asking a server.
type secProviders struct {
	mu   sync.Mutex
	list map[string]*engine.ModelProvider
}

func (p *secProviders) List(context.Context) ([]*engine.ModelProvider, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*engine.ModelProvider
	for _, mp := range p.list {
		c := *mp
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (p *secProviders) Save(_ context.Context, mp *engine.ModelProvider, keepKey bool) error {
	if err := mp.Validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := *mp
	if old, ok := p.list[mp.Name]; ok && keepKey && mp.APIKey == "" {
		c.APIKeySealed = old.APIKeySealed
	} else if mp.APIKey != "" {
		c.APIKeySealed, c.APIKey = []byte("sealed"), ""
	}
	p.list[mp.Name] = &c
	return nil
}

func (p *secProviders) Delete(_ context.Context, name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.list[name]; !ok {
		return engine.Errorf(engine.ENOTFOUND, "No model provider is named %q.", name)
	}
	delete(p.list, name)
	return nil
}

func (p *secProviders) Models(_ context.Context, mp *engine.ModelProvider, _ string) ([]string, error) {
	return mp.Models, nil
}
