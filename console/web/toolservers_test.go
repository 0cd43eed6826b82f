package web

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/convosphere/convosphere/engine"
)

// TestToolServerForm: admins get the form that adds, edits, tests and
// deletes MCP servers; each field has its label and a place for its
// error; the rows carry what the edit form starts from, never a secret.
func TestToolServerForm(t *testing.T) {
	env, admin := toolsEnv(t, inventory())
	w := env.get("/tools", admin)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	doc := mustDoc(t, w.Body.Bytes())
	if doc.Find(`link[rel=stylesheet][href^="/static/tools.css?v="]`).Length() != 1 {
		t.Error("tools.css is not linked")
	}

	form := doc.Find("form#server-form[novalidate]")
	if form.Length() != 1 {
		t.Fatal("no server form")
	}
	if got := textSel(doc, "#server-form-title"); got != "Add an MCP server" {
		t.Errorf("form title %q", got)
	}
	for _, id := range []string{"server-name", "server-transport", "server-command", "server-args", "server-env", "server-url", "server-headers"} {
		field := form.Find("#" + id)
		if field.Length() != 1 {
			t.Errorf("no #%s", id)
			continue
		}
		if form.Find(`label[for="`+id+`"]`).Length() != 1 {
			t.Errorf("#%s has no label", id)
		}
		describedBy, _ := field.Attr("aria-describedby")
		if !slices.Contains(strings.Fields(describedBy), id+"-error") || form.Find("p.field-error#"+id+"-error[hidden]").Length() != 1 {
			t.Errorf("#%s has no error place (aria-describedby %q)", id, describedBy)
		}
	}
	var transports []string
	for _, n := range form.Find("#server-transport option").Nodes {
		v, _ := attr(n, "value")
		transports = append(transports, v)
	}
	if !slices.Equal(transports, []string{"stdio", "http", "sse"}) {
		t.Errorf("transports %q", transports)
	}
	if form.Find(`fieldset#server-stdio[data-transports="stdio"] legend`).Length() != 1 ||
		form.Find(`fieldset#server-http[data-transports="http sse"][hidden] legend`).Length() != 1 {
		t.Error("the transports' fieldsets")
	}
	for _, sel := range []string{`button[type=submit]#server-save`, `button[type=button]#server-test`, `button[type=button]#server-cancel[hidden]`,
		`#server-status[role=status][aria-live=polite]`, `#server-test-result[hidden]`} {
		if form.Find(sel).Length() != 1 {
			t.Errorf("no %s", sel)
		}
	}
	if got := textSel(doc, "#server-save"); got != "Save server" {
		t.Errorf("save button %q", got)
	}
	if got := textSel(doc, "#server-test"); got != "Test connection" {
		t.Errorf("test button %q", got)
	}

	// The rows: Edit and Delete, named for screen readers; the names of
	// the secrets, no values; a URL with credentials left out.
	rows := doc.Find("table#servers tbody tr.server")
	if rows.Length() != 2 {
		t.Fatalf("rows %d", rows.Length())
	}
	files, web := rows.Eq(0), rows.Eq(1)
	for _, tc := range []struct{ attr, want string }{
		{"data-server", "files"}, {"data-transport", "stdio"}, {"data-command", "npx"},
		{"data-args", "-y\n@modelcontextprotocol/server-filesystem"}, {"data-env-keys", "API_TOKEN"}, {"data-header-keys", ""},
	} {
		if got, _ := files.Attr(tc.attr); got != tc.want {
			t.Errorf("files %s = %q, want %q", tc.attr, got, tc.want)
		}
	}
	for _, tc := range []struct{ attr, want string }{
		{"data-transport", "http"}, {"data-address", ""}, {"data-address-hidden", "true"}, {"data-address-redacted", "https://mcp.example.com/mcp?…"},
		{"data-header-keys", "Authorization"}, {"data-env-keys", ""},
	} {
		if got, _ := web.Attr(tc.attr); got != tc.want {
			t.Errorf("web %s = %q, want %q", tc.attr, got, tc.want)
		}
	}
	if got := strings.Join(strings.Fields(files.Find("button[data-server-edit]").Text()), " "); got != "Edit files" {
		t.Errorf("edit button %q", got)
	}
	if got := strings.Join(strings.Fields(web.Find("button[data-server-delete]").Text()), " "); got != "Delete web" {
		t.Errorf("delete button %q", got)
	}
	body := w.Body.String()
	for _, secret := range []string{"s3cret-env", "s3cret-pw", "s3cret-query", "s3cret-header"} {
		if strings.Contains(body, secret) {
			t.Errorf("the page shows %q", secret)
		}
	}

	// A URL without credentials goes into the form as it is.
	if err := env.store.SaveToolServer(context.Background(), &engine.ToolServer{Name: "plain", Transport: "sse", URL: "https://mcp.example.com/sse"}); err != nil {
		t.Fatal(err)
	}
	doc = mustDoc(t, env.get("/tools", admin).Body.Bytes())
	plain := doc.Find(`tr.server[data-server="plain"]`)
	if u, _ := plain.Attr("data-address"); u != "https://mcp.example.com/sse" || plain.Is("[data-address-hidden]") {
		t.Errorf("plain url %q", u)
	}

	// Without a tool registry the form still saves, but cannot test.
	env2, admin2 := toolsEnv(t, nil)
	doc = mustDoc(t, env2.get("/tools", admin2).Body.Bytes())
	if doc.Find("form#server-form #server-save").Length() != 1 || doc.Find("#server-test").Length() != 0 {
		t.Error("without an inventory: the form should save and not test")
	}
}

