package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// Budgets (engine.Budget) cap the tokens or the cost of an assistant, a
// channel or a chat user per UTC day or month. Every role sees them with
// their usage on /budgets and over GET /api/v1/budgets; admins create,
// change and delete them. The dashboard's banner lists the budgets used
// up now. The engine enforces them and records "budget.exhausted" in the
// audit log the first time one is used up in a period.

// budgetRoutes registers the budgets page and API.
func (s *Server) budgetRoutes(pages, api *gin.RouterGroup) {
	pages.GET("/budgets", s.showBudgets)
	api.GET("/budgets", s.listBudgets)
	admins := api.Group("/budgets", s.requireRole("Managing budgets", engine.RoleAdmin))
	admins.POST("", s.createBudget)
	admins.PUT("/:id", s.putBudget)
	admins.DELETE("/:id", s.deleteBudget)
}

// consoleBudgets is the console's budget meter, built on first use from
// the store and Config.ModelPrices: it keeps the budgets' usage for a few
// seconds, like the dashboard's summary.
type consoleBudgets struct {
	once  sync.Once
	meter *engine.BudgetMeter
	err   error
}

// budgetMeter returns the console's budget meter.
func (s *Server) budgetMeter() (*engine.BudgetMeter, error) {
	b := &s.dashboard.budgets
	b.once.Do(func() {
		prices := make(map[string]engine.ModelPrice, len(s.cfg.ModelPrices))
		for model, p := range s.cfg.ModelPrices {
			prices[model] = engine.ModelPrice{InputPerMillion: p.InputPerMillion, OutputPerMillion: p.OutputPerMillion}
		}
		b.meter, b.err = engine.NewBudgetMeter(engine.BudgetConfig{Prices: prices},
			engine.BudgetDeps{Store: s.deps.Store, Logger: s.log, Now: func() time.Time { return s.now() }})
	})
	return b.meter, b.err
}

// budgetRow is a budget with its usage this period, as the page and the
// dashboard show it.
type budgetRow struct {
	engine.BudgetStatus
	// TargetName is the assistant's name for an assistant's budget ("" when
	// the assistant no longer exists).
	TargetName string
}

// ScopeLabel is "Assistant", "Channel" or "User".
func (r budgetRow) ScopeLabel() string {
	switch r.Budget.Scope {
	case engine.BudgetScopeAssistant:
		return "Assistant"
	case engine.BudgetScopeChannel:
		return "Channel"
	}
	return "User"
}

// TargetLabel names what the budget applies to: the assistant's name, or
// "slack C0123" for a channel or a user.
func (r budgetRow) TargetLabel() string {
	if r.Budget.Scope == engine.BudgetScopeAssistant {
		if r.TargetName != "" {
			return r.TargetName
		}
		return r.Budget.Target + " (deleted assistant)"
	}
	platform, id, _ := strings.Cut(r.Budget.Target, ":")
	label, _ := trafficPlatformLabel(engine.Platform(platform))
	return label + " " + id
}

// PeriodLabel is "Daily" or "Monthly".
func (r budgetRow) PeriodLabel() string {
	if r.Budget.Period == engine.BudgetMonth {
		return "Monthly"
	}
	return "Daily"
}

// TokensText is "1,234 of 200,000 tokens"; CostText "$1.20 of $50.00".
func (r budgetRow) TokensText() string {
	return engine.FormatTokens(r.Tokens) + " of " + engine.FormatTokens(r.Budget.MaxTokens) + " tokens"
}

func (r budgetRow) CostText() string {
	return engine.FormatUSD(r.CostUSD) + " of " + engine.FormatUSD(r.Budget.MaxCostUSD)
}

// TokensMeter and CostMeter are the meters' values, capped at 1.
func (r budgetRow) TokensMeter() string { return meterValue(r.TokensFraction()) }
func (r budgetRow) CostMeter() string   { return meterValue(r.CostFraction()) }

func meterValue(f float64) string { return fmt.Sprintf("%.4f", min(max(f, 0), 1)) }

// PercentText is the share used of the nearest limit: "42%".
func (r budgetRow) PercentText() string { return analyticsPercent(r.Fraction()) }

