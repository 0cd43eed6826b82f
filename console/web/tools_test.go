package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
)

// fakeInventory is a ToolInventory with fixed tools.
type fakeInventory struct {
	mu    sync.Mutex
	tools []ToolInfo
	err   error // returned by Inventory with the tools
	log   []string
	// probe answers TestServer (nil: one tool, "<server>__ping"); tested
	// records the servers it was asked to test.
	probe  func(*engine.ToolServer) ([]ToolInfo, error)
	tested []engine.ToolServer
}

func (f *fakeInventory) TestServer(_ context.Context, s *engine.ToolServer) ([]ToolInfo, error) {
	f.mu.Lock()
	f.tested = append(f.tested, *s)
	probe := f.probe
	f.mu.Unlock()
	if probe != nil {
		return probe(s)
	}
	return []ToolInfo{{Name: s.Name + "__ping", Description: "Answers pong.", State: "not enabled", Hash: "hp"}}, nil
}

func (f *fakeInventory) testedServers() []engine.ToolServer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.tested)
}

func (f *fakeInventory) Inventory(context.Context) ([]ToolInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.tools), f.err
}

func (f *fakeInventory) set(name, state, entry string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, t := range f.tools {
		if t.Name == name {
			if state == "not enabled" && t.State != "enabled" {
				return engine.Errorf(engine.ENOTFOUND, "no pin for %s", name)
			}
			f.tools[i].State = state
			f.log = append(f.log, entry)
			return nil
		}
	}
	return engine.Errorf(engine.ENOTFOUND, "No configured MCP server offers a tool named %q.", name)
}

func (f *fakeInventory) Enable(_ context.Context, name, by string) error {
	return f.set(name, "enabled", "enable "+name+" by "+by)
}

func (f *fakeInventory) Disable(_ context.Context, name string) error {
	return f.set(name, "not enabled", "disable "+name)
}

func (f *fakeInventory) entries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

const xss = `<script>alert(1)</script>`

func inventory() *fakeInventory {
	return &fakeInventory{tools: []ToolInfo{
		{Name: "evil__" + xss, Description: `<img src=x onerror=alert(2)>`, State: "changed", Hash: "h0"},
		{Name: "files__read", Description: "Reads a file", State: "enabled", Hash: "h1"},
		{Name: "files__write", Description: "Writes a file", State: "not enabled", Hash: "h2"},
	}}
}

