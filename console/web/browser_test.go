package web

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/convosphere/convosphere/console/web/webtest"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
)

// mustBrowser starts headless Chromium for one test (see webtest).
func mustBrowser(tb testing.TB) context.Context {
	tb.Helper()
	return webtest.MustBrowser(tb, 60*time.Second)
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
