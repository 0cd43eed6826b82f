package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
)

// PlatformResult is what a scenario measured on one platform.
type PlatformResult struct {
	Platform      string           `json:"platform"`
	Conversations int              `json:"conversations"` // threads started
	Questions     int              `json:"questions"`     // events sent
	Deliveries    int              `json:"deliveries"`    // requests sent (with retries)
	Ack           benchkit.Latency `json:"ack"`           // every delivery: request sent to answer read
	AckErrors     int              `json:"ack_errors"`
	FirstUpdate   benchkit.Latency `json:"first_update"` // first delivery sent to the answer's first message
	Complete      benchkit.Latency `json:"complete"`     // first delivery sent to the whole answer visible
	Delivery      delivery         `json:"delivery"`
	Calls         map[string]int   `json:"calls,omitempty"` // the platform fake's calls

	ackMS, firstMS, completeMS []float64
}

// Scenario is one scenario's results.
type Scenario struct {
	Name          string            `json:"name"`
	LoadSeconds   float64           `json:"load_seconds"`  // sending questions
	DrainSeconds  float64           `json:"drain_seconds"` // from the last question sent to the last answer complete
	Platforms     []*PlatformResult `json:"platforms"`
	All           delivery          `json:"all"`
	TurnTimeouts  int               `json:"turn_timeouts"` // answers not complete within -turn-timeout
	SendErrors    int               `json:"send_errors"`   // events that could not be sent at all
	Memory        memory            `json:"memory"`
	Runtime       runtimeStats      `json:"runtime"` // the bot's Go runtime over the same window, from /metrics
	BotCPUCores   float64           `json:"bot_cpu_cores"`
	BenchCPUCores float64           `json:"bench_cpu_cores"`
	// OtherCPUCores is what the rest of the machine used meanwhile (the
	// machine's busy time less the bot's and the bench's): other work
	// sharing the cores skews the latencies.
	OtherCPUCores float64  `json:"other_cpu_cores"`
	ModelRequests int64    `json:"model_requests"`
	ModelTokens   int64    `json:"model_tokens"`
	ModelPeak     int64    `json:"model_peak_streams"` // most streams at once
	ModelAborted  int64    `json:"model_aborted"`      // streams the bot left before their end
	Overhead      overhead `json:"overhead"`
	Failed        string   `json:"failed,omitempty"`

	rss     []rssSample
	runtime []runtimeSample
}

// conversation is one thread of questions on a platform.
type conversation struct {
	platform string
	channel  string
	user     string
	root     string // Slack: the first question's ts; Mattermost: its post id
	thread   string // the ledger's thread key
	slot     int
}

// asker sends the questions of the scenarios to the bot.
type asker struct {
	e       *environment
	l       *ledger
	slack   *slackClient
	discord *discordClient
	seq     atomic.Int64
}

func (e *environment) newAsker(b *bot, l *ledger, conns int) *asker {
	hc := newHTTPClient(conns)
	return &asker{e: e, l: l, slack: newSlackClient(b.URL, e.slackSecret, hc),
		discord: &discordClient{url: b.URL + "/discord/interactions", key: e.discordKey, http: hc}}
}

// newConversation starts a thread on slot's platform.
func (a *asker) newConversation(slot, round int) *conversation {
	c := &conversation{platform: platforms[slot%len(platforms)], slot: slot}
	switch c.platform {
	case platSlack:
		c.channel, c.user = fmt.Sprintf("C0LOAD%02d", slot%10), fmt.Sprintf("U0A%05d", slot)
	case platDiscord:
		c.channel, c.user = fmt.Sprintf("3000000000000000%02d", slot%10), fmt.Sprintf("4%08d%09d", slot, round)
	case platMattermost:
		c.channel, c.user = mattermostID("dm", int64(slot)), mattermostID("asker", int64(slot))
	}
	return c
}

// question is the text of question turn of a conversation.
func question(c *conversation, turn int) string {
	return fmt.Sprintf("How do I deploy and rotate the signing secret, step %d? (conversation %s, %d)", turn+1, c.user, c.slot)
}

