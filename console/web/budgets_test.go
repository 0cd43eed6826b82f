package web

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// budgetsNow is the console's clock in the budget tests: 15 March 2025, noon UTC.
var budgetsNow = time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)

// budgetsEnv is a console whose clock says budgetsNow, with gpt-4o
// priced, an assistant "helpdesk" and its turns in slack C1 by U1:
// today 600+400 tokens of gpt-4o and 100 of an unpriced model, on 2
// March 3000+1000 of gpt-4o, and in February 100,000 more.
func budgetsEnv(t *testing.T) (*testEnv, *engine.Assistant) {
	t.Helper()
	env := mustEnv(t, envOptions{Config: Config{ModelPrices: map[string]ModelPrice{"gpt-4o": {InputPerMillion: 1000, OutputPerMillion: 2000}}}})
	env.srv.now = func() time.Time { return budgetsNow }
	a := env.MustAssistant("helpdesk", true)
	for i, tr := range []*engine.Trace{
		{Model: "gpt-4o", TokensIn: 600, TokensOut: 400, StartedAt: budgetsNow.Add(-3 * time.Hour)},
		{Model: "mystery-model", TokensIn: 100, StartedAt: budgetsNow.Add(-2 * time.Hour)},
		{Model: "gpt-4o", TokensIn: 3000, TokensOut: 1000, StartedAt: time.Date(2025, 3, 2, 9, 0, 0, 0, time.UTC)},
		{Model: "gpt-4o", TokensIn: 60000, TokensOut: 40000, StartedAt: time.Date(2025, 2, 20, 9, 0, 0, 0, time.UTC)},
	} {
		tr.ID = "budget-trace-" + string(rune('a'+i))
		tr.AssistantID, tr.AssistantName, tr.Platform, tr.ChannelID, tr.UserID = a.ID, a.Name, engine.PlatformSlack, "C1", "U1"
		tr.Outcome = engine.OutcomeAnswered
		if err := env.store.SaveTrace(context.Background(), tr); err != nil {
			t.Fatal(err)
		}
	}
	return env, a
}

// budgetOut is a budget as the API shows it.
type budgetOut struct {
	ID            string  `json:"id"`
	Scope         string  `json:"scope"`
	Target        string  `json:"target"`
	TargetName    string  `json:"target_name"`
	Period        string  `json:"period"`
	MaxTokens     int64   `json:"max_tokens"`
	MaxCostUSD    float64 `json:"max_cost_usd"`
	Action        string  `json:"action"`
	FallbackModel string  `json:"fallback_model"`
	CreatedAt     time.Time
	Usage         struct {
		From           time.Time `json:"from"`
		ResetsAt       time.Time `json:"resets_at"`
		Tokens         int64     `json:"tokens"`
		CostUSD        float64   `json:"cost_usd"`
		UnpricedModels []string  `json:"unpriced_models"`
		Used           float64   `json:"used"`
		UsedUp         bool      `json:"used_up"`
	} `json:"usage"`
}

// mustBudget creates a budget over the API as c.
func (e *testEnv) mustBudget(c *client, body string) budgetOut {
	e.tb.Helper()
	w := e.sendJSON(http.MethodPost, "/api/v1/budgets", body, c)
	if w.Code != http.StatusCreated {
		e.tb.Fatalf("create budget %s: %d %s", body, w.Code, w.Body)
	}
	var b budgetOut
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		e.tb.Fatal(err)
	}
	return b
}

// mustSchema checks a JSON answer against the OpenAPI document.
func mustSchema(t *testing.T, d oasSpec, method, pattern string, status int, body []byte) {
	t.Helper()
	s, ok := d.responseSchema(method, pattern, status, "application/json")
	if !ok {
		t.Fatalf("%s %s: no JSON schema for %d", method, pattern, status)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s %s: not JSON: %v", method, pattern, err)
	}
	for _, p := range d.check("$", v, s) {
		t.Errorf("%s %s %d: %s", method, pattern, status, p)
	}
}

