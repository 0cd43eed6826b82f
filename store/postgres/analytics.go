package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convosphere/convosphere/engine"
)

// The analytics aggregate traces by UTC day with GROUP BY; percentiles
// are percentile_cont, rounded to the nanosecond (halves up) as
// engine.Percentile does. Text is ordered byte-wise (COLLATE "C"), as
// SQLite orders it, so both stores list ties alike.

// analyticsWhere selects the finished turns of a range ($1, $2) of traces t.
const analyticsWhere = `t.started_at >= $1 AND t.started_at < $2 AND t.outcome <> 'awaiting_approval'`

// percentiles are the p50 and p95 of t.duration_ns (an array of two, NULL
// without rows), to be read with analyticsNanos.
const percentiles = `percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY t.duration_ns)`

// utcDay is the UTC day of a trace.
const utcDay = `(t.started_at AT TIME ZONE 'UTC')::date`

// TrafficSummary counts the turns of r, in all and per platform. Its four
// queries (counts and percentiles per platform, percentiles in all,
// conversations, feedback) run at once, each on its own connection.
func (db *DB) TrafficSummary(ctx context.Context, r engine.AnalyticsRange) (*engine.TrafficSummary, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var (
		platforms     []engine.TrafficStats
		total         [2]time.Duration
		conversations = map[engine.Platform]int64{}
		feedback      = map[engine.Platform][2]int64{}
	)
	err := analyticsParallel(
		func() error {
			rows, err := db.pool.Query(ctx, `SELECT t.platform, COUNT(*),
					COUNT(*) FILTER (WHERE t.outcome = 'answered'), COUNT(*) FILTER (WHERE t.outcome = 'extractive'),
					COUNT(*) FILTER (WHERE t.outcome = 'no_answer'), COUNT(*) FILTER (WHERE t.outcome = 'failed'),
					COUNT(*) FILTER (WHERE t.outcome = 'interrupted'), COUNT(*) FILTER (WHERE t.outcome = 'rejected'),
					`+percentiles+`
				FROM traces t WHERE `+analyticsWhere+` GROUP BY t.platform`, r.From, r.To)
			if err != nil {
				return err
			}
			return eachAnalyticsRow(rows, func(s scanner) error {
				var (
					st engine.TrafficStats
					p  []float64
				)
				if err := s.Scan(&st.Platform, &st.Messages, &st.Answered, &st.Extractive, &st.NoAnswer,
					&st.Failed, &st.Interrupted, &st.Rejected, &p); err != nil {
					return err
				}
				st.P50, st.P95 = analyticsNanos(p, 0), analyticsNanos(p, 1)
				platforms = append(platforms, st)
				return nil
			})
		},
		func() error {
			var p []float64
			err := db.pool.QueryRow(ctx, `SELECT `+percentiles+` FROM traces t WHERE `+analyticsWhere, r.From, r.To).Scan(&p)
			total = [2]time.Duration{analyticsNanos(p, 0), analyticsNanos(p, 1)}
			return err
		},
		func() error {
			rows, err := db.pool.Query(ctx, `SELECT platform, COUNT(*) FROM (SELECT DISTINCT t.platform, t.conversation_id
				FROM traces t WHERE `+analyticsWhere+` AND t.conversation_id <> '') d GROUP BY platform`, r.From, r.To)
			if err != nil {
				return err
			}
			return eachAnalyticsRow(rows, func(s scanner) error {
				var (
					p engine.Platform
					n int64
				)
				err := s.Scan(&p, &n)
				conversations[p] = n
				return err
			})
		},
		func() error {
			rows, err := db.pool.Query(ctx, `SELECT t.platform, COUNT(*) FILTER (WHERE f.rating = 1), COUNT(*) FILTER (WHERE f.rating = -1)
				FROM feedback f JOIN traces t ON t.id = f.trace_id
				WHERE `+analyticsWhere+` GROUP BY t.platform`, r.From, r.To)
			if err != nil {
				return err
			}
			return eachAnalyticsRow(rows, func(s scanner) error {
				var (
					p        engine.Platform
					up, down int64
				)
				err := s.Scan(&p, &up, &down)
				feedback[p] = [2]int64{up, down}
				return err
			})
		},
	)
	if err != nil {
		return nil, fmt.Errorf("traffic summary: %w", err)
	}
	slices.SortFunc(platforms, func(a, b engine.TrafficStats) int { return strings.Compare(string(a.Platform), string(b.Platform)) })
	sum := &engine.TrafficSummary{Platforms: platforms}
	for i := range platforms {
		st := &platforms[i]
		st.Conversations = conversations[st.Platform]
		st.FeedbackUp, st.FeedbackDown = feedback[st.Platform][0], feedback[st.Platform][1]
		sum.Total.Add(*st)
	}
	sum.Total.P50, sum.Total.P95 = total[0], total[1]
	return sum, nil
}

