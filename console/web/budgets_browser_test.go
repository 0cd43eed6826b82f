package web

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/convosphere/convosphere/engine"
)

// TestBudgetFormInTheBrowser: on the Budgets page an admin adds a budget
// with the form (an assistant named by its name), edits it into a
// fallback, is told in words what is wrong with a bad one, and deletes it.
func TestBudgetFormInTheBrowser(t *testing.T) {
	ctx := mustBrowser(t)
	env := mustEnv(t, envOptions{})
	a := env.MustAssistant("helpdesk", true)
	env.MustUser("ada", engine.RoleAdmin)
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
	reload := func(action chromedp.Action[chromedp.Void], then chromedp.Action[chromedp.Void]) {
		t.Helper()
		do(
			chromedp.Evaluate[chromedp.Void](`document.body.setAttribute('data-stale', '')`),
			action,
			chromedp.WaitNotPresent(chromedp.CSS(`body[data-stale]`)),
			then,
		)
	}
	stored := func() []*engine.Budget {
		t.Helper()
		list, err := env.store.ListBudgets(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return list
	}

	do(
		chromedp.Navigate(srv.URL+"/login?next=/budgets"),
		chromedp.WaitVisible(chromedp.CSS(`#login-name`)),
		chromedp.SendKeys(chromedp.CSS(`#login-name`), "ada"),
		chromedp.SendKeys(chromedp.CSS(`#login-password`), testPassword),
		chromedp.Submit(chromedp.CSS(`#login-password`)),
		chromedp.WaitVisible(chromedp.CSS(`#budget-form`)),
	)

	// Add: the assistant's name is stored as its id.
	do(
		chromedp.SetValue(chromedp.CSS(`#budget-scope`), "assistant"),
		chromedp.SetValue(chromedp.CSS(`#budget-target`), "helpdesk"),
		chromedp.SetValue(chromedp.CSS(`#budget-period`), "day"),
		chromedp.SetValue(chromedp.CSS(`#budget-max-tokens`), "200000"),
	)
	reload(chromedp.Click(chromedp.CSS(`#budget-form button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`tr.budget`)))
	list := stored()
	if len(list) != 1 || list[0].Target != a.ID || list[0].MaxTokens != 200000 || list[0].Action != engine.BudgetRefuse {
		t.Fatalf("stored %+v", list)
	}
	id := list[0].ID
	if got := text(`tr.budget`); !strings.Contains(got, "0 of 200,000 tokens") || !strings.Contains(got, "Refuses politely") {
		t.Errorf("row %q", got)
	}

	// Edit into a monthly fallback: the same budget is replaced.
	do(chromedp.Click(chromedp.CSS(`tr.budget button[data-budget-edit]`)))
	if v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(function () { var e = document.getElementById('budget-form').elements; return [e.target.value, e.max_tokens.value, e.id.value].join('|'); })()`)); err != nil || v != a.ID+"|200000|"+id {
		t.Errorf("edit form %q, %v", v, err)
	}
	do(
		chromedp.SetValue(chromedp.CSS(`#budget-period`), "month"),
		chromedp.SetValue(chromedp.CSS(`#budget-max-cost`), "25"),
		chromedp.SetValue(chromedp.CSS(`#budget-action`), "fallback"),
		chromedp.SetValue(chromedp.CSS(`#budget-fallback-model`), "openai/gpt-4o-mini"),
	)
	reload(chromedp.Click(chromedp.CSS(`#budget-form button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`tr.budget[data-period=month]`)))
	list = stored()
	if len(list) != 1 || list[0].ID != id || list[0].Period != engine.BudgetMonth || list[0].MaxCostUSD != 25 || list[0].FallbackModel != "openai/gpt-4o-mini" {
		t.Fatalf("after the edit %+v", list)
	}

	// A bad budget: the reason in words, nothing stored.
	do(
		chromedp.Click(chromedp.CSS(`#budget-form button[type=reset]`)),
		chromedp.SetValue(chromedp.CSS(`#budget-scope`), "user"),
		chromedp.SetValue(chromedp.CSS(`#budget-target`), "U0123"),
		chromedp.SetValue(chromedp.CSS(`#budget-max-tokens`), "10"),
		chromedp.Click(chromedp.CSS(`#budget-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#budget-status.notice-error`)),
	)
	if got := text(`#budget-status`); !strings.Contains(got, `"<platform>:<user id>"`) {
		t.Errorf("status %q", got)
	}
	if n := len(stored()); n != 1 {
		t.Errorf("%d budgets after a refused save, want 1", n)
	}

	// Delete, once confirmed.
	do(
		chromedp.Evaluate[chromedp.Void](`window.confirm = function () { return true; }`),
		chromedp.Click(chromedp.CSS(`tr.budget button[data-budget-delete]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`tr.budget`)),
	)
	if n := len(stored()); n != 0 {
		t.Errorf("%d budgets after deleting, want 0", n)
	}
}
