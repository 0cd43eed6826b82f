package engine

import (
	"strings"
	"time"
)

// This file holds what every Store does to a record before writing it:
// checking required fields, filling in IDs, timestamps and statuses, and the
// user-facing messages of the errors. Stores keep only their SQL, scanning
// and the translation of their database's errors.

// StoredTime returns t as the stores keep it: in UTC, truncated to
// microseconds. The zero time stays zero.
func StoredTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// Validate checks a user before it is stored, trimming its name.
func (u *User) Validate() error {
	u.Name = strings.TrimSpace(u.Name)
	switch {
	case u.Name == "":
		return Errorf(EINVALID, "A user needs a name.")
	case !u.Role.Valid():
		return Errorf(EINVALID, "Role %q is unknown: use admin, editor or viewer.", u.Role)
	}
	return nil
}

// Normalize validates u and fills in what a store sets when it creates u:
// an empty ID, and CreatedAt and UpdatedAt (now).
func (u *User) Normalize(now time.Time) error {
	if err := u.Validate(); err != nil {
		return err
	}
	setCreated(&u.ID, &u.CreatedAt, &u.UpdatedAt, now)
	return nil
}

// NameTakenError is the ECONFLICT error of storing u under a name another
// user has (ignoring case); cause is the store's error.
func (u *User) NameTakenError(cause error) *Error {
	return WrapError(ECONFLICT, cause, "A user named %q already exists: choose another name.", u.Name)
}

// Normalize validates s and fills in what a store sets when it creates s:
// an empty ID, CreatedAt (now) and ExpiresAt as stored.
func (s *Session) Normalize(now time.Time) error {
	switch {
	case s.UserID == "" || s.TokenHash == "":
		return Errorf(EINVALID, "A session needs a user and a token hash.")
	case s.ExpiresAt.IsZero():
		return Errorf(EINVALID, "A session needs an expiry time.")
	}
	setID(&s.ID)
	s.CreatedAt = StoredTime(now)
	s.ExpiresAt = StoredTime(s.ExpiresAt)
	s.LastSeenAt = s.CreatedAt
	return nil
}

// Normalize trims t's name, validates t and fills in what a store sets when
// it creates t: an empty ID, CreatedAt (now) and LastUsedAt as stored.
func (t *APIToken) Normalize(now time.Time) error {
	t.Name = strings.TrimSpace(t.Name)
	if t.UserID == "" || t.TokenHash == "" || t.Name == "" {
		return Errorf(EINVALID, "An API token needs a user, a name and a token hash.")
	}
	setID(&t.ID)
	t.CreatedAt = StoredTime(now)
	t.LastUsedAt = StoredTime(t.LastUsedAt)
	return nil
}

// Normalize validates a (see Validate) and fills in what a store sets when
// it creates a: an empty ID, and CreatedAt and UpdatedAt (now).
func (a *Assistant) Normalize(now time.Time) error {
	if err := a.Validate(); err != nil {
		return err
	}
	setCreated(&a.ID, &a.CreatedAt, &a.UpdatedAt, now)
	return nil
}

// NameTakenError is the ECONFLICT error of storing a under a name another
// assistant has (ignoring case); cause is the store's error.
func (a *Assistant) NameTakenError(cause error) *Error {
	return WrapError(ECONFLICT, cause, "An assistant named %q already exists: choose another name.", a.Name)
}

// Normalize validates c and fills in what a store sets when it creates c
// for its thread: an empty ID, and CreatedAt and UpdatedAt (now).
func (c *Conversation) Normalize(now time.Time) error {
	if c.Platform == "" {
		return Errorf(EINVALID, "A conversation needs a platform.")
	}
	setCreated(&c.ID, &c.CreatedAt, &c.UpdatedAt, now)
	return nil
}

// DefaultConversationLimit is how many conversations a listing returns when
// the filter sets no limit.
const DefaultConversationLimit = 50

// Normalize applies the defaults of a listing: a limit <= 0 becomes
// DefaultConversationLimit, a negative offset 0, and Since and Until are
// brought to the stored precision.
func (f *ConversationFilter) Normalize() {
	if f.Limit <= 0 {
		f.Limit = DefaultConversationLimit
	}
	f.Offset = max(f.Offset, 0)
	f.Since = StoredTime(f.Since)
	f.Until = StoredTime(f.Until)
}

// Normalize validates t and fills in what a store sets when it adds t: an
// empty ID, and CreatedAt (now when zero, else as stored).
func (t *Turn) Normalize(now time.Time) error {
	if t.ConversationID == "" || t.Role == "" {
		return Errorf(EINVALID, "A turn needs a conversation and a role.")
	}
	setID(&t.ID)
	t.CreatedAt = StoredTime(t.CreatedAt)
	if t.CreatedAt.IsZero() {
		t.CreatedAt = StoredTime(now)
	}
	return nil
}

// Normalize fills in what a store sets when it saves t: an empty ID, and
// StartedAt (now when zero, else as stored).
func (t *Trace) Normalize(now time.Time) {
	setID(&t.ID)
	t.StartedAt = StoredTime(t.StartedAt)
	if t.StartedAt.IsZero() {
		t.StartedAt = StoredTime(now)
	}
}

