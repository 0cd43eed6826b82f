package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// convFixture is a conversation of the filter tests with how its turns
// ended and how they were rated.
type convFixture struct {
	platform engine.Platform
	outcomes []engine.Outcome // one trace each, in order
	ratings  []engine.Rating  // ratings of the first trace, one user each
}

// seedConversations stores the fixtures, in order, each with its traces,
// a question and (unless the trace failed or was rejected) an answer turn,
// and its ratings. It returns the stored conversations by fixture name.
func seedConversations(t *testing.T, s engine.Store, fixtures map[string]convFixture) map[string]*engine.Conversation {
	t.Helper()
	ctx := t.Context()
	names := make([]string, 0, len(fixtures))
	for name := range fixtures {
		names = append(names, name)
	}
	slices.Sort(names)
	start := time.Now().Add(-time.Hour)
	convs := map[string]*engine.Conversation{}
	for i, name := range names {
		fx := fixtures[name]
		c := &engine.Conversation{AssistantID: "A", Platform: fx.platform, ChannelID: "C-" + name, ThreadID: "T-" + name, UserID: "U-" + name}
		Must(t, s.EnsureConversation(ctx, c))
		for j, outcome := range fx.outcomes {
			tr := &engine.Trace{ConversationID: c.ID, Platform: fx.platform, Outcome: outcome,
				StartedAt: start.Add(time.Duration(i)*time.Minute + time.Duration(j)*time.Second)}
			Must(t, s.SaveTrace(ctx, tr))
			Must(t, s.AddTurn(ctx, &engine.Turn{ConversationID: c.ID, Role: engine.TurnUser, UserID: "U-" + name,
				UserName: "user " + name, Content: "question", TraceID: tr.ID}))
			if !outcome.IsError() || outcome == engine.OutcomeInterrupted {
				Must(t, s.AddTurn(ctx, &engine.Turn{ConversationID: c.ID, Role: engine.TurnAssistant, Content: "answer",
					TraceID: tr.ID, Outcome: outcome}))
			}
			if j == 0 {
				for k, r := range fx.ratings {
					Must(t, s.SaveFeedback(ctx, &engine.Feedback{TraceID: tr.ID, Platform: fx.platform,
						UserID: fmt.Sprintf("rater-%d", k), Rating: r}))
				}
			}
		}
		convs[name] = c
	}
	return convs
}

var filterFixtures = map[string]convFixture{
	"a-up":          {engine.PlatformSlack, []engine.Outcome{engine.OutcomeAnswered}, []engine.Rating{engine.RatingUp}},
	"b-down":        {engine.PlatformSlack, []engine.Outcome{engine.OutcomeAnswered, engine.OutcomeNoAnswer}, []engine.Rating{engine.RatingDown}},
	"c-failed":      {engine.PlatformDiscord, []engine.Outcome{engine.OutcomeAnswered, engine.OutcomeFailed}, nil},
	"d-interrupted": {engine.PlatformMattermost, []engine.Outcome{engine.OutcomeInterrupted}, []engine.Rating{engine.RatingUp, engine.RatingDown}},
	"e-quiet":       {engine.PlatformConsole, []engine.Outcome{engine.OutcomeExtractive, engine.OutcomeAwaiting}, nil},
	"f-rejected":    {engine.PlatformSlack, []engine.Outcome{engine.OutcomeRejected}, nil},
	"g-empty":       {engine.PlatformSlack, nil, nil},
}

