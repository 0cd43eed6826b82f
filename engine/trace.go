package engine

import (
	"sync"
	"time"
)

// Outcome is how a turn ended.
type Outcome string

// Outcomes.
const (
	OutcomeAnswered    Outcome = "answered"          // a model answer was posted
	OutcomeExtractive  Outcome = "extractive"        // no model: quoted passages were posted
	OutcomeNoAnswer    Outcome = "no_answer"         // nothing relevant was found; the user was told
	OutcomeInterrupted Outcome = "interrupted"       // the answer stopped part way; partial answer kept and marked
	OutcomeFailed      Outcome = "failed"            // no answer; the user got the reason
	OutcomeRejected    Outcome = "rejected"          // bad input; the user got the reason
	OutcomeAwaiting    Outcome = "awaiting_approval" // a tool call waits for a person's approval
	OutcomeRateLimited Outcome = "rate_limited"      // over a rate limit; the user was told once
)

// Trace step names, in the order a turn goes through them.
const (
	StepReceived     = "received"
	StepAcknowledged = "acknowledged"
	StepAssistant    = "assistant"
	StepHistory      = "history"
	StepRetrieval    = "retrieval"
	StepModel        = "model"
	StepTools        = "tools"
	StepApproval     = "approval"
	StepPosted       = "posted"
)

// TraceStep is one timed step of a turn.
type TraceStep struct {
	Name      string        `json:"name"`
	StartedAt time.Time     `json:"started_at"`
	Duration  time.Duration `json:"duration_ns"`
	Detail    string        `json:"detail,omitempty"`
	Error     string        `json:"error,omitempty"`
}

// PassageRef records a passage that a turn used.
type PassageRef struct {
	ID            string  `json:"id"`
	KnowledgeBase string  `json:"knowledge_base"`
	Document      string  `json:"document"`
	Title         string  `json:"title"`
	Score         float64 `json:"score"`
}

// Trace records what happened while answering one message.
type Trace struct {
	ID             string       `json:"id"`
	EventID        string       `json:"event_id,omitempty"`
	ConversationID string       `json:"conversation_id,omitempty"`
	AssistantID    string       `json:"assistant_id,omitempty"`
	AssistantName  string       `json:"assistant_name,omitempty"`
	Platform       Platform     `json:"platform"`
	ChannelID      string       `json:"channel_id,omitempty"`
	UserID         string       `json:"user_id,omitempty"`
	Model          string       `json:"model,omitempty"`
	TokensIn       int          `json:"tokens_in"`
	TokensOut      int          `json:"tokens_out"`
	Passages       []PassageRef `json:"passages"`
	// Retrieval is what the knowledge search did (nil when the assistant
	// has no knowledge bases), so the console can replay it.
	Retrieval *AppliedSettings `json:"retrieval,omitempty"`
	Steps     []TraceStep      `json:"steps"`
	Outcome   Outcome          `json:"outcome"`
	Error     string           `json:"error,omitempty"`
	StartedAt time.Time        `json:"started_at"`
	Duration  time.Duration    `json:"duration_ns"`

	mu sync.Mutex
}

// Step starts a named step and returns a function that ends it, recording
// its duration and the error, if any.
func (t *Trace) Step(name string) func(detail string, err error) {
	start := time.Now()
	return func(detail string, err error) {
		s := TraceStep{Name: name, StartedAt: start, Duration: time.Since(start), Detail: detail}
		if err != nil {
			s.Error = err.Error()
		}
		t.mu.Lock()
		t.Steps = append(t.Steps, s)
		t.mu.Unlock()
	}
}

// AddStep records a step that was timed elsewhere (for example the platform's
// receive time before the engine saw the message).
func (t *Trace) AddStep(s TraceStep) {
	t.mu.Lock()
	t.Steps = append(t.Steps, s)
	t.mu.Unlock()
}
