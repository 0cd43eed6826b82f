package engine

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// AuditEntry records one change made in the console, or one refused
// attempt at a change: who, what, when, from where and how it ended. It
// never holds secrets, message bodies or passwords.
type AuditEntry struct {
	ID        string    `json:"id"`
	At        time.Time `json:"at"`
	ActorID   string    `json:"actor_id"`   // the console user; "" when nobody was signed in
	ActorName string    `json:"actor_name"` // their name, or the name tried at a failed sign-in
	Action    string    `json:"action"`     // a stable dotted name: "auth.login", "assistant.update", …
	Target    string    `json:"target"`     // what was acted on: an assistant id, a tool name, "kb/document id", …
	Detail    string    `json:"detail"`     // a short note, e.g. how the actor authenticated or why it failed
	Status    int       `json:"status"`     // the HTTP status of the answer: 2xx and 3xx succeeded
	IP        string    `json:"ip"`         // the client IP (as the trusted proxies report it)
	UserAgent string    `json:"user_agent"`
}

// Audit field limits, in characters; Normalize cuts longer values.
const (
	AuditMaxName      = 200
	AuditMaxAction    = 200
	AuditMaxTarget    = 500
	AuditMaxDetail    = 500
	AuditMaxIP        = 64
	AuditMaxUserAgent = 200
)

// Failed reports whether the attempt was refused or failed (status 400 or more).
func (e *AuditEntry) Failed() bool { return e.Status >= 400 }

// Normalize makes an entry safe to store and show: every text field is
// valid UTF-8 without control characters (they become spaces), trimmed and
// cut to its limit.
func (e *AuditEntry) Normalize() {
	e.ActorID = auditText(e.ActorID, AuditMaxName)
	e.ActorName = auditText(e.ActorName, AuditMaxName)
	e.Action = auditText(e.Action, AuditMaxAction)
	e.Target = auditText(e.Target, AuditMaxTarget)
	e.Detail = auditText(e.Detail, AuditMaxDetail)
	e.IP = auditText(e.IP, AuditMaxIP)
	e.UserAgent = auditText(e.UserAgent, AuditMaxUserAgent)
}

// Validate normalizes e and checks what every entry needs.
func (e *AuditEntry) Validate() error {
	e.Normalize()
	switch {
	case e.Action == "":
		return Errorf(EINVALID, "An audit entry needs an action, such as \"assistant.update\".")
	case e.Status < 0 || e.Status > 999:
		return Errorf(EINVALID, "An audit entry's status %d is not an HTTP status.", e.Status)
	}
	return nil
}

// auditText cleans s and cuts it to limit characters (runes), marking a
// cut with an ellipsis.
func auditText(s string, limit int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:limit-1])) + "…"
}

// DefaultAuditLimit is how many entries a listing returns when the filter
// sets no limit.
const DefaultAuditLimit = 100

// AuditFilter selects audit entries. Empty fields do not filter.
type AuditFilter struct {
	Actor        string    // the actor's id, or their name (case-insensitive, whole name)
	ActionPrefix string    // actions starting with it, e.g. "assistant." or "auth.login"
	Target       string    // targets containing it (case-insensitive)
	Since        time.Time // at or after
	Until        time.Time // before
	FailuresOnly bool      // status 400 or more
	// BeforeAt and BeforeID (set both) list only the entries after that
	// entry in list order: keyset paging for long exports.
	BeforeAt time.Time
	BeforeID string
	Limit    int // default DefaultAuditLimit
	Offset   int
}

// AuditStore keeps the audit log. Nothing is ever deleted by the
// application.
type AuditStore interface {
	// RecordAudit validates and stores e, filling ID (when empty) and At
	// (when zero).
	RecordAudit(ctx context.Context, e *AuditEntry) error
	// ListAudit lists entries, newest first (by At, then ID).
	ListAudit(ctx context.Context, f AuditFilter) ([]*AuditEntry, error)
}
