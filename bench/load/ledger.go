package main

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Platforms, as the ledger and the report name them.
const (
	platSlack      = "slack"
	platDiscord    = "discord"
	platMattermost = "mattermost"
)

var platforms = []string{platSlack, platDiscord, platMattermost}

// record is what happened to one event the bench sent: when it was sent
// and acknowledged, and what the platform fakes saw the bot do about it.
type record struct {
	Platform string
	ID       string // the platform's event id: Slack event_id, Discord interaction id, Mattermost post id
	Thread   string // the conversation it belongs to
	Seq      int    // its place in the thread: 0 for the first question

	Sent      time.Time       // the first delivery started
	Acks      []time.Duration // each delivery's acknowledgement latency (Slack, Discord)
	AckErrors int             // deliveries not answered 2xx (or not at all)

	FirstVisible time.Time // the first message of the answer was created
	Complete     time.Time // the whole answer was visible (its last words)
	Messages     int       // messages the bot created for this event

	done chan struct{} // closed at Complete
}

// ledger collects the records of a scenario. The fakes report what the
// bot does through it; it is safe for concurrent use.
type ledger struct {
	mu      sync.Mutex
	events  map[string]*record // platform/id → record
	threads map[string][]*record
	// firstOrder and doneOrder list, per thread, the Seq of its events in
	// the order their first message appeared and their answers completed.
	firstOrder map[string][]int
	doneOrder  map[string][]int
	stray      map[string]int // platform → messages not attributable to a sent event
}

func newLedger() *ledger {
	return &ledger{events: map[string]*record{}, threads: map[string][]*record{},
		firstOrder: map[string][]int{}, doneOrder: map[string][]int{}, stray: map[string]int{}}
}

func key(platform, id string) string { return platform + "/" + id }

// add registers an event before it is sent.
func (l *ledger) add(platform, id, thread string, seq int) *record {
	r := &record{Platform: platform, ID: id, Thread: thread, Seq: seq, done: make(chan struct{})}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events[key(platform, id)] = r
	l.threads[thread] = append(l.threads[thread], r)
	return r
}

// sent notes the start of a delivery of r; only the first one counts.
func (l *ledger) sent(r *record, at time.Time) {
	l.mu.Lock()
	if r.Sent.IsZero() || at.Before(r.Sent) {
		r.Sent = at
	}
	l.mu.Unlock()
}

// acked notes a delivery's acknowledgement latency, or its failure.
func (l *ledger) acked(r *record, d time.Duration, ok bool) {
	l.mu.Lock()
	if ok {
		r.Acks = append(r.Acks, d)
	} else {
		r.AckErrors++
	}
	l.mu.Unlock()
}

// message notes that the bot created a message (a post, a follow-up) for
// the event; one for an unknown event is a stray.
func (l *ledger) message(platform, id string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.messageLocked(platform, id, at, false)
}

// messageOnce notes the bot's message for the event unless it has one:
// an edit of a message the platform created for it (Discord's deferred
// response), which is one message however often it is edited.
func (l *ledger) messageOnce(platform, id string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.messageLocked(platform, id, at, true)
}

func (l *ledger) messageLocked(platform, id string, at time.Time, once bool) {
	r := l.events[key(platform, id)]
	switch {
	case r == nil:
		l.stray[platform]++
		return
	case once && r.Messages > 0:
		return
	}
	r.Messages++
	if r.FirstVisible.IsZero() {
		r.FirstVisible = at
		l.firstOrder[r.Thread] = append(l.firstOrder[r.Thread], r.Seq)
	}
}

// strayMessage notes a message the bot created that no event explains.
func (l *ledger) strayMessage(platform string) {
	l.mu.Lock()
	l.stray[platform]++
	l.mu.Unlock()
}

// shown notes what a message of the event shows now; once it shows the
// answer's last words, the answer is complete.
func (l *ledger) shown(platform, id, text string, at time.Time) {
	if !strings.Contains(text, answerEnd) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.events[key(platform, id)]
	if r == nil || !r.Complete.IsZero() {
		return
	}
	if r.FirstVisible.IsZero() {
		// A platform whose first message shows the answer (an edit of a
		// message the bot did not create, like Discord's deferred response).
		r.FirstVisible = at
		l.firstOrder[r.Thread] = append(l.firstOrder[r.Thread], r.Seq)
	}
	r.Complete = at
	l.doneOrder[r.Thread] = append(l.doneOrder[r.Thread], r.Seq)
	close(r.done)
}

// records returns the records of a platform ("" for all), in no order.
func (l *ledger) records(platform string) []*record {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*record
	for _, r := range l.events {
		if platform == "" || r.Platform == platform {
			out = append(out, r)
		}
	}
	return out
}

// delivery is the summary of what the bot did with a set of events.
type delivery struct {
	Events     int `json:"events"`
	Answered   int `json:"answered"`    // answer complete
	ExactlyOne int `json:"exactly_one"` // exactly one message created
	Missing    int `json:"missing"`     // no message at all
	Duplicated int `json:"duplicated"`  // more than one message
	Extra      int `json:"extra"`       // messages beyond the first, summed
	Stray      int `json:"stray"`       // messages no event explains
	// OrderViolations counts answers that appeared (first message) or
	// completed before the answer to an earlier question of their thread.
	OrderViolations int      `json:"order_violations"`
	OrderExamples   []string `json:"order_examples,omitempty"`
}

// summarise checks exactly-once delivery and per-thread order for the
// events of a platform ("" for all).
func (l *ledger) summarise(platform string) delivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	var d delivery
	threads := map[string]bool{}
	for _, r := range l.events {
		if platform != "" && r.Platform != platform {
			continue
		}
		threads[r.Thread] = true
		d.Events++
		if !r.Complete.IsZero() {
			d.Answered++
		}
		switch {
		case r.Messages == 0:
			d.Missing++
		case r.Messages == 1:
			d.ExactlyOne++
		default:
			d.Duplicated++
			d.Extra += r.Messages - 1
		}
	}
	for p, n := range l.stray {
		if platform == "" || p == platform {
			d.Stray += n
		}
	}
	names := make([]string, 0, len(threads))
	for t := range threads {
		names = append(names, t)
	}
	slices.Sort(names)
	for _, t := range names {
		for what, order := range map[string][]int{"first message": l.firstOrder[t], "completion": l.doneOrder[t]} {
			if v := orderViolations(order); len(v) > 0 {
				d.OrderViolations += len(v)
				if len(d.OrderExamples) < 5 {
					d.OrderExamples = append(d.OrderExamples, fmt.Sprintf("%s: %s of question %d came after question %d's", t, what, v[0][1], v[0][0]))
				}
			}
		}
	}
	slices.Sort(d.OrderExamples)
	return d
}

// orderViolations returns the pairs (earlier, later) where an event of a
// thread came after one asked later than it: order lists the Seq of the
// thread's events as they came, and each that is not above every Seq
// before it is a violation, paired with the highest Seq before it.
func orderViolations(order []int) [][2]int {
	var out [][2]int
	highest := -1
	for i, s := range order {
		if i > 0 && s <= highest {
			out = append(out, [2]int{highest, s})
			continue
		}
		highest = s
	}
	return out
}
