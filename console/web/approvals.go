package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// approvalJSON is a tool approval as the API shows it: in a chat answer
// whose outcome is awaiting_approval, in the list of approvals and in the
// answer to a decision taken for a chat platform.
type approvalJSON struct {
	ID             string                `json:"id"`
	Status         engine.ApprovalStatus `json:"status"`
	Assistant      string                `json:"assistant"`
	Tools          []approvalToolJSON    `json:"tools"`
	ExpiresAt      time.Time             `json:"expires_at"`
	CreatedAt      time.Time             `json:"created_at,omitzero"`
	Platform       engine.Platform       `json:"platform,omitempty"`
	User           engine.ChatUser       `json:"user"`
	ConversationID string                `json:"conversation_id,omitempty"`
	TraceID        string                `json:"trace_id,omitempty"`
	DecidedBy      string                `json:"decided_by,omitempty"`
	DecidedAt      time.Time             `json:"decided_at,omitzero"`
}

// approvalToolJSON is one call waiting for approval: the tool and the
// arguments the model gave it (JSON text, as the model wrote it).
type approvalToolJSON struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// approvalJSONOf shows ap. With a non-zero now, a pending approval past its
// expiry shows as expired (the store marks it when someone tries to decide).
func approvalJSONOf(ap *engine.ToolApproval, now time.Time) approvalJSON {
	out := approvalJSON{
		ID: ap.ID, Status: effectiveStatus(ap, now), Assistant: ap.AssistantName, Tools: make([]approvalToolJSON, 0, len(ap.Calls)),
		ExpiresAt: ap.ExpiresAt, CreatedAt: ap.CreatedAt, Platform: ap.Thread.Channel.Platform, User: ap.User,
		ConversationID: ap.ConversationID, TraceID: ap.TraceID, DecidedBy: ap.DecidedBy, DecidedAt: ap.DecidedAt,
	}
	for _, c := range ap.Calls {
		out.Tools = append(out.Tools, approvalToolJSON{Name: c.Name, Arguments: c.Arguments})
	}
	return out
}

// effectiveStatus is ap's status, expired when it is pending past its
// expiry at now (zero now: as stored).
func effectiveStatus(ap *engine.ToolApproval, now time.Time) engine.ApprovalStatus {
	if ap.Status == engine.ApprovalPending && !now.IsZero() && !ap.ExpiresAt.IsZero() && now.After(ap.ExpiresAt) {
		return engine.ApprovalExpired
	}
	return ap.Status
}

// decisionRequest is the body of POST /api/v1/tool-approvals/:id.
type decisionRequest struct {
	Decision string `json:"decision"`
}

var decisionForm = jsonForm{
	Example: `{"decision": "approve"}`,
	Fields:  `"decision"`,
	Hint:    `send {"decision": "approve"} or {"decision": "reject"}`,
}

// maxSmallBody bounds the JSON bodies of the management API (a decision,
// an assistant).
const maxSmallBody = 256 << 10

// readJSON reads a small JSON request body strictly: a JSON content type
// (or none), at most limit bytes of UTF-8, exactly one object with only
// the fields of v.
func readJSON(c *gin.Context, limit int64, v any, form jsonForm) error {
	if err := checkJSONContentType(c.GetHeader("Content-Type")); err != nil {
		return err
	}
	raw, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return engine.Errorf(engine.ETOOLARGE, "The request body is over %d bytes.", limit)
		}
		return engine.WrapError(engine.EINVALID, err, "The request body could not be read; send it again.")
	}
	if !utf8.Valid(raw) {
		return engine.Errorf(engine.EINVALID, "The request body is not valid UTF-8 (first bad byte at offset %d): send the JSON as UTF-8.", firstInvalidUTF8(raw))
	}
	return decodeJSONBody(raw, v, form)
}

