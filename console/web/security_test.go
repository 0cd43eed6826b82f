package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"

	"github.com/convosphere/convosphere/engine"
)

// Security tests across every route of the router (see rbac_matrix_test.go
// for the routes, the roles and secFixture): CSRF, XSS, SQL injection,
// sessions ended by sign-out or by disabling a user, security headers and
// cookies. Per-area tests cover the same ground in depth: TestLogin,
// TestCrossOriginRefused, TestLogout, TestSessionIdleTimeout,
// TestDisabledUserLockedOutAtOnce (login_test.go), TestSessionFixation,
// TestDisableKillsSessionsAndTokens, TestUsersCSRF, TestUsersXSS
// (users_test.go), TestAssistantFormsNeedCSRF, TestKnowledgePagesEscapeEverything,
// TestConversationsXSS, TestSecurityHeaders (pages_test.go).

// ---- CSRF ----

// csrfCase is a state-changing request that would change something if the
// console accepted it: a seeded object and a valid body.
type csrfCase struct {
	path string
	// form is the page form without its csrf field (pages); json the
	// body (API); upload sends a file as multipart/form-data instead.
	form   url.Values
	json   string
	upload bool
}

// csrfSkipped are the state-changing routes TestSecurityCSRF leaves out.
var csrfSkipped = map[string]string{
	"POST /login":                     "no session yet: a double-submit token of its own (TestLogin, TestCrossOriginRefused)",
	"POST /invite/:token":             "no session: the invitation token and a double-submit token (TestInviteAcceptSignIn)",
	"POST /api/v1/invitations/:token": "no session: the invitation token in the path is the only credential (TestInvitationAPI)",
	"POST /mcp":                       "API tokens only; a session cookie is no credential there",
	"DELETE /mcp":                     "API tokens only; a session cookie is no credential there",
}

// csrfCases are the requests of every state-changing route.
func (f *secFixture) csrfCases() map[string]csrfCase {
	admin, viewer := f.sessions[engine.RoleAdmin], f.users[engine.RoleViewer]
	form := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	assistantForm := func(name string) url.Values {
		v := assistantFormOf(admin, "name", name)
		v.Del("csrf")
		return v
	}
	kb, doc, a := f.kb, f.document.ID, f.assistant.ID
	return map[string]csrfCase{
		"POST /logout":                             {path: "/logout", form: form()},
		"POST /assistants":                         {path: "/assistants", form: assistantForm("csrf form made")},
		"POST /assistants/:id":                     {path: "/assistants/" + a, form: assistantForm("csrf form renamed")},
		"POST /assistants/:id/delete":              {path: "/assistants/" + f.spare.ID + "/delete", form: form()},
		"POST /knowledge":                          {path: "/knowledge", form: form("name", "csrf-form-kb", "description", "made")},
		"POST /knowledge/:kb/delete":               {path: "/knowledge/spare/delete", form: form()},
		"POST /knowledge/:kb/upload":               {path: "/knowledge/" + kb + "/upload", upload: true},
		"POST /knowledge/:kb/documents/:id/delete": {path: "/knowledge/spare/documents/" + f.spareDoc.ID + "/delete", form: form()},

		"POST /api/v1/chat":                                           {path: "/api/v1/chat", json: `{"message": "hello"}`},
		"POST /api/v1/assistants":                                     {path: "/api/v1/assistants", json: `{"name": "csrf made"}`},
		"PUT /api/v1/assistants/:id":                                  {path: "/api/v1/assistants/" + a, json: `{"name": "csrf renamed", "system_prompt": "x"}`},
		"DELETE /api/v1/assistants/:id":                               {path: "/api/v1/assistants/" + a},
		"POST /api/v1/tool-approvals/:id":                             {path: "/api/v1/tool-approvals/" + f.approval.ID, json: `{"decision": "approve"}`},
		"POST /api/v1/tools/:name/enable":                             {path: "/api/v1/tools/files__write/enable"},
		"POST /api/v1/tools/:name/disable":                            {path: "/api/v1/tools/files__read/disable"},
		"PUT /api/v1/tool-servers/:name":                              {path: "/api/v1/tool-servers/csrfsrv", json: `{"transport": "stdio", "command": "npx"}`},
		"DELETE /api/v1/tool-servers/:name":                           {path: "/api/v1/tool-servers/files"},
		"POST /api/v1/tool-servers/:name/test":                        {path: "/api/v1/tool-servers/files/test", json: `{"transport": "stdio", "command": "npx"}`},
		"POST /api/v1/knowledge-bases":                                {path: "/api/v1/knowledge-bases", json: `{"name": "csrf-kb"}`},
		"DELETE /api/v1/knowledge-bases/:kb":                          {path: "/api/v1/knowledge-bases/" + kb},
		"POST /api/v1/knowledge-bases/:kb/documents":                  {path: "/api/v1/knowledge-bases/" + kb + "/documents", upload: true},
		"DELETE /api/v1/knowledge-bases/:kb/documents/:id":            {path: "/api/v1/knowledge-bases/" + kb + "/documents/" + doc},
		"POST /api/v1/knowledge-bases/:kb/search":                     {path: "/api/v1/knowledge-bases/" + kb + "/search", json: `{"query": "leave"}`},
		"POST /api/v1/users":                                          {path: "/api/v1/users", json: `{"name": "mallory", "role": "admin"}`},
		"PATCH /api/v1/users/:id":                                     {path: "/api/v1/users/" + viewer.ID, json: `{"role": "admin"}`},
		"POST /api/v1/users/:id/invite":                               {path: "/api/v1/users/" + viewer.ID + "/invite"},
		"POST /api/v1/users/:id/identities":                           {path: "/api/v1/users/" + viewer.ID + "/identities", json: `{"platform": "slack", "chat_user_id": "U0MALLORY"}`},
		"DELETE /api/v1/users/:id/identities/:platform/:chat_user_id": {path: "/api/v1/users/" + viewer.ID + "/identities/slack/U-viewer"},
		"POST /api/v1/tokens":                                         {path: "/api/v1/tokens", json: `{"name": "stolen"}`},
		"DELETE /api/v1/tokens/:id":                                   {path: "/api/v1/tokens/" + f.tokenIDs[engine.RoleViewer]},
		"PUT /api/v1/model-providers/:name":                           {path: "/api/v1/model-providers/evil", json: `{"base_url": "https://evil.example/v1", "models": ["m"]}`},
		"DELETE /api/v1/model-providers/:name":                        {path: "/api/v1/model-providers/openai"},
		"POST /api/v1/model-providers/:name/test":                     {path: "/api/v1/model-providers/evil/test", json: `{"base_url": "https://evil.example/v1"}`},
		"POST /api/v1/budgets":                                        {path: "/api/v1/budgets", json: `{"scope": "channel", "target": "slack:C0EVIL", "period": "day", "max_tokens": 1}`},
		"PUT /api/v1/budgets/:id":                                     {path: "/api/v1/budgets/sec-budget", json: `{"scope": "channel", "target": "slack:C0EVIL", "period": "day", "max_tokens": 1}`},
		"DELETE /api/v1/budgets/:id":                                  {path: "/api/v1/budgets/sec-budget"},
	}
}

