package engine_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
)

// budgetNow is the budget tests' clock: the middle of 15 March 2025 (UTC).
var budgetNow = time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)

// budgetFixture is a fixture whose engine applies budgets through a meter
// on the fixture's store, with the clock at budgetNow.
type budgetFixture struct {
	*fixture
	meter  *engine.BudgetMeter
	engine *engine.Engine
	logs   *bytes.Buffer
}

// mustBudgetFixture seeds turns of Guide before the budgets apply:
// today (U1 in C1: 600 in, 400 out of gpt-4o), earlier this month (U1 in
// C1: 3000 and 1000), last month (100,000 tokens) and today by U2 in C2
// (50,000 tokens of gpt-4o-mini, asking another assistant, "asst-other").
func mustBudgetFixture(tb testing.TB, prices map[string]engine.ModelPrice, store engine.BudgetStore, budgets ...*engine.Budget) *budgetFixture {
	tb.Helper()
	f := &budgetFixture{fixture: mustFixture(tb, engine.Config{}), logs: &bytes.Buffer{}}
	ctx := context.Background()
	for i, tr := range []*engine.Trace{
		{ChannelID: "C1", UserID: "U1", Model: "gpt-4o", TokensIn: 600, TokensOut: 400, StartedAt: budgetNow.Add(-3 * time.Hour)},
		{ChannelID: "C1", UserID: "U1", Model: "gpt-4o", TokensIn: 3000, TokensOut: 1000, StartedAt: time.Date(2025, 3, 2, 9, 0, 0, 0, time.UTC)},
		{ChannelID: "C1", UserID: "U1", Model: "gpt-4o", TokensIn: 60000, TokensOut: 40000, StartedAt: time.Date(2025, 2, 28, 23, 59, 0, 0, time.UTC)},
		{ChannelID: "C2", UserID: "U2", Model: "gpt-4o-mini", TokensIn: 40000, TokensOut: 10000, StartedAt: budgetNow.Add(-time.Hour)},
	} {
		tr.ID = "seed-" + string(rune('a'+i))
		tr.AssistantID, tr.AssistantName, tr.Platform, tr.Outcome = f.assistant.ID, f.assistant.Name, engine.PlatformSlack, engine.OutcomeAnswered
		if tr.UserID == "U2" {
			tr.AssistantID, tr.AssistantName = "asst-other", "Other"
		}
		if err := f.store.SaveTrace(ctx, tr); err != nil {
			tb.Fatal(err)
		}
	}
	for _, b := range budgets {
		if b.Scope == engine.BudgetScopeAssistant && b.Target == "" {
			b.Target = f.assistant.ID
		}
		if err := f.store.SaveBudget(ctx, b); err != nil {
			tb.Fatal(err)
		}
	}
	if store == nil {
		store = f.store
	}
	log := slog.New(slog.NewTextHandler(f.logs, nil))
	var err error
	f.meter, err = engine.NewBudgetMeter(engine.BudgetConfig{Prices: prices},
		engine.BudgetDeps{Store: store, Audit: f.store, Logger: log, Now: func() time.Time { return budgetNow }})
	if err != nil {
		tb.Fatal(err)
	}
	f.engine, err = engine.New(engine.Config{}, engine.Deps{
		Assistants: f.store, Conversations: f.store, Traces: f.store, Model: f.model, Retriever: f.retriever,
		Budgets: f.meter, Logger: log,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// budgetStep returns the detail of the turn's budget step, and whether
// there is one.
func budgetStep(t *testing.T, f *budgetFixture, traceID string) (string, bool) {
	t.Helper()
	tr, err := f.store.TraceByID(context.Background(), traceID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range tr.Steps {
		if s.Name == engine.StepBudget {
			return s.Detail + s.Error, true
		}
	}
	return "", false
}

func TestBudgetsApplyToTurns(t *testing.T) {
	prices := map[string]engine.ModelPrice{"gpt-4o": {InputPerMillion: 1000, OutputPerMillion: 2000}}
	budget := func(scope engine.BudgetScope, target string, period engine.BudgetPeriod, tokens int64, cost float64, fallback string) *engine.Budget {
		b := &engine.Budget{Scope: scope, Target: target, Period: period, MaxTokens: tokens, MaxCostUSD: cost, Action: engine.BudgetRefuse}
		if fallback != "" {
			b.Action, b.FallbackModel = engine.BudgetFallback, fallback
		}
		return b
	}
	const (
		asst    = engine.BudgetScopeAssistant
		channel = engine.BudgetScopeChannel
		user    = engine.BudgetScopeUser
		day     = engine.BudgetDay
		month   = engine.BudgetMonth
	)
	tests := []struct {
		name    string
		prices  map[string]engine.ModelPrice
		budgets []*engine.Budget
		// model is what the model was asked for ("" for Guide's own, the
		// provider's default); refused turns reach no model.
		model   string
		refused string // a piece of the notice
		resets  time.Duration
		step    string // a piece of the budget step's detail; "" for no step
	}{
		{name: "no budgets"},
		{name: "daily tokens left", budgets: []*engine.Budget{budget(asst, "", day, 1001, 0, "")}, step: "1 budgets, none used up"},
		{name: "daily tokens used up", budgets: []*engine.Budget{budget(asst, "", day, 1000, 0, "")},
			refused: "Guide has used its daily budget of 1,000 tokens; it resets at 00:00 UTC.", resets: 12 * time.Hour, step: "used up (daily budget of 1,000 tokens): refused"},
		{name: "monthly tokens count the whole month", budgets: []*engine.Budget{budget(asst, "", month, 5000, 0, "")},
			refused: "Guide has used its monthly budget of 5,000 tokens; it resets on 1 April at 00:00 UTC.", resets: 16*24*time.Hour + 12*time.Hour, step: "refused"},
		{name: "monthly tokens leave last month out", budgets: []*engine.Budget{budget(asst, "", month, 5001, 0, "")}, step: "none used up"},
		{name: "cost used up", prices: prices, budgets: []*engine.Budget{budget(channel, "slack:C1", day, 0, 1.40, "")},
			refused: "This channel has used its daily budget of $1.40; it resets at 00:00 UTC.", resets: 12 * time.Hour, step: "refused"},
		{name: "cost left", prices: prices, budgets: []*engine.Budget{budget(channel, "slack:C1", day, 0, 1.41, "")}, step: "none used up"},
		{name: "cost of a monthly budget", prices: prices, budgets: []*engine.Budget{budget(user, "slack:U1", month, 0, 6.4, "")},
			refused: "You have used your monthly budget of $6.40", resets: 16*24*time.Hour + 12*time.Hour, step: "refused"},
		{name: "models without a price cost nothing", budgets: []*engine.Budget{budget(channel, "slack:C1", day, 0, 0.01, "")}, step: "none used up"},
		{name: "tokens or cost: the one used up is named", prices: prices, budgets: []*engine.Budget{budget(asst, "", day, 1_000_000, 1.0, "")},
			refused: "daily budget of $1.00;", resets: 12 * time.Hour, step: "refused"},
		{name: "fallback", budgets: []*engine.Budget{budget(user, "slack:U1", day, 500, 0, "local/cheap-model")},
			model: "local/cheap-model", step: "used up (daily budget of 500 tokens): fallback to local/cheap-model"},
		{name: "refusal wins over fallback", budgets: []*engine.Budget{
			budget(asst, "", day, 10, 0, "cheap"), budget(user, "slack:U1", day, 10, 0, "")},
			refused: "You have used your daily budget of 10 tokens", resets: 12 * time.Hour, step: "refused"},
		{name: "budgets of other targets do not apply", budgets: []*engine.Budget{
			budget(asst, "asst-other", day, 1, 0, ""),
			budget(channel, "slack:C2", day, 1, 0, ""),
			budget(channel, "discord:C1", day, 1, 0, ""),
			budget(user, "slack:U2", day, 1, 0, ""),
			budget(user, "mattermost:U1", day, 1, 0, ""),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustBudgetFixture(t, tt.prices, nil, tt.budgets...)
			r := &enginetest.Replier{}
			ans, err := f.engine.Handle(context.Background(), slackMessage("T-budget", "How do I connect Slack?"), r)
			if len(r.Finished()) != 1 {
				t.Fatalf("Finish called %d times, want once", len(r.Finished()))
			}
			reqs := f.model.Requests()
			if tt.refused != "" {
				if engine.ErrorCode(err) != engine.ERATELIMITED || ans.Outcome != engine.OutcomeBudgetExceeded {
					t.Fatalf("refused turn: outcome %q, error %v: want %q and %q", ans.Outcome, err, engine.OutcomeBudgetExceeded, engine.ERATELIMITED)
				}
				if !strings.Contains(ans.Notice, tt.refused) || !strings.Contains(ans.Notice, "ask an admin to raise the budget") {
					t.Errorf("notice %q, want it to say %q and what to do", ans.Notice, tt.refused)
				}
				if ans.RetryAfter != tt.resets {
					t.Errorf("RetryAfter %v, want %v (until the budget resets)", ans.RetryAfter, tt.resets)
				}
				if len(reqs) != 0 {
					t.Errorf("a refused turn reached the model %d times", len(reqs))
				}
				turns, err := f.store.Turns(context.Background(), mustConversation(t, f.fixture, "T-budget").ID, 0)
				if err != nil || len(turns) != 0 {
					t.Errorf("a refused turn stored turns %d (%v), want none", len(turns), err)
				}
			} else {
				if err != nil || ans.Outcome != engine.OutcomeAnswered {
					t.Fatalf("outcome %q, error %v: want answered", ans.Outcome, err)
				}
				if len(reqs) != 1 {
					t.Fatalf("%d model requests, want one", len(reqs))
				}
				if reqs[0].Model != tt.model {
					t.Errorf("the model was asked for %q, want %q", reqs[0].Model, tt.model)
				}
			}
			detail, ok := budgetStep(t, f, ans.TraceID)
			switch {
			case tt.step == "" && ok:
				t.Errorf("a budget step %q where no budget applies", detail)
			case tt.step != "" && !strings.Contains(detail, tt.step):
				t.Errorf("budget step %q (present %v), want it to say %q", detail, ok, tt.step)
			}
		})
	}
}

func TestBudgetAlertsOncePerPeriod(t *testing.T) {
	b := &engine.Budget{Scope: engine.BudgetScopeAssistant, Period: engine.BudgetDay, MaxTokens: 1000, Action: engine.BudgetFallback, FallbackModel: "cheap"}
	f := mustBudgetFixture(t, nil, nil, b)
	ctx := context.Background()
	for i := range 3 {
		if _, err := f.engine.Handle(ctx, slackMessage("T-alert", "question "+string(rune('a'+i))), &enginetest.Replier{}); err != nil {
			t.Fatal(err)
		}
	}
	// Another process (a replica, or after a restart) finds the entry.
	other, err := engine.NewBudgetMeter(engine.BudgetConfig{}, engine.BudgetDeps{Store: f.store, Audit: f.store, Now: func() time.Time { return budgetNow }})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := other.Check(ctx, slackMessage("T-other", "x"), f.assistant); err != nil || d.Fallback == nil {
		t.Fatalf("the other meter's decision %+v, %v: want the fallback", d, err)
	}
	entries, err := f.store.ListAudit(ctx, engine.AuditFilter{ActionPrefix: "budget."})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("%d budget audit entries, want 1: %+v", len(entries), entries)
	}
	e := entries[0]
	if e.Action != engine.AuditBudgetExhausted || e.ActorName != "system" || e.ActorID != "system" || e.Target != b.ID || e.Status != 429 {
		t.Errorf("audit entry %+v", e)
	}
	for _, want := range []string{"assistant " + f.assistant.ID, "daily budget of 1,000 tokens", "1,000 tokens", "answering with cheap until 2025-03-16 00:00 UTC"} {
		if !strings.Contains(e.Detail, want) {
			t.Errorf("audit detail %q does not say %q", e.Detail, want)
		}
	}
	logs := f.logs.String()
	if n := strings.Count(logs, "ALERT: budget used up"); n != 1 || !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "budget_id="+b.ID) {
		t.Errorf("%d ALERT lines, want one WARN naming the budget:\n%s", n, logs)
	}
	if strings.Contains(logs, "question a") {
		t.Error("the log holds a message body")
	}
}

// countingBudgets counts the usage reads and can fail them.
type countingBudgets struct {
	engine.BudgetStore
	reads atomic.Int32
	fail  error
}

func (c *countingBudgets) BudgetTokens(ctx context.Context, scope engine.BudgetScope, target string, since time.Time) ([]engine.ModelTokens, error) {
	c.reads.Add(1)
	if c.fail != nil {
		return nil, c.fail
	}
	return c.BudgetStore.BudgetTokens(ctx, scope, target, since)
}

func TestBudgetUsageIsCached(t *testing.T) {
	store := &countingBudgets{}
	budgets := []*engine.Budget{
		{Scope: engine.BudgetScopeAssistant, Period: engine.BudgetDay, MaxTokens: 100_000, Action: engine.BudgetRefuse},
		{Scope: engine.BudgetScopeAssistant, Period: engine.BudgetDay, MaxCostUSD: 100, Action: engine.BudgetRefuse}, // the same usage
		{Scope: engine.BudgetScopeUser, Target: "slack:U1", Period: engine.BudgetMonth, MaxTokens: 100_000, Action: engine.BudgetRefuse},
	}
	f := mustBudgetFixture(t, nil, store, budgets...)
	store.BudgetStore = f.store
	ctx := context.Background()
	for i := range 3 {
		if _, err := f.engine.Handle(ctx, slackMessage("T-cache", "question "+string(rune('a'+i))), &enginetest.Replier{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := store.reads.Load(); n != 2 {
		t.Errorf("%d usage reads for three turns under two targets, want 2", n)
	}
	f.meter.Forget()
	sts, err := f.meter.Statuses(ctx)
	if err != nil || len(sts) != 3 {
		t.Fatalf("statuses %d, %v", len(sts), err)
	}
	if n := store.reads.Load(); n != 4 {
		t.Errorf("%d usage reads after Forget, want 4", n)
	}
	// Today: 1,000 tokens of the seed and three turns' worth counted by the
	// time the cache was dropped.
	if sts[0].Tokens <= 1000 || sts[0].From != time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC) || sts[0].Until != time.Date(2025, 3, 16, 0, 0, 0, 0, time.UTC) {
		t.Errorf("daily status %+v", sts[0])
	}
	if sts[2].From != time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC) || sts[2].Until != time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC) {
		t.Errorf("monthly status %+v", sts[2])
	}
}

func TestBudgetsFailOpen(t *testing.T) {
	store := &countingBudgets{fail: errors.New("database is locked")}
	f := mustBudgetFixture(t, nil, store, &engine.Budget{Scope: engine.BudgetScopeAssistant, Period: engine.BudgetDay, MaxTokens: 1, Action: engine.BudgetRefuse})
	store.BudgetStore = f.store
	ans, err := f.engine.Handle(context.Background(), slackMessage("T-open", "question"), &enginetest.Replier{})
	if err != nil || ans.Outcome != engine.OutcomeAnswered {
		t.Fatalf("outcome %q, %v: want answered when budgets cannot be read", ans.Outcome, err)
	}
	if detail, ok := budgetStep(t, f, ans.TraceID); !ok || !strings.Contains(detail, "database is locked") {
		t.Errorf("budget step %q (present %v): want the error", detail, ok)
	}
	if !strings.Contains(f.logs.String(), "budgets unavailable") {
		t.Errorf("the failure is not logged:\n%s", f.logs)
	}
}

func TestBudgetValidate(t *testing.T) {
	valid := func() engine.Budget {
		return engine.Budget{Scope: engine.BudgetScopeChannel, Target: "slack:C1", Period: engine.BudgetDay, MaxTokens: 10, Action: engine.BudgetRefuse}
	}
	tests := []struct {
		name   string
		change func(b *engine.Budget)
		want   string // a piece of the message; "" when valid
	}{
		{"valid", func(*engine.Budget) {}, ""},
		{"cost only", func(b *engine.Budget) { b.MaxTokens, b.MaxCostUSD = 0, 2.5 }, ""},
		{"fallback", func(b *engine.Budget) { b.Action, b.FallbackModel = engine.BudgetFallback, " openai/gpt-4o-mini " }, ""},
		{"console channel", func(b *engine.Budget) { b.Target = "console:user:01h" }, ""},
		{"assistant id", func(b *engine.Budget) { b.Scope, b.Target = engine.BudgetScopeAssistant, "01jabc" }, ""},
		{"scope", func(b *engine.Budget) { b.Scope = "team" }, `Budget scope "team" is unknown: use assistant, channel or user.`},
		{"no target", func(b *engine.Budget) { b.Target = "  " }, `A budget needs a target: "<platform>:<channel id>", e.g. "slack:C0123456789".`},
		{"no assistant", func(b *engine.Budget) { b.Scope, b.Target = engine.BudgetScopeAssistant, "" }, "the assistant's id"},
		{"target without platform", func(b *engine.Budget) { b.Scope, b.Target = engine.BudgetScopeUser, "U1" }, `Budget target "U1" is not "<platform>:<user id>"`},
		{"target without id", func(b *engine.Budget) { b.Target = "slack:" }, `is not "<platform>:<channel id>"`},
		{"period", func(b *engine.Budget) { b.Period = "week" }, "use day or month (UTC)"},
		{"no limit", func(b *engine.Budget) { b.MaxTokens = 0 }, "A budget needs a limit: set max tokens, max cost in US dollars, or both."},
		{"negative tokens", func(b *engine.Budget) { b.MaxTokens = -5 }, "use 0 for no token limit"},
		{"negative cost", func(b *engine.Budget) { b.MaxCostUSD = -1 }, "use 0 for no cost limit"},
		{"action", func(b *engine.Budget) { b.Action = "warn" }, `Budget action "warn" is unknown: use refuse`},
		{"fallback without model", func(b *engine.Budget) { b.Action = engine.BudgetFallback }, "needs a fallback model"},
		{"refusal with a model", func(b *engine.Budget) { b.FallbackModel = "gpt-4o-mini" }, "A budget that refuses has no fallback model"},
		{"model with spaces", func(b *engine.Budget) { b.Action, b.FallbackModel = engine.BudgetFallback, "gpt 4o" }, `Fallback model "gpt 4o" is invalid`},
		{"id with spaces", func(b *engine.Budget) { b.ID = "a b" }, `Budget id "a b" is invalid`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := valid()
			tt.change(&b)
			err := b.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && (engine.ErrorCode(err) != engine.EINVALID || !strings.Contains(engine.ErrorMessage(err), tt.want)):
				t.Fatalf("Validate: %v (code %q), want EINVALID saying %q", err, engine.ErrorCode(err), tt.want)
			}
		})
	}
	b := valid()
	b.Action, b.FallbackModel = engine.BudgetFallback, " openai/gpt-4o-mini "
	if err := b.Validate(); err != nil || b.FallbackModel != "openai/gpt-4o-mini" {
		t.Errorf("fallback model %q (%v): want it trimmed", b.FallbackModel, err)
	}
}

