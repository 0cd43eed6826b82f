package web

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/store/sqlite"
)

// auditEntries returns every audit entry, newest first.
func (e *testEnv) auditEntries() []*engine.AuditEntry {
	e.tb.Helper()
	list, err := e.store.ListAudit(context.Background(), engine.AuditFilter{Limit: 100000})
	if err != nil {
		e.tb.Fatalf("list audit: %v", err)
	}
	return list
}

// mustAudit stores an entry directly.
func (e *testEnv) mustAudit(entry *engine.AuditEntry) *engine.AuditEntry {
	e.tb.Helper()
	if err := e.store.RecordAudit(context.Background(), entry); err != nil {
		e.tb.Fatalf("record audit: %v", err)
	}
	return entry
}

// auditRequest builds a request from a client with a user agent and an
// address.
func auditRequest(method, path, body string, c *client) *http.Request {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	r.Header.Set("User-Agent", "audit-test/1.0")
	r.RemoteAddr = "198.51.100.7:4242"
	c.apply(r)
	return r
}

func TestAuditMiddleware(t *testing.T) {
	env := mustEnv(t, envOptions{Inventory: inventory()})
	ctx := context.Background()
	ada := env.MustUser("ada", engine.RoleAdmin)
	adaToken, adaSession := env.MustToken(ada), env.MustSession(ada)
	eve := env.MustUser("eve", engine.RoleEditor)
	eveToken := env.MustToken(eve)
	vic := env.MustUser("vic", engine.RoleViewer)
	vicToken := env.MustToken(vic)
	if err := env.store.CreateKnowledgeBase(ctx, &engine.KnowledgeBase{Name: "handbook"}); err != nil {
		t.Fatal(err)
	}
	doomed := env.MustAssistant("doomed", false)

	type want struct {
		action, target, actorID, actorName, detail string
		status                                     int
	}
	tests := []struct {
		name         string
		method, path string
		body         string
		as           *client
		want         *want // nil: nothing recorded
	}{
		{"create an assistant with a token", http.MethodPost, "/api/v1/assistants", `{"name":"ops","system_prompt":"Be brief."}`, adaToken,
			&want{action: "assistant.create", target: "", actorID: ada.ID, actorName: "ada", detail: `API token "test"`, status: 201}},
		{"update an assistant with the session", http.MethodPut, "/api/v1/assistants/" + doomed.ID, `{"name":"doomed","system_prompt":"Be kind."}`, adaSession,
			&want{action: "assistant.update", target: doomed.ID, actorID: ada.ID, actorName: "ada", status: 200}},
		{"refused: a viewer may not", http.MethodDelete, "/api/v1/assistants/" + doomed.ID, "", vicToken,
			&want{action: "assistant.delete", target: doomed.ID, actorID: vic.ID, actorName: "vic", detail: `API token "test"`, status: 403}},
		{"delete an assistant", http.MethodDelete, "/api/v1/assistants/" + doomed.ID, "", adaSession,
			&want{action: "assistant.delete", target: doomed.ID, actorID: ada.ID, actorName: "ada", status: 204}},
		{"refused: not signed in", http.MethodPost, "/api/v1/assistants", `{"name":"x"}`, nil,
			&want{action: "assistant.create", status: 401}},
		{"refused: bad JSON", http.MethodPost, "/api/v1/assistants", `{"name":`, adaToken,
			&want{action: "assistant.create", actorID: ada.ID, actorName: "ada", detail: `API token "test"`, status: 400}},
		{"refused: conflict", http.MethodPost, "/api/v1/knowledge-bases", `{"name":"handbook"}`, eveToken,
			&want{action: "knowledge_base.create", actorID: eve.ID, actorName: "eve", detail: `API token "test"`, status: 409}},
		{"create a knowledge base", http.MethodPost, "/api/v1/knowledge-bases", `{"name":"faq"}`, eveToken,
			&want{action: "knowledge_base.create", target: "faq", actorID: eve.ID, actorName: "eve", detail: `API token "test"`, status: 201}},
		{"delete a missing document", http.MethodDelete, "/api/v1/knowledge-bases/handbook/documents/d404", "", eveToken,
			&want{action: "document.delete", target: "handbook/d404", actorID: eve.ID, actorName: "eve", detail: `API token "test"`, status: 404}},
		{"disable a tool", http.MethodPost, "/api/v1/tools/files__read/disable", "", adaSession,
			&want{action: "tool.disable", target: "files__read", actorID: ada.ID, actorName: "ada", status: 200}},
		{"enable a tool", http.MethodPost, "/api/v1/tools/files__write/enable", "", adaSession,
			&want{action: "tool.enable", target: "files__write", actorID: ada.ID, actorName: "ada", status: 200}},
		{"asking is not recorded", http.MethodPost, "/api/v1/chat", `{"message":"How many days of leave?"}`, adaToken, nil},
		{"searching is not recorded", http.MethodPost, "/api/v1/knowledge-bases/handbook/search", `{"query":"leave"}`, adaToken, nil},
		{"reading is not recorded", http.MethodGet, "/api/v1/assistants", "", adaToken, nil},
		{"unknown routes are not recorded", http.MethodPost, "/api/v1/nope", `{}`, adaToken, nil},
		{"a method a route lacks is not recorded", http.MethodPatch, "/api/v1/assistants", `{}`, adaToken, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(env.auditEntries())
			w := env.serve(auditRequest(tt.method, tt.path, tt.body, tt.as))
			after := env.auditEntries()
			if tt.want == nil {
				if len(after) != before {
					t.Fatalf("%d entries recorded (%+v), want none", len(after)-before, after[0])
				}
				return
			}
			if len(after) != before+1 {
				t.Fatalf("%d entries recorded, want 1 (status %d %s)", len(after)-before, w.Code, w.Body)
			}
			got := after[0]
			if w.Code != tt.want.status || got.Status != tt.want.status {
				t.Fatalf("status %d, recorded %d, want %d: %s", w.Code, got.Status, tt.want.status, w.Body)
			}
			target := tt.want.target
			if tt.name == "create an assistant with a token" {
				var out struct{ ID string }
				_ = json.Unmarshal(w.Body.Bytes(), &out)
				target = out.ID
				if target == "" {
					t.Fatalf("no id in %s", w.Body)
				}
			}
			wantEntry := &engine.AuditEntry{ID: got.ID, At: got.At, ActorID: tt.want.actorID, ActorName: tt.want.actorName, Action: tt.want.action,
				Target: target, Detail: tt.want.detail, Status: tt.want.status, IP: "198.51.100.7", UserAgent: "audit-test/1.0"}
			if *got != *wantEntry {
				t.Fatalf("recorded\n %+v\nwant\n %+v", got, wantEntry)
			}
			if d := time.Since(got.At); d < 0 || d > time.Minute {
				t.Fatalf("At = %v", got.At)
			}
		})
	}
}