// ask sends the question of turn, its first delivery only, and returns
// its record.
func (a *asker) ask(ctx context.Context, c *conversation, turn int) (*record, error) {
	n := a.seq.Add(1)
	text := question(c, turn)
	switch c.platform {
	case platSlack:
		ts := a.slack.newTS()
		thread := ""
		if turn == 0 {
			c.root = ts
			c.thread = "slack:" + c.channel + "/" + ts
		} else {
			thread = c.root
		}
		id := fmt.Sprintf("EvLOAD%08d", n)
		rec := a.l.add(platSlack, id, c.thread, turn)
		body := mention(id, c.user, c.channel, ts, thread, text)
		a.l.sent(rec, time.Now())
		d, ok := a.slack.deliver(ctx, body, 0)
		a.l.acked(rec, d, ok)
		return rec, nil
	case platDiscord:
		c.thread = "discord:" + c.channel + "/u:" + c.user
		id := a.discord.newID()
		rec := a.l.add(platDiscord, id, c.thread, turn)
		body := ask(id, c.user, c.channel, text)
		a.l.sent(rec, time.Now())
		d, ok := a.discord.deliver(ctx, body)
		a.l.acked(rec, d, ok)
		return rec, nil
	default:
		id := mattermostID("q", n)
		root := ""
		if turn == 0 {
			c.root = id
			c.thread = "mattermost:" + c.channel + "/" + id
		} else {
			root = c.root
		}
		rec := a.l.add(platMattermost, id, c.thread, turn)
		a.l.sent(rec, time.Now())
		if err := a.e.mm.post(id, c.user, c.channel, root, text); err != nil {
			return rec, err
		}
		return rec, nil
	}
}

// wait waits for rec's answer to complete; false after timeout.
func wait(ctx context.Context, rec *record, timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-rec.done:
		return true
	case <-ctx.Done():
		return false
	case <-t.C:
		return false
	}
}

// measured wraps a scenario's load: it starts a fresh bot, samples its
// memory, runs load, lets the bot finish, stops it and reads its traces.
func (e *environment) measured(ctx context.Context, name string, load func(context.Context, *bot, *ledger, *Scenario) error) (*Scenario, error) {
	s := &Scenario{Name: name}
	l := newLedger()
	e.slack.reset(l)
	e.discord.reset(l)
	e.mm.reset(l)
	b, err := e.startBot(ctx, name)
	if err != nil {
		return nil, err
	}
	pid := b.srv.PID()
	start := time.Now()
	sctx, stopSampling := context.WithCancel(ctx)
	var (
		samples []rssSample
		rt      []runtimeSample
		sampled sync.WaitGroup
	)
	sampled.Go(func() { samples = sampleRSS(sctx, pid, start, e.opts.rssInterval) })
	sampled.Go(func() { rt = sampleRuntime(sctx, b.URL+"/metrics", start, 2*time.Second) })
	req0, tok0, ab0 := e.model.requests.Load(), e.model.tokens.Load(), e.model.aborted.Load()
	e.model.peak.Store(0)
	cpu0, self0, all0, t0 := benchkit.ProcCPUSeconds(pid), benchkit.SelfCPUSeconds(), machineBusySeconds(), time.Now()

	loadErr := load(ctx, b, l, s)

	cpu1, self1, all1, wall := benchkit.ProcCPUSeconds(pid), benchkit.SelfCPUSeconds(), machineBusySeconds(), time.Since(t0).Seconds()
	if cpu0 >= 0 && cpu1 >= cpu0 && wall > 0 {
		s.BotCPUCores = (cpu1 - cpu0) / wall
	}
	if self0 >= 0 && self1 >= self0 && wall > 0 {
		s.BenchCPUCores = (self1 - self0) / wall
	}
	if all0 >= 0 && all1 >= all0 && wall > 0 {
		s.OtherCPUCores = max(0, (all1-all0)/wall-s.BotCPUCores-s.BenchCPUCores)
	}
	s.ModelRequests, s.ModelTokens, s.ModelPeak = e.model.requests.Load()-req0, e.model.tokens.Load()-tok0, e.model.peak.Load()
	s.ModelAborted = e.model.aborted.Load() - ab0
	// Late duplicates would show now.
	select {
	case <-ctx.Done():
	case <-time.After(e.opts.settle):
	}
	peak := benchkit.ProcStatusBytes(pid, "VmHWM")
	stopSampling()
	sampled.Wait()
	s.rss, s.runtime = samples, rt
	if b.srv.Exited() {
		s.Failed = fmt.Sprintf("the bot exited during the scenario (%s): %s", b.srv.Cmd.ProcessState, b.srv.Output.Last(2000))
	}
	b.srv.Stop()
	s.summarise(l, e)
	from, to := e.memoryWindow(name, s)
	s.Memory = summariseRSS(samples, from, to)
	s.Memory.PeakBytes = peak
	s.Runtime = summariseRuntime(rt, from, to)
	traces, err := readTraces(context.WithoutCancel(ctx), b)
	if err != nil {
		return s, fmt.Errorf("%s: read traces: %w", name, err)
	}
	s.Overhead = summariseTraces(traces)
	switch {
	case loadErr != nil && s.Failed == "":
		s.Failed = loadErr.Error()
	case loadErr == nil && s.Failed != "":
		loadErr = errors.New(s.Failed)
	}
	return s, loadErr
}

