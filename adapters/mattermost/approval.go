package mattermost

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/convosphere/convosphere/engine"
)

// Approval prompts: an answer waiting for a tool approval shows the calls
// in an interactive message attachment with Approve and Reject buttons.
// Mattermost keeps each button's integration (URL and context) on the
// server and strips it from the posts clients read; a click makes the
// server POST the context, with who clicked, to the adapter's Handler.
// The context carries an HMAC of the approval id and the decision, keyed
// by a secret derived from the bot token, so a forged request cannot
// decide anything.

// Button ids: Mattermost routes clicks to /posts/{post_id}/actions/{id},
// which accepts letters and digits only.
const (
	actionApprove = "approve"
	actionReject  = "reject"
)

// maxArgumentBytes bounds each call's arguments shown in a prompt.
const maxArgumentBytes = 1500

// maxActionBody bounds the integration request Mattermost sends.
const maxActionBody = 64 << 10

// actionSecret derives the key of the buttons' tokens from the bot token.
func actionSecret(botToken string) []byte {
	m := hmac.New(sha256.New, []byte(botToken))
	m.Write([]byte("convosphere mattermost approval actions v1"))
	return m.Sum(nil)
}

// actionToken signs one button: the approval and the decision it makes.
func actionToken(secret []byte, approvalID, decision string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(approvalID))
	m.Write([]byte{0})
	m.Write([]byte(decision))
	return hex.EncodeToString(m.Sum(nil))
}

// validToken checks a button's token in constant time.
func validToken(secret []byte, approvalID, decision, token string) bool {
	got, err := hex.DecodeString(token)
	if err != nil {
		return false
	}
	want, _ := hex.DecodeString(actionToken(secret, approvalID, decision))
	return hmac.Equal(got, want)
}

// approvalAttachment renders the prompt for ap: who wants to run what,
// each call's arguments, the notice, and the buttons (none when the
// adapter has no actions URL: the prompt then points to the console).
func (a *Adapter) approvalAttachment(ap *engine.ToolApproval, notice string) *model.SlackAttachment {
	who := ap.AssistantName
	if who == "" {
		who = "The assistant"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "**%s** wants to run %s:\n", who, toolList(ap))
	for _, c := range ap.Calls {
		fmt.Fprintf(&sb, "\n`%s`\n```json\n%s\n```\n", c.Name, engine.PrettyArguments(c.Arguments, maxArgumentBytes))
	}
	if notice = strings.TrimSpace(notice); notice != "" {
		sb.WriteString("\n" + notice)
	}
	att := &model.SlackAttachment{
		Fallback: fmt.Sprintf("%s wants to run %s: approve or reject it.", who, ap.ToolNames()),
		Color:    "warning",
		Title:    "Approval needed",
	}
	if a.cfg.ActionsURL == "" {
		sb.WriteString("\n\n_Buttons are not set up on this server (mattermost.actions_url): approve or reject it in the ConvoSphere console._")
		att.Text = sb.String()
		return att
	}
	att.Text = sb.String()
	button := func(id, name, style string) *model.PostAction {
		return &model.PostAction{Id: id, Type: model.PostActionTypeButton, Name: name, Style: style,
			Integration: &model.PostActionIntegration{URL: a.cfg.ActionsURL, Context: map[string]any{
				"approval_id": ap.ID,
				"decision":    id,
				"token":       actionToken(a.secret, ap.ID, id),
			}}}
	}
	att.Actions = []*model.PostAction{button(actionApprove, "Approve", "good"), button(actionReject, "Reject", "danger")}
	return att
}

// toolList names the approval's tools in code spans.
func toolList(ap *engine.ToolApproval) string {
	seen := map[string]bool{}
	var names []string
	for _, c := range ap.Calls {
		if !seen[c.Name] {
			seen[c.Name] = true
			names = append(names, "`"+c.Name+"`")
		}
	}
	return strings.Join(names, ", ")
}

// Handler serves Mattermost's integration requests for the approval
// buttons (the bot serves it at POST /mattermost/actions; set
// mattermost.actions_url to where the Mattermost server reaches it).
func (a *Adapter) Handler() http.Handler { return http.HandlerFunc(a.serveAction) }

