package slack

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/convosphere/convosphere/adapters/slack/mrkdwn"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/textsplit"
)

// Approval buttons: the action id says approve or reject, the value is
// the approval's id. approvalBlockID names the block that holds the
// buttons and, once decided, the line saying who decided.
const (
	actionApprove   = "convosphere_tool_approve"
	actionReject    = "convosphere_tool_reject"
	approvalBlockID = "convosphere_approval"
)

// Approval prompt limits: a section's text holds at most 3000 characters
// and a message at most 50 blocks.
const (
	promptArgumentBytes = 1500 // of one call's arguments, pretty-printed
	promptSectionChars  = 2900
	promptMaxCalls      = 10
)

// approvalBlocks is the approval prompt: which assistant wants to run
// which tools, each call with its arguments, the notice (who can decide)
// and the Approve and Reject buttons. Everything that comes from the
// model or a user is escaped, so it cannot format, link or ping.
func approvalBlocks(ap *engine.ToolApproval, notice string) []slack.Block {
	who := safeText(strings.TrimSpace(ap.AssistantName))
	if who == "" {
		who = "The assistant"
	} else {
		who = "*" + who + "*"
	}
	names := make([]string, 0, len(ap.Calls))
	seen := map[string]bool{}
	for _, c := range ap.Calls {
		if !seen[c.Name] {
			seen[c.Name] = true
			names = append(names, "`"+toolName(c.Name)+"`")
		}
	}
	header := fmt.Sprintf(":lock: %s wants to run %s.", who, strings.Join(names, ", "))
	if len(ap.Calls) > 1 {
		header = fmt.Sprintf(":lock: %s wants to run %d tool calls: %s.", who, len(ap.Calls), strings.Join(names, ", "))
	}
	blocks := []slack.Block{mrkdwnSection(textsplit.Truncate(header, promptSectionChars, "…"))}
	for i, c := range ap.Calls {
		if i == promptMaxCalls {
			more := fmt.Sprintf("…and %d more calls, decided together with these.", len(ap.Calls)-i)
			blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, more, false, false)))
			break
		}
		blocks = append(blocks, mrkdwnSection(callText(c)))
	}
	if notice = strings.TrimSpace(notice); notice != "" {
		blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, textsplit.Truncate(safeText(notice), promptSectionChars, "…"), false, false)))
	}
	approve := slack.NewButtonBlockElement(actionApprove, ap.ID, slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false)).WithStyle(slack.StylePrimary)
	reject := slack.NewButtonBlockElement(actionReject, ap.ID, slack.NewTextBlockObject(slack.PlainTextType, "Reject", false, false)).WithStyle(slack.StyleDanger)
	return append(blocks, slack.NewActionBlock(approvalBlockID, approve, reject))
}

// callText shows one call: the tool's name and its arguments in a code
// block.
func callText(c engine.ToolCall) string {
	args := strings.TrimSpace(engine.PrettyArguments(c.Arguments, promptArgumentBytes))
	name := "*`" + toolName(c.Name) + "`*"
	if args == "" || args == "{}" || args == "null" {
		return name + " _(no arguments)_"
	}
	code := breakFences(safeText(args))
	code = textsplit.Truncate(code, promptSectionChars-len(name)-10, "…")
	return name + "\n```\n" + code + "\n```"
}

// approvalFallback is the prompt message's notification text.
func approvalFallback(ans engine.Answer) string {
	if n := strings.TrimSpace(ans.Notice); n != "" {
		return safeText(n)
	}
	return safeText("Waiting for approval to run " + ans.Approval.ToolNames() + ".")
}

