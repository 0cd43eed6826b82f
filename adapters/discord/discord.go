// Package discord connects ConvoSphere to Discord. People ask with the
// /ask slash command (option "question", optionally "assistant"); Discord
// POSTs each interaction to the bot's interactions endpoint
// (POST /discord/interactions), which verifies it (Ed25519), stores it in
// the durable inbox (unique on the interaction id) and answers with a
// deferred response at once; a worker then edits the streamed answer into
// the original response and posts the rest as follow-ups. A turn waiting
// for a tool approval shows Approve and Reject buttons (approval.go);
// the resumed answer is a new channel message.
//
// REST calls go through discordgo, which waits out a route's 429
// (retry_after) and retries; the adapter's transport adds the global rate
// limit (a 429 marked global holds back every route) and applies a custom
// API base URL (discord.api_url, for proxies and tests) by rewriting the
// requests' URLs, since discordgo's endpoints are package-level variables.
package discord

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/convosphere/convosphere/engine"
)

// Mode is how Discord delivers interactions.
type Mode string

// Modes.
const (
	ModeHTTP    Mode = "http"    // the interactions endpoint
	ModeGateway Mode = "gateway" // a gateway session (websocket) the bot opens
)

// DefaultAPIURL is the base URL of Discord's REST API, with the version.
const DefaultAPIURL = "https://discord.com/api/v10"

// Limits.
const (
	MessageLimit        = 2000             // characters of a message's content
	DefaultMaxBodyBytes = 1 << 20          // cap on an interaction request body
	tokenLifetime       = 15 * time.Minute // an interaction token's validity
	maxSkew             = 5 * time.Minute  // of X-Signature-Timestamp either way
)

// Config configures the adapter.
type Config struct {
	ApplicationID string
	PublicKey     string // hex, from the Developer Portal's General Information page
	BotToken      string
	Mode          Mode
	APIURL        string // default DefaultAPIURL

	MaxBodyBytes   int64
	UpdateInterval time.Duration // at most one edit of a streaming answer per interval; default 1s
	// HTTPClient makes the REST calls; default a client with a 30s timeout.
	HTTPClient *http.Client
	// Locker elects the replica that holds the gateway session; default an
	// in-process lock.
	Locker engine.Locker
}

func (c *Config) setDefaults() {
	if c.Mode == "" {
		c.Mode = ModeHTTP
	}
	if c.APIURL == "" {
		c.APIURL = DefaultAPIURL
	}
	c.APIURL = strings.TrimRight(c.APIURL, "/")
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.UpdateInterval == 0 {
		c.UpdateInterval = time.Second
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
}

// Validate reports the first missing or invalid setting, naming its key.
func (c Config) Validate() error {
	switch {
	case c.ApplicationID == "":
		return engine.Errorf(engine.EINVALID, "discord.application_id is empty: copy the Application ID from the Developer Portal's General Information page")
	case c.BotToken == "":
		return engine.Errorf(engine.EINVALID, "discord.bot_token is empty: reset and copy the token on the Developer Portal's Bot page")
	case c.Mode != ModeHTTP && c.Mode != ModeGateway:
		return engine.Errorf(engine.EINVALID, "discord.mode %q is unknown: use http (the interactions endpoint) or gateway", c.Mode)
	}
	if _, err := publicKey(c.PublicKey); err != nil && c.Mode == ModeHTTP {
		return err
	}
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return engine.Errorf(engine.EINVALID, "discord.api_url %q is not an http(s) URL: leave it empty for Discord's (%s)", c.APIURL, DefaultAPIURL)
	}
	return nil
}

func publicKey(s string) (ed25519.PublicKey, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, engine.Errorf(engine.EINVALID, "discord.public_key is not a 64-character hex key: copy the Public Key from the Developer Portal's General Information page")
	}
	return ed25519.PublicKey(b), nil
}

// Store is what the adapter keeps and reads; engine.Store implements it.
type Store interface {
	engine.Inbox
	engine.Outbox
	engine.FeedbackStore
	engine.PreferenceStore
	engine.StatusStore
	engine.ApprovalStores // deciding tool approvals from the buttons
	ListAssistants(ctx context.Context) ([]*engine.Assistant, error)
}

