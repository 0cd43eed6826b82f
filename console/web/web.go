// Package web is the console's HTTP surface: the sign-in pages, the
// playground, the tools page, the chat, tool-approval, assistant, tool and
// knowledge-base APIs and the embedded templates and static assets,
// served by gin. It takes the engine's interfaces through Deps and never
// imports an adapter, a store or a language-model provider.
package web

import (
	"context"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// Config tunes the console. The zero value gets defaults from New.
type Config struct {
	// MaxMessageBytes limits a chat message; default engine.DefaultMaxMessageBytes.
	MaxMessageBytes int
	// SessionTTL is how long a sign-in lasts at most (absolute timeout);
	// default 12h.
	SessionTTL time.Duration
	// SessionIdleTimeout ends a session unused for this long; default 30m.
	SessionIdleTimeout time.Duration
	// ModelPrices price the tokens of each model for the analytics'
	// estimated cost; a model without a price shows tokens only.
	ModelPrices map[string]ModelPrice
	// SecureCookies marks cookies Secure (and uses __Host- names); set it
	// whenever the console is served over HTTPS.
	SecureCookies bool
	// Version is shown in the page footer.
	Version string
	// LoginMaxFailures is how many failed sign-ins one client IP may make
	// for one name within LoginWindow before it has to wait; default 5.
	// A client IP may fail four times as often across all names.
	LoginMaxFailures int
	// LoginWindow is the throttle's window and pause; default 15m.
	LoginWindow time.Duration
	// ReadyTimeout bounds the readiness check; default 3s.
	ReadyTimeout time.Duration
	// SSEKeepAlive is how often an idle event stream gets a comment line so
	// proxies keep it open; default 15s.
	SSEKeepAlive time.Duration
	// TrustedProxies are the addresses or CIDRs whose X-Forwarded-For is
	// believed for the client IP; default none (the peer address is used).
	TrustedProxies []string
	// MaxUploadBytes limits the body of one document upload (all its files
	// together); default DefaultMaxUploadBytes. Each file is also held to
	// the knowledge service's own per-file limit.
	MaxUploadBytes int64
	// MaxUploadFiles limits the files of one upload; default 100.
	MaxUploadFiles int
}

// DefaultMaxUploadBytes is the default limit on one upload's body.
const DefaultMaxUploadBytes = 64 << 20

func (c *Config) setDefaults() {
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = engine.DefaultMaxMessageBytes
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if c.SessionIdleTimeout == 0 {
		c.SessionIdleTimeout = 30 * time.Minute
	}
	if c.LoginMaxFailures == 0 {
		c.LoginMaxFailures = 5
	}
	if c.LoginWindow == 0 {
		c.LoginWindow = 15 * time.Minute
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 3 * time.Second
	}
	if c.SSEKeepAlive == 0 {
		c.SSEKeepAlive = 15 * time.Second
	}
	if c.MaxUploadBytes == 0 {
		c.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if c.MaxUploadFiles == 0 {
		c.MaxUploadFiles = 100
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.MaxMessageBytes < 0:
		return engine.Errorf(engine.EINVALID, "console: max message bytes must not be negative")
	case c.SessionTTL < 0:
		return engine.Errorf(engine.EINVALID, "console: session TTL must not be negative")
	case c.SessionTTL > 0 && c.SessionTTL < time.Minute:
		return engine.Errorf(engine.EINVALID, "console: session TTL %s is too short: use at least one minute", c.SessionTTL)
	case c.SessionIdleTimeout < 0 || (c.SessionIdleTimeout > 0 && c.SessionIdleTimeout < time.Minute):
		return engine.Errorf(engine.EINVALID, "console: session idle timeout %s is too short: use at least one minute", c.SessionIdleTimeout)
	case c.LoginMaxFailures < 0:
		return engine.Errorf(engine.EINVALID, "console: login max failures must not be negative")
	case c.LoginWindow < 0 || c.ReadyTimeout < 0 || c.SSEKeepAlive < 0:
		return engine.Errorf(engine.EINVALID, "console: durations must not be negative")
	case c.MaxUploadBytes < 0 || c.MaxUploadFiles < 0:
		return engine.Errorf(engine.EINVALID, "console: upload limits must not be negative")
	}
	return validModelPrices(c.ModelPrices)
}

// Chat answers a message, streaming the answer through r. *engine.Engine
// implements it.
type Chat interface {
	Handle(ctx context.Context, msg engine.Message, r engine.Replier) (*engine.Answer, error)
}

// Knowledge ingests documents into knowledge bases and searches them.
// cmd/console adapts *knowledge.Service to it.
type Knowledge interface {
	// Ingest adds or replaces the document named source in knowledge base
	// kb, which exists, and indexes it. unchanged reports that the same
	// content was already indexed, so nothing was written. A document that
	// was stored but failed to index comes back, marked failed, with the error.
	Ingest(ctx context.Context, kb, source string, content []byte) (doc *engine.Document, unchanged bool, err error)
	// Retrieve searches the knowledge bases of the request.
	Retrieve(ctx context.Context, req engine.RetrievalRequest) (*engine.Retrieval, error)
	// DeleteDocument removes a document and all its chunks.
	DeleteDocument(ctx context.Context, id string) error
	// DeleteKnowledgeBase removes a knowledge base, its documents and their chunks.
	DeleteKnowledgeBase(ctx context.Context, name string) error
	// DocumentChunks returns a document (without content) and its chunks,
	// in order (Position, HeadingPath and Text set). A document that cannot
	// be read any more comes back with the error.
	DocumentChunks(ctx context.Context, documentID string) (*engine.Document, []engine.Passage, error)
}

// ToolInventory lists the MCP servers' tools, enables (pins) or disables
// them and tests a server's connection, for the tools page and API.
// cmd/console adapts *tools.Registry to it (ToolInfo converts from
// tools.ToolStatus).
type ToolInventory interface {
	// Inventory lists the tools of every configured MCP server, by name,
	// with their state. A server that cannot be reached leaves its tools
	// out and adds to the error; the others still come back.
	Inventory(ctx context.Context) ([]ToolInfo, error)
	// Enable pins a tool as its server describes it now; by names who did
	// it. ENOTFOUND when no server offers the tool.
	Enable(ctx context.Context, name, by string) error
	// Disable removes a tool's pin; ENOTFOUND when it was not enabled.
	Disable(ctx context.Context, name string) error
	// TestServer connects to an MCP server without saving it (the Tools
	// page's "Test connection"), lists its tools with their full names and
	// their state under the pins, and closes it, within ctx's deadline.
	// EINVALID for settings that cannot work; any other error's message
	// says in words why the server could not be reached (command not
	// found, exit status and stderr, HTTP status, TLS, timeout), without
	// secret values.
	TestServer(ctx context.Context, s *engine.ToolServer) ([]ToolInfo, error)
}

// ToolInfo is an MCP tool as an admin sees it (the fields of
// tools.ToolStatus).
type ToolInfo struct {
	Name        string `json:"name"` // full name: server__tool
	Description string `json:"description"`
	State       string `json:"state"` // "enabled", "not enabled" or "changed" (since it was enabled: disabled)
	Hash        string `json:"hash"`  // of its name, description and input schema
}

// Deps are the console's collaborators. Store and Chat are required.
type Deps struct {
	Store engine.Store
	Chat  Chat
	// Knowledge serves the knowledge-base API; nil answers those routes
	// with 503. Knowledge bases themselves are read from and created in Store.
	Knowledge Knowledge
	// Providers manages the language-model providers (settings page and
	// API); nil answers those routes with 503.
	Providers ModelProviders
	// MCP serves the Model Context Protocol endpoint (/mcp, behind the
	// API's bearer-token check); nil answers 404.
	MCP http.Handler
	// Tools lists and enables the MCP servers' tools (the tools page and
	// /api/v1/tools); nil shows that tools are not configured and answers
	// that API with 503.
	Tools ToolInventory
	// Ready reports whether the dependencies can serve (for /readyz); nil
	// means always ready.
	Ready func(ctx context.Context) error
	// Degraded lists the dependencies that are down but have a fallback
	// (/readyz stays 200 and names them); nil: none.
	Degraded func(ctx context.Context) []string
	Logger   *slog.Logger
}

// Server is the console's http.Handler.
type Server struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	router   *gin.Engine
	pages    map[string]*template.Template
	assets   *assets
	throttle *throttle
	cookies  cookieNames
	origins  *http.CrossOriginProtection
	// dashboard keeps the dashboard's summary of today for a few seconds.
	dashboard dashboardCache
	now       func() time.Time
}

// New returns the console server, or an error naming the missing
// dependency, the bad setting or the broken template.
func New(cfg Config, deps Deps) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Chat == nil {
		return nil, engine.Errorf(engine.EINVALID, "console: store and chat are required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:     cfg,
		deps:    deps,
		log:     log.With("component", "console"),
		cookies: newCookieNames(cfg.SecureCookies),
		origins: http.NewCrossOriginProtection(),
		now:     time.Now,
	}
	s.throttle = newThrottle(cfg.LoginMaxFailures, cfg.LoginWindow, func() time.Time { return s.now() })
	var err error
	if s.assets, err = loadAssets(); err != nil {
		return nil, err
	}
	if s.pages, err = parseTemplates(s.assets); err != nil {
		return nil, err
	}
	if s.router, err = s.routes(); err != nil {
		return nil, err
	}
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.router.ServeHTTP(w, r)
}
