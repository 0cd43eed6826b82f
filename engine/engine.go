// Package engine is ConvoSphere's domain: messages, users, assistants,
// conversations, knowledge passages and traces, the interfaces the engine
// needs from the outside world (language models, retrieval, stores, repliers)
// and the orchestrator that turns an inbound message into a streamed answer.
//
// It imports the standard library only. Every implementation of its
// interfaces lives in a package named after what it wraps.
package engine

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Platform names where a message came from.
type Platform string

// Platforms known to the engine.
const (
	PlatformConsole    Platform = "console"
	PlatformSlack      Platform = "slack"
	PlatformDiscord    Platform = "discord"
	PlatformMattermost Platform = "mattermost"
)

// Channel is a place where people talk to the assistant: a channel, a
// group or a direct message on a platform.
type Channel struct {
	Platform Platform `json:"platform"`
	ID       string   `json:"id"`
	Name     string   `json:"name,omitempty"`
	DM       bool     `json:"dm,omitempty"`
}

// Thread is a conversation's place inside a channel: the platform's thread
// root (Slack thread_ts, Mattermost root_id, Discord interaction or thread).
type Thread struct {
	Channel Channel `json:"channel"`
	ID      string  `json:"id"`
}

// Key returns a stable string naming the thread across platforms.
func (t Thread) Key() string {
	return string(t.Channel.Platform) + ":" + t.Channel.ID + ":" + t.ID
}

// ChatUser is a person as a chat platform names them.
type ChatUser struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"` // where the platform shares it
}

// ThreadLine is an earlier message of the thread a question was asked in,
// written by someone else or before the assistant joined: context the
// question may refer to ("summarize this thread").
type ThreadLine struct {
	User string `json:"user"` // display name
	Text string `json:"text"`
}

// Message is one inbound message addressed to the assistant, whatever the
// platform.
type Message struct {
	// ID is the platform's id of the event or message (the dedupe key).
	ID         string    `json:"id"`
	Thread     Thread    `json:"thread"`
	User       ChatUser  `json:"user"`
	Text       string    `json:"text"`
	ReceivedAt time.Time `json:"received_at"`
	// Assistant optionally names the assistant the user chose explicitly.
	Assistant string `json:"assistant,omitempty"`
	// ConversationID optionally continues an existing conversation
	// (the console's API); platform messages are keyed by Thread instead.
	ConversationID string `json:"conversation_id,omitempty"`
	// ThreadContext holds the thread's earlier messages when the assistant
	// was called into a thread it was not part of, oldest first.
	ThreadContext []ThreadLine `json:"thread_context,omitempty"`
	// Resume continues a turn that waited for a tool approval, once it is
	// decided; Text is then empty.
	Resume *Resume `json:"resume,omitempty"`
}

// DefaultMaxMessageBytes is the default limit on an inbound message's size.
const DefaultMaxMessageBytes = 16 << 10

// ValidateText checks an inbound message text: not empty, at most max
// bytes, valid UTF-8, no NUL bytes. The error says what was wrong.
func ValidateText(text string, max int) error {
	if max <= 0 {
		max = DefaultMaxMessageBytes
	}
	switch {
	case strings.TrimSpace(text) == "":
		return Errorf(EINVALID, "The message is empty: write a question or a request.")
	case len(text) > max:
		return Errorf(ETOOLARGE, "The message is %d bytes, over the limit of %d bytes: shorten it or split it into several messages.", len(text), max)
	case !utf8.ValidString(text):
		return Errorf(EINVALID, "The message is not valid UTF-8 text: send it as UTF-8.")
	case strings.ContainsRune(text, 0):
		return Errorf(EINVALID, "The message contains a NUL byte: remove control characters and send it again.")
	}
	return nil
}

// Role is a console user's role.
type Role string

// Roles, from most to least privileged.
const (
	RoleAdmin  Role = "admin"
	RoleEditor Role = "editor"
	RoleViewer Role = "viewer"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleEditor || r == RoleViewer }

// User is a console user.
type User struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	DisplayName  string    `json:"display_name,omitempty"`
	Role         Role      `json:"role"`
	PasswordHash string    `json:"-"`
	Disabled     bool      `json:"disabled"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Session is a signed-in browser session. Only the hash of its secret is stored.
type Session struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	TokenHash string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"` // absolute end
	// LastSeenAt is when the session was last used (kept to the minute),
	// for the idle timeout.
	LastSeenAt time.Time `json:"last_seen_at"`
}

// APIToken authenticates API calls (Authorization: Bearer). Only the hash
// of the token is stored; the token itself is shown once.
type APIToken struct {
	ID         string    `json:"id"`
	UserID     string    `json:"user_id"`
	Name       string    `json:"name"`
	TokenHash  string    `json:"-"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}
