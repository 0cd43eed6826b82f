package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/convosphere/convosphere/engine"
)

// screenshotPages are the console's main pages, as the README shows them.
var screenshotPages = []struct{ name, path, ready string }{
	{"dashboard", "/", "main h1"},
	{"playground", "/playground", "#message"},
	{"assistants", "/assistants", "main h1"},
	{"knowledge", "/knowledge", "main h1"},
	{"knowledge-search", "/knowledge/search?q=connect+slack&kb=docs", "main h1"},
	{"conversations", "/conversations", "main h1"},
	{"conversation", "/conversations/{conversation}", "main h1"},
	{"analytics", "/analytics", "main h1"},
	{"tools", "/tools", "main h1"},
	{"users", "/users", "main h1"},
	{"audit", "/audit", "main h1"},
	{"settings", "/settings", "main h1"},
}

// TestScreenshots opens each main page in a real browser, signed in as
// the admin of the demo set-up with a few conversations, in the light and
// the dark theme: each page renders (its heading is visible, no error page,
// the theme applied before the first paint). With CONVOSPHERE_SCREENSHOTS=1
// (make screenshots) the pictures (JPEG) are written to docs/screenshots/, which
// the README shows; otherwise to a temporary directory.
func TestScreenshots(t *testing.T) {
	m := MustRunMain(t, nil)
	ctx := mustBrowser(t)
	token := mustToken(t, m)
	for _, q := range []string{"How do I connect Slack?", "How do I register the Discord commands?", "What does the bot need from Mattermost?"} {
		if resp := postChat(t, m, token, "", fmt.Sprintf(`{"message": %q}`, q)); resp.StatusCode != http.StatusOK {
			t.Fatalf("seed chat: %s", resp.Status)
		}
	}
	convs, err := m.App.Store.ListConversations(context.Background(), engine.ConversationFilter{Limit: 1})
	if err != nil || len(convs) == 0 {
		t.Fatalf("conversations %v, %v", convs, err)
	}
	dir := t.TempDir()
	if os.Getenv("CONVOSPHERE_SCREENSHOTS") == "1" {
		dir = filepath.Join("..", "..", "docs", "screenshots")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 860),
		chromedp.Navigate(m.URL()+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`#login-name`)),
		chromedp.SendKeys(chromedp.CSS(`#login-name`), "admin"),
		chromedp.SendKeys(chromedp.CSS(`#login-password`), "test-admin-password"),
		chromedp.Submit(chromedp.CSS(`#login-password`)),
		chromedp.WaitVisible(chromedp.CSS(`.whoami`)), // signed in: the redirect landed
	); err != nil {
		t.Fatal(err)
	}
	for _, theme := range []string{"light", "dark"} {
		for _, p := range screenshotPages {
			t.Run(p.name+"-"+theme, func(t *testing.T) {
				path := strings.ReplaceAll(p.path, "{conversation}", convs[0].ID)
				if err := chromedp.Do(ctx,
					setThemeCookie(theme),
					chromedp.Navigate(m.URL()+path),
					chromedp.WaitVisible(chromedp.CSS(p.ready)),
				); err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.getAttribute('data-theme') + '|' + document.title`))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(got, theme+"|") || strings.Contains(got, "Error") || strings.Contains(got, "Not found") {
					t.Fatalf("%s: theme|title = %q", path, got)
				}
				png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
				if err != nil || len(png) < 1000 {
					t.Fatalf("%s: screenshot of %d bytes: %v", path, len(png), err)
				}
				if err := os.WriteFile(filepath.Join(dir, p.name+"-"+theme+".jpg"), png, 0o644); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// setThemeCookie chooses the theme the way the theme switch does.
func setThemeCookie(theme string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.cookie = "cs_theme=%s; path=/; SameSite=Lax"`, theme))
}
