package engine

import (
	"context"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Analytics aggregate the traces: one trace is one turn (a message and
// its answer). A turn that waited for a tool approval is counted once,
// when it finished: traces with OutcomeAwaiting are left out everywhere.
// Days are UTC days; feedback counts on the day (and platform) of the
// answer it rates.

// MaxAnalyticsDays is the longest range the analytics aggregate at once.
const MaxAnalyticsDays = 366

// AnalyticsRange is the half-open interval [From, To) of turn start times.
type AnalyticsRange struct {
	From time.Time
	To   time.Time
}

// Validate checks that the range is set, ordered and not longer than
// MaxAnalyticsDays.
func (r AnalyticsRange) Validate() error {
	switch {
	case r.From.IsZero() || r.To.IsZero():
		return Errorf(EINVALID, "An analytics range needs a start and an end.")
	case !r.From.Before(r.To):
		return Errorf(EINVALID, "The analytics range starts (%s) after it ends (%s): swap the dates.",
			r.From.UTC().Format(time.DateOnly), r.To.UTC().Format(time.DateOnly))
	case r.To.Sub(r.From) > MaxAnalyticsDays*24*time.Hour:
		return Errorf(EINVALID, "The analytics range is longer than %d days: choose a shorter one.", MaxAnalyticsDays)
	}
	return nil
}

// TrafficStats count the turns of a range, of one platform or of all.
type TrafficStats struct {
	Platform      Platform // "" for all platforms
	Conversations int64    // distinct conversations with a turn in the range (in all: the platforms' sum)
	Messages      int64    // turns
	Answered      int64    // OutcomeAnswered
	Extractive    int64    // OutcomeExtractive
	NoAnswer      int64    // OutcomeNoAnswer
	Failed        int64    // OutcomeFailed
	Interrupted   int64    // OutcomeInterrupted
	Rejected      int64    // OutcomeRejected
	// P50 and P95 are percentiles of the turns' durations (continuous,
	// interpolated like PostgreSQL's percentile_cont); zero without turns.
	P50, P95     time.Duration
	FeedbackUp   int64
	FeedbackDown int64
}

// Add adds o's counts (not its percentiles) to s.
func (s *TrafficStats) Add(o TrafficStats) {
	s.Conversations += o.Conversations
	s.Messages += o.Messages
	s.Answered += o.Answered
	s.Extractive += o.Extractive
	s.NoAnswer += o.NoAnswer
	s.Failed += o.Failed
	s.Interrupted += o.Interrupted
	s.Rejected += o.Rejected
	s.FeedbackUp += o.FeedbackUp
	s.FeedbackDown += o.FeedbackDown
}

// AnsweredAll is the number of turns that got an answer: from the model
// or quoted from the knowledge bases.
func (s TrafficStats) AnsweredAll() int64 { return s.Answered + s.Extractive }

// Errors is the number of turns that failed or were cut short.
func (s TrafficStats) Errors() int64 { return s.Failed + s.Interrupted }

// AnswerRate is AnsweredAll over Messages; ok is false without turns.
func (s TrafficStats) AnswerRate() (rate float64, ok bool) {
	if s.Messages == 0 {
		return 0, false
	}
	return float64(s.AnsweredAll()) / float64(s.Messages), true
}

// TrafficSummary is the traffic of a range: in all, and per platform
// (only platforms with turns, ordered by name).
type TrafficSummary struct {
	Total     TrafficStats
	Platforms []TrafficStats
}

// DailyMessages is the number of turns of one platform on one day.
type DailyMessages struct {
	Day      time.Time // midnight UTC
	Platform Platform
	Messages int64
}

// DailyLatency is the spread of one day's turn durations.
type DailyLatency struct {
	Day      time.Time // midnight UTC
	Messages int64
	P50, P95 time.Duration
}

// DailyFeedback is the ratings of one day's answers.
type DailyFeedback struct {
	Day  time.Time // midnight UTC
	Up   int64
	Down int64
}

// UsageDimension is what token usage is grouped by.
type UsageDimension string

// Usage dimensions.
const (
	UsageByAssistant UsageDimension = "assistant" // Key is the assistant id, Name its name
	UsageByChannel   UsageDimension = "channel"   // Key is the channel id, with Platform
	UsageByUser      UsageDimension = "user"      // Key is the user id, with Platform
	UsageByModel     UsageDimension = "model"     // Key is the model
)

// Valid reports whether d is a known dimension.
func (d UsageDimension) Valid() bool {
	switch d {
	case UsageByAssistant, UsageByChannel, UsageByUser, UsageByModel:
		return true
	}
	return false
}

// ModelTokens is the token usage of one model.
type ModelTokens struct {
	Model     string
	Messages  int64
	TokensIn  int64
	TokensOut int64
}

// TokenUsage is the token usage of one assistant, channel, user or model,
// in all and per model (ordered by model).
type TokenUsage struct {
	Key       string
	Platform  Platform // for channels and users
	Name      string   // for assistants: the name its turns recorded (the greatest, when it changed)
	Messages  int64
	TokensIn  int64
	TokensOut int64
	Models    []ModelTokens
}

// Tokens is all tokens, in and out.
func (u TokenUsage) Tokens() int64 { return u.TokensIn + u.TokensOut }

// DefaultUsageLimit is how many assistants, channels, users or models a
// token usage listing returns when asked for none or too many.
const (
	DefaultUsageLimit = 10
	MaxUsageLimit     = 100
)

// UsageLimit clamps a requested number of rows to 1..MaxUsageLimit
// (DefaultUsageLimit when n <= 0).
func UsageLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultUsageLimit
	case n > MaxUsageLimit:
		return MaxUsageLimit
	}
	return n
}

