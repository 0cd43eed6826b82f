package slack

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
)

// MustEvent stores an event as the HTTP path would and returns it and its
// message.
func MustEvent(t *testing.T, a *Adapter, db Store, id string, ev map[string]any) (*engine.InboxEvent, engine.Message) {
	t.Helper()
	var env envelope
	if err := json.Unmarshal(eventBody(id, ev), &env); err != nil {
		t.Fatal(err)
	}
	if err := a.accept(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	stored, err := db.Claim(context.Background(), "test", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var m engine.Message
	if err := json.Unmarshal(stored.Payload, &m); err != nil {
		t.Fatal(err)
	}
	return stored, m
}

func MustReplier(t *testing.T, a *Adapter, ev *engine.InboxEvent, m engine.Message) *replier {
	t.Helper()
	r, err := a.Replier(context.Background(), ev, m)
	if err != nil {
		t.Fatal(err)
	}
	return r.(*replier)
}

// streamAnswer sends text word by word, pausing between words.
func streamAnswer(t *testing.T, r engine.Replier, text string, pause time.Duration) {
	t.Helper()
	words := strings.SplitAfter(text, " ")
	so := ""
	for _, w := range words {
		so += w
		if err := r.Update(context.Background(), engine.Update{Delta: w, Text: so}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(pause)
	}
}

var answer = engine.Answer{
	Text:      "Deploy with **make deploy**, then check the [runbook](https://runbook.example/deploy) [1].",
	Citations: []engine.Citation{{Index: 1, Document: "ops.md", Title: "Operations", Section: "Deploy"}},
	TraceID:   "trace-1",
	Outcome:   engine.OutcomeAnswered,
}

// TestFallbackEditsAtMostOncePerInterval: without the streaming methods
// the answer is posted once and edited at most once per UpdateInterval,
// and ends as mrkdwn with citations and feedback buttons.
func TestFallbackEditsAtMostOncePerInterval(t *testing.T) {
	f := newFakeSlack(t)
	f.fail("chat.startStream", 200, "unknown_method", 0)
	db := MustStore(t)
	a := MustAdapter(t, f, db, func(c *Config) { c.UpdateInterval = 100 * time.Millisecond })
	ev, m := MustEvent(t, a, db, "Ev1", mention("<@UBOT> deploy?", "1700000000.000001", ""))
	r := MustReplier(t, a, ev, m)

	start := time.Now()
	streamAnswer(t, r, answer.Text, 25*time.Millisecond)
	elapsed := time.Since(start)
	if err := r.Finish(context.Background(), answer); err != nil {
		t.Fatal(err)
	}
	if n := f.count("chat.postMessage"); n != 1 {
		t.Errorf("chat.postMessage called %d times, want 1", n)
	}
	maxEdits := int(elapsed/(100*time.Millisecond)) + 1 // the streaming edits, plus the final one
	updates := f.callsOf("chat.update")
	if len(updates) == 0 || len(updates) > maxEdits {
		t.Errorf("chat.update called %d times in %v, want 1 to %d", len(updates), elapsed, maxEdits)
	}
	for i := 1; i < len(updates)-1; i++ {
		if gap := updates[i].At.Sub(updates[i-1].At); gap < 90*time.Millisecond {
			t.Errorf("edits %d and %d only %v apart", i-1, i, gap)
		}
	}
	msgs := f.posted()
	if len(msgs) != 1 {
		t.Fatalf("%d messages posted", len(msgs))
	}
	got := msgs[0]
	if got.Thread != "1700000000.000001" || got.Channel != "C1" {
		t.Errorf("posted in %s/%s, want the question's thread", got.Channel, got.Thread)
	}
	if want := "Deploy with *make deploy*, then check the <https://runbook.example/deploy|runbook> [1]."; got.Text != want {
		t.Errorf("final text %q, want %q", got.Text, want)
	}
	for _, want := range []string{`"type":"context"`, "Operations › Deploy", actionFeedbackUp, actionFeedbackDown, `"value":"trace-1"`} {
		if !strings.Contains(got.Blocks, want) {
			t.Errorf("final blocks lack %s: %s", want, got.Blocks)
		}
	}
	if !a.noStream.Load() {
		t.Error("unknown_method did not turn streaming off for the app")
	}
}

// TestStreams: with the streaming methods the answer is one stream,
// appended at most once per interval and stopped with the footer.
func TestStreams(t *testing.T) {
	f := newFakeSlack(t)
	db := MustStore(t)
	a := MustAdapter(t, f, db, func(c *Config) { c.UpdateInterval = 50 * time.Millisecond })
	ev, m := MustEvent(t, a, db, "Ev1", mention("<@UBOT> deploy?", "1700000000.000001", ""))
	r := MustReplier(t, a, ev, m)
	ans := answer
	ans.Text = "Deploy with make deploy. <!channel> will not be pinged, nor @here."
	streamAnswer(t, r, ans.Text, 20*time.Millisecond)
	if err := r.Finish(context.Background(), ans); err != nil {
		t.Fatal(err)
	}
	if f.count("chat.startStream") != 1 || f.count("chat.stopStream") != 1 || f.count("chat.postMessage") != 0 || f.count("chat.update") != 0 {
		t.Errorf("calls: start %d, append %d, stop %d, post %d, update %d; want one stream and no post or update",
			f.count("chat.startStream"), f.count("chat.appendStream"), f.count("chat.stopStream"), f.count("chat.postMessage"), f.count("chat.update"))
	}
	msgs := f.posted()
	if len(msgs) != 1 || !msgs[0].Stopped {
		t.Fatalf("messages %+v", msgs)
	}
	streamed := strings.Join(msgs[0].Streamed, "")
	if strings.ReplaceAll(streamed, "\u200b", "") != ans.Text {
		t.Errorf("streamed %q, want the answer %q", streamed, ans.Text)
	}
	if strings.Contains(streamed, "<!channel>") || strings.Contains(streamed, "@here") {
		t.Errorf("streamed text can ping: %q", streamed)
	}
	if !strings.Contains(msgs[0].Blocks, actionFeedbackUp) {
		t.Errorf("stopStream without feedback buttons: %s", msgs[0].Blocks)
	}
	out, err := db.Outbound(context.Background(), engine.PlatformSlack, "Ev1")
	if err != nil || len(out) != 1 || out[0].MessageID != msgs[0].TS {
		t.Errorf("outbox = %+v, %v; want the stream's ts", out, err)
	}
}

// TestSplitsLongAnswers: an answer longer than a message is split, never
// inside a code block, each part within the limit.
func TestSplitsLongAnswers(t *testing.T) {
	f := newFakeSlack(t)
	db := MustStore(t)
	a := MustAdapter(t, f, db, func(c *Config) { c.PartLimit = 300 })
	ev, m := MustEvent(t, a, db, "Ev1", mention("<@UBOT> everything", "1700000000.000001", ""))
	r := MustReplier(t, a, ev, m)
	var sb strings.Builder
	for i := range 12 {
		sb.WriteString("Paragraph with some words about deploying, number ")
		sb.WriteString(strings.Repeat("é", i))
		sb.WriteString(".\n\n")
		if i == 5 {
			sb.WriteString("```\n" + strings.Repeat("echo step\n", 30) + "```\n\n")
		}
	}
	ans := answer
	ans.Text = sb.String()
	streamAnswer(t, r, ans.Text, 0)
	if err := r.Finish(context.Background(), ans); err != nil {
		t.Fatal(err)
	}
	msgs := f.posted()
	if len(msgs) < 3 {
		t.Fatalf("%d messages, want the answer split", len(msgs))
	}
	for i, msg := range msgs {
		if n := utf8.RuneCountInString(msg.Text); n > 300 {
			t.Errorf("part %d has %d characters", i, n)
		}
		if strings.Count(msg.Text, "```")%2 != 0 {
			t.Errorf("part %d breaks a code block: %q", i, msg.Text)
		}
		if msg.Thread != "1700000000.000001" {
			t.Errorf("part %d not in the thread", i)
		}
	}
	if !strings.Contains(msgs[len(msgs)-1].Blocks, actionFeedbackUp) || strings.Contains(msgs[0].Blocks, actionFeedbackUp) {
		t.Error("the feedback buttons belong under the last part only")
	}
	out, _ := db.Outbound(context.Background(), engine.PlatformSlack, "Ev1")
	if len(out) != len(msgs) {
		t.Errorf("outbox has %d parts, posted %d", len(out), len(msgs))
	}
}

// TestRetryEditsInsteadOfPosting: a second attempt of the same event
// edits what the first posted, found in the outbox or, when the first
// crashed before recording it, by the message's metadata in the thread.
func TestRetryEditsInsteadOfPosting(t *testing.T) {
	for _, recorded := range []bool{true, false} {
		name := map[bool]string{true: "recorded", false: "not recorded"}[recorded]
		t.Run(name, func(t *testing.T) {
			f := newFakeSlack(t)
			f.fail("chat.startStream", 200, "unknown_method", 0)
			db := MustStore(t)
			var store Store = db
			if !recorded {
				store = forgetfulOutbox{db}
			}
			a := MustAdapter(t, f, store)
			ev, m := MustEvent(t, a, db, "Ev1", mention("<@UBOT> deploy?", "1700000000.000001", ""))
			first := MustReplier(t, a, ev, m)
			if err := first.Update(context.Background(), engine.Update{Text: "Deploy with"}); err != nil {
				t.Fatal(err)
			}
			// The first attempt dies here; the event is claimed again.
			ev.Attempts = 2
			second := MustReplier(t, a, ev, m)
			if err := second.Finish(context.Background(), answer); err != nil {
				t.Fatal(err)
			}
			if n := f.count("chat.postMessage"); n != 1 {
				t.Errorf("chat.postMessage called %d times, want 1", n)
			}
			msgs := f.posted()
			if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "make deploy") {
				t.Errorf("messages %+v, want the first edited into the answer", msgs)
			}
		})
	}
}

// forgetfulOutbox loses every record, as a crash right after posting would.
type forgetfulOutbox struct{ Store }

func (forgetfulOutbox) RecordOutbound(context.Context, *engine.OutboundMessage) error { return nil }
func (forgetfulOutbox) Outbound(context.Context, engine.Platform, string) ([]*engine.OutboundMessage, error) {
	return nil, nil
}

// TestRateLimited: a 429 is waited out (Retry-After) and the call made
// once more: one message, no storm.
func TestRateLimited(t *testing.T) {
	f := newFakeSlack(t)
	f.fail("chat.startStream", 200, "unknown_method", 0)
	f.fail("chat.postMessage", 429, "", 1)
	db := MustStore(t)
	a := MustAdapter(t, f, db)
	ev, m := MustEvent(t, a, db, "Ev1", mention("<@UBOT> deploy?", "1700000000.000001", ""))
	r := MustReplier(t, a, ev, m)
	start := time.Now()
	if err := r.Finish(context.Background(), answer); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("finished after %v, before the 1s Retry-After", d)
	}
	if n := f.count("chat.postMessage"); n != 2 {
		t.Errorf("chat.postMessage called %d times, want 2 (the 429 and the retry)", n)
	}
	if len(f.posted()) != 1 {
		t.Errorf("%d messages posted, want 1", len(f.posted()))
	}
}

func TestPermanentErrorIsNotRetried(t *testing.T) {
	f := newFakeSlack(t)
	f.fail("chat.startStream", 200, "unknown_method", 0)
	f.fail("chat.postMessage", 200, "channel_not_found", 0)
	db := MustStore(t)
	a := MustAdapter(t, f, db)
	ev, m := MustEvent(t, a, db, "Ev1", mention("<@UBOT> deploy?", "1700000000.000001", ""))
	err := MustReplier(t, a, ev, m).Finish(context.Background(), answer)
	if code := engine.ErrorCode(err); code != engine.EFORBIDDEN {
		t.Errorf("error %v (code %q), want %q", err, code, engine.EFORBIDDEN)
	}
}

// TestNoticeAndMentions: a failed turn shows its reason; mentions the
// model writes do not ping.
func TestNoticeAndMentions(t *testing.T) {
	f := newFakeSlack(t)
	f.fail("chat.startStream", 200, "unknown_method", 0)
	db := MustStore(t)
	a := MustAdapter(t, f, db)
	ev, m := MustEvent(t, a, db, "Ev1", mention("<@UBOT> deploy?", "1700000000.000001", ""))
	if err := MustReplier(t, a, ev, m).Finish(context.Background(), engine.Answer{
		Text: "Ask <!channel> or <@U123> or @everyone.", Outcome: engine.OutcomeInterrupted,
		Notice: "The answer was interrupted: the model stopped responding.",
	}); err != nil {
		t.Fatal(err)
	}
	text := f.posted()[0].Text
	for _, bad := range []string{"<!channel>", "<@U123>", "@everyone"} {
		if strings.Contains(text, bad) {
			t.Errorf("posted %q, which pings (%s)", text, bad)
		}
	}
	if !strings.Contains(text, "interrupted") {
		t.Errorf("posted %q without the notice", text)
	}
}

// TestWorkingStatus: a reaction on the question while working, removed
// at the end; in an assistant thread, the thread's status instead.
func TestWorkingStatus(t *testing.T) {
	f := newFakeSlack(t)
	f.fail("chat.startStream", 200, "unknown_method", 0)
	db := MustStore(t)
	a := MustAdapter(t, f, db)
	ev, m := MustEvent(t, a, db, "Ev1", mention("<@UBOT> deploy?", "1700000000.000001", ""))
	r := MustReplier(t, a, ev, m)
	if err := r.Status(context.Background(), "Searching the knowledge base…"); err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(context.Background(), answer); err != nil {
		t.Fatal(err)
	}
	adds, removes := f.callsOf("reactions.add"), f.callsOf("reactions.remove")
	if len(adds) != 1 || adds[0].Form["timestamp"] != "1700000000.000001" || adds[0].Form["name"] != workingReaction || len(removes) != 1 {
		t.Errorf("reactions add %+v remove %+v", adds, removes)
	}

	dm := map[string]any{"type": "message", "user": "U1", "text": "hi", "ts": "1700000000.000050", "thread_ts": "1700000000.000049",
		"channel": "D1", "channel_type": "im", "assistant_thread": map[string]any{"action_token": "x"}}
	ev, m = MustEvent(t, a, db, "Ev2", dm)
	r = MustReplier(t, a, ev, m)
	if err := r.Status(context.Background(), "is thinking…"); err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(context.Background(), answer); err != nil {
		t.Fatal(err)
	}
	st := f.callsOf("assistant.threads.setStatus")
	if len(st) != 2 || st[0].Form["status"] != "is thinking…" || st[1].Form["status"] != "" {
		t.Errorf("assistant status calls %+v, want set then cleared", st)
	}
}

// TestWorkerAnswersInThread runs the engine's worker over the adapter:
// the user's name is looked up, the thread the bot was called into is
// read as context, and the answer lands in the thread once.
func TestWorkerAnswersInThread(t *testing.T) {
	ctx := context.Background()
	f := newFakeSlack(t)
	f.fail("chat.startStream", 200, "unknown_method", 0)
	f.replies = []map[string]any{
		{"type": "message", "user": "U2", "text": "The deploy failed with exit code 137.", "ts": "1700000000.000010"},
		{"type": "message", "user": "U3", "text": "Probably memory: <@U2> raise the limit?", "ts": "1700000000.000011"},
		{"type": "message", "user": "U1", "text": "<@UBOT> what did we decide above?", "ts": "1700000000.000012", "thread_ts": "1700000000.000010"},
	}
	db := MustStore(t)
	if err := db.CreateAssistant(ctx, &engine.Assistant{Name: "ops", SystemPrompt: "Be brief.", IsDefault: true}); err != nil {
		t.Fatal(err)
	}
	a := MustAdapter(t, f, db)
	model := enginetest.NewModel(enginetest.Reply{Chunks: []string{"You decided ", "to raise the memory limit."}})
	eng, err := engine.New(engine.Config{}, engine.Deps{Assistants: db, Conversations: db, Traces: db, Model: model})
	if err != nil {
		t.Fatal(err)
	}
	w, err := engine.NewWorker(engine.WorkerConfig{}, engine.WorkerDeps{Inbox: db, Handler: eng, Repliers: map[engine.Platform]engine.ReplierFactory{engine.PlatformSlack: a}})
	if err != nil {
		t.Fatal(err)
	}
	h := a.Handler()
	body := eventBody("EvCtx", mention("<@UBOT> what did we decide above?", "1700000000.000012", "1700000000.000010"))
	if c := serve(h, request("/slack/events", "application/json", body, time.Now().Unix(), testSecret)).Code; c != 200 {
		t.Fatalf("status %d", c)
	}
	if worked, err := w.ProcessOne(ctx); !worked || err != nil {
		t.Fatalf("ProcessOne = %v, %v", worked, err)
	}
	msgs := f.posted()
	if len(msgs) != 1 || msgs[0].Thread != "1700000000.000010" || msgs[0].Text != "You decided to raise the memory limit." {
		t.Fatalf("posted %+v", msgs)
	}
	reqs := model.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d model requests", len(reqs))
	}
	system := reqs[0].Messages[0].Content
	for _, want := range []string{"user-u2: The deploy failed with exit code 137.", "user-u3: Probably memory: @U2 raise the limit?"} {
		if !strings.Contains(system, want) {
			t.Errorf("system prompt lacks the thread line %q:\n%s", want, system)
		}
	}
	if strings.Contains(system, "what did we decide above") {
		t.Error("the question itself is in the thread context")
	}
	convs, err := db.ListConversations(ctx, engine.ConversationFilter{Platform: engine.PlatformSlack})
	if err != nil || len(convs) != 1 {
		t.Fatalf("conversations %v, %v", convs, err)
	}
	turns, err := db.Turns(ctx, convs[0].ID, 0)
	if err != nil || len(turns) != 2 || turns[0].UserName != "user-u1" {
		t.Errorf("turns %+v, %v; want the question by user-u1 and the answer", turns, err)
	}
}

