package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/convosphere/convosphere/console/web/webtest"
)

// mustBrowser starts headless Chromium for one test (see webtest).
func mustBrowser(tb testing.TB) context.Context {
	tb.Helper()
	return webtest.MustBrowser(tb, 90*time.Second)
}

// TestPlaygroundInBrowser signs in and asks the demo assistant a question in
// a real browser: the answer streams in, rendered from Markdown, with its
// sources; the theme choice survives a reload without a flash.
func TestPlaygroundInBrowser(t *testing.T) {
	m := MustRunMain(t, nil)
	ctx := mustBrowser(t)

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

	do(chromedp.Navigate(m.URL()+"/playground"), chromedp.WaitVisible(chromedp.CSS(`#login-name`)))
	if url, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.Contains(url, "/login") {
		t.Errorf("signed-out visit landed on %s (%v), want the sign-in page", url, err)
	}
	do(
		chromedp.SendKeys(chromedp.CSS(`#login-name`), "admin"),
		chromedp.SendKeys(chromedp.CSS(`#login-password`), "test-admin-password"),
		chromedp.Submit(chromedp.CSS(`#login-password`)),
		chromedp.WaitVisible(chromedp.CSS(`#message`)),
		chromedp.SendKeys(chromedp.CSS(`#message`), "How do I connect Slack?"),
		chromedp.Click(chromedp.CSS(`#send`)),
		chromedp.WaitVisible(chromedp.CSS(`.message-ai .citations`)),
	)
	answer, sources := text(`.message-ai .message-text`), text(`.message-ai .citations`)
	quotes, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('.message-ai .message-text blockquote').length`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(answer, "No language model is configured") || quotes == 0 {
		t.Errorf("answer (%d quotes rendered):\n%s", quotes, answer)
	}
	if !strings.Contains(sources, "slack.md") {
		t.Errorf("sources do not cite slack.md:\n%s", sources)
	}

	do(
		chromedp.Click(chromedp.CSS(`[data-theme-choice="dark"]`)),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#message`)),
	)
	theme, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.getAttribute('data-theme')`))
	if err != nil || theme != "dark" {
		t.Errorf("after choosing dark and reloading, data-theme = %q (%v)", theme, err)
	}
}
