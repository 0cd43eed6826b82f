package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// The analytics aggregate traces by UTC day: started_at is stored as
// fixed-width UTC text, so its first ten characters are the day. SQLite
// has no percentile aggregate, so the durations are read in order and the
// percentiles computed by engine.Percentile, as PostgreSQL's
// percentile_cont would.

// analyticsWhere selects the finished turns of a range (two arguments:
// encTime(From), encTime(To)).
const analyticsWhere = `started_at >= ? AND started_at < ? AND outcome <> 'awaiting_approval'`

func analyticsRangeArgs(r engine.AnalyticsRange) []any {
	return []any{encTime(r.From), encTime(r.To)}
}

func parseAnalyticsDay(s string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("scan day %q: %w", s, err)
	}
	return t, nil
}

// TrafficSummary counts the turns of r, in all and per platform.
func (db *DB) TrafficSummary(ctx context.Context, r engine.AnalyticsRange) (*engine.TrafficSummary, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	// One row per platform; the total is their sum.
	rows, err := db.r.QueryContext(ctx, `SELECT platform, COUNT(DISTINCT NULLIF(conversation_id, '')), COUNT(*),
			SUM(outcome = 'answered'), SUM(outcome = 'extractive'), SUM(outcome = 'no_answer'),
			SUM(outcome = 'failed'), SUM(outcome = 'interrupted'), SUM(outcome = 'rejected')
		FROM traces WHERE `+analyticsWhere+` GROUP BY platform ORDER BY platform`, analyticsRangeArgs(r)...)
	if err != nil {
		return nil, fmt.Errorf("traffic summary: %w", err)
	}
	sum := &engine.TrafficSummary{}
	err = eachAnalyticsRow(rows, func(s scanner) error {
		var st engine.TrafficStats
		if err := s.Scan(&st.Platform, &st.Conversations, &st.Messages, &st.Answered, &st.Extractive, &st.NoAnswer,
			&st.Failed, &st.Interrupted, &st.Rejected); err != nil {
			return err
		}
		sum.Platforms = append(sum.Platforms, st)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("traffic summary: %w", err)
	}
	byPlatform := map[engine.Platform]*engine.TrafficStats{}
	for i := range sum.Platforms {
		byPlatform[sum.Platforms[i].Platform] = &sum.Platforms[i]
	}

	// Percentiles from the durations in order, per platform and in all.
	rows, err = db.r.QueryContext(ctx, `SELECT platform, duration_ns FROM traces WHERE `+analyticsWhere+`
		ORDER BY platform, duration_ns`, analyticsRangeArgs(r)...)
	if err != nil {
		return nil, fmt.Errorf("traffic latency: %w", err)
	}
	var (
		all     []time.Duration
		current engine.Platform
		part    []time.Duration
	)
	flush := func() {
		if st := byPlatform[current]; st != nil && len(part) > 0 {
			st.P50, st.P95 = engine.Percentile(part, 0.5), engine.Percentile(part, 0.95)
		}
		part = part[:0]
	}
	err = eachAnalyticsRow(rows, func(s scanner) error {
		var (
			platform engine.Platform
			d        int64
		)
		if err := s.Scan(&platform, &d); err != nil {
			return err
		}
		if platform != current {
			flush()
			current = platform
		}
		part = append(part, time.Duration(d))
		all = append(all, time.Duration(d))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("traffic latency: %w", err)
	}
	flush()
	slices.Sort(all)
	sum.Total.P50, sum.Total.P95 = engine.Percentile(all, 0.5), engine.Percentile(all, 0.95)

	// Feedback on the answers of the range.
	rows, err = db.r.QueryContext(ctx, `SELECT t.platform, COALESCE(SUM(f.rating = 1), 0), COALESCE(SUM(f.rating = -1), 0)
		FROM feedback f JOIN traces t ON t.id = f.trace_id
		WHERE t.started_at >= ? AND t.started_at < ? AND t.outcome <> 'awaiting_approval'
		GROUP BY t.platform`, analyticsRangeArgs(r)...)
	if err != nil {
		return nil, fmt.Errorf("traffic feedback: %w", err)
	}
	err = eachAnalyticsRow(rows, func(s scanner) error {
		var (
			platform engine.Platform
			up, down int64
		)
		if err := s.Scan(&platform, &up, &down); err != nil {
			return err
		}
		if st := byPlatform[platform]; st != nil {
			st.FeedbackUp, st.FeedbackDown = up, down
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("traffic feedback: %w", err)
	}
	p50, p95 := sum.Total.P50, sum.Total.P95
	for _, st := range sum.Platforms {
		sum.Total.Add(st)
	}
	sum.Total.P50, sum.Total.P95 = p50, p95
	return sum, nil
}

// DailyMessages counts the turns per day and platform.
func (db *DB) DailyMessages(ctx context.Context, r engine.AnalyticsRange) ([]engine.DailyMessages, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	rows, err := db.r.QueryContext(ctx, `SELECT substr(started_at, 1, 10) AS day, platform, COUNT(*)
		FROM traces WHERE `+analyticsWhere+` GROUP BY day, platform ORDER BY day, platform`, analyticsRangeArgs(r)...)
	if err != nil {
		return nil, fmt.Errorf("daily messages: %w", err)
	}
	list := []engine.DailyMessages{}
	err = eachAnalyticsRow(rows, func(s scanner) error {
		var (
			m   engine.DailyMessages
			day string
			err error
		)
		if err := s.Scan(&day, &m.Platform, &m.Messages); err != nil {
			return err
		}
		m.Day, err = parseAnalyticsDay(day)
		list = append(list, m)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("daily messages: %w", err)
	}
	return list, nil
}

// DailyLatency gives each day's p50 and p95 turn duration.
func (db *DB) DailyLatency(ctx context.Context, r engine.AnalyticsRange) ([]engine.DailyLatency, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	rows, err := db.r.QueryContext(ctx, `SELECT substr(started_at, 1, 10) AS day, duration_ns
		FROM traces WHERE `+analyticsWhere+` ORDER BY day, duration_ns`, analyticsRangeArgs(r)...)
	if err != nil {
		return nil, fmt.Errorf("daily latency: %w", err)
	}
	list := []engine.DailyLatency{}
	var (
		day  string
		part []time.Duration
	)
	flush := func() error {
		if len(part) == 0 {
			return nil
		}
		t, err := parseAnalyticsDay(day)
		list = append(list, engine.DailyLatency{Day: t, Messages: int64(len(part)),
			P50: engine.Percentile(part, 0.5), P95: engine.Percentile(part, 0.95)})
		part = part[:0]
		return err
	}
	err = eachAnalyticsRow(rows, func(s scanner) error {
		var (
			d   string
			dur int64
		)
		if err := s.Scan(&d, &dur); err != nil {
			return err
		}
		if d != day {
			if err := flush(); err != nil {
				return err
			}
			day = d
		}
		part = append(part, time.Duration(dur))
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return nil, fmt.Errorf("daily latency: %w", err)
	}
	return list, nil
}

// DailyFeedback counts each day's ratings.
func (db *DB) DailyFeedback(ctx context.Context, r engine.AnalyticsRange) ([]engine.DailyFeedback, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	rows, err := db.r.QueryContext(ctx, `SELECT substr(t.started_at, 1, 10) AS day,
			COALESCE(SUM(f.rating = 1), 0), COALESCE(SUM(f.rating = -1), 0)
		FROM feedback f JOIN traces t ON t.id = f.trace_id
		WHERE t.started_at >= ? AND t.started_at < ? AND t.outcome <> 'awaiting_approval'
		GROUP BY day ORDER BY day`, analyticsRangeArgs(r)...)
	if err != nil {
		return nil, fmt.Errorf("daily feedback: %w", err)
	}
	list := []engine.DailyFeedback{}
	err = eachAnalyticsRow(rows, func(s scanner) error {
		var (
			f   engine.DailyFeedback
			day string
			err error
		)
		if err := s.Scan(&day, &f.Up, &f.Down); err != nil {
			return err
		}
		f.Day, err = parseAnalyticsDay(day)
		list = append(list, f)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("daily feedback: %w", err)
	}
	return list, nil
}

// analyticsUsageColumns are the platform, key and name expressions of a dimension.
func analyticsUsageColumns(by engine.UsageDimension) (platform, key, name string, err error) {
	switch by {
	case engine.UsageByAssistant:
		return `''`, `assistant_id`, `MAX(assistant_name)`, nil
	case engine.UsageByChannel:
		return `platform`, `channel_id`, `''`, nil
	case engine.UsageByUser:
		return `platform`, `user_id`, `''`, nil
	case engine.UsageByModel:
		return `''`, `model`, `''`, nil
	}
	return "", "", "", engine.Errorf(engine.EINVALID, "Token usage cannot be grouped by %q: use assistant, channel, user or model.", by)
}

// TokenUsage lists the top assistants, channels, users or models by tokens.
func (db *DB) TokenUsage(ctx context.Context, r engine.AnalyticsRange, by engine.UsageDimension, limit int) ([]engine.TokenUsage, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	platform, key, name, err := analyticsUsageColumns(by)
	if err != nil {
		return nil, err
	}
	// One row per key and model, with the key's totals (window sums over
	// the per-model groups), in the order of the listing.
	rows, err := db.r.QueryContext(ctx, `SELECT platform, k, MAX(name) OVER w, model, n, tin, tout,
			SUM(tin + tout) OVER w AS total, SUM(n) OVER w AS turns
		FROM (SELECT `+platform+` AS platform, `+key+` AS k, `+name+` AS name, model,
				COUNT(*) AS n, SUM(tokens_in) AS tin, SUM(tokens_out) AS tout
			FROM traces WHERE `+analyticsWhere+` GROUP BY 1, 2, 4)
		WINDOW w AS (PARTITION BY platform, k)
		ORDER BY total DESC, turns DESC, platform, k, model`, analyticsRangeArgs(r)...)
	if err != nil {
		return nil, fmt.Errorf("token usage: %w", err)
	}
	list, err := foldAnalyticsUsage(rows, engine.UsageLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("token usage: %w", err)
	}
	return list, nil
}

// foldAnalyticsUsage folds the per-model rows of TokenUsage into the first limit
// keys, and closes rows.
func foldAnalyticsUsage(rows *sql.Rows, limit int) ([]engine.TokenUsage, error) {
	defer rows.Close()
	list := []engine.TokenUsage{}
	for rows.Next() {
		var (
			u           engine.TokenUsage
			m           engine.ModelTokens
			total, sumN int64
		)
		if err := rows.Scan(&u.Platform, &u.Key, &u.Name, &m.Model, &m.Messages, &m.TokensIn, &m.TokensOut, &total, &sumN); err != nil {
			return nil, err
		}
		if n := len(list); n == 0 || list[n-1].Key != u.Key || list[n-1].Platform != u.Platform {
			if n == limit {
				break
			}
			list = append(list, u)
		}
		last := &list[len(list)-1]
		last.Messages += m.Messages
		last.TokensIn += m.TokensIn
		last.TokensOut += m.TokensOut
		last.Models = append(last.Models, m)
	}
	return list, rows.Err()
}

// UnansweredQuestions lists the top questions that got no answer.
func (db *DB) UnansweredQuestions(ctx context.Context, r engine.AnalyticsRange, limit int) ([]engine.UnansweredQuestion, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	// The greatest "started_at id conversation_id" is the last time asked:
	// times are fixed width, so they compare as text.
	rows, err := db.r.QueryContext(ctx, `SELECT substr(u.content, 1, ?) AS q, t.outcome, COUNT(*),
			MAX(t.started_at || ' ' || t.id || ' ' || t.conversation_id)
		FROM traces t JOIN turns u ON u.trace_id = t.id AND u.role = 'user'
		WHERE t.started_at >= ? AND t.started_at < ? AND t.outcome IN ('no_answer', 'failed')
		GROUP BY q, t.outcome ORDER BY COUNT(*) DESC, q, t.outcome LIMIT ?`,
		engine.QuestionGroupPrefix, encTime(r.From), encTime(r.To), engine.QuestionCandidates)
	if err != nil {
		return nil, fmt.Errorf("unanswered questions: %w", err)
	}
	var asked []engine.AskedQuestion
	err = eachAnalyticsRow(rows, func(s scanner) error {
		var (
			a    engine.AskedQuestion
			last string
		)
		if err := s.Scan(&a.Text, &a.Outcome, &a.Count, &last); err != nil {
			return err
		}
		at, rest, _ := strings.Cut(last, " ")
		a.TraceID, a.ConversationID, _ = strings.Cut(rest, " ")
		if err := (timeCol{&a.LastAskedAt}).Scan(at); err != nil {
			return err
		}
		asked = append(asked, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("unanswered questions: %w", err)
	}
	return engine.GroupQuestions(asked, limit), nil
}

// eachAnalyticsRow calls fn for every row and closes rows.
func eachAnalyticsRow(rows *sql.Rows, fn func(scanner) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