// TestToolServerFormEscapes: names, commands, arguments, secret names and
// URLs that are payloads reach the page as text and as attribute values,
// never as markup.
func TestToolServerFormEscapes(t *testing.T) {
	env, admin := toolsEnv(t, inventory())
	ctx := context.Background()
	img := `"><img src=x onerror=alert(3)>`
	evil := &engine.ToolServer{Name: "evil" + xss, Transport: "stdio", Command: xss, Args: []string{img, "it's"},
		Env: map[string]string{"K" + xss: "v"}}
	evilURL := &engine.ToolServer{Name: "web2", Transport: "http", URL: "https://mcp.example.com/" + img, Headers: map[string]string{"X-" + img: "v"}}
	for _, ts := range []*engine.ToolServer{evil, evilURL} {
		if err := env.store.SaveToolServer(ctx, ts); err != nil {
			t.Fatal(err)
		}
	}
	w := env.get("/tools", admin)
	body := w.Body.String()
	if strings.Contains(body, xss) || strings.Contains(body, "<img src=x") {
		t.Fatal("a payload reached the page unescaped")
	}
	doc := mustDoc(t, w.Body.Bytes())
	if n := doc.Find("script").Length(); n != 2 {
		t.Errorf("%d scripts", n)
	}
	if n := doc.Find("img").Length(); n != 0 {
		t.Errorf("%d images", n)
	}
	var found, foundURL bool
	for _, n := range doc.Find("tr.server").Nodes {
		name, _ := attr(n, "data-server")
		switch name {
		case evil.Name:
			found = true
			cmd, _ := attr(n, "data-command")
			args, _ := attr(n, "data-args")
			keys, _ := attr(n, "data-env-keys")
			if cmd != xss || args != img+"\nit's" || keys != "K"+xss {
				t.Errorf("attributes %q %q %q", cmd, args, keys)
			}
			if got := textOf(selectOne(t, n, "th")); got != evil.Name {
				t.Errorf("name cell %q", got)
			}
			if got := textOf(selectOne(t, n, "code")); got != xss+" "+img+" it's" {
				t.Errorf("command cell %q", got)
			}
		case "web2":
			foundURL = true
			u, _ := attr(n, "data-address")
			if u != "" && !strings.Contains(u, "img") {
				t.Errorf("url %q", u)
			}
			keys, _ := attr(n, "data-header-keys")
			if keys != "X-"+img {
				t.Errorf("header keys %q", keys)
			}
		}
	}
	if !found || !foundURL {
		t.Fatal("the payload servers are missing")
	}
}

// testToolServer posts to POST /api/v1/tool-servers/{name}/test.
func (e *testEnv) testToolServer(name, body string, c *client) *httptest.ResponseRecorder {
	return e.sendJSON(http.MethodPost, "/api/v1/tool-servers/"+name+"/test", body, c)
}