// Adapter is the Discord adapter: it serves the interactions endpoint
// (Handler) and implements engine.ReplierFactory for the workers.
type Adapter struct {
	cfg    Config
	key    ed25519.PublicKey
	store  Store
	api    *discordgo.Session
	log    *slog.Logger
	now    func() time.Time
	locker engine.Locker
	wg     sync.WaitGroup
	cancel context.CancelFunc

	mu        sync.Mutex
	botUserID string
	gw        gatewayState
}

var _ engine.ReplierFactory = (*Adapter)(nil)

// New returns an adapter, or an EINVALID error naming the setting to fix.
func New(cfg Config, store Store, logger *slog.Logger) (*Adapter, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key, _ := publicKey(cfg.PublicKey)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s, err := discordgo.New("Bot " + cfg.BotToken)
	if err != nil {
		return nil, engine.WrapError(engine.EINVALID, err, "discord: %v", err)
	}
	client := *cfg.HTTPClient
	client.Transport = &rewrite{base: cfg.APIURL, next: transportOf(cfg.HTTPClient)}
	s.Client = &client
	s.MaxRestRetries = 3
	s.LogLevel = -1 // errors come back to the adapter, which logs them with slog
	s.ShouldRetryOnRateLimit = true
	locker := cfg.Locker
	if locker == nil {
		locker = engine.ProcessLocks
	}
	return &Adapter{cfg: cfg, key: key, store: store, api: s, log: logger.With("component", "discord"), now: time.Now, locker: locker}, nil
}

// Start opens the gateway session in gateway mode (in the background, until
// Close); in HTTP mode there is nothing to start.
func (a *Adapter) Start(ctx context.Context) {
	if a.cfg.Mode != ModeGateway {
		return
	}
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	a.startGateway(gctx)
}

// Close ends the gateway session and waits for background work.
func (a *Adapter) Close() error {
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	return nil
}

func transportOf(c *http.Client) http.RoundTripper {
	if c.Transport != nil {
		return c.Transport
	}
	return http.DefaultTransport
}

// rewrite sends the requests discordgo addresses to Discord's API to base
// instead (discord.api_url), and honours Discord's global rate limit: a
// 429 marked global holds back every request until its Retry-After has
// passed (discordgo itself waits out per-route limits and retries).
type rewrite struct {
	base        string
	next        http.RoundTripper
	globalUntil atomic.Int64 // Unix nanoseconds
}

func (rw *rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	prefix := discordgo.EndpointAPI[:len(discordgo.EndpointAPI)-1] // https://discord.com/api/vN
	if u := r.URL.String(); strings.HasPrefix(u, prefix) && rw.base != prefix {
		nu, err := url.Parse(rw.base + strings.TrimPrefix(u, prefix))
		if err != nil {
			return nil, fmt.Errorf("discord: rewrite %s: %w", u, err)
		}
		r = r.Clone(r.Context())
		r.URL = nu
		r.Host = nu.Host
	}
	if wait := time.Until(time.Unix(0, rw.globalUntil.Load())); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-r.Context().Done():
			t.Stop()
			return nil, r.Context().Err()
		case <-t.C:
		}
	}
	resp, err := rw.next.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		return resp, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var rl struct {
		Global     bool    `json:"global"`
		RetryAfter float64 `json:"retry_after"`
	}
	_ = json.Unmarshal(body, &rl)
	if rl.Global || resp.Header.Get("X-RateLimit-Global") != "" {
		after := rl.RetryAfter
		if h, err := strconv.ParseFloat(resp.Header.Get("Retry-After"), 64); err == nil && h > after {
			after = h
		}
		until := time.Now().Add(time.Duration(min(after, 600) * float64(time.Second))).UnixNano()
		for {
			cur := rw.globalUntil.Load()
			if cur >= until || rw.globalUntil.CompareAndSwap(cur, until) {
				break
			}
		}
	}
	return resp, nil
}