// ActionText says what happens once the budget is used up.
func (r budgetRow) ActionText() string {
	if r.Budget.Action == engine.BudgetFallback {
		return "Answers with " + r.Budget.FallbackModel
	}
	return "Refuses politely"
}

// UsedUpText says what a used-up budget does now: "refusing" or
// "answering with gpt-4o-mini".
func (r budgetRow) UsedUpText() string {
	if r.Budget.Action == engine.BudgetFallback {
		return "answering with " + r.Budget.FallbackModel
	}
	return "refusing new questions"
}

// budgetRows reads every budget with its usage this period, and the
// assistants' names.
func (s *Server) budgetRows(ctx context.Context) ([]budgetRow, error) {
	m, err := s.budgetMeter()
	if err != nil {
		return nil, err
	}
	sts, err := m.Statuses(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "read budgets", "error", err)
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "The budgets could not be read from the database; please try again in a minute.")
	}
	names := map[string]string{}
	if len(sts) > 0 {
		list, err := s.deps.Store.ListAssistants(ctx)
		if err != nil {
			s.log.WarnContext(ctx, "list assistants for budgets", "error", err)
		}
		for _, a := range list {
			names[a.ID] = a.Name
		}
	}
	rows := make([]budgetRow, len(sts))
	for i, st := range sts {
		rows[i] = budgetRow{BudgetStatus: st}
		if st.Budget.Scope == engine.BudgetScopeAssistant {
			rows[i].TargetName = names[st.Budget.Target]
		}
	}
	return rows, nil
}

// usedUpBudgets are the budgets used up now, for the dashboard's banner;
// a failure is logged (once, in budgetRows) and shows no banner.
func (s *Server) usedUpBudgets(ctx context.Context) []budgetRow {
	rows, err := s.budgetRows(ctx)
	if err != nil {
		return nil
	}
	var out []budgetRow
	for _, r := range rows {
		if r.UsedUp() {
			out = append(out, r)
		}
	}
	return out
}

// budgetsPage is the data of /budgets.
type budgetsPage struct {
	Rows       []budgetRow
	UsedUp     []budgetRow
	Error      string
	CanEdit    bool
	Assistants []*engine.Assistant // for the form's suggestions
	Priced     bool                // some model has a price (console.model_prices)
}

// showBudgets serves GET /budgets (every role; admins edit): each budget
// with its usage this period.
func (s *Server) showBudgets(c *gin.Context) {
	ctx := c.Request.Context()
	page := budgetsPage{CanEdit: principalOf(c).User.Role == engine.RoleAdmin, Priced: len(s.cfg.ModelPrices) > 0}
	rows, err := s.budgetRows(ctx)
	if err != nil {
		page.Error = engine.ErrorMessage(err)
	}
	page.Rows = rows
	for _, r := range rows {
		if r.UsedUp() {
			page.UsedUp = append(page.UsedUp, r)
		}
	}
	if page.CanEdit {
		if page.Assistants, err = s.deps.Store.ListAssistants(ctx); err != nil {
			s.log.WarnContext(ctx, "list assistants for the budget form", "error", err)
		}
	}
	v := s.newView(c, "Budgets")
	v.Nav = "budgets"
	v.Page = page
	s.render(c, http.StatusOK, "budgets", v)
}

// budgetJSON is a budget in the API, with its usage this period.
type budgetJSON struct {
	ID     string             `json:"id"`
	Scope  engine.BudgetScope `json:"scope"`
	Target string             `json:"target"` // the assistant's id, or "<platform>:<channel or user id>"
	// TargetName is the assistant's name, for an assistant's budget.
	TargetName    string              `json:"target_name,omitempty"`
	Period        engine.BudgetPeriod `json:"period"` // UTC days or months
	MaxTokens     int64               `json:"max_tokens"`
	MaxCostUSD    float64             `json:"max_cost_usd"`
	Action        engine.BudgetAction `json:"action"`
	FallbackModel string              `json:"fallback_model,omitempty"`
	CreatedAt     time.Time           `json:"created_at"`
	UpdatedAt     time.Time           `json:"updated_at"`
	Usage         budgetUsageJSON     `json:"usage"`
}

