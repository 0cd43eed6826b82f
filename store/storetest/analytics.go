package storetest

import (
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// AnalyticsSeed is what SeedAnalytics stored: the range its turns fall
// in and the conversation ids of the questions, by name ("vpn" and
// "office").
type AnalyticsSeed struct {
	Range         engine.AnalyticsRange // [Day, Day+4d)
	Conversations map[string]string     // "slack-c1", "slack-c2", "discord-c3", "console-c4", "mattermost-c5", "console-c6"
}

// SeedXSS is the payload SeedAnalytics puts in an assistant name, a
// channel, a user and a question, for the console's escaping tests.
const SeedXSS = `<script>alert(1)</script>`

// SeedAnalytics stores eleven turns over the four UTC days from day
// (midnight UTC; nothing on day+2), with their feedback and questions, and
// traces just outside that range and one waiting for an approval, which
// the analytics leave out. The numbers the analytics give for it are
// spelled out in testAnalytics.
func SeedAnalytics(tb testing.TB, s engine.Store, day time.Time) AnalyticsSeed {
	tb.Helper()
	ctx := tb.Context()
	day = day.UTC().Truncate(24 * time.Hour)
	seed := AnalyticsSeed{Range: engine.AnalyticsRange{From: day, To: day.AddDate(0, 0, 4)},
		Conversations: map[string]string{}}
	conv := func(name string, platform engine.Platform, channel string) string {
		if id := seed.Conversations[name]; id != "" {
			return id
		}
		c := &engine.Conversation{Platform: platform, ChannelID: channel, ThreadID: name}
		Must(tb, s.EnsureConversation(ctx, c))
		seed.Conversations[name] = c.ID
		return c.ID
	}
	ms := time.Millisecond
	at := func(d int, hhmm string) time.Time {
		t, err := time.Parse("15:04", hhmm)
		Must(tb, err)
		return day.AddDate(0, 0, d).Add(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute)
	}
	const (
		slack, discord, mattermost, console = engine.PlatformSlack, engine.PlatformDiscord, engine.PlatformMattermost, engine.PlatformConsole
		helpdesk, ops                       = "asst-helpdesk", "asst-ops"
	)
	type turn struct {
		id                   string
		at                   time.Time
		platform             engine.Platform
		conv                 string
		assistant, name      string
		channel, user, model string
		in, out              int
		outcome              engine.Outcome
		duration             time.Duration
		question             string
	}
	vpn := "How do I reset my VPN?"
	turns := []turn{
		{"t01", at(0, "10:00"), slack, "slack-c1", helpdesk, "Helpdesk", "C1", "U1", "gpt-4o", 100, 50, engine.OutcomeAnswered, 1000 * ms, "What is the leave policy?"},
		{"t02", at(0, "10:05"), slack, "slack-c1", helpdesk, "Helpdesk", "C1", "U1", "gpt-4o", 200, 100, engine.OutcomeAnswered, 2000 * ms, ""},
		{"t03", at(0, "11:00"), slack, "slack-c2", helpdesk, "Helpdesk", "C2", "U2", "gpt-4o-mini", 300, 0, engine.OutcomeFailed, 3000 * ms, vpn},
		{"t04", at(0, "12:00"), discord, "discord-c3", ops, "Ops", "D1", "U3", engine.ModelExtractive, 0, 0, engine.OutcomeExtractive, 400 * ms, ""},
		{"t05", at(0, "13:00"), console, "console-c4", ops, "Ops", SeedXSS, "u-ada", "gpt-4o", 50, 25, engine.OutcomeNoAnswer, 500 * ms, "how do I   reset my vpn"},
		{"t06", at(1, "09:00"), slack, "slack-c1", helpdesk, "Helpdesk", "C1", "U1", "gpt-4o", 100, 100, engine.OutcomeInterrupted, 6000 * ms, ""},
		{"t07", at(1, "09:30"), mattermost, "mattermost-c5", helpdesk, "Helpdesk", "M1", "U4", "gpt-4o-mini", 10, 10, engine.OutcomeAnswered, 700 * ms, ""},
		{"t08", at(1, "09:31"), mattermost, "mattermost-c5", helpdesk, "Helpdesk", "M1", "U4", "gpt-4o-mini", 10, 10, engine.OutcomeRejected, 100 * ms, ""},
		{"t09", at(1, "23:59"), slack, "slack-c2", helpdesk, "Helpdesk " + SeedXSS, "C2", "U2", "gpt-4o", 0, 0, engine.OutcomeNoAnswer, 900 * ms, vpn},
		{"t10", at(3, "08:00"), discord, "discord-c3", ops, "Ops", "D1", "U3", engine.ModelExtractive, 0, 0, engine.OutcomeNoAnswer, 300 * ms, "Where is the " + SeedXSS + " office?"},
		{"t11", at(3, "08:01"), console, "console-c6", "", "", "playground", SeedXSS, "", 0, 0, engine.OutcomeRejected, 10 * ms, ""},
		// Left out: before the range, at its end, waiting for an approval.
		{"x1", day.Add(-time.Microsecond), slack, "slack-c2", helpdesk, "Helpdesk", "C2", "U2", "gpt-4o", 1000, 1000, engine.OutcomeFailed, 9000 * ms, vpn},
		{"x2", seed.Range.To, slack, "slack-c2", helpdesk, "Helpdesk", "C2", "U2", "gpt-4o", 1000, 1000, engine.OutcomeNoAnswer, 9000 * ms, vpn},
		{"x3", at(1, "10:00"), slack, "slack-c1", helpdesk, "Helpdesk", "C1", "U1", "gpt-4o", 1000, 1000, engine.OutcomeAwaiting, 9000 * ms, ""},
	}
	for _, tt := range turns {
		convID := conv(tt.conv, tt.platform, tt.channel)
		tr := &engine.Trace{ID: tt.id, ConversationID: convID, AssistantID: tt.assistant, AssistantName: tt.name,
			Platform: tt.platform, ChannelID: tt.channel, UserID: tt.user, Model: tt.model, TokensIn: tt.in, TokensOut: tt.out,
			Outcome: tt.outcome, StartedAt: tt.at, Duration: tt.duration}
		Must(tb, s.SaveTrace(ctx, tr))
		if tt.question != "" {
			Must(tb, s.AddTurn(ctx, &engine.Turn{ConversationID: convID, Role: engine.TurnUser, UserID: tt.user,
				Content: tt.question, TraceID: tt.id}))
			// The answer's turn carries the trace too; only the question counts.
			Must(tb, s.AddTurn(ctx, &engine.Turn{ConversationID: convID, Role: engine.TurnAssistant,
				Content: "Sorry, I found nothing about that.", TraceID: tt.id, Outcome: tt.outcome}))
		}
	}
	for _, f := range []engine.Feedback{
		{TraceID: "t01", Platform: slack, UserID: "U1", Rating: engine.RatingUp},
		{TraceID: "t01", Platform: slack, UserID: "U9", Rating: engine.RatingDown},
		{TraceID: "t02", Platform: slack, UserID: "U1", Rating: engine.RatingUp},
		{TraceID: "t04", Platform: discord, UserID: "U3", Rating: engine.RatingDown},
		{TraceID: "t07", Platform: mattermost, UserID: "U4", Rating: engine.RatingUp},
		{TraceID: "x1", Platform: slack, UserID: "U2", Rating: engine.RatingDown},
		{TraceID: "x2", Platform: slack, UserID: "U2", Rating: engine.RatingDown},
	} {
		Must(tb, s.SaveFeedback(ctx, &f))
	}
	return seed
}

func testAnalytics(t *testing.T, s engine.Store) {
	ctx := t.Context()
	day := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	seed := SeedAnalytics(t, s, day)
	r := seed.Range
	ms := time.Millisecond
	d := func(n int) time.Time { return day.AddDate(0, 0, n) }

	sum, err := s.TrafficSummary(ctx, r)
	Must(t, err)
	MustEqual(t, "TrafficSummary", *sum, engine.TrafficSummary{
		Total: engine.TrafficStats{Conversations: 6, Messages: 11, Answered: 3, Extractive: 1, NoAnswer: 3, Failed: 1,
			Interrupted: 1, Rejected: 2, P50: 700 * ms, P95: 4500 * ms, FeedbackUp: 3, FeedbackDown: 2},
		Platforms: []engine.TrafficStats{
			{Platform: engine.PlatformConsole, Conversations: 2, Messages: 2, NoAnswer: 1, Rejected: 1, P50: 255 * ms, P95: 475500 * time.Microsecond},
			{Platform: engine.PlatformDiscord, Conversations: 1, Messages: 2, Extractive: 1, NoAnswer: 1, P50: 350 * ms, P95: 395 * ms, FeedbackDown: 1},
			{Platform: engine.PlatformMattermost, Conversations: 1, Messages: 2, Answered: 1, Rejected: 1, P50: 400 * ms, P95: 670 * ms, FeedbackUp: 1},
			{Platform: engine.PlatformSlack, Conversations: 2, Messages: 5, Answered: 2, NoAnswer: 1, Failed: 1, Interrupted: 1,
				P50: 2000 * ms, P95: 5400 * ms, FeedbackUp: 2, FeedbackDown: 1},
		},
	})
	if rate, ok := sum.Total.AnswerRate(); !ok || rate != 4.0/11 {
		t.Fatalf("answer rate %v %v, want 4/11", rate, ok)
	}

	daily, err := s.DailyMessages(ctx, r)
	Must(t, err)
	MustEqual(t, "DailyMessages", daily, []engine.DailyMessages{
		{Day: d(0), Platform: engine.PlatformConsole, Messages: 1},
		{Day: d(0), Platform: engine.PlatformDiscord, Messages: 1},
		{Day: d(0), Platform: engine.PlatformSlack, Messages: 3},
		{Day: d(1), Platform: engine.PlatformMattermost, Messages: 2},
		{Day: d(1), Platform: engine.PlatformSlack, Messages: 2},
		{Day: d(3), Platform: engine.PlatformConsole, Messages: 1},
		{Day: d(3), Platform: engine.PlatformDiscord, Messages: 1},
	})

	latency, err := s.DailyLatency(ctx, r)
	Must(t, err)
	MustEqual(t, "DailyLatency", latency, []engine.DailyLatency{
		{Day: d(0), Messages: 5, P50: 1000 * ms, P95: 2800 * ms},
		{Day: d(1), Messages: 4, P50: 800 * ms, P95: 5235 * ms},
		{Day: d(3), Messages: 2, P50: 155 * ms, P95: 285500 * time.Microsecond},
	})

	feedback, err := s.DailyFeedback(ctx, r)
	Must(t, err)
	MustEqual(t, "DailyFeedback", feedback, []engine.DailyFeedback{
		{Day: d(0), Up: 2, Down: 2},
		{Day: d(1), Up: 1, Down: 0},
	})

	mt := func(model string, n, in, out int64) engine.ModelTokens {
		return engine.ModelTokens{Model: model, Messages: n, TokensIn: in, TokensOut: out}
	}
	usage := []struct {
		by    engine.UsageDimension
		limit int
		want  []engine.TokenUsage
	}{
		{engine.UsageByAssistant, 0, []engine.TokenUsage{
			{Key: "asst-helpdesk", Name: "Helpdesk " + SeedXSS, Messages: 7, TokensIn: 720, TokensOut: 270,
				Models: []engine.ModelTokens{mt("gpt-4o", 4, 400, 250), mt("gpt-4o-mini", 3, 320, 20)}},
			{Key: "asst-ops", Name: "Ops", Messages: 3, TokensIn: 50, TokensOut: 25,
				Models: []engine.ModelTokens{mt("extractive", 2, 0, 0), mt("gpt-4o", 1, 50, 25)}},
			{Key: "", Name: "", Messages: 1, Models: []engine.ModelTokens{mt("", 1, 0, 0)}},
		}},
		{engine.UsageByChannel, 3, []engine.TokenUsage{
			{Key: "C1", Platform: engine.PlatformSlack, Messages: 3, TokensIn: 400, TokensOut: 250,
				Models: []engine.ModelTokens{mt("gpt-4o", 3, 400, 250)}},
			{Key: "C2", Platform: engine.PlatformSlack, Messages: 2, TokensIn: 300, TokensOut: 0,
				Models: []engine.ModelTokens{mt("gpt-4o", 1, 0, 0), mt("gpt-4o-mini", 1, 300, 0)}},
			{Key: SeedXSS, Platform: engine.PlatformConsole, Messages: 1, TokensIn: 50, TokensOut: 25,
				Models: []engine.ModelTokens{mt("gpt-4o", 1, 50, 25)}},
		}},
		{engine.UsageByUser, 0, []engine.TokenUsage{
			{Key: "U1", Platform: engine.PlatformSlack, Messages: 3, TokensIn: 400, TokensOut: 250,
				Models: []engine.ModelTokens{mt("gpt-4o", 3, 400, 250)}},
			{Key: "U2", Platform: engine.PlatformSlack, Messages: 2, TokensIn: 300,
				Models: []engine.ModelTokens{mt("gpt-4o", 1, 0, 0), mt("gpt-4o-mini", 1, 300, 0)}},
			{Key: "u-ada", Platform: engine.PlatformConsole, Messages: 1, TokensIn: 50, TokensOut: 25,
				Models: []engine.ModelTokens{mt("gpt-4o", 1, 50, 25)}},
			{Key: "U4", Platform: engine.PlatformMattermost, Messages: 2, TokensIn: 20, TokensOut: 20,
				Models: []engine.ModelTokens{mt("gpt-4o-mini", 2, 20, 20)}},
			// Ties in tokens: more turns first, then by platform and key.
			{Key: "U3", Platform: engine.PlatformDiscord, Messages: 2,
				Models: []engine.ModelTokens{mt("extractive", 2, 0, 0)}},
			{Key: SeedXSS, Platform: engine.PlatformConsole, Messages: 1,
				Models: []engine.ModelTokens{mt("", 1, 0, 0)}},
		}},
		{engine.UsageByModel, 0, []engine.TokenUsage{
			{Key: "gpt-4o", Messages: 5, TokensIn: 450, TokensOut: 275, Models: []engine.ModelTokens{mt("gpt-4o", 5, 450, 275)}},
			{Key: "gpt-4o-mini", Messages: 3, TokensIn: 320, TokensOut: 20, Models: []engine.ModelTokens{mt("gpt-4o-mini", 3, 320, 20)}},
			{Key: "extractive", Messages: 2, Models: []engine.ModelTokens{mt("extractive", 2, 0, 0)}},
			{Key: "", Messages: 1, Models: []engine.ModelTokens{mt("", 1, 0, 0)}},
		}},
		{engine.UsageByModel, 1, []engine.TokenUsage{
			{Key: "gpt-4o", Messages: 5, TokensIn: 450, TokensOut: 275, Models: []engine.ModelTokens{mt("gpt-4o", 5, 450, 275)}},
		}},
	}
	for _, tt := range usage {
		got, err := s.TokenUsage(ctx, r, tt.by, tt.limit)
		Must(t, err)
		MustEqual(t, "TokenUsage by "+string(tt.by), got, tt.want)
	}

	questions, err := s.UnansweredQuestions(ctx, r, 0)
	Must(t, err)
	MustEqual(t, "UnansweredQuestions", questions, []engine.UnansweredQuestion{
		{Question: "How do I reset my VPN?", Count: 3, NoAnswer: 2, Failed: 1, LastAskedAt: d(1).Add(23*time.Hour + 59*time.Minute),
			TraceID: "t09", ConversationID: seed.Conversations["slack-c2"]},
		{Question: "Where is the " + SeedXSS + " office?", Count: 1, NoAnswer: 1, LastAskedAt: d(3).Add(8 * time.Hour),
			TraceID: "t10", ConversationID: seed.Conversations["discord-c3"]},
	})
	questions, err = s.UnansweredQuestions(ctx, r, 1)
	Must(t, err)
	MustEqual(t, "UnansweredQuestions limited", len(questions), 1)

	// One day of the range: day 1 only.
	one := engine.AnalyticsRange{From: d(1), To: d(2)}
	sum, err = s.TrafficSummary(ctx, one)
	Must(t, err)
	MustEqual(t, "one day's messages", sum.Total.Messages, 4)
	MustEqual(t, "one day's p95", sum.Total.P95, 5235*ms)

	// A range without turns.
	empty := engine.AnalyticsRange{From: d(2), To: d(3)}
	sum, err = s.TrafficSummary(ctx, empty)
	Must(t, err)
	MustEqual(t, "empty TrafficSummary", *sum, engine.TrafficSummary{})
	daily, err = s.DailyMessages(ctx, empty)
	Must(t, err)
	MustEqual(t, "empty DailyMessages", daily, []engine.DailyMessages{})
	latency, err = s.DailyLatency(ctx, empty)
	Must(t, err)
	MustEqual(t, "empty DailyLatency", latency, []engine.DailyLatency{})
	feedback, err = s.DailyFeedback(ctx, empty)
	Must(t, err)
	MustEqual(t, "empty DailyFeedback", feedback, []engine.DailyFeedback{})
	tokens, err := s.TokenUsage(ctx, empty, engine.UsageByUser, 10)
	Must(t, err)
	MustEqual(t, "empty TokenUsage", tokens, []engine.TokenUsage{})
	questions, err = s.UnansweredQuestions(ctx, empty, 10)
	Must(t, err)
	MustEqual(t, "empty UnansweredQuestions", questions, []engine.UnansweredQuestion{})

	// Bad requests.
	backwards := engine.AnalyticsRange{From: d(3), To: d(1)}
	_, err = s.TrafficSummary(ctx, backwards)
	MustCode(t, err, engine.EINVALID)
	_, err = s.DailyMessages(ctx, engine.AnalyticsRange{From: d(0), To: d(engine.MaxAnalyticsDays + 1)})
	MustCode(t, err, engine.EINVALID)
	_, err = s.DailyLatency(ctx, engine.AnalyticsRange{})
	MustCode(t, err, engine.EINVALID)
	_, err = s.DailyFeedback(ctx, backwards)
	MustCode(t, err, engine.EINVALID)
	_, err = s.UnansweredQuestions(ctx, backwards, 10)
	MustCode(t, err, engine.EINVALID)
	_, err = s.TokenUsage(ctx, r, "team", 10)
	MustCode(t, err, engine.EINVALID)
}

// testAnalyticsSQLText checks that text from users is data, never SQL, in
// the analytics queries.
func testAnalyticsSQLText(t *testing.T, s engine.Store) {
	ctx := t.Context()
	day := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	evil := `'); DROP TABLE traces; --`
	conv := &engine.Conversation{Platform: engine.PlatformSlack, ChannelID: evil, ThreadID: evil}
	Must(t, s.EnsureConversation(ctx, conv))
	tr := &engine.Trace{ID: "sql-1", ConversationID: conv.ID, AssistantID: evil, AssistantName: evil, Platform: engine.PlatformSlack,
		ChannelID: evil, UserID: evil, Model: evil, TokensIn: 1, Outcome: engine.OutcomeFailed, StartedAt: day.Add(time.Hour), Duration: time.Second}
	Must(t, s.SaveTrace(ctx, tr))
	Must(t, s.AddTurn(ctx, &engine.Turn{ConversationID: conv.ID, Role: engine.TurnUser, Content: evil + "?", TraceID: tr.ID}))
	r := engine.AnalyticsRange{From: day, To: day.AddDate(0, 0, 1)}
	for _, by := range []engine.UsageDimension{engine.UsageByAssistant, engine.UsageByChannel, engine.UsageByUser, engine.UsageByModel} {
		got, err := s.TokenUsage(ctx, r, by, 5)
		Must(t, err)
		if len(got) != 1 || got[0].Key != evil {
			t.Fatalf("TokenUsage by %s = %+v", by, got)
		}
	}
	q, err := s.UnansweredQuestions(ctx, r, 5)
	Must(t, err)
	MustEqual(t, "question", q[0].Question, evil+"?")
	sum, err := s.TrafficSummary(ctx, r)
	Must(t, err)
	MustEqual(t, "messages", sum.Total.Messages, 1)
}