// memoryWindow is the part of a scenario (seconds since it started) in
// which its memory is judged: for the conversations, from the end of the
// ramp-up to the last question; for the burst, all of it, the answers
// included.
func (e *environment) memoryWindow(name string, s *Scenario) (from, to float64) {
	if name == scenarioConversations {
		return min(e.opts.ramp.Seconds()+5, s.LoadSeconds/4), s.LoadSeconds
	}
	return 0, s.LoadSeconds + s.DrainSeconds + 0.001
}

// summarise fills the per-platform results from the ledger and the fakes.
func (s *Scenario) summarise(l *ledger, e *environment) {
	s.All = l.summarise("")
	for _, p := range platforms {
		recs := l.records(p)
		if len(recs) == 0 {
			continue
		}
		pr := &PlatformResult{Platform: p, Questions: len(recs), Delivery: l.summarise(p)}
		threads := map[string]bool{}
		var acks, first, complete []time.Duration
		for _, r := range recs {
			threads[r.Thread] = true
			pr.Deliveries += len(r.Acks) + r.AckErrors
			pr.AckErrors += r.AckErrors
			acks = append(acks, r.Acks...)
			if !r.FirstVisible.IsZero() {
				first = append(first, r.FirstVisible.Sub(r.Sent))
			}
			if !r.Complete.IsZero() {
				complete = append(complete, r.Complete.Sub(r.Sent))
			}
		}
		pr.Conversations = len(threads)
		pr.Ack, pr.FirstUpdate, pr.Complete = benchkit.Summarise(acks), benchkit.Summarise(first), benchkit.Summarise(complete)
		pr.ackMS, pr.firstMS, pr.completeMS = millis(acks), millis(first), millis(complete)
		switch p {
		case platSlack:
			pr.Calls = e.slack.Calls()
		case platDiscord:
			pr.Calls = e.discord.Calls()
		case platMattermost:
			pr.Calls = e.mm.Calls()
		}
		s.Platforms = append(s.Platforms, pr)
	}
}

func millis(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = benchkit.Millis(d)
	}
	return out
}

const (
	scenarioConversations = "conversations"
	scenarioBurst         = "burst"
)

