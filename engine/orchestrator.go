package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// ModelExtractive is the model name reported by the zero-configuration
// responder, which quotes passages instead of running a language model.
const ModelExtractive = "extractive"

// Config tunes the engine. The zero value gets defaults from New.
type Config struct {
	MaxMessageBytes int           // inbound message limit; default 16 KiB
	HistoryTokens   int           // token budget of the history sent to the model; default 4000
	HistoryTurns    int           // turns loaded before trimming; default 40
	RetrievalLimit  int           // passages per turn unless the assistant says; default 5
	StallTimeout    time.Duration // no stream event for this long ends the answer; default 45s
	TurnTimeout     time.Duration // a whole turn's limit; default 3m
	MaxToolSteps    int           // model calls that may ask for tools in one turn; default 8
	ApprovalTTL     time.Duration // how long a tool approval waits for a decision; default 24h
	RateLimits      RateLimits    // per user, channel and assistant; zero: none
}

func (c *Config) setDefaults() {
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxToolSteps == 0 {
		c.MaxToolSteps = 8
	}
	if c.ApprovalTTL == 0 {
		c.ApprovalTTL = DefaultApprovalTTL
	}
	if c.HistoryTokens == 0 {
		c.HistoryTokens = 4000
	}
	if c.HistoryTurns == 0 {
		c.HistoryTurns = 40
	}
	if c.RetrievalLimit == 0 {
		c.RetrievalLimit = 5
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = 45 * time.Second
	}
	if c.TurnTimeout == 0 {
		c.TurnTimeout = 3 * time.Minute
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.MaxMessageBytes < 0:
		return Errorf(EINVALID, "engine: max message bytes must not be negative")
	case c.HistoryTokens < 0 || c.HistoryTurns < 0 || c.RetrievalLimit < 0:
		return Errorf(EINVALID, "engine: history and retrieval limits must not be negative")
	case c.StallTimeout < 0 || c.TurnTimeout < 0:
		return Errorf(EINVALID, "engine: timeouts must not be negative")
	}
	return nil
}

// Deps are the engine's collaborators. Retriever is optional.
type Deps struct {
	Assistants    AssistantStore
	Conversations ConversationStore
	Traces        TraceStore
	Model         LanguageModel
	Retriever     Retriever
	Tools         ToolSet        // nil: no tools
	ToolAudit     ToolAuditStore // records every tool call; nil: none
	Approvals     ApprovalStore  // keeps turns waiting for tool approvals; nil: "ask" tools cannot run
	Limiter       RateLimiter    // applies Config.RateLimits; nil: a LocalRateLimiter
	Budgets       *BudgetMeter   // token and cost budgets (budget.go); nil: none
	Logger        *slog.Logger
}

// Engine answers messages.
type Engine struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
}