// toolsEnv is approvalEnv with a tool inventory, MCP servers with secrets,
// a pending approval from the console and one from Slack, and an audit.
func toolsEnv(t *testing.T, inv ToolInventory) (*testEnv, *client) {
	t.Helper()
	tools := &enginetest.ToolSet{Specs: []engine.ToolSpec{{Name: "x"}}}
	env := mustEnv(t, envOptions{Tools: tools, Inventory: inv})
	ctx := context.Background()
	a := env.MustAssistant("ops", true)
	a.Tools, a.ToolPolicy = []string{"x", "files__read", "files__write"}, map[string]engine.ToolMode{"x": engine.ToolAsk, "files__write": engine.ToolDeny}
	if err := env.store.UpdateAssistant(ctx, a); err != nil {
		t.Fatal(err)
	}
	for _, ts := range []*engine.ToolServer{
		{Name: "files", Transport: "stdio", Command: "npx", Args: []string{"-y", "@modelcontextprotocol/server-filesystem"}, Env: map[string]string{"API_TOKEN": "s3cret-env"}},
		{Name: "web", Transport: "http", URL: "https://bob:s3cret-pw@mcp.example.com/mcp?key=s3cret-query", Headers: map[string]string{"Authorization": "Bearer s3cret-header"}},
	} {
		if err := env.store.SaveToolServer(ctx, ts); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.store.SetToolPin(ctx, &engine.ToolPin{Tool: "files__read", Hash: "h1", PinnedBy: "console:ada"}); err != nil {
		t.Fatal(err)
	}
	env.model.Script(enginetest.Reply{ToolCalls: []engine.ToolCall{{ID: "c1", Name: "x", Arguments: `{"q":"` + strings.ReplaceAll(xss, `"`, `\"`) + `"}`}}})
	alice := env.MustToken(env.MustUser("alice", engine.RoleViewer))
	mustAwaitAny(t, env, alice)
	slackApproval(t, env, time.Now().Add(time.Hour))
	if err := env.store.RecordToolCall(ctx, &engine.ToolCallRecord{TraceID: "tr-audit", AssistantID: a.ID, AssistantName: "ops",
		Platform: engine.PlatformSlack, UserID: "U1", Tool: "files__" + xss, ArgumentsHash: "abc123", Outcome: engine.ToolOK, Duration: 1234567}); err != nil {
		t.Fatal(err)
	}
	return env, env.MustSession(env.MustUser("ada", engine.RoleAdmin))
}

// mustAwaitAny asks a question whose answer waits for an approval.
func mustAwaitAny(t *testing.T, env *testEnv, c *client) {
	t.Helper()
	w := env.postChat(c, `{"message":"go"}`)
	if a := mustApprovalAnswer(t, w.Body.Bytes()); a.Approval == nil {
		t.Fatalf("no approval: %s", w.Body)
	}
}

func TestToolsPage(t *testing.T) {
	env, admin := toolsEnv(t, inventory())
	w := env.get("/tools", admin)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	body := w.Body.String()
	doc := MustParseHTML(t, w.Body.Bytes())

	// Secrets never reach the page.
	for _, secret := range []string{"s3cret-env", "s3cret-pw", "s3cret-query", "s3cret-header", "bob:"} {
		if strings.Contains(body, secret) {
			t.Errorf("the page shows %q", secret)
		}
	}
	// Payloads from tool servers, models and the audit are escaped text.
	if strings.Contains(body, xss) || strings.Contains(body, "<img src=x") {
		t.Fatal("an XSS payload reached the page unescaped")
	}
	for _, s := range findAll(doc, "script", nil) {
		if src, _ := attr(s, "src"); !strings.HasPrefix(src, "/static/") || textOf(s) != "" {
			t.Fatalf("unexpected script %q %q", src, textOf(s))
		}
	}
	if n := len(selectAll(t, doc, "script[src]")); n != 2 {
		t.Fatalf("scripts: %d", n)
	}
	selectOne(t, doc, `a[href="/tools"][aria-current=page]`)

	// MCP servers: names, how they run, secret names only.
	servers := selectAll(t, doc, "table#servers tbody tr.server")
	if len(servers) != 2 {
		t.Fatalf("servers: %d", len(servers))
	}
	if got := textOf(servers[0]); !strings.Contains(got, "files") || !strings.Contains(got, "npx -y @modelcontextprotocol/server-filesystem") || !strings.Contains(got, "env API_TOKEN") {
		t.Errorf("files row %q", got)
	}
	if got := textOf(servers[1]); !strings.Contains(got, "https://mcp.example.com/mcp?…") || !strings.Contains(got, "header Authorization") {
		t.Errorf("web row %q", got)
	}

	// Tools: state, who pinned, which assistants, the button that changes it.
	rows := selectAll(t, doc, "table#tools tbody tr.tool")
	if len(rows) != 3 {
		t.Fatalf("tools: %d", len(rows))
	}
	tests := []struct {
		name, state, action, usedBy string
	}{
		{"evil__" + xss, "changed", "enable", "none"},
		{"files__read", "enabled", "disable", "ops (allow)"},
		{"files__write", "not enabled", "enable", "ops (deny)"},
	}
	for i, tt := range tests {
		row := rows[i]
		if v, _ := attr(row, "data-tool"); v != tt.name {
			t.Errorf("row %d is %q, want %q", i, v, tt.name)
		}
		if got := textOf(selectOne(t, row, "span.badge")); got != tt.state {
			t.Errorf("%s state %q", tt.name, got)
		}
		b := selectOne(t, row, "button[data-tool-action]")
		if v, _ := attr(b, "data-tool-action"); v != tt.action {
			t.Errorf("%s action %q", tt.name, v)
		}
		if v, _ := attr(b, "data-tool-name"); v != tt.name {
			t.Errorf("%s button names %q", tt.name, v)
		}
		if got := textOf(row); !strings.Contains(got, tt.usedBy) {
			t.Errorf("%s row %q lacks %q", tt.name, got, tt.usedBy)
		}
	}
	if got := textOf(rows[1]); !strings.Contains(got, "by console:ada") {
		t.Errorf("pin not shown: %q", got)
	}
	if got := textOf(rows[0]); !strings.Contains(got, "<img src=x onerror=alert(2)>") {
		t.Errorf("the description is not shown as text: %q", got)
	}

	// Pending approvals, newest first: alice's, then the Slack one (asked a minute earlier).
	cards := selectAll(t, doc, "ul#approvals li.approval-card")
	if len(cards) != 2 {
		t.Fatalf("approvals: %d", len(cards))
	}
	for _, card := range cards {
		if id, _ := attr(card, "data-approval-id"); id == "" {
			t.Error("an approval card without its id")
		}
		selectOne(t, card, "button[data-decision=approve]")
		selectOne(t, card, "button[data-decision=reject]")
	}
	if got := textOf(cards[1]); !strings.Contains(got, "ursula (slack)") {
		t.Errorf("slack card %q", got)
	}
	args := textOf(selectOne(t, cards[0], "pre.approval-arguments"))
	if !strings.Contains(args, `"q": "`+xss+`"`) || !strings.Contains(textOf(cards[0]), "alice (console)") {
		t.Errorf("console card %q, arguments %q", textOf(cards[0]), args)
	}
	pre := selectOne(t, cards[0], "pre.approval-arguments")
	if pre.FirstChild == nil || pre.FirstChild.Type != html.TextNode || pre.FirstChild.NextSibling != nil {
		t.Error("the arguments are not plain text")
	}

	// The audit.
	calls := selectAll(t, doc, "table#tool-calls tbody tr.tool-call")
	if len(calls) != 1 {
		t.Fatalf("audit rows: %d", len(calls))
	}
	cells := selectAll(t, calls[0], "td")
	var got []string
	for _, c := range cells[1:] {
		got = append(got, textOf(c))
	}
	want := []string{"ops", "slack:U1", "files__" + xss, "abc123", "ok", "1ms"}
	if !slices.Equal(got, want) {
		t.Errorf("audit row %q, want %q", got, want)
	}
}

func TestToolsPageAccess(t *testing.T) {
	env, admin := toolsEnv(t, nil)
	// Without an inventory the page says so and the rest still shows.
	doc := MustParseHTML(t, env.get("/tools", admin).Body.Bytes())
	selectOne(t, doc, "p#tools-not-configured")
	if len(selectAll(t, doc, "table#tools")) != 0 || len(selectAll(t, doc, "li.approval-card")) != 2 {
		t.Fatal("the page without tools")
	}
	for _, role := range []engine.Role{engine.RoleEditor, engine.RoleViewer} {
		s := env.MustSession(env.MustUser("u-"+string(role), role))
		w := env.get("/tools", s)
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "The tools page needs the admin role") {
			t.Errorf("%s: %d", role, w.Code)
		}
		// No link to it either.
		pg := MustParseHTML(t, env.get("/playground", s).Body.Bytes())
		if len(selectAll(t, pg, `nav a[href="/tools"]`)) != 0 {
			t.Errorf("%s sees the tools link", role)
		}
	}
	pg := MustParseHTML(t, env.get("/playground", admin).Body.Bytes())
	selectOne(t, pg, `nav a[href="/tools"]`)
	if w := env.get("/tools", nil); w.Code != http.StatusFound || w.Header().Get("Location") != "/login?next=%2Ftools" {
		t.Errorf("anonymous: %d %s", w.Code, w.Header().Get("Location"))
	}
	// The API is unavailable without an inventory.
	tok := env.MustToken(admin.user)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/tools"},
		{http.MethodPost, "/api/v1/tools/files__read/enable"},
		{http.MethodPost, "/api/v1/tools/files__read/disable"},
	} {
		w := env.sendJSON(tc.method, tc.path, "", tok)
		if code, msg := errorOf(t, w.Body.Bytes()); w.Code != http.StatusServiceUnavailable || code != engine.EUNAVAILABLE || !strings.Contains(msg, "not configured") {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, w.Code, w.Body)
		}
	}
}

