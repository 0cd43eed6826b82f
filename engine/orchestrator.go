package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
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
}

func (c *Config) setDefaults() {
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxToolSteps == 0 {
		c.MaxToolSteps = 8
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

	if err := ValidateText(msg.Text, e.cfg.MaxMessageBytes); err != nil {
		return e.finish(ctx, t, Answer{Outcome: OutcomeRejected, Notice: ErrorMessage(err)}, err)
	}
	if err := e.resolve(ctx, t); err != nil {
		return e.finish(ctx, t, Answer{Outcome: outcomeOf(err), Notice: ErrorMessage(err)}, err)
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

	if e.deps.Tools != nil && len(a.Tools) > 0 {
		specs, err := e.deps.Tools.Tools(ctx, a)
		if err != nil {
			e.log.WarnContext(ctx, "tools unavailable; answering without them", "trace_id", t.trace.ID, "error", err)
		}
		req.Tools = specs
	}

	e.status(ctx, t, "Writing the answer…")
	text, toolNotice, err := e.toolLoop(ctx, t, req)

	ans := Answer{Text: text, Citations: citationsFor(text, t.passages), Outcome: OutcomeAnswered}
	switch {
	case err == nil && toolNotice != "":
		ans.Notice = toolNotice
	case err != nil && strings.TrimSpace(text) != "":
		ans.Outcome, ans.Notice = OutcomeInterrupted, "The answer was interrupted: "+ErrorMessage(modelError(err))
	case err != nil:
		ans.Outcome, ans.Notice = OutcomeFailed, ErrorMessage(modelError(err))
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
	if ans.Outcome != OutcomeFailed {
		if serr := e.deps.Conversations.AddTurn(context.WithoutCancel(ctx), &Turn{
			ConversationID: t.conv.ID, Role: TurnAssistant, Content: text, Citations: ans.Citations,
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

// toolLoop calls the model and, while it asks for tools that were offered,
// runs them (in parallel when it asks for several) and gives it the
// results, up to MaxToolSteps model calls. The answer is the text of all
// the calls; notice says why the loop stopped early, if it did.
func (e *Engine) toolLoop(ctx context.Context, t *turn, req ChatRequest) (text, notice string, err error) {
	offered := make(map[string]bool, len(req.Tools))
	for _, spec := range req.Tools {
		offered[spec.Name] = true
	}
	var (
		answer   strings.Builder
		usageIn  int
		usageOut int
		failures int
	)
	for step := 1; ; step++ {
		done := t.trace.Step(StepModel)
		part, calls, usage, model, err := e.stream(ctx, t, req, answer.String())
		answer.WriteString(part)
		if model != "" {
			t.trace.Model = model
		}
		usageIn += usage.InputTokens
		usageOut += usage.OutputTokens
		if usageIn > 0 {
			t.trace.TokensIn = usageIn
		}
		t.trace.TokensOut = usageOut
		if t.trace.TokensOut == 0 {
			t.trace.TokensOut = EstimateTokens(answer.String())
		}
		done(fmt.Sprintf("%d tokens in, %d out", t.trace.TokensIn, t.trace.TokensOut), err)
		if err != nil || len(calls) == 0 {
			return answer.String(), notice, err
		}
		if len(req.Tools) == 0 || e.deps.Tools == nil {
			e.log.WarnContext(ctx, "model asked for tools that were not offered", "trace_id", t.trace.ID, "tool", calls[0].Name)
			return answer.String(), notice, nil
		}
		if step >= e.cfg.MaxToolSteps {
			return answer.String(), fmt.Sprintf("The assistant stopped after %d rounds of tool calls; the answer may be incomplete.", step), nil
		}
		results := e.runTools(ctx, t, calls, offered)
		req.Messages = append(req.Messages, ChatMessage{Role: RoleAssistant, Content: part, ToolCalls: calls})
		allFailed := true
		for i, c := range calls {
			req.Messages = append(req.Messages, ChatMessage{Role: RoleTool, ToolCallID: c.ID, Content: results[i].Content})
			allFailed = allFailed && results[i].IsError
		}
		if allFailed {
			failures++
		} else {
			failures = 0
		}
		if failures >= maxToolFailures {
			// Let the model answer with what it has, without tools.
			req.Tools = nil
			notice = "The assistant's tools failed several times in a row, so it answered without them."
		}
	}
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
func (e *Engine) runTools(ctx context.Context, t *turn, calls []ToolCall, offered map[string]bool) []ToolResult {
	results := make([]ToolResult, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		if !offered[c.Name] {
			results[i] = ToolResult{Content: fmt.Sprintf("There is no tool named %q here; use one of the tools offered.", c.Name), IsError: true, Outcome: ToolDenied}
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
	return results
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