// csrfRequest builds the request of cc for route r as the session c with
// csrf as its token ("" for none); header adds headers.
func (f *secFixture) csrfRequest(t *testing.T, r secRoute, cc csrfCase, c *client, csrf string, header ...string) *http.Request {
	t.Helper()
	var (
		body io.Reader
		ct   string
	)
	switch {
	case cc.upload:
		parts := []part{{name: "csrf.md", content: "# Planted\n\nby a forged request"}}
		if !r.api() && csrf != "" {
			parts = append(parts, part{name: "csrf", content: csrf, field: true})
		}
		buf, typ := multipartBody(t, parts...)
		body, ct = buf, typ
	case !r.api():
		v := url.Values{}
		for k, vs := range cc.form {
			v[k] = vs
		}
		if csrf != "" {
			v.Set("csrf", csrf)
		}
		body, ct = strings.NewReader(v.Encode()), "application/x-www-form-urlencoded"
	case cc.json != "":
		body, ct = strings.NewReader(cc.json), "application/json"
	}
	req := httptest.NewRequest(r.Method, cc.path, body)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.AddCookie(c.session)
	if r.api() && csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// snapshot describes everything a forged request could change.
func (f *secFixture) snapshot(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	st := f.env.store
	var b strings.Builder
	dump := func(what string, v any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("snapshot %s: %v", what, err)
		}
		j, _ := json.Marshal(v)
		fmt.Fprintf(&b, "%s: %s\n", what, j)
	}
	assistants, err := st.ListAssistants(ctx)
	dump("assistants", assistants, err)
	kbs, err := st.ListKnowledgeBases(ctx)
	dump("knowledge bases", kbs, err)
	for _, kb := range kbs {
		docs, err := st.ListDocuments(ctx, kb.Name)
		dump("documents of "+kb.Name, docs, err)
	}
	users, err := st.ListUsers(ctx)
	dump("users", users, err)
	for _, u := range users {
		ids, err := st.IdentitiesOf(ctx, u.ID)
		dump("identities of "+u.Name, ids, err)
	}
	tokens, err := st.ListAPITokens(ctx, "")
	dump("tokens", len(tokens), err)
	invitations, err := st.ListInvitations(ctx)
	dump("invitations", len(invitations), err)
	servers, err := st.ToolServers(ctx)
	dump("tool servers", servers, err)
	budgets, err := st.ListBudgets(ctx)
	dump("budgets", budgets, err)
	approvals, err := st.ListApprovals(ctx, engine.ApprovalFilter{})
	for _, ap := range approvals {
		fmt.Fprintf(&b, "approval %s: %s\n", ap.ID, ap.Status)
	}
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := f.inv.Inventory(ctx)
	dump("inventory", inv, nil)
	dump("inventory log", f.inv.entries(), nil)
	providers, _ := f.providers.List(ctx)
	dump("model providers", providers, nil)
	dump("engine calls", f.env.chat.calls.Load(), nil)
	dump("ingested", f.env.knowledge.sources(), nil)
	for _, role := range secRoles {
		_, err := st.SessionByTokenHash(ctx, engine.HashSecret(f.sessions[role].session.Value))
		fmt.Fprintf(&b, "session of %s: %v\n", role, err == nil)
	}
	return b.String()
}

