package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/convosphere/convosphere/adapters/slack/mrkdwn"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/textsplit"
)

// answerMetadata marks the bot's answers (Slack message metadata) with
// the event they answer, so that a retry finds an answer posted just
// before a crash, whose ts never reached the outbox.
const answerMetadata = "convosphere_answer"

// workingReaction marks the question while the answer is being written,
// where the assistant status is not available.
const workingReaction = "hourglass_flowing_sand"

// Replier implements engine.ReplierFactory: the answer to ev goes in its
// thread, editing what an earlier attempt posted (recorded in the outbox).
func (a *Adapter) Replier(ctx context.Context, ev *engine.InboxEvent, msg engine.Message) (engine.Replier, error) {
	var p payload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		return nil, engine.WrapError(engine.EINVALID, err, "slack event %s: decode payload", ev.EventID)
	}
	r := &replier{
		a: a, ev: ev, meta: p.Slack,
		channel: msg.Thread.Channel.ID, thread: msg.Thread.ID, user: msg.User.ID,
	}
	if msg.Resume != nil {
		// A turn resumed after a tool approval: the event is ours, not
		// Slack's, so there is no question to react to (msg.ID is no ts);
		// the answer goes on as a new message in the thread.
		r.meta = meta{Team: a.team()}
	}
	out, err := a.store.Outbound(ctx, engine.PlatformSlack, ev.EventID)
	if err != nil {
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "slack event %s: read outbox", ev.EventID)
	}
	for _, o := range out {
		r.setPosted(o.Part, o.MessageID)
	}
	if ev.Attempts > 1 && len(out) == 0 {
		r.recoverPosted(ctx)
	}
	return r, nil
}

// replier shows one answer in a Slack thread: a status while the answer is
// prepared, the answer streamed (chat.startStream/appendStream/stopStream,
// or chat.postMessage then chat.update at most once per UpdateInterval),
// split into several messages when long, and at the end citations and
// feedback buttons.
type replier struct {
	a       *Adapter
	ev      *engine.InboxEvent
	meta    meta
	channel string
	thread  string
	user    string

	posted []string // ts of each part posted, "" where none
	shown  []string // text each part shows

	pending   string // the answer so far, not shown yet
	lastFlush time.Time
	reacted   bool
	status    bool

	// Streaming: part 0 is a stream while streaming is set; streamed is
	// the Markdown appended to it so far.
	streaming bool
	streamed  string
	noStream  bool // this answer does not stream (failed to start, or too long)
}

func (r *replier) setPosted(part int, ts string) {
	for len(r.posted) <= part {
		r.posted = append(r.posted, "")
		r.shown = append(r.shown, "")
	}
	r.posted[part] = ts
}

// recoverPosted looks in the thread for parts this event posted before an
// earlier attempt could record them.
func (r *replier) recoverPosted(ctx context.Context) {
	var msgs []slack.Message
	err := r.a.call(ctx, "conversations.replies", r.channel, func(ctx context.Context) error {
		var err error
		msgs, _, _, err = r.a.api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
			ChannelID: r.channel, Timestamp: r.thread, Limit: 200, IncludeAllMetadata: true,
		})
		return err
	})
	if err != nil {
		r.a.log.WarnContext(ctx, "slack: cannot look for an earlier attempt's answer", "event_id", r.ev.EventID, "error", err)
		return
	}
	for _, m := range msgs {
		if m.Metadata.EventType != answerMetadata || m.Metadata.EventPayload["event_id"] != r.ev.EventID {
			continue
		}
		part, _ := m.Metadata.EventPayload["part"].(float64)
		r.setPosted(int(part), m.Timestamp)
		r.noStream = true // edit what is there
		if err := r.record(ctx, int(part), m.Timestamp); err != nil {
			r.a.log.WarnContext(ctx, "slack: record recovered answer", "error", err)
		}
	}
}

