package web

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
)

// mustBrowser starts headless Chromium for one test; without Chromium the
// test is skipped, unless CONVOSPHERE_REQUIRE_SERVERS=1 (make test).
func mustBrowser(tb testing.TB) context.Context {
	tb.Helper()
	path := os.Getenv("CONVOSPHERE_CHROMIUM")
	if path == "" {
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(name); err == nil {
				path = p
				break
			}
		}
	}
	if path == "" {
		msg := "Chromium is not installed: run scripts/install-deps.sh (apt-get install chromium) or set CONVOSPHERE_CHROMIUM"
		if os.Getenv("CONVOSPHERE_REQUIRE_SERVERS") == "1" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.WindowSize(1200, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	tb.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("start Chromium (%s): %v", path, err)
	}
	return ctx
}

// TestApprovalInTheBrowser: in the Playground, an answer that waits for a
// tool approval shows the call (its arguments as text, never markup) with
// Approve and Reject; approving streams the continuation in as a new
// answer and replaces the buttons with "Approved". On the tools page an
// admin rejects another pending approval.
func TestApprovalInTheBrowser(t *testing.T) {
	ctx := mustBrowser(t)
	env, tools := approvalEnv(t, enginetest.Reply{Chunks: []string{"The file ", "says **42**."}})
	env.model.Script(enginetest.Reply{ToolCalls: []engine.ToolCall{{ID: "c2", Name: "x", Arguments: `{"path":"/tmp/other"}`}}})
	srv := httptest.NewServer(env.srv)
	t.Cleanup(srv.Close)
	env.MustUser("ada", engine.RoleAdmin)

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

	do(
		chromedp.Navigate(srv.URL+"/login?next=/playground"),
		chromedp.WaitVisible(chromedp.CSS(`#login-name`)),
		chromedp.SendKeys(chromedp.CSS(`#login-name`), "ada"),
		chromedp.SendKeys(chromedp.CSS(`#login-password`), testPassword),
		chromedp.Submit(chromedp.CSS(`#login-password`)),
		chromedp.WaitVisible(chromedp.CSS(`#message`)),
		chromedp.SendKeys(chromedp.CSS(`#message`), "What does the file say?"),
		chromedp.Click(chromedp.CSS(`#send`)),
		chromedp.WaitVisible(chromedp.CSS(`.message-ai .approval-card button[data-decision="approve"]`)),
	)
	if got := text(`.approval-card .approval-tool`); got != "x" {
		t.Errorf("tool %q", got)
	}
	if got := text(`.approval-card pre.approval-arguments`); !strings.Contains(got, `"path": "/etc/<script>alert(1)</script>"`) {
		t.Errorf("arguments %q", got)
	}
	scripts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('.approval-card script').length`))
	if err != nil || scripts != 0 {
		t.Errorf("the arguments became markup: %d scripts (%v)", scripts, err)
	}
	do(
		chromedp.Click(chromedp.CSS(`.approval-card button[data-decision="approve"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.message-ai:nth-of-type(3) .message-rendered strong`)),
	)
	if got := text(`.approval-card .approval-status`); got != "Approved" {
		t.Errorf("status %q", got)
	}
	buttons, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('.approval-card button').length`))
	if err != nil || buttons != 0 {
		t.Errorf("%d buttons left (%v)", buttons, err)
	}
	if got := text(`.message-ai:nth-of-type(3) .message-text`); got != "The file says 42." {
		t.Errorf("continuation %q", got)
	}
	if len(tools.Calls()) != 1 {
		t.Error("the tool did not run")
	}

	// A second question waits too; the admin rejects it on the tools page.
	do(
		chromedp.SendKeys(chromedp.CSS(`#message`), "And the other one?"),
		chromedp.Click(chromedp.CSS(`#send`)),
		chromedp.WaitVisible(chromedp.CSS(`.message-ai:nth-of-type(5) .approval-card`)),
		chromedp.Navigate(srv.URL+"/tools"),
		chromedp.WaitVisible(chromedp.CSS(`#approvals .approval-card button[data-decision="reject"]`)),
		chromedp.Click(chromedp.CSS(`#approvals .approval-card button[data-decision="reject"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#approvals .approval-actions`)),
	)
	if got := text(`#approvals .approval-status`); !strings.HasPrefix(got, "Rejected.") {
		t.Errorf("tools page status %q", got)
	}
	if len(tools.Calls()) != 1 {
		t.Error("a rejected tool ran")
	}
}
