package mattermost

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/textsplit"
)

// Replier implements engine.ReplierFactory: the answer goes in the
// message's thread, editing what an earlier attempt posted.
func (a *Adapter) Replier(ctx context.Context, ev *engine.InboxEvent, msg engine.Message) (engine.Replier, error) {
	r := &replier{a: a, ev: ev, channel: msg.Thread.Channel.ID, root: msg.Thread.ID}
	out, err := a.store.Outbound(ctx, engine.PlatformMattermost, ev.EventID)
	if err != nil {
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "mattermost post %s: read outbox", ev.EventID)
	}
	for _, o := range out {
		r.set(o.Part, o.MessageID)
	}
	if ev.Attempts > 1 && len(out) == 0 {
		r.recoverPosted(ctx)
	}
	return r, nil
}

// Post props that mark the bot's answers with the event they answer, so a
// retry finds a part posted just before a crash, whose id never reached
// the outbox.
const (
	propEvent = "convosphere_event"
	propPart  = "convosphere_part"
)

// recoverPosted adopts the parts an earlier attempt posted in the thread.
func (r *replier) recoverPosted(ctx context.Context) {
	list, _, err := r.a.api.GetPostThread(ctx, r.root, "", false)
	if err != nil {
		r.a.log.WarnContext(ctx, "mattermost: cannot look for an earlier attempt's answer", "event_id", r.ev.EventID, "error", err)
		return
	}
	for _, p := range list.ToSlice() {
		if p.GetProp(propEvent) != r.ev.EventID {
			continue
		}
		part, ok := p.GetProp(propPart).(float64)
		if !ok {
			continue
		}
		r.set(int(part), p.Id)
		if err := r.a.store.RecordOutbound(ctx, &engine.OutboundMessage{Platform: engine.PlatformMattermost,
			EventID: r.ev.EventID, Part: int(part), ChannelID: r.channel, MessageID: p.Id}); err != nil {
			r.a.log.WarnContext(ctx, "mattermost: record recovered answer", "error", err)
		}
	}
}

// replier posts the answer in the thread and edits it as it streams (at
// most once per UpdateInterval), in parts of at most MaxPostRunes.
type replier struct {
	a       *Adapter
	ev      *engine.InboxEvent
	channel string
	root    string

	posted    []string
	shown     []string
	props     []string // per part: the JSON of its attachments, "" for none
	lastFlush time.Time
}

func (r *replier) set(part int, id string) {
	for len(r.posted) <= part {
		r.posted = append(r.posted, "")
		r.shown = append(r.shown, "")
		r.props = append(r.props, propsUnknown)
	}
	r.posted[part] = id
}

// propsUnknown marks a part posted by an earlier attempt, whose
// attachments are not known: its first edit sets its props.
const propsUnknown = "?"

// Update shows the answer so far, at most once per UpdateInterval.
func (r *replier) Update(ctx context.Context, u engine.Update) error {
	if strings.TrimSpace(u.Text) == "" || r.a.now().Sub(r.lastFlush) < r.a.cfg.UpdateInterval {
		return nil
	}
	r.lastFlush = r.a.now()
	return r.show(ctx, u.Text, nil)
}

// Finish shows the final answer with its sources; a partial answer stays,
// marked with the reason it stopped. An answer waiting for a tool approval
// shows the text so far and the approval prompt (an interactive message
// with Approve and Reject buttons) on its last post.
func (r *replier) Finish(ctx context.Context, ans engine.Answer) error {
	if ans.Outcome == engine.OutcomeAwaiting && ans.Approval != nil {
		return r.show(ctx, strings.TrimSpace(ans.Text), r.a.approvalAttachment(ans.Approval, ans.Notice))
	}
	if ans.Silent && len(r.posted) == 0 {
		return nil // told once already (rate limit)
	}
	text := ans.Display()
	if len(ans.Citations) > 0 {
		var sb strings.Builder
		sb.WriteString("\n\n---\n**Sources**\n")
		for _, c := range ans.Citations {
			label := c.Title
			if c.Section != "" {
				label += " › " + c.Section
			}
			if label == "" {
				label = c.Document
			}
			fmt.Fprintf(&sb, "%d. %s", c.Index, label)
			if c.Document != "" && c.Document != label {
				sb.WriteString(" — " + c.Document)
			}
			sb.WriteByte('\n')
		}
		text += strings.TrimRight(sb.String(), "\n")
	}
	return r.show(ctx, text, nil)
}

