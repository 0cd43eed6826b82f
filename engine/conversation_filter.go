package engine

import (
	"context"
	"slices"
)

// FeedbackFilter selects conversations by the ratings of their answers.
type FeedbackFilter string

// Feedback filters. The zero value matches every conversation.
const (
	RatedUp   FeedbackFilter = "up"    // at least one answer rated helpful
	RatedDown FeedbackFilter = "down"  // at least one answer rated not helpful
	Rated     FeedbackFilter = "rated" // at least one answer rated, either way
	NotRated  FeedbackFilter = "none"  // no answer rated
)

// Valid reports whether f is one of the feedback filters or empty.
func (f FeedbackFilter) Valid() bool {
	switch f {
	case "", RatedUp, RatedDown, Rated, NotRated:
		return true
	}
	return false
}

// ErrorOutcomes are the outcomes of a turn that went wrong: the user got a
// reason instead of (part of) an answer.
var ErrorOutcomes = []Outcome{OutcomeFailed, OutcomeInterrupted, OutcomeRejected}

// IsError reports whether o is one of ErrorOutcomes.
func (o Outcome) IsError() bool { return slices.Contains(ErrorOutcomes, o) }

// Validate checks a listing's filter; the error names the field and its
// accepted values.
func (f ConversationFilter) Validate() error {
	switch {
	case !f.Feedback.Valid():
		return Errorf(EINVALID, "Feedback filter %q is unknown: use up, down, rated or none.", f.Feedback)
	case !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until):
		return Errorf(EINVALID, "The start of the date range must be before its end.")
	}
	return nil
}

// ConversationStats are the figures of a conversation that a listing
// shows, computed from its turns, traces and feedback.
type ConversationStats struct {
	Turns int `json:"turns"`
	// UserName is the name of the first user who asked (a user turn's
	// UserName), "" when none was recorded.
	UserName string `json:"user_name,omitempty"`
	// LastOutcome is the outcome of the conversation's newest trace.
	LastOutcome  Outcome `json:"last_outcome,omitempty"`
	Errors       int     `json:"errors"` // traces whose outcome is one of ErrorOutcomes
	FeedbackUp   int     `json:"feedback_up"`
	FeedbackDown int     `json:"feedback_down"`
}

// ConversationReportStore reads what the console shows of conversations.
type ConversationReportStore interface {
	// ConversationStats returns the stats of the conversations with the
	// ids, by id; unknown ids are left out.
	ConversationStats(ctx context.Context, ids []string) (map[string]ConversationStats, error)
	// ConversationFeedback lists the feedback on every trace of the
	// conversation, oldest first (as FeedbackForTrace orders it).
	ConversationFeedback(ctx context.Context, conversationID string) ([]*Feedback, error)
}