func TestBudgetPeriods(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	tests := []struct {
		period      engine.BudgetPeriod
		at          time.Time
		start, next time.Time
	}{
		{engine.BudgetDay, budgetNow, time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 16, 0, 0, 0, 0, time.UTC)},
		{engine.BudgetDay, time.Date(2025, 3, 16, 0, 30, 0, 0, paris), time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 16, 0, 0, 0, 0, time.UTC)},
		{engine.BudgetDay, time.Date(2024, 2, 28, 23, 59, 59, 0, time.UTC), time.Date(2024, 2, 28, 0, 0, 0, 0, time.UTC), time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{engine.BudgetMonth, budgetNow, time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)},
		{engine.BudgetMonth, time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC), time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{engine.BudgetMonth, time.Date(2026, 1, 1, 0, 30, 0, 0, paris), time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		if got := tt.period.Start(tt.at); !got.Equal(tt.start) || got.Location() != time.UTC {
			t.Errorf("%s Start(%v) = %v, want %v", tt.period, tt.at, got, tt.start)
		}
		if got := tt.period.End(tt.at); !got.Equal(tt.next) {
			t.Errorf("%s End(%v) = %v, want %v", tt.period, tt.at, got, tt.next)
		}
	}
}

func TestBudgetFormats(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 200000: "200,000", 1234567: "1,234,567", -1500: "-1,500"} {
		if got := engine.FormatTokens(n); got != want {
			t.Errorf("FormatTokens(%d) = %q, want %q", n, got, want)
		}
	}
	for v, want := range map[float64]string{0: "$0.00", 50: "$50.00", 1.405: "$1.41", 0.0042: "$0.0042"} {
		if got := engine.FormatUSD(v); got != want {
			t.Errorf("FormatUSD(%v) = %q, want %q", v, got, want)
		}
	}
	if _, err := engine.NewBudgetMeter(engine.BudgetConfig{Prices: map[string]engine.ModelPrice{"m": {InputPerMillion: -1}}}, engine.BudgetDeps{Store: &countingBudgets{}}); engine.ErrorCode(err) != engine.EINVALID {
		t.Errorf("a negative price: %v, want EINVALID", err)
	}
}

