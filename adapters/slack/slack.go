// Package slack connects ConvoSphere to Slack. People @mention the bot in
// channels, send it direct messages and keep talking in the thread; the
// adapter stores each event in the durable inbox before Slack is
// acknowledged, and answers in the thread as the engine's workers stream
// the answer.
//
// Events arrive over HTTP (the Events API, POST /slack/events, with
// interactivity at POST /slack/interactions) or over Socket Mode (a
// websocket the bot opens with an app-level token). Both paths verify,
// store and acknowledge the same way: a duplicate delivery is acknowledged
// and does nothing else, and a failure to store is answered with an error
// so that Slack delivers the event again.
package slack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"

	"github.com/convosphere/convosphere/engine"
)

// Mode is how Slack delivers events.
type Mode string

// Modes.
const (
	ModeHTTP   Mode = "http"   // the Events API: Slack POSTs to the bot's public URL
	ModeSocket Mode = "socket" // Socket Mode: the bot opens a websocket to Slack
)

// DefaultAPIURL is the base URL of Slack's Web API.
const DefaultAPIURL = "https://slack.com/api/"

// Defaults.
const (
	DefaultMaxBodyBytes   = 1 << 20
	DefaultPartLimit      = 3000 // a section block's text limit
	DefaultUpdateInterval = time.Second
)

// Config configures the adapter.
type Config struct {
	SigningSecret string // verifies HTTP requests (HTTP mode)
	BotToken      string // xoxb-: the Web API
	AppToken      string // xapp-: opens Socket Mode connections
	// Locker elects the one replica that holds the Socket Mode connection;
	// default an in-process lock.
	Locker engine.Locker
	Mode   Mode
	APIURL string // base URL of the Web API, ending in /; default DefaultAPIURL

	MaxBodyBytes   int64         // cap on a request body; default 1 MiB
	PartLimit      int           // characters per message before an answer is split; default 3000
	UpdateInterval time.Duration // at most one edit of a streaming answer per interval; default 1s
	// CitationLink returns a link for a citation ("" for none).
	CitationLink func(engine.Citation) string
	// HTTPClient makes the Web API calls; default a client with a 30s timeout.
	HTTPClient *http.Client
}