func TestAuditClientIPAndUserAgent(t *testing.T) {
	for _, tt := range []struct {
		name    string
		proxies []string
		want    string
	}{
		{"untrusted X-Forwarded-For is ignored", nil, "198.51.100.7"},
		{"a trusted proxy's X-Forwarded-For is believed", []string{"198.51.100.0/24"}, "203.0.113.9"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := mustEnv(t, envOptions{Config: Config{TrustedProxies: tt.proxies}})
			tok := env.MustToken(env.MustUser("ada", engine.RoleAdmin))
			r := auditRequest(http.MethodPost, "/api/v1/knowledge-bases", `{"name":"faq"}`, tok)
			r.Header.Set("X-Forwarded-For", "203.0.113.9")
			r.Header.Set("User-Agent", strings.Repeat("Mozilla/5.0 ", 40)+"\x01end")
			if w := env.serve(r); w.Code != http.StatusCreated {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			got := env.auditEntries()[0]
			if got.IP != tt.want {
				t.Fatalf("IP %q, want %q", got.IP, tt.want)
			}
			if n := len([]rune(got.UserAgent)); n != engine.AuditMaxUserAgent || !strings.HasPrefix(got.UserAgent, "Mozilla/5.0") {
				t.Fatalf("user agent of %d characters: %q", n, got.UserAgent)
			}
		})
	}
}

// failingAuditStore is a store whose audit log cannot be written.
type failingAuditStore struct {
	*sqlite.DB
}

func (failingAuditStore) RecordAudit(context.Context, *engine.AuditEntry) error {
	return errors.New("disk I/O error")
}