// show makes the thread read text, with att (when not nil) on the last
// part: split, each part edited where it was posted before, else posted.
func (r *replier) show(ctx context.Context, text string, att *model.SlackAttachment) error {
	parts := textsplit.Split(text, r.a.cfg.MaxPostRunes)
	if len(parts) == 0 {
		parts = []string{"…"}
		if att != nil {
			parts = []string{""} // the prompt says it all
		}
	}
	attKey := ""
	if att != nil {
		b, err := json.Marshal(att)
		if err != nil {
			return engine.WrapError(engine.EINTERNAL, err, "mattermost: encode approval prompt")
		}
		attKey = string(b)
	}
	for i, part := range parts {
		var atts []*model.SlackAttachment
		key := ""
		if i == len(parts)-1 && att != nil {
			atts, key = []*model.SlackAttachment{att}, attKey
		}
		if i < len(r.posted) && r.posted[i] != "" {
			if r.shown[i] == part && r.props[i] == key {
				continue
			}
			if err := r.edit(ctx, i, part, atts, r.props[i] != key); err != nil {
				return err
			}
			r.shown[i], r.props[i] = part, key
			continue
		}
		post := &model.Post{ChannelId: r.channel, RootId: r.root, Message: part}
		post.SetProps(r.postProps(i, atts))
		p, resp, err := r.a.api.CreatePost(ctx, post)
		if err != nil {
			return apiError("create post", resp, err)
		}
		r.set(i, p.Id)
		r.shown[i], r.props[i] = part, key
		if err := r.a.store.RecordOutbound(ctx, &engine.OutboundMessage{Platform: engine.PlatformMattermost,
			EventID: r.ev.EventID, Part: i, ChannelID: r.channel, MessageID: p.Id}); err != nil {
			return engine.WrapError(engine.EUNAVAILABLE, err, "mattermost: record posted message")
		}
	}
	for i := len(parts); i < len(r.posted); i++ {
		if r.posted[i] != "" && (r.shown[i] != "…" || r.props[i] != "") {
			if err := r.edit(ctx, i, "…", nil, r.props[i] != ""); err != nil {
				return err
			}
			r.shown[i], r.props[i] = "…", ""
		}
	}
	return nil
}

// postProps are the props of part i: the event it answers, and the
// attachments (an approval prompt) when there are any.
func (r *replier) postProps(part int, atts []*model.SlackAttachment) model.StringInterface {
	props := model.StringInterface{propEvent: r.ev.EventID, propPart: part}
	if len(atts) > 0 {
		props["attachments"] = atts
	}
	return props
}

// edit replaces part i's text and, when withProps, its props (which
// Mattermost replaces as a whole).
func (r *replier) edit(ctx context.Context, part int, text string, atts []*model.SlackAttachment, withProps bool) error {
	patch := &model.PostPatch{Message: &text}
	if withProps {
		props := r.postProps(part, atts)
		patch.Props = &props
	}
	_, resp, err := r.a.api.PatchPost(ctx, r.posted[part], patch)
	return apiError("edit post", resp, err)
}

// PrepareMessage implements engine.MessagePreparer: the user's name, so the
// console shows who asked. A resumed turn (after a tool approval) keeps
// the name it was asked with.
func (a *Adapter) PrepareMessage(ctx context.Context, _ *engine.InboxEvent, msg *engine.Message) error {
	if msg.Resume != nil {
		return nil // the approval's asker, named when they asked
	}
	a.mu.Lock()
	c, ok := a.users[msg.User.ID]
	a.mu.Unlock()
	if ok && a.now().Sub(c.at) < userTTL {
		msg.User.Name, msg.User.Email = c.user.Name, c.user.Email
		return nil
	}
	u, resp, err := a.api.GetUser(ctx, msg.User.ID, "")
	if err != nil {
		return apiError("read user", resp, err)
	}
	name := u.Nickname
	if name == "" {
		name = strings.TrimSpace(u.FirstName + " " + u.LastName)
	}
	if name == "" {
		name = u.Username
	}
	msg.User.Name, msg.User.Email = name, u.Email
	a.mu.Lock()
	if a.users == nil || len(a.users) > 10000 {
		a.users = make(map[string]cachedUser)
	}
	a.users[msg.User.ID] = cachedUser{user: msg.User, at: a.now()}
	a.mu.Unlock()
	return nil
}

var _ engine.MessagePreparer = (*Adapter)(nil)