// TestDeadLetterIsVisible: when the worker gives up, the thread says so.
func TestDeadLetterIsVisible(t *testing.T) {
	ctx := context.Background()
	f := newFakeSlack(t)
	f.fail("chat.startStream", 200, "unknown_method", 0)
	db := MustStore(t)
	if err := db.CreateAssistant(ctx, &engine.Assistant{Name: "ops", IsDefault: true}); err != nil {
		t.Fatal(err)
	}
	a := MustAdapter(t, f, db)
	model := enginetest.NewModel(enginetest.Reply{Err: engine.Errorf(engine.EUNAVAILABLE, "The language model is unavailable.")})
	eng, err := engine.New(engine.Config{}, engine.Deps{Assistants: db, Conversations: db, Traces: db, Model: model})
	if err != nil {
		t.Fatal(err)
	}
	w, err := engine.NewWorker(engine.WorkerConfig{MaxAttempts: 1}, engine.WorkerDeps{Inbox: db, Handler: eng, Repliers: map[engine.Platform]engine.ReplierFactory{engine.PlatformSlack: a}})
	if err != nil {
		t.Fatal(err)
	}
	body := eventBody("EvDead", mention("<@UBOT> deploy?", "1700000000.000001", ""))
	serve(a.Handler(), request("/slack/events", "application/json", body, time.Now().Unix(), testSecret))
	if _, err := w.ProcessOne(ctx); err != nil {
		t.Fatal(err)
	}
	msgs := f.posted()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "could not answer this after several attempts") {
		t.Errorf("posted %+v, want one message saying the question will not be answered", msgs)
	}
}