func testConversationFilters(t *testing.T, s engine.Store) {
	ctx := t.Context()
	convs := seedConversations(t, s, filterFixtures)
	// A rated, failed trace of no conversation in the listing, and feedback
	// on it, must not count for any conversation.
	stray := &engine.Trace{ConversationID: "elsewhere", Platform: engine.PlatformSlack, Outcome: engine.OutcomeFailed}
	Must(t, s.SaveTrace(ctx, stray))
	Must(t, s.SaveFeedback(ctx, &engine.Feedback{TraceID: stray.ID, Platform: engine.PlatformSlack, UserID: "U", Rating: engine.RatingDown}))

	all, err := s.ListConversations(ctx, engine.ConversationFilter{})
	Must(t, err)
	MustEqual(t, "conversations", len(all), len(filterFixtures))
	nameOf := map[string]string{}
	for name, c := range convs {
		nameOf[c.ID] = name
	}
	names := func(list []*engine.Conversation) []string {
		out := make([]string, len(list))
		for i, c := range list {
			out[i] = nameOf[c.ID]
		}
		return out
	}
	// want keeps the listing's order (most recently updated first).
	want := func(keep ...string) []string {
		out := []string{}
		for _, n := range names(all) {
			if slices.Contains(keep, n) {
				out = append(out, n)
			}
		}
		return out
	}
	tests := []struct {
		name   string
		filter engine.ConversationFilter
		want   []string
	}{
		{"rated up", engine.ConversationFilter{Feedback: engine.RatedUp}, want("a-up", "d-interrupted")},
		{"rated down", engine.ConversationFilter{Feedback: engine.RatedDown}, want("b-down", "d-interrupted")},
		{"rated", engine.ConversationFilter{Feedback: engine.Rated}, want("a-up", "b-down", "d-interrupted")},
		{"not rated", engine.ConversationFilter{Feedback: engine.NotRated}, want("c-failed", "e-quiet", "f-rejected", "g-empty")},
		{"errors", engine.ConversationFilter{Errors: true}, want("c-failed", "d-interrupted", "f-rejected")},
		{"errors and rated down", engine.ConversationFilter{Errors: true, Feedback: engine.RatedDown}, want("d-interrupted")},
		{"errors on slack", engine.ConversationFilter{Errors: true, Platform: engine.PlatformSlack}, want("f-rejected")},
		{"not rated on slack", engine.ConversationFilter{Feedback: engine.NotRated, Platform: engine.PlatformSlack}, want("f-rejected", "g-empty")},
		{"rated, by channel", engine.ConversationFilter{Feedback: engine.Rated, ChannelID: "C-b-down"}, want("b-down")},
		{"rated, by user", engine.ConversationFilter{Feedback: engine.Rated, UserID: "U-e-quiet"}, want()},
		{"errors, limit", engine.ConversationFilter{Errors: true, Limit: 2}, want("c-failed", "d-interrupted", "f-rejected")[:2]},
		{"errors, offset", engine.ConversationFilter{Errors: true, Limit: 2, Offset: 2}, want("c-failed", "d-interrupted", "f-rejected")[2:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListConversations(ctx, tt.filter)
			Must(t, err)
			MustEqual(t, "ListConversations", names(got), tt.want)
		})
	}

	_, err = s.ListConversations(ctx, engine.ConversationFilter{Feedback: "sideways"})
	MustCode(t, err, engine.EINVALID)
	mustMessageNames(t, err, "sideways")
	now := time.Now()
	_, err = s.ListConversations(ctx, engine.ConversationFilter{Since: now, Until: now.Add(-time.Hour)})
	MustCode(t, err, engine.EINVALID)
}

func testConversationStats(t *testing.T, s engine.Store) {
	ctx := t.Context()
	convs := seedConversations(t, s, filterFixtures)
	ids := []string{"unknown"}
	for _, c := range convs {
		ids = append(ids, c.ID)
	}
	got, err := s.ConversationStats(ctx, ids)
	Must(t, err)
	wantStats := map[string]engine.ConversationStats{
		"a-up":          {Turns: 2, UserName: "user a-up", LastOutcome: engine.OutcomeAnswered, FeedbackUp: 1},
		"b-down":        {Turns: 4, UserName: "user b-down", LastOutcome: engine.OutcomeNoAnswer, FeedbackDown: 1},
		"c-failed":      {Turns: 3, UserName: "user c-failed", LastOutcome: engine.OutcomeFailed, Errors: 1},
		"d-interrupted": {Turns: 2, UserName: "user d-interrupted", LastOutcome: engine.OutcomeInterrupted, Errors: 1, FeedbackUp: 1, FeedbackDown: 1},
		"e-quiet":       {Turns: 4, UserName: "user e-quiet", LastOutcome: engine.OutcomeAwaiting},
		"f-rejected":    {Turns: 1, UserName: "user f-rejected", LastOutcome: engine.OutcomeRejected, Errors: 1},
		"g-empty":       {},
	}
	want := map[string]engine.ConversationStats{}
	for name, st := range wantStats {
		want[convs[name].ID] = st
	}
	MustEqual(t, "ConversationStats", got, want)

	none, err := s.ConversationStats(ctx, nil)
	Must(t, err)
	MustEqual(t, "stats of no conversation", len(none), 0)

	// More ids than one query takes at once.
	many := make([]string, 0, 1200)
	for i := range 1200 {
		many = append(many, fmt.Sprintf("missing-%d", i))
	}
	many = append(many, convs["a-up"].ID)
	got, err = s.ConversationStats(ctx, many)
	Must(t, err)
	MustEqual(t, "stats of many ids", got, map[string]engine.ConversationStats{convs["a-up"].ID: wantStats["a-up"]})
}

