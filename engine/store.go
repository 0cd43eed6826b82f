package engine

import (
	"context"
	"time"
)

// The store interfaces below are implemented by store/sqlite (the embedded
// default) and store/postgres; one conformance suite (store/storetest) runs
// against both. Lookups of a missing record return an ENOTFOUND *Error, never
// (nil, nil). Create methods fill in ID (when empty) and timestamps.

// UserStore keeps console users, their sessions and API tokens.
type UserStore interface {
	CreateUser(ctx context.Context, u *User) error // ECONFLICT when the name is taken
	UpdateUser(ctx context.Context, u *User) error
	UserByID(ctx context.Context, id string) (*User, error)
	UserByName(ctx context.Context, name string) (*User, error)
	ListUsers(ctx context.Context) ([]*User, error)
	CountUsers(ctx context.Context) (int, error)

	CreateSession(ctx context.Context, s *Session) error
	SessionByTokenHash(ctx context.Context, hash string) (*Session, error) // ENOTFOUND when missing or expired
	DeleteSession(ctx context.Context, id string) error
	DeleteUserSessions(ctx context.Context, userID string) error
	// TouchSession records that the session was used at at.
	TouchSession(ctx context.Context, id string, at time.Time) error // ENOTFOUND when missing
	// PurgeSessions deletes the sessions that expired, or were last used
	// before idleSince, and reports how many.
	PurgeSessions(ctx context.Context, idleSince time.Time) (int, error)

	CreateAPIToken(ctx context.Context, t *APIToken) error
	APITokenByHash(ctx context.Context, hash string) (*APIToken, error)
	ListAPITokens(ctx context.Context, userID string) ([]*APIToken, error)
	DeleteAPIToken(ctx context.Context, id string) error
	TouchAPIToken(ctx context.Context, id string, at time.Time) error
}

// AssistantStore keeps assistants. At most one assistant is the default:
// storing one with IsDefault clears the flag on the others in the same
// transaction.
type AssistantStore interface {
	CreateAssistant(ctx context.Context, a *Assistant) error // ECONFLICT when the name is taken
	UpdateAssistant(ctx context.Context, a *Assistant) error
	DeleteAssistant(ctx context.Context, id string) error
	AssistantByID(ctx context.Context, id string) (*Assistant, error)
	AssistantByName(ctx context.Context, name string) (*Assistant, error) // case-insensitive
	ListAssistants(ctx context.Context) ([]*Assistant, error)             // ordered by name
}

// ConversationStore keeps conversations and their turns.
type ConversationStore interface {
	// EnsureConversation finds the conversation of c's (Platform, ChannelID,
	// ThreadID) or creates it from c, and fills c with the stored record.
	EnsureConversation(ctx context.Context, c *Conversation) error
	ConversationByID(ctx context.Context, id string) (*Conversation, error)
	// ConversationByThread returns the conversation of the (platform,
	// channelID, threadID) without creating it; ENOTFOUND when there is none
	// (for instance, to tell whether the bot takes part in a thread).
	ConversationByThread(ctx context.Context, platform Platform, channelID, threadID string) (*Conversation, error)
	ListConversations(ctx context.Context, f ConversationFilter) ([]*Conversation, error) // newest first
	AddTurn(ctx context.Context, t *Turn) error                                           // also bumps the conversation's UpdatedAt
	// Turns returns the newest limit turns (all when limit <= 0) in chronological order.
	Turns(ctx context.Context, conversationID string, limit int) ([]*Turn, error)
}

// TraceStore keeps traces.
type TraceStore interface {
	SaveTrace(ctx context.Context, t *Trace) error // insert or replace by ID (in place: its feedback is kept)
	TraceByID(ctx context.Context, id string) (*Trace, error)
	ListTraces(ctx context.Context, conversationID string) ([]*Trace, error) // oldest first
}

// FeedbackStore keeps users' ratings of answers, one per (TraceID,
// Platform, UserID).
type FeedbackStore interface {
	// SaveFeedback stores f, replacing the same user's earlier rating of the
	// same trace (a user changes their mind); ENOTFOUND when the trace does
	// not exist. f is filled with the stored record: a replaced rating keeps
	// its CreatedAt.
	SaveFeedback(ctx context.Context, f *Feedback) error
	// FeedbackForTrace lists a trace's feedback, oldest first (by CreatedAt).
	// A trace without feedback, or no trace at all, has an empty list.
	FeedbackForTrace(ctx context.Context, traceID string) ([]*Feedback, error)
}

// KnowledgeStore keeps knowledge bases and their original documents.
type KnowledgeStore interface {
	CreateKnowledgeBase(ctx context.Context, kb *KnowledgeBase) error // ECONFLICT when the name is taken
	KnowledgeBaseByName(ctx context.Context, name string) (*KnowledgeBase, error)
	ListKnowledgeBases(ctx context.Context) ([]*KnowledgeBase, error)
	DeleteKnowledgeBase(ctx context.Context, name string) error // also deletes its documents

	// SaveDocument inserts d, or replaces the document with the same
	// (KnowledgeBase, Source), keeping its ID; d is filled with the stored record.
	SaveDocument(ctx context.Context, d *Document) error
	DocumentByID(ctx context.Context, id string) (*Document, error)             // with Content
	DocumentBySource(ctx context.Context, kb, source string) (*Document, error) // with Content
	ListDocuments(ctx context.Context, kb string) ([]*Document, error)          // without Content, ordered by source
	SetDocumentStatus(ctx context.Context, id string, status DocumentStatus, chunks int, errMsg string) error
	DeleteDocument(ctx context.Context, id string) error
}