func TestAuditStoreFailureLeavesTheAnswer(t *testing.T) {
	env := mustEnv(t, envOptions{})
	tok := env.MustToken(env.MustUser("ada", engine.RoleAdmin))
	send := func() *httptest.ResponseRecorder {
		return env.serve(auditRequest(http.MethodPost, "/api/v1/assistants", `{"name":"ops","system_prompt":"Be brief."}`, tok))
	}
	// The same request on a console whose audit works, for comparison.
	good := send()
	if good.Code != http.StatusCreated {
		t.Fatalf("%d %s", good.Code, good.Body)
	}
	if err := env.store.DeleteAssistant(context.Background(), decodeJSON(t, good.Body.Bytes())["id"].(string)); err != nil {
		t.Fatal(err)
	}

	logs := &syncBuffer{}
	srv, err := New(Config{}, Deps{Store: failingAuditStore{env.store}, Chat: env.chat,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	env.srv = srv
	w := send()
	if w.Code != good.Code || w.Header().Get("Content-Type") != good.Header().Get("Content-Type") {
		t.Fatalf("with a failing audit: %d %s", w.Code, w.Body)
	}
	var a, b map[string]any
	_ = json.Unmarshal(good.Body.Bytes(), &a)
	_ = json.Unmarshal(w.Body.Bytes(), &b)
	if a["name"] != b["name"] || b["id"] == "" || b["id"] == nil {
		t.Fatalf("answers differ:\n%s\n%s", good.Body, w.Body)
	}
	if _, err := env.store.AssistantByName(context.Background(), "ops"); err != nil {
		t.Fatalf("the change was not made: %v", err)
	}
	mustLogLine(t, logs.String(), "ERROR", "record audit entry", `"action":"assistant.create"`, "disk I/O error")

	// A failed sign-in is still refused, a good one still signs in.
	logs2 := logs.String()
	env.MustUser("alice", engine.RoleViewer)
	if w := env.login("alice", "wrong password!", ""); w.Code != http.StatusUnauthorized {
		t.Fatalf("failed sign-in: %d", w.Code)
	}
	if w := env.login("alice", testPassword, ""); w.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", w.Code)
	}
	mustLogLine(t, strings.TrimPrefix(logs.String(), logs2), "ERROR", "record audit entry", `"action":"auth.login"`)
}

// mustLogLine fails unless one JSON log line has the level and message
// and contains every part.
func mustLogLine(t *testing.T, logs, level, msg string, parts ...string) {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"level":"`+level+`"`) || !strings.Contains(line, `"msg":"`+msg+`"`) {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return
		}
	}
	t.Fatalf("no %s log line %q with %q in:\n%s", level, msg, parts, logs)
}

func TestAuditPanickingHandler(t *testing.T) {
	env := mustEnv(t, envOptions{})
	s := env.srv
	r := gin.New()
	r.Use(s.recoverPanics, s.recordAudit)
	r.POST("/api/v1/boom", func(*gin.Context) { panic("boom") })
	w := httptest.NewRecorder()
	r.ServeHTTP(w, auditRequest(http.MethodPost, "/api/v1/boom", `{}`, nil))
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d", w.Code)
	}
	got := env.auditEntries()
	if len(got) != 1 || got[0].Action != "http.post /api/v1/boom" || got[0].Status != http.StatusInternalServerError {
		t.Fatalf("entries %+v", got)
	}
	mustLogLine(t, env.logs.String(), "ERROR", "handler panicked", "boom")
}

func TestAuditLogin(t *testing.T) {
	env := mustEnv(t, envOptions{Config: Config{LoginMaxFailures: 2}})
	alice := env.MustUser("alice", engine.RoleViewer)
	dora := env.MustUser("dora", engine.RoleViewer)
	dora.Disabled = true
	if err := env.store.UpdateUser(context.Background(), dora); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name           string
		do             func() *httptest.ResponseRecorder
		status         int
		action         string
		actorID, actor string
		detail         string
	}{
		{"success", func() *httptest.ResponseRecorder { return env.login("ALICE", testPassword, "") },
			http.StatusSeeOther, "auth.login", alice.ID, "alice", ""},
		{"wrong password", func() *httptest.ResponseRecorder { return env.login("alice", "wrong password!", "") },
			http.StatusUnauthorized, "auth.login_failed", "", "alice", "wrong password"},
		{"unknown name, as tried", func() *httptest.ResponseRecorder {
			return env.login(" Mallory <script>alert(1)</script> ", testPassword, "")
		},
			http.StatusUnauthorized, "auth.login_failed", "", "Mallory <script>alert(1)</script>", "no user has this name"},
		{"disabled user", func() *httptest.ResponseRecorder { return env.login("dora", testPassword, "") },
			http.StatusUnauthorized, "auth.login_failed", "", "dora", "the user is disabled"},
		{"no password", func() *httptest.ResponseRecorder { return env.login("alice", "", "") },
			http.StatusBadRequest, "auth.login_failed", "", "alice", "name or password missing"},
		{"forged form", func() *httptest.ResponseRecorder {
			return env.postForm("/login", url.Values{"name": {"alice"}, "password": {testPassword}, "csrf": {"login_forged"}})
		}, http.StatusForbidden, "auth.login_failed", "", "alice", "the sign-in form expired or came from another site"},
		{"second failure", func() *httptest.ResponseRecorder { return env.login("alice", "wrong again", "") },
			http.StatusUnauthorized, "auth.login_failed", "", "alice", "wrong password"},
		{"throttled", func() *httptest.ResponseRecorder { return env.login("alice", testPassword, "") },
			http.StatusTooManyRequests, "auth.login_failed", "", "alice", "throttled after too many failures"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(env.auditEntries())
			w := tt.do()
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			after := env.auditEntries()
			if len(after) != before+1 {
				t.Fatalf("%d entries recorded, want exactly 1", len(after)-before)
			}
			got := after[0]
			if got.Action != tt.action || got.ActorID != tt.actorID || got.ActorName != tt.actor || got.Detail != tt.detail ||
				got.Status != tt.status || got.IP != "192.0.2.1" || got.Target != "" {
				t.Fatalf("recorded %+v", got)
			}
		})
	}

	// Sign-out, with and without the form's token.
	s := env.MustSession(alice)
	before := len(env.auditEntries())
	if w := env.postForm("/logout", url.Values{"csrf": {"forged"}}, s.session); w.Code != http.StatusForbidden {
		t.Fatalf("forged sign-out: %d", w.Code)
	}
	if w := env.postForm("/logout", url.Values{"csrf": {s.csrf}}, s.session); w.Code != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", w.Code)
	}
	// Signed out already: nothing to record.
	if w := env.postForm("/logout", url.Values{"csrf": {s.csrf}}, s.session); w.Code != http.StatusSeeOther {
		t.Fatalf("second sign-out: %d", w.Code)
	}
	after := env.auditEntries()
	if len(after) != before+2 {
		t.Fatalf("%d sign-out entries, want 2", len(after)-before)
	}
	for i, st := range []int{http.StatusSeeOther, http.StatusForbidden} {
		if e := after[i]; e.Action != "auth.logout" || e.ActorID != alice.ID || e.ActorName != "alice" || e.Status != st {
			t.Fatalf("sign-out entry %d: %+v", i, e)
		}
	}
}

// TestAuditRouteCoverage lists every state-changing route of the console
// and checks that each has a named action (or says why it is not
// recorded): a new route must be added to auditRules.
func TestAuditRouteCoverage(t *testing.T) {
	env := mustEnv(t, envOptions{Inventory: inventory()})
	// MCP routes exist only with an MCP handler.
	srv, err := New(Config{}, Deps{Store: env.store, Chat: env.chat, Knowledge: env.knowledge, Tools: inventory(), MCP: http.NotFoundHandler()})
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	actionRE := regexp.MustCompile(`^[a-z][a-z_]*\.[a-z][a-z_]*$`)
	for _, rt := range srv.router.Routes() {
		key := rt.Method + " " + rt.Path
		registered[key] = true
		if !auditChangesState(rt.Method) {
			continue
		}
		rule, named := auditRuleFor(rt.Method, rt.Path)
		switch {
		case !named:
			t.Errorf("%s has no audit action: name it in auditRules (audit.go); it is recorded as %q meanwhile", key, rule.Action)
		case rule.Skip == "" && !actionRE.MatchString(rule.Action):
			t.Errorf("%s: action %q is not a dotted name such as \"assistant.update\"", key, rule.Action)
		}
	}
	for key, rule := range auditRules {
		if !registered[key] {
			// Harmless (it records nothing), but maybe a renamed route.
			t.Logf("auditRules names %s, which is not a route (yet)", key)
		}
		if (rule.Action == "") == (rule.Skip == "") {
			t.Errorf("auditRules[%s] must have either an action or a reason to skip", key)
		}
	}
	for _, must := range []string{"POST /api/v1/assistants", "PUT /api/v1/assistants/:id", "POST /api/v1/tools/:name/enable"} {
		if !registered[must] {
			t.Fatalf("%s is not registered: the coverage test sees no routes", must)
		}
	}
}

// seedAudit stores entries with XSS payloads wherever text comes from
// users or clients.
func seedAudit(env *testEnv) (base time.Time) {
	base = time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	entries := []*engine.AuditEntry{
		{ID: "e1", At: base, ActorID: "u-ada", ActorName: "ada", Action: "auth.login", Status: 303, IP: "192.0.2.1", UserAgent: "Firefox"},
		{ID: "e2", At: base.Add(time.Hour), ActorName: `<img src=x onerror=alert(1)>`, Action: "auth.login_failed", Detail: "no user has this name",
			Status: 401, IP: "192.0.2.66", UserAgent: `<script>alert("ua")</script>`},
		{ID: "e3", At: base.Add(24 * time.Hour), ActorID: "u-ada", ActorName: "ada", Action: "assistant.update", Target: `a1"><script>alert(2)</script>`,
			Detail: `API token "<b>ci</b>"`, Status: 200, IP: "192.0.2.1"},
		{ID: "e4", At: base.Add(25 * time.Hour), ActorID: "u-eve", ActorName: "eve", Action: "assistant.delete", Target: "a2", Status: 403, IP: "192.0.2.2"},
		{ID: "e5", At: base.Add(48 * time.Hour), ActorID: "u-eve", ActorName: "eve", Action: "document.upload", Target: "handbook", Status: 200, IP: "192.0.2.2"},
	}
	for _, e := range entries {
		env.mustAudit(e)
	}
	return base
}