// budgetUsageJSON is a budget's usage in its current period.
type budgetUsageJSON struct {
	From     time.Time `json:"from"`      // the period's start
	ResetsAt time.Time `json:"resets_at"` // the next period's start
	Tokens   int64     `json:"tokens"`
	// CostUSD prices the tokens of the models in console.model_prices;
	// UnpricedModels have tokens but no price.
	CostUSD        float64  `json:"cost_usd"`
	UnpricedModels []string `json:"unpriced_models"`
	// Used is the share of the nearest limit used: 1 or more is used up.
	Used   float64 `json:"used"`
	UsedUp bool    `json:"used_up"`
}

func budgetJSONOf(r budgetRow) budgetJSON {
	b := r.Budget
	unpriced := r.Unpriced
	if unpriced == nil {
		unpriced = []string{}
	}
	return budgetJSON{ID: b.ID, Scope: b.Scope, Target: b.Target, TargetName: r.TargetName, Period: b.Period,
		MaxTokens: b.MaxTokens, MaxCostUSD: b.MaxCostUSD, Action: b.Action, FallbackModel: b.FallbackModel,
		CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt,
		Usage: budgetUsageJSON{From: r.From, ResetsAt: r.Until, Tokens: r.Tokens, CostUSD: r.CostUSD, UnpricedModels: unpriced,
			Used: r.Fraction(), UsedUp: r.UsedUp()}}
}

// budgetsResponse is the body of GET /api/v1/budgets.
type budgetsResponse struct {
	Budgets []budgetJSON `json:"budgets"`
}

