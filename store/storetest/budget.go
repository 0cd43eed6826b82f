package storetest

import (
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// budgetIDs returns the ids of list, in order.
func budgetIDs(list []*engine.Budget) []string {
	ids := []string{}
	for _, b := range list {
		ids = append(ids, b.ID)
	}
	return ids
}

func testBudgets(t *testing.T, s engine.Store) {
	ctx := t.Context()
	list, err := s.ListBudgets(ctx)
	Must(t, err)
	MustEqual(t, "budgets of an empty store", budgetIDs(list), []string{})

	// A new budget gets an id and its timestamps; text fields are trimmed.
	user := &engine.Budget{Scope: engine.BudgetScopeUser, Target: " slack:U1 ", Period: engine.BudgetDay,
		MaxTokens: 20000, Action: engine.BudgetRefuse}
	Must(t, s.SaveBudget(ctx, user))
	if len(user.ID) != 26 {
		t.Fatalf("new budget id %q: want a 26-character id", user.ID)
	}
	mustStoredTime(t, "CreatedAt", user.CreatedAt)
	mustStoredTime(t, "UpdatedAt", user.UpdatedAt)
	if !user.CreatedAt.Equal(user.UpdatedAt) || time.Since(user.CreatedAt) > time.Minute {
		t.Fatalf("new budget: CreatedAt %v, UpdatedAt %v: want both about now", user.CreatedAt, user.UpdatedAt)
	}
	MustEqual(t, "trimmed target", user.Target, "slack:U1")

	// A chosen id is kept; every field survives, the cost exactly.
	asst := &engine.Budget{ID: "b-assistant", Scope: engine.BudgetScopeAssistant, Target: "asst-helpdesk", Period: engine.BudgetMonth,
		MaxTokens: 5_000_000_000, MaxCostUSD: 123.456789, Action: engine.BudgetFallback, FallbackModel: "local/llama3.1:8b"}
	Must(t, s.SaveBudget(ctx, asst))
	MustEqual(t, "chosen id", asst.ID, "b-assistant")
	// Two budgets on one target and period (tokens and cost), and one whose
	// id orders it first among them.
	channelDay := &engine.Budget{ID: "b2", Scope: engine.BudgetScopeChannel, Target: "console:user:42", Period: engine.BudgetDay,
		MaxCostUSD: 0.5, Action: engine.BudgetRefuse}
	channelDay2 := &engine.Budget{ID: "b1", Scope: engine.BudgetScopeChannel, Target: "console:user:42", Period: engine.BudgetDay,
		MaxTokens: 1, Action: engine.BudgetRefuse}
	channelMonth := &engine.Budget{ID: "b0", Scope: engine.BudgetScopeChannel, Target: "console:user:42", Period: engine.BudgetMonth,
		MaxTokens: 10, Action: engine.BudgetRefuse}
	channelSlack := &engine.Budget{ID: "b9", Scope: engine.BudgetScopeChannel, Target: "Slack:C1", Period: engine.BudgetDay,
		MaxTokens: 10, Action: engine.BudgetRefuse}
	for _, b := range []*engine.Budget{channelDay, channelDay2, channelMonth} {
		Must(t, s.SaveBudget(ctx, b))
	}
	// An upper-case platform is refused: platforms are lower case.
	MustCode(t, s.SaveBudget(ctx, channelSlack), engine.EINVALID)
	channelSlack.Target = "slack:C1"
	Must(t, s.SaveBudget(ctx, channelSlack))

	list, err = s.ListBudgets(ctx)
	Must(t, err)
	// By scope, target (bytewise: "console…" before "slack…"), period, id.
	MustEqual(t, "stored budgets", list, []*engine.Budget{asst, channelDay2, channelDay, channelMonth, channelSlack, user})

	// Replacing keeps CreatedAt, moves UpdatedAt and replaces every field.
	time.Sleep(2 * time.Millisecond)
	again := &engine.Budget{ID: "b-assistant", Scope: engine.BudgetScopeUser, Target: "discord:U7", Period: engine.BudgetDay,
		MaxTokens: 7, Action: engine.BudgetRefuse}
	Must(t, s.SaveBudget(ctx, again))
	if !again.CreatedAt.Equal(asst.CreatedAt) || !again.UpdatedAt.After(asst.UpdatedAt) {
		t.Fatalf("replaced budget: CreatedAt %v (was %v), UpdatedAt %v (was %v)", again.CreatedAt, asst.CreatedAt, again.UpdatedAt, asst.UpdatedAt)
	}
	list, err = s.ListBudgets(ctx)
	Must(t, err)
	MustEqual(t, "replaced budget", list, []*engine.Budget{channelDay2, channelDay, channelMonth, channelSlack, again, user})

	// An invalid budget is refused and nothing changes.
	for _, bad := range []*engine.Budget{
		{Scope: "team", Target: "x", Period: engine.BudgetDay, MaxTokens: 1, Action: engine.BudgetRefuse},
		{Scope: engine.BudgetScopeUser, Target: "U1", Period: engine.BudgetDay, MaxTokens: 1, Action: engine.BudgetRefuse},
		{Scope: engine.BudgetScopeUser, Target: "slack:U1", Period: "week", MaxTokens: 1, Action: engine.BudgetRefuse},
		{Scope: engine.BudgetScopeUser, Target: "slack:U1", Period: engine.BudgetDay, Action: engine.BudgetRefuse},
		{Scope: engine.BudgetScopeUser, Target: "slack:U1", Period: engine.BudgetDay, MaxTokens: 1, Action: engine.BudgetFallback},
		{ID: "b1", Scope: engine.BudgetScopeUser, Target: "slack:U1", Period: engine.BudgetDay, MaxTokens: -1, Action: engine.BudgetRefuse},
	} {
		MustCode(t, s.SaveBudget(ctx, bad), engine.EINVALID)
	}
	list, err = s.ListBudgets(ctx)
	Must(t, err)
	MustEqual(t, "budgets after refused saves", budgetIDs(list), []string{"b1", "b2", "b0", "b9", "b-assistant", user.ID})

	// Deleting.
	Must(t, s.DeleteBudget(ctx, "b-assistant"))
	err = s.DeleteBudget(ctx, "b-assistant")
	MustCode(t, err, engine.ENOTFOUND)
	mustMessageNames(t, err, "b-assistant")
	list, err = s.ListBudgets(ctx)
	Must(t, err)
	MustEqual(t, "budgets after deleting one", budgetIDs(list), []string{"b1", "b2", "b0", "b9", user.ID})
}

func testBudgetTokens(t *testing.T, s engine.Store) {
	ctx := t.Context()
	day := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	SeedAnalytics(t, s, day)
	// A console turn: its channel id holds a colon.
	conv := &engine.Conversation{Platform: engine.PlatformConsole, ChannelID: "user:42", ThreadID: "budget"}
	Must(t, s.EnsureConversation(ctx, conv))
	Must(t, s.SaveTrace(ctx, &engine.Trace{ID: "b01", ConversationID: conv.ID, AssistantID: "asst-ops", Platform: engine.PlatformConsole,
		ChannelID: "user:42", UserID: "42", Model: "gpt-4o", TokensIn: 7, TokensOut: 3, Outcome: engine.OutcomeBudgetExceeded,
		StartedAt: day.Add(time.Hour)}))

	type mt = engine.ModelTokens
	for _, tt := range []struct {
		name   string
		scope  engine.BudgetScope
		target string
		since  time.Time
		want   []mt
	}{
		// Every turn since day, ordered by model: also x2 (there is no upper
		// bound), not x1 (before), not x3 (awaiting approval).
		{"assistant", engine.BudgetScopeAssistant, "asst-helpdesk", day,
			[]mt{{Model: "gpt-4o", Messages: 5, TokensIn: 1400, TokensOut: 1250}, {Model: "gpt-4o-mini", Messages: 3, TokensIn: 320, TokensOut: 20}}},
		{"assistant from the next day", engine.BudgetScopeAssistant, "asst-helpdesk", day.AddDate(0, 0, 1),
			[]mt{{Model: "gpt-4o", Messages: 3, TokensIn: 1100, TokensOut: 1100}, {Model: "gpt-4o-mini", Messages: 2, TokensIn: 20, TokensOut: 20}}},
		{"since is inclusive", engine.BudgetScopeUser, "slack:U2", day.Add(-time.Microsecond),
			[]mt{{Model: "gpt-4o", Messages: 3, TokensIn: 2000, TokensOut: 2000}, {Model: "gpt-4o-mini", Messages: 1, TokensIn: 300, TokensOut: 0}}},
		{"user", engine.BudgetScopeUser, "slack:U2", day,
			[]mt{{Model: "gpt-4o", Messages: 2, TokensIn: 1000, TokensOut: 1000}, {Model: "gpt-4o-mini", Messages: 1, TokensIn: 300, TokensOut: 0}}},
		{"channel", engine.BudgetScopeChannel, "slack:C1", day,
			[]mt{{Model: "gpt-4o", Messages: 3, TokensIn: 400, TokensOut: 250}}},
		{"channel id with a colon", engine.BudgetScopeChannel, "console:user:42", day,
			[]mt{{Model: "gpt-4o", Messages: 1, TokensIn: 7, TokensOut: 3}}},
		{"console user", engine.BudgetScopeUser, "console:u-ada", day,
			[]mt{{Model: "gpt-4o", Messages: 1, TokensIn: 50, TokensOut: 25}}},
		{"extractive turns count with no tokens", engine.BudgetScopeAssistant, "asst-ops", day,
			[]mt{{Model: "extractive", Messages: 2, TokensIn: 0, TokensOut: 0}, {Model: "gpt-4o", Messages: 2, TokensIn: 57, TokensOut: 28}}},
		{"another platform's channel of the same id", engine.BudgetScopeChannel, "discord:C1", day, []mt{}},
		{"a user id is not a channel id", engine.BudgetScopeChannel, "slack:U1", day, []mt{}},
		{"unknown assistant", engine.BudgetScopeAssistant, "asst-none", day, []mt{}},
		{"target without a platform", engine.BudgetScopeUser, "U1", day, []mt{}},
		{"after every turn", engine.BudgetScopeAssistant, "asst-helpdesk", day.AddDate(0, 1, 0), []mt{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.BudgetTokens(ctx, tt.scope, tt.target, tt.since)
			Must(t, err)
			MustEqual(t, "tokens of "+string(tt.scope)+" "+tt.target, got, tt.want)
		})
	}
	_, err := s.BudgetTokens(ctx, "team", "x", day)
	MustCode(t, err, engine.EINVALID)
}