// conversations is scenario A: -conversations concurrent conversations,
// spread over the three platforms, each a thread of -turns questions, the
// next asked when the answer to the previous one is complete; a slot
// whose conversation ended starts a new one until -duration has passed.
func (e *environment) conversations(ctx context.Context, b *bot, l *ledger, s *Scenario) error {
	o := e.opts
	a := e.newAsker(b, l, o.conversations)
	start := time.Now()
	deadline := start.Add(o.duration)
	var (
		wg                 sync.WaitGroup
		timeouts, sendErrs atomic.Int64
		lastSent           atomic.Int64
	)
	benchkit.Logf("%s: %d conversations of %d turns for %s (ramp-up %s)", scenarioConversations, o.conversations, o.turns, o.duration, o.ramp)
	progress := e.progress(ctx, l)
	for slot := range o.conversations {
		wg.Go(func() {
			// Ramp up: the conversations start spread over -ramp.
			if !sleep(ctx, time.Duration(int64(o.ramp)*int64(slot)/int64(o.conversations))) {
				return
			}
			for round := 0; ctx.Err() == nil && time.Now().Before(deadline); round++ {
				c := a.newConversation(slot, round)
				for turn := range o.turns {
					if turn > 0 && (!time.Now().Before(deadline) || !sleep(ctx, o.think)) {
						break
					}
					rec, err := a.ask(ctx, c, turn)
					lastSent.Store(time.Now().UnixNano())
					if err != nil {
						sendErrs.Add(1)
						benchkit.Logf("%s: %v", c.platform, err)
						sleep(ctx, time.Second)
						break
					}
					if !wait(ctx, rec, o.turnTimeout) {
						if ctx.Err() == nil {
							timeouts.Add(1)
						}
						break // the thread is stuck behind this question: start another
					}
				}
			}
		})
	}
	wg.Wait()
	progress()
	end := time.Now()
	s.LoadSeconds = time.Unix(0, lastSent.Load()).Sub(start).Seconds()
	s.DrainSeconds = end.Sub(time.Unix(0, lastSent.Load())).Seconds()
	s.TurnTimeouts, s.SendErrors = int(timeouts.Load()), int(sendErrs.Load())
	return ctx.Err()
}

// burst is scenario B: -burst-events Slack events in threads of
// -burst-thread, every thread at once, each event delivered four times,
// two deliveries at a time (like Slack's retries, marked with
// X-Slack-Retry-Num), the thread's next event after its deliveries were
// acknowledged. Then it waits for every answer.
func (e *environment) burst(ctx context.Context, b *bot, l *ledger, s *Scenario) error {
	o := e.opts
	threads := (o.burstEvents + o.burstThread - 1) / o.burstThread
	a := e.newAsker(b, l, threads*2)
	benchkit.Logf("%s: %d Slack events in %d threads, 4 deliveries each (2 at once)", scenarioBurst, o.burstEvents, threads)
	start := time.Now()
	var (
		wg   sync.WaitGroup
		recs = make([]*record, 0, o.burstEvents)
		mu   sync.Mutex
	)
	for th := range threads {
		wg.Go(func() {
			channel, user := fmt.Sprintf("C0BURST%02d", th%10), fmt.Sprintf("U0B%05d", th)
			root := ""
			for k := range o.burstThread {
				if th*o.burstThread+k >= o.burstEvents || ctx.Err() != nil {
					return
				}
				ts := a.slack.newTS()
				thread := root
				if k == 0 {
					root = ts
				}
				id := fmt.Sprintf("EvBURST%04d%02d", th, k)
				rec := l.add(platSlack, id, "slack:"+channel+"/"+root, k)
				mu.Lock()
				recs = append(recs, rec)
				mu.Unlock()
				body := mention(id, user, channel, ts, thread, fmt.Sprintf("How do I deploy, step %d? (thread %d)", k+1, th))
				l.sent(rec, time.Now())
				for pair := range 2 {
					var dup sync.WaitGroup
					for i := range 2 {
						dup.Go(func() {
							d, ok := a.slack.deliver(ctx, body, pair*2+i)
							l.acked(rec, d, ok)
						})
					}
					dup.Wait()
				}
			}
		})
	}
	wg.Wait()
	sent := time.Now()
	s.LoadSeconds = sent.Sub(start).Seconds()
	benchkit.Logf("%s: %d events sent in %.1fs; waiting for the answers", scenarioBurst, len(recs), s.LoadSeconds)
	progress := e.progress(ctx, l)
	deadline := time.Now().Add(o.burstTimeout)
	for _, r := range recs {
		if !wait(ctx, r, time.Until(deadline)) {
			break
		}
	}
	progress()
	s.DrainSeconds = time.Since(sent).Seconds()
	for _, r := range recs {
		if r.Complete.IsZero() {
			s.TurnTimeouts++
		}
	}
	return ctx.Err()
}

// progress logs the answers completed every 15 s until the returned
// function is called.
func (e *environment) progress(ctx context.Context, l *ledger) func() {
	pctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
				d := l.summarise("")
				benchkit.Logf("  %d questions sent, %d answers complete; model streams now %d", d.Events, d.Answered, e.model.active.Load())
			}
		}
	}()
	return func() { stop(); <-done }
}

// sleep waits d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
