package engine

import (
	"context"
	"encoding/json"
	"time"
)

// ChatRole is the role of a message sent to a language model.
type ChatRole string

// Chat roles (OpenAI's vocabulary, which every supported server speaks).
const (
	RoleSystem    ChatRole = "system"
	RoleUser      ChatRole = "user"
	RoleAssistant ChatRole = "assistant"
	RoleTool      ChatRole = "tool"
)

// ChatMessage is one message of a prompt.
type ChatMessage struct {
	Role       ChatRole   `json:"role"`
	Content    string     `json:"content"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`   // assistant messages that called tools
	ToolCallID string     `json:"tool_call_id,omitempty"` // tool results
}

// ToolSpec describes a tool the model may call: data, not code.
type ToolSpec struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"` // JSON Schema of the arguments object
}

// ToolCall is the model asking for a tool to run.
type ToolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"` // JSON object
}

// ChatRequest is one call to a language model.
type ChatRequest struct {
	Model       string // empty: the provider's default
	Messages    []ChatMessage
	Temperature float64
	MaxTokens   int
	Tools       []ToolSpec
	// Question and Passages are the turn's question and retrieved passages,
	// already rendered into Messages; responders that do not run a model
	// (the extractive responder) answer from them directly.
	Question string
	Passages []Passage
}

// Usage counts tokens of one model call.
type Usage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
}

// EventKind is the type of a streaming event.
type EventKind int

// Stream event kinds.
const (
	EventText     EventKind = iota + 1 // Text holds the next piece of the answer
	EventToolCall                      // ToolCall holds a complete tool call
	EventUsage                         // Usage holds token counts
	EventDone                          // the answer is complete; always the last event on success
	EventError                         // Err holds why the stream failed; always the last event on failure
	// EventWait: the provider waits Wait before trying again (a rate limit
	// with Retry-After, or a failed attempt's backoff), before anything
	// was delivered. The stall watchdog allows for the wait.
	EventWait
)

// StreamEvent is one typed event of a streamed model answer.
type StreamEvent struct {
	Kind     EventKind
	Text     string
	ToolCall *ToolCall
	Usage    Usage
	Model    string        // the model that answered, when the provider reports it
	Wait     time.Duration // EventWait: how long the provider waits
	Err      error
}

// LanguageModel streams answers. The returned channel delivers events and is
// closed after the final EventDone or EventError; implementations stop and
// close it promptly when ctx is cancelled.
type LanguageModel interface {
	Stream(ctx context.Context, req ChatRequest) (<-chan StreamEvent, error)
}

// ModelNamer is implemented by language models that can name the model they
// use by default, for traces.
type ModelNamer interface {
	DefaultModel() string
}

// WatchStream relays events from in and ends the stream with an ETIMEOUT
// error event if no event arrives within stall (after an EventWait, within
// its wait and stall). cancel is called when the watchdog fires, so the
// provider stops too. The returned channel is closed after the last event;
// reading stops when ctx ends.
func WatchStream(ctx context.Context, in <-chan StreamEvent, stall time.Duration, cancel context.CancelFunc) <-chan StreamEvent {
	out := make(chan StreamEvent)
	go func() {
		defer close(out)
		timer := time.NewTimer(stall)
		defer timer.Stop()
		send := func(ev StreamEvent) bool {
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			select {
			case ev, ok := <-in:
				if !ok {
					return
				}
				if !send(ev) || ev.Kind == EventDone || ev.Kind == EventError {
					if ev.Kind == EventDone || ev.Kind == EventError {
						cancel()
					}
					return
				}
				if !timer.Stop() {
					select {
					case <-timer.C:
					default:
					}
				}
				next := stall
				if ev.Kind == EventWait {
					next += max(ev.Wait, 0)
				}
				timer.Reset(next)
			case <-timer.C:
				// Send before cancelling: ctx may be the one cancel ends.
				send(StreamEvent{Kind: EventError, Err: Errorf(ETIMEOUT, "The language model stopped sending for %s.", stall)})
				cancel()
				go func() { // drain so the provider's goroutine can exit
					for range in {
					}
				}()
				return
			case <-ctx.Done():
				send(StreamEvent{Kind: EventError, Err: WrapError(ETIMEOUT, ctx.Err(), "The answer took too long.")})
				go func() {
					for range in {
					}
				}()
				return
			}
		}
	}()
	return out
}