func mrkdwnSection(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

// safeText escapes text for mrkdwn and breaks bare @channel, @here and
// @everyone.
func safeText(s string) string { return neutralise(mrkdwn.Escape(strings.ToValidUTF8(s, "\uFFFD"))) }

// toolName is a tool's name for inline code: escaped, without backticks.
func toolName(name string) string {
	name = strings.ReplaceAll(strings.TrimSpace(name), "`", "'")
	if name == "" {
		name = "unnamed tool"
	}
	return safeText(name)
}

// breakFences puts a zero-width space between backticks, so that text
// inside a ``` block cannot end it.
func breakFences(s string) string { return strings.ReplaceAll(s, "``", "`\u200b`") }

// slackUserID matches a Slack user id, safe inside <@…>.
var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]+$`)

// decide records a click on an approval's button. The decision is made
// before the interaction is acknowledged; the prompt's update (or the
// message telling the clicker why not) is posted in the background.
func (a *Adapter) decide(ctx context.Context, cb *slack.InteractionCallback, approvalID string, approve bool) {
	d := engine.Decision{
		ApprovalID: strings.TrimSpace(approvalID), Approve: approve, Platform: engine.PlatformSlack,
		ChatUser: engine.ChatUser{ID: cb.User.ID, Name: cb.User.Name},
	}
	ap, err := engine.DecideApproval(ctx, a.store, d, a.now())
	msg := promptMessage{
		channel: firstNonEmpty(cb.Channel.ID, cb.Container.ChannelID),
		ts:      firstNonEmpty(cb.Message.Timestamp, cb.Container.MessageTs),
		thread:  cb.Message.ThreadTimestamp,
		text:    cb.Message.Text,
		blocks:  cb.Message.Blocks.BlockSet,
	}
	bg := context.WithoutCancel(ctx)
	decision := map[bool]string{true: "approve", false: "reject"}[approve]
	if err == nil {
		a.log.InfoContext(ctx, "slack tool approval decided", "approval_id", d.ApprovalID, "user_id", d.ChatUser.ID, "decision", decision)
		line := decidedLine(ap.Status, userMention(cb.User.ID, cb.User.Name))
		a.wg.Go(func() { a.showDecision(bg, msg, line) })
		return
	}
	code := engine.ErrorCode(err)
	text := engine.ErrorMessage(err)
	switch code {
	case engine.EFORBIDDEN, engine.ECONFLICT, engine.EINVALID, engine.ENOTFOUND:
		a.log.InfoContext(ctx, "slack tool approval refused", "approval_id", d.ApprovalID, "user_id", d.ChatUser.ID, "decision", decision, "error_code", code)
	case engine.EUNAVAILABLE:
		a.log.ErrorContext(ctx, "slack tool approval not saved", "approval_id", d.ApprovalID, "user_id", d.ChatUser.ID, "error", err)
		text = "Your decision could not be saved right now; please click the button again in a moment."
	default:
		a.log.ErrorContext(ctx, "slack tool approval failed", "approval_id", d.ApprovalID, "user_id", d.ChatUser.ID, "error", err)
	}
	if (code == engine.ECONFLICT || code == engine.EINVALID) && ap != nil && ap.Status != engine.ApprovalPending &&
		!strings.HasPrefix(ap.DecidedBy, string(engine.PlatformSlack)+":") {
		// Expired, or decided in the console: the buttons go, so nobody
		// else clicks them in vain. (A click in Slack replaced them with
		// its own line already.)
		line := decidedLine(ap.Status, safeText(ap.DecidedBy))
		a.wg.Go(func() { a.showDecision(bg, msg, line) })
	}
	if msg.channel != "" && cb.User.ID != "" {
		user := cb.User.ID
		a.wg.Go(func() { a.tellClicker(bg, msg, user, safeText(text)) })
	}
}

// promptMessage is the message an approval's button was clicked in.
type promptMessage struct {
	channel, ts, thread, text string
	blocks                    []slack.Block
}

// userMention names a Slack user in mrkdwn: <@U…> when id is a user id, else
// their name, escaped.
func userMention(id, name string) string {
	if slackUserID.MatchString(id) {
		return "<@" + id + ">"
	}
	return safeText(firstNonEmpty(name, id, "someone"))
}

// decidedLine is the line that replaces the buttons once decided; who is
// mrkdwn.
func decidedLine(status engine.ApprovalStatus, who string) string {
	switch status {
	case engine.ApprovalApproved:
		return "✅ Approved by " + who
	case engine.ApprovalRejected:
		return "❌ Rejected by " + who
	case engine.ApprovalExpired:
		return "⌛ This request expired without a decision."
	}
	return "This request is " + safeText(string(status)) + "."
}

// showDecision edits the prompt message: the buttons become a line saying
// who decided; the rest of the message stays as it is.
func (a *Adapter) showDecision(ctx context.Context, msg promptMessage, line string) {
	if msg.channel == "" || msg.ts == "" {
		return
	}
	blocks, ok := replaceButtons(msg.blocks, line)
	if !ok {
		a.log.WarnContext(ctx, "slack approval prompt not updated: its buttons are not in the message", "channel", msg.channel)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := a.call(ctx, "chat.update", msg.channel, func(ctx context.Context) error {
		_, _, _, err := a.api.UpdateMessageContext(ctx, msg.channel, msg.ts, slack.MsgOptionText(msg.text, false), slack.MsgOptionBlocks(blocks...))
		return err
	})
	if err != nil {
		a.log.WarnContext(ctx, "slack approval prompt not updated", "channel", msg.channel, "error", err)
	}
}

// replaceButtons returns blocks with the approval's actions block (or the
// line that already replaced it) replaced by a context block showing line.
func replaceButtons(blocks []slack.Block, line string) ([]slack.Block, bool) {
	out := make([]slack.Block, 0, len(blocks))
	found := false
	for _, b := range blocks {
		if b.ID() == approvalBlockID || isApprovalActions(b) {
			if !found {
				out = append(out, slack.NewContextBlock(approvalBlockID, slack.NewTextBlockObject(slack.MarkdownType, line, false, false)))
			}
			found = true
			continue
		}
		out = append(out, b)
	}
	return out, found
}

func isApprovalActions(b slack.Block) bool {
	ab, ok := b.(*slack.ActionBlock)
	if !ok || ab.Elements == nil {
		return false
	}
	for _, el := range ab.Elements.ElementSet {
		if btn, ok := el.(*slack.ButtonBlockElement); ok && (btn.ActionID == actionApprove || btn.ActionID == actionReject) {
			return true
		}
	}
	return false
}

// tellClicker tells the user who clicked, and only them, why their click
// did nothing.
func (a *Adapter) tellClicker(ctx context.Context, msg promptMessage, user, text string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
	if msg.thread != "" {
		opts = append(opts, slack.MsgOptionTS(msg.thread))
	}
	err := a.call(ctx, "chat.postEphemeral", msg.channel, func(ctx context.Context) error {
		_, err := a.api.PostEphemeralContext(ctx, msg.channel, user, opts...)
		return err
	})
	if err != nil {
		a.log.WarnContext(ctx, "slack approval refusal not posted", "channel", msg.channel, "error", err)
	}
}
