// Package mattermost connects ConvoSphere to Mattermost through a bot
// account and its personal access token. Direct messages are always
// answered; in channels, mentions of the bot (and other messages, per the
// channel's trigger policy). Answers go in the thread (root_id), streamed
// by editing the post at most once per second, split at the server's
// maximum post size.
//
// Events come over the websocket (/api/v4/websocket). The adapter tracks
// the server's event sequence and reconnects with connection_id and
// sequence_number, so the server replays what was missed; when the server
// answers with a new connection (its replay buffer no longer holds the
// missed events), the adapter reads the posts since the last one it saw
// over REST. Every post is stored in the durable inbox keyed by its id, so
// one delivered twice is answered once.
//
// A turn waiting for a tool approval shows its calls with Approve and
// Reject buttons (interactive message attachments); Mattermost posts the
// clicks to Handler (the bot serves it at POST /mattermost/actions, which
// Config.ActionsURL names), and the decision resumes the turn in a new
// post in the thread.
package mattermost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/convosphere/convosphere/engine"
)

// DefaultMaxPostRunes is Mattermost's maximum post size.
const DefaultMaxPostRunes = 16383

// Config configures the adapter.
type Config struct {
	URL   string // the server, e.g. https://chat.example.com
	Token string // the bot account's personal access token
	// ActionsURL is where the Mattermost server reaches the bot's
	// POST /mattermost/actions endpoint (Handler), for the approve and
	// reject buttons of tool approvals; empty: prompts have no buttons
	// and say to decide in the console.
	ActionsURL string

	MaxPostRunes   int           // default DefaultMaxPostRunes
	UpdateInterval time.Duration // at most one edit of a streaming answer per interval; default 1s
	// Locker elects the one replica that holds the websocket of the bot
	// account; default an in-process lock.
	Locker engine.Locker
}

func (c *Config) setDefaults() {
	c.URL = strings.TrimRight(c.URL, "/")
	c.ActionsURL = strings.TrimSpace(c.ActionsURL)
	if c.MaxPostRunes == 0 {
		c.MaxPostRunes = DefaultMaxPostRunes
	}
	if c.UpdateInterval == 0 {
		c.UpdateInterval = time.Second
	}
	if c.Locker == nil {
		c.Locker = engine.ProcessLocks
	}
}

// Validate reports the first missing or invalid setting, naming its key.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	au, aerr := url.Parse(c.ActionsURL)
	switch {
	case c.URL == "":
		return engine.Errorf(engine.EINVALID, "mattermost.url is empty: set the server's address, e.g. https://chat.example.com")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return engine.Errorf(engine.EINVALID, "mattermost.url %q is not an http(s) URL: use the address you open Mattermost at, e.g. https://chat.example.com", c.URL)
	case c.Token == "":
		return engine.Errorf(engine.EINVALID, "mattermost.token is empty: create a bot account and copy its access token (System Console → Integrations → Bot Accounts)")
	case c.ActionsURL != "" && (aerr != nil || (au.Scheme != "http" && au.Scheme != "https") || au.Host == ""):
		return engine.Errorf(engine.EINVALID, "mattermost.actions_url %q is not an http(s) URL: use the address at which the Mattermost server reaches the bot's /mattermost/actions, e.g. https://bot.example.com/mattermost/actions", c.ActionsURL)
	case c.MaxPostRunes < 100:
		return engine.Errorf(engine.EINVALID, "mattermost max post size %d is too small", c.MaxPostRunes)
	}
	return nil
}

// Store is what the adapter keeps and reads; engine.Store implements it.
type Store interface {
	engine.ApprovalStores
	engine.Inbox
	engine.Outbox
	engine.StatusStore
	ListAssistants(ctx context.Context) ([]*engine.Assistant, error)
	ConversationByThread(ctx context.Context, platform engine.Platform, channelID, threadID string) (*engine.Conversation, error)
}

// Adapter is the Mattermost adapter.
type Adapter struct {
	cfg    Config
	store  Store
	api    *model.Client4
	log    *slog.Logger
	now    func() time.Time
	secret []byte // signs the approval buttons (actionSecret)
	bot    *model.User
	wg     sync.WaitGroup
	cancel context.CancelFunc

	mu        sync.Mutex
	connected bool
	standby   bool  // waiting for the leader lock: another replica holds the websocket
	lastSeen  int64 // create_at (ms) of the newest post seen
	users     map[string]cachedUser
}

