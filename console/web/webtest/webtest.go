// Package webtest helps tests drive the console in a real browser.
package webtest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// MustBrowser starts headless Chromium for one test, for at most timeout.
// Without Chromium the test is skipped, unless CONVOSPHERE_REQUIRE_SERVERS=1
// (make test), which makes it fail: scripts/install-deps.sh installs it.
// CONVOSPHERE_CHROMIUM names another browser binary.
func MustBrowser(tb testing.TB, timeout time.Duration) context.Context {
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
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	tb.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("start Chromium (%s): %v", path, err)
	}
	return ctx
}