// TestFirstWordsAreNotHeldBack: an update that has no whole word yet sends
// nothing, so it does not hold the next one back for UpdateInterval.
func TestFirstWordsAreNotHeldBack(t *testing.T) {
	f := newFakeSlack(t)
	db := MustStore(t)
	a := MustAdapter(t, f, db, func(c *Config) { c.UpdateInterval = time.Hour })
	ev, m := MustEvent(t, a, db, "EvFirst", mention("<@UBOT> deploy?", "1700000000.000001", ""))
	r := MustReplier(t, a, ev, m)
	for _, text := range []string{"Deploy", "Deploy with"} {
		if err := r.Update(context.Background(), engine.Update{Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.count("chat.startStream"); n != 1 {
		t.Fatalf("chat.startStream called %d times after the first whole word, want 1", n)
	}
}

// TestStatusNeverWaitsForARateLimit: the working reaction only decorates
// the answer, so a 429 on it is not waited out (and the next reaction in
// the channel is skipped while Slack asked to wait).
func TestStatusNeverWaitsForARateLimit(t *testing.T) {
	f := newFakeSlack(t)
	f.fail("reactions.add", 429, "", 30)
	db := MustStore(t)
	a := MustAdapter(t, f, db)
	for i, id := range []string{"EvS1", "EvS2"} {
		ts := "1700000000.00000" + strconv.Itoa(i+1)
		ev, m := MustEvent(t, a, db, id, mention("<@UBOT> deploy?", ts, ""))
		r := MustReplier(t, a, ev, m)
		start := time.Now()
		if err := r.Status(context.Background(), "Searching…"); err != nil {
			t.Fatalf("%s: a rate-limited status is an error: %v", id, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s: the status waited %v for Slack's Retry-After of 30s", id, d)
		}
	}
	if n := f.count("reactions.add"); n != 1 {
		t.Errorf("reactions.add called %d times, want 1 (the second skipped while the channel is rate-limited)", n)
	}
}