// listBudgets serves GET /api/v1/budgets (every role): the budgets by
// scope, target, period and id, with their usage this period.
func (s *Server) listBudgets(c *gin.Context) {
	rows, err := s.budgetRows(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	out := budgetsResponse{Budgets: make([]budgetJSON, len(rows))}
	for i, r := range rows {
		out.Budgets[i] = budgetJSONOf(r)
	}
	s.writeJSON(c, http.StatusOK, out)
}

// budgetRequest is the body of POST /api/v1/budgets and PUT
// /api/v1/budgets/{id}.
type budgetRequest struct {
	Scope engine.BudgetScope `json:"scope"`
	// Target is an assistant's id or name, or "<platform>:<channel id>",
	// or "<platform>:<user id>".
	Target     string              `json:"target"`
	Period     engine.BudgetPeriod `json:"period"`
	MaxTokens  int64               `json:"max_tokens"`
	MaxCostUSD float64             `json:"max_cost_usd"`
	// Action is refuse (the default) or fallback, with FallbackModel.
	Action        engine.BudgetAction `json:"action"`
	FallbackModel string              `json:"fallback_model"`
}

var budgetForm = jsonForm{
	Example: `{"scope": "assistant", "target": "Helpdesk", "period": "day", "max_tokens": 200000, "action": "refuse"}`,
	Fields:  `"scope", "target", "period", "max_tokens", "max_cost_usd", "action" and "fallback_model"`,
	Hint:    `send the budget's "scope", "target", "period" and "max_tokens" or "max_cost_usd"`,
}

// readBudget reads the request body into b (keeping b's ID), resolving an
// assistant's name to its id, and validates it.
func (s *Server) readBudget(c *gin.Context, b *engine.Budget) error {
	var req budgetRequest
	if err := readJSON(c, 8<<10, &req, budgetForm); err != nil {
		return err
	}
	trim := func(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
	*b = engine.Budget{ID: b.ID, Scope: engine.BudgetScope(trim(string(req.Scope))), Target: strings.TrimSpace(req.Target),
		Period: engine.BudgetPeriod(trim(string(req.Period))), MaxTokens: req.MaxTokens, MaxCostUSD: req.MaxCostUSD,
		Action: engine.BudgetAction(trim(string(req.Action))), FallbackModel: req.FallbackModel}
	if b.Action == "" {
		b.Action = engine.BudgetRefuse
	}
	if err := b.Validate(); err != nil {
		return err
	}
	if b.Scope != engine.BudgetScopeAssistant {
		return nil
	}
	ctx := c.Request.Context()
	a, err := s.deps.Store.AssistantByID(ctx, b.Target)
	if engine.IsNotFound(err) {
		a, err = s.deps.Store.AssistantByName(ctx, b.Target)
	}
	switch {
	case engine.IsNotFound(err):
		return engine.Errorf(engine.EINVALID, "There is no assistant %q: give an assistant's id or name (GET /api/v1/assistants lists them).", b.Target)
	case err != nil:
		return engine.WrapError(engine.EUNAVAILABLE, err, "The assistants could not be loaded; please try again in a minute.")
	}
	b.Target = a.ID
	return nil
}

// savedBudget stores b, drops the console's cached usage and answers
// with the budget as saved, with its usage.
func (s *Server) savedBudget(c *gin.Context, b *engine.Budget, status int) {
	ctx := c.Request.Context()
	if err := s.deps.Store.SaveBudget(ctx, b); err != nil {
		s.fail(c, storeError(err, "The budget could not be saved; please try again in a minute."))
		return
	}
	setAuditTarget(c, b.ID)
	addAuditDetail(c, fmt.Sprintf("%s %s: %s budget of %s; %s", b.Scope, b.Target, b.Period.Adjective(), budgetLimits(b), b.Action))
	s.log.InfoContext(ctx, "budget saved", "budget_id", b.ID, "scope", b.Scope, "target", b.Target, "by_user_id", principalOf(c).User.ID)
	row := budgetRow{BudgetStatus: engine.BudgetStatus{Budget: b, From: b.Period.Start(s.now()), Until: b.Period.End(s.now()), Unpriced: []string{}}}
	if m, err := s.budgetMeter(); err == nil {
		m.Forget()
		if st, err := m.Status(ctx, b); err == nil {
			row.BudgetStatus = st
		}
	}
	if b.Scope == engine.BudgetScopeAssistant {
		if a, err := s.deps.Store.AssistantByID(ctx, b.Target); err == nil {
			row.TargetName = a.Name
		}
	}
	s.writeJSON(c, status, budgetJSONOf(row))
}

// budgetLimits writes a budget's limits: "200,000 tokens or $5.00".
func budgetLimits(b *engine.Budget) string {
	var parts []string
	if b.MaxTokens > 0 {
		parts = append(parts, engine.FormatTokens(b.MaxTokens)+" tokens")
	}
	if b.MaxCostUSD > 0 {
		parts = append(parts, engine.FormatUSD(b.MaxCostUSD))
	}
	return strings.Join(parts, " or ")
}

// createBudget serves POST /api/v1/budgets (admins): 201 with the budget.
func (s *Server) createBudget(c *gin.Context) {
	var b engine.Budget
	if err := s.readBudget(c, &b); err != nil {
		s.fail(c, err)
		return
	}
	s.savedBudget(c, &b, http.StatusCreated)
}

// budgetExists checks that the budget of the path exists.
func (s *Server) budgetExists(ctx context.Context, id string) error {
	list, err := s.deps.Store.ListBudgets(ctx)
	if err != nil {
		return engine.WrapError(engine.EUNAVAILABLE, err, "The budgets could not be loaded; please try again in a minute.")
	}
	for _, b := range list {
		if b.ID == id {
			return nil
		}
	}
	return engine.Errorf(engine.ENOTFOUND, "There is no budget with id %q: GET /api/v1/budgets lists them.", id)
}

// putBudget serves PUT /api/v1/budgets/{id} (admins): replaces every field
// of a budget; 200 with the budget as saved.
func (s *Server) putBudget(c *gin.Context) {
	b := engine.Budget{ID: c.Param("id")}
	err := s.readBudget(c, &b)
	if err == nil {
		err = s.budgetExists(c.Request.Context(), b.ID)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.savedBudget(c, &b, http.StatusOK)
}

// deleteBudget serves DELETE /api/v1/budgets/{id} (admins): 204.
func (s *Server) deleteBudget(c *gin.Context) {
	ctx := c.Request.Context()
	id := c.Param("id")
	err := s.deps.Store.DeleteBudget(ctx, id)
	switch {
	case engine.IsNotFound(err):
		s.fail(c, engine.Errorf(engine.ENOTFOUND, "There is no budget with id %q: GET /api/v1/budgets lists them.", id))
		return
	case err != nil:
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The budget could not be deleted; please try again in a minute."))
		return
	}
	if m, err := s.budgetMeter(); err == nil {
		m.Forget()
	}
	s.log.InfoContext(ctx, "budget deleted", "budget_id", id, "by_user_id", principalOf(c).User.ID)
	c.Status(http.StatusNoContent)
}