func TestSecurityCSRF(t *testing.T) {
	f := mustSecFixture(t)
	admin, other := f.sessions[engine.RoleAdmin], f.sessions[engine.RoleEditor]
	cases := f.csrfCases()
	var routes []secRoute
	for _, rt := range f.env.srv.router.Routes() {
		r := secRoute{rt.Method, rt.Path}
		if r.safe() {
			continue
		}
		if _, skip := csrfSkipped[r.key()]; skip {
			continue
		}
		if _, ok := cases[r.key()]; !ok {
			t.Errorf("%s changes state but has no case in csrfCases (security_test.go): add a request that would change something, or a reason in csrfSkipped", r.key())
			continue
		}
		routes = append(routes, r)
	}
	for key := range cases {
		if _, ok := rbacMatrix[key]; !ok && key != "POST /logout" {
			t.Errorf("csrfCases names %s, which is not a route of the matrix", key)
		}
	}
	if len(routes) < 30 {
		t.Fatalf("only %d state-changing routes: the test sees no router", len(routes))
	}
	sort.Slice(routes, func(i, j int) bool { return routes[i].key() < routes[j].key() })

	for _, r := range routes {
		cc := cases[r.key()]
		before := f.snapshot(t)
		// Without the session's token the API does not take the cookie
		// for a credential (401); a page refuses the form (403).
		refused := func(code int) bool {
			return code == http.StatusForbidden || (r.api() && code == http.StatusUnauthorized)
		}
		for _, v := range []struct {
			name   string
			csrf   string
			header []string
			want   func(int) bool
		}{
			{"no token", "", nil, refused},
			{"a forged token", "forged-" + admin.csrf[:8], nil, refused},
			{"another session's token", other.csrf, nil, refused},
			{"the token from a cross-site page", admin.csrf, []string{"Sec-Fetch-Site", "cross-site"}, func(c int) bool { return c == http.StatusForbidden }},
			{"the token with a foreign Origin", admin.csrf, []string{"Origin", "https://evil.example"}, func(c int) bool { return c == http.StatusForbidden }},
		} {
			w := f.env.serve(f.csrfRequest(t, r, cc, admin, v.csrf, v.header...))
			if !v.want(w.Code) {
				t.Errorf("%s with %s: %d, want it refused: %.300s", r.key(), v.name, w.Code, w.Body)
			}
		}
		if after := f.snapshot(t); after != before {
			t.Errorf("%s: forged requests changed the console:\n%s", r.key(), diffLines(before, after))
		}
	}
	// The controls, once nothing forged is left to try (they change the
	// console): the same requests with the session's token are not
	// refused, so the token was all that was missing; and API tokens need
	// no CSRF token (a browser never sends one on its own).
	// Deletions go after the changes, sign-out last, so that each request
	// finds its object and succeeds: the bodies are valid.
	rank := func(r secRoute) int {
		switch {
		case r.Pattern == "/logout":
			return 3
		case !(r.Method == http.MethodDelete || strings.HasSuffix(r.Pattern, "/delete")):
			return 0
		case strings.Contains(r.Pattern, "/documents/"):
			return 1 // before their knowledge base
		}
		return 2
	}
	sort.SliceStable(routes, func(i, j int) bool { return rank(routes[i]) < rank(routes[j]) })
	for _, r := range routes {
		w := f.env.serve(f.csrfRequest(t, r, cases[r.key()], admin, admin.csrf))
		if w.Code >= 400 {
			t.Errorf("%s with the session's token: %d, want it done: %.300s", r.key(), w.Code, w.Body)
		}
		if r.api() {
			w := f.env.serve(f.request(r, f.tokens[engine.RoleAdmin]))
			if w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden {
				t.Errorf("%s with an API token and no CSRF token: %d: %.300s", r.key(), w.Code, w.Body)
			}
		}
	}
}

// diffLines lists the lines of after that differ from before.
func diffLines(before, after string) string {
	b, a := strings.Split(before, "\n"), strings.Split(after, "\n")
	var out []string
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y string
		if i < len(b) {
			x = b[i]
		}
		if i < len(a) {
			y = a[i]
		}
		if x != y {
			out = append(out, "- "+x, "+ "+y)
		}
	}
	return strings.Join(out, "\n")
}

// ---- XSS ----

// secQueryParams are the query parameters the pages read: the XSS and SQL
// injection tests send payloads in all of them.
var secQueryParams = []string{
	"q", "kb", "mode", "fusion", "alpha", "rrf_k", "limit", "min_score", "rerank", // the search tester
	"platform", "assistant", "user", "channel", "from", "to", "feedback", "errors", "offset", // conversations
	"actor", "action", "target", "failures", "page", // audit
	"days", "top", "dataset", // analytics
	"delete", "deleted", "saved", "created", "next", "status", "tool", "assistant_id", "user_id",
}

// secTextParams are those of secQueryParams that take free text.
var secTextParams = []string{"q", "kb", "assistant", "user", "channel", "actor", "action", "target", "delete", "deleted", "saved", "created", "next", "tool", "assistant_id", "user_id"}

// withQuery adds every name=value to path.
func withQuery(path, value string, names []string) string {
	q := url.Values{}
	for _, n := range names {
		q.Set(n, value)
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + q.Encode()
}

// urlAttrs are the attributes a browser follows or loads.
var urlAttrs = map[string]bool{"href": true, "src": true, "action": true, "formaction": true, "xlink:href": true,
	"data": true, "poster": true, "background": true, "srcset": true, "ping": true, "codebase": true, "cite": true}

// checkNoInjectedMarkup fails when an HTML page carries markup that no
// template wrote: a script that is not the console's own, an event
// handler attribute, a javascript: URL, or an element that loads or frames
// content.
func checkNoInjectedMarkup(t *testing.T, what string, body []byte) {
	t.Helper()
	doc := mustDoc(t, body)
	doc.Find("*").Each(func(_ int, s *goquery.Selection) {
		n := s.Get(0)
		switch n.Data {
		case "script":
			if src, _ := s.Attr("src"); !strings.HasPrefix(src, "/static/") || strings.TrimSpace(s.Text()) != "" {
				t.Errorf("%s: a script that is not the console's: src=%q %.80q", what, src, s.Text())
			}
		case "iframe", "frame", "frameset", "object", "embed", "applet", "base", "portal":
			t.Errorf("%s: a <%s> element", what, n.Data)
		case "meta":
			if _, ok := s.Attr("http-equiv"); ok {
				t.Errorf("%s: a <meta http-equiv>", what)
			}
		}
		for _, a := range n.Attr {
			key := strings.ToLower(a.Key)
			if a.Namespace != "" {
				key = strings.ToLower(a.Namespace + ":" + a.Key)
			}
			val := strings.ToLower(strings.Map(func(r rune) rune {
				if r <= ' ' {
					return -1
				}
				return r
			}, a.Val))
			switch {
			case strings.HasPrefix(key, "on"):
				t.Errorf("%s: <%s %s=%q>: an event handler attribute", what, n.Data, a.Key, a.Val)
			case key == "srcdoc":
				t.Errorf("%s: <%s srcdoc>", what, n.Data)
			case urlAttrs[key] && (strings.HasPrefix(val, "javascript:") || strings.HasPrefix(val, "vbscript:") || strings.HasPrefix(val, "data:text/html")):
				t.Errorf("%s: <%s %s=%q>: a script URL", what, n.Data, a.Key, a.Val)
			case key == "style" && (strings.Contains(val, "javascript:") || strings.Contains(val, "expression(")):
				t.Errorf("%s: <%s style=%q>", what, n.Data, a.Val)
			}
		}
	})
	for _, raw := range []string{"<script>alert", "<img src=x", "<svg onload", "<iframe"} {
		if strings.Contains(string(body), raw) {
			t.Errorf("%s: %q is in the page unescaped", what, raw)
		}
	}
}

// showsPayload reports whether a page shows secXSS as text or in an
// attribute (escaped, so harmless): proof that the seeded text reached it.
func showsPayload(doc *goquery.Document) bool {
	const mark = "<script>alert(1)</script>"
	if strings.Contains(doc.Text(), mark) {
		return true
	}
	found := false
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		for _, a := range n.Attr {
			found = found || strings.Contains(a.Val, mark)
		}
		for c := n.FirstChild; c != nil && !found; c = c.NextSibling {
			walk(c)
		}
	}
	for _, n := range doc.Nodes {
		walk(n)
	}
	return found
}