func TestToolsAPI(t *testing.T) {
	inv := inventory()
	env, admin := toolsEnv(t, inv)
	tok := env.MustToken(admin.user)

	w := env.get("/api/v1/tools", tok)
	var got struct {
		Tools   []ToolInfo `json:"tools"`
		Warning string     `json:"warning"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != http.StatusOK || len(got.Tools) != 3 || got.Tools[1] != inv.tools[1] || got.Warning != "" {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}

	tests := []struct {
		name, path string
		status     int
		state      string
	}{
		{"enable", "/api/v1/tools/files__write/enable", http.StatusOK, "enabled"},
		{"disable", "/api/v1/tools/files__read/disable", http.StatusOK, "not enabled"},
		{"disable what is not enabled", "/api/v1/tools/files__read/disable", http.StatusNotFound, ""},
		{"enable an unknown tool", "/api/v1/tools/nope__x/enable", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := env.sendJSON(http.MethodPost, tt.path, "", admin) // the page's session and CSRF token
			if w.Code != tt.status {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if tt.state != "" && !strings.Contains(w.Body.String(), `"state":"`+tt.state+`"`) {
				t.Fatalf("body %s", w.Body)
			}
		})
	}
	if got := inv.entries(); !slices.Equal(got, []string{"enable files__write by console:ada", "disable files__read"}) {
		t.Fatalf("inventory calls %q", got)
	}

	viewer := env.MustToken(env.MustUser("vera", engine.RoleViewer))
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/tools"},
		{http.MethodPost, "/api/v1/tools/files__read/enable"},
		{http.MethodPost, "/api/v1/tools/files__read/disable"},
	} {
		if w := env.sendJSON(tc.method, tc.path, "", viewer); w.Code != http.StatusForbidden {
			t.Errorf("viewer %s %s: %d", tc.method, tc.path, w.Code)
		}
	}
	if len(inv.entries()) != 2 {
		t.Fatal("a viewer changed a tool")
	}

	// Some servers down: the others' tools, with a warning; all down: 503.
	inv.err = errors.New("MCP server web: connection refused")
	w = env.get("/api/v1/tools", tok)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"warning":"Some MCP servers could not be reached, so their tools are missing: MCP server web: connection refused"`) {
		t.Fatalf("partial: %d %s", w.Code, w.Body)
	}
	doc := MustParseHTML(t, env.get("/tools", admin).Body.Bytes())
	if got := textOf(doc); !strings.Contains(got, "MCP server web: connection refused") || len(selectAll(t, doc, "tr.tool")) != 3 {
		t.Fatal("the page hides the partial failure or the tools")
	}
	inv.tools = nil
	if w := env.get("/api/v1/tools", tok); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("all down: %d %s", w.Code, w.Body)
	}
}