// New returns an engine, or an error naming the missing dependency or bad setting.
func New(cfg Config, deps Deps) (*Engine, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Assistants == nil || deps.Conversations == nil || deps.Traces == nil || deps.Model == nil {
		return nil, Errorf(EINVALID, "engine: assistants, conversations, traces and model are required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if deps.Limiter == nil {
		deps.Limiter = &LocalRateLimiter{}
	}
	return &Engine{cfg: cfg, deps: deps, log: log.With("component", "engine")}, nil
}

// MaxMessageBytes is the configured inbound message limit.
func (e *Engine) MaxMessageBytes() int { return e.cfg.MaxMessageBytes }

// turn carries one Handle call's state.
type turn struct {
	msg       Message
	replier   Replier
	trace     *Trace
	assistant *Assistant
	conv      *Conversation
	passages  []Passage
	// searchErr is why the knowledge bases could not be searched.
	searchErr error
}

// status shows what the assistant is doing, when the replier can.
func (e *Engine) status(ctx context.Context, t *turn, status string) {
	if s, ok := t.replier.(StatusReporter); ok {
		if err := s.Status(ctx, status); err != nil {
			e.log.WarnContext(ctx, "show status", "trace_id", t.trace.ID, "error", err)
		}
	}
}

// Handle answers msg through r: it resolves the assistant, loads the thread's
// conversation, retrieves passages, streams the model's answer and records a
// trace. r.Finish is called exactly once, with the answer or with a notice
// saying why there is none, so the user never meets silence. The error is
// non-nil when the turn was rejected or failed; its code says why
// (EINVALID, ETOOLARGE, ENOTFOUND, EUNAVAILABLE, ETIMEOUT, EINTERNAL).
func (e *Engine) Handle(ctx context.Context, msg Message, r Replier) (*Answer, error) {
	now := time.Now()
	t := &turn{msg: msg, replier: r, trace: &Trace{
		ID:        NewID(),
		EventID:   msg.ID,
		Platform:  msg.Thread.Channel.Platform,
		ChannelID: msg.Thread.Channel.ID,
		UserID:    msg.User.ID,
		StartedAt: now,
		Passages:  []PassageRef{},
	}}
	if !msg.ReceivedAt.IsZero() && msg.ReceivedAt.Before(now) {
		t.trace.StartedAt = msg.ReceivedAt
		t.trace.AddStep(TraceStep{Name: StepReceived, StartedAt: msg.ReceivedAt, Duration: now.Sub(msg.ReceivedAt)})
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.TurnTimeout)
	defer cancel()

	if msg.Resume != nil {
		return e.resume(ctx, t)
	}
	if err := ValidateText(msg.Text, e.cfg.MaxMessageBytes); err != nil {
		return e.finish(ctx, t, Answer{Outcome: OutcomeRejected, Notice: ErrorMessage(err)}, err)
	}
	if err := e.resolve(ctx, t); err != nil {
		return e.finish(ctx, t, Answer{Outcome: outcomeOf(err), Notice: ErrorMessage(err)}, err)
	}
	if d, err := e.limit(ctx, t); err != nil {
		return e.finish(ctx, t, Answer{Outcome: OutcomeRateLimited, Notice: ErrorMessage(err), Silent: !d.Notify, RetryAfter: d.RetryAfter}, err)
	}
	if ans, err := e.budget(ctx, t); err != nil {
		return e.finish(ctx, t, ans, err)
	}

	done := t.trace.Step(StepHistory)
	history, err := e.deps.Conversations.Turns(ctx, t.conv.ID, e.cfg.HistoryTurns)
	if err == nil {
		// A retried event finds its own turns from the earlier attempt:
		// they are not history, and the question is not stored twice.
		asked := false
		kept := make([]*Turn, 0, len(history))
		for _, h := range history {
			if msg.ID != "" && h.EventID == msg.ID {
				asked = asked || h.Role == TurnUser
				continue
			}
			kept = append(kept, h)
		}
		history = TrimHistory(kept, e.cfg.HistoryTokens)
		if !asked {
			err = e.deps.Conversations.AddTurn(ctx, &Turn{
				ConversationID: t.conv.ID, Role: TurnUser, UserID: msg.User.ID, UserName: msg.User.Name,
				Content: msg.Text, EventID: msg.ID, TraceID: t.trace.ID,
			})
		}
	}
	done(fmt.Sprintf("%d turns", len(history)), err)
	if err != nil {
		err = WrapError(EUNAVAILABLE, err, "Your message could not be saved, so it was not answered; please try again in a minute.")
		return e.finish(ctx, t, Answer{Outcome: OutcomeFailed, Notice: ErrorMessage(err)}, err)
	}

	e.retrieve(ctx, t)
	return e.answer(ctx, t, history)
}

// resolve finds the assistant and the conversation of the turn.
func (e *Engine) resolve(ctx context.Context, t *turn) error {
	done := t.trace.Step(StepAssistant)
	err := e.resolveAssistant(ctx, t)
	detail := ""
	if t.assistant != nil {
		detail = t.assistant.Name
		t.trace.AssistantID, t.trace.AssistantName = t.assistant.ID, t.assistant.Name
	}
	done(detail, err)
	return err
}

func (e *Engine) resolveAssistant(ctx context.Context, t *turn) error {
	msg := t.msg
	if msg.ConversationID != "" {
		conv, err := e.deps.Conversations.ConversationByID(ctx, msg.ConversationID)
		if err != nil {
			if IsNotFound(err) {
				return Errorf(ENOTFOUND, "Conversation %q does not exist: leave conversation_id out to start a new one.", msg.ConversationID)
			}
			return WrapError(EUNAVAILABLE, err, "The conversation could not be loaded; please try again in a minute.")
		}
		t.conv = conv
		if msg.Assistant == "" {
			a, err := e.deps.Assistants.AssistantByID(ctx, conv.AssistantID)
			if err != nil {
				return WrapError(ENOTFOUND, err, "The assistant of this conversation no longer exists: start a new conversation.")
			}
			t.assistant = a
			t.trace.ConversationID = conv.ID
			return nil
		}
	}
	all, err := e.deps.Assistants.ListAssistants(ctx)
	if err != nil {
		return WrapError(EUNAVAILABLE, err, "The assistants could not be loaded; please try again in a minute.")
	}
	a, err := ResolveAssistant(all, msg.Thread.Channel, msg.Assistant)
	if err != nil {
		return err
	}
	t.assistant = a
	if t.conv != nil {
		if t.conv.AssistantID != a.ID {
			return Errorf(EINVALID, "Conversation %q belongs to another assistant: leave the assistant out, or leave conversation_id out to start a new conversation.", t.conv.ID)
		}
		t.trace.ConversationID = t.conv.ID
		return nil
	}
	threadID := msg.Thread.ID
	if threadID == "" {
		threadID = NewID()
	}
	conv := &Conversation{
		AssistantID: a.ID, Platform: msg.Thread.Channel.Platform, ChannelID: msg.Thread.Channel.ID,
		ThreadID: threadID, UserID: msg.User.ID, Title: titleOf(msg.Text),
	}
	if err := e.deps.Conversations.EnsureConversation(ctx, conv); err != nil {
		return WrapError(EUNAVAILABLE, err, "The conversation could not be saved; please try again in a minute.")
	}
	t.conv = conv
	t.trace.ConversationID = conv.ID
	return nil
}

// limit takes the turn's tokens from the rate limits of its user, channel
// and assistant; the error says which limit refused and when to try
// again. A limiter that fails lets the turn through (fail open): the
// limits protect the model's budget, not the data.
func (e *Engine) limit(ctx context.Context, t *turn) (RateDecision, error) {
	keys := e.cfg.RateLimits.keys(t.msg, t.assistant)
	if len(keys) == 0 {
		return RateDecision{Allowed: true}, nil
	}
	d, err := e.deps.Limiter.Take(ctx, keys)
	if err != nil {
		e.log.WarnContext(ctx, "rate limiter unavailable; not limiting", "trace_id", t.trace.ID, "error", err)
		return RateDecision{Allowed: true}, nil
	}
	if d.Allowed {
		return d, nil
	}
	wait := max(1, int(d.RetryAfter.Round(time.Second)/time.Second))
	var who string
	var rate Rate
	switch {
	case strings.HasPrefix(d.Key, "user:"):
		who, rate = "You are sending me messages faster than I can answer them", e.cfg.RateLimits.User
	case strings.HasPrefix(d.Key, "channel:"):
		who, rate = "This channel is sending me more messages than I can answer", e.cfg.RateLimits.Channel
	default:
		who, rate = fmt.Sprintf("%s is getting more questions than it may answer", t.assistant.Name), e.cfg.RateLimits.Assistant
	}
	e.log.InfoContext(ctx, "rate limited", "trace_id", t.trace.ID, "limit", d.Key, "rate", rate.String(), "retry_after_ms", d.RetryAfter.Milliseconds(), "notified", d.Notify)
	return d, Errorf(ERATELIMITED, "%s (at most %d every %s). Please wait %d seconds; until then I'll leave new messages unanswered.",
		who, rate.Limit, humanDuration(rate.Per), wait)
}

// humanDuration says "minute", "10 seconds", "hour".
func humanDuration(d time.Duration) string {
	switch {
	case d == time.Minute:
		return "minute"
	case d == time.Hour:
		return "hour"
	case d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return fmt.Sprintf("%d seconds", max(1, d/time.Second))
}

// retrieve searches the assistant's knowledge bases. A failed search is
// recorded and the turn goes on without passages.
func (e *Engine) retrieve(ctx context.Context, t *turn) {
	a := t.assistant
	if len(a.KnowledgeBases) == 0 || e.deps.Retriever == nil {
		return
	}
	e.status(ctx, t, "Searching the knowledge base…")
	settings := a.Retrieval
	if settings.Limit == 0 {
		settings.Limit = e.cfg.RetrievalLimit
	}
	done := t.trace.Step(StepRetrieval)
	res, err := e.deps.Retriever.Retrieve(ctx, RetrievalRequest{Query: t.msg.Text, KnowledgeBases: a.KnowledgeBases, Settings: settings})
	if err != nil {
		done("searched "+strings.Join(a.KnowledgeBases, ", "), err)
		e.log.WarnContext(ctx, "retrieve passages", "trace_id", t.trace.ID, "assistant", a.Name, "error", err)
		t.searchErr = err
		return
	}
	done(fmt.Sprintf("%d passages from %s (%s)", len(res.Passages), strings.Join(a.KnowledgeBases, ", "), res.Applied.Mode), nil)
	t.passages = res.Passages
	applied := res.Applied
	t.trace.Retrieval = &applied
	for _, p := range res.Passages {
		t.trace.Passages = append(t.trace.Passages, PassageRef{ID: p.ID, KnowledgeBase: p.KnowledgeBase, Document: p.Document, Title: p.Title, Score: p.Score})
	}
}

// answer runs the model and streams its answer to the replier.
func (e *Engine) answer(ctx context.Context, t *turn, history []*Turn) (*Answer, error) {
	a := t.assistant
	system, err := renderSystemPrompt(a, t.passages, t.msg.ThreadContext)
	if err != nil {
		return e.finish(ctx, t, Answer{Outcome: OutcomeFailed, Notice: ErrorMessage(err)}, err)
	}
	msgs := make([]ChatMessage, 0, len(history)+2)
	msgs = append(msgs, ChatMessage{Role: RoleSystem, Content: system})
	for _, h := range history {
		role := RoleUser
		if h.Role == TurnAssistant {
			role = RoleAssistant
		}
		msgs = append(msgs, ChatMessage{Role: role, Content: h.Content})
	}
	msgs = append(msgs, ChatMessage{Role: RoleUser, Content: t.msg.Text})
	req := ChatRequest{
		Model: a.Model, Messages: msgs, Temperature: a.Temperature, MaxTokens: a.MaxOutputTokens,
		Question: t.msg.Text, Passages: t.passages,
	}
	t.trace.Model = a.Model
	if t.trace.Model == "" {
		if n, ok := e.deps.Model.(ModelNamer); ok {
			t.trace.Model = n.DefaultModel()
		}
	}
	for _, m := range msgs {
		t.trace.TokensIn += EstimateTokens(m.Content)
	}

	req.Tools = e.offerTools(ctx, t)
	st := &loop{Model: req.Model, Temperature: req.Temperature, MaxTokens: req.MaxTokens, Question: req.Question, Passages: t.passages}
	e.status(ctx, t, "Writing the answer…")
	text, notice, ap, err := e.toolLoop(ctx, t, req, st)
	return e.conclude(ctx, t, "", text, notice, ap, err)
}

// offerTools returns the tools the assistant may call now: its allowlist
// as the tool set offers it, without the tools its policy denies.
func (e *Engine) offerTools(ctx context.Context, t *turn) []ToolSpec {
	a := t.assistant
	if e.deps.Tools == nil || len(a.Tools) == 0 {
		return nil
	}
	specs, err := e.deps.Tools.Tools(ctx, a)
	if err != nil {
		e.log.WarnContext(ctx, "some tools are unavailable; answering with the others", "trace_id", t.trace.ID, "error", err)
	}
	offered := specs[:0:0]
	for _, s := range specs {
		if a.ToolModeFor(s.Name) != ToolDeny {
			offered = append(offered, s)
		}
	}
	return offered
}

// conclude turns the tool loop's result into the answer, saves the
// assistant's turn and finishes. shown is the text an earlier part of the
// turn showed before it waited for an approval: it is part of the saved
// turn, not shown again.
func (e *Engine) conclude(ctx context.Context, t *turn, shown, text, notice string, ap *ToolApproval, err error) (*Answer, error) {
	ans := Answer{Text: text, Citations: citationsFor(shown+text, t.passages), Outcome: OutcomeAnswered}
	switch cause := context.Cause(ctx); {
	case err == nil:
	case errors.Is(cause, ErrShutdown):
		err = WrapError(EUNAVAILABLE, ErrShutdown, "The bot restarted while answering; the answer continues in a moment.")
	case errors.Is(cause, ErrStopping):
		err = WrapError(EUNAVAILABLE, ErrStopping, "The server stopped while answering; please ask again in a minute.")
	}
	switch {
	case err == nil && ap != nil:
		ans.Outcome, ans.Notice, ans.Approval = OutcomeAwaiting, approvalNotice(ap), ap
	case err == nil && notice != "":
		ans.Notice = notice
	case err != nil && strings.TrimSpace(text) != "":
		ans.Outcome, ans.Notice = OutcomeInterrupted, "The answer was interrupted: "+ErrorMessage(modelError(err))
	case err != nil:
		ans.Outcome, ans.Notice = OutcomeFailed, ErrorMessage(modelError(err))
	case t.trace.Model == ModelExtractive && t.searchErr != nil:
		// Quoting passages is all there is to do: wait for the index
		// (the event is retried, and the retry edits this notice).
		ans.Outcome, ans.Notice = OutcomeFailed, "The knowledge base cannot be searched right now; I'll answer as soon as it is back."
		err = WrapError(EUNAVAILABLE, t.searchErr, "%s", ans.Notice)
	case t.trace.Model == ModelExtractive && len(t.passages) == 0:
		ans.Outcome = OutcomeNoAnswer
	case t.trace.Model == ModelExtractive:
		ans.Outcome = OutcomeExtractive
	case strings.TrimSpace(text) == "":
		ans.Outcome, ans.Notice = OutcomeFailed, "The language model returned an empty answer; please rephrase the question or try again."
		err = Errorf(EUNAVAILABLE, "%s", ans.Notice)
	}
	if ans.Outcome == OutcomeFailed || ans.Outcome == OutcomeInterrupted {
		err = modelError(err)
	} else {
		err = nil
	}
	if t.searchErr != nil && ans.Notice == "" && ans.Outcome == OutcomeAnswered {
		ans.Notice = "The knowledge base could not be searched, so this answer does not draw on it."
	}
	if ans.Outcome != OutcomeFailed && ans.Outcome != OutcomeAwaiting {
		if serr := e.deps.Conversations.AddTurn(context.WithoutCancel(ctx), &Turn{
			ConversationID: t.conv.ID, Role: TurnAssistant, Content: shown + text, Citations: ans.Citations,
			EventID: t.msg.ID, TraceID: t.trace.ID, Outcome: ans.Outcome,
		}); serr != nil {
			e.log.ErrorContext(ctx, "save answer turn", "trace_id", t.trace.ID, "error", serr)
		}
	}
	return e.finish(ctx, t, ans, err)
}

// stream reads the model's events through the stall watchdog, forwarding
// text to the replier as it arrives.
func (e *Engine) stream(ctx context.Context, t *turn, req ChatRequest, prefix string) (string, []ToolCall, Usage, string, error) {
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := e.deps.Model.Stream(mctx, req)
	if err != nil {
		return "", nil, Usage{}, "", err
	}
	var (
		text      strings.Builder
		calls     []ToolCall
		usage     Usage
		model     string
		updateErr error
	)
	for ev := range WatchStream(mctx, events, e.cfg.StallTimeout, cancel) {
		if ev.Model != "" {
			model = ev.Model
		}
		switch ev.Kind {
		case EventText:
			if ev.Text == "" {
				continue
			}
			text.WriteString(ev.Text)
			if err := t.replier.Update(ctx, Update{Delta: ev.Text, Text: prefix + text.String()}); err != nil && updateErr == nil {
				updateErr = err
				e.log.WarnContext(ctx, "stream update", "trace_id", t.trace.ID, "error", err)
			}
		case EventUsage:
			usage = ev.Usage
		case EventWait:
			if ev.Wait >= time.Second {
				e.status(ctx, t, fmt.Sprintf("The language model is busy; trying again in %s…", ev.Wait.Round(time.Second)))
			}
		case EventToolCall:
			if ev.ToolCall != nil {
				calls = append(calls, *ev.ToolCall)
			}
		case EventError:
			return text.String(), calls, usage, model, ev.Err
		case EventDone:
			return text.String(), calls, usage, model, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return text.String(), calls, usage, model, WrapError(ETIMEOUT, err, "The answer took too long.")
	}
	return text.String(), calls, usage, model, Errorf(EUNAVAILABLE, "The language model's stream ended without finishing the answer.")
}

// maxToolFailures ends the tool loop: after this many steps in a row
// whose every call failed, the model answers without tools.
const maxToolFailures = 3

// loop is the tool loop's state. A turn that waits for an approval saves
// it in the approval (as JSON) and resumes from it.
type loop struct {
	Model       string        `json:"model,omitempty"`
	Temperature float64       `json:"temperature"`
	MaxTokens   int           `json:"max_tokens,omitempty"`
	Question    string        `json:"question"`
	Passages    []Passage     `json:"passages,omitempty"`
	Messages    []ChatMessage `json:"messages"`
	Shown       string        `json:"shown,omitempty"` // the answer's text shown before the wait
	Step        int           `json:"step"`
	Failures    int           `json:"failures"`
	ToolsOff    bool          `json:"tools_off,omitempty"`
	Notice      string        `json:"notice,omitempty"`
	UsageIn     int           `json:"usage_in"`
	UsageOut    int           `json:"usage_out"`
	// Results are the results of the last message's tool calls; nil for
	// the calls waiting for the approval.
	Results []*ToolResult `json:"results"`
}

// toolLoop calls the model and, while it asks for tools that were offered,
// runs them (in parallel when it asks for several) and gives it the
// results, up to MaxToolSteps model calls. The answer is the text of all
// the calls; notice says why the loop stopped early, if it did. When a
// call needs a person's approval, the other calls of the step run, the
// loop's state is saved in an approval and the loop returns it.
func (e *Engine) toolLoop(ctx context.Context, t *turn, req ChatRequest, st *loop) (text, notice string, ap *ToolApproval, err error) {
	if st.ToolsOff {
		req.Tools = nil
	}
	offered := make(map[string]bool, len(req.Tools))
	for _, spec := range req.Tools {
		offered[spec.Name] = true
	}
	var answer strings.Builder
	for {
		st.Step++
		done := t.trace.Step(StepModel)
		part, calls, usage, model, err := e.stream(ctx, t, req, answer.String())
		answer.WriteString(part)
		if model != "" {
			t.trace.Model = model
		}
		st.UsageIn += usage.InputTokens
		st.UsageOut += usage.OutputTokens
		if st.UsageIn > 0 {
			t.trace.TokensIn = st.UsageIn
		}
		t.trace.TokensOut = st.UsageOut
		if t.trace.TokensOut == 0 {
			t.trace.TokensOut = EstimateTokens(st.Shown + answer.String())
		}
		done(fmt.Sprintf("%d tokens in, %d out", t.trace.TokensIn, t.trace.TokensOut), err)
		if err != nil || len(calls) == 0 {
			return answer.String(), st.Notice, nil, err
		}
		if st.Step >= e.cfg.MaxToolSteps {
			return answer.String(), fmt.Sprintf("The assistant stopped after %d rounds of tool calls; the answer may be incomplete.", st.Step), nil, nil
		}
		req.Messages = append(req.Messages, ChatMessage{Role: RoleAssistant, Content: part, ToolCalls: calls})
		results, pending := e.runTools(ctx, t, calls, offered)
		if len(pending) > 0 {
			ap, err := e.suspend(ctx, t, req, st, calls, results, pending, answer.String())
			if err == nil {
				return answer.String(), "", ap, nil
			}
			e.log.ErrorContext(ctx, "tool approval not requested", "trace_id", t.trace.ID, "error", err)
			for _, i := range pending {
				results[i] = ToolResult{Content: fmt.Sprintf("The tool %q needs a person's approval, which could not be requested right now; answer without it.", calls[i].Name), IsError: true, Outcome: ToolError}
				e.audit(ctx, t, calls[i], results[i], 0)
			}
		}
		req.Tools = e.giveResults(&req, st, calls, results)
	}
}

// giveResults appends a step's results to the prompt and counts failed
// steps; after maxToolFailures failed steps in a row it returns no tools,
// so that the model answers with what it has.
func (e *Engine) giveResults(req *ChatRequest, st *loop, calls []ToolCall, results []ToolResult) []ToolSpec {
	allFailed := true
	for i, c := range calls {
		req.Messages = append(req.Messages, ChatMessage{Role: RoleTool, ToolCallID: c.ID, Content: results[i].Content})
		allFailed = allFailed && results[i].IsError
	}
	if allFailed {
		st.Failures++
	} else {
		st.Failures = 0
	}
	if st.Failures >= maxToolFailures {
		st.ToolsOff = true
		st.Notice = "The assistant's tools failed several times in a row, so it answered without them."
		return nil
	}
	return req.Tools
}

// suspend saves the turn in an approval for the calls at pending.
func (e *Engine) suspend(ctx context.Context, t *turn, req ChatRequest, st *loop, calls []ToolCall, results []ToolResult, pending []int, shown string) (*ToolApproval, error) {
	if e.deps.Approvals == nil {
		return nil, Errorf(EUNAVAILABLE, "no approval store is configured")
	}
	saved := *st
	saved.Messages = req.Messages
	saved.Shown = st.Shown + shown
	saved.Results = make([]*ToolResult, len(calls))
	waiting := make([]ToolCall, 0, len(pending))
	isPending := map[int]bool{}
	for _, i := range pending {
		isPending[i] = true
		waiting = append(waiting, calls[i])
	}
	for i := range calls {
		if !isPending[i] {
			r := results[i]
			saved.Results[i] = &r
		}
	}
	state, err := json.Marshal(&saved)
	if err != nil {
		return nil, WrapError(EINTERNAL, err, "encode the turn's state")
	}
	now := time.Now()
	ap := &ToolApproval{
		TraceID: t.trace.ID, EventID: t.msg.ID, AssistantID: t.assistant.ID, AssistantName: t.assistant.Name,
		ConversationID: t.conv.ID, Thread: t.msg.Thread, User: t.msg.User, Calls: waiting, State: state,
		Status: ApprovalPending, CreatedAt: now, ExpiresAt: now.Add(e.cfg.ApprovalTTL),
	}
	done := t.trace.Step(StepApproval)
	err = e.deps.Approvals.CreateApproval(ctx, ap)
	done("asked to approve "+ap.ToolNames(), err)
	if err != nil {
		return nil, err
	}
	e.supersede(ctx, t, ap)
	return ap, nil
}

// supersede expires the approvals an earlier attempt at the same event
// asked for: a retried turn asks again (its prompt replaces the earlier
// one in the chat), so the earlier requests can no longer be answered.
func (e *Engine) supersede(ctx context.Context, t *turn, ap *ToolApproval) {
	if t.msg.ID == "" {
		return
	}
	earlier, err := e.deps.Approvals.ListApprovals(ctx, ApprovalFilter{Status: ApprovalPending, EventID: t.msg.ID})
	if err != nil {
		e.log.WarnContext(ctx, "list earlier approvals of the event", "trace_id", t.trace.ID, "error", err)
		return
	}
	for _, old := range earlier {
		if old.ID == ap.ID {
			continue
		}
		if _, err := e.deps.Approvals.DecideApproval(ctx, old.ID, ApprovalExpired, "superseded by a retry", time.Now(), nil); err != nil && ErrorCode(err) != ECONFLICT {
			e.log.WarnContext(ctx, "expire a superseded approval", "trace_id", t.trace.ID, "approval_id", old.ID, "error", err)
		}
	}
}

// resume continues a turn whose tool approval was decided: the approved
// calls run (if the policy still allows them), rejected ones tell the
// model so, and the tool loop goes on from where it stopped. The answer is
// a new message in the thread.
func (e *Engine) resume(ctx context.Context, t *turn) (*Answer, error) {
	if e.deps.Approvals == nil {
		err := Errorf(EUNAVAILABLE, "Tool approvals are not available here.")
		return e.finish(ctx, t, Answer{Outcome: OutcomeFailed, Notice: ErrorMessage(err)}, err)
	}
	done := t.trace.Step(StepApproval)
	ap, err := e.deps.Approvals.ApprovalByID(ctx, t.msg.Resume.ApprovalID)
	switch {
	case IsNotFound(err):
		err = Errorf(ENOTFOUND, "The approval request no longer exists, so the answer cannot go on: ask again.")
	case err != nil:
		err = WrapError(EUNAVAILABLE, err, "The approval could not be loaded; the answer will go on in a minute.")
	case ap.Status != ApprovalApproved && ap.Status != ApprovalRejected:
		err = Errorf(ECONFLICT, "The request to run %s is %s, so the answer cannot go on.", ap.ToolNames(), ap.Status)
	}
	var st loop
	if err == nil {
		if jerr := json.Unmarshal(ap.State, &st); jerr != nil || len(st.Messages) == 0 {
			err = WrapError(EINTERNAL, jerr, "The saved state of this answer is unreadable: ask again.")
		}
	}
	if err == nil {
		t.conv, err = e.deps.Conversations.ConversationByID(ctx, ap.ConversationID)
		if err == nil {
			t.assistant, err = e.deps.Assistants.AssistantByID(ctx, ap.AssistantID)
		}
		if IsNotFound(err) {
			err = WrapError(ENOTFOUND, err, "The assistant or the conversation of this request no longer exists: ask again.")
		} else if err != nil {
			err = WrapError(EUNAVAILABLE, err, "The conversation could not be loaded; the answer will go on in a minute.")
		}
	}
	if err != nil {
		done("", err)
		return e.finish(ctx, t, Answer{Outcome: outcomeOf(err), Notice: ErrorMessage(err)}, err)
	}
	done(fmt.Sprintf("%s %s by %s after %s", ap.ToolNames(), ap.Status, ap.DecidedBy, ap.DecidedAt.Sub(ap.CreatedAt).Round(time.Second)), nil)
	t.trace.ConversationID, t.trace.AssistantID, t.trace.AssistantName = t.conv.ID, t.assistant.ID, t.assistant.Name
	// The budgets again: the answer goes on with the model (and the
	// approved tools), and a budget may have run out while the approval
	// waited. A refusal runs nothing; a fallback goes on with its model.
	asked := t.assistant
	if ans, err := e.budget(ctx, t); err != nil {
		return e.finish(ctx, t, ans, err)
	}
	if t.assistant != asked {
		st.Model = t.assistant.Model
	}
	t.trace.Model = st.Model
	t.passages = st.Passages
	for _, p := range st.Passages {
		t.trace.Passages = append(t.trace.Passages, PassageRef{ID: p.ID, KnowledgeBase: p.KnowledgeBase, Document: p.Document, Title: p.Title, Score: p.Score})
	}

	req := ChatRequest{Model: st.Model, Messages: st.Messages, Temperature: st.Temperature, MaxTokens: st.MaxTokens,
		Question: st.Question, Passages: st.Passages, Tools: e.offerTools(ctx, t)}
	offered := make(map[string]bool, len(req.Tools))
	for _, spec := range req.Tools {
		offered[spec.Name] = true
	}
	calls := st.Messages[len(st.Messages)-1].ToolCalls
	results := make([]ToolResult, len(calls))
	var approved []ToolCall
	var approvedAt []int
	for i, c := range calls {
		switch {
		case i < len(st.Results) && st.Results[i] != nil:
			results[i] = *st.Results[i]
		case ap.Status == ApprovalApproved:
			approved, approvedAt = append(approved, c), append(approvedAt, i)
		default:
			results[i] = ToolResult{Content: fmt.Sprintf("%s declined this call to %s: do not call it again for this request; answer without it or ask what to do instead.", ap.DecidedBy, c.Name),
				IsError: true, Outcome: ToolRejected}
			e.audit(ctx, t, c, results[i], 0)
		}
	}
	if len(approved) > 0 {
		ran, _ := e.runApproved(ctx, t, approved, offered)
		for j, i := range approvedAt {
			results[i] = ran[j]
		}
	}
	req.Tools = e.giveResults(&req, &st, calls, results)
	e.status(ctx, t, "Writing the answer…")
	text, notice, next, err := e.toolLoop(ctx, t, req, &st)
	return e.conclude(ctx, t, st.Shown, text, notice, next, err)
}

// audit records a tool call (ToolAudit), whatever its outcome.
func (e *Engine) audit(ctx context.Context, t *turn, c ToolCall, r ToolResult, d time.Duration) {
	if e.deps.ToolAudit == nil {
		return
	}
	rec := &ToolCallRecord{TraceID: t.trace.ID, AssistantID: t.assistant.ID, AssistantName: t.assistant.Name,
		Platform: t.msg.Thread.Channel.Platform, UserID: t.msg.User.ID, Tool: c.Name,
		ArgumentsHash: ArgumentsHash(c.Arguments), Outcome: r.Outcome, Duration: d}
	if err := e.deps.ToolAudit.RecordToolCall(context.WithoutCancel(ctx), rec); err != nil {
		e.log.ErrorContext(ctx, "record tool call", "trace_id", t.trace.ID, "tool", c.Name, "error", err)
	}
}

// runTools runs one step's calls, in parallel, in order of the results.
// Calls the policy denies (or that were not offered) get a denial; calls
// under "ask" do not run: their indices are returned as pending.
func (e *Engine) runTools(ctx context.Context, t *turn, calls []ToolCall, offered map[string]bool) ([]ToolResult, []int) {
	return e.run(ctx, t, calls, offered, false)
}

// runApproved runs calls a person approved (denials still apply).
func (e *Engine) runApproved(ctx context.Context, t *turn, calls []ToolCall, offered map[string]bool) ([]ToolResult, []int) {
	return e.run(ctx, t, calls, offered, true)
}

func (e *Engine) run(ctx context.Context, t *turn, calls []ToolCall, offered map[string]bool, approved bool) ([]ToolResult, []int) {
	results := make([]ToolResult, len(calls))
	var pending []int
	var wg sync.WaitGroup
	for i, c := range calls {
		mode := t.assistant.ToolModeFor(c.Name)
		switch {
		case mode == ToolDeny && slices.Contains(t.assistant.Tools, c.Name):
			results[i] = ToolResult{Content: fmt.Sprintf("The tool %q is denied by this assistant's policy; answer without it.", c.Name), IsError: true, Outcome: ToolDenied}
			e.audit(ctx, t, c, results[i], 0)
			continue
		case !offered[c.Name]:
			hint := "use one of the tools offered"
			if len(offered) == 0 {
				hint = "no tools are available now, so answer without them"
			}
			results[i] = ToolResult{Content: fmt.Sprintf("There is no tool named %q here; %s.", c.Name, hint), IsError: true, Outcome: ToolDenied}
			e.audit(ctx, t, c, results[i], 0)
			continue
		case mode == ToolAsk && !approved:
			pending = append(pending, i)
			continue
		}
		e.status(ctx, t, "Using "+c.Name+"…")
		wg.Go(func() {
			done := t.trace.Step(StepTools)
			start := time.Now()
			r := e.deps.Tools.Call(ctx, ToolInvocation{Assistant: t.assistant, User: t.msg.User, Thread: t.msg.Thread, TraceID: t.trace.ID, Call: c})
			took := time.Since(start)
			if r.Outcome == "" {
				r.Outcome = ToolOK
				if r.IsError {
					r.Outcome = ToolError
				}
			}
			var stepErr error
			if r.IsError {
				stepErr = errors.New(r.Outcome)
			}
			done(fmt.Sprintf("%s %s (arguments %s)", c.Name, r.Outcome, ArgumentsHash(c.Arguments)), stepErr)
			e.audit(ctx, t, c, r, took)
			results[i] = r
		})
	}
	wg.Wait()
	return results, pending
}

// finish delivers the answer (or the reason there is none), records the
// posted step and saves the trace. It runs even when ctx has ended.
func (e *Engine) finish(ctx context.Context, t *turn, ans Answer, err error) (*Answer, error) {
	ctx = context.WithoutCancel(ctx)
	if t.conv != nil {
		ans.ConversationID = t.conv.ID
	}
	ans.TraceID = t.trace.ID
	if ans.Citations == nil {
		ans.Citations = []Citation{}
	}
	done := t.trace.Step(StepPosted)
	ferr := t.replier.Finish(ctx, ans)
	done(string(ans.Outcome), ferr)

	t.trace.Outcome = ans.Outcome
	t.trace.Duration = time.Since(t.trace.StartedAt)
	if err != nil {
		t.trace.Error = err.Error()
	} else if ferr != nil {
		t.trace.Error = "post answer: " + ferr.Error()
	}
	if serr := e.deps.Traces.SaveTrace(ctx, t.trace); serr != nil {
		e.log.ErrorContext(ctx, "save trace", "trace_id", t.trace.ID, "error", serr)
	}
	if err == nil && ferr != nil {
		err = WrapError(EUNAVAILABLE, ferr, "The answer could not be posted.")
	}
	return &ans, err
}

func outcomeOf(err error) Outcome {
	switch ErrorCode(err) {
	case EINVALID, ETOOLARGE, ENOTFOUND, EFORBIDDEN, EUNAUTHORIZED:
		return OutcomeRejected
	}
	return OutcomeFailed
}

// ErrShutdown is the cause of a turn's context when the process stops
// before the turn could finish (Worker.ShutdownGrace): the partial answer
// is shown with a note and the event is handed back.
var ErrShutdown = errors.New("shutting down")

// ErrStopping is the cause of a turn's context when the server stops
// during a turn it will not hand back (an API request or a Playground
// stream): the partial answer is shown with a note to ask again.
var ErrStopping = errors.New("server stopping")

// modelError gives a model failure a code and a sentence a user can read.
func modelError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return WrapError(EUNAVAILABLE, err, "The language model is unavailable right now; please try again in a minute.")
}

var (
	citationRE   = regexp.MustCompile(`\[(\d{1,2})\]`)
	headingMarks = regexp.MustCompile(`(?m)^\s{0,3}#{1,6}\s+`)
)

// citationsFor lists the passages an answer cites with [n] markers, in order
// of first use; when it cites none, every passage it was given.
func citationsFor(text string, passages []Passage) []Citation {
	if len(passages) == 0 {
		return []Citation{}
	}
	var idx []int
	seen := map[int]bool{}
	for _, m := range citationRE.FindAllStringSubmatch(text, -1) {
		n, _ := strconv.Atoi(m[1])
		if n >= 1 && n <= len(passages) && !seen[n] {
			seen[n] = true
			idx = append(idx, n)
		}
	}
	if len(idx) == 0 {
		for i := range passages {
			idx = append(idx, i+1)
		}
	}
	sort.Ints(idx)
	out := make([]Citation, 0, len(idx))
	for _, n := range idx {
		p := passages[n-1]
		out = append(out, Citation{
			Index: n, PassageID: p.ID, KnowledgeBase: p.KnowledgeBase, Document: p.Document, Title: p.Title,
			Section: p.Section(), Snippet: Snippet(headingMarks.ReplaceAllString(p.Text, ""), 240),
		})
	}
	return out
}

// Section names where a passage sits in its document: its heading path,
// without the first heading when it only repeats the document's title.
func (p Passage) Section() string {
	path := p.HeadingPath
	if len(path) > 0 && strings.EqualFold(strings.TrimSpace(path[0]), strings.TrimSpace(p.Title)) {
		path = path[1:]
	}
	return strings.Join(path, " › ")
}

// Snippet shortens text to at most max runes on a word boundary, with an ellipsis.
func Snippet(text string, max int) string {
	text = strings.Join(strings.Fields(text), " ")
	if utf8.RuneCountInString(text) <= max {
		return text
	}
	r := []rune(text)[:max]
	s := string(r)
	if i := strings.LastIndexByte(s, ' '); i > max/2 {
		s = s[:i]
	}
	return strings.TrimRight(s, " ,.;:") + "…"
}

// titleOf names a conversation after its first message.
func titleOf(text string) string {
	return Snippet(text, 80)
}