func TestSecurityXSS(t *testing.T) {
	f := mustSecFixture(t)
	env := f.env
	admin := f.sessions[engine.RoleAdmin]
	// More text from users: a Playground answer (the scripted model echoes
	// the question, rendered as Markdown) and requests whose user agent
	// the audit log records.
	w := env.postChat(f.sessions[engine.RoleViewer], fmt.Sprintf(`{"message": %q}`, secMarkdown))
	if w.Code != http.StatusOK {
		t.Fatalf("chat: %d %s", w.Code, w.Body)
	}
	// The Playground puts answer_html into the page as HTML (playground.js).
	var answer struct {
		Answer     string `json:"answer"`
		AnswerHTML string `json:"answer_html"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil || !strings.Contains(answer.Answer, secXSS) || answer.AnswerHTML == "" {
		t.Fatalf("chat answer: %v %.300s", err, w.Body)
	}
	checkNoInjectedMarkup(t, "the chat API's answer_html", []byte(answer.AnswerHTML))
	for _, c := range []*client{admin, f.tokens[engine.RoleEditor]} {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/knowledge-bases", strings.NewReader(`{"name": "x"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("User-Agent", secXSS)
		c.apply(r)
		env.serve(r)
	}
	ck, csrf := env.loginForm("")
	r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"username": {secXSS}, "password": {"x"}, "csrf": {csrf}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("User-Agent", secXSS)
	r.AddCookie(ck)
	env.serve(r)

	type page struct {
		path string
		as   *client
		name string // for messages: the path is long with payloads
	}
	var pages []page
	for _, r := range f.routes() {
		if r.api() || !r.safe() || strings.HasSuffix(r.Pattern, ".csv") {
			continue
		}
		for _, role := range []engine.Role{engine.RoleAdmin, engine.RoleViewer} {
			if roleRank(role) < roleRank(rbacMatrix[r.key()]) {
				continue
			}
			p, c := f.path(r), f.sessions[role]
			pages = append(pages, page{p, c, p},
				page{withQuery(p, secXSS, secTextParams), c, p + "?<text params>=secXSS"},
				page{withQuery(p, secXSS, secQueryParams), c, p + "?<all params>=secXSS"},
				page{withQuery(p, secJS, secQueryParams), c, p + "?<all params>=secJS"})
		}
	}
	pages = append(pages,
		page{path: "/users/" + f.xssUser.ID, as: admin},
		page{path: "/knowledge/wiki", as: admin},
		page{path: "/knowledge/" + f.kb + "/documents/" + f.failed.ID, as: admin},
		page{path: "/knowledge/" + f.kb + "/documents/" + f.failed.ID + "/delete", as: admin},
		page{path: "/knowledge/search?q=leave&kb=" + f.kb, as: f.sessions[engine.RoleViewer]},
		page{path: "/conversations?channel=" + url.QueryEscape(secXSS), as: admin},
		page{path: "/audit?actor=" + url.QueryEscape(secXSS), as: admin},
		// Error pages echo what was asked for.
		page{path: "/no-such-page/" + url.PathEscape(secXSS), as: admin},
		page{path: "/knowledge/" + url.PathEscape(secXSS), as: admin},
		page{path: "/conversations/" + url.PathEscape(secXSS), as: admin},
		page{path: "/users/" + url.PathEscape(secXSS), as: admin},
		page{path: "/assistants/" + url.PathEscape(secXSS) + "/edit", as: admin},
		page{path: "/login?next=" + url.QueryEscape(secJS), as: nil},
		page{path: "/login?next=" + url.QueryEscape(secXSS), as: nil},
	)
	shown := map[string]bool{}
	for _, p := range pages {
		w := env.get(p.path, p.as)
		who := "anonymous"
		if p.as != nil {
			who = p.as.user.Name
		}
		name := p.name
		if name == "" {
			name = p.path
		}
		what := fmt.Sprintf("GET %s as %s (%d)", name, who, w.Code)
		if w.Code >= 500 {
			t.Errorf("%s: a server error: %.300s", what, w.Body)
		}
		if w.Code >= 300 && w.Code < 400 {
			if loc := strings.ToLower(w.Header().Get("Location")); !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") {
				t.Errorf("%s: redirects off the console to %q", what, loc)
			}
			continue
		}
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("%s: Content-Type %q, want an HTML page", what, ct)
			continue
		}
		checkNoInjectedMarkup(t, what, w.Body.Bytes())
		if u, _ := url.Parse(p.path); w.Code == http.StatusOK && showsPayload(mustDoc(t, w.Body.Bytes())) {
			shown[u.Path] = true
		}
	}
	// The seeded payloads did reach the pages that show them.
	for _, path := range []string{
		"/assistants", "/assistants/" + f.assistant.ID + "/edit", "/playground",
		"/knowledge", "/knowledge/" + f.kb, "/knowledge/" + f.kb + "/documents/" + f.document.ID, "/knowledge/search",
		"/conversations", "/conversations/" + f.conversation.ID, "/analytics",
		"/tools", "/users", "/users/" + f.xssUser.ID, "/audit", "/settings",
	} {
		if !shown[path] {
			t.Errorf("%s does not show the seeded payload as text: the XSS check proves little there", path)
		}
	}

	// Forms posted with payloads in every field come back escaped.
	af := assistantFormOf(admin)
	for _, k := range []string{"name", "description", "system_prompt", "model", "temperature", "max_output_tokens", "tools_other"} {
		af.Set(k, secXSS)
	}
	for k := range af {
		if strings.HasPrefix(k, "binding") || strings.HasPrefix(k, "channel") {
			af.Set(k, secXSS)
		}
	}
	for _, post := range []struct {
		path string
		form url.Values
	}{
		{"/assistants", af},
		{"/assistants/" + f.assistant.ID, af},
		{"/knowledge", url.Values{"csrf": {admin.csrf}, "name": {secXSS}, "description": {secXSS}}},
	} {
		w := env.postAssistantPage(post.path, post.form, admin)
		if w.Code != http.StatusBadRequest {
			t.Errorf("POST %s with payloads: %d, want the form again (400)", post.path, w.Code)
		}
		checkNoInjectedMarkup(t, "POST "+post.path, w.Body.Bytes())
	}
	w = env.postKnowledgeUpload(admin, f.kb, part{name: "csrf", content: admin.csrf, field: true},
		part{name: secXSS + ".md", content: "# " + secXSS}, part{name: secJS + ".bin", content: "\x00" + secXSS})
	checkNoInjectedMarkup(t, "POST /knowledge/"+f.kb+"/upload", w.Body.Bytes())

	// JSON and CSV are never served as HTML.
	for _, r := range f.routes() {
		if !r.safe() || (!r.api() && !strings.HasSuffix(r.Pattern, ".csv")) {
			continue
		}
		as := admin
		if r.api() {
			as = f.tokens[engine.RoleAdmin]
		}
		w := env.serve(f.request(r, as))
		if ct := w.Header().Get("Content-Type"); strings.Contains(ct, "html") || ct == "" {
			t.Errorf("%s: Content-Type %q", r.key(), ct)
		}
	}
}