// QuestionGroupPrefix is how many characters of a question are grouped:
// questions that share their first QuestionGroupPrefix characters count
// as one.
const QuestionGroupPrefix = 500

// QuestionCandidates is how many distinct question texts a store reads
// before grouping them by NormalizeQuestion.
const QuestionCandidates = 2000

// AskedQuestion is one exact question text (cut to QuestionGroupPrefix
// characters) that went unanswered with one outcome, as a store reads it
// before GroupQuestions.
type AskedQuestion struct {
	Text           string
	Outcome        Outcome // OutcomeNoAnswer or OutcomeFailed
	Count          int64
	LastAskedAt    time.Time
	TraceID        string // of the last time it was asked (the greatest id among equal times)
	ConversationID string
}

// UnansweredQuestion is a question (grouped by NormalizeQuestion) whose
// turns ended with no answer or failed.
type UnansweredQuestion struct {
	Question       string // the most frequent wording
	Count          int64
	NoAnswer       int64
	Failed         int64
	LastAskedAt    time.Time
	TraceID        string // of the last time it was asked
	ConversationID string
}

// AnalyticsStore aggregates traces, turns and feedback for the dashboard
// and the analytics pages. Every method returns the same results from
// every store; a range is checked with AnalyticsRange.Validate.
type AnalyticsStore interface {
	// TrafficSummary counts the turns of r, in all and per platform.
	TrafficSummary(ctx context.Context, r AnalyticsRange) (*TrafficSummary, error)
	// DailyMessages counts the turns per day and platform, ordered by day
	// then platform; days without turns are left out.
	DailyMessages(ctx context.Context, r AnalyticsRange) ([]DailyMessages, error)
	// DailyLatency gives each day's p50 and p95 turn duration, by day;
	// days without turns are left out.
	DailyLatency(ctx context.Context, r AnalyticsRange) ([]DailyLatency, error)
	// DailyFeedback counts each day's ratings, by day; days without
	// ratings are left out.
	DailyFeedback(ctx context.Context, r AnalyticsRange) ([]DailyFeedback, error)
	// TokenUsage lists the top limit (see UsageLimit) assistants, channels,
	// users or models by tokens (in and out), then by turns, then by
	// platform and key (byte order).
	TokenUsage(ctx context.Context, r AnalyticsRange, by UsageDimension, limit int) ([]TokenUsage, error)
	// UnansweredQuestions lists the top limit (see UsageLimit) questions
	// whose turns ended with OutcomeNoAnswer or OutcomeFailed: the user
	// turns' texts, cut to QuestionGroupPrefix characters, the most
	// frequent QuestionCandidates of them grouped by GroupQuestions.
	UnansweredQuestions(ctx context.Context, r AnalyticsRange, limit int) ([]UnansweredQuestion, error)
}

// Percentile returns the p-th percentile (0..1) of sorted durations,
// interpolating between the two nearest values exactly as PostgreSQL's
// percentile_cont does, rounded to the nanosecond (halves up). It is zero
// for no durations.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	pos := p * float64(n-1)
	lo := math.Floor(pos)
	hi := math.Ceil(pos)
	a, b := float64(sorted[int(lo)]), float64(sorted[int(hi)])
	v := a
	if hi != lo {
		v = a + (b-a)*(pos-lo)
	}
	return time.Duration(math.Floor(v + 0.5))
}

// NormalizeQuestion is the key unanswered questions are grouped by: lower
// case, runs of spaces as one, without the punctuation and spaces around.
func NormalizeQuestion(s string) string {
	s = strings.Join(strings.Fields(strings.ToLower(s)), " ")
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsPunct(r) || unicode.IsSpace(r) })
}

// GroupQuestions merges exact question texts by NormalizeQuestion, counting
// each outcome, and returns the limit (see UsageLimit) largest groups: by
// count, then the most recently asked, then the key. A group's wording is
// its most frequent text (the first in byte order among equals); its last
// trace is the one asked last (the greatest trace id among equal times).
// Texts that normalize to nothing are left out.
func GroupQuestions(asked []AskedQuestion, limit int) []UnansweredQuestion {
	type group struct {
		q     UnansweredQuestion
		key   string
		texts map[string]int64
	}
	groups := map[string]*group{}
	for _, a := range asked {
		key := NormalizeQuestion(a.Text)
		if key == "" {
			continue
		}
		g := groups[key]
		if g == nil {
			g = &group{key: key, texts: map[string]int64{}}
			groups[key] = g
		}
		g.q.Count += a.Count
		g.texts[a.Text] += a.Count
		if a.Outcome == OutcomeNoAnswer {
			g.q.NoAnswer += a.Count
		} else {
			g.q.Failed += a.Count
		}
		if c := a.LastAskedAt.Compare(g.q.LastAskedAt); c > 0 || c == 0 && a.TraceID > g.q.TraceID {
			g.q.LastAskedAt, g.q.TraceID, g.q.ConversationID = a.LastAskedAt, a.TraceID, a.ConversationID
		}
	}
	list := make([]*group, 0, len(groups))
	for _, g := range groups {
		var top int64
		for text, n := range g.texts {
			if n > top || n == top && text < g.q.Question {
				top, g.q.Question = n, text
			}
		}
		list = append(list, g)
	}
	slices.SortFunc(list, func(a, b *group) int {
		switch {
		case a.q.Count != b.q.Count:
			if a.q.Count > b.q.Count {
				return -1
			}
			return 1
		case !a.q.LastAskedAt.Equal(b.q.LastAskedAt):
			return b.q.LastAskedAt.Compare(a.q.LastAskedAt)
		}
		return strings.Compare(a.key, b.key)
	})
	list = list[:min(UsageLimit(limit), len(list))]
	out := make([]UnansweredQuestion, len(list))
	for i, g := range list {
		out[i] = g.q
	}
	return out
}