// TestBudgetsApplyToResumedTurns: a turn that waited for a tool approval
// is checked against the budgets again when it goes on, since one may have
// run out meanwhile: a refusal runs neither the tool nor the model, a
// fallback goes on with the cheaper model.
func TestBudgetsApplyToResumedTurns(t *testing.T) {
	tests := []struct {
		name    string
		budget  *engine.Budget
		refused bool
		model   string
	}{
		{"still within budget", &engine.Budget{Scope: engine.BudgetScopeUser, Target: "slack:U1", Period: engine.BudgetDay, MaxTokens: 1_000_000, Action: engine.BudgetRefuse}, false, ""},
		{"used up: refused", &engine.Budget{Scope: engine.BudgetScopeUser, Target: "slack:U1", Period: engine.BudgetDay, MaxTokens: 1000, Action: engine.BudgetRefuse}, true, ""},
		{"used up: fallback", &engine.Budget{Scope: engine.BudgetScopeUser, Target: "slack:U1", Period: engine.BudgetDay, MaxTokens: 500, Action: engine.BudgetFallback, FallbackModel: "local/cheap-model"}, false, "local/cheap-model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustBudgetFixture(t, nil, nil, tt.budget)
			tools := policyTools()
			policy := map[string]engine.ToolMode{"weather": engine.ToolAsk}
			// The question is asked before the budget applies (an engine
			// without budgets), and goes on with one that has them.
			before := mustPolicyEngine(t, f.fixture, tools, policy, engine.Config{})
			f.model.Script(
				enginetest.Reply{Chunks: []string{"Let me check. "}, ToolCalls: []engine.ToolCall{toolCall("c1", "weather", `{"city":"Oslo"}`)}},
				enginetest.Reply{Chunks: []string{"It is sunny in Oslo."}},
			)
			ans, _ := mustAwait(t, f.fixture, before, "T-resume")
			if _, err := decide(f.fixture, ans.Approval.ID, true, asker); err != nil {
				t.Fatal(err)
			}
			msg := resumeMessage(t, f.fixture, ans.Approval.ID)
			after, err := engine.New(engine.Config{}, engine.Deps{Assistants: f.store, Conversations: f.store, Traces: f.store,
				Model: f.model, Tools: tools, ToolAudit: f.store, Approvals: f.store, Budgets: f.meter})
			if err != nil {
				t.Fatal(err)
			}
			asked := len(f.model.Requests())
			final, err := after.Handle(context.Background(), msg, &enginetest.Replier{})
			reqs := f.model.Requests()[asked:]
			if tt.refused {
				if engine.ErrorCode(err) != engine.ERATELIMITED || final.Outcome != engine.OutcomeBudgetExceeded || !strings.Contains(final.Notice, "daily budget") {
					t.Fatalf("resumed turn: outcome %q, notice %q, error %v: want a budget refusal", final.Outcome, final.Notice, err)
				}
				if len(tools.Calls()) != 0 || len(reqs) != 0 {
					t.Fatalf("a refused turn ran %d tools and %d model requests", len(tools.Calls()), len(reqs))
				}
				return
			}
			if err != nil || final.Outcome != engine.OutcomeAnswered || len(tools.Calls()) != 1 || len(reqs) != 1 {
				t.Fatalf("resumed turn: outcome %q, error %v, %d tool calls, %d model requests", final.Outcome, err, len(tools.Calls()), len(reqs))
			}
			if reqs[0].Model != tt.model {
				t.Errorf("the resumed turn asked for model %q, want %q", reqs[0].Model, tt.model)
			}
			if detail, ok := budgetStep(t, f, final.TraceID); !ok {
				t.Errorf("no budget step in the resumed turn's trace")
			} else if tt.model != "" && !strings.Contains(detail, "fallback to "+tt.model) {
				t.Errorf("budget step %q, want the fallback", detail)
			}
		})
	}
}
