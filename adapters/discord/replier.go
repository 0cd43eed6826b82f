package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/textsplit"
)

// tokenMargin keeps clear of an interaction token's expiry: a token this
// close to 15 minutes old is not used.
const tokenMargin = time.Minute

// How a posted part was made, stored in the outbox as a prefix of its id:
// the deferred original response, a follow-up (both edited through the
// interaction's webhook) or a plain channel message.
const (
	kindOriginal = "o:"
	kindFollowup = "w:"
	kindChannel  = "c:"
)

var noMentions = &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}}

// Replier implements engine.ReplierFactory.
func (a *Adapter) Replier(ctx context.Context, ev *engine.InboxEvent, msg engine.Message) (engine.Replier, error) {
	var p payload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		return nil, engine.WrapError(engine.EINVALID, err, "discord interaction %s: decode payload", ev.EventID)
	}
	if msg.Resume != nil {
		// A turn resumed after an approval answers in a new channel message
		// (a reply to the prompt when it can be found): the interaction
		// token of the question may have expired long ago.
		p.Discord = meta{ReplyTo: a.promptMessage(ctx, msg.Resume.ApprovalID), ReceivedAt: msg.ReceivedAt}
	}
	r := &replier{a: a, ev: ev, meta: p.Discord, channel: msg.Thread.Channel.ID,
		hook: &discordgo.Interaction{AppID: p.Discord.ApplicationID, Token: p.Discord.Token}}
	out, err := a.store.Outbound(ctx, engine.PlatformDiscord, ev.EventID)
	if err != nil {
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "discord interaction %s: read outbox", ev.EventID)
	}
	for _, o := range out {
		r.set(o.Part, o.MessageID)
	}
	return r, nil
}

// replier shows one answer: edits of the deferred response while it
// streams (at most one per UpdateInterval), follow-ups for what does not
// fit in 2000 characters, and at the end the citations as an embed and
// the feedback buttons. Once the interaction token is (nearly) 15 minutes
// old, the rest goes to the channel as plain messages.
type replier struct {
	a       *Adapter
	ev      *engine.InboxEvent
	meta    meta
	channel string
	hook    *discordgo.Interaction

	posted    []string // per part: kind prefix + message id ("" when not posted)
	shown     []string
	lastFlush time.Time
}

func (r *replier) set(part int, id string) {
	for len(r.posted) <= part {
		r.posted = append(r.posted, "")
		r.shown = append(r.shown, "")
	}
	r.posted[part] = id
}

// tokenUsable says whether the interaction token may still be used.
func (r *replier) tokenUsable() bool {
	return r.meta.Token != "" && r.a.now().Sub(r.meta.ReceivedAt) < tokenLifetime-tokenMargin
}

// Update shows the answer so far, at most once per UpdateInterval.
func (r *replier) Update(ctx context.Context, u engine.Update) error {
	if strings.TrimSpace(u.Text) == "" || r.a.now().Sub(r.lastFlush) < r.a.cfg.UpdateInterval {
		return nil
	}
	r.lastFlush = r.a.now()
	return r.show(ctx, u.Text, nil, nil)
}

// Finish shows the final answer, or the notice why there is none. A turn
// that waits for an approval shows the text so far and the approval
// prompt, with Approve and Reject buttons.
func (r *replier) Finish(ctx context.Context, ans engine.Answer) error {
	if ans.Approval != nil {
		return r.show(ctx, approvalContent(ans), nil, approvalButtons(ans.Approval))
	}
	if ans.Silent && r.meta.Token == "" && len(r.posted) == 0 {
		return nil // a mention told once already (rate limit); a slash command always gets its answer
	}
	text := ans.Display()
	return r.show(ctx, text, citationsEmbed(ans), feedbackButtons(ans))
}

