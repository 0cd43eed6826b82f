package slack

import (
	"context"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/convosphere/convosphere/engine"
)

// userTTL is how long a user's name is cached.
const userTTL = 10 * time.Minute

// Thread context limits: the newest messages of the thread, at most
// threadContextMessages of them and threadContextBytes in all.
const (
	threadContextMessages = 50
	threadContextBytes    = 12 << 10
)

type cachedUser struct {
	user engine.ChatUser
	at   time.Time
}

// PrepareMessage implements engine.MessagePreparer: the user's name (and
// e-mail where the users:read.email scope allows), so the console shows
// who asked, and, when the bot was called into a thread it is not part
// of, the thread's earlier messages as context. A resumed turn (after a
// tool approval) needs neither: its user and context were prepared when it
// was asked.
func (a *Adapter) PrepareMessage(ctx context.Context, ev *engine.InboxEvent, msg *engine.Message) error {
	if msg.Resume != nil {
		return nil
	}
	if u, err := a.userInfo(ctx, msg.User.ID); err == nil {
		msg.User = u
	} else {
		a.log.WarnContext(ctx, "slack: user name unknown", "user_id", msg.User.ID, "error", err)
	}
	var p payload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		return err
	}
	if msg.Thread.ID == "" || msg.Thread.ID == p.Slack.TS {
		return nil // a new thread: nothing before the question
	}
	_, err := a.store.ConversationByThread(ctx, engine.PlatformSlack, msg.Thread.Channel.ID, msg.Thread.ID)
	if !engine.IsNotFound(err) {
		return err // the assistant is in the thread: its history is the conversation
	}
	lines, err := a.threadContext(ctx, msg.Thread.Channel.ID, msg.Thread.ID, p.Slack.TS)
	if err != nil {
		return err
	}
	msg.ThreadContext = lines
	return nil
}

// userInfo returns a Slack user as the engine names them.
func (a *Adapter) userInfo(ctx context.Context, id string) (engine.ChatUser, error) {
	a.mu.Lock()
	c, ok := a.users[id]
	a.mu.Unlock()
	if ok && a.now().Sub(c.at) < userTTL {
		return c.user, nil
	}
	var u *slack.User
	err := a.call(ctx, "users.info", "", func(ctx context.Context) error {
		var err error
		u, err = a.api.GetUserInfoContext(ctx, id)
		return err
	})
	if err != nil {
		return engine.ChatUser{ID: id}, err
	}
	user := engine.ChatUser{ID: id, Name: firstNonEmpty(u.Profile.DisplayName, u.Profile.RealName, u.RealName, u.Name, id), Email: u.Profile.Email}
	a.mu.Lock()
	if len(a.users) > 10000 {
		a.users = make(map[string]cachedUser)
	}
	a.users[id] = cachedUser{user: user, at: a.now()}
	a.mu.Unlock()
	return user, nil
}

// threadContext reads the thread's messages before the question (ts).
func (a *Adapter) threadContext(ctx context.Context, channel, thread, ts string) ([]engine.ThreadLine, error) {
	var msgs []slack.Message
	err := a.call(ctx, "conversations.replies", channel, func(ctx context.Context) error {
		var err error
		msgs, _, _, err = a.api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
			ChannelID: channel, Timestamp: thread, Limit: 200,
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	bot := a.botUser()
	var lines []engine.ThreadLine
	for _, m := range msgs {
		if m.Timestamp == ts || m.Timestamp > ts && ts != "" {
			break // the question, and anything after it
		}
		text := plainText(m.Text, "")
		if text == "" {
			continue
		}
		name := m.Username
		switch {
		case m.User != "" && m.User == bot:
			name = "Assistant"
		case m.User != "":
			if u, err := a.userInfo(ctx, m.User); err == nil {
				name = u.Name
			} else {
				name = m.User
			}
		case name == "":
			name = "A bot"
		}
		lines = append(lines, engine.ThreadLine{User: name, Text: text})
	}
	// Keep the newest that fit.
	if len(lines) > threadContextMessages {
		lines = lines[len(lines)-threadContextMessages:]
	}
	total := 0
	for i := len(lines) - 1; i >= 0; i-- {
		total += len(lines[i].Text) + len(lines[i].User)
		if total > threadContextBytes {
			lines = lines[i+1:]
			break
		}
	}
	return lines, nil
}

// suggestedPrompts are offered when someone opens a thread with the
// assistant in Slack's assistant view.
var suggestedPrompts = []slack.AssistantThreadsPrompt{
	{Title: "What can you do?", Message: "What can you help me with?"},
	{Title: "Find something in our docs", Message: "Where do our docs explain how to get started?"},
	{Title: "Summarize", Message: "Summarize the main points of our documentation in five bullets."},
}

// suggestPrompts answers assistant_thread_started with suggested prompts.
// It is best effort: without them the thread works the same.
func (a *Adapter) suggestPrompts(ctx context.Context, channel, thread string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := a.call(ctx, "assistant.threads.setSuggestedPrompts", channel, func(ctx context.Context) error {
		return a.api.SetAssistantThreadsSuggestedPromptsContext(ctx, slack.AssistantThreadsSetSuggestedPromptsParameters{
			ChannelID: channel, ThreadTS: thread, Title: "Ask me anything, or try:", Prompts: suggestedPrompts,
		})
	})
	if err != nil {
		a.log.WarnContext(ctx, "slack: suggested prompts not set", "error", err)
	}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" && utf8.ValidString(s) {
			return s
		}
	}
	return ""
}