// EventStatus is where an inbound event is in the durable inbox.
type EventStatus string

// Inbox event statuses.
const (
	EventPending EventStatus = "pending" // waiting to be claimed (maybe after a backoff)
	EventLeased  EventStatus = "leased"  // claimed by a worker until LeasedUntil
	EventDoneSt  EventStatus = "done"
	EventDead    EventStatus = "dead" // gave up after MaxAttempts; the user was told
)

// InboxEvent is an inbound platform event stored before it is acknowledged.
type InboxEvent struct {
	ID          string      `json:"id"`
	Platform    Platform    `json:"platform"`
	EventID     string      `json:"event_id"`   // the platform's id; unique per platform
	ThreadKey   string      `json:"thread_key"` // events of one thread are handled in order
	Payload     []byte      `json:"payload"`    // the engine.Message as JSON (adapters may add raw data)
	Status      EventStatus `json:"status"`
	Attempts    int         `json:"attempts"`
	LeaseOwner  string      `json:"lease_owner,omitempty"`
	LeasedUntil time.Time   `json:"leased_until,omitzero"`
	AvailableAt time.Time   `json:"available_at"`
	LastError   string      `json:"last_error,omitempty"`
	ReceivedAt  time.Time   `json:"received_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
}

// Inbox is the durable queue of inbound events (at-least-once delivery from
// the platforms, exactly-once handling here).
type Inbox interface {
	// Enqueue stores e unless (Platform, EventID) is already stored, and
	// reports whether it was inserted. A duplicate is not an error.
	Enqueue(ctx context.Context, e *InboxEvent) (inserted bool, err error)
	// Claim leases the oldest available event whose thread has no older
	// unfinished event (pending or leased), incrementing Attempts. An expired
	// lease makes an event available again. ENOTFOUND when none is ready.
	Claim(ctx context.Context, owner string, lease time.Duration) (*InboxEvent, error)
	// Complete marks a leased event done; ECONFLICT if owner no longer holds the lease.
	Complete(ctx context.Context, id, owner string) error
	// Retry releases a leased event to be claimed again at a later time.
	Retry(ctx context.Context, id, owner string, at time.Time, errMsg string) error
	// DeadLetter gives up on a leased event.
	DeadLetter(ctx context.Context, id, owner, errMsg string) error
	InboxEventByID(ctx context.Context, id string) (*InboxEvent, error)
	// PurgeInbox deletes up to limit done events last updated before
	// before, oldest first, and returns how many it deleted. Unfinished and
	// dead-lettered events stay. A purged event's id is forgotten: a
	// platform delivering it again would have it handled again, so before
	// must be far older than any redelivery (PurgeDone).
	PurgeInbox(ctx context.Context, before time.Time, limit int) (int, error)
}

// OutboundMessage records a message posted to a platform for an inbound
// event, so a retried job edits it instead of posting twice.
type OutboundMessage struct {
	Platform  Platform  `json:"platform"`
	EventID   string    `json:"event_id"`
	Part      int       `json:"part"` // 0 for the first message of the answer, 1.. for continuations
	ChannelID string    `json:"channel_id"`
	MessageID string    `json:"message_id"` // the platform's id (Slack ts, Discord id, Mattermost post id)
	CreatedAt time.Time `json:"created_at"`
}

// Outbox records posted messages.
type Outbox interface {
	// RecordOutbound stores m, replacing an earlier record of the same (Platform, EventID, Part).
	RecordOutbound(ctx context.Context, m *OutboundMessage) error
	// Outbound returns the messages posted for an event, ordered by Part.
	Outbound(ctx context.Context, platform Platform, eventID string) ([]*OutboundMessage, error)
}

// PreferenceStore keeps chat users' small settings.
type PreferenceStore interface {
	// SetPreference stores p, replacing the value of the same (Platform,
	// UserID, Key); an empty Value deletes it.
	SetPreference(ctx context.Context, p *Preference) error
	// Preference returns a stored preference; ENOTFOUND when there is none.
	Preference(ctx context.Context, platform Platform, userID, key string) (*Preference, error)
}

// StatusStore keeps the platforms' connection states.
type StatusStore interface {
	// SetPlatformStatus records the state of s.Platform, replacing the last.
	SetPlatformStatus(ctx context.Context, s *PlatformStatus) error
	// PlatformStatuses lists the last state of each platform, by platform.
	PlatformStatuses(ctx context.Context) ([]*PlatformStatus, error)
}

// ToolAuditStore keeps the audit of tool calls.
type ToolAuditStore interface {
	RecordToolCall(ctx context.Context, r *ToolCallRecord) error
	ListToolCalls(ctx context.Context, f ToolCallFilter) ([]*ToolCallRecord, error)
}

// Store is everything a ConvoSphere process keeps in its database.
type Store interface {
	AnalyticsStore
	AuditStore
	BudgetStore
	AccountStore
	ApprovalStore
	IdentityStore
	ToolAuditStore
	ToolServerStore
	ProviderStore
	ToolPinStore
	PreferenceStore
	StatusStore
	UserStore
	AssistantStore
	ConversationStore
	ConversationReportStore
	TraceStore
	FeedbackStore
	KnowledgeStore
	Inbox
	Outbox
	Ping(ctx context.Context) error
	Close() error
}