// ---- SQL injection ----

// leakMarkers are what internal errors look like: database drivers, Go
// runtime and source locations. No answer may show them.
var leakMarkers = []string{"sqlite", "sqlstate", "sql:", "pgx", "pq:", "no such table", "no such column", "syntax error",
	"database is locked", "constraint failed", "goroutine ", "runtime error", ".go:", "panic:"}

// checkNoLeak fails when a response body shows an internal error.
func checkNoLeak(t *testing.T, what string, body []byte) {
	t.Helper()
	low := strings.ToLower(string(body))
	for _, m := range leakMarkers {
		if strings.Contains(low, m) {
			t.Errorf("%s: the answer shows internals (%q): %.300s", what, m, body)
		}
	}
}

// sqlPayloads are SQL injection strings; the walks over every parameter
// send the first three, the filters and text fields all of them.
var sqlPayloads = []string{
	`' OR 1=1 --`,
	`'; DROP TABLE users; --`,
	`%' UNION SELECT name, password_hash FROM users --`,
	`" OR ""="`,
	`1) OR (1=1`,
}

// jsonListLen returns the length of a JSON object's list field.
func jsonListLen(t *testing.T, body []byte, field string) int {
	t.Helper()
	var v map[string]json.RawMessage
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("not a JSON object: %v: %.200s", err, body)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(v[field], &list); err != nil {
		t.Fatalf("%q is not a list: %.300s", field, body)
	}
	return len(list)
}

