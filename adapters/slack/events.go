package slack

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/convosphere/convosphere/engine"
)

// envelope is the outer object of an Events API delivery (and of a Socket
// Mode events_api payload).
type envelope struct {
	Type           string          `json:"type"`
	Challenge      string          `json:"challenge"`
	TeamID         string          `json:"team_id"`
	EventID        string          `json:"event_id"`
	EventTime      int64           `json:"event_time"`
	Event          json.RawMessage `json:"event"`
	Authorizations []struct {
		UserID string `json:"user_id"`
		IsBot  bool   `json:"is_bot"`
	} `json:"authorizations"`
}

// innerEvent holds the fields of the events the adapter handles:
// app_mention, message and assistant_thread_started.
type innerEvent struct {
	Type        string `json:"type"`
	Subtype     string `json:"subtype"`
	User        string `json:"user"`
	BotID       string `json:"bot_id"`
	Text        string `json:"text"`
	TS          string `json:"ts"`
	ThreadTS    string `json:"thread_ts"`
	Channel     string `json:"channel"`
	ChannelType string `json:"channel_type"`
	Edited      *struct {
		User string `json:"user"`
	} `json:"edited"`
	AssistantThread *struct {
		UserID    string `json:"user_id"`
		ChannelID string `json:"channel_id"`
		ThreadTS  string `json:"thread_ts"`
	} `json:"assistant_thread"`
}

// meta is what the replier needs beyond engine.Message, stored with it in
// the inbox event's payload.
type meta struct {
	TS              string `json:"ts"` // the user's message, for the working-on-it reaction
	Team            string `json:"team,omitempty"`
	AssistantThread bool   `json:"assistant_thread,omitempty"` // a thread of Slack's assistant view: status via assistant.threads.setStatus
}

// payload is an inbox event's payload: the message (its fields at the top
// level, as the workers read it) and the Slack details.
type payload struct {
	engine.Message
	Slack meta `json:"slack"`
}

// Handler serves Slack's HTTP requests: POST /slack/events and POST
// /slack/interactions. Every request is verified (signature and timestamp)
// before anything in it is read: 401 otherwise.
func (a *Adapter) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /slack/events", a.serveEvents)
	mux.HandleFunc("POST /slack/interactions", a.serveInteractions)
	return mux
}

// readVerified reads a request's body within the size cap and verifies
// Slack's signature over it. On failure it has answered the request.
func (a *Adapter) readVerified(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := readBody(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes), r.ContentLength, a.cfg.MaxBodyBytes)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		} else {
			http.Error(w, "cannot read request body", http.StatusBadRequest)
		}
		return nil, false
	}
	if err := verify(r.Header, body, a.cfg.SigningSecret); err != nil {
		a.log.WarnContext(r.Context(), "slack request rejected", "path", r.URL.Path, "reason", err.Error())
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return nil, false
	}
	return body, true
}

// presizeMax bounds the buffer readBody allocates on the word of the
// Content-Length, before any of the body has arrived (and been verified).
const presizeMax = 64 << 10

// readBody reads r to the end, as io.ReadAll does, but starts from a
// buffer sized from the request's Content-Length (when it is known and
// within limit; at most presizeMax) instead of 512 bytes: one allocation
// where io.ReadAll grows its buffer several times. A body longer than the
// buffer grows it as io.ReadAll would.
func readBody(r io.Reader, contentLength, limit int64) ([]byte, error) {
	if contentLength <= 0 || contentLength > limit {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, min(contentLength, presizeMax)+1) // +1: room for the read that sees EOF
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // full: grow
		}
	}
}

// verify checks Slack's v0 signature of body (HMAC-SHA256 with the signing
// secret over "v0:timestamp:body", compared in constant time) and that the
// timestamp is within five minutes of now, either way.
func verify(h http.Header, body []byte, secret string) error {
	if secret == "" {
		return errors.New("no signing secret is configured")
	}
	sv, err := slack.NewSecretsVerifier(h, secret)
	if err != nil {
		return err
	}
	if _, err := sv.Write(body); err != nil {
		return err
	}
	return sv.Ensure()
}

// isForm reports whether a request body is form-encoded.
func isForm(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
}