func TestBudgetsAPI(t *testing.T) {
	env, a := budgetsEnv(t)
	d := mustOpenAPI(t, env)
	admin := env.MustToken(env.MustUser("ada", engine.RoleAdmin))
	editor := env.MustToken(env.MustUser("eve", engine.RoleEditor))
	viewer := env.MustSession(env.MustUser("vera", engine.RoleViewer))

	// An assistant named by its name is stored by its id.
	w := env.sendJSON(http.MethodPost, "/api/v1/budgets", `{"scope": "assistant", "target": "helpdesk", "period": "day", "max_tokens": 1000}`, admin)
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	mustSchema(t, d, "POST", "/api/v1/budgets", http.StatusCreated, w.Body.Bytes())
	var daily budgetOut
	if err := json.Unmarshal(w.Body.Bytes(), &daily); err != nil {
		t.Fatal(err)
	}
	if daily.Target != a.ID || daily.TargetName != "helpdesk" || daily.Action != "refuse" || daily.Usage.Tokens != 1100 || !daily.Usage.UsedUp {
		t.Errorf("created budget %+v: want helpdesk's id, refuse by default, and today's 1,100 tokens used up", daily)
	}
	monthly := env.mustBudget(admin, `{"scope": "Channel", "target": "slack:C1", "period": "month", "max_cost_usd": 10, "action": "fallback", "fallback_model": "local/cheap"}`)
	spare := env.mustBudget(admin, `{"scope": "user", "target": "slack:U9", "period": "day", "max_tokens": 500, "max_cost_usd": 1}`)

	// The list, by scope, with the usage of this period: the channel's
	// month is today's and 2 March's turns, not February's.
	w = env.get("/api/v1/budgets", viewer)
	if w.Code != http.StatusOK {
		t.Fatalf("list as a viewer: %d %s", w.Code, w.Body)
	}
	mustSchema(t, d, "GET", "/api/v1/budgets", http.StatusOK, w.Body.Bytes())
	var list struct {
		Budgets []budgetOut `json:"budgets"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Budgets) != 3 || list.Budgets[0].ID != daily.ID || list.Budgets[1].ID != monthly.ID || list.Budgets[2].ID != spare.ID {
		t.Fatalf("list %+v: want the assistant's, the channel's and the user's budgets", list.Budgets)
	}
	ch := list.Budgets[1].Usage
	if ch.Tokens != 5100 || ch.CostUSD != 6.4 || !slices.Equal(ch.UnpricedModels, []string{"mystery-model"}) || ch.Used != 0.64 || ch.UsedUp ||
		!ch.From.Equal(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)) || !ch.ResetsAt.Equal(time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("the channel's monthly usage %+v: want 5,100 tokens, $6.40 of $10, mystery-model unpriced, March", ch)
	}
	if u := list.Budgets[0].Usage; u.Used != 1.1 || !u.ResetsAt.Equal(time.Date(2025, 3, 16, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("the assistant's daily usage %+v: want 110%% until 16 March", u)
	}
	if u := list.Budgets[2].Usage; u.Tokens != 0 || u.Used != 0 || u.UsedUp || u.UnpricedModels == nil {
		t.Errorf("an unused budget's usage %+v", u)
	}

	// Replacing keeps the id and CreatedAt; the usage follows the new period.
	w = env.sendJSON(http.MethodPut, "/api/v1/budgets/"+daily.ID, `{"scope": "assistant", "target": "`+a.ID+`", "period": "month", "max_tokens": 1000000, "action": "fallback", "fallback_model": "cheap"}`, admin)
	if w.Code != http.StatusOK {
		t.Fatalf("put: %d %s", w.Code, w.Body)
	}
	mustSchema(t, d, "PUT", "/api/v1/budgets/:id", http.StatusOK, w.Body.Bytes())
	var replaced budgetOut
	if err := json.Unmarshal(w.Body.Bytes(), &replaced); err != nil {
		t.Fatal(err)
	}
	if replaced.ID != daily.ID || !replaced.CreatedAt.Equal(daily.CreatedAt) || replaced.Period != "month" || replaced.FallbackModel != "cheap" || replaced.Usage.Tokens != 5100 || replaced.Usage.UsedUp {
		t.Errorf("replaced budget %+v", replaced)
	}

	// Refusals say what to fix.
	for _, tt := range []struct {
		method, path, body string
		c                  *client
		status             int
		message            string
	}{
		{"POST", "/api/v1/budgets", `{"scope": "team", "target": "x", "period": "day", "max_tokens": 1}`, admin, 400, `Budget scope "team" is unknown`},
		{"POST", "/api/v1/budgets", `{"scope": "assistant", "target": "nobody", "period": "day", "max_tokens": 1}`, admin, 400, `There is no assistant "nobody"`},
		{"POST", "/api/v1/budgets", `{"scope": "user", "target": "U1", "period": "day", "max_tokens": 1}`, admin, 400, `"<platform>:<user id>"`},
		{"POST", "/api/v1/budgets", `{"scope": "user", "target": "slack:U1", "period": "day"}`, admin, 400, "A budget needs a limit"},
		{"POST", "/api/v1/budgets", `{"scope": "user", "target": "slack:U1", "period": "day", "max_tokens": 1, "action": "fallback"}`, admin, 400, "needs a fallback model"},
		{"POST", "/api/v1/budgets", `{"scope": "user", "target": "slack:U1", "period": "day", "max_tokens": 1, "limit": 2}`, admin, 400, "limit"},
		{"PUT", "/api/v1/budgets/nosuch", `{"scope": "user", "target": "slack:U1", "period": "day", "max_tokens": 1}`, admin, 404, `There is no budget with id "nosuch"`},
		{"DELETE", "/api/v1/budgets/nosuch", "", admin, 404, `There is no budget with id "nosuch"`},
		{"POST", "/api/v1/budgets", `{"scope": "user", "target": "slack:U1", "period": "day", "max_tokens": 1}`, editor, 403, ""},
		{"PUT", "/api/v1/budgets/" + spare.ID, `{"scope": "user", "target": "slack:U1", "period": "day", "max_tokens": 1}`, viewer, 403, ""},
		{"DELETE", "/api/v1/budgets/" + spare.ID, "", editor, 403, ""},
	} {
		w := env.sendJSON(tt.method, tt.path, tt.body, tt.c)
		if w.Code != tt.status {
			t.Errorf("%s %s %s as %s: %d, want %d: %s", tt.method, tt.path, tt.body, tt.c.user.Role, w.Code, tt.status, w.Body)
			continue
		}
		if _, msg := errorOf(t, w.Body.Bytes()); !strings.Contains(msg, tt.message) {
			t.Errorf("%s %s %s: message %q, want it to say %q", tt.method, tt.path, tt.body, msg, tt.message)
		}
	}

	// Deleting.
	if w := env.sendJSON(http.MethodDelete, "/api/v1/budgets/"+spare.ID, "", admin); w.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	stored, err := env.store.ListBudgets(context.Background())
	if err != nil || len(stored) != 2 {
		t.Fatalf("stored budgets after deleting one: %d, %v", len(stored), err)
	}

	// Every change and refused attempt is in the audit log, named.
	actions := map[string]int{}
	for _, e := range env.auditEntries() {
		if strings.HasPrefix(e.Action, "budget.") {
			actions[e.Action+" "+http.StatusText(e.Status)]++
			if e.Action == "budget.update" && e.Status == http.StatusOK && (e.Target != daily.ID || !strings.Contains(e.Detail, "monthly budget of 1,000,000 tokens; fallback")) {
				t.Errorf("update entry %+v", e)
			}
		}
	}
	want := map[string]int{"budget.create Created": 3, "budget.create Bad Request": 6, "budget.create Forbidden": 1,
		"budget.update OK": 1, "budget.update Not Found": 1, "budget.update Forbidden": 1,
		"budget.delete No Content": 1, "budget.delete Not Found": 1, "budget.delete Forbidden": 1}
	for k, n := range want {
		if actions[k] != n {
			t.Errorf("audit %q: %d entries, want %d (all: %v)", k, actions[k], n, actions)
		}
	}
}

func TestBudgetsPage(t *testing.T) {
	env, _ := budgetsEnv(t)
	admin := env.MustSession(env.MustUser("ada", engine.RoleAdmin))
	viewer := env.MustSession(env.MustUser("vera", engine.RoleViewer))

	// No budget yet.
	doc := mustDoc(t, env.get("/budgets", viewer).Body.Bytes())
	if doc.Find("#budgets-empty").Length() != 1 || doc.Find("#budgets, #budget-alert").Length() != 0 {
		t.Error("an empty budgets page does not say so")
	}

	token := env.MustToken(admin.user)
	daily := env.mustBudget(token, `{"scope": "assistant", "target": "helpdesk", "period": "day", "max_tokens": 1000}`)
	monthly := env.mustBudget(token, `{"scope": "channel", "target": "slack:C1", "period": "month", "max_tokens": 100000, "max_cost_usd": 10, "action": "fallback", "fallback_model": "local/cheap"}`)

	w := env.get("/budgets", viewer)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /budgets as a viewer: %d %s", w.Code, w.Body)
	}
	doc = mustDoc(t, w.Body.Bytes())
	if doc.Find(`nav a[href="/budgets"][aria-current=page]`).Length() != 1 {
		t.Error("the nav does not mark Budgets as the current page")
	}
	rows := doc.Find("#budgets tbody tr.budget")
	if rows.Length() != 2 {
		t.Fatalf("%d budget rows, want 2", rows.Length())
	}
	day := doc.Find(`tr[data-budget="` + daily.ID + `"]`)
	if !day.HasClass("budget-used-up") || day.Find(".badge-warn").Text() != "Used up" {
		t.Error("the used-up budget is not marked")
	}
	if got := strings.Join(strings.Fields(day.Find("th").Text()), " "); got != "Assistant helpdesk" {
		t.Errorf("the assistant's budget applies to %q", got)
	}
	if m := day.Find(`[data-limit=tokens] meter`); m.AttrOr("value", "") != "1.0000" || m.AttrOr("max", "") != "1" || !strings.Contains(day.Text(), "1,100 of 1,000 tokens") {
		t.Errorf("the used-up meter: value %q, text %q", m.AttrOr("value", ""), day.Text())
	}
	if day.Find(`[data-limit=cost]`).Length() != 0 {
		t.Error("a budget without a cost limit shows a cost meter")
	}
	month := doc.Find(`tr[data-budget="` + monthly.ID + `"]`)
	if month.HasClass("budget-used-up") || month.Find("meter").Length() != 2 {
		t.Errorf("the channel's budget: used up %v, %d meters, want not used up and two meters", month.HasClass("budget-used-up"), month.Find("meter").Length())
	}
	if v := month.Find(`[data-limit=cost] meter`).AttrOr("value", ""); v != "0.6400" {
		t.Errorf("cost meter %q, want 0.6400", v)
	}
	text := strings.Join(strings.Fields(month.Text()), " ")
	for _, want := range []string{"Channel", "Slack C1", "Monthly", "5,100 of 100,000 tokens", "$6.40 of $10.00", "no price set for mystery-model", "Answers with local/cheap", "1 Apr 00:00 UTC"} {
		if !strings.Contains(text, want) {
			t.Errorf("the channel's row %q does not say %q", text, want)
		}
	}
	alert := doc.Find("#budget-alert")
	if alert.AttrOr("role", "") != "alert" || alert.Find("li").Length() != 1 || alert.Find("li").AttrOr("data-budget", "") != daily.ID {
		t.Errorf("the alert lists %d budgets, want the used-up one", alert.Find("li").Length())
	}
	// Viewers read: no form, no buttons, no script.
	if doc.Find(`#budget-form, [data-budget-edit], [data-budget-delete], script[src^="/static/budgets.js"]`).Length() != 0 {
		t.Error("a viewer gets the budget form or its buttons")
	}
	if doc.Find(`link[rel=stylesheet][href^="/static/budgets.css?v="]`).Length() != 1 {
		t.Error("budgets.css is not linked")
	}

	// Admins edit.
	doc = mustDoc(t, env.get("/budgets", admin).Body.Bytes())
	if doc.Find("#budget-form").Length() != 1 || doc.Find("[data-budget-edit]").Length() != 2 || doc.Find("[data-budget-delete]").Length() != 2 {
		t.Error("an admin does not get the form and a pair of buttons per budget")
	}
	if doc.Find(`script[src^="/static/budgets.js?v="]`).Length() != 1 || doc.Find(`#budget-assistants option[value="helpdesk"]`).Length() != 1 {
		t.Error("the form's script or its assistant suggestions are missing")
	}
	for _, name := range []string{"scope", "target", "period", "max_tokens", "max_cost_usd", "action", "fallback_model"} {
		if doc.Find(`#budget-form [name="`+name+`"]`).Length() != 1 {
			t.Errorf("the form has no %s field", name)
		}
	}
	if doc.Find(`tr[data-budget="`+monthly.ID+`"]`).AttrOr("data-fallback-model", "") != "local/cheap" {
		t.Error("the row does not carry its fields for the edit button")
	}
}

