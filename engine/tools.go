package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"time"
)

// ToolSet offers an assistant its tools and runs them. tools/ implements
// it over MCP servers and the built-in tools, with the assistant's policy
// (allowlist, allow/ask/deny, pinning) applied.
type ToolSet interface {
	// Tools returns the tools the assistant may call now.
	Tools(ctx context.Context, a *Assistant) ([]ToolSpec, error)
	// Call runs one call. A failure of the tool (a timeout, an error, a
	// denial or a rejected approval) is a ToolResult with IsError set, told
	// to the model; Call does not return errors.
	Call(ctx context.Context, inv ToolInvocation) ToolResult
}

// ToolInvocation is one tool call of a turn, with who asked and where.
type ToolInvocation struct {
	Assistant *Assistant
	User      ChatUser
	Thread    Thread
	TraceID   string
	Call      ToolCall
}

// Tool call outcomes.
const (
	ToolOK       = "ok"
	ToolError    = "error"
	ToolTimeout  = "timeout"
	ToolDenied   = "denied"   // the policy forbids it
	ToolRejected = "rejected" // a person declined the approval
)

// ToolResult is what a tool call gave back, as the model will read it.
type ToolResult struct {
	Content string `json:"content"`
	IsError bool   `json:"is_error"`
	Outcome string `json:"outcome"`
}

// ArgumentsHash identifies a call's arguments in audits without storing
// them.
func ArgumentsHash(arguments string) string {
	sum := sha256.Sum256([]byte(arguments))
	return hex.EncodeToString(sum[:8])
}

// ToolCallRecord is the audit of one tool call: who, which tool, a hash
// of the arguments (not the arguments), how long and how it ended.
type ToolCallRecord struct {
	ID            string        `json:"id"`
	TraceID       string        `json:"trace_id"`
	AssistantID   string        `json:"assistant_id"`
	AssistantName string        `json:"assistant_name"`
	Platform      Platform      `json:"platform"`
	UserID        string        `json:"user_id"`
	Tool          string        `json:"tool"`
	ArgumentsHash string        `json:"arguments_hash"`
	Outcome       string        `json:"outcome"`
	Duration      time.Duration `json:"duration_ns"`
	CreatedAt     time.Time     `json:"created_at"`
}

// ToolCallFilter selects audit records, newest first.
type ToolCallFilter struct {
	AssistantID string
	Tool        string
	TraceID     string
	Limit       int // default 100
}

// ToolPin records that an admin enabled a tool as it was: a hash of its
// name, description and input schema. A tool whose server later describes
// it differently is disabled until an admin enables it again (a defence
// against tool poisoning and rug pulls).
type ToolPin struct {
	Tool     string    `json:"tool"` // full name, server__tool
	Hash     string    `json:"hash"`
	PinnedBy string    `json:"pinned_by"`
	PinnedAt time.Time `json:"pinned_at"`
}

// ToolPinStore keeps the pins.
type ToolPinStore interface {
	SetToolPin(ctx context.Context, p *ToolPin) error     // insert or replace by Tool
	DeleteToolPin(ctx context.Context, tool string) error // ENOTFOUND when there is none
	ToolPins(ctx context.Context) ([]*ToolPin, error)     // by tool
}

// ToolServer is an MCP server configured in the console (the config file
// can list more). Env and Headers hold secrets.
type ToolServer struct {
	Name      string            `json:"name"`
	Transport string            `json:"transport"` // stdio, http or sse
	Command   string            `json:"command,omitempty"`
	Args      []string          `json:"args,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	URL       string            `json:"url,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// ToolServerStore keeps the MCP servers configured in the console.
type ToolServerStore interface {
	SaveToolServer(ctx context.Context, s *ToolServer) error // insert or replace by Name
	DeleteToolServer(ctx context.Context, name string) error // ENOTFOUND when there is none
	ToolServers(ctx context.Context) ([]*ToolServer, error)  // by name
}

var toolServerNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// Validate checks an MCP server's settings; the error says what to fix.
func (s *ToolServer) Validate() error {
	switch {
	case !toolServerNameRE.MatchString(s.Name) || strings.Contains(s.Name, "__") || s.Name == "builtin":
		return Errorf(EINVALID, "MCP server name %q is invalid: use up to 32 lower-case letters, digits, - or _ (not \"builtin\", no \"__\").", s.Name)
	case s.Transport == "stdio" && s.Command == "":
		return Errorf(EINVALID, "MCP server %s: a stdio server needs a command.", s.Name)
	case (s.Transport == "http" || s.Transport == "sse") && s.URL == "":
		return Errorf(EINVALID, "MCP server %s: an %s server needs a url.", s.Name, s.Transport)
	case s.Transport != "stdio" && s.Transport != "http" && s.Transport != "sse":
		return Errorf(EINVALID, "MCP server %s: transport %q is unknown: use stdio, http or sse.", s.Name, s.Transport)
	}
	return nil
}