func (a *Adapter) serveEvents(w http.ResponseWriter, r *http.Request) {
	body, ok := a.readVerified(w, r)
	if !ok {
		return
	}
	if isForm(r) {
		// Slack's certificate check (ssl_check=1) is the only form the
		// Events API sends: answer it and do nothing else.
		form, err := url.ParseQuery(string(body))
		if err == nil && form.Get("ssl_check") == "1" {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Error(w, "expected a JSON event", http.StatusBadRequest)
		return
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		http.Error(w, "invalid JSON", http.StatusBadRequest)
		return
	}
	switch env.Type {
	case "url_verification":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"challenge": env.Challenge})
		return
	case "event_callback":
		if err := a.accept(r.Context(), env); err != nil {
			// Not stored: Slack delivers it again.
			a.log.ErrorContext(r.Context(), "slack event not stored", "event_id", env.EventID, "error", err)
			http.Error(w, "event not stored, retry", http.StatusServiceUnavailable)
			return
		}
	case "app_rate_limited":
		a.log.WarnContext(r.Context(), "slack paused event deliveries to this app (app_rate_limited)")
	}
	w.WriteHeader(http.StatusOK)
}

// accept decides whether an event is addressed to the assistant and, if
// so, stores it in the inbox. It returns an error only when the event
// could not be stored (or the decision needed the store and it failed), so
// that Slack delivers it again; a duplicate is not an error.
func (a *Adapter) accept(ctx context.Context, env envelope) error {
	if env.Type != "event_callback" || env.EventID == "" {
		return nil
	}
	var ev innerEvent
	if err := json.Unmarshal(env.Event, &ev); err != nil {
		a.log.WarnContext(ctx, "slack event ignored: cannot decode it", "event_id", env.EventID, "error", err)
		return nil
	}
	bot := a.botUser()
	if bot == "" {
		for _, au := range env.Authorizations {
			if au.IsBot && au.UserID != "" {
				bot = au.UserID
				a.setBotUser(bot)
				break
			}
		}
	}
	fromBot := ev.BotID != "" || ev.User == "" || ev.User == bot
	switch ev.Type {
	case "app_mention":
		if fromBot || ev.Edited != nil {
			return nil
		}
		return a.enqueue(ctx, env, ev, bot, false)
	case "message":
		switch ev.Subtype {
		case "", "file_share", "thread_broadcast":
		default:
			return nil // edits, deletions, joins, bot messages…
		}
		if fromBot {
			return nil
		}
		if ev.ChannelType == "im" {
			return a.enqueue(ctx, env, ev, bot, true)
		}
		if bot != "" && strings.Contains(ev.Text, "<@"+bot+">") {
			return nil // the app_mention event of the same message is answered
		}
		return a.acceptChannelMessage(ctx, env, ev, bot)
	case "assistant_thread_started":
		if t := ev.AssistantThread; t != nil && t.ChannelID != "" && t.ThreadTS != "" {
			a.wg.Go(func() { a.suggestPrompts(context.WithoutCancel(ctx), t.ChannelID, t.ThreadTS) })
		}
	}
	return nil
}

// acceptChannelMessage applies the channel's trigger policy to a message
// that does not mention the bot.
func (a *Adapter) acceptChannelMessage(ctx context.Context, env envelope, ev innerEvent, bot string) error {
	ch := engine.Channel{Platform: engine.PlatformSlack, ID: ev.Channel}
	trigger, err := a.trigger(ctx, ch)
	if err != nil {
		return err
	}
	switch trigger {
	case engine.TriggerAll:
		return a.enqueue(ctx, env, ev, bot, false)
	case engine.TriggerThread:
		if ev.ThreadTS == "" || ev.ThreadTS == ev.TS {
			return nil
		}
		_, err := a.store.ConversationByThread(ctx, engine.PlatformSlack, ev.Channel, ev.ThreadTS)
		switch {
		case engine.IsNotFound(err):
			return nil // a thread the assistant is not in
		case err != nil:
			return err
		}
		return a.enqueue(ctx, env, ev, bot, false)
	}
	return nil
}

