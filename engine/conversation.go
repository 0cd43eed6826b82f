package engine

import (
	"time"
	"unicode/utf8"
)

// Conversation is the history of one thread with one assistant.
type Conversation struct {
	ID          string    `json:"id"`
	AssistantID string    `json:"assistant_id"`
	Platform    Platform  `json:"platform"`
	ChannelID   string    `json:"channel_id"`
	ThreadID    string    `json:"thread_id"`
	UserID      string    `json:"user_id,omitempty"` // who started it (platform user id or console user id)
	Title       string    `json:"title,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// TurnRole says who wrote a turn.
type TurnRole string

// Turn roles.
const (
	TurnUser      TurnRole = "user"
	TurnAssistant TurnRole = "assistant"
)

// Turn is one message of a conversation.
type Turn struct {
	ID             string     `json:"id"`
	ConversationID string     `json:"conversation_id"`
	Role           TurnRole   `json:"role"`
	UserID         string     `json:"user_id,omitempty"`
	UserName       string     `json:"user_name,omitempty"`
	Content        string     `json:"content"`
	Citations      []Citation `json:"citations,omitempty"`
	EventID        string     `json:"event_id,omitempty"`
	TraceID        string     `json:"trace_id,omitempty"`
	Outcome        Outcome    `json:"outcome,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
}

// ConversationFilter narrows a conversation listing. Zero fields match all.
type ConversationFilter struct {
	Platform    Platform
	AssistantID string
	UserID      string
	ChannelID   string
	Since       time.Time
	Until       time.Time
	Feedback    FeedbackFilter // by the ratings of its answers; "" matches all
	Errors      bool           // only conversations with a trace that ended in one of ErrorOutcomes
	Limit       int            // default DefaultConversationLimit
	Offset      int
}

// EstimateTokens approximates a text's token count (about four bytes of
// English per token), for budgeting when the model reports no usage.
func EstimateTokens(s string) int {
	if s == "" {
		return 0
	}
	n := utf8.RuneCountInString(s)
	return (n+3)/4 + 1
}

// TrimHistory keeps the newest turns whose estimated tokens fit in budget,
// in chronological order. The newest turn is always kept.
func TrimHistory(turns []*Turn, budget int) []*Turn {
	used := 0
	start := len(turns)
	for i := len(turns) - 1; i >= 0; i-- {
		t := EstimateTokens(turns[i].Content)
		if used+t > budget && start < len(turns) {
			break
		}
		used += t
		start = i
	}
	return turns[start:]
}
