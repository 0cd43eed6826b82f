// Package enginetest provides fakes of the engine's interfaces for tests:
// a scripted language model, a recording replier, a fixed retriever and
// a fault switch for stores (StoreFaults).
package enginetest

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// Reply is one scripted model answer.
type Reply struct {
	Chunks []string      // streamed text pieces
	Delay  time.Duration // pause before each chunk
	Wait   time.Duration // announced (EventWait) and waited before the chunks, as a provider's retry
	Err    error         // sent after the chunks as EventError (nil: EventDone)
	Stall  bool          // after the chunks, send nothing until the context ends
	// ToolCalls are asked for after the chunks (before Usage and Done).
	ToolCalls []engine.ToolCall
	Usage     engine.Usage
	Model     string
}

// Model is a scripted engine.LanguageModel. Replies are used in order; when
// none are left, it answers Fallback (or echoes the question).
type Model struct {
	Name     string
	Fallback *Reply

	mu       sync.Mutex
	replies  []Reply
	requests []engine.ChatRequest
}

// NewModel returns a model that will give the scripted replies in order.
func NewModel(replies ...Reply) *Model { return &Model{Name: "scripted", replies: replies} }

// Script appends replies.
func (m *Model) Script(replies ...Reply) {
	m.mu.Lock()
	m.replies = append(m.replies, replies...)
	m.mu.Unlock()
}

// Requests returns the requests the model received.
func (m *Model) Requests() []engine.ChatRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]engine.ChatRequest(nil), m.requests...)
}

// DefaultModel implements engine.ModelNamer.
func (m *Model) DefaultModel() string { return m.Name }

// Stream implements engine.LanguageModel.
func (m *Model) Stream(ctx context.Context, req engine.ChatRequest) (<-chan engine.StreamEvent, error) {
	m.mu.Lock()
	m.requests = append(m.requests, req)
	var r Reply
	switch {
	case len(m.replies) > 0:
		r, m.replies = m.replies[0], m.replies[1:]
	case m.Fallback != nil:
		r = *m.Fallback
	default:
		r = Reply{Chunks: []string{"You asked: ", req.Question}}
	}
	m.mu.Unlock()
	model := r.Model
	if model == "" {
		model = m.Name
	}
	out := make(chan engine.StreamEvent)
	go func() {
		defer close(out)
		send := func(ev engine.StreamEvent) bool {
			ev.Model = model
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if r.Wait > 0 {
			if !send(engine.StreamEvent{Kind: engine.EventWait, Wait: r.Wait}) {
				return
			}
			select {
			case <-time.After(r.Wait):
			case <-ctx.Done():
				return
			}
		}
		for _, c := range r.Chunks {
			if r.Delay > 0 {
				select {
				case <-time.After(r.Delay):
				case <-ctx.Done():
					return
				}
			}
			if !send(engine.StreamEvent{Kind: engine.EventText, Text: c}) {
				return
			}
		}
		if r.Stall {
			<-ctx.Done()
			return
		}
		for _, c := range r.ToolCalls {
			if !send(engine.StreamEvent{Kind: engine.EventToolCall, ToolCall: &c}) {
				return
			}
		}
		if r.Usage != (engine.Usage{}) && !send(engine.StreamEvent{Kind: engine.EventUsage, Usage: r.Usage}) {
			return
		}
		if r.Err != nil {
			send(engine.StreamEvent{Kind: engine.EventError, Err: r.Err})
			return
		}
		send(engine.StreamEvent{Kind: engine.EventDone})
	}()
	return out, nil
}

// Replier records what the engine sent. It is safe for concurrent use.
type Replier struct {
	mu       sync.Mutex
	updates  []engine.Update
	statuses []string
	finished []engine.Answer
	// FailUpdates and FailFinish make the calls return errors.
	FailUpdates error
	FailFinish  error
}

// Update implements engine.Replier.
func (r *Replier) Update(_ context.Context, u engine.Update) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updates = append(r.updates, u)
	return r.FailUpdates
}

// Finish implements engine.Replier.
func (r *Replier) Finish(_ context.Context, a engine.Answer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished = append(r.finished, a)
	return r.FailFinish
}

// Status implements engine.StatusReporter.
func (r *Replier) Status(_ context.Context, s string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statuses = append(r.statuses, s)
	return nil
}

// Updates returns the updates received.
func (r *Replier) Updates() []engine.Update {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]engine.Update(nil), r.updates...)
}

// Statuses returns the statuses received.
func (r *Replier) Statuses() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.statuses...)
}