// auditRowIDs returns the entry ids a page shows, in order.
func auditRowIDs(t *testing.T, body []byte) []string {
	t.Helper()
	ids := []string{}
	for _, tr := range selectAll(t, MustParseHTML(t, body), "table#audit tbody tr.audit-entry") {
		id, _ := attr(tr, "data-id")
		ids = append(ids, id)
	}
	return ids
}

func TestAuditPage(t *testing.T) {
	env := mustEnv(t, envOptions{})
	admin := env.MustSession(env.MustUser("root", engine.RoleAdmin))

	// Empty: says so.
	w := env.get("/audit", admin)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	doc := MustParseHTML(t, w.Body.Bytes())
	if got := textOf(selectOne(t, doc, "p#audit-empty")); !strings.Contains(got, "Nothing has been recorded yet") {
		t.Fatalf("empty state %q", got)
	}

	seedAudit(env)
	w = env.get("/audit", admin)
	body := w.Body.String()
	doc = MustParseHTML(t, w.Body.Bytes())
	selectOne(t, doc, `a[href="/audit"][aria-current=page]`)
	selectOne(t, doc, `link[rel=stylesheet][href^="/static/audit.css"]`)
	for _, s := range selectAll(t, doc, "script") {
		if src, _ := attr(s, "src"); !strings.HasPrefix(src, "/static/") || textOf(s) != "" {
			t.Fatalf("inline or foreign script %q", src)
		}
	}
	if got := auditRowIDs(t, w.Body.Bytes()); !slices.Equal(got, []string{"e5", "e4", "e3", "e2", "e1"}) {
		t.Fatalf("rows %q", got)
	}
	// Payloads are text, never markup.
	for _, payload := range []string{"<script>", "<img src=x", "<b>ci</b>"} {
		if strings.Contains(body, payload) {
			t.Fatalf("the page contains %q unescaped", payload)
		}
	}
	if n := len(selectAll(t, doc, "main script, main img, main b")); n != 0 {
		t.Fatalf("%d elements injected", n)
	}
	rows := selectAll(t, doc, "table#audit tbody tr")
	failed := rows[3] // e2
	if got := textOf(selectOne(t, failed, "td.audit-actor")); got != "<img src=x onerror=alert(1)> name tried, not signed in" {
		t.Fatalf("actor cell %q", got)
	}
	if got := textOf(selectOne(t, failed, "td.audit-ip")); got != `192.0.2.66 <script>alert("ua")</script>` {
		t.Fatalf("IP cell %q", got)
	}
	if cls, _ := attr(failed, "class"); !strings.Contains(cls, "audit-failed") {
		t.Fatalf("a failure is not marked: %q", cls)
	}
	if got := textOf(selectOne(t, rows[2], "td.audit-target")); got != `a1"><script>alert(2)</script>` {
		t.Fatalf("target cell %q", got)
	}
	if got := textOf(selectOne(t, rows[2], "td.audit-action")); got != `assistant.update API token "<b>ci</b>"` {
		t.Fatalf("action cell %q", got)
	}
	if got := textOf(selectOne(t, rows[1], "td.audit-status")); got != "403 Forbidden" {
		t.Fatalf("status cell %q", got)
	}
	if got := textOf(selectOne(t, rows[0], "td.audit-when")); got != "2025-06-03 09:00:00" {
		t.Fatalf("when %q", got)
	}
	// Who and what link to the log filtered on them.
	if href, _ := attr(selectOne(t, failed, "td.audit-actor a"), "href"); href != "/audit?actor=%3Cimg+src%3Dx+onerror%3Dalert%281%29%3E" {
		t.Fatalf("actor link %q", href)
	}
	if href, _ := attr(selectOne(t, rows[0], "td.audit-action a"), "href"); href != "/audit?action=document.upload" {
		t.Fatalf("action link %q", href)
	}
	if href, _ := attr(selectOne(t, doc, "a#audit-csv"), "href"); href != "/audit.csv" {
		t.Fatalf("CSV link %q", href)
	}

	// Filters.
	tests := []struct {
		name, query string
		want        []string
	}{
		{"actor", "actor=eve", []string{"e5", "e4"}},
		{"actor as tried", "actor=" + url.QueryEscape("<IMG src=x onerror=alert(1)>"), []string{"e2"}},
		{"action prefix", "action=assistant.", []string{"e4", "e3"}},
		{"auth", "action=auth.", []string{"e2", "e1"}},
		{"target", "target=A1", []string{"e3"}},
		{"from", "from=2025-06-02", []string{"e5", "e4", "e3"}},
		{"to, through that day", "to=2025-06-02", []string{"e4", "e3", "e2", "e1"}},
		{"one day", "from=2025-06-02&to=2025-06-02", []string{"e4", "e3"}},
		{"failures only", "failures=1", []string{"e4", "e2"}},
		{"failures off", "failures=", []string{"e5", "e4", "e3", "e2", "e1"}},
		{"together", "actor=ada&action=assistant.&from=2025-06-01&failures=0", []string{"e3"}},
		{"SQL in a filter", "actor=" + url.QueryEscape("' OR '1'='1") + "&target=" + url.QueryEscape("%"), []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := env.get("/audit?"+tt.query, admin)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d", w.Code)
			}
			if got := auditRowIDs(t, w.Body.Bytes()); !slices.Equal(got, tt.want) {
				t.Fatalf("rows %q, want %q", got, tt.want)
			}
		})
	}
	// The form keeps the filters; the CSV link carries them.
	w = env.get("/audit?actor=%3Cb%3Eeve&action=assistant.&target=a2&from=2025-06-01&to=2025-06-30&failures=1", admin)
	doc = MustParseHTML(t, w.Body.Bytes())
	form := selectOne(t, doc, `form#audit-filters[method=get][action="/audit"]`)
	for name, want := range map[string]string{"actor": "<b>eve", "action": "assistant.", "target": "a2", "from": "2025-06-01", "to": "2025-06-30"} {
		if v, _ := attr(selectOne(t, form, `input[name="`+name+`"]`), "value"); v != want {
			t.Errorf("field %s = %q, want %q", name, v, want)
		}
		selectOne(t, form, `label[for="audit-`+name+`"]`)
	}
	if _, ok := attr(selectOne(t, form, `input[name=failures]`), "checked"); !ok {
		t.Error("failures only is not checked")
	}
	if got := textOf(selectOne(t, doc, "p#audit-empty")); !strings.Contains(got, "No entry matches these filters") {
		t.Errorf("filtered empty state %q", got)
	}
	href, _ := attr(selectOne(t, doc, "a#audit-csv"), "href")
	u, _ := url.Parse(href)
	if u.Path != "/audit.csv" || u.Query().Get("actor") != "<b>eve" || u.Query().Get("failures") != "1" || u.Query().Get("to") != "2025-06-30" {
		t.Errorf("CSV link %q", href)
	}
	selectOne(t, doc, `a.button[href="/audit"]`) // clear

	// Wrong filters: said plainly, with the form kept.
	for _, q := range []string{"from=yesterday", "to=2025-13-01", "from=2025-06-03&to=2025-06-01", "failures=maybe", "page=0", "page=x"} {
		w := env.get("/audit?"+q, admin)
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d", q, w.Code)
			continue
		}
		doc := MustParseHTML(t, w.Body.Bytes())
		selectOne(t, doc, "p#audit-error[role=alert]")
		selectOne(t, doc, "form#audit-filters")
	}
}

