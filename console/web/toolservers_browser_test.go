package web

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/convosphere/convosphere/engine"
)

// TestToolServerFormInTheBrowser: on the Tools page an admin adds an MCP
// server with the form (errors show next to their fields), tests the
// connection (the tools found, or the reason, as text), saves it, edits
// another keeping its secret, and deletes one.
// CONVOSPHERE_SCREENSHOTS=DIR saves the form in both themes there.
func TestToolServerFormInTheBrowser(t *testing.T) {
	ctx := mustBrowser(t)
	inv := inventory()
	inv.probe = func(s *engine.ToolServer) ([]ToolInfo, error) {
		if s.Command == "fail" {
			return nil, engine.Errorf(engine.EUNAVAILABLE, "The command \"fail\" exited with status 3 before it answered as an MCP server. The last lines it wrote to stderr:\nfatal: %s", xss)
		}
		return []ToolInfo{
			{Name: s.Name + "__echo", Description: "Echoes " + xss, State: "not enabled"},
			{Name: s.Name + "__sum", Description: "Adds two numbers.", State: "enabled"},
		}, nil
	}
	env, _ := toolsEnv(t, inv)
	srv := httptest.NewServer(env.srv)
	t.Cleanup(srv.Close)

	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	eval := func(expr string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return s
	}
	// reload runs an action that reloads the page and waits for the new one.
	reload := func(action chromedp.Action[chromedp.Void], then chromedp.Action[chromedp.Void]) {
		t.Helper()
		do(
			chromedp.Evaluate[chromedp.Void](`document.body.setAttribute('data-stale', '')`),
			action,
			chromedp.WaitNotPresent(chromedp.CSS(`body[data-stale]`)),
			then,
		)
	}
	stored := func(name string) *engine.ToolServer {
		t.Helper()
		list, err := env.store.ToolServers(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			if s.Name == name {
				return s
			}
		}
		return nil
	}

	do(
		chromedp.Navigate(srv.URL+"/login?next=/tools"),
		chromedp.WaitVisible(chromedp.CSS(`#login-name`)),
		chromedp.SendKeys(chromedp.CSS(`#login-name`), "ada"),
		chromedp.SendKeys(chromedp.CSS(`#login-password`), testPassword),
		chromedp.Submit(chromedp.CSS(`#login-password`)),
		chromedp.WaitVisible(chromedp.CSS(`#server-form`)),
	)

	// Errors next to their fields.
	do(
		chromedp.SetValue(chromedp.CSS(`#server-name`), "Bad Name"),
		chromedp.SetValue(chromedp.CSS(`#server-env`), "GOOD=1\noops"),
		chromedp.Click(chromedp.CSS(`#server-test`)),
		chromedp.WaitVisible(chromedp.CSS(`#server-name-error`)),
		chromedp.WaitVisible(chromedp.CSS(`#server-command-error`)),
		chromedp.WaitVisible(chromedp.CSS(`#server-env-error`)),
	)
	if got := text(`#server-env-error`); !strings.Contains(got, "Line 2: write NAME=value") {
		t.Errorf("env error %q", got)
	}
	if got := eval(`document.getElementById('server-name').getAttribute('aria-invalid') + ' ' + document.activeElement.id`); got != "true server-name" {
		t.Errorf("name invalid, focus: %q", got)
	}

	// Test connection: the tools, as text.
	do(
		chromedp.SetValue(chromedp.CSS(`#server-name`), "demo"),
		chromedp.SetValue(chromedp.CSS(`#server-command`), "node"),
		chromedp.SetValue(chromedp.CSS(`#server-args`), "server.js\n--verbose\n"),
		chromedp.SetValue(chromedp.CSS(`#server-env`), "LOG_LEVEL=warn\nAPI_KEY=k3y"),
		chromedp.Click(chromedp.CSS(`#server-test`)),
		chromedp.WaitVisible(chromedp.CSS(`#server-test-result li`)),
	)
	if got := text(`#server-test-title`); got != "Connected: 2 tools" {
		t.Errorf("result title %q", got)
	}
	if got := text(`#server-test-tools`); !strings.Contains(got, "demo__echo") || !strings.Contains(got, "Echoes "+xss) || !strings.Contains(got, "enabled") {
		t.Errorf("tools %q", got)
	}
	if got := eval(`String(document.querySelectorAll('#server-test-result script, #server-test-result img').length) + ' ' + String(document.querySelectorAll('.field-error:not([hidden])').length)`); got != "0 0" {
		t.Errorf("markup in the result, or errors left: %s", got)
	}
	if got := inv.testedServers(); len(got) != 1 || got[0].Command != "node" || strings.Join(got[0].Args, ",") != "server.js,--verbose" || got[0].Env["API_KEY"] != "k3y" {
		t.Fatalf("tested %+v", got)
	}

	// A failure: the reason, as text.
	do(
		chromedp.SetValue(chromedp.CSS(`#server-command`), "fail"),
		chromedp.Click(chromedp.CSS(`#server-test`)),
		chromedp.WaitVisible(chromedp.CSS(`#server-test-reason`)),
	)
	if got := text(`#server-test-reason`); !strings.Contains(got, "exited with status 3") || !strings.Contains(got, "fatal: "+xss) {
		t.Errorf("reason %q", got)
	}
	if got := text(`#server-status`); !strings.Contains(got, "failed") {
		t.Errorf("status %q", got)
	}
	shoot(t, ctx, "tools-server-form")

	// Save: the page reloads with the new server.
	do(chromedp.SetValue(chromedp.CSS(`#server-command`), "node"))
	reload(chromedp.Click(chromedp.CSS(`#server-save`)), chromedp.WaitVisible(chromedp.CSS(`tr.server[data-server="demo"]`)))
	if s := stored("demo"); s == nil || s.Command != "node" || s.Env["API_KEY"] != "k3y" || len(s.Args) != 2 {
		t.Fatalf("stored %+v", s)
	}

	// Edit files: its secret stays unless replaced.
	do(
		chromedp.Click(chromedp.CSS(`tr.server[data-server="files"] button[data-server-edit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#server-env-stored`)),
	)
	if got := eval(`[document.getElementById('server-name').value, String(document.getElementById('server-name').readOnly), document.getElementById('server-env').value, document.getElementById('server-form-title').textContent].join('|')`); got != "files|true|API_TOKEN=|Edit the MCP server files" {
		t.Errorf("edit form %q", got)
	}
	if got := text(`#server-env-stored`); !strings.Contains(got, "API_TOKEN set") {
		t.Errorf("stored secrets %q", got)
	}
	do(chromedp.SetValue(chromedp.CSS(`#server-args`), "-y\n@modelcontextprotocol/server-filesystem\n/srv/docs"))
	reload(chromedp.Click(chromedp.CSS(`#server-save`)), chromedp.WaitVisible(chromedp.CSS(`tr.server[data-server="files"][data-args$="/srv/docs"]`)))
	if s := stored("files"); s == nil || s.Env["API_TOKEN"] != "s3cret-env" || len(s.Args) != 3 {
		t.Fatalf("files after edit %+v", s)
	}

	// Edit web (http): the URL with credentials stays out of the form and
	// is kept; the transports' fields switch.
	do(
		chromedp.Click(chromedp.CSS(`tr.server[data-server="web"] button[data-server-edit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#server-url`)),
		chromedp.WaitNotVisible(chromedp.CSS(`#server-command`)),
	)
	if got := eval(`[document.getElementById('server-url').value, document.getElementById('server-url').placeholder, document.getElementById('server-headers').value].join('|')`); got != "|https://mcp.example.com/mcp?…|Authorization: " {
		t.Errorf("web form %q", got)
	}
	if got := text(`#server-url-stored`); !strings.Contains(got, "leave this empty to keep it") {
		t.Errorf("url note %q", got)
	}
	shoot(t, ctx, "tools-server-edit")
	reload(chromedp.Click(chromedp.CSS(`#server-save`)), chromedp.WaitVisible(chromedp.CSS(`tr.server[data-server="web"]`)))
	if s := stored("web"); s == nil || s.URL != "https://bob:s3cret-pw@mcp.example.com/mcp?key=s3cret-query" || s.Headers["Authorization"] != "Bearer s3cret-header" {
		t.Fatalf("web after edit %+v", s)
	}

	// Delete, once confirmed.
	do(chromedp.Evaluate[chromedp.Void](`window.confirm = function () { return true; }`))
	reload(chromedp.Click(chromedp.CSS(`tr.server[data-server="demo"] button[data-server-delete]`)), chromedp.WaitVisible(chromedp.CSS(`#server-form`)))
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('tr.server[data-server="demo"]').length`)); err != nil || n != 0 {
		t.Errorf("the demo row is still there: %d %v", n, err)
	}
	if s := stored("demo"); s != nil {
		t.Fatal("demo was not deleted")
	}
}

// shoot saves a screenshot of the page in the light and the dark theme
// under $CONVOSPHERE_SCREENSHOTS, when set (to look at the page).
func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("CONVOSPHERE_SCREENSHOTS")
	if dir == "" {
		return
	}
	for _, theme := range []string{"light", "dark"} {
		if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.documentElement.setAttribute('data-theme', '`+theme+`')`)); err != nil {
			t.Fatal(err)
		}
		buf, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(`.server-card`)))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+"-"+theme+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.documentElement.removeAttribute('data-theme')`)); err != nil {
		t.Fatal(err)
	}
}