func (c *Config) setDefaults() {
	if c.Mode == "" {
		c.Mode = ModeHTTP
	}
	if c.APIURL == "" {
		c.APIURL = DefaultAPIURL
	}
	if !strings.HasSuffix(c.APIURL, "/") {
		c.APIURL += "/"
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.PartLimit == 0 {
		c.PartLimit = DefaultPartLimit
	}
	if c.UpdateInterval == 0 {
		c.UpdateInterval = DefaultUpdateInterval
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
}

// Validate reports the first missing or invalid setting, naming the
// configuration key.
func (c Config) Validate() error {
	switch {
	case c.BotToken == "":
		return engine.Errorf(engine.EINVALID, "slack.bot_token is empty: copy the Bot User OAuth Token (xoxb-…) from your Slack app's OAuth & Permissions page")
	case c.Mode != ModeHTTP && c.Mode != ModeSocket:
		return engine.Errorf(engine.EINVALID, "slack.mode %q is unknown: use http (Events API) or socket (Socket Mode)", c.Mode)
	case c.Mode == ModeHTTP && c.SigningSecret == "":
		return engine.Errorf(engine.EINVALID, "slack.signing_secret is empty: copy the Signing Secret from your Slack app's Basic Information page (HTTP mode verifies every request with it)")
	case c.Mode == ModeSocket && c.AppToken == "":
		return engine.Errorf(engine.EINVALID, "slack.app_token is empty: Socket Mode needs an app-level token (xapp-…) with the connections:write scope, from your Slack app's Basic Information page")
	case c.PartLimit < 100 || c.PartLimit > 3000:
		return engine.Errorf(engine.EINVALID, "slack part limit %d is out of range: use 100 to 3000 characters", c.PartLimit)
	case c.MaxBodyBytes < 1024:
		return engine.Errorf(engine.EINVALID, "slack body cap %d is too small: use at least 1024 bytes", c.MaxBodyBytes)
	}
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return engine.Errorf(engine.EINVALID, "slack.api_url %q is not an http(s) URL: leave it empty for Slack's (%s)", c.APIURL, DefaultAPIURL)
	}
	return nil
}

// Store is what the adapter keeps and reads; engine.Store implements it.
type Store interface {
	engine.Inbox
	engine.Outbox
	engine.FeedbackStore
	engine.StatusStore
	engine.ApprovalStores // decisions on tool approvals, and who may decide
	ListAssistants(ctx context.Context) ([]*engine.Assistant, error)
	ConversationByThread(ctx context.Context, platform engine.Platform, channelID, threadID string) (*engine.Conversation, error)
}

// Adapter is the Slack adapter. It implements engine.ReplierFactory,
// engine.MessagePreparer and engine.DeadLetterNotifier for the workers,
// and serves Slack's requests (Handler) or runs Socket Mode (Start).
type Adapter struct {
	cfg   Config
	store Store
	api   *slack.Client
	log   *slog.Logger
	gate  rateGate
	now   func() time.Time

	mu        sync.Mutex
	botUserID string // learned from auth.test, or from events' authorizations
	teamID    string // the workspace, from auth.test: for answers without an event (resumed turns)
	users     map[string]cachedUser
	policy    cachedPolicy

	noStream atomic.Bool // the streaming methods are unavailable: use chat.update
	socket   *socketClient
	standby  atomic.Bool // waiting for the Socket Mode leader lock
	wg       sync.WaitGroup
	cancel   context.CancelFunc
}

var (
	_ engine.ReplierFactory     = (*Adapter)(nil)
	_ engine.MessagePreparer    = (*Adapter)(nil)
	_ engine.DeadLetterNotifier = (*Adapter)(nil)
)

// New returns an adapter, or an EINVALID error naming the setting to fix.
func New(cfg Config, store Store, logger *slog.Logger) (*Adapter, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, engine.Errorf(engine.EINVALID, "slack adapter: a store is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := []slack.Option{slack.OptionAPIURL(cfg.APIURL), slack.OptionHTTPClient(cfg.HTTPClient)}
	if cfg.AppToken != "" {
		opts = append(opts, slack.OptionAppLevelToken(cfg.AppToken))
	}
	a := &Adapter{
		cfg:   cfg,
		store: store,
		api:   slack.New(cfg.BotToken, opts...),
		log:   logger.With("component", "slack"),
		now:   time.Now,
		users: make(map[string]cachedUser),
	}
	return a, nil
}

// Start checks the bot token (auth.test), learning the bot's user id, and
// in Socket Mode starts the connection, which runs until Close. A token
// Slack rejects is an error; Slack being unreachable is logged and the
// adapter goes on (events carry the bot's id too).
func (a *Adapter) Start(ctx context.Context) error {
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := a.api.AuthTestContext(actx)
	switch {
	case err == nil:
		a.setBotUser(resp.UserID)
		a.mu.Lock()
		a.teamID = resp.TeamID
		a.mu.Unlock()
		a.log.InfoContext(ctx, "slack connected", "team", resp.Team, "bot_user_id", resp.UserID, "mode", a.cfg.Mode)
		if a.cfg.Mode == ModeHTTP {
			a.report(ctx, engine.StatusConnected, "token checked; events arrive over HTTP")
		}
	case isAuthError(err):
		a.report(ctx, engine.StatusFailed, "Slack rejected slack.bot_token: "+err.Error())
		return engine.WrapError(engine.EINVALID, err, "slack rejected slack.bot_token (%v): copy the Bot User OAuth Token (xoxb-…) again from your Slack app's OAuth & Permissions page", err)
	default:
		a.log.WarnContext(ctx, "slack auth.test failed; going on", "error", err)
	}
	if a.cfg.Mode == ModeSocket {
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		a.cancel = cancel
		a.socket = newSocketClient(a)
		a.wg.Go(func() { a.holdSocket(sctx) })
	}
	return nil
}

// holdSocket runs the Socket Mode connection while this replica holds the
// leader lock, taking it again after losing it; meanwhile the replica is
// a ready standby.
func (a *Adapter) holdSocket(ctx context.Context) {
	sum := sha256.Sum256([]byte(a.cfg.AppToken)) // the key names the app without its secret
	key := "slack-socket:" + hex.EncodeToString(sum[:8])
	locker := a.cfg.Locker
	if locker == nil {
		locker = engine.ProcessLocks
	}
	for ctx.Err() == nil {
		a.standby.Store(true)
		lease := engine.AcquireLock(ctx, locker, key, 5*time.Second, a.log)
		a.standby.Store(false)
		if lease == nil {
			return
		}
		a.socket.run(lease.Context())
		lease.Release()
		if ctx.Err() == nil {
			a.log.WarnContext(ctx, "slack: leader lock lost; another replica holds Socket Mode", "cause", context.Cause(lease.Context()))
		}
	}
}

// Close stops Socket Mode.
func (a *Adapter) Close() error {
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	return nil
}

// Ready reports whether the adapter can receive events: in Socket Mode,
// whether a connection is open (a replica waiting for the leader lock is
// a ready standby).
func (a *Adapter) Ready() error {
	if a.socket != nil && !a.standby.Load() && !a.socket.connected() {
		return engine.Errorf(engine.EUNAVAILABLE, "slack socket mode is not connected")
	}
	return nil
}

func (a *Adapter) setBotUser(id string) {
	if id == "" {
		return
	}
	a.mu.Lock()
	a.botUserID = id
	a.mu.Unlock()
}

func (a *Adapter) team() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.teamID
}

func (a *Adapter) botUser() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.botUserID
}