func TestAuditPagination(t *testing.T) {
	env := mustEnv(t, envOptions{})
	admin := env.MustSession(env.MustUser("root", engine.RoleAdmin))
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	for i := range 2*auditPageSize + 20 {
		env.mustAudit(&engine.AuditEntry{ID: fmt.Sprintf("e%03d", i), At: base.Add(time.Duration(i) * time.Minute),
			ActorName: "ada", Action: "tool.enable", Status: 200})
	}
	env.mustAudit(&engine.AuditEntry{ID: "other", At: base, ActorName: "bob", Action: "tool.enable", Status: 200})

	pageOf := func(path string) (ids []string, newer, older string) {
		t.Helper()
		w := env.get(path, admin)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d", path, w.Code)
		}
		doc := MustParseHTML(t, w.Body.Bytes())
		for _, a := range selectAll(t, doc, "nav.audit-pages a") {
			href, _ := attr(a, "href")
			switch rel, _ := attr(a, "rel"); rel {
			case "prev":
				newer = href
			case "next":
				older = href
			}
		}
		return auditRowIDs(t, w.Body.Bytes()), newer, older
	}
	ids, newer, older := pageOf("/audit?actor=ada")
	if len(ids) != auditPageSize || ids[0] != "e119" || newer != "" || older != "/audit?actor=ada&page=2" {
		t.Fatalf("page 1: %d rows from %s, newer %q, older %q", len(ids), ids[0], newer, older)
	}
	ids, newer, older = pageOf(older)
	if len(ids) != auditPageSize || ids[0] != "e069" || newer != "/audit?actor=ada" || older != "/audit?actor=ada&page=3" {
		t.Fatalf("page 2: %d rows from %s, newer %q, older %q", len(ids), ids[0], newer, older)
	}
	ids, newer, older = pageOf(older)
	if len(ids) != 20 || ids[19] != "e000" || newer != "/audit?actor=ada&page=2" || older != "" {
		t.Fatalf("page 3: %d rows, newer %q, older %q", len(ids), newer, older)
	}
	w := env.get("/audit?actor=ada&page=9", admin)
	if got := textOf(selectOne(t, MustParseHTML(t, w.Body.Bytes()), "p#audit-empty")); !strings.Contains(got, "No entry matches") {
		t.Fatalf("past the end: %q", got)
	}
	if w := env.get("/audit?page=9", admin); !strings.Contains(w.Body.String(), "There are no entries on page 9") {
		t.Fatalf("past the end, unfiltered: %s", w.Body)
	}
}