// Finished returns the final answers received (exactly one per Handle call).
func (r *Replier) Finished() []engine.Answer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]engine.Answer(nil), r.finished...)
}

// Retriever returns fixed passages, filtered by knowledge base and limit.
type Retriever struct {
	Passages []engine.Passage
	Err      error

	mu       sync.Mutex
	requests []engine.RetrievalRequest
}

// Retrieve implements engine.Retriever.
func (r *Retriever) Retrieve(_ context.Context, req engine.RetrievalRequest) (*engine.Retrieval, error) {
	r.mu.Lock()
	r.requests = append(r.requests, req)
	r.mu.Unlock()
	if r.Err != nil {
		return nil, r.Err
	}
	out := []engine.Passage{}
	for _, p := range r.Passages {
		for _, kb := range req.KnowledgeBases {
			if strings.EqualFold(kb, p.KnowledgeBase) && p.Score >= req.Settings.MinScore {
				out = append(out, p)
				break
			}
		}
		if req.Settings.Limit > 0 && len(out) == req.Settings.Limit {
			break
		}
	}
	return &engine.Retrieval{Passages: out, Applied: engine.AppliedSettings{
		Backend: "enginetest", Mode: engine.SearchLexical, Limit: req.Settings.Limit, MinScore: req.Settings.MinScore,
	}}, nil
}

// Requests returns the retrieval requests received.
func (r *Retriever) Requests() []engine.RetrievalRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]engine.RetrievalRequest(nil), r.requests...)
}

// ToolSet is a scripted engine.ToolSet: Specs are offered to every
// assistant; Results answers calls by tool name (a missing one is an
// error result). It records the calls.
type ToolSet struct {
	Specs   []engine.ToolSpec
	Results map[string]engine.ToolResult
	Delay   time.Duration // before each call's result

	mu    sync.Mutex
	calls []engine.ToolInvocation
}

// Tools implements engine.ToolSet.
func (s *ToolSet) Tools(context.Context, *engine.Assistant) ([]engine.ToolSpec, error) {
	return s.Specs, nil
}

// Call implements engine.ToolSet.
func (s *ToolSet) Call(ctx context.Context, inv engine.ToolInvocation) engine.ToolResult {
	s.mu.Lock()
	s.calls = append(s.calls, inv)
	s.mu.Unlock()
	if s.Delay > 0 {
		select {
		case <-time.After(s.Delay):
		case <-ctx.Done():
			return engine.ToolResult{Content: "canceled", IsError: true, Outcome: engine.ToolTimeout}
		}
	}
	if r, ok := s.Results[inv.Call.Name]; ok {
		return r
	}
	return engine.ToolResult{Content: "tool failed", IsError: true, Outcome: engine.ToolError}
}

// Calls returns the calls made.
func (s *ToolSet) Calls() []engine.ToolInvocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]engine.ToolInvocation(nil), s.calls...)
}

// StoreFaults is the fault switch of a test store that wraps a real one
// (for fuzz and fault tests of the adapters): it counts the calls routed
// through Call, fails them while down, and keeps a copy of every inbox
// event stored through Record. Embed it next to the wrapped store.
type StoreFaults struct {
	mu                           sync.Mutex
	down                         bool
	calls, failed, enqueueFailed int
	stored                       []*engine.InboxEvent
}

// Call counts a call and fails it (EUNAVAILABLE) while the store is down.
func (f *StoreFaults) Call() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.down {
		f.failed++
		return engine.Errorf(engine.EUNAVAILABLE, "test: the database is down")
	}
	return nil
}

// Record is Enqueue through the switch: a call that keeps a copy of the
// event, then stores it with next.
func (f *StoreFaults) Record(ctx context.Context, e *engine.InboxEvent, next func(context.Context, *engine.InboxEvent) (bool, error)) (bool, error) {
	if err := f.Call(); err != nil {
		f.mu.Lock()
		f.enqueueFailed++
		f.mu.Unlock()
		return false, err
	}
	cp := *e
	cp.Payload = bytes.Clone(e.Payload)
	f.mu.Lock()
	f.stored = append(f.stored, &cp)
	f.mu.Unlock()
	return next(ctx, e)
}

// Reset starts over: nothing counted or stored, the store down or not.
func (f *StoreFaults) Reset(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down, f.calls, f.failed, f.enqueueFailed, f.stored = down, 0, 0, 0, nil
}

// Counts reports the calls since Reset, those that failed, the Enqueue
// calls that failed, and the events stored.
func (f *StoreFaults) Counts() (calls, failed, enqueueFailed int, stored []*engine.InboxEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.failed, f.enqueueFailed, f.stored
}