// report records the connection's state for the console.
func (a *Adapter) report(ctx context.Context, state, detail string) {
	if err := a.store.SetPlatformStatus(ctx, &engine.PlatformStatus{Platform: engine.PlatformSlack, State: state, Detail: detail}); err != nil {
		a.log.WarnContext(ctx, "slack: record connection status", "error", err)
	}
}

// isAuthError reports whether Slack rejected the token itself.
func isAuthError(err error) bool {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired":
			return true
		}
	}
	switch err.Error() {
	case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired":
		return true
	}
	return false
}

// permanentErrors are Web API errors a retry cannot fix.
var permanentErrors = map[string]bool{
	"channel_not_found": true, "not_in_channel": true, "is_archived": true, "msg_too_long": true,
	"no_text": true, "invalid_blocks": true, "restricted_action": true, "cant_update_message": true,
	"message_not_found": true, "invalid_auth": true, "not_authed": true, "account_inactive": true,
	"token_revoked": true, "missing_scope": true, "ekm_access_denied": true, "invalid_arguments": true,
}

// apiError wraps a Web API error with the engine's code: EFORBIDDEN for
// what a retry cannot fix (the event is not retried), EUNAVAILABLE for the
// rest (it is).
func apiError(method string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return engine.WrapError(engine.EUNAVAILABLE, err, "slack %s: %v", method, err)
	}
	code := errorCode(err)
	if permanentErrors[code] {
		return engine.WrapError(engine.EFORBIDDEN, err, "slack %s: %s", method, code)
	}
	return engine.WrapError(engine.EUNAVAILABLE, err, "slack %s: %v", method, err)
}

// errorCode is the Web API's error string ("channel_not_found"), or "".
func errorCode(err error) string {
	if err == nil {
		return ""
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return "ratelimited"
	}
	s := err.Error()
	if !strings.ContainsAny(s, " :") {
		return s // slack-go returns some API errors as bare strings
	}
	return ""
}

func (a *Adapter) String() string { return fmt.Sprintf("slack adapter (%s)", a.cfg.Mode) }
