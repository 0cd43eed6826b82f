package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
	"github.com/convosphere/convosphere/store/sqlite"
)

// fixture is an engine on a real SQLite store with a scripted model.
type fixture struct {
	store     *sqlite.DB
	model     *enginetest.Model
	retriever *enginetest.Retriever
	engine    *engine.Engine
	assistant *engine.Assistant
}

func mustFixture(tb testing.TB, cfg engine.Config) *fixture {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(tb.TempDir(), "test.db")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	f := &fixture{store: st, model: enginetest.NewModel(), retriever: &enginetest.Retriever{Passages: []engine.Passage{
		{ID: "p1", KnowledgeBase: "docs", Document: "slack.md", Title: "Connect Slack", HeadingPath: []string{"Create the app"}, Text: "Create the Slack app from the manifest.", Score: 0.9},
		{ID: "p2", KnowledgeBase: "docs", Document: "discord.md", Title: "Connect Discord", Text: "Register the slash commands.", Score: 0.5},
	}}}
	f.assistant = &engine.Assistant{Name: "Guide", SystemPrompt: "You are the guide.", Temperature: 0.3, KnowledgeBases: []string{"docs"}, IsDefault: true}
	if err := f.assistant.Validate(); err != nil {
		tb.Fatal(err)
	}
	if err := st.CreateAssistant(ctx, f.assistant); err != nil {
		tb.Fatal(err)
	}
	f.engine, err = engine.New(cfg, engine.Deps{
		Assistants: st, Conversations: st, Traces: st, Model: f.model, Retriever: f.retriever,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

func slackMessage(thread, text string) engine.Message {
	return engine.Message{
		ID:         engine.NewID(),
		Thread:     engine.Thread{Channel: engine.Channel{Platform: engine.PlatformSlack, ID: "C1"}, ID: thread},
		User:       engine.ChatUser{ID: "U1", Name: "ada"},
		Text:       text,
		ReceivedAt: time.Now().Add(-20 * time.Millisecond),
	}
}

func TestHandleStreamsAnswerWithCitationsAndTrace(t *testing.T) {
	f := mustFixture(t, engine.Config{})
	f.model.Script(enginetest.Reply{Chunks: []string{"Create the app ", "from the manifest [1]."}, Usage: engine.Usage{InputTokens: 120, OutputTokens: 9}, Model: "gpt-test"})
	r := &enginetest.Replier{}
	ctx := context.Background()

	ans, err := f.engine.Handle(ctx, slackMessage("T1", "How do I connect Slack?"), r)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Text != "Create the app from the manifest [1]." || ans.Outcome != engine.OutcomeAnswered {
		t.Fatalf("answer = %+v", ans)
	}
	ups := r.Updates()
	if len(ups) != 2 || ups[0].Delta != "Create the app " || ups[1].Text != ans.Text {
		t.Fatalf("updates = %+v", ups)
	}
	if fin := r.Finished(); len(fin) != 1 || fin[0].Text != ans.Text {
		t.Fatalf("finished = %+v", fin)
	}
	if len(ans.Citations) != 1 || ans.Citations[0].Document != "slack.md" || ans.Citations[0].Section != "Create the app" {
		t.Fatalf("citations = %+v", ans.Citations)
	}
	if st := r.Statuses(); len(st) == 0 {
		t.Error("no status was shown while searching")
	}

	req := f.model.Requests()[0]
	if req.Messages[0].Role != engine.RoleSystem || !strings.Contains(req.Messages[0].Content, "You are the guide.") ||
		!strings.Contains(req.Messages[0].Content, "[1] Connect Slack › Create the app (slack.md)") {
		t.Errorf("system prompt lacks the assistant prompt or numbered passages:\n%s", req.Messages[0].Content)
	}
	if req.Temperature != 0.3 || req.Question != "How do I connect Slack?" || len(req.Passages) != 2 {
		t.Errorf("request = %+v", req)
	}

	tr, err := f.store.TraceByID(ctx, ans.TraceID)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Outcome != engine.OutcomeAnswered || tr.Model != "gpt-test" || tr.TokensIn != 120 || tr.TokensOut != 9 ||
		tr.AssistantName != "Guide" || tr.ConversationID != ans.ConversationID || len(tr.Passages) != 2 {
		t.Errorf("trace = %+v", tr)
	}
	if tr.Retrieval == nil || tr.Retrieval.Backend != "enginetest" || tr.Retrieval.Limit != 5 {
		t.Errorf("trace retrieval settings = %+v", tr.Retrieval)
	}
	var steps []string
	for _, s := range tr.Steps {
		steps = append(steps, s.Name)
	}
	if got := strings.Join(steps, ","); got != "received,assistant,history,retrieval,model,posted" {
		t.Errorf("trace steps = %s", got)
	}
	turns, err := f.store.Turns(ctx, ans.ConversationID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(turns) != 2 || turns[0].Role != engine.TurnUser || turns[1].Role != engine.TurnAssistant || len(turns[1].Citations) != 1 {
		t.Fatalf("turns = %+v", turns)
	}
}

func TestHandleKeepsThreadHistory(t *testing.T) {
	f := mustFixture(t, engine.Config{})
	ctx := context.Background()
	first, err := f.engine.Handle(ctx, slackMessage("T1", "first question"), &enginetest.Replier{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.engine.Handle(ctx, slackMessage("T1", "second question"), &enginetest.Replier{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := f.engine.Handle(ctx, slackMessage("T2", "other thread"), &enginetest.Replier{})
	if err != nil {
		t.Fatal(err)
	}
	if first.ConversationID != second.ConversationID || other.ConversationID == first.ConversationID {
		t.Fatalf("conversations: %s %s %s", first.ConversationID, second.ConversationID, other.ConversationID)
	}
	msgs := f.model.Requests()[1].Messages
	var roles []string
	for _, m := range msgs {
		roles = append(roles, string(m.Role)+":"+m.Content)
	}
	if len(msgs) != 4 || msgs[1].Content != "first question" || msgs[2].Content != "You asked: first question" || msgs[3].Content != "second question" {
		t.Fatalf("second request messages = %q", roles)
	}
	if n := len(f.model.Requests()[2].Messages); n != 2 {
		t.Fatalf("a new thread got %d messages, want system + question", n)
	}
}

func TestHandleRejectsBadInputAndStoresNothing(t *testing.T) {
	tests := []struct {
		name string
		msg  func(engine.Message) engine.Message
		code string
	}{
		{"empty", func(m engine.Message) engine.Message { m.Text = "  "; return m }, engine.EINVALID},
		{"too large", func(m engine.Message) engine.Message { m.Text = strings.Repeat("x", 2000); return m }, engine.ETOOLARGE},
		{"nul", func(m engine.Message) engine.Message { m.Text = "a\x00b"; return m }, engine.EINVALID},
		{"invalid utf-8", func(m engine.Message) engine.Message { m.Text = "\xff\xfe"; return m }, engine.EINVALID},
		{"unknown assistant", func(m engine.Message) engine.Message { m.Assistant = "Nobody"; return m }, engine.ENOTFOUND},
		{"unknown conversation", func(m engine.Message) engine.Message { m.ConversationID = "nope"; return m }, engine.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFixture(t, engine.Config{MaxMessageBytes: 1000})
			r := &enginetest.Replier{}
			ans, err := f.engine.Handle(context.Background(), tt.msg(slackMessage("T1", "hello")), r)
			if engine.ErrorCode(err) != tt.code {
				t.Fatalf("code = %q, want %q (%v)", engine.ErrorCode(err), tt.code, err)
			}
			fin := r.Finished()
			if len(fin) != 1 || fin[0].Outcome != engine.OutcomeRejected || fin[0].Notice == "" {
				t.Fatalf("the user was not told why: %+v", fin)
			}
			if ans.Notice != fin[0].Notice {
				t.Errorf("answer notice %q differs from the posted one %q", ans.Notice, fin[0].Notice)
			}
			convs, err := f.store.ListConversations(context.Background(), engine.ConversationFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(convs) != 0 || len(f.model.Requests()) != 0 {
				t.Fatalf("a rejected message stored %d conversations and called the model %d times", len(convs), len(f.model.Requests()))
			}
		})
	}
}

func TestHandleModelFailures(t *testing.T) {
	tests := []struct {
		name        string
		reply       enginetest.Reply
		outcome     engine.Outcome
		code        string
		partial     string
		noticeMatch string
	}{
		{"fails before answering", enginetest.Reply{Err: engine.Errorf(engine.EUNAVAILABLE, "The model is down.")}, engine.OutcomeFailed, engine.EUNAVAILABLE, "", "The model is down."},
		{"plain error gets a polite notice", enginetest.Reply{Err: errors.New("dial tcp 10.0.0.1:443: connection refused")}, engine.OutcomeFailed, engine.EUNAVAILABLE, "", "try again"},
		{"fails mid-stream", enginetest.Reply{Chunks: []string{"Half an "}, Err: errors.New("stream reset")}, engine.OutcomeInterrupted, engine.EUNAVAILABLE, "Half an ", "interrupted"},
		{"stalls", enginetest.Reply{Chunks: []string{"Start "}, Stall: true}, engine.OutcomeInterrupted, engine.ETIMEOUT, "Start ", "stopped sending"},
		{"empty answer", enginetest.Reply{}, engine.OutcomeFailed, engine.EUNAVAILABLE, "", "empty answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFixture(t, engine.Config{StallTimeout: 100 * time.Millisecond})
			f.model.Script(tt.reply)
			r := &enginetest.Replier{}
			ans, err := f.engine.Handle(context.Background(), slackMessage("T1", "question"), r)
			if engine.ErrorCode(err) != tt.code {
				t.Fatalf("code = %q, want %q (%v)", engine.ErrorCode(err), tt.code, err)
			}
			fin := r.Finished()
			if len(fin) != 1 || fin[0].Outcome != tt.outcome || fin[0].Text != tt.partial || !strings.Contains(fin[0].Notice, tt.noticeMatch) {
				t.Fatalf("finished = %+v", fin)
			}
			tr, err := f.store.TraceByID(context.Background(), ans.TraceID)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Outcome != tt.outcome || tr.Error == "" {
				t.Errorf("trace outcome %q error %q", tr.Outcome, tr.Error)
			}
			turns, _ := f.store.Turns(context.Background(), ans.ConversationID, 0)
			wantTurns := 1
			if tt.partial != "" {
				wantTurns = 2 // the partial answer is kept
			}
			if len(turns) != wantTurns {
				t.Errorf("stored %d turns, want %d", len(turns), wantTurns)
			}
		})
	}
}

// TestHandleModelWaitIsNotAStall: a provider that announces a wait before
// retrying (a rate limit's Retry-After) longer than the stall timeout is
// waited for, and the user sees why it takes long.
func TestHandleModelWaitIsNotAStall(t *testing.T) {
	f := mustFixture(t, engine.Config{StallTimeout: 300 * time.Millisecond})
	f.model.Script(enginetest.Reply{Wait: 1100 * time.Millisecond, Chunks: []string{"Here it is."}})
	r := &enginetest.Replier{}
	ans, err := f.engine.Handle(context.Background(), slackMessage("T1", "question"), r)
	if err != nil || ans.Outcome != engine.OutcomeAnswered || ans.Text != "Here it is." {
		t.Fatalf("answer %+v, error %v: the wait was taken for a stall", ans, err)
	}
	var told bool
	for _, s := range r.Statuses() {
		told = told || s == "The language model is busy; trying again in 1s…"
	}
	if !told {
		t.Errorf("statuses %q: the user is not told the model is busy", r.Statuses())
	}
}

func TestHandleRetrievalFailureStillAnswers(t *testing.T) {
	f := mustFixture(t, engine.Config{})
	f.retriever.Err = errors.New("index unavailable")
	ans, err := f.engine.Handle(context.Background(), slackMessage("T1", "question"), &enginetest.Replier{})
	if err != nil || ans.Outcome != engine.OutcomeAnswered {
		t.Fatalf("answer %+v, err %v", ans, err)
	}
	if ans.Notice != "The knowledge base could not be searched, so this answer does not draw on it." {
		t.Errorf("notice %q: the user is not told the answer lacks the knowledge base", ans.Notice)
	}
	tr, _ := f.store.TraceByID(context.Background(), ans.TraceID)
	var found bool
	for _, s := range tr.Steps {
		found = found || (s.Name == engine.StepRetrieval && s.Error != "")
	}
	if !found {
		t.Errorf("the retrieval failure is not in the trace: %+v", tr.Steps)
	}
}

func TestHandleExtractiveOutcomes(t *testing.T) {
	f := mustFixture(t, engine.Config{})
	f.model.Script(enginetest.Reply{Chunks: []string{"Quoted [1]."}, Model: engine.ModelExtractive})
	ans, err := f.engine.Handle(context.Background(), slackMessage("T1", "question"), &enginetest.Replier{})
	if err != nil || ans.Outcome != engine.OutcomeExtractive {
		t.Fatalf("outcome %q err %v", ans.Outcome, err)
	}
	f.retriever.Passages = nil
	f.model.Script(enginetest.Reply{Chunks: []string{"Nothing found."}, Model: engine.ModelExtractive})
	ans, err = f.engine.Handle(context.Background(), slackMessage("T2", "question"), &enginetest.Replier{})
	if err != nil || ans.Outcome != engine.OutcomeNoAnswer {
		t.Fatalf("outcome %q err %v", ans.Outcome, err)
	}
}

func TestHandleContinuesConversationByID(t *testing.T) {
	f := mustFixture(t, engine.Config{})
	ctx := context.Background()
	console := func(convID, assistant string) engine.Message {
		return engine.Message{ID: engine.NewID(), Text: "hi", ConversationID: convID, Assistant: assistant,
			Thread: engine.Thread{Channel: engine.Channel{Platform: engine.PlatformConsole, ID: "user:1"}}, User: engine.ChatUser{ID: "1"}}
	}
	first, err := f.engine.Handle(ctx, console("", ""), &enginetest.Replier{})
	if err != nil {
		t.Fatal(err)
	}
	next, err := f.engine.Handle(ctx, console(first.ConversationID, ""), &enginetest.Replier{})
	if err != nil || next.ConversationID != first.ConversationID {
		t.Fatalf("continued %q err %v", next.ConversationID, err)
	}
	other := &engine.Assistant{Name: "Other"}
	_ = other.Validate()
	if err := f.store.CreateAssistant(ctx, other); err != nil {
		t.Fatal(err)
	}
	_, err = f.engine.Handle(ctx, console(first.ConversationID, "Other"), &enginetest.Replier{})
	if engine.ErrorCode(err) != engine.EINVALID {
		t.Fatalf("switching assistant inside a conversation: %v", err)
	}
}

func TestHandleFinishFailureIsReported(t *testing.T) {
	f := mustFixture(t, engine.Config{})
	r := &enginetest.Replier{FailFinish: errors.New("platform down")}
	ans, err := f.engine.Handle(context.Background(), slackMessage("T1", "question"), r)
	if engine.ErrorCode(err) != engine.EUNAVAILABLE {
		t.Fatalf("err = %v, want unavailable so the job is retried", err)
	}
	tr, _ := f.store.TraceByID(context.Background(), ans.TraceID)
	if !strings.Contains(tr.Error, "platform down") {
		t.Errorf("trace error = %q", tr.Error)
	}
}

// TestRetryDoesNotRepeatTheQuestion: an event answered a second time (the
// worker retries after a failure) stores its question once, and the
// earlier attempt's turns are not sent as history.
func TestRetryDoesNotRepeatTheQuestion(t *testing.T) {
	ctx := context.Background()
	f := mustFixture(t, engine.Config{})
	f.model.Script(
		enginetest.Reply{Chunks: []string{"Partial "}, Err: engine.Errorf(engine.EUNAVAILABLE, "The model stopped.")},
		enginetest.Reply{Chunks: []string{"Complete answer."}},
	)
	msg := slackMessage("T-retry", "How do I connect Slack?")
	if _, err := f.engine.Handle(ctx, msg, &enginetest.Replier{}); err == nil {
		t.Fatal("the first attempt did not fail")
	}
	if _, err := f.engine.Handle(ctx, msg, &enginetest.Replier{}); err != nil {
		t.Fatal(err)
	}
	reqs := f.model.Requests()
	second := reqs[len(reqs)-1].Messages
	if n := len(second); n != 2 { // system prompt and the question
		t.Errorf("the retry sent %d messages, want the system prompt and the question only: %+v", n, second)
	}
	convs, err := f.store.ListConversations(ctx, engine.ConversationFilter{})
	if err != nil || len(convs) != 1 {
		t.Fatalf("conversations %v, %v", convs, err)
	}
	turns, err := f.store.Turns(ctx, convs[0].ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	questions := 0
	for _, tu := range turns {
		if tu.Role == engine.TurnUser {
			questions++
		}
	}
	if questions != 1 {
		t.Errorf("%d user turns stored for one question", questions)
	}
}

// Without a language model the answer is the passages: when the knowledge
// bases cannot be searched the turn fails with a notice and is retried.
func TestExtractiveWaitsForTheIndex(t *testing.T) {
	f := mustFixture(t, engine.Config{})
	f.model.Name = engine.ModelExtractive
	f.retriever.Err = errors.New("weaviate: connection refused")
	ans, err := f.engine.Handle(t.Context(), slackMessage("T1", "question"), &enginetest.Replier{})
	if engine.ErrorCode(err) != engine.EUNAVAILABLE || ans.Outcome != engine.OutcomeFailed ||
		ans.Notice != "The knowledge base cannot be searched right now; I'll answer as soon as it is back." {
		t.Fatalf("answer %+v, err %v; want failed (retried) with the notice", ans, err)
	}
}
