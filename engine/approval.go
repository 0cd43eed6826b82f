package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// ToolMode is an assistant's policy for one of its tools.
type ToolMode string

// Tool modes. A tool in an assistant's allowlist without a mode is allowed.
const (
	ToolAllow ToolMode = "allow" // runs when the model asks
	ToolAsk   ToolMode = "ask"   // runs once the asking user or an admin approves it in the chat
	ToolDeny  ToolMode = "deny"  // never offered, never run
)

// Valid reports whether m is a known mode.
func (m ToolMode) Valid() bool { return m == ToolAllow || m == ToolAsk || m == ToolDeny }

// ToolModeFor returns a's policy for the tool: deny when the tool is not in
// the allowlist, else the mode set for it, else allow.
func (a *Assistant) ToolModeFor(tool string) ToolMode {
	listed := false
	for _, t := range a.Tools {
		listed = listed || t == tool
	}
	if !listed {
		return ToolDeny
	}
	if m, ok := a.ToolPolicy[tool]; ok && m.Valid() {
		return m
	}
	return ToolAllow
}

// ApprovalStatus is where a tool approval stands.
type ApprovalStatus string

// Approval statuses.
const (
	ApprovalPending  ApprovalStatus = "pending"
	ApprovalApproved ApprovalStatus = "approved"
	ApprovalRejected ApprovalStatus = "rejected"
	ApprovalExpired  ApprovalStatus = "expired"
)

// DefaultApprovalTTL is how long an approval waits for a decision.
const DefaultApprovalTTL = 24 * time.Hour

// ToolApproval is a turn waiting for a person to approve the tool calls
// the model asked for under an "ask" policy. The turn is saved in State
// (the engine's own encoding), so it resumes in whichever process handles
// the decision, after any restart.
type ToolApproval struct {
	ID             string         `json:"id"`
	TraceID        string         `json:"trace_id"`
	EventID        string         `json:"event_id,omitempty"` // the message that asked
	AssistantID    string         `json:"assistant_id"`
	AssistantName  string         `json:"assistant_name"`
	ConversationID string         `json:"conversation_id"`
	Thread         Thread         `json:"thread"`
	User           ChatUser       `json:"user"` // who asked; they (or an admin) decide
	Calls          []ToolCall     `json:"calls"`
	State          []byte         `json:"-"`
	Status         ApprovalStatus `json:"status"`
	DecidedBy      string         `json:"decided_by,omitempty"`
	DecidedAt      time.Time      `json:"decided_at,omitzero"`
	CreatedAt      time.Time      `json:"created_at"`
	ExpiresAt      time.Time      `json:"expires_at"`
}

// ToolNames lists the approval's tools, for prompts and notices.
func (ap *ToolApproval) ToolNames() string {
	names := make([]string, 0, len(ap.Calls))
	for _, c := range ap.Calls {
		names = append(names, c.Name)
	}
	return strings.Join(names, ", ")
}

// PrettyArguments renders a call's arguments for an approval prompt:
// indented JSON cut to at most max bytes (on a rune boundary), or the raw
// text when it is not JSON.
func PrettyArguments(arguments string, max int) string {
	var v any
	out := arguments
	if json.Unmarshal([]byte(arguments), &v) == nil {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false) // show <, > and & as written
		enc.SetIndent("", "  ")
		if enc.Encode(v) == nil {
			out = strings.TrimSuffix(b.String(), "\n")
		}
	}
	if max > 0 && len(out) > max {
		cut := max
		for cut > 0 && !isRuneStart(out[cut]) {
			cut--
		}
		out = out[:cut] + "…"
	}
	return out
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// ApprovalFilter selects approvals, newest first.
type ApprovalFilter struct {
	Status  ApprovalStatus // empty: any
	EventID string         // empty: any; else the approvals asked while answering that event
	Limit   int            // default 100
}

// ApprovalStore keeps tool approvals.
type ApprovalStore interface {
	CreateApproval(ctx context.Context, ap *ToolApproval) error
	ApprovalByID(ctx context.Context, id string) (*ToolApproval, error)
	// DecideApproval moves a pending approval to status (approved,
	// rejected or expired), recording who decided and when, and in the
	// same transaction enqueues resume (when not nil) unless its
	// (Platform, EventID) is stored already. When the approval is no longer
	// pending it returns the stored approval and an ECONFLICT error.
	DecideApproval(ctx context.Context, id string, status ApprovalStatus, decidedBy string, at time.Time, resume *InboxEvent) (*ToolApproval, error)
	ListApprovals(ctx context.Context, f ApprovalFilter) ([]*ToolApproval, error)
}

// Identity links a chat user to a console user, so that the console knows
// who asked and an admin is an admin in the chat too.
type Identity struct {
	Platform   Platform  `json:"platform"`
	ChatUserID string    `json:"chat_user_id"`
	UserID     string    `json:"user_id"` // the console user
	CreatedAt  time.Time `json:"created_at"`
}

// IdentityStore keeps the links between chat users and console users.
type IdentityStore interface {
	// LinkIdentity stores id, replacing the link of the same (Platform,
	// ChatUserID); ENOTFOUND when the console user does not exist.
	LinkIdentity(ctx context.Context, id *Identity) error
	UnlinkIdentity(ctx context.Context, platform Platform, chatUserID string) error // ENOTFOUND when not linked
	// UserByIdentity returns the console user linked to a chat user; ENOTFOUND when none.
	UserByIdentity(ctx context.Context, platform Platform, chatUserID string) (*User, error)
	IdentitiesOf(ctx context.Context, userID string) ([]*Identity, error) // by platform, chat user id
}

// Resume asks the engine to continue a turn that waited for an approval.
type Resume struct {
	ApprovalID string `json:"approval_id"`
}