func TestSecuritySQLInjection(t *testing.T) {
	f := mustSecFixture(t)
	env := f.env
	ctx := context.Background()
	admin, adminToken := f.sessions[engine.RoleAdmin], f.tokens[engine.RoleAdmin]
	usersBefore, err := env.store.CountUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}

	try := func(path string, as *client) {
		t.Helper()
		w := env.get(path, as)
		if w.Code >= 500 {
			t.Errorf("GET %s: %d: %.300s", path, w.Code, w.Body)
		}
		if !strings.Contains(path, ".csv") {
			checkNoLeak(t, "GET "+path, w.Body.Bytes())
		}
	}
	// Every read with the payload in every query parameter at once, and in
	// the free-text ones only (a bad date would stop the others early).
	for _, r := range f.routes() {
		if !r.safe() || rbacMatrix[r.key()] == rolePublic {
			continue
		}
		as := admin
		if r.api() {
			as = adminToken
		}
		for _, p := range sqlPayloads[:3] {
			try(withQuery(f.path(r), p, secQueryParams), as)
			try(withQuery(f.path(r), p, secTextParams), as)
		}
	}
	// The filters and options of the lists, one at a time.
	conv := []string{"platform", "assistant", "user", "channel", "from", "to", "feedback", "errors", "limit", "offset"}
	audit := []string{"actor", "action", "target", "from", "to", "failures", "limit", "offset", "page"}
	analytics := []string{"from", "to", "days", "top", "dataset"}
	search := []string{"q", "kb", "mode", "fusion", "alpha", "rrf_k", "limit", "min_score", "rerank"}
	for _, l := range []struct {
		path   string
		params []string
	}{
		{"/conversations", conv}, {"/conversations.csv", conv}, {"/api/v1/conversations", conv},
		{"/audit", audit}, {"/audit.csv", audit}, {"/api/v1/audit", audit},
		{"/analytics", analytics}, {"/analytics.csv?dataset=" + analyticsDatasets[0], analytics}, {"/api/v1/analytics", analytics},
		{"/knowledge/search?q=leave", search}, {"/api/v1/knowledge/search?q=leave", search},
		{"/api/v1/tool-calls", []string{"assistant_id", "tool", "limit"}},
		{"/api/v1/tool-approvals", []string{"status", "limit"}},
		{"/api/v1/tokens", []string{"user_id"}},
		{"/playground", []string{"assistant"}},
		{"/assistants", []string{"delete", "saved", "deleted"}},
		{"/knowledge", []string{"created", "deleted"}},
	} {
		as := admin
		if strings.HasPrefix(l.path, "/api/") {
			as = adminToken
		}
		for _, name := range l.params {
			for _, p := range sqlPayloads[:3] {
				try(withQuery(l.path, p, []string{name}), as)
			}
		}
	}
	// Path parameters.
	for _, r := range f.routes() {
		if !r.safe() || !strings.Contains(r.Pattern, "/:") {
			continue
		}
		for _, p := range sqlPayloads {
			path := strings.NewReplacer(
				"/:id", "/"+url.PathEscape(p), "/:kb", "/"+url.PathEscape(p), "/:name", "/"+url.PathEscape(p),
			).Replace(r.Pattern)
			as := admin
			if r.api() {
				as = adminToken
			}
			w := env.get(path, as)
			if w.Code >= 500 || w.Code == http.StatusOK && strings.Contains(r.Pattern, ":id") {
				t.Errorf("GET %s: %d: %.300s", path, w.Code, w.Body)
			}
			checkNoLeak(t, "GET "+path, w.Body.Bytes())
		}
	}

	// Filters that narrow a list return nothing with a payload: they do
	// not widen to every row.
	for _, l := range []struct {
		path, list string
		params     []string
	}{
		{"/api/v1/conversations", "conversations", []string{"assistant", "user", "channel", "platform", "feedback"}},
		{"/api/v1/audit", "entries", []string{"actor", "action", "target"}},
		{"/api/v1/tool-calls", "tool_calls", []string{"assistant_id", "tool"}},
		{"/api/v1/tool-approvals", "approvals", []string{"status"}},
		{"/api/v1/tokens", "tokens", []string{"user_id"}},
	} {
		w := env.get(l.path, adminToken)
		if w.Code != http.StatusOK || jsonListLen(t, w.Body.Bytes(), l.list) == 0 {
			t.Fatalf("GET %s: %d, or an empty list without filters: the check proves nothing", l.path, w.Code)
		}
		for _, name := range l.params {
			for _, p := range sqlPayloads {
				path := withQuery(l.path, p, []string{name})
				w := env.get(path, adminToken)
				switch {
				case w.Code == http.StatusBadRequest || w.Code == http.StatusNotFound:
				case w.Code != http.StatusOK:
					t.Errorf("GET %s: %d: %.300s", path, w.Code, w.Body)
				case jsonListLen(t, w.Body.Bytes(), l.list) != 0:
					t.Errorf("GET %s: the filter widened: %.300s", path, w.Body)
				}
			}
		}
	}
	for _, l := range []struct {
		path   string
		params []string
	}{
		{"/conversations.csv", []string{"assistant", "user", "channel"}},
		{"/api/v1/conversations.csv", []string{"assistant", "user", "channel"}},
		{"/audit.csv", []string{"actor", "action", "target"}},
	} {
		for _, name := range l.params {
			for _, p := range sqlPayloads {
				path := withQuery(l.path, p, []string{name})
				w := env.get(path, admin)
				switch {
				case w.Code == http.StatusBadRequest:
				case w.Code != http.StatusOK:
					t.Errorf("GET %s: %d: %.300s", path, w.Code, w.Body)
				case strings.Count(strings.TrimSpace(w.Body.String()), "\n") != 0:
					t.Errorf("GET %s: rows for a payload filter:\n%.300s", path, w.Body)
				}
			}
		}
	}

	// Text fields store the payloads as text.
	for i, p := range sqlPayloads {
		if w := env.sendJSON(http.MethodPost, "/api/v1/users", fmt.Sprintf(`{"name": "sqli%d", "display_name": %q}`, i, p), adminToken); w.Code != http.StatusCreated {
			t.Errorf("create a user displayed as %q: %d %s", p, w.Code, w.Body)
		}
		if w := env.sendJSON(http.MethodPost, "/api/v1/users", fmt.Sprintf(`{"name": %q}`, p), adminToken); w.Code != http.StatusBadRequest {
			t.Errorf("create a user named %q: %d, want 400: %s", p, w.Code, w.Body)
		}
		if w := env.sendJSON(http.MethodPost, "/api/v1/assistants", fmt.Sprintf(`{"name": "sqli %d", "description": %q, "system_prompt": %q}`, i, p, p), adminToken); w.Code != http.StatusCreated {
			t.Errorf("create an assistant described %q: %d %s", p, w.Code, w.Body)
		} else if a := mustAssistantOut(t, w, http.StatusCreated); a.Description != p || a.SystemPrompt != p {
			t.Errorf("assistant stored %q / %q, want %q", a.Description, a.SystemPrompt, p)
		}
		if w := env.sendJSON(http.MethodPost, "/api/v1/knowledge-bases", fmt.Sprintf(`{"name": "sqli-%d", "description": %q}`, i, p), adminToken); w.Code != http.StatusCreated {
			t.Errorf("create a knowledge base described %q: %d %s", p, w.Code, w.Body)
		}
		if w := env.sendJSON(http.MethodPost, "/api/v1/knowledge-bases", fmt.Sprintf(`{"name": %q}`, p), adminToken); w.Code != http.StatusBadRequest {
			t.Errorf("a knowledge base named %q: %d, want 400", p, w.Code)
		}
		if w := env.sendJSON(http.MethodPost, "/api/v1/tokens", fmt.Sprintf(`{"name": %q}`, p), adminToken); w.Code != http.StatusCreated {
			t.Errorf("a token named %q: %d %s", p, w.Code, w.Body)
		}
		if w := env.sendJSON(http.MethodPost, "/api/v1/knowledge-bases/"+f.kb+"/search", fmt.Sprintf(`{"query": %q}`, p), adminToken); w.Code != http.StatusOK {
			t.Errorf("search for %q: %d %s", p, w.Code, w.Body)
		}
		if w := env.postChat(adminToken, fmt.Sprintf(`{"message": %q}`, p)); w.Code != http.StatusOK {
			t.Errorf("chat %q: %d %s", p, w.Code, w.Body)
		}
	}
	for i, p := range sqlPayloads {
		u, err := env.store.UserByName(ctx, fmt.Sprintf("sqli%d", i))
		if err != nil || u.DisplayName != p {
			t.Errorf("user %d: %+v, %v", i, u, err)
		}
	}
	// Sign-in with payloads as the name or the password fails (two tries:
	// each hashes a password, which is slow on purpose).
	for _, form := range [][2]string{{sqlPayloads[0], sqlPayloads[0]}, {"sec-admin' --", `' OR '1'='1`}} {
		if w := env.login(form[0], form[1], ""); w.Code != http.StatusUnauthorized || cookieFrom(w, env.srv.cookies.session) != nil {
			t.Errorf("sign in as %q / %q: %d", form[0], form[1], w.Code)
		}
	}

	// The users table is still there, with every user.
	n, err := env.store.CountUsers(ctx)
	if err != nil || n != usersBefore+len(sqlPayloads) {
		t.Fatalf("users after the payloads: %d, %v; want %d", n, err, usersBefore+len(sqlPayloads))
	}
	if w := env.get("/api/v1/users", adminToken); w.Code != http.StatusOK || jsonListLen(t, w.Body.Bytes(), "users") != n {
		t.Fatalf("list users: %d %.300s", w.Code, w.Body)
	}
}