// decideApproval serves POST /api/v1/tool-approvals/:id: the user who
// asked, or an admin, approves or rejects the tool calls a turn waits for.
// A turn asked in the console (Playground or API) goes on at once and is
// answered exactly like POST /api/v1/chat; one asked in a chat platform is
// resumed by the bot (202 with the decided approval).
func (s *Server) decideApproval(c *gin.Context) {
	p := principalOf(c)
	id := c.Param("id")
	var req decisionRequest
	if err := readJSON(c, 4<<10, &req, decisionForm); err != nil {
		s.fail(c, err)
		return
	}
	var approve bool
	switch req.Decision {
	case "approve":
		approve = true
	case "reject":
	default:
		s.fail(c, engine.Errorf(engine.EINVALID, "Field \"decision\" must be \"approve\" or \"reject\", not %q.", req.Decision))
		return
	}
	ctx := c.Request.Context()
	ap, err := engine.DecideApproval(ctx, s.deps.Store, engine.Decision{ApprovalID: id, Approve: approve, ConsoleUser: p.User}, s.now())
	if err != nil {
		s.fail(c, err)
		return
	}
	s.log.InfoContext(ctx, "tool approval decided", "approval_id", ap.ID, "status", string(ap.Status),
		"user_id", p.User.ID, "platform", string(ap.Thread.Channel.Platform), "tools", ap.ToolNames())
	if ap.Thread.Channel.Platform != engine.PlatformConsole {
		s.writeJSON(c, http.StatusAccepted, map[string]any{"approval": approvalJSONOf(ap, time.Time{})})
		return
	}
	s.answer(c, engine.Message{
		ID:         engine.ApprovalEventID(ap.ID),
		Thread:     ap.Thread,
		User:       ap.User,
		ReceivedAt: s.now(),
		Resume:     &engine.Resume{ApprovalID: ap.ID},
	})
}

// listApprovals serves GET /api/v1/tool-approvals, newest first: every
// approval for admins, the user's own console approvals for the others.
// ?status= (pending, approved, rejected, expired) and ?limit= (1 to 500,
// default 100) narrow it.
func (s *Server) listApprovals(c *gin.Context) {
	p := principalOf(c)
	status := engine.ApprovalStatus(c.Query("status"))
	switch status {
	case "", engine.ApprovalPending, engine.ApprovalApproved, engine.ApprovalRejected, engine.ApprovalExpired:
	default:
		s.fail(c, engine.Errorf(engine.EINVALID, "status %q is unknown: use pending, approved, rejected or expired.", status))
		return
	}
	limit := 100
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			s.fail(c, engine.Errorf(engine.EINVALID, "limit %q is invalid: use 1 to 500.", l))
			return
		}
		limit = n
	}
	list, err := s.approvals(c.Request.Context(), p.User, status, limit)
	if err != nil {
		s.fail(c, err)
		return
	}
	now := s.now()
	out := make([]approvalJSON, 0, len(list))
	for _, ap := range list {
		out = append(out, approvalJSONOf(ap, now))
	}
	s.writeJSON(c, http.StatusOK, map[string]any{"approvals": out})
}

// approvals lists the approvals user may see with the status as shown (a
// pending approval past its expiry counts as expired), newest first.
func (s *Server) approvals(ctx context.Context, user *engine.User, status engine.ApprovalStatus, limit int) ([]*engine.ToolApproval, error) {
	f := engine.ApprovalFilter{Status: status, Limit: limit}
	admin := user.Role == engine.RoleAdmin
	if status == engine.ApprovalExpired {
		f.Status = "" // expired ones may still be stored as pending
	}
	if !admin || status == engine.ApprovalPending || status == engine.ApprovalExpired {
		f.Limit = 500 // filtered below (by user, or by expiry)
	}
	list, err := s.deps.Store.ListApprovals(ctx, f)
	if err != nil {
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "The tool approvals could not be loaded; please try again in a minute.")
	}
	now := s.now()
	out := make([]*engine.ToolApproval, 0, len(list))
	for _, ap := range list {
		if !admin && (ap.Thread.Channel.Platform != engine.PlatformConsole || ap.User.ID != user.ID) {
			continue
		}
		if status != "" && effectiveStatus(ap, now) != status {
			continue
		}
		out = append(out, ap)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}
