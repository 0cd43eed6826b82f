package engine

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Budgets cap the tokens, or the cost (priced by ModelPrice), that an
// assistant, a channel or a chat user may use per UTC day or month. When
// a budget is used up, the turns it applies to run on its cheaper
// FallbackModel or are refused with a notice saying when it resets, and
// the console is alerted. Usage is read from the traces, as the analytics
// read it (a turn that waits for a tool approval counts once it
// finishes), and kept for a few seconds (BudgetConfig.CacheTTL): a turn
// that starts within its budget finishes even when it goes over, and a
// busy target may overshoot by the turns of those seconds.

// BudgetScope is what a budget applies to.
type BudgetScope string

// Budget scopes.
const (
	BudgetScopeAssistant BudgetScope = "assistant" // Target: the assistant's id
	BudgetScopeChannel   BudgetScope = "channel"   // Target: "<platform>:<channel id>"
	BudgetScopeUser      BudgetScope = "user"      // Target: "<platform>:<chat user id>"
)

// BudgetPeriod is how often a budget starts again: each UTC day or month.
type BudgetPeriod string

// Budget periods.
const (
	BudgetDay   BudgetPeriod = "day"
	BudgetMonth BudgetPeriod = "month"
)

// BudgetAction is what happens to the turns of a used-up budget.
type BudgetAction string

// Budget actions.
const (
	BudgetRefuse   BudgetAction = "refuse"   // a polite notice instead of an answer
	BudgetFallback BudgetAction = "fallback" // the answer comes from FallbackModel
)

// OutcomeBudgetExceeded is the outcome of a turn refused because a
// budget is used up; the user got a notice saying which and when it resets.
const OutcomeBudgetExceeded Outcome = "budget_exceeded"

// StepBudget is the trace step that checks a turn's budgets (recorded
// only when some budget applies).
const StepBudget = "budget"

// AuditBudgetExhausted is the audit action recorded the first time a
// budget is used up in a period, by AuditActorSystem (its actor id and
// name: no console user acted).
const (
	AuditBudgetExhausted = "budget.exhausted"
	AuditActorSystem     = "system"
)

// DefaultBudgetCacheTTL is how long a budget's usage is reused.
const DefaultBudgetCacheTTL = 5 * time.Second

// Budget limits lengths, in bytes.
const (
	budgetTargetMax = 300
	budgetIDMax     = 64
)

// ModelPrice is what a model's tokens cost, in US dollars per million.
type ModelPrice struct {
	InputPerMillion  float64 `json:"input_per_million"`
	OutputPerMillion float64 `json:"output_per_million"`
}

// Cost is the price of tokensIn and tokensOut tokens.
func (p ModelPrice) Cost(tokensIn, tokensOut int64) float64 {
	return (float64(tokensIn)*p.InputPerMillion + float64(tokensOut)*p.OutputPerMillion) / 1e6
}

// ValidateModelPrices checks prices: named models, finite and not negative.
func ValidateModelPrices(prices map[string]ModelPrice) error {
	for model, p := range prices {
		if strings.TrimSpace(model) == "" {
			return Errorf(EINVALID, "A model price needs the model's name.")
		}
		for _, v := range []float64{p.InputPerMillion, p.OutputPerMillion} {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return Errorf(EINVALID, "The price of model %q must be a number of dollars per million tokens, not negative.", model)
			}
		}
	}
	return nil
}