// ---- sessions ----

// TestSecuritySignOutEverywhere adds to TestLogout (which replays the
// cookie on a page): after signing out, the old cookie with its CSRF token
// opens no route at all.
func TestSecuritySignOutEverywhere(t *testing.T) {
	f := mustSecFixture(t)
	admin := f.sessions[engine.RoleAdmin]
	w := f.env.postForm("/logout", url.Values{"csrf": {admin.csrf}}, admin.session)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("sign out: %d", w.Code)
	}
	f.expectLockedOut(t, "the signed-out session", admin)
}

// TestSecurityDisabledMidSession adds to TestDisableKillsSessionsAndTokens
// and TestDisabledUserLockedOutAtOnce (which try a page and a few API
// calls): once an admin is disabled by another, their open session and
// their API token open no route at all, and a form they had open changes
// nothing.
func TestSecurityDisabledMidSession(t *testing.T) {
	f := mustSecFixture(t)
	other := f.env.MustToken(f.env.MustUser("sec-admin-2", engine.RoleAdmin))
	victim := f.users[engine.RoleAdmin]
	w := f.env.sendJSON(http.MethodPatch, "/api/v1/users/"+victim.ID, `{"disabled": true}`, other)
	if w.Code != http.StatusOK {
		t.Fatalf("disable: %d %s", w.Code, w.Body)
	}
	if _, err := f.env.store.SessionByTokenHash(context.Background(), engine.HashSecret(f.sessions[engine.RoleAdmin].session.Value)); !engine.IsNotFound(err) {
		t.Errorf("the disabled admin's session is still stored: %v", err)
	}
	before := f.snapshot(t)
	f.expectLockedOut(t, "the disabled admin's session", f.sessions[engine.RoleAdmin])
	f.expectLockedOut(t, "the disabled admin's API token", f.tokens[engine.RoleAdmin])
	// Forms and calls they had open: a valid CSRF token and a valid body.
	cases := f.csrfCases()
	for _, key := range []string{"POST /assistants/:id/delete", "POST /knowledge/:kb/delete", "POST /api/v1/users", "PATCH /api/v1/users/:id"} {
		method, pattern, _ := strings.Cut(key, " ")
		r := secRoute{method, pattern}
		for _, c := range []*client{f.sessions[engine.RoleAdmin], f.tokens[engine.RoleAdmin]} {
			var req *http.Request
			if c.token != "" {
				if !r.api() {
					continue
				}
				req = httptest.NewRequest(method, cases[key].path, strings.NewReader(cases[key].json))
				req.Header.Set("Content-Type", "application/json")
				c.apply(req)
			} else {
				req = f.csrfRequest(t, r, cases[key], c, c.csrf)
			}
			w := f.env.serve(req)
			if got := rbacOutcome(w); got != "sent to sign in" && got != "unauthenticated (401)" {
				t.Errorf("%s by the disabled admin: %s (%d)", key, got, w.Code)
			}
		}
	}
	if after := f.snapshot(t); after != before {
		t.Errorf("the disabled admin changed the console:\n%s", diffLines(before, after))
	}
}

// expectLockedOut checks that c opens no route: pages send it to sign in,
// the API answers 401.
func (f *secFixture) expectLockedOut(t *testing.T, who string, c *client) {
	t.Helper()
	n := 0
	for _, r := range f.routes() {
		if rbacMatrix[r.key()] == rolePublic {
			continue
		}
		if !r.api() && c.token != "" {
			continue // tokens never open pages (TestRBACMatrix)
		}
		w := f.env.serve(f.request(r, c))
		want := "sent to sign in"
		if r.api() {
			want = "unauthenticated (401)"
		}
		if got := rbacOutcome(w); got != want {
			t.Errorf("%s with %s: %s (%d), want %s", r.key(), who, got, w.Code, want)
		}
		n++
	}
	if n < 30 {
		t.Fatalf("%s: only %d routes tried", who, n)
	}
}

// ---- headers and cookies ----