func TestDashboardBudgetBanner(t *testing.T) {
	env, _ := budgetsEnv(t)
	viewer := env.MustSession(env.MustUser("vera", engine.RoleViewer))
	admin := env.MustToken(env.MustUser("ada", engine.RoleAdmin))
	env.mustBudget(admin, `{"scope": "assistant", "target": "helpdesk", "period": "month", "max_tokens": 1000000}`)

	doc := mustDoc(t, env.get("/", viewer).Body.Bytes())
	if doc.Find("#budget-alert").Length() != 0 {
		t.Fatal("a banner while no budget is used up")
	}

	refusing := env.mustBudget(admin, `{"scope": "assistant", "target": "helpdesk", "period": "day", "max_tokens": 1000}`)
	falling := env.mustBudget(admin, `{"scope": "user", "target": "slack:U1", "period": "month", "max_cost_usd": 5, "action": "fallback", "fallback_model": "cheap"}`)
	w := env.get("/", viewer)
	if w.Code != http.StatusOK {
		t.Fatalf("dashboard: %d %s", w.Code, w.Body)
	}
	doc = mustDoc(t, w.Body.Bytes())
	alert := doc.Find("#budget-alert")
	if alert.Length() != 1 || alert.AttrOr("role", "") != "alert" || !alert.HasClass("notice-error") {
		t.Fatalf("the banner: %d, role %q", alert.Length(), alert.AttrOr("role", ""))
	}
	if alert.Find(`a[href="/budgets"]`).Length() != 1 || !strings.Contains(alert.Text(), "2 budgets are used up.") {
		t.Errorf("the banner %q does not count the budgets or link to them", alert.Text())
	}
	items := alert.Find("li")
	if items.Length() != 2 {
		t.Fatalf("%d budgets in the banner, want 2", items.Length())
	}
	first := strings.Join(strings.Fields(items.Eq(0).Text()), " ")
	if items.Eq(0).AttrOr("data-budget", "") != refusing.ID || first != "Assistant helpdesk: daily budget used up (110%), refusing new questions until 16 Mar 00:00 UTC." {
		t.Errorf("first item %q", first)
	}
	second := strings.Join(strings.Fields(items.Eq(1).Text()), " ")
	if items.Eq(1).AttrOr("data-budget", "") != falling.ID || !strings.Contains(second, "User Slack U1: monthly budget used up (128%), answering with cheap until 1 Apr 00:00 UTC") {
		t.Errorf("second item %q", second)
	}
	if doc.Find(`link[rel=stylesheet][href^="/static/budgets.css?v="]`).Length() != 1 {
		t.Error("the banner's styles are not linked")
	}

	// Deleting a budget takes it off the banner at once.
	if w := env.sendJSON(http.MethodDelete, "/api/v1/budgets/"+refusing.ID, "", admin); w.Code != http.StatusNoContent {
		t.Fatalf("delete: %d", w.Code)
	}
	doc = mustDoc(t, env.get("/", viewer).Body.Bytes())
	if n := doc.Find("#budget-alert li").Length(); n != 1 || !strings.Contains(doc.Find("#budget-alert").Text(), "A budget is used up.") {
		t.Errorf("%d budgets in the banner after deleting one, want 1", n)
	}
}

// TestBudgetStylesUseTokens checks budgets.css against app.css's tokens.
func TestBudgetStylesUseTokens(t *testing.T) {
	css, err := staticFS.ReadFile("static/budgets.css")
	if err != nil {
		t.Fatal(err)
	}
	light, _ := themeTokens(t)
	for _, m := range regexp.MustCompile(`var\(--([a-z0-9-]+)\)`).FindAllStringSubmatch(string(css), -1) {
		if _, ok := light[m[1]]; !ok && !slices.Contains([]string{"gap", "radius", "font", "mono"}, m[1]) {
			t.Errorf("var(--%s) is not a token of app.css", m[1])
		}
	}
	if lit := regexp.MustCompile(`#[0-9a-fA-F]{3,6}\b|rgba?\(`).FindString(string(css)); lit != "" {
		t.Errorf("literal colour %q", lit)
	}
}