// Budget caps the tokens or the cost of an assistant, a channel or a chat
// user per UTC day or month. Set MaxTokens, MaxCostUSD or both (0: no
// limit of that kind); the budget is used up when either is reached.
type Budget struct {
	ID     string       `json:"id"`
	Scope  BudgetScope  `json:"scope"`
	Target string       `json:"target"` // see BudgetScope; BudgetTarget builds channel and user targets
	Period BudgetPeriod `json:"period"`
	// MaxTokens caps the tokens in and out of every model.
	MaxTokens int64 `json:"max_tokens"`
	// MaxCostUSD caps the cost of the tokens of models that have a price;
	// tokens of a model without one cost nothing here.
	MaxCostUSD float64      `json:"max_cost_usd"`
	Action     BudgetAction `json:"action"`
	// FallbackModel answers once the budget is used up (Action fallback):
	// a cheaper model, "<model>" or "<provider>/<model>" as assistants name them.
	FallbackModel string    `json:"fallback_model,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// BudgetTarget is the Target of a channel's or a chat user's budget.
func BudgetTarget(p Platform, id string) string { return string(p) + ":" + id }

// Validate checks a budget before it is stored, trimming its text
// fields; the error says what to fix.
func (b *Budget) Validate() error {
	b.ID = strings.TrimSpace(b.ID)
	b.Target = strings.TrimSpace(b.Target)
	b.FallbackModel = strings.TrimSpace(b.FallbackModel)
	switch {
	case len(b.ID) > budgetIDMax || strings.ContainsFunc(b.ID, unicode.IsSpace):
		return Errorf(EINVALID, "Budget id %q is invalid: leave it empty to get one, or use up to %d characters without spaces.", b.ID, budgetIDMax)
	case b.Scope != BudgetScopeAssistant && b.Scope != BudgetScopeChannel && b.Scope != BudgetScopeUser:
		return Errorf(EINVALID, "Budget scope %q is unknown: use assistant, channel or user.", b.Scope)
	case b.Target == "":
		return Errorf(EINVALID, "A budget needs a target: %s.", budgetTargetHint(b.Scope))
	case len(b.Target) > budgetTargetMax || strings.ContainsFunc(b.Target, unicode.IsControl):
		return Errorf(EINVALID, "Budget target %q is too long or holds control characters: %s.", Snippet(b.Target, 60), budgetTargetHint(b.Scope))
	case b.Period != BudgetDay && b.Period != BudgetMonth:
		return Errorf(EINVALID, "Budget period %q is unknown: use day or month (UTC).", b.Period)
	case b.MaxTokens < 0:
		return Errorf(EINVALID, "A budget's max tokens must not be negative: use 0 for no token limit.")
	case b.MaxCostUSD < 0 || math.IsNaN(b.MaxCostUSD) || math.IsInf(b.MaxCostUSD, 0):
		return Errorf(EINVALID, "A budget's max cost must be a number of US dollars, not negative: use 0 for no cost limit.")
	case b.MaxTokens == 0 && b.MaxCostUSD == 0:
		return Errorf(EINVALID, "A budget needs a limit: set max tokens, max cost in US dollars, or both.")
	}
	if b.Scope != BudgetScopeAssistant {
		p, id, ok := strings.Cut(b.Target, ":")
		if !ok || strings.TrimSpace(p) == "" || strings.TrimSpace(id) == "" || p != strings.ToLower(p) {
			return Errorf(EINVALID, "Budget target %q is not %s.", b.Target, budgetTargetHint(b.Scope))
		}
	}
	switch b.Action {
	case BudgetRefuse:
		if b.FallbackModel != "" {
			return Errorf(EINVALID, "A budget that refuses has no fallback model: leave the fallback model empty, or use the fallback action.")
		}
	case BudgetFallback:
		if b.FallbackModel == "" {
			return Errorf(EINVALID, "A budget with the fallback action needs a fallback model: name a cheaper model, e.g. gpt-4o-mini or provider/model.")
		}
		if len(b.FallbackModel) > modelNameMax || strings.ContainsFunc(b.FallbackModel, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return Errorf(EINVALID, "Fallback model %q is invalid: use a model name of up to %d characters without spaces.", Snippet(b.FallbackModel, 60), modelNameMax)
		}
	default:
		return Errorf(EINVALID, "Budget action %q is unknown: use refuse (a polite notice) or fallback (a cheaper model).", b.Action)
	}
	return nil
}

func budgetTargetHint(s BudgetScope) string {
	switch s {
	case BudgetScopeChannel:
		return `"<platform>:<channel id>", e.g. "slack:C0123456789"`
	case BudgetScopeUser:
		return `"<platform>:<user id>", e.g. "slack:U0123456789"`
	}
	return "the assistant's id"
}

// Start is the beginning (UTC) of the period that holds at.
func (p BudgetPeriod) Start(at time.Time) time.Time {
	at = at.UTC()
	if p == BudgetMonth {
		return time.Date(at.Year(), at.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
}

// End is the beginning of the period after the one that holds at: when
// a budget resets.
func (p BudgetPeriod) End(at time.Time) time.Time {
	if p == BudgetMonth {
		return p.Start(at).AddDate(0, 1, 0)
	}
	return p.Start(at).AddDate(0, 0, 1)
}

// Adjective is "daily" or "monthly".
func (p BudgetPeriod) Adjective() string {
	if p == BudgetMonth {
		return "monthly"
	}
	return "daily"
}

// BudgetStore keeps budgets and reads their usage from the traces.
type BudgetStore interface {
	// SaveBudget validates b and inserts it, or replaces the budget with
	// the same ID keeping its CreatedAt; an empty ID gets a new one. b is
	// filled with the stored ID and timestamps.
	SaveBudget(ctx context.Context, b *Budget) error
	DeleteBudget(ctx context.Context, id string) error // ENOTFOUND when there is none
	// ListBudgets lists the budgets by scope, target, period, then id.
	ListBudgets(ctx context.Context) ([]*Budget, error)
	// BudgetTokens sums, per model (ordered by model), the tokens of the
	// turns of a scope's target that started at or after since: as the
	// analytics count them (traces without OutcomeAwaiting). A target
	// without turns has an empty list.
	BudgetTokens(ctx context.Context, scope BudgetScope, target string, since time.Time) ([]ModelTokens, error)
}

// BudgetStatus is a budget's usage in its current period.
type BudgetStatus struct {
	Budget *Budget
	From   time.Time // the period's start (UTC)
	Until  time.Time // the next period's start: when the budget resets
	Tokens int64     // in and out, of every model
	// CostUSD prices the tokens of the models that have a price.
	CostUSD float64
	// Unpriced are the models with tokens but no price, by name.
	Unpriced []string
	Models   []ModelTokens
}

// TokensUsedUp and CostUsedUp report whether a limit is reached.
func (s BudgetStatus) TokensUsedUp() bool {
	return s.Budget.MaxTokens > 0 && s.Tokens >= s.Budget.MaxTokens
}

func (s BudgetStatus) CostUsedUp() bool {
	return s.Budget.MaxCostUSD > 0 && s.CostUSD >= s.Budget.MaxCostUSD
}

// UsedUp reports whether the budget is used up for the rest of its period.
func (s BudgetStatus) UsedUp() bool { return s.TokensUsedUp() || s.CostUsedUp() }

// TokensFraction and CostFraction are the share of each limit used (0
// without the limit; over 1 when it was overshot).
func (s BudgetStatus) TokensFraction() float64 {
	if s.Budget.MaxTokens <= 0 {
		return 0
	}
	return float64(s.Tokens) / float64(s.Budget.MaxTokens)
}

func (s BudgetStatus) CostFraction() float64 {
	if s.Budget.MaxCostUSD <= 0 {
		return 0
	}
	return s.CostUSD / s.Budget.MaxCostUSD
}

// Fraction is the larger share used of the budget's limits.
func (s BudgetStatus) Fraction() float64 { return max(s.TokensFraction(), s.CostFraction()) }

// Limit names the limit that is used up (the token limit first), or the
// budget's limits when none is: "daily budget of 200,000 tokens".
func (s BudgetStatus) Limit() string {
	b := s.Budget
	tokens, cost := s.TokensUsedUp(), s.CostUsedUp()
	var parts []string
	if b.MaxTokens > 0 && (tokens || !cost) {
		parts = append(parts, FormatTokens(b.MaxTokens)+" tokens")
	}
	if b.MaxCostUSD > 0 && !tokens {
		parts = append(parts, FormatUSD(b.MaxCostUSD))
	}
	return b.Period.Adjective() + " budget of " + strings.Join(parts, " or ")
}

// Resets says when the budget resets, in words: "at 00:00 UTC" (a daily
// budget: the next midnight) or "on 1 April at 00:00 UTC".
func (s BudgetStatus) Resets() string {
	if s.Budget.Period == BudgetMonth {
		return "on " + s.Until.Format("2 January") + " at 00:00 UTC"
	}
	return "at 00:00 UTC"
}

// Notice is what a user is told when the budget refuses their turn;
// assistant is the name of the assistant they asked.
func (s BudgetStatus) Notice(assistant string) string {
	var who string
	switch s.Budget.Scope {
	case BudgetScopeUser:
		who = "You have used your "
	case BudgetScopeChannel:
		who = "This channel has used its "
	default:
		if assistant == "" {
			assistant = "This assistant"
		}
		who = assistant + " has used its "
	}
	return fmt.Sprintf("%s%s; it resets %s. Please ask again then, or ask an admin to raise the budget in the console.",
		who, s.Limit(), s.Resets())
}

// FormatTokens writes a number of tokens with thousands separators: 200,000.
func FormatTokens(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// FormatUSD writes dollars: $50.00, or $0.0042 below a cent.
func FormatUSD(v float64) string {
	if v != 0 && math.Abs(v) < 0.01 {
		return "$" + strconv.FormatFloat(v, 'f', 4, 64)
	}
	return "$" + strconv.FormatFloat(v, 'f', 2, 64)
}

// BudgetConfig tunes a BudgetMeter.
type BudgetConfig struct {
	// Prices price each model's tokens (by the model name the traces
	// record) for the budgets' cost; a model without one costs nothing.
	Prices map[string]ModelPrice
	// CacheTTL is how long the budgets and their usage are reused; default
	// DefaultBudgetCacheTTL, negative: not at all.
	CacheTTL time.Duration
}

// Validate reports the first invalid setting.
func (c BudgetConfig) Validate() error { return ValidateModelPrices(c.Prices) }

// BudgetDeps are a BudgetMeter's collaborators. Store is required.
type BudgetDeps struct {
	Store BudgetStore
	// Audit records the alerts (AuditBudgetExhausted); nil: they are logged only.
	Audit  AuditStore
	Logger *slog.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// BudgetMeter reads budgets and their usage through a short cache and
// decides what a turn's budgets allow. The engine checks each turn with
// it; the console shows the budgets' usage through its own. It is safe
// for concurrent use.
type BudgetMeter struct {
	cfg  BudgetConfig
	deps BudgetDeps
	log  *slog.Logger

	mu      sync.Mutex
	epoch   int // bumped by Forget: a read that began before it is not kept
	list    []*Budget
	listAt  time.Time
	usage   map[string]budgetUsage
	alerted map[string]time.Time // budget id and period start → the period's end
}

type budgetUsage struct {
	at     time.Time
	models []ModelTokens
}

// NewBudgetMeter returns a meter, or an error naming the bad setting.
func NewBudgetMeter(cfg BudgetConfig, deps BudgetDeps) (*BudgetMeter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil {
		return nil, Errorf(EINVALID, "budgets: a budget store is required")
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultBudgetCacheTTL
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &BudgetMeter{cfg: cfg, deps: deps, log: log.With("component", "budgets"),
		usage: map[string]budgetUsage{}, alerted: map[string]time.Time{}}, nil
}

// Prices are the configured model prices.
func (m *BudgetMeter) Prices() map[string]ModelPrice { return m.cfg.Prices }

// Forget drops what the cache holds, so that the next read sees a change
// made through this process at once.
func (m *BudgetMeter) Forget() {
	m.mu.Lock()
	m.list, m.listAt, m.usage, m.epoch = nil, time.Time{}, map[string]budgetUsage{}, m.epoch+1
	m.mu.Unlock()
}

// fresh reports whether something read at at may be reused now.
func (m *BudgetMeter) fresh(at, now time.Time) bool {
	return m.cfg.CacheTTL > 0 && now.Sub(at) < m.cfg.CacheTTL && !now.Before(at)
}

// Budgets lists the budgets (as ListBudgets orders them), through the
// cache. The list is shared: do not change it.
func (m *BudgetMeter) Budgets(ctx context.Context) ([]*Budget, error) {
	now := time.Now()
	m.mu.Lock()
	if !m.listAt.IsZero() && m.fresh(m.listAt, now) {
		list := m.list
		m.mu.Unlock()
		return list, nil
	}
	epoch := m.epoch
	m.mu.Unlock()
	list, err := m.deps.Store.ListBudgets(ctx)
	if err != nil {
		return nil, fmt.Errorf("list budgets: %w", err)
	}
	m.mu.Lock()
	if m.epoch == epoch {
		m.list, m.listAt = list, now
	}
	m.mu.Unlock()
	return list, nil
}

// Status reads a budget's usage in its current period, through the cache.
func (m *BudgetMeter) Status(ctx context.Context, b *Budget) (BudgetStatus, error) {
	clock := m.deps.Now()
	st := BudgetStatus{Budget: b, From: b.Period.Start(clock), Until: b.Period.End(clock)}
	key := string(b.Scope) + "\x00" + b.Target + "\x00" + st.From.Format(time.RFC3339)
	now := time.Now()
	m.mu.Lock()
	u, ok := m.usage[key]
	epoch := m.epoch
	m.mu.Unlock()
	if !ok || !m.fresh(u.at, now) {
		models, err := m.deps.Store.BudgetTokens(ctx, b.Scope, b.Target, st.From)
		if err != nil {
			return st, fmt.Errorf("read the usage of budget %s: %w", b.ID, err)
		}
		u = budgetUsage{at: now, models: models}
		m.mu.Lock()
		if m.epoch != epoch {
			m.mu.Unlock()
			return m.tally(st, u.models), nil
		}
		if len(m.usage) >= 1024 {
			for k, old := range m.usage {
				if !m.fresh(old.at, now) {
					delete(m.usage, k)
				}
			}
		}
		m.usage[key] = u
		m.mu.Unlock()
	}
	return m.tally(st, u.models), nil
}

// tally fills st with the tokens and the cost of models.
func (m *BudgetMeter) tally(st BudgetStatus, models []ModelTokens) BudgetStatus {
	st.Models = models
	for _, mt := range models {
		st.Tokens += mt.TokensIn + mt.TokensOut
		if p, ok := m.cfg.Prices[mt.Model]; ok {
			st.CostUSD += p.Cost(mt.TokensIn, mt.TokensOut)
		} else if mt.TokensIn+mt.TokensOut > 0 {
			st.Unpriced = append(st.Unpriced, mt.Model)
		}
	}
	slices.Sort(st.Unpriced)
	return st
}

// Statuses reads every budget's usage in its current period, in list order.
func (m *BudgetMeter) Statuses(ctx context.Context) ([]BudgetStatus, error) {
	list, err := m.Budgets(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]BudgetStatus, 0, len(list))
	for _, b := range list {
		st, err := m.Status(ctx, b)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// BudgetDecision is what a turn's budgets allow.
type BudgetDecision struct {
	// Applied counts the budgets of the turn's assistant, channel and user.
	Applied int
	// Refused is a used-up budget that refuses the turn; nil when none.
	Refused *BudgetStatus
	// Fallback is, when no budget refuses, a used-up budget whose
	// FallbackModel answers instead; nil when none.
	Fallback *BudgetStatus
}

// Check reads the budgets of a message to assistant a: those of a, of
// the message's channel and of its user. Budgets that refuse win over
// fallbacks; among equals, the first in list order wins. Every used-up
// budget is alerted on (Alert).
func (m *BudgetMeter) Check(ctx context.Context, msg Message, a *Assistant) (BudgetDecision, error) {
	var d BudgetDecision
	list, err := m.Budgets(ctx)
	if err != nil || len(list) == 0 {
		return d, err
	}
	p := msg.Thread.Channel.Platform
	for _, b := range list {
		switch {
		case b.Scope == BudgetScopeAssistant && a != nil && b.Target == a.ID:
		case b.Scope == BudgetScopeChannel && msg.Thread.Channel.ID != "" && b.Target == BudgetTarget(p, msg.Thread.Channel.ID):
		case b.Scope == BudgetScopeUser && msg.User.ID != "" && b.Target == BudgetTarget(p, msg.User.ID):
		default:
			continue
		}
		d.Applied++
		st, err := m.Status(ctx, b)
		if err != nil {
			return d, err
		}
		if !st.UsedUp() {
			continue
		}
		m.Alert(ctx, st)
		switch {
		case b.Action == BudgetRefuse && d.Refused == nil:
			d.Refused = &st
		case b.Action == BudgetFallback && d.Fallback == nil:
			d.Fallback = &st
		}
	}
	if d.Refused != nil {
		d.Fallback = nil
	}
	return d, nil
}

// Alert tells the console, once per budget and period, that a budget is
// used up: an audit entry (AuditBudgetExhausted by AuditActorSystem,
// targeting the budget's id) unless one was recorded in this period
// already, by this or another process, and a warning in the log.
func (m *BudgetMeter) Alert(ctx context.Context, st BudgetStatus) {
	key := st.Budget.ID + "\x00" + st.From.Format(time.RFC3339)
	now := m.deps.Now()
	m.mu.Lock()
	if _, done := m.alerted[key]; done {
		m.mu.Unlock()
		return
	}
	for k, until := range m.alerted {
		if !now.Before(until) {
			delete(m.alerted, k)
		}
	}
	m.alerted[key] = st.Until
	m.mu.Unlock()

	b := st.Budget
	detail := fmt.Sprintf("%s %s: %s used up (%s tokens, %s); %s until %s",
		b.Scope, b.Target, st.Limit(), FormatTokens(st.Tokens), FormatUSD(st.CostUSD), budgetActionText(b), st.Until.Format("2006-01-02 15:04 UTC"))
	m.log.WarnContext(ctx, "ALERT: budget used up", "budget_id", b.ID, "scope", b.Scope, "target", b.Target, "period", b.Period,
		"tokens", st.Tokens, "max_tokens", b.MaxTokens, "cost_usd", st.CostUSD, "max_cost_usd", b.MaxCostUSD,
		"action", b.Action, "fallback_model", b.FallbackModel, "resets_at", st.Until)
	if m.deps.Audit == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	earlier, err := m.deps.Audit.ListAudit(ctx, AuditFilter{ActionPrefix: AuditBudgetExhausted, Target: b.ID, Since: st.From, Limit: 20})
	if err != nil {
		m.log.WarnContext(ctx, "read earlier budget alerts", "budget_id", b.ID, "error", err)
	}
	for _, e := range earlier {
		if e.Action == AuditBudgetExhausted && e.Target == b.ID {
			return
		}
	}
	e := &AuditEntry{ActorID: AuditActorSystem, ActorName: AuditActorSystem, Action: AuditBudgetExhausted, Target: b.ID, Detail: detail, Status: 429}
	if err := m.deps.Audit.RecordAudit(ctx, e); err != nil {
		m.log.ErrorContext(ctx, "record budget alert", "budget_id", b.ID, "error", err)
	}
}

// budgetActionText says what a used-up budget does.
func budgetActionText(b *Budget) string {
	if b.Action == BudgetFallback {
		return "answering with " + b.FallbackModel
	}
	return "refusing"
}

// budget applies the budgets of the turn's assistant, channel and user
// (Deps.Budgets): a used-up budget that refuses returns the answer to
// finish the turn with and its error (ERATELIMITED); one that falls back
// switches the turn to its model. Budgets that cannot be read let the
// turn through (fail open), like the rate limits.
func (e *Engine) budget(ctx context.Context, t *turn) (Answer, error) {
	m := e.deps.Budgets
	if m == nil {
		return Answer{}, nil
	}
	done := t.trace.Step(StepBudget)
	d, err := m.Check(ctx, t.msg, t.assistant)
	switch {
	case err != nil:
		done("budgets not checked", err)
		e.log.WarnContext(ctx, "budgets unavailable; not enforcing them", "trace_id", t.trace.ID, "error", err)
	case d.Refused != nil:
		st := d.Refused
		done(fmt.Sprintf("budget %s used up (%s): refused", st.Budget.ID, st.Limit()), nil)
		e.log.InfoContext(ctx, "budget used up: turn refused", "trace_id", t.trace.ID, "budget_id", st.Budget.ID)
		err := Errorf(ERATELIMITED, "%s", st.Notice(t.assistant.Name))
		return Answer{Outcome: OutcomeBudgetExceeded, Notice: ErrorMessage(err), RetryAfter: max(time.Second, st.Until.Sub(m.deps.Now()))}, err
	case d.Fallback != nil:
		st := d.Fallback
		a := *t.assistant
		a.Model = st.Budget.FallbackModel
		t.assistant = &a
		done(fmt.Sprintf("budget %s used up (%s): fallback to %s", st.Budget.ID, st.Limit(), a.Model), nil)
	case d.Applied > 0:
		done(fmt.Sprintf("%d budgets, none used up", d.Applied), nil)
	}
	return Answer{}, nil
}
