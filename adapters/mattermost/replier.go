package mattermost

import (
	"context"
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
	lastFlush time.Time
}

func (r *replier) set(part int, id string) {
	for len(r.posted) <= part {
		r.posted = append(r.posted, "")
		r.shown = append(r.shown, "")
	}
	r.posted[part] = id
}

// Update shows the answer so far, at most once per UpdateInterval.
func (r *replier) Update(ctx context.Context, u engine.Update) error {
	if strings.TrimSpace(u.Text) == "" || r.a.now().Sub(r.lastFlush) < r.a.cfg.UpdateInterval {
		return nil
	}
	r.lastFlush = r.a.now()
	return r.show(ctx, u.Text)
}

// Finish shows the final answer with its sources; a partial answer stays,
// marked with the reason it stopped.
func (r *replier) Finish(ctx context.Context, ans engine.Answer) error {
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
	return r.show(ctx, text)
}

// show makes the thread read text: split, each part edited where it was
// posted before, else posted.
func (r *replier) show(ctx context.Context, text string) error {
	parts := textsplit.Split(text, r.a.cfg.MaxPostRunes)
	if len(parts) == 0 {
		parts = []string{"…"}
	}
	for i, part := range parts {
		if i < len(r.posted) && r.posted[i] != "" {
			if r.shown[i] == part {
				continue
			}
			if err := r.edit(ctx, r.posted[i], part); err != nil {
				return err
			}
			r.shown[i] = part
			continue
		}
		post := &model.Post{ChannelId: r.channel, RootId: r.root, Message: part}
		post.AddProp(propEvent, r.ev.EventID)
		post.AddProp(propPart, i)
		p, resp, err := r.a.api.CreatePost(ctx, post)
		if err != nil {
			return apiError("create post", resp, err)
		}
		r.set(i, p.Id)
		r.shown[i] = part
		if err := r.a.store.RecordOutbound(ctx, &engine.OutboundMessage{Platform: engine.PlatformMattermost,
			EventID: r.ev.EventID, Part: i, ChannelID: r.channel, MessageID: p.Id}); err != nil {
			return engine.WrapError(engine.EUNAVAILABLE, err, "mattermost: record posted message")
		}
	}
	for i := len(parts); i < len(r.posted); i++ {
		if r.posted[i] != "" && r.shown[i] != "…" {
			if err := r.edit(ctx, r.posted[i], "…"); err != nil {
				return err
			}
			r.shown[i] = "…"
		}
	}
	return nil
}

func (r *replier) edit(ctx context.Context, id, text string) error {
	_, resp, err := r.a.api.PatchPost(ctx, id, &model.PostPatch{Message: &text})
	return apiError("edit post", resp, err)
}

// PrepareMessage implements engine.MessagePreparer: the user's name, so the
// console shows who asked.
func (a *Adapter) PrepareMessage(ctx context.Context, _ *engine.InboxEvent, msg *engine.Message) error {
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
	return nil
}

var _ engine.MessagePreparer = (*Adapter)(nil)