// Status shows what the assistant is doing: the assistant thread's status
// line where Slack offers one, else a reaction on the question.
func (r *replier) Status(ctx context.Context, status string) error {
	if r.meta.AssistantThread {
		r.status = true
		return r.a.callCosmetic(ctx, "assistant.threads.setStatus", r.channel, func(ctx context.Context) error {
			return r.a.api.SetAssistantThreadsStatusContext(ctx, slack.AssistantThreadsSetStatusParameters{
				ChannelID: r.channel, ThreadTS: r.thread, Status: status,
			})
		})
	}
	if r.reacted || r.meta.TS == "" || len(r.posted) > 0 {
		return nil
	}
	r.reacted = true
	err := r.a.callCosmetic(ctx, "reactions.add", r.channel, func(ctx context.Context) error {
		return r.a.api.AddReactionContext(ctx, workingReaction, slack.ItemRef{Channel: r.channel, Timestamp: r.meta.TS})
	})
	if errorCode(err) == "already_reacted" {
		return nil
	}
	return err
}

// Update shows the answer so far, at most once per UpdateInterval.
func (r *replier) Update(ctx context.Context, u engine.Update) error {
	r.pending = u.Text
	if strings.TrimSpace(r.pending) == "" || r.a.now().Sub(r.lastFlush) < r.a.cfg.UpdateInterval {
		return nil
	}
	prev := r.lastFlush
	r.lastFlush = r.a.now()
	if r.canStream() {
		before := r.streamed
		err := r.stream(ctx, r.pending)
		if !r.noStream {
			if err == nil && r.streamed == before {
				// Not a whole word yet: nothing was sent, so the next
				// update may go at once.
				r.lastFlush = prev
			}
			return err
		}
		// Streaming is not available here: show it the other way.
	}
	return r.show(ctx, r.pending, nil, "")
}

// Finish shows the final answer (or the notice why there is none) with its
// citations and feedback buttons, and clears the working status. A turn
// waiting for a tool approval shows its text so far and the approval
// prompt below it.
func (r *replier) Finish(ctx context.Context, ans engine.Answer) error {
	defer r.clearStatus(ctx)
	if ans.Silent && len(r.posted) == 0 && !r.streaming {
		return nil // told once already (rate limit): only the status goes
	}
	if ans.Outcome == engine.OutcomeAwaiting && ans.Approval != nil {
		return r.finishAwaiting(ctx, ans)
	}
	text := ans.Display()
	blocks := r.a.footerBlocks(ans)
	if r.streaming {
		err := r.stopStream(ctx, text, blocks)
		if !r.noStream {
			return err
		}
	}
	return r.show(ctx, text, blocks, "")
}

// finishAwaiting shows the text so far with the approval prompt (its
// calls, the notice and the Approve and Reject buttons) below it. A
// stream is ended first and the message edited, so that the prompt is
// made of the blocks a click later edits (the buttons replaced by who
// decided).
func (r *replier) finishAwaiting(ctx context.Context, ans engine.Answer) error {
	if r.streaming {
		r.noStream = true
		if err := r.endStream(ctx); err != nil {
			return err
		}
	}
	footer := append(r.a.footerBlocks(ans), approvalBlocks(ans.Approval, ans.Notice)...)
	return r.show(ctx, strings.TrimSpace(ans.Text), footer, approvalFallback(ans))
}

func (r *replier) canStream() bool {
	return !r.noStream && !r.a.noStream.Load() && (len(r.posted) == 0 || r.streaming)
}

// streamUnavailable are errors that say the streaming methods cannot be
// used by this app at all (no retry with them).
var streamUnavailable = map[string]bool{
	"unknown_method": true, "missing_scope": true, "not_allowed_token_type": true, "method_deprecated": true,
	"feature_not_enabled": true, "not_enabled": true,
}