func TestAuditCSV(t *testing.T) {
	env := mustEnv(t, envOptions{})
	admin := env.MustSession(env.MustUser("root", engine.RoleAdmin))
	base := seedAudit(env)
	for _, e := range []*engine.AuditEntry{
		{ID: "f1", At: base.Add(72 * time.Hour), ActorName: `=HYPERLINK("http://evil.example","x")`, Action: "auth.login_failed", Status: 401},
		{ID: "f2", At: base.Add(73 * time.Hour), ActorID: "u", ActorName: "+1", Action: "tool.enable", Target: "-2+3", Detail: "@SUM(A1)", Status: 200},
		{ID: "f3", At: base.Add(74 * time.Hour), ActorID: "u", ActorName: "a, \"quoted\"\nline", Action: "tool.enable", Target: "-cmd|' /C calc'!A0", Status: 200},
	} {
		env.mustAudit(e)
	}
	w := env.get("/audit.csv", admin)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("%d %q", w.Code, w.Header().Get("Content-Type"))
	}
	if cd := w.Header().Get("Content-Disposition"); !regexp.MustCompile(`^attachment; filename="convosphere-audit-\d{8}-\d{6}\.csv"$`).MatchString(cd) {
		t.Fatalf("Content-Disposition %q", cd)
	}
	records, err := csv.NewReader(bytes.NewReader(w.Body.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(records[0], []string{"time", "actor_id", "actor_name", "action", "target", "detail", "status", "ip", "user_agent"}) {
		t.Fatalf("header %q", records[0])
	}
	if len(records) != 1+8 {
		t.Fatalf("%d records", len(records))
	}
	if got := records[1]; !slices.Equal(got, []string{"2025-06-04T11:00:00Z", "u", "a, \"quoted\" line", "tool.enable", "'-cmd|' /C calc'!A0", "", "200", "", ""}) {
		t.Fatalf("f3 %q", got)
	}
	if got := records[2]; got[2] != "'+1" || got[4] != "'-2+3" || got[5] != "'@SUM(A1)" || got[6] != "200" {
		t.Fatalf("f2 %q", got)
	}
	if got := records[3]; got[2] != `'=HYPERLINK("http://evil.example","x")` {
		t.Fatalf("f1 %q", got)
	}
	for _, r := range records[1:] {
		for i, cell := range r {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) && i != 0 {
				t.Fatalf("cell %q could run as a formula", cell)
			}
		}
	}
	if got := records[7]; got[2] != "<img src=x onerror=alert(1)>" || got[8] != `<script>alert("ua")</script>` {
		t.Fatalf("e2 %q", got)
	}

	// The filters apply.
	w = env.get("/audit.csv?actor=eve&failures=1", admin)
	records, err = csv.NewReader(bytes.NewReader(w.Body.Bytes())).ReadAll()
	if err != nil || len(records) != 2 || records[1][3] != "assistant.delete" {
		t.Fatalf("filtered: %v %q", err, records)
	}
	if w := env.get("/audit.csv?from=soon", admin); w.Code != http.StatusBadRequest {
		t.Fatalf("bad filter: %d", w.Code)
	}
}

