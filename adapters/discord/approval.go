package discord

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/textsplit"
)

// Approval buttons: custom_id "convosphere:approve:<approval id>" or
// "convosphere:reject:<approval id>" (Discord allows 100 characters).
const (
	approvePrefix = "convosphere:approve:"
	rejectPrefix  = "convosphere:reject:"
	maxCustomID   = 100
)

// Approval prompts.
const (
	argumentsBudget = 1500 // bytes of one call's arguments shown in a prompt
	minArguments    = 200  // per call, when several share the budget
	waitingMarker   = "⏳ " // starts the prompt's last line, replaced by the decision
	// decideTimeout keeps a decision inside Discord's 3 seconds.
	decideTimeout = 2500 * time.Millisecond
)

// approvalContent is an awaiting answer as shown in Discord: the text so
// far, then the prompt.
func approvalContent(ans engine.Answer) string {
	prompt := approvalPrompt(ans.Approval, ans.Notice)
	if text := strings.TrimSpace(ans.Text); text != "" {
		return text + "\n\n" + prompt
	}
	return prompt
}

// approvalPrompt says which assistant wants to run which tools, each
// call's arguments in a code block, and the notice (what to do).
func approvalPrompt(ap *engine.ToolApproval, notice string) string {
	var sb strings.Builder
	tools := "a tool"
	if len(ap.Calls) > 1 {
		tools = fmt.Sprintf("%d tools", len(ap.Calls))
	}
	assistant := ap.AssistantName
	if assistant == "" {
		assistant = "The assistant"
	}
	fmt.Fprintf(&sb, "🛠️ **%s** wants to run %s that needs approval:", escapeMarkdown(assistant), tools)
	budget := argumentsBudget
	if n := len(ap.Calls); n > 1 {
		budget = max(minArguments, argumentsBudget/n)
	}
	for _, c := range ap.Calls {
		fmt.Fprintf(&sb, "\n**%s**\n%s", escapeMarkdown(c.Name), codeBlock(c.Arguments, budget))
	}
	if notice = strings.TrimSpace(notice); notice == "" {
		notice = "Waiting for approval to run " + ap.ToolNames() + "."
	}
	sb.WriteString("\n" + waitingMarker + "_" + escapeMarkdown(notice) + "_")
	return sb.String()
}

// codeBlock shows a call's arguments in a fenced block that they cannot
// close: Discord ends a code block at the first three backticks, wherever
// they are, so adjacent backticks in the arguments are kept apart with a
// zero-width space.
func codeBlock(arguments string, budget int) string {
	lang := ""
	if json.Valid([]byte(arguments)) {
		lang = "json"
	}
	args := engine.PrettyArguments(arguments, budget)
	if strings.TrimSpace(args) == "" {
		args, lang = "{}", "json"
	}
	return "```" + lang + "\n" + fenceSafe(args) + "\n```"
}

// fenceSafe puts a zero-width space between adjacent backticks, so that no
// run of them can end (or open) a code block.
func fenceSafe(s string) string {
	if !strings.Contains(s, "``") {
		return s
	}
	var sb strings.Builder
	prev := rune(0)
	for _, r := range s {
		if r == '`' && prev == '`' {
			sb.WriteRune('\u200b')
		}
		sb.WriteRune(r)
		prev = r
	}
	return sb.String()
}

var markdownEscaper = strings.NewReplacer(
	`\`, `\\`, "*", `\*`, "_", `\_`, "`", "\\`", "~", `\~`, "|", `\|`, ">", `\>`, "[", `\[`, "]", `\]`,
)

// escapeMarkdown keeps names and notices from being read as formatting.
func escapeMarkdown(s string) string { return markdownEscaper.Replace(s) }

// approvalButtons approve or reject an approval; nil when its id does not
// fit in a custom_id (it can still be decided in the console).
func approvalButtons(ap *engine.ToolApproval) []discordgo.MessageComponent {
	if ap.ID == "" || len(rejectPrefix+ap.ID) > maxCustomID || len(approvePrefix+ap.ID) > maxCustomID {
		return nil
	}
	return []discordgo.MessageComponent{discordgo.ActionsRow{Components: []discordgo.MessageComponent{
		discordgo.Button{Label: "Approve", Style: discordgo.SuccessButton, CustomID: approvePrefix + ap.ID},
		discordgo.Button{Label: "Reject", Style: discordgo.DangerButton, CustomID: rejectPrefix + ap.ID},
	}}}
}

// parseApproval reads an approval button's custom_id.
func parseApproval(customID string) (id string, approve, ok bool) {
	if id, ok := strings.CutPrefix(customID, approvePrefix); ok && id != "" {
		return id, true, true
	}
	if id, ok := strings.CutPrefix(customID, rejectPrefix); ok && id != "" {
		return id, false, true
	}
	return "", false, false
}

// decide records a click on an approval button. The asker or an admin
// gets the prompt edited in place (decision added, buttons removed) and
// the engine resumes the turn from the inbox; anyone else, or a click on
// a request already decided, gets the reason privately.
func (a *Adapter) decide(ctx context.Context, in *discordgo.Interaction, id string, approve bool) *discordgo.InteractionResponse {
	ctx, cancel := context.WithTimeout(ctx, decideTimeout)
	defer cancel()
	user := userOf(in)
	d := engine.Decision{ApprovalID: id, Approve: approve, Platform: engine.PlatformDiscord, ChatUser: user}
	ap, err := engine.DecideApproval(ctx, a.store, d, a.now())
	if err != nil {
		switch code := engine.ErrorCode(err); code {
		case engine.EFORBIDDEN, engine.ECONFLICT, engine.ENOTFOUND, engine.EINVALID:
			a.log.InfoContext(ctx, "discord approval refused", "approval_id", id, "user_id", user.ID, "code", code)
		default:
			a.log.ErrorContext(ctx, "discord approval not recorded", "approval_id", id, "user_id", user.ID, "error", err)
		}
		return ephemeral(engine.ErrorMessage(err))
	}
	a.log.InfoContext(ctx, "discord approval decided", "approval_id", id, "user_id", user.ID, "approved", approve)
	line := "❌ Rejected by <@" + user.ID + ">"
	if approve {
		line = "✅ Approved by <@" + user.ID + ">"
	}
	content := ""
	if in.Message != nil {
		content = in.Message.Content
	}
	if strings.TrimSpace(content) == "" {
		content = approvalPrompt(ap, "")
	}
	return &discordgo.InteractionResponse{
		Type: discordgo.InteractionResponseUpdateMessage,
		Data: &discordgo.InteractionResponseData{
			Content:         decidedContent(content, line),
			Components:      []discordgo.MessageComponent{}, // removes the buttons
			AllowedMentions: noMentions,
		},
	}
}

// decidedContent is a prompt once decided: its "waiting" line replaced by
// the decision, within the 2000 characters of a message.
func decidedContent(content, line string) string {
	content = strings.TrimRight(content, " \n")
	if i := strings.LastIndex(content, "\n"); i >= 0 && strings.HasPrefix(content[i+1:], waitingMarker) {
		content = strings.TrimRight(content[:i], " \n")
	} else if strings.HasPrefix(content, waitingMarker) {
		content = ""
	}
	if content == "" {
		return line
	}
	room := MessageLimit - utf8.RuneCountInString(line) - 1
	return textsplit.Truncate(content, room, "…") + "\n" + line
}