// stream appends what is new in text to the streaming message, starting it
// first. Once the answer outgrows one message, or Slack refuses the
// stream, it sets noStream and the answer goes on with chat.update.
func (r *replier) stream(ctx context.Context, text string) error {
	if utf8.RuneCountInString(text) > r.a.cfg.PartLimit || !strings.HasPrefix(strings.TrimLeftFunc(text, unicode.IsSpace), r.streamed) {
		r.noStream = true
		if r.streaming {
			return r.endStream(ctx)
		}
		return nil
	}
	// Stream whole words only: a mention or a Markdown mark is never cut
	// in two (neutralise sees it whole), and nothing is shown half-typed.
	text = strings.TrimLeftFunc(text, unicode.IsSpace)
	i := strings.LastIndexAny(text, " \n\t")
	if i <= len(r.streamed) {
		return nil
	}
	text = text[:i]
	delta := neutralise(text[len(r.streamed):])
	if strings.TrimSpace(delta) == "" {
		return nil
	}
	if !r.streaming {
		var ts string
		err := r.a.call(ctx, "chat.startStream", r.channel, func(ctx context.Context) error {
			opts := []slack.MsgOption{slack.MsgOptionTS(r.thread), slack.MsgOptionMarkdownText(delta)}
			if !r.meta.AssistantThread && r.user != "" {
				opts = append(opts, slack.MsgOptionRecipientUserID(r.user))
				if r.meta.Team != "" {
					opts = append(opts, slack.MsgOptionRecipientTeamID(r.meta.Team))
				}
			}
			var err error
			_, ts, err = r.a.api.StartStreamContext(ctx, r.channel, opts...)
			return err
		})
		if err != nil {
			code := errorCode(err)
			if streamUnavailable[code] {
				r.a.noStream.Store(true)
				r.a.log.InfoContext(ctx, "slack streaming unavailable; answers are edited in place instead", "error", code)
			} else {
				r.a.log.WarnContext(ctx, "slack stream not started; editing in place instead", "error", err)
			}
			r.noStream = true
			return nil
		}
		r.streaming = true
		r.streamed = text
		r.setPosted(0, ts)
		return r.record(ctx, 0, ts)
	}
	err := r.a.call(ctx, "chat.appendStream", r.channel, func(ctx context.Context) error {
		_, _, err := r.a.api.AppendStreamContext(ctx, r.channel, r.posted[0], slack.MsgOptionMarkdownText(delta))
		return err
	})
	if err != nil {
		r.a.log.WarnContext(ctx, "slack stream append failed; editing in place instead", "error", err)
		r.noStream = true
		return r.endStream(ctx)
	}
	r.streamed = text
	return nil
}

// stopStream ends the stream with the final answer when it is the
// streamed text continued and fits; otherwise it ends the stream and sets
// noStream, for the final answer to be shown by editing.
func (r *replier) stopStream(ctx context.Context, text string, blocks []slack.Block) error {
	if utf8.RuneCountInString(text) > r.a.cfg.PartLimit || !strings.HasPrefix(text, r.streamed) {
		r.noStream = true
		return r.endStream(ctx)
	}
	delta := neutralise(text[len(r.streamed):])
	err := r.a.call(ctx, "chat.stopStream", r.channel, func(ctx context.Context) error {
		opts := []slack.MsgOption{}
		if delta != "" {
			opts = append(opts, slack.MsgOptionMarkdownText(delta))
		}
		if len(blocks) > 0 {
			opts = append(opts, slack.MsgOptionBlocks(blocks...))
		}
		_, _, err := r.a.api.StopStreamContext(ctx, r.channel, r.posted[0], opts...)
		return err
	})
	if err != nil {
		r.a.log.WarnContext(ctx, "slack stream stop failed; editing in place instead", "error", err)
		r.noStream = true
		r.streaming = false
		return nil
	}
	r.streaming = false
	r.shown[0] = text
	return nil
}

// endStream stops the stream as it is; what follows is shown by editing.
func (r *replier) endStream(ctx context.Context) error {
	r.streaming = false
	err := r.a.call(ctx, "chat.stopStream", r.channel, func(ctx context.Context) error {
		_, _, err := r.a.api.StopStreamContext(ctx, r.channel, r.posted[0])
		return err
	})
	if err != nil {
		r.a.log.WarnContext(ctx, "slack stream stop failed", "error", err)
	}
	return nil
}