func (a *Adapter) serveAction(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	var req model.PostActionIntegrationRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxActionBody)).Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "invalid integration request", http.StatusBadRequest)
		return
	}
	approvalID, _ := req.Context["approval_id"].(string)
	decision, _ := req.Context["decision"].(string)
	token, _ := req.Context["token"].(string)
	if approvalID == "" || token == "" || !validToken(a.secret, approvalID, decision, token) {
		a.log.WarnContext(r.Context(), "mattermost: approval action with an invalid token", "post_id", req.PostId, "user_id", req.UserId)
		http.Error(w, "invalid token", http.StatusUnauthorized)
		return
	}
	if (decision != actionApprove && decision != actionReject) || req.UserId == "" {
		http.Error(w, "invalid integration request", http.StatusBadRequest)
		return
	}
	d := engine.Decision{ApprovalID: approvalID, Approve: decision == actionApprove, Platform: engine.PlatformMattermost,
		ChatUser: engine.ChatUser{ID: req.UserId, Name: req.UserName}}
	ap, err := engine.DecideApproval(r.Context(), a.store, d, a.now())
	var resp model.PostActionIntegrationResponse
	if err != nil {
		a.log.InfoContext(r.Context(), "mattermost: approval not decided", "approval_id", approvalID, "decision", decision,
			"user_id", req.UserId, "code", engine.ErrorCode(err), "error", err)
		resp.EphemeralText = engine.ErrorMessage(err)
		if ap != nil && ap.Status != engine.ApprovalPending {
			// Decided elsewhere (the console, another click) or expired:
			// the buttons can no longer do anything, so they go.
			resp.Update = a.decidedPost(r.Context(), req.PostId, ap.Status, decidedName(ap.DecidedBy))
		}
	} else {
		a.log.InfoContext(r.Context(), "mattermost: approval decided", "approval_id", approvalID, "decision", decision,
			"user_id", req.UserId, "trace_id", ap.TraceID)
		name := req.UserName
		if name == "" {
			name = req.UserId
		}
		resp.Update = a.decidedPost(r.Context(), req.PostId, ap.Status, "@"+name)
		if resp.Update == nil {
			resp.EphemeralText = fmt.Sprintf("%s: the answer goes on in the thread.", statusLine(ap.Status, "@"+name))
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&resp)
}

// decidedName turns a stored decider ("mattermost:ada", "console:bob")
// into words for the post.
func decidedName(by string) string {
	platform, name, ok := strings.Cut(by, ":")
	switch {
	case !ok:
		return by
	case platform == string(engine.PlatformMattermost):
		return "@" + name
	case platform == string(engine.PlatformConsole):
		return name + " (in the console)"
	}
	return name
}

// statusLine is what replaces the buttons once the approval is decided.
func statusLine(status engine.ApprovalStatus, by string) string {
	switch status {
	case engine.ApprovalApproved:
		return "✅ Approved by " + by
	case engine.ApprovalRejected:
		return "❌ Rejected by " + by
	case engine.ApprovalExpired:
		return "⌛ Expired: ask the assistant again"
	}
	return string(status)
}

// decidedPost is the prompt post with its buttons replaced by the
// decision, or nil when the post cannot be read (the buttons then stay;
// a later click says it was decided).
func (a *Adapter) decidedPost(ctx context.Context, postID string, status engine.ApprovalStatus, by string) *model.Post {
	if postID == "" {
		return nil
	}
	p, resp, err := a.api.GetPost(ctx, postID, "")
	if err != nil {
		a.log.WarnContext(ctx, "mattermost: cannot read the approval prompt to update it", "post_id", postID, "error", apiError("read post", resp, err))
		return nil
	}
	color := map[engine.ApprovalStatus]string{engine.ApprovalApproved: "good", engine.ApprovalRejected: "danger"}[status]
	if color == "" {
		color = "#8d96a0"
	}
	line := "**" + statusLine(status, by) + "**"
	var atts []*model.SlackAttachment
	for _, att := range p.Attachments() {
		if len(att.Actions) > 0 || att.Title == "Approval needed" {
			att.Actions = nil
			att.Color = color
			att.Text = strings.TrimRight(att.Text, "\n") + "\n\n" + line
			line = ""
		}
		atts = append(atts, att)
	}
	if line != "" {
		atts = append(atts, &model.SlackAttachment{Color: color, Text: line, Fallback: statusLine(status, by)})
	}
	props := model.StringInterface{}
	for k, v := range p.GetProps() {
		props[k] = v
	}
	props["attachments"] = atts
	return &model.Post{Id: p.Id, Message: p.Message, Props: props}
}