// cachedUser is a user's name as read at.
type cachedUser struct {
	user engine.ChatUser
	at   time.Time
}

// userTTL is how long a user's name is cached.
const userTTL = 10 * time.Minute

var _ engine.ReplierFactory = (*Adapter)(nil)

// New returns an adapter, or an EINVALID error naming the setting to fix.
func New(cfg Config, store Store, logger *slog.Logger) (*Adapter, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	api := model.NewAPIv4Client(cfg.URL)
	api.SetToken(cfg.Token)
	api.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	return &Adapter{cfg: cfg, store: store, api: api, log: logger.With("component", "mattermost"), now: time.Now,
		secret: actionSecret(cfg.Token)}, nil
}

// Start checks the token (who the bot is) and opens the websocket in the
// background, until Close. A token the server rejects is an error; a
// server that cannot be reached is retried in the background.
func (a *Adapter) Start(ctx context.Context) error {
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = stop
	err := a.whoAmI(ctx)
	switch {
	case engine.ErrorCode(err) == engine.EINVALID:
		stop()
		return err
	case err != nil:
		a.log.WarnContext(ctx, "mattermost unreachable; retrying in the background", "error", err)
		a.setConnected(ctx, false, err.Error())
	}
	a.wg.Go(func() {
		for backoff := time.Second; a.bot == nil; backoff = min(backoff*2, time.Minute) {
			if !engine.Sleep(wctx, engine.Jitter(backoff)) {
				return
			}
			if err := a.whoAmI(wctx); err != nil {
				a.log.WarnContext(wctx, "mattermost unreachable; retrying", "error", err)
			}
		}
		a.run(wctx)
	})
	return nil
}

// whoAmI learns the bot account (GET /users/me).
func (a *Adapter) whoAmI(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	me, resp, err := a.api.GetMe(cctx, "")
	if err != nil {
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			return engine.WrapError(engine.EINVALID, err, "Mattermost rejected mattermost.token: create a new access token for the bot account")
		}
		return engine.WrapError(engine.EUNAVAILABLE, err, "cannot reach Mattermost at mattermost.url %s: %v", a.cfg.URL, err)
	}
	a.mu.Lock()
	a.lastSeen = model.GetMillis()
	a.mu.Unlock()
	a.bot = me
	a.log.InfoContext(ctx, "mattermost connected", "bot_user_id", me.Id, "bot_username", me.Username)
	return nil
}

// Close stops the websocket and waits for it.
func (a *Adapter) Close() error {
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	return nil
}

// Ready reports whether the websocket is connected.
func (a *Adapter) Ready() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.connected && !a.standby {
		return engine.Errorf(engine.EUNAVAILABLE, "mattermost websocket is not connected")
	}
	return nil
}

func (a *Adapter) setConnected(ctx context.Context, up bool, detail string) {
	a.mu.Lock()
	a.connected = up
	a.mu.Unlock()
	state := engine.StatusConnected
	if !up {
		state = engine.StatusReconnecting
	}
	if err := a.store.SetPlatformStatus(ctx, &engine.PlatformStatus{Platform: engine.PlatformMattermost, State: state, Detail: detail}); err != nil {
		a.log.WarnContext(ctx, "mattermost: record connection status", "error", err)
	}
}

// apiError gives a REST error the engine's code: EFORBIDDEN for what a
// retry cannot fix (4xx but 429), EUNAVAILABLE for the rest.
func apiError(op string, resp *model.Response, err error) error {
	if err == nil {
		return nil
	}
	if resp != nil && resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
		return engine.WrapError(engine.EFORBIDDEN, err, "mattermost %s: %d", op, resp.StatusCode)
	}
	var ae *model.AppError
	if errors.As(err, &ae) && ae.StatusCode >= 400 && ae.StatusCode < 500 && ae.StatusCode != http.StatusTooManyRequests {
		return engine.WrapError(engine.EFORBIDDEN, err, "mattermost %s: %s", op, ae.Id)
	}
	return engine.WrapError(engine.EUNAVAILABLE, err, "mattermost %s: %v", op, err)
}

func (a *Adapter) String() string { return fmt.Sprintf("mattermost adapter (%s)", a.cfg.URL) }