// StoredSteps returns a copy of t's steps with their start times as stored
// (nil when t has none), so they read back equal from every store.
func (t *Trace) StoredSteps() []TraceStep {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.Steps == nil {
		return nil
	}
	steps := make([]TraceStep, len(t.Steps))
	for i, s := range t.Steps {
		s.StartedAt = StoredTime(s.StartedAt)
		steps[i] = s
	}
	return steps
}

// Normalize validates kb (see Validate) and fills in what a store sets when
// it creates kb: an empty ID, and CreatedAt and UpdatedAt (now).
func (kb *KnowledgeBase) Normalize(now time.Time) error {
	if err := kb.Validate(); err != nil {
		return err
	}
	setCreated(&kb.ID, &kb.CreatedAt, &kb.UpdatedAt, now)
	return nil
}

// NameTakenError is the ECONFLICT error of storing kb under a name another
// knowledge base has; cause is the store's error.
func (kb *KnowledgeBase) NameTakenError(cause error) *Error {
	return WrapError(ECONFLICT, cause, "A knowledge base named %q already exists: choose another name.", kb.Name)
}

// Normalize validates d and fills in what a store sets when it saves d: an
// empty ID and Status (pending), and CreatedAt and UpdatedAt (now). When d
// replaces a stored document, the store keeps that one's ID and CreatedAt.
func (d *Document) Normalize(now time.Time) error {
	if d.KnowledgeBase == "" || d.Source == "" {
		return Errorf(EINVALID, "A document needs a knowledge base and a source.")
	}
	if d.Status == "" {
		d.Status = DocumentPending
	}
	setCreated(&d.ID, &d.CreatedAt, &d.UpdatedAt, now)
	return nil
}

// Normalize validates e and makes it the record a store enqueues: an empty
// ID is filled in, an empty ThreadKey becomes "platform:event_id" (an event
// ordered after no other), a zero ReceivedAt or AvailableAt becomes now, a
// nil Payload empty, and the event is pending, never attempted and
// unleased, updated now. Times are brought to the stored precision.
func (e *InboxEvent) Normalize(now time.Time) error {
	if e.Platform == "" || e.EventID == "" {
		return Errorf(EINVALID, "An inbox event needs a platform and an event id.")
	}
	now = StoredTime(now)
	setID(&e.ID)
	if e.ThreadKey == "" {
		e.ThreadKey = string(e.Platform) + ":" + e.EventID
	}
	e.ReceivedAt, e.AvailableAt = StoredTime(e.ReceivedAt), StoredTime(e.AvailableAt)
	if e.ReceivedAt.IsZero() {
		e.ReceivedAt = now
	}
	if e.AvailableAt.IsZero() {
		e.AvailableAt = now
	}
	if e.Payload == nil {
		e.Payload = []byte{}
	}
	e.Status, e.Attempts, e.LeaseOwner, e.LeasedUntil, e.LastError, e.UpdatedAt =
		EventPending, 0, "", time.Time{}, "", now
	return nil
}

// Normalize validates m and fills in CreatedAt (now when zero, else as
// stored).
func (m *OutboundMessage) Normalize(now time.Time) error {
	if m.Platform == "" || m.EventID == "" || m.MessageID == "" || m.Part < 0 {
		return Errorf(EINVALID, "An outbound message needs a platform, an event id, a message id and a part >= 0.")
	}
	m.CreatedAt = StoredTime(m.CreatedAt)
	if m.CreatedAt.IsZero() {
		m.CreatedAt = StoredTime(now)
	}
	return nil
}

// setID fills an empty id with a new one.
func setID(id *string) {
	if *id == "" {
		*id = NewID()
	}
}

// setCreated fills an empty id with a new one and sets the creation and
// update times of a new record to now, as stored.
func setCreated(id *string, createdAt, updatedAt *time.Time, now time.Time) {
	setID(id)
	*createdAt = StoredTime(now)
	*updatedAt = *createdAt
}

// Normalize checks ap's status and fills in what a store sets when it
// creates ap: an empty ID, status pending when empty, CreatedAt (now) when
// zero, State not nil, and the times as stored.
func (ap *ToolApproval) Normalize(now time.Time) error {
	if ap.Status == "" {
		ap.Status = ApprovalPending
	}
	switch ap.Status {
	case ApprovalPending, ApprovalApproved, ApprovalRejected, ApprovalExpired:
	default:
		return Errorf(EINVALID, "Approval status %q is unknown: use pending, approved, rejected or expired.", ap.Status)
	}
	setID(&ap.ID)
	if ap.State == nil {
		ap.State = []byte{}
	}
	ap.CreatedAt, ap.ExpiresAt, ap.DecidedAt = StoredTime(ap.CreatedAt), StoredTime(ap.ExpiresAt), StoredTime(ap.DecidedAt)
	if ap.CreatedAt.IsZero() {
		ap.CreatedAt = StoredTime(now)
	}
	return nil
}