func TestAuditCSVLongExport(t *testing.T) {
	env := mustEnv(t, envOptions{})
	admin := env.MustSession(env.MustUser("root", engine.RoleAdmin))
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	n := auditExportPage + 5
	for i := range n {
		// Several entries share a time around the page boundary.
		at := base.Add(time.Duration(min(i, n-10)) * time.Second)
		env.mustAudit(&engine.AuditEntry{ID: fmt.Sprintf("e%05d", i), At: at, ActorName: "ada", Action: "tool.enable", Target: fmt.Sprint(i), Status: 200})
	}
	w := env.get("/audit.csv", admin)
	records, err := csv.NewReader(bytes.NewReader(w.Body.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != n+1 {
		t.Fatalf("%d rows, want %d", len(records)-1, n)
	}
	seen := map[string]bool{}
	for _, r := range records[1:] {
		if seen[r[4]] {
			t.Fatalf("entry %s exported twice", r[4])
		}
		seen[r[4]] = true
	}
	if records[1][4] != fmt.Sprint(n-1) || records[n][4] != "0" {
		t.Fatalf("order: first %s, last %s", records[1][4], records[n][4])
	}
}

func TestAuditAPI(t *testing.T) {
	env := mustEnv(t, envOptions{})
	tok := env.MustToken(env.MustUser("root", engine.RoleAdmin))
	seedAudit(env)
	list := func(query string) (auditListResponse, *httptest.ResponseRecorder) {
		t.Helper()
		w := env.get("/api/v1/audit"+query, tok)
		var out auditListResponse
		if w.Code == http.StatusOK {
			dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&out); err != nil {
				t.Fatalf("%s: %v", w.Body, err)
			}
		}
		return out, w
	}
	ids := func(r auditListResponse) []string {
		out := []string{}
		for _, e := range r.Entries {
			out = append(out, e.ID)
		}
		return out
	}
	r, w := list("")
	if w.Code != http.StatusOK || !slices.Equal(ids(r), []string{"e5", "e4", "e3", "e2", "e1"}) || r.NextOffset != nil {
		t.Fatalf("all: %d %s", w.Code, w.Body)
	}
	if e := r.Entries[3]; e.ActorName != "<img src=x onerror=alert(1)>" || e.Status != 401 || e.UserAgent != `<script>alert("ua")</script>` ||
		!e.At.Equal(time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("e2 %+v", e)
	}
	if !strings.Contains(w.Body.String(), `"actor_name":"<img src=x onerror=alert(1)>"`) {
		t.Fatalf("JSON field names: %s", w.Body)
	}
	r, _ = list("?limit=2")
	if !slices.Equal(ids(r), []string{"e5", "e4"}) || r.NextOffset == nil || *r.NextOffset != 2 {
		t.Fatalf("page 1: %+v", r)
	}
	r, _ = list("?limit=2&offset=4")
	if !slices.Equal(ids(r), []string{"e1"}) || r.NextOffset != nil {
		t.Fatalf("last page: %+v", r)
	}
	r, _ = list("?action=assistant.&failures=true&from=2025-06-01T00:00:00Z&to=2025-06-30")
	if !slices.Equal(ids(r), []string{"e4"}) {
		t.Fatalf("filtered: %q", ids(r))
	}
	r, _ = list("?from=2025-06-02T09:30:00%2B00:00&to=2025-06-03T09:00:00Z")
	if !slices.Equal(ids(r), []string{"e4"}) {
		t.Fatalf("times: %q", ids(r))
	}
	for _, q := range []string{"?limit=0", "?limit=501", "?limit=x", "?offset=-1", "?from=tomorrow", "?failures=2", "?actor=a%00b", "?target=%FF",
		"?actor=" + strings.Repeat("x", 501)} {
		_, w := list(q)
		if code, msg := errorOf(t, w.Body.Bytes()); w.Code != http.StatusBadRequest || code != engine.EINVALID || msg == "" {
			t.Errorf("%s: %d %s", q, w.Code, w.Body)
		}
	}
}

func TestAuditRBAC(t *testing.T) {
	env := mustEnv(t, envOptions{})
	env.mustAudit(&engine.AuditEntry{Action: "tool.enable", ActorName: "ada", Status: 200})
	admin := env.MustUser("ada", engine.RoleAdmin)
	for _, tt := range []struct {
		role engine.Role
		want int
	}{
		{engine.RoleAdmin, http.StatusOK},
		{engine.RoleEditor, http.StatusForbidden},
		{engine.RoleViewer, http.StatusForbidden},
	} {
		u := admin
		if tt.role != engine.RoleAdmin {
			u = env.MustUser("u-"+string(tt.role), tt.role)
		}
		session, token := env.MustSession(u), env.MustToken(u)
		for _, path := range []string{"/audit", "/audit.csv"} {
			w := env.get(path, session)
			if w.Code != tt.want {
				t.Errorf("%s %s: %d, want %d", tt.role, path, w.Code, tt.want)
			}
			if tt.want == http.StatusForbidden && strings.Contains(w.Body.String(), "tool.enable") {
				t.Errorf("%s %s: the refusal shows entries", tt.role, path)
			}
		}
		for _, c := range []*client{token, session} {
			if w := env.get("/api/v1/audit", c); w.Code != tt.want {
				t.Errorf("%s API: %d, want %d", tt.role, w.Code, tt.want)
			}
		}
		// Only admins see the link.
		pg := MustParseHTML(t, env.get("/playground", session).Body.Bytes())
		if n := len(selectAll(t, pg, `nav a[href="/audit"]`)); (n == 1) != (tt.role == engine.RoleAdmin) {
			t.Errorf("%s sees %d audit links", tt.role, n)
		}
	}
	for _, path := range []string{"/audit", "/audit.csv"} {
		if w := env.get(path, nil); w.Code != http.StatusFound || !strings.HasPrefix(w.Header().Get("Location"), "/login?next=") {
			t.Errorf("anonymous %s: %d %s", path, w.Code, w.Header().Get("Location"))
		}
	}
	if w := env.get("/api/v1/audit", nil); w.Code != http.StatusUnauthorized {
		t.Errorf("anonymous API: %d", w.Code)
	}
	// A session without the CSRF header is no API client.
	s := env.MustSession(admin)
	s.csrf = ""
	if w := env.get("/api/v1/audit", s); w.Code != http.StatusUnauthorized {
		t.Errorf("API with a session and no CSRF header: %d", w.Code)
	}
	// Reading the log is not recorded.
	if n := len(env.auditEntries()); n != 1 {
		t.Errorf("%d entries after reading, want 1", n)
	}
}

// TestAuditStylesUseTokens checks audit.css against app.css's tokens and
// the contrast of the pairs it adds.
func TestAuditStylesUseTokens(t *testing.T) {
	css, err := staticFS.ReadFile("static/audit.css")
	if err != nil {
		t.Fatal(err)
	}
	light, dark := themeTokens(t)
	for _, m := range regexp.MustCompile(`var\(--([a-z0-9-]+)\)`).FindAllStringSubmatch(string(css), -1) {
		if _, ok := light[m[1]]; !ok && !slices.Contains([]string{"gap", "radius", "font", "mono"}, m[1]) {
			t.Errorf("var(--%s) is not a token of app.css", m[1])
		}
	}
	if lit := regexp.MustCompile(`#[0-9a-fA-F]{3,6}\b|rgba?\(`).FindString(string(css)); lit != "" {
		t.Errorf("literal colour %q", lit)
	}
	// Failed rows: text and links in --text on --danger-bg; the badge's border.
	for _, theme := range []map[string]rgba{light, dark} {
		if c := contrast(theme["text"], theme["danger-bg"]); c < 4.5 {
			t.Errorf("text on danger-bg: %.2f", c)
		}
		if c := contrast(theme["danger"], theme["danger-bg"]); c < 3 {
			t.Errorf("danger on danger-bg: %.2f", c)
		}
	}
}

// TestAuditTargets checks how an entry's target is found when the path
// has no id: what the handler named, the created thing's id in the JSON
// answer, or the page a form redirected to; and that a credential in the
// path (an invitation token) never becomes the target.
func TestAuditTargets(t *testing.T) {
	env := mustEnv(t, envOptions{})
	s := env.srv
	r := gin.New()
	r.Use(s.recordAudit)
	r.POST("/assistants", func(c *gin.Context) { redirect(c, http.StatusSeeOther, "/assistants/A9?saved=1") })
	r.POST("/knowledge", func(c *gin.Context) { redirect(c, http.StatusSeeOther, "/knowledge") })
	r.POST("/api/v1/tokens", func(c *gin.Context) {
		s.writeJSON(c, http.StatusCreated, map[string]any{"token": map[string]string{"id": "t1", "name": "ci"}, "secret": "cs_s3cret"})
	})
	r.POST("/api/v1/knowledge-bases", func(c *gin.Context) {
		s.writeJSON(c, http.StatusCreated, map[string]any{"a": map[string]string{"id": "x"}, "b": map[string]string{"id": "y"}})
	})
	r.POST("/api/v1/invitations/:token", func(c *gin.Context) {
		s.writeJSON(c, http.StatusOK, map[string]any{"user": map[string]string{"id": "u1", "name": "newbie"}})
	})
	r.POST("/invite/:token", func(c *gin.Context) {
		if strings.HasSuffix(c.Param("token"), "bad") {
			s.fail(c, errBadInvitation)
			return
		}
		setAuditActor(c, &engine.User{ID: "u2", Name: "newbie"})
		setAuditTarget(c, "u2")
		c.Status(http.StatusOK)
	})
	r.POST("/api/v1/users", func(c *gin.Context) {
		setAuditTarget(c, "u7")
		addAuditDetail(c, "role admin")
		addAuditDetail(c, "invited")
		s.writeJSON(c, http.StatusCreated, map[string]string{"id": "ignored"})
	})
	tests := []struct {
		path, action, actor, target, detail string
	}{
		{"/assistants", "assistant.create", "", "A9", ""},
		{"/knowledge", "knowledge_base.create", "", "", ""},
		{"/api/v1/tokens", "token.create", "", "t1", ""},
		{"/api/v1/knowledge-bases", "knowledge_base.create", "", "", ""},
		{"/api/v1/invitations/inv_s3cretInvitationToken", "invitation.accept", "", "u1", ""},
		{"/invite/inv_s3cretInvitationToken", "invitation.accept", "newbie", "u2", ""},
		{"/invite/inv_s3cretInvitationTokenbad", "invitation.accept", "", "", ""},
		{"/api/v1/users", "user.create", "", "u7", "role admin; invited"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			r.ServeHTTP(w, auditRequest(http.MethodPost, tt.path, `{}`, nil))
			got := env.auditEntries()[0]
			if got.Action != tt.action || got.ActorName != tt.actor || got.Target != tt.target || got.Detail != tt.detail || got.Status != w.Code {
				t.Fatalf("recorded %+v (status %d)", got, w.Code)
			}
			b, _ := json.Marshal(got)
			if strings.Contains(string(b), "s3cret") {
				t.Fatalf("a secret was recorded: %s", b)
			}
		})
	}
}