// show makes the answer read text: split at 2000 characters, each part
// edited where it was posted before, else posted; the embed and buttons
// go with the last part.
func (r *replier) show(ctx context.Context, text string, embeds []*discordgo.MessageEmbed, comps []discordgo.MessageComponent) error {
	parts := textsplit.Split(text, MessageLimit)
	if len(parts) == 0 {
		parts = []string{"…"}
	}
	for i, part := range parts {
		last := i == len(parts)-1
		var e []*discordgo.MessageEmbed
		var c []discordgo.MessageComponent
		if last {
			e, c = embeds, comps
		}
		if i < len(r.posted) && r.posted[i] != "" {
			if r.shown[i] == part && e == nil && c == nil {
				continue
			}
			moved, err := r.edit(ctx, r.posted[i], part, e, c)
			if err != nil {
				return err
			}
			r.shown[i] = part
			if moved != "" {
				// The token expired: the part went to the channel, where
				// later edits go too.
				r.posted[i] = moved
				if err := r.record(ctx, i, moved); err != nil {
					return err
				}
			}
			continue
		}
		id, err := r.post(ctx, i, part, e, c)
		if err != nil {
			return err
		}
		r.set(i, id)
		r.shown[i] = part
		if err := r.record(ctx, i, id); err != nil {
			return err
		}
	}
	for i := len(parts); i < len(r.posted); i++ { // a longer earlier attempt
		if r.posted[i] != "" && r.shown[i] != "…" && r.tokenUsable() {
			if _, err := r.edit(ctx, r.posted[i], "…", nil, nil); err != nil {
				return err
			}
			r.shown[i] = "…"
		}
	}
	return nil
}

// record stores a part's message against the event.
func (r *replier) record(ctx context.Context, part int, id string) error {
	if err := r.a.store.RecordOutbound(ctx, &engine.OutboundMessage{Platform: engine.PlatformDiscord,
		EventID: r.ev.EventID, Part: part, ChannelID: r.channel, MessageID: id}); err != nil {
		return engine.WrapError(engine.EUNAVAILABLE, err, "discord: record posted message")
	}
	return nil
}

// post creates part i: the deferred response's content for part 0 (it
// exists already), a follow-up for the others, or a channel message once
// the token is too old.
func (r *replier) post(ctx context.Context, part int, text string, embeds []*discordgo.MessageEmbed, comps []discordgo.MessageComponent) (string, error) {
	opt := discordgo.WithContext(ctx)
	if !r.tokenUsable() {
		send := &discordgo.MessageSend{Content: text, Embeds: embeds, Components: comps, AllowedMentions: noMentions}
		if part == 0 && r.meta.ReplyTo != "" {
			// A deleted message is no reason to lose the answer.
			send.Reference = &discordgo.MessageReference{MessageID: r.meta.ReplyTo, ChannelID: r.channel, FailIfNotExists: new(false)}
		}
		m, err := r.a.api.ChannelMessageSendComplex(r.channel, send, opt)
		if err != nil && send.Reference != nil && engine.ErrorCode(restError("", err)) == engine.EFORBIDDEN {
			// A reply needs Read Message History too: without it, the
			// answer goes out as a plain message rather than not at all.
			r.a.log.WarnContext(ctx, "discord reply refused; posting without the reference", "event_id", r.ev.EventID, "error", err)
			send.Reference = nil
			m, err = r.a.api.ChannelMessageSendComplex(r.channel, send, opt)
		}
		if err != nil {
			return "", restError("create channel message", err)
		}
		return kindChannel + m.ID, nil
	}
	if part == 0 {
		m, err := r.a.api.InteractionResponseEdit(r.hook, webhookEdit(text, embeds, comps), opt)
		if err != nil {
			return "", restError("edit the original response", err)
		}
		return kindOriginal + m.ID, nil
	}
	m, err := r.a.api.FollowupMessageCreate(r.hook, true, &discordgo.WebhookParams{
		Content: text, Embeds: embeds, Components: comps, AllowedMentions: noMentions,
	}, opt)
	if err != nil {
		return "", restError("create follow-up", err)
	}
	return kindFollowup + m.ID, nil
}

