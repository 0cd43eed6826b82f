package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
)

// failingLimiter is a limiter whose backend is down.
type failingLimiter struct{}

func (failingLimiter) Take(context.Context, []engine.RateKey) (engine.RateDecision, error) {
	return engine.RateDecision{}, engine.Errorf(engine.EUNAVAILABLE, "Redis is unavailable")
}

func TestRateLimitsTellTheUserOnce(t *testing.T) {
	f := mustFixture(t, engine.Config{RateLimits: engine.RateLimits{User: engine.Rate{Limit: 2, Per: time.Minute}}})
	ctx := context.Background()
	type result struct {
		outcome engine.Outcome
		silent  bool
		code    string
	}
	var got []result
	for i := range 4 {
		r := &enginetest.Replier{}
		ans, err := f.engine.Handle(ctx, slackMessage("T-limit", "question "+string(rune('a'+i))), r)
		got = append(got, result{ans.Outcome, ans.Silent, engine.ErrorCode(err)})
		if len(r.Finished()) != 1 {
			t.Fatalf("message %d: Finish called %d times, want once", i+1, len(r.Finished()))
		}
		if i == 2 {
			n := ans.Notice
			if !strings.Contains(n, "faster than I can answer") || !strings.Contains(n, "at most 2 every minute") || !strings.Contains(n, "Please wait") {
				t.Errorf("notice = %q", n)
			}
			if ans.RetryAfter <= 0 || ans.RetryAfter > 30*time.Second+time.Second {
				t.Errorf("RetryAfter = %v, want up to 30s (one token at 2/min)", ans.RetryAfter)
			}
		}
	}
	want := []result{
		{engine.OutcomeAnswered, false, ""},
		{engine.OutcomeAnswered, false, ""},
		{engine.OutcomeRateLimited, false, engine.ERATELIMITED}, // the notice
		{engine.OutcomeRateLimited, true, engine.ERATELIMITED},  // silent
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d: %+v, want %+v", i+1, got[i], want[i])
		}
	}
	// Refused messages are traced (the console shows them) but not stored
	// as turns or sent to the model.
	turns, err := f.store.Turns(ctx, mustConversation(t, f, "T-limit").ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(turns) != 4 { // two questions, two answers
		t.Errorf("%d turns stored, want 4", len(turns))
	}
	if n := len(f.model.Requests()); n != 2 {
		t.Errorf("model called %d times, want 2", n)
	}
	// Another user in the same channel is not limited.
	msg := slackMessage("T-limit", "mine")
	msg.User.ID = "U2"
	if ans, err := f.engine.Handle(ctx, msg, &enginetest.Replier{}); err != nil || ans.Outcome != engine.OutcomeAnswered {
		t.Errorf("another user: %+v, %v", ans, err)
	}
}

func TestRateLimitsPerChannelAndAssistant(t *testing.T) {
	tests := []struct {
		name   string
		limits engine.RateLimits
		vary   func(m *engine.Message, i int) // makes the messages differ in everything but the limited key
		notice string
	}{
		{"channel", engine.RateLimits{Channel: engine.Rate{Limit: 1, Per: time.Hour}},
			func(m *engine.Message, i int) { m.User.ID = "U" + string(rune('a'+i)) }, "This channel is sending me more messages"},
		{"assistant", engine.RateLimits{Assistant: engine.Rate{Limit: 1, Per: 10 * time.Second}},
			func(m *engine.Message, i int) {
				m.User.ID = "U" + string(rune('a'+i))
				m.Thread.Channel.ID = "C" + string(rune('a'+i))
			}, "Guide is getting more questions than it may answer (at most 1 every 10 seconds)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFixture(t, engine.Config{RateLimits: tt.limits})
			var last *engine.Answer
			for i := range 2 {
				m := slackMessage("", "hello")
				tt.vary(&m, i)
				last, _ = f.engine.Handle(t.Context(), m, &enginetest.Replier{})
			}
			if last.Outcome != engine.OutcomeRateLimited || !strings.Contains(last.Notice, tt.notice) {
				t.Fatalf("second message: %s %q, want rate_limited with %q", last.Outcome, last.Notice, tt.notice)
			}
		})
	}
}

// A limiter that fails lets messages through (fail open).
func TestRateLimiterDownFailsOpen(t *testing.T) {
	f := mustFixture(t, engine.Config{})
	e, err := engine.New(engine.Config{RateLimits: engine.RateLimits{User: engine.Rate{Limit: 1, Per: time.Hour}}}, engine.Deps{
		Assistants: f.store, Conversations: f.store, Traces: f.store, Model: f.model, Limiter: failingLimiter{},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if ans, err := e.Handle(t.Context(), slackMessage("T-open", "hi"), &enginetest.Replier{}); err != nil || ans.Outcome != engine.OutcomeAnswered {
			t.Fatalf("message %d with the limiter down: %+v, %v", i+1, ans, err)
		}
	}
}

func mustConversation(tb testing.TB, f *fixture, thread string) *engine.Conversation {
	tb.Helper()
	c, err := f.store.ConversationByThread(tb.Context(), engine.PlatformSlack, "C1", thread)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