// checkSecurityHeaders fails unless a response carries the console's
// security headers.
func checkSecurityHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	csp := map[string]string{}
	for _, d := range strings.Split(h.Get("Content-Security-Policy"), ";") {
		name, val, _ := strings.Cut(strings.TrimSpace(d), " ")
		if name != "" {
			csp[strings.ToLower(name)] = val
		}
	}
	script, ok := csp["script-src"]
	if !ok {
		script, ok = csp["default-src"]
	}
	switch {
	case !ok:
		t.Errorf("%s: the CSP has neither script-src nor default-src: %q", what, h.Get("Content-Security-Policy"))
	case strings.Contains(script, "'unsafe-inline'") || strings.Contains(script, "'unsafe-eval'") ||
		strings.Contains(script, "*") || strings.Contains(script, "data:") || strings.Contains(script, "http:"):
		t.Errorf("%s: scripts may come from anywhere or inline: script-src %q", what, script)
	}
	if fa := csp["frame-ancestors"]; fa != "'none'" && fa != "'self'" {
		t.Errorf("%s: frame-ancestors %q", what, fa)
	}
	if v := csp["object-src"]; v == "" && csp["default-src"] != "'none'" {
		t.Errorf("%s: plugins are not forbidden (object-src or default-src 'none')", what)
	}
	if v := h.Get("X-Content-Type-Options"); v != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options %q", what, v)
	}
	if v := h.Get("X-Frame-Options"); v != "DENY" && v != "SAMEORIGIN" {
		t.Errorf("%s: X-Frame-Options %q", what, v)
	}
	switch v := h.Get("Referrer-Policy"); v {
	case "no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin":
	default:
		t.Errorf("%s: Referrer-Policy %q", what, v)
	}
}

// TestSecurityHeadersEverywhere adds to TestSecurityHeaders (four paths):
// every route, signed in and not, and the error answers.
func TestSecurityHeadersEverywhere(t *testing.T) {
	f := mustSecFixture(t)
	var reqs []*http.Request
	for _, rt := range f.env.srv.router.Routes() {
		r := secRoute{rt.Method, rt.Path}
		for _, c := range []*client{nil, f.sessions[engine.RoleViewer], f.sessions[engine.RoleAdmin]} {
			reqs = append(reqs, f.request(r, c))
		}
	}
	for _, path := range []string{"/no-such-page", "/api/v1/no-such-route"} {
		reqs = append(reqs, httptest.NewRequest(http.MethodGet, path, nil))
	}
	reqs = append(reqs, httptest.NewRequest(http.MethodPut, "/playground", nil), httptest.NewRequest(http.MethodPatch, "/api/v1/assistants", nil))
	cross := httptest.NewRequest(http.MethodPost, "/api/v1/tokens", strings.NewReader(`{"name": "x"}`))
	cross.Header.Set("Sec-Fetch-Site", "cross-site")
	f.sessions[engine.RoleAdmin].apply(cross)
	reqs = append(reqs, cross)
	for _, req := range reqs {
		w := f.env.serve(req)
		checkSecurityHeaders(t, fmt.Sprintf("%s %s (%d)", req.Method, req.URL.Path, w.Code), w.Header())
	}
}

// TestSecurityCookies adds to TestLogin and TestLoginSecureCookies (the
// session cookie): every cookie the console sets, through sign-in, pages,
// a stale session and sign-out, is HttpOnly and SameSite=Lax; with
// SecureCookies also Secure, for the whole host and __Host- prefixed.
func TestSecurityCookies(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
			env := mustEnv(t, envOptions{Config: Config{SecureCookies: secure}})
			env.MustUser("alice", engine.RoleAdmin)
			var set []*http.Cookie
			collect := func(w *httptest.ResponseRecorder) *httptest.ResponseRecorder {
				set = append(set, w.Result().Cookies()...)
				return w
			}
			w := collect(env.get("/login", nil))
			login := cookieFrom(w, env.srv.cookies.loginCSRF)
			doc := mustDoc(t, w.Body.Bytes())
			csrf, _ := doc.Find("form[action='/login'] input[name=csrf]").Attr("value")
			w = collect(env.postForm("/login", url.Values{"username": {"alice"}, "password": {testPassword}, "csrf": {csrf}}, login))
			sess := cookieFrom(w, env.srv.cookies.session)
			if sess == nil {
				t.Fatalf("no session cookie: %d", w.Code)
			}
			c := &client{session: &http.Cookie{Name: sess.Name, Value: sess.Value}, csrf: csrfToken(sess.Value)}
			for _, path := range []string{"/", "/playground", "/settings", "/api/v1/assistants", "/login"} {
				collect(env.get(path, c))
			}
			collect(env.get("/playground", nil, &http.Cookie{Name: env.srv.cookies.session, Value: "sess_stale"}))
			collect(env.get("/invite/not-a-token", nil))
			collect(env.postForm("/logout", url.Values{"csrf": {c.csrf}}, c.session))
			names := map[string]bool{}
			for _, ck := range set {
				names[ck.Name] = true
				what := fmt.Sprintf("cookie %s (max-age %d)", ck.Name, ck.MaxAge)
				if !ck.HttpOnly {
					t.Errorf("%s is not HttpOnly", what)
				}
				if ck.SameSite != http.SameSiteLaxMode && ck.SameSite != http.SameSiteStrictMode {
					t.Errorf("%s: SameSite %v, want Lax", what, ck.SameSite)
				}
				if ck.Secure != secure {
					t.Errorf("%s: Secure %v, want %v", what, ck.Secure, secure)
				}
				if secure && (!strings.HasPrefix(ck.Name, "__Host-") || ck.Path != "/" || ck.Domain != "") {
					t.Errorf("%s: name, path %q and domain %q break the __Host- rules", what, ck.Path, ck.Domain)
				}
				if !secure && strings.HasPrefix(ck.Name, "__") {
					t.Errorf("%s: a prefixed name that browsers refuse over plain HTTP", what)
				}
			}
			if !names[env.srv.cookies.session] || !names[env.srv.cookies.loginCSRF] {
				t.Errorf("the flow set only %v", names)
			}
		})
	}
}
