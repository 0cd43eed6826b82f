package engine

import (
	"reflect"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		in       []time.Duration
		p        float64
		want     time.Duration
		describe string
	}{
		{nil, 0.95, 0, "no values"},
		{[]time.Duration{7 * ms}, 0.95, 7 * ms, "one value"},
		{[]time.Duration{10 * ms, 500 * ms}, 0.5, 255 * ms, "halfway"},
		{[]time.Duration{10 * ms, 500 * ms}, 0.95, 475500 * time.Microsecond, "interpolated"},
		{[]time.Duration{900 * ms, 1000 * ms, 2000 * ms, 3000 * ms, 6000 * ms}, 0.5, 2000 * ms, "exact rank"},
		{[]time.Duration{900 * ms, 1000 * ms, 2000 * ms, 3000 * ms, 6000 * ms}, 0.95, 5400 * ms, "p95 of five"},
		{[]time.Duration{1, 2}, 0.5, 2, "half a nanosecond rounds up"},
		{[]time.Duration{1, 2, 3}, 1, 3, "the maximum"},
		{[]time.Duration{1, 2, 3}, 0, 1, "the minimum"},
	}
	for _, tt := range tests {
		if got := Percentile(tt.in, tt.p); got != tt.want {
			t.Errorf("%s: Percentile(%v, %v) = %v, want %v", tt.describe, tt.in, tt.p, got, tt.want)
		}
	}
}

func TestNormalizeQuestion(t *testing.T) {
	tests := map[string]string{
		"How do I reset my VPN?":         "how do i reset my vpn",
		"  how do I \t reset  my vpn?! ": "how do i reset my vpn",
		"¿Dónde está la oficina?":        "dónde está la oficina",
		"What's 2+2?":                    "what's 2+2",
		"?!...":                          "",
		"":                               "",
	}
	for in, want := range tests {
		if got := NormalizeQuestion(in); got != want {
			t.Errorf("NormalizeQuestion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGroupQuestions(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2025, 3, 1, h, 0, 0, 0, time.UTC) }
	asked := []AskedQuestion{
		{Text: "How do I reset my VPN?", Outcome: OutcomeFailed, Count: 2, LastAskedAt: at(9), TraceID: "a", ConversationID: "c1"},
		{Text: "how do i reset my vpn", Outcome: OutcomeNoAnswer, Count: 1, LastAskedAt: at(11), TraceID: "b", ConversationID: "c2"},
		{Text: "How do I reset my VPN?", Outcome: OutcomeNoAnswer, Count: 1, LastAskedAt: at(11), TraceID: "c", ConversationID: "c3"},
		{Text: "Where is the office", Outcome: OutcomeNoAnswer, Count: 4, LastAskedAt: at(8), TraceID: "d", ConversationID: "c4"},
		{Text: "b?", Outcome: OutcomeNoAnswer, Count: 1, LastAskedAt: at(7), TraceID: "e"},
		{Text: "a?", Outcome: OutcomeNoAnswer, Count: 1, LastAskedAt: at(7), TraceID: "f"},
		{Text: "???", Outcome: OutcomeFailed, Count: 9, LastAskedAt: at(12), TraceID: "g"},
	}
	want := []UnansweredQuestion{
		// Same count: the one asked last first; the most frequent wording; the greatest trace id at the last time.
		{Question: "How do I reset my VPN?", Count: 4, NoAnswer: 2, Failed: 2, LastAskedAt: at(11), TraceID: "c", ConversationID: "c3"},
		{Question: "Where is the office", Count: 4, NoAnswer: 4, LastAskedAt: at(8), TraceID: "d", ConversationID: "c4"},
		// Same count and time: by text.
		{Question: "a?", Count: 1, NoAnswer: 1, LastAskedAt: at(7), TraceID: "f"},
		{Question: "b?", Count: 1, NoAnswer: 1, LastAskedAt: at(7), TraceID: "e"},
	}
	if got := GroupQuestions(asked, 10); !reflect.DeepEqual(got, want) {
		t.Errorf("GroupQuestions:\n got  %+v\n want %+v", got, want)
	}
	if got := GroupQuestions(asked, 1); len(got) != 1 || got[0].Question != "How do I reset my VPN?" {
		t.Errorf("limited: %+v", got)
	}
	if got := GroupQuestions(nil, 0); got == nil || len(got) != 0 {
		t.Errorf("nothing: %#v", got)
	}
}

func TestAnalyticsRangeValidate(t *testing.T) {
	day := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		r  AnalyticsRange
		ok bool
	}{
		{AnalyticsRange{day, day.AddDate(0, 0, 1)}, true},
		{AnalyticsRange{day, day.AddDate(0, 0, MaxAnalyticsDays)}, true},
		{AnalyticsRange{day, day.AddDate(0, 0, MaxAnalyticsDays+1)}, false},
		{AnalyticsRange{day, day}, false},
		{AnalyticsRange{day.AddDate(0, 0, 1), day}, false},
		{AnalyticsRange{To: day}, false},
	}
	for _, tt := range tests {
		err := tt.r.Validate()
		if (err == nil) != tt.ok || err != nil && ErrorCode(err) != EINVALID {
			t.Errorf("%v: %v", tt.r, err)
		}
	}
	for n, want := range map[int]int{-1: DefaultUsageLimit, 0: DefaultUsageLimit, 1: 1, 50: 50, MaxUsageLimit + 1: MaxUsageLimit} {
		if got := UsageLimit(n); got != want {
			t.Errorf("UsageLimit(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestTrafficStats(t *testing.T) {
	var s TrafficStats
	if _, ok := s.AnswerRate(); ok {
		t.Error("a rate without turns")
	}
	s.Add(TrafficStats{Messages: 4, Answered: 2, Extractive: 1, Failed: 1, P95: time.Second})
	s.Add(TrafficStats{Messages: 1, Interrupted: 1, FeedbackUp: 2})
	if rate, ok := s.AnswerRate(); !ok || rate != 0.6 || s.Errors() != 2 || s.FeedbackUp != 2 || s.P95 != 0 {
		t.Errorf("%+v rate %v", s, rate)
	}
}