// show makes the thread show text: converted to mrkdwn, split into parts
// of at most PartLimit characters, each part posted or, when an earlier
// flush or attempt posted it, edited. blocks (citations, feedback, an
// approval prompt) go below the last part. When text is empty and there
// are blocks, the message is the blocks alone, with fallback (mrkdwn) as
// its notification text.
func (r *replier) show(ctx context.Context, text string, footer []slack.Block, fallback string) error {
	parts := textsplit.Split(mrkdwn.Convert(text), r.a.cfg.PartLimit)
	bare := false
	if len(parts) == 0 {
		parts = []string{"…"}
		if len(footer) > 0 && fallback != "" {
			parts, bare = []string{fallback}, true
		}
	}
	for i, part := range parts {
		var blocks []slack.Block
		switch {
		case i < len(parts)-1 || len(footer) == 0:
		case bare:
			blocks = footer
		default:
			blocks = append([]slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, part, false, false), nil, nil)}, footer...)
		}
		if i < len(r.posted) && r.posted[i] != "" {
			if r.shown[i] == part && blocks == nil {
				continue
			}
			if err := r.update(ctx, r.posted[i], part, blocks); err != nil {
				return err
			}
			r.shown[i] = part
			continue
		}
		ts, err := r.post(ctx, i, part, blocks)
		if err != nil {
			return err
		}
		r.setPosted(i, ts)
		r.shown[i] = part
		if err := r.record(ctx, i, ts); err != nil {
			return err
		}
	}
	// A longer earlier attempt left parts beyond this answer: empty them.
	for i := len(parts); i < len(r.posted); i++ {
		if r.posted[i] != "" && r.shown[i] != "…" {
			if err := r.update(ctx, r.posted[i], "…", nil); err != nil {
				return err
			}
			r.shown[i] = "…"
		}
	}
	return nil
}

func (r *replier) post(ctx context.Context, part int, text string, blocks []slack.Block) (string, error) {
	opts := []slack.MsgOption{
		slack.MsgOptionText(text, false),
		slack.MsgOptionTS(r.thread),
		slack.MsgOptionDisableLinkUnfurl(),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: answerMetadata, EventPayload: map[string]any{"event_id": r.ev.EventID, "part": part}}),
	}
	if len(blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	var ts string
	err := r.a.call(ctx, "chat.postMessage", r.channel, func(ctx context.Context) error {
		var err error
		_, ts, err = r.a.api.PostMessageContext(ctx, r.channel, opts...)
		return err
	})
	return ts, err
}