// analyticsNanos is the i-th of the percentiles as a duration, rounded to the
// nanosecond (halves up) as engine.Percentile rounds; zero without turns.
func analyticsNanos(p []float64, i int) time.Duration {
	if i >= len(p) {
		return 0
	}
	return time.Duration(math.Floor(p[i] + 0.5))
}

// analyticsParallel runs the functions at once and returns the first error.
func analyticsParallel(fns ...func() error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = fn() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// DailyMessages counts the turns per day and platform.
func (db *DB) DailyMessages(ctx context.Context, r engine.AnalyticsRange) ([]engine.DailyMessages, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `SELECT `+utcDay+` AS day, t.platform, COUNT(*)
		FROM traces t WHERE `+analyticsWhere+`
		GROUP BY day, t.platform ORDER BY day, t.platform COLLATE "C"`, r.From, r.To)
	if err != nil {
		return nil, fmt.Errorf("daily messages: %w", err)
	}
	list := []engine.DailyMessages{}
	err = eachAnalyticsRow(rows, func(s scanner) error {
		var m engine.DailyMessages
		if err := s.Scan(&m.Day, &m.Platform, &m.Messages); err != nil {
			return err
		}
		m.Day = m.Day.UTC()
		list = append(list, m)
		return nil
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
	rows, err := db.pool.Query(ctx, `SELECT `+utcDay+` AS day, COUNT(*), `+percentiles+`
		FROM traces t WHERE `+analyticsWhere+` GROUP BY day ORDER BY day`, r.From, r.To)
	if err != nil {
		return nil, fmt.Errorf("daily latency: %w", err)
	}
	list := []engine.DailyLatency{}
	err = eachAnalyticsRow(rows, func(s scanner) error {
		var (
			l engine.DailyLatency
			p []float64
		)
		if err := s.Scan(&l.Day, &l.Messages, &p); err != nil {
			return err
		}
		l.Day, l.P50, l.P95 = l.Day.UTC(), analyticsNanos(p, 0), analyticsNanos(p, 1)
		list = append(list, l)
		return nil
	})
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
	rows, err := db.pool.Query(ctx, `SELECT `+utcDay+` AS day,
			COUNT(*) FILTER (WHERE f.rating = 1), COUNT(*) FILTER (WHERE f.rating = -1)
		FROM feedback f JOIN traces t ON t.id = f.trace_id
		WHERE `+analyticsWhere+` GROUP BY day ORDER BY day`, r.From, r.To)
	if err != nil {
		return nil, fmt.Errorf("daily feedback: %w", err)
	}
	list := []engine.DailyFeedback{}
	err = eachAnalyticsRow(rows, func(s scanner) error {
		var f engine.DailyFeedback
		if err := s.Scan(&f.Day, &f.Up, &f.Down); err != nil {
			return err
		}
		f.Day = f.Day.UTC()
		list = append(list, f)
		return nil
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
		return `''`, `t.assistant_id`, `MAX(t.assistant_name COLLATE "C")`, nil
	case engine.UsageByChannel:
		return `t.platform`, `t.channel_id`, `''`, nil
	case engine.UsageByUser:
		return `t.platform`, `t.user_id`, `''`, nil
	case engine.UsageByModel:
		return `''`, `t.model`, `''`, nil
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
	limit = engine.UsageLimit(limit)
	// The top keys first (a hash aggregate), then their tokens per model.
	rows, err := db.pool.Query(ctx, `WITH top AS (
			SELECT `+platform+` AS platform, `+key+` AS k, `+name+` AS name,
				SUM(t.tokens_in + t.tokens_out) AS total, COUNT(*) AS turns
			FROM traces t WHERE `+analyticsWhere+` GROUP BY 1, 2
			ORDER BY total DESC, turns DESC, `+platform+` COLLATE "C", `+key+` COLLATE "C" LIMIT $3)
		SELECT top.platform, top.k, top.name, t.model, COUNT(*), SUM(t.tokens_in)::bigint, SUM(t.tokens_out)::bigint
		FROM traces t JOIN top ON `+platform+` = top.platform AND `+key+` = top.k
		WHERE `+analyticsWhere+`
		GROUP BY top.platform, top.k, top.name, top.total, top.turns, t.model
		ORDER BY top.total DESC, top.turns DESC, top.platform COLLATE "C", top.k COLLATE "C", t.model COLLATE "C"`,
		r.From, r.To, limit)
	if err != nil {
		return nil, fmt.Errorf("token usage: %w", err)
	}
	list := []engine.TokenUsage{}
	err = eachAnalyticsRow(rows, func(s scanner) error {
		var (
			u engine.TokenUsage
			m engine.ModelTokens
		)
		if err := s.Scan(&u.Platform, &u.Key, &u.Name, &m.Model, &m.Messages, &m.TokensIn, &m.TokensOut); err != nil {
			return err
		}
		if n := len(list); n == 0 || list[n-1].Key != u.Key || list[n-1].Platform != u.Platform {
			list = append(list, u)
		}
		last := &list[len(list)-1]
		last.Messages += m.Messages
		last.TokensIn += m.TokensIn
		last.TokensOut += m.TokensOut
		last.Models = append(last.Models, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("token usage: %w", err)
	}
	return list, nil
}

// UnansweredQuestions lists the top questions that got no answer.
func (db *DB) UnansweredQuestions(ctx context.Context, r engine.AnalyticsRange, limit int) ([]engine.UnansweredQuestion, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	// traces.id is COLLATE "C" and turns.trace_id is not: the join names the
	// collation, so that it can use the index on turns (trace_id COLLATE "C").
	rows, err := db.pool.Query(ctx, `SELECT substr(u.content, 1, $3) AS q, t.outcome, COUNT(*), MAX(t.started_at),
			(array_agg(t.id ORDER BY t.started_at DESC, t.id DESC))[1],
			(array_agg(t.conversation_id ORDER BY t.started_at DESC, t.id DESC))[1]
		FROM traces t JOIN turns u ON u.trace_id = t.id COLLATE "C" AND u.role = 'user'
		WHERE t.started_at >= $1 AND t.started_at < $2 AND t.outcome IN ('no_answer', 'failed')
		GROUP BY q, t.outcome ORDER BY COUNT(*) DESC, substr(u.content, 1, $3) COLLATE "C", t.outcome COLLATE "C" LIMIT $4`,
		r.From, r.To, engine.QuestionGroupPrefix, engine.QuestionCandidates)
	if err != nil {
		return nil, fmt.Errorf("unanswered questions: %w", err)
	}
	var asked []engine.AskedQuestion
	err = eachAnalyticsRow(rows, func(s scanner) error {
		var a engine.AskedQuestion
		if err := s.Scan(&a.Text, &a.Outcome, &a.Count, timeCol{&a.LastAskedAt}, &a.TraceID, &a.ConversationID); err != nil {
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
func eachAnalyticsRow(rows pgx.Rows, fn func(scanner) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
