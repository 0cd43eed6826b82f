package engine

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Rating is a user's verdict on an answer.
type Rating int

// Ratings.
const (
	RatingDown Rating = -1
	RatingUp   Rating = 1
)

// Valid reports whether r is RatingUp or RatingDown.
func (r Rating) Valid() bool { return r == RatingUp || r == RatingDown }

// MaxFeedbackComment is the longest comment of a Feedback, in bytes.
const MaxFeedbackComment = 2000

// Feedback is one user's rating of one answer (a trace).
type Feedback struct {
	TraceID   string    `json:"trace_id"`
	Platform  Platform  `json:"platform"`
	UserID    string    `json:"user_id"` // the platform user (or console user) who rated
	Rating    Rating    `json:"rating"`
	Comment   string    `json:"comment,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Validate checks f before it is stored, trimming the spaces around its
// comment. Its errors are EINVALID with a message for the user who rated.
func (f *Feedback) Validate() error {
	f.Comment = strings.TrimSpace(f.Comment)
	switch {
	case strings.TrimSpace(f.TraceID) == "":
		return Errorf(EINVALID, "Feedback needs the id of the answer's trace.")
	case f.Platform == "":
		return Errorf(EINVALID, "Feedback needs the platform of the user who rated.")
	case strings.TrimSpace(f.UserID) == "":
		return Errorf(EINVALID, "Feedback needs the user who rated.")
	case !f.Rating.Valid():
		return Errorf(EINVALID, "Rating %d is invalid: use 1 (helpful) or -1 (not helpful).", int(f.Rating))
	case len(f.Comment) > MaxFeedbackComment:
		return Errorf(EINVALID, "The comment is too long (%d bytes): keep it to %d bytes.", len(f.Comment), MaxFeedbackComment)
	case !utf8.ValidString(f.Comment):
		return Errorf(EINVALID, "The comment is not valid UTF-8 text.")
	}
	return nil
}

// Normalize validates f (see Validate) and fills in what a store sets when
// it saves f: CreatedAt (now when zero, else as stored) and UpdatedAt (now).
// When f replaces the same user's earlier rating of the trace, the store
// keeps that one's CreatedAt.
func (f *Feedback) Normalize(now time.Time) error {
	if err := f.Validate(); err != nil {
		return err
	}
	f.UpdatedAt = StoredTime(now)
	f.CreatedAt = StoredTime(f.CreatedAt)
	if f.CreatedAt.IsZero() {
		f.CreatedAt = f.UpdatedAt
	}
	return nil
}