func (r *replier) update(ctx context.Context, ts, text string, blocks []slack.Block) error {
	opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
	if len(blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	return r.a.call(ctx, "chat.update", r.channel, func(ctx context.Context) error {
		_, _, _, err := r.a.api.UpdateMessageContext(ctx, r.channel, ts, opts...)
		return err
	})
}

// record stores a posted part's ts against the event.
func (r *replier) record(ctx context.Context, part int, ts string) error {
	err := r.a.store.RecordOutbound(ctx, &engine.OutboundMessage{
		Platform: engine.PlatformSlack, EventID: r.ev.EventID, Part: part, ChannelID: r.channel, MessageID: ts,
	})
	if err != nil {
		return engine.WrapError(engine.EUNAVAILABLE, err, "slack: record posted message")
	}
	return nil
}

// clearStatus removes the working reaction or status.
func (r *replier) clearStatus(ctx context.Context) {
	var err error
	switch {
	case r.status:
		err = r.a.call(ctx, "assistant.threads.setStatus", r.channel, func(ctx context.Context) error {
			return r.a.api.SetAssistantThreadsStatusContext(ctx, slack.AssistantThreadsSetStatusParameters{ChannelID: r.channel, ThreadTS: r.thread, Status: ""})
		})
	case r.reacted || r.ev.Attempts > 1 && r.meta.TS != "" && !r.meta.AssistantThread:
		// An earlier attempt may have left its reaction.
		err = r.a.call(ctx, "reactions.remove", r.channel, func(ctx context.Context) error {
			return r.a.api.RemoveReactionContext(ctx, workingReaction, slack.ItemRef{Channel: r.channel, Timestamp: r.meta.TS})
		})
		if errorCode(err) == "no_reaction" {
			err = nil
		}
	}
	if err != nil {
		r.a.log.WarnContext(ctx, "slack: clear working status", "error", err)
	}
}

// footerBlocks are the blocks below an answer: its citations as a context
// block (linked when the adapter has a link for them) and feedback
// buttons that record a rating against the answer's trace.
func (a *Adapter) footerBlocks(ans engine.Answer) []slack.Block {
	var blocks []slack.Block
	if len(ans.Citations) > 0 {
		var elems []slack.MixedElement
		for _, c := range ans.Citations {
			if len(elems) == 10 { // a context block holds at most 10 elements
				break
			}
			label := c.Title
			if c.Section != "" {
				label += " › " + c.Section
			}
			if label == "" {
				label = c.Document
			}
			text := fmt.Sprintf("[%d] %s", c.Index, mrkdwn.Escape(label))
			if a.cfg.CitationLink != nil {
				if link := a.cfg.CitationLink(c); link != "" {
					text = fmt.Sprintf("[%d] <%s|%s>", c.Index, strings.NewReplacer("|", "%7C", ">", "%3E").Replace(link), strings.ReplaceAll(mrkdwn.Escape(label), "|", "∣"))
				}
			}
			if c.Document != "" && c.Document != label {
				text += " — " + mrkdwn.Escape(c.Document)
			}
			elems = append(elems, slack.NewTextBlockObject(slack.MarkdownType, textsplit.Truncate(text, 300, "…"), false, false))
		}
		blocks = append(blocks, slack.NewContextBlock("citations", elems...))
	}
	if ans.TraceID != "" && (ans.Outcome == engine.OutcomeAnswered || ans.Outcome == engine.OutcomeExtractive || ans.Outcome == engine.OutcomeInterrupted) {
		up := slack.NewButtonBlockElement(actionFeedbackUp, ans.TraceID, slack.NewTextBlockObject(slack.PlainTextType, "👍 Helpful", true, false))
		down := slack.NewButtonBlockElement(actionFeedbackDown, ans.TraceID, slack.NewTextBlockObject(slack.PlainTextType, "👎 Not helpful", true, false))
		blocks = append(blocks, slack.NewActionBlock("feedback", up, down))
	}
	return blocks
}

var broadcast = regexp.MustCompile(`(?i)(<)([!@#])|(@)(channel|here|everyone)\b`)

// neutralise keeps streamed Markdown from pinging anyone: Slack's control
// sequences (<!channel>, <@U…>, <#C…>) and bare @channel, @here and
// @everyone get a zero-width space that breaks them.
func neutralise(s string) string {
	return broadcast.ReplaceAllStringFunc(s, func(m string) string {
		return m[:1] + "\u200b" + m[1:]
	})
}

// NotifyDeadLetter implements engine.DeadLetterNotifier: the thread gets
// a message saying the question will not be answered, and why.
func (a *Adapter) NotifyDeadLetter(ctx context.Context, ev *engine.InboxEvent, msg engine.Message, reason string) error {
	r, err := a.Replier(ctx, ev, msg)
	if err != nil {
		return err
	}
	if reason == "" {
		reason = "something went wrong on our side"
	}
	return r.Finish(ctx, engine.Answer{Outcome: engine.OutcomeFailed,
		Notice: "Sorry, I could not answer this after several attempts (" + strings.TrimSuffix(reason, ".") + "). Please ask again in a few minutes."})
}