// ApprovalEventID is the inbox event id of an approval's resumption: one
// per approval, so a decision delivered twice resumes the turn once.
func ApprovalEventID(approvalID string) string { return "approval:" + approvalID }

// Decision is someone approving or rejecting a tool approval, in a chat
// (Platform and ChatUser) or in the console (ConsoleUser).
type Decision struct {
	ApprovalID  string
	Approve     bool
	Platform    Platform
	ChatUser    ChatUser
	ConsoleUser *User
}

// decider names who decided, for the record and the notices.
func (d Decision) decider() string {
	if d.ConsoleUser != nil {
		return "console:" + d.ConsoleUser.Name
	}
	name := d.ChatUser.Name
	if name == "" {
		name = d.ChatUser.ID
	}
	return string(d.Platform) + ":" + name
}

// ApprovalStores is what deciding an approval needs.
type ApprovalStores interface {
	ApprovalStore
	IdentityStore
}

// DecideApproval records d: it checks that the decider is the user who
// asked or an admin (a console admin, or a chat user linked to one), that
// the approval is still pending and not expired, and then records the
// decision and, for approvals asked in a chat, enqueues the turn's
// resumption in the same transaction (a worker continues it). Approvals
// asked in the console are resumed by the caller (Handle with
// Message.Resume). The error says what went wrong in words for the decider.
func DecideApproval(ctx context.Context, st ApprovalStores, d Decision, now time.Time) (*ToolApproval, error) {
	ap, err := st.ApprovalByID(ctx, d.ApprovalID)
	if IsNotFound(err) {
		return nil, Errorf(ENOTFOUND, "This approval request does not exist (it may have been deleted): ask the assistant again.")
	}
	if err != nil {
		return nil, WrapError(EUNAVAILABLE, err, "The approval could not be loaded; please try again in a minute.")
	}
	if err := mayDecide(ctx, st, ap, d); err != nil {
		return ap, err
	}
	if ap.Status != ApprovalPending {
		return ap, alreadyDecided(ap)
	}
	if !ap.ExpiresAt.IsZero() && now.After(ap.ExpiresAt) {
		if _, err := st.DecideApproval(ctx, ap.ID, ApprovalExpired, "expired", now, nil); err != nil && ErrorCode(err) != ECONFLICT {
			return ap, WrapError(EUNAVAILABLE, err, "The approval could not be updated; please try again in a minute.")
		}
		ap.Status = ApprovalExpired
		return ap, Errorf(EINVALID, "This request to run %s expired on %s: ask the assistant again.", ap.ToolNames(), ap.ExpiresAt.UTC().Format("2 Jan 15:04 MST"))
	}
	status := ApprovalRejected
	if d.Approve {
		status = ApprovalApproved
	}
	var resume *InboxEvent
	if ap.Thread.Channel.Platform != PlatformConsole {
		resume, err = ResumeEvent(ap, now)
		if err != nil {
			return ap, err
		}
	}
	decided, err := st.DecideApproval(ctx, ap.ID, status, d.decider(), now, resume)
	if ErrorCode(err) == ECONFLICT && decided != nil {
		return decided, alreadyDecided(decided)
	}
	if err != nil {
		return ap, WrapError(EUNAVAILABLE, err, "The decision could not be saved; please try again in a minute.")
	}
	return decided, nil
}

// ResumeEvent is the inbox event that continues ap's turn once decided.
func ResumeEvent(ap *ToolApproval, now time.Time) (*InboxEvent, error) {
	id := ApprovalEventID(ap.ID)
	payload, err := json.Marshal(Message{ID: id, Thread: ap.Thread, User: ap.User, ReceivedAt: now, Resume: &Resume{ApprovalID: ap.ID}})
	if err != nil {
		return nil, WrapError(EINTERNAL, err, "encode resume event")
	}
	return &InboxEvent{Platform: ap.Thread.Channel.Platform, EventID: id, ThreadKey: ap.Thread.Key(), Payload: payload}, nil
}

func alreadyDecided(ap *ToolApproval) error {
	if ap.Status == ApprovalExpired {
		return Errorf(ECONFLICT, "This request to run %s expired: ask the assistant again.", ap.ToolNames())
	}
	return Errorf(ECONFLICT, "This request to run %s was already %s by %s.", ap.ToolNames(), ap.Status, ap.DecidedBy)
}

// mayDecide allows the user who asked and admins.
func mayDecide(ctx context.Context, st IdentityStore, ap *ToolApproval, d Decision) error {
	if u := d.ConsoleUser; u != nil {
		if !u.Disabled && (u.Role == RoleAdmin || (ap.Thread.Channel.Platform == PlatformConsole && ap.User.ID == u.ID)) {
			return nil
		}
	} else {
		if d.Platform == ap.Thread.Channel.Platform && d.ChatUser.ID != "" && d.ChatUser.ID == ap.User.ID {
			return nil
		}
		u, err := st.UserByIdentity(ctx, d.Platform, d.ChatUser.ID)
		switch {
		case err == nil && u.Role == RoleAdmin && !u.Disabled:
			return nil
		case err != nil && !IsNotFound(err):
			return WrapError(EUNAVAILABLE, err, "Your permissions could not be checked; please try again in a minute.")
		}
	}
	who := ap.User.Name
	if who == "" {
		who = "the person who asked"
	}
	return Errorf(EFORBIDDEN, "Only %s or an admin can approve or reject this request to run %s.", who, ap.ToolNames())
}

// approvalNotice is the words shown while a turn waits for a decision.
func approvalNotice(ap *ToolApproval) string {
	who := ap.User.Name
	if who == "" {
		who = "the person who asked"
	}
	return fmt.Sprintf("Waiting for approval to run %s: %s or an admin can approve or reject it.", ap.ToolNames(), who)
}
