package engine

import (
	"context"
	"time"
)

// Update is a piece of a streaming answer.
type Update struct {
	Delta string // text added since the last update
	Text  string // the whole answer so far
}

// Answer is the final form of a turn's reply.
type Answer struct {
	Text           string     `json:"answer"`
	Citations      []Citation `json:"citations"`
	ConversationID string     `json:"conversation_id"`
	TraceID        string     `json:"trace_id"`
	Outcome        Outcome    `json:"outcome"`
	// Notice explains, in words meant for the user, why the answer is
	// missing or partial (empty when it is complete).
	Notice string `json:"notice,omitempty"`
	// Approval is set when the turn waits for a person to approve tool
	// calls (Outcome awaiting_approval): adapters show its calls with
	// approve and reject buttons.
	Approval *ToolApproval `json:"approval,omitempty"`
	// Silent is set when the user was told the Notice already (the second
	// and later messages over a rate limit): chat adapters post nothing
	// new, only end what they showed while working. Callers that must
	// answer each request (an API, a slash command) show the Notice.
	Silent bool `json:"silent,omitempty"`
	// RetryAfter is when to ask again, for rate-limited answers.
	RetryAfter time.Duration `json:"-"`
}

// Replier delivers one turn's answer to where the question was asked.
// Adapters decide how to show updates (edit in place, stream, coalesce).
type Replier interface {
	// Update shows the answer so far while it streams.
	Update(ctx context.Context, u Update) error
	// Finish shows the final answer, or the notice saying why there is none.
	Finish(ctx context.Context, a Answer) error
}

// StatusReporter is implemented by repliers that can show what the assistant
// is doing before the first words arrive ("searching the knowledge base…").
type StatusReporter interface {
	Status(ctx context.Context, status string) error
}