// TestToolServerTestAPI: the connection test takes the server as PUT does
// (stored secrets kept where the body leaves them empty), answers 200 with
// the tools, 502 with the reason, 400 for settings that cannot work.
func TestToolServerTestAPI(t *testing.T) {
	inv := inventory()
	env, admin := toolsEnv(t, inv)
	tok := env.MustToken(admin.user)

	// A new server: tested as sent.
	w := env.testToolServer("fresh", `{"transport":"stdio","command":"node","args":["server.js"],"env":{"LOG_LEVEL":"warn"}}`, admin)
	var ok struct {
		OK    bool       `json:"ok"`
		Tools []ToolInfo `json:"tools"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &ok); err != nil || w.Code != http.StatusOK || !ok.OK || len(ok.Tools) != 1 || ok.Tools[0].Name != "fresh__ping" || ok.Tools[0].Description != "Answers pong." {
		t.Fatalf("ok: %d %s", w.Code, w.Body)
	}
	got := inv.testedServers()
	if len(got) != 1 || got[0].Name != "fresh" || got[0].Command != "node" || !slices.Equal(got[0].Args, []string{"server.js"}) || got[0].Env["LOG_LEVEL"] != "warn" {
		t.Fatalf("tested %+v", got)
	}

	// Stored secrets are used when the body leaves them empty or
	// redacted; a new value replaces them.
	tests := []struct {
		name, path, body string
		check            func(engine.ToolServer) bool
	}{
		{"empty env value keeps", "files", `{"transport":"stdio","command":"npx","env":{"API_TOKEN":""}}`,
			func(s engine.ToolServer) bool { return s.Env["API_TOKEN"] == "s3cret-env" }},
		{"redacted env value keeps", "files", `{"transport":"stdio","command":"npx","env":{"API_TOKEN":"[redacted]","MORE":""}}`,
			func(s engine.ToolServer) bool {
				return s.Env["API_TOKEN"] == "s3cret-env" && s.Env["MORE"] == "" && len(s.Env) == 2
			}},
		{"new env value", "files", `{"transport":"stdio","command":"npx","env":{"API_TOKEN":"other"}}`,
			func(s engine.ToolServer) bool { return s.Env["API_TOKEN"] == "other" }},
		{"env left out", "files", `{"transport":"stdio","command":"npx"}`,
			func(s engine.ToolServer) bool { return len(s.Env) == 0 }},
		{"header and url kept", "web", `{"transport":"http","url":"","headers":{"Authorization":""}}`,
			func(s engine.ToolServer) bool {
				return s.URL == "https://bob:s3cret-pw@mcp.example.com/mcp?key=s3cret-query" && s.Headers["Authorization"] == "Bearer s3cret-header"
			}},
		{"new url", "web", `{"transport":"sse","url":"https://other.example.com/sse","headers":{"Authorization":""}}`,
			func(s engine.ToolServer) bool {
				return s.URL == "https://other.example.com/sse" && s.Transport == "sse" && s.Headers["Authorization"] == "Bearer s3cret-header"
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := len(inv.testedServers())
			w := env.testToolServer(tt.path, tt.body, tok)
			if w.Code != http.StatusOK {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if strings.Contains(w.Body.String(), "s3cret") {
				t.Fatalf("the answer shows a secret: %s", w.Body)
			}
			got := inv.testedServers()
			if len(got) != n+1 || !tt.check(got[n]) {
				t.Fatalf("tested %+v", got[n:])
			}
		})
	}

	// Failures: the reason, as the inventory says it, with 502.
	failures := []struct {
		name   string
		err    error
		status int
		code   string
		msg    string
	}{
		{"unreachable", engine.Errorf(engine.EUNAVAILABLE, "The command \"sh\" exited with status 3 before it answered as an MCP server. The last lines it wrote to stderr:\nfatal: "+xss),
			http.StatusBadGateway, "tool_server_unreachable", "The command \"sh\" exited with status 3 before it answered as an MCP server. The last lines it wrote to stderr:\nfatal: " + xss},
		{"timeout", engine.Errorf(engine.ETIMEOUT, "The server at mcp.example.com did not answer within 20s."),
			http.StatusBadGateway, "tool_server_unreachable", "The server at mcp.example.com did not answer within 20s."},
		{"plain error", errors.New("dial tcp 10.0.0.1:443: connect: no route to host"),
			http.StatusBadGateway, "tool_server_unreachable", "dial tcp 10.0.0.1:443: connect: no route to host"},
		{"invalid settings", engine.Errorf(engine.EINVALID, "MCP server files: the url must be an http:// or https:// address."),
			http.StatusBadRequest, engine.EINVALID, "MCP server files: the url must be an http:// or https:// address."},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			inv.mu.Lock()
			inv.probe = func(*engine.ToolServer) ([]ToolInfo, error) { return nil, tt.err }
			inv.mu.Unlock()
			w := env.testToolServer("files", `{"transport":"stdio","command":"sh"}`, admin)
			code, msg := errorOf(t, w.Body.Bytes())
			if w.Code != tt.status || code != tt.code || msg != tt.msg {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
		})
	}
	inv.mu.Lock()
	inv.probe = nil
	inv.mu.Unlock()

	// Settings that cannot work never reach the inventory.
	n := len(inv.testedServers())
	for _, tc := range []struct{ path, body, want string }{
		{"files", `{"transport":"stdio"}`, "needs a command"},
		{"web", `{"transport":"gopher","url":"x"}`, "transport \"gopher\" is unknown"},
		{"Bad__Name", `{"transport":"stdio","command":"x"}`, "name \"Bad__Name\" is invalid"},
		{"fresh", `{"transport":"http","url":""}`, "needs a url"},
		{"fresh", `{"transport":"stdio","command":"x","env":{"A=B":"c"}}`, "Environment variable \"A=B\" is invalid"},
		{"fresh", `{"transport":"http","url":"https://x.example","headers":{"Bad Header":"c"}}`, "Header \"Bad Header\" is invalid"},
		{"fresh", `{"transport":"http","url":"https://x.example","headers":{"X-Key":"[redacted]"}}`, "no value is stored for it to keep"},
		{"fresh", `{"transport":"stdio","command":"x","color":"red"}`, "color"},
		{"fresh", `[1]`, ""},
	} {
		w := env.testToolServer(tc.path, tc.body, admin)
		if _, msg := errorOf(t, w.Body.Bytes()); w.Code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
			t.Errorf("%s %s: %d %s", tc.path, tc.body, w.Code, w.Body)
		}
	}
	if len(inv.testedServers()) != n {
		t.Error("an invalid server was tested")
	}

	// The audit names the test and the server.
	var tested []string
	for _, e := range env.auditEntries() {
		if e.Action == "tool_server.test" {
			tested = append(tested, e.Target)
		}
	}
	if len(tested) == 0 || !slices.Contains(tested, "fresh") || !slices.Contains(tested, "web") {
		t.Errorf("audit targets %q", tested)
	}

	// Without a tool registry: 503.
	env2, admin2 := toolsEnv(t, nil)
	w = env2.testToolServer("files", `{"transport":"stdio","command":"npx"}`, admin2)
	if code, msg := errorOf(t, w.Body.Bytes()); w.Code != http.StatusServiceUnavailable || code != engine.EUNAVAILABLE || !strings.Contains(msg, "not configured") {
		t.Errorf("no inventory: %d %s", w.Code, w.Body)
	}
}

// TestToolServerTestAccess: only admins test connections, and a session
// needs the CSRF token.
func TestToolServerTestAccess(t *testing.T) {
	inv := inventory()
	env, admin := toolsEnv(t, inv)
	body := `{"transport":"stdio","command":"npx"}`
	for _, role := range []engine.Role{engine.RoleEditor, engine.RoleViewer} {
		u := env.MustUser("t-"+string(role), role)
		for _, c := range []*client{env.MustSession(u), env.MustToken(u)} {
			w := env.testToolServer("files", body, c)
			if code, msg := errorOf(t, w.Body.Bytes()); w.Code != http.StatusForbidden || code != engine.EFORBIDDEN || !strings.Contains(msg, "Managing MCP servers needs the admin role") {
				t.Errorf("%s: %d %s", role, w.Code, w.Body)
			}
		}
	}
	if w := env.testToolServer("files", body, nil); w.Code != http.StatusUnauthorized {
		t.Errorf("anonymous: %d", w.Code)
	}
	noCSRF := *admin
	noCSRF.csrf = ""
	if w := env.testToolServer("files", body, &noCSRF); w.Code != http.StatusUnauthorized {
		t.Errorf("a session without the CSRF token: %d", w.Code)
	}
	wrong := *admin
	wrong.csrf = "not-the-token"
	if w := env.testToolServer("files", body, &wrong); w.Code != http.StatusUnauthorized {
		t.Errorf("a session with a wrong CSRF token: %d", w.Code)
	}
	// A cross-site request with the session is refused.
	r := httptest.NewRequest(http.MethodPost, "/api/v1/tool-servers/files/test", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	admin.apply(r)
	if w := env.serve(r); w.Code != http.StatusForbidden {
		t.Errorf("cross-site: %d %s", w.Code, w.Body)
	}
	if len(inv.testedServers()) != 0 {
		t.Fatal("a refused request reached the inventory")
	}
	if w := env.testToolServer("files", body, admin); w.Code != http.StatusOK {
		t.Errorf("admin with the CSRF token: %d %s", w.Code, w.Body)
	}
}

// TestPutToolServerKeepsSecrets: PUT takes secrets write-only: a value
// left empty or "[redacted]" keeps the stored one, a new value replaces
// it, a name left out removes it; an empty url keeps the stored url.
func TestPutToolServerKeepsSecrets(t *testing.T) {
	env, admin := toolsEnv(t, inventory())
	ctx := context.Background()
	stored := func(name string) *engine.ToolServer {
		t.Helper()
		list, err := env.store.ToolServers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			if s.Name == name {
				return s
			}
		}
		t.Fatalf("no server %s", name)
		return nil
	}
	put := func(name, body string) {
		t.Helper()
		w := env.sendJSON(http.MethodPut, "/api/v1/tool-servers/"+name, body, admin)
		// (The API shows the url as stored; env and header values never.)
		if w.Code != http.StatusOK || strings.Contains(w.Body.String(), "s3cret-env") || strings.Contains(w.Body.String(), "s3cret-header") {
			t.Fatalf("put %s: %d %s", name, w.Code, w.Body)
		}
	}
	put("files", `{"transport":"stdio","command":"npx","args":["-y","other"],"env":{"API_TOKEN":"","LOG_LEVEL":"warn"}}`)
	if s := stored("files"); !maps.Equal(s.Env, map[string]string{"API_TOKEN": "s3cret-env", "LOG_LEVEL": "warn"}) || !slices.Equal(s.Args, []string{"-y", "other"}) {
		t.Errorf("kept: %+v", s)
	}
	put("files", `{"transport":"stdio","command":"npx","env":{"API_TOKEN":"[redacted]","LOG_LEVEL":"debug"}}`)
	if s := stored("files"); !maps.Equal(s.Env, map[string]string{"API_TOKEN": "s3cret-env", "LOG_LEVEL": "debug"}) {
		t.Errorf("redacted kept: %+v", s.Env)
	}
	put("files", `{"transport":"stdio","command":"npx","env":{"API_TOKEN":"n3w"}}`)
	if s := stored("files"); !maps.Equal(s.Env, map[string]string{"API_TOKEN": "n3w"}) {
		t.Errorf("replaced: %+v", s.Env)
	}
	put("web", `{"transport":"http","headers":{"Authorization":""}}`)
	if s := stored("web"); s.URL != "https://bob:s3cret-pw@mcp.example.com/mcp?key=s3cret-query" || s.Headers["Authorization"] != "Bearer s3cret-header" {
		t.Errorf("url and header kept: %+v", s)
	}
	put("web", `{"transport":"http","url":"https://mcp.example.com/v2"}`)
	if s := stored("web"); s.URL != "https://mcp.example.com/v2" || len(s.Headers) != 0 {
		t.Errorf("url replaced, header removed: %+v", s)
	}
	// GET then PUT what it showed keeps everything.
	put("files", `{"transport":"stdio","command":"npx","env":{"API_TOKEN":"s3cret-again"}}`)
	w := env.get("/api/v1/tool-servers", admin)
	var list struct {
		Servers []toolServerJSON `json:"tool_servers"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Servers {
		if s.Name == "files" {
			b, _ := json.Marshal(s)
			put("files", string(b))
		}
	}
	if s := stored("files"); s.Env["API_TOKEN"] != "s3cret-again" {
		t.Errorf("round trip: %+v", s.Env)
	}
	// "[redacted]" with nothing stored is refused rather than saved.
	w = env.sendJSON(http.MethodPut, "/api/v1/tool-servers/newer", `{"transport":"stdio","command":"x","env":{"K":"[redacted]"}}`, admin)
	if _, msg := errorOf(t, w.Body.Bytes()); w.Code != http.StatusBadRequest || !strings.Contains(msg, "no value is stored") {
		t.Errorf("redacted without a stored value: %d %s", w.Code, w.Body)
	}
}