func testConversationFeedback(t *testing.T, s engine.Store) {
	ctx := t.Context()
	conv := &engine.Conversation{Platform: engine.PlatformSlack, ChannelID: "C1", ThreadID: "T1"}
	Must(t, s.EnsureConversation(ctx, conv))
	first := &engine.Trace{ConversationID: conv.ID, Platform: engine.PlatformSlack, Outcome: engine.OutcomeAnswered}
	second := &engine.Trace{ConversationID: conv.ID, Platform: engine.PlatformSlack, Outcome: engine.OutcomeAnswered}
	other := &engine.Trace{ConversationID: "other", Platform: engine.PlatformSlack, Outcome: engine.OutcomeAnswered}
	for _, tr := range []*engine.Trace{first, second, other} {
		Must(t, s.SaveTrace(ctx, tr))
	}
	base := time.Now().Add(-time.Hour)
	late := mustFeedback(t, s, &engine.Feedback{TraceID: first.ID, Platform: engine.PlatformSlack, UserID: "U1",
		Rating: engine.RatingDown, Comment: "Outdated.", CreatedAt: base.Add(2 * time.Second)})
	early := mustFeedback(t, s, &engine.Feedback{TraceID: second.ID, Platform: engine.PlatformSlack, UserID: "U2",
		Rating: engine.RatingUp, CreatedAt: base})
	mustFeedback(t, s, &engine.Feedback{TraceID: other.ID, Platform: engine.PlatformSlack, UserID: "U1", Rating: engine.RatingUp})

	got, err := s.ConversationFeedback(ctx, conv.ID)
	Must(t, err)
	MustEqual(t, "ConversationFeedback (oldest first)", got, []*engine.Feedback{early, late})
	got, err = s.ConversationFeedback(ctx, "nope")
	Must(t, err)
	MustEqual(t, "feedback of an unknown conversation", len(got), 0)
}

func testToolCallsByTrace(t *testing.T, s engine.Store) {
	ctx := t.Context()
	for i, trace := range []string{"tr-a", "tr-b", "tr-a"} {
		Must(t, s.RecordToolCall(ctx, &engine.ToolCallRecord{TraceID: trace, AssistantID: "A1", AssistantName: "ops",
			Platform: engine.PlatformSlack, UserID: "U1", Tool: fmt.Sprintf("files__tool%d", i), ArgumentsHash: "abc",
			Outcome: engine.ToolOK, Duration: time.Second}))
		time.Sleep(2 * time.Millisecond)
	}
	got, err := s.ListToolCalls(ctx, engine.ToolCallFilter{TraceID: "tr-a"})
	Must(t, err)
	if len(got) != 2 || got[0].Tool != "files__tool2" || got[1].Tool != "files__tool0" {
		t.Fatalf("tool calls of trace tr-a: %+v", got)
	}
	got, err = s.ListToolCalls(ctx, engine.ToolCallFilter{TraceID: "tr-none"})
	Must(t, err)
	MustEqual(t, "tool calls of a trace without any", len(got), 0)
}
