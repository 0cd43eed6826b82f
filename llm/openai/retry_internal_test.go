package openai

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
		ok     bool
	}{
		{"none", nil, 0, false},
		{"seconds", map[string]string{"Retry-After": "7"}, 7 * time.Second, true},
		{"fraction", map[string]string{"Retry-After": "0.25"}, 250 * time.Millisecond, true},
		{"date", map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second, true},
		{"past date", map[string]string{"Retry-After": now.Add(-time.Hour).Format(http.TimeFormat)}, 0, true},
		{"milliseconds first", map[string]string{"Retry-After-Ms": "1500", "Retry-After": "9"}, 1500 * time.Millisecond, true},
		{"huge is bounded", map[string]string{"Retry-After": "1e300"}, maxRetryAfter, true},
		{"negative", map[string]string{"Retry-After": "-3"}, 0, false},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			got, ok := parseRetryAfter(h, now)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("parseRetryAfter = %s, %v; want %s, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	r := retryPolicy{maxRetries: 10, base: 100 * time.Millisecond, max: time.Second}
	for retry, ceil := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		ceil *= time.Millisecond
		for range 200 {
			if d := r.backoff(retry); d < 0 || d > ceil {
				t.Fatalf("backoff(%d) = %s, want within [0, %s]", retry, d, ceil)
			}
		}
	}
	if d := r.delay(0, &attempt{hasRetryAfter: true, retryAfter: time.Hour}); d != time.Second {
		t.Fatalf("Retry-After is not capped: %s", d)
	}
	if d := r.delay(3, &attempt{hasRetryAfter: true, retryAfter: 0}); d != 0 {
		t.Fatalf("Retry-After: 0 gave %s", d)
	}
	// A very large retry count must not overflow.
	if d := r.backoff(200); d < 0 || d > time.Second {
		t.Fatalf("backoff(200) = %s", d)
	}
}