// edit changes a posted part, through the webhook while the token is
// usable, else (channel messages) through the channel. A webhook message
// whose token expired is left as it is: the text goes to the channel as a
// new message, whose id (kind-prefixed) edit returns as moved.
func (r *replier) edit(ctx context.Context, posted, text string, embeds []*discordgo.MessageEmbed, comps []discordgo.MessageComponent) (moved string, err error) {
	opt := discordgo.WithContext(ctx)
	kind, id := posted[:2], posted[2:]
	switch {
	case kind == kindChannel:
		_, err = r.a.api.ChannelMessageEditComplex(&discordgo.MessageEdit{
			ID: id, Channel: r.channel, Content: &text, Embeds: &embeds, Components: &comps, AllowedMentions: noMentions,
		}, opt)
	case !r.tokenUsable():
		var m *discordgo.Message
		m, err = r.a.api.ChannelMessageSendComplex(r.channel, &discordgo.MessageSend{
			Content: text, Embeds: embeds, Components: comps, AllowedMentions: noMentions,
		}, opt)
		if err == nil {
			moved = kindChannel + m.ID
		}
	case kind == kindOriginal:
		_, err = r.a.api.InteractionResponseEdit(r.hook, webhookEdit(text, embeds, comps), opt)
	default:
		_, err = r.a.api.FollowupMessageEdit(r.hook, id, webhookEdit(text, embeds, comps), opt)
	}
	return moved, restError("edit message", err)
}

func webhookEdit(text string, embeds []*discordgo.MessageEmbed, comps []discordgo.MessageComponent) *discordgo.WebhookEdit {
	e := &discordgo.WebhookEdit{Content: &text, AllowedMentions: noMentions}
	if embeds != nil {
		e.Embeds = &embeds
	}
	if comps != nil {
		e.Components = &comps
	}
	return e
}

// citationsEmbed lists an answer's citations.
func citationsEmbed(ans engine.Answer) []*discordgo.MessageEmbed {
	if len(ans.Citations) == 0 {
		return nil
	}
	var sb strings.Builder
	for _, c := range ans.Citations {
		label := c.Title
		if c.Section != "" {
			label += " › " + c.Section
		}
		if label == "" {
			label = c.Document
		}
		line := fmt.Sprintf("[%d] %s", c.Index, label)
		if c.Document != "" && c.Document != label {
			line += " — " + c.Document
		}
		if sb.Len()+len(line) > 3900 { // an embed description holds 4096
			break
		}
		sb.WriteString(line + "\n")
	}
	return []*discordgo.MessageEmbed{{Title: "Sources", Description: strings.TrimSpace(sb.String())}}
}

// feedbackButtons rate an answer against its trace.
func feedbackButtons(ans engine.Answer) []discordgo.MessageComponent {
	switch ans.Outcome {
	case engine.OutcomeAnswered, engine.OutcomeExtractive, engine.OutcomeInterrupted:
	default:
		return nil
	}
	if ans.TraceID == "" {
		return nil
	}
	return []discordgo.MessageComponent{discordgo.ActionsRow{Components: []discordgo.MessageComponent{
		discordgo.Button{Label: "Helpful", Emoji: &discordgo.ComponentEmoji{Name: "👍"}, Style: discordgo.SecondaryButton, CustomID: feedbackPrefix + "up:" + ans.TraceID},
		discordgo.Button{Label: "Not helpful", Emoji: &discordgo.ComponentEmoji{Name: "👎"}, Style: discordgo.SecondaryButton, CustomID: feedbackPrefix + "down:" + ans.TraceID},
	}}}
}

// restError gives a REST error the engine's code: EFORBIDDEN for what a
// retry cannot fix (4xx but 429), EUNAVAILABLE for the rest.
func restError(op string, err error) error {
	if err == nil {
		return nil
	}
	var re *discordgo.RESTError
	if errors.As(err, &re) && re.Response != nil {
		code := re.Response.StatusCode
		if code >= 400 && code < 500 && code != http.StatusTooManyRequests {
			return engine.WrapError(engine.EFORBIDDEN, err, "discord %s: %s", op, re.Response.Status)
		}
	}
	return engine.WrapError(engine.EUNAVAILABLE, err, "discord %s: %v", op, err)
}

// promptMessage finds the message that carried an approval's buttons (the
// last part its turn posted), for the resumed answer to reply to; "" when
// it cannot be found.
func (a *Adapter) promptMessage(ctx context.Context, approvalID string) string {
	ap, err := a.store.ApprovalByID(ctx, approvalID)
	if err != nil || ap.EventID == "" {
		return ""
	}
	out, err := a.store.Outbound(ctx, engine.PlatformDiscord, ap.EventID)
	if err != nil {
		return ""
	}
	id, last := "", -1
	for _, o := range out {
		if o.Part > last && len(o.MessageID) > 2 && o.ChannelID == ap.Thread.Channel.ID {
			id, last = o.MessageID[2:], o.Part
		}
	}
	return id
}