// enqueue stores the event's message in the inbox. Answers go in the
// thread: the message's own thread, or a new one under the message.
func (a *Adapter) enqueue(ctx context.Context, env envelope, ev innerEvent, bot string, dm bool) error {
	if ev.Channel == "" || ev.TS == "" {
		// Nowhere to answer: stored, it would only fail and be retried.
		a.log.WarnContext(ctx, "slack event ignored: no channel or ts", "event_id", env.EventID)
		return nil
	}
	thread := ev.ThreadTS
	if thread == "" {
		thread = ev.TS
	}
	p := payload{
		Message: engine.Message{
			ID: env.EventID,
			Thread: engine.Thread{
				Channel: engine.Channel{Platform: engine.PlatformSlack, ID: ev.Channel, DM: dm},
				ID:      thread,
			},
			User:       engine.ChatUser{ID: ev.User},
			Text:       plainText(ev.Text, bot),
			ReceivedAt: a.now(),
		},
		Slack: meta{TS: ev.TS, Team: env.TeamID, AssistantThread: dm && ev.AssistantThread != nil},
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	inserted, err := a.store.Enqueue(ctx, &engine.InboxEvent{
		Platform:  engine.PlatformSlack,
		EventID:   env.EventID,
		ThreadKey: p.Thread.Key(),
		Payload:   raw,
	})
	if err != nil {
		return err
	}
	if !inserted {
		a.log.DebugContext(ctx, "slack event already stored", "event_id", env.EventID)
	}
	return nil
}

// policyTTL is how long the assistants' trigger policies are cached: a
// change in the console reaches the bot within it.
const policyTTL = 5 * time.Second

type cachedPolicy struct {
	assistants []*engine.Assistant
	at         time.Time
}

// ForgetPolicies drops the cached trigger policies (a change notice: an
// assistant was changed in the console), so the next event reads them.
func (a *Adapter) ForgetPolicies() {
	a.mu.Lock()
	a.policy = cachedPolicy{}
	a.mu.Unlock()
}

// trigger returns a channel's trigger policy from the assistants' bindings.
func (a *Adapter) trigger(ctx context.Context, ch engine.Channel) (engine.Trigger, error) {
	a.mu.Lock()
	p := a.policy
	a.mu.Unlock()
	if p.at.IsZero() || a.now().Sub(p.at) > policyTTL {
		all, err := a.store.ListAssistants(ctx)
		if err != nil {
			return "", err
		}
		p = cachedPolicy{assistants: all, at: a.now()}
		a.mu.Lock()
		a.policy = p
		a.mu.Unlock()
	}
	return engine.TriggerFor(p.assistants, ch), nil
}

// plainText turns a Slack message's markup into the plain text the model
// reads: the bot's own mention is removed, other mentions become @id,
// #channel or @here, links their label (and URL), and &amp; &lt; &gt; are
// unescaped.
func plainText(s, bot string) string {
	s = replaceMarkup(s, func(m string) string {
		inner := m[1 : len(m)-1]
		target, label, _ := strings.Cut(inner, "|")
		switch {
		case bot != "" && target == "@"+bot:
			return ""
		case strings.HasPrefix(target, "@"):
			if label != "" {
				return "@" + label
			}
			return target
		case strings.HasPrefix(target, "#"):
			if label != "" {
				return "#" + label
			}
			return target
		case strings.HasPrefix(target, "!"):
			name, _, _ := strings.Cut(strings.TrimPrefix(target, "!"), "^")
			if label != "" {
				return label
			}
			return "@" + name
		case label != "" && label != target && strings.TrimPrefix(target, "mailto:") != label:
			return label + " (" + target + ")"
		default:
			return strings.TrimPrefix(target, "mailto:")
		}
	})
	if strings.IndexByte(s, '&') >= 0 { // unescape.Replace allocates even when nothing matches
		s = unescape.Replace(s)
	}
	return strings.TrimSpace(s)
}

// replaceMarkup replaces each piece of Slack markup in s, '<' and '>'
// around anything but '<' and '>', with repl of it, leftmost first: what
// the regexp `<([^<>]*)>`'s ReplaceAllStringFunc does, at a fraction of
// its cost. (Looking at bytes, not runes, changes nothing: no byte of a
// multi-byte UTF-8 sequence is '<' or '>'.)
func replaceMarkup(s string, repl func(string) string) string {
	var b strings.Builder
	done := 0 // s[:done] is in b
	for i := 0; ; {
		open := strings.IndexByte(s[i:], '<')
		if open < 0 {
			break
		}
		open += i
		end := strings.IndexAny(s[open+1:], "<>")
		if end < 0 {
			break
		}
		end += open + 1
		if s[end] == '<' {
			i = end // no match at open: the next one may start here
			continue
		}
		b.WriteString(s[done:open])
		b.WriteString(repl(s[open : end+1]))
		done, i = end+1, end+1
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}

// unescape undoes the only escaping Slack applies to message text.
var unescape = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")
