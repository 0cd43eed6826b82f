package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/convosphere/convosphere/cmd/internal/app"
	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/console/web"
	"github.com/convosphere/convosphere/console/web/password"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
	"github.com/convosphere/convosphere/observe"
	"github.com/convosphere/convosphere/tools"
	mcpserver "github.com/convosphere/convosphere/tools/mcp"
)

// toolInventory serves the console's tools page and API from the
// registry: tools as the servers describe them, enabled (pinned) or not.
type toolInventory struct {
	reg   *tools.Registry
	store engine.ToolPinStore
}

func (t toolInventory) Inventory(ctx context.Context) ([]web.ToolInfo, error) {
	list, err := t.reg.Inventory(ctx)
	out := make([]web.ToolInfo, 0, len(list))
	for _, s := range list {
		out = append(out, web.ToolInfo(s))
	}
	return out, err
}

func (t toolInventory) Enable(ctx context.Context, name, by string) error {
	_, err := t.reg.Enable(ctx, name, by)
	return err
}

func (t toolInventory) Disable(ctx context.Context, name string) error {
	return t.store.DeleteToolPin(ctx, name)
}

// TestServer connects to a server that is not saved (the Tools page's
// "Test connection") and lists its tools.
func (t toolInventory) TestServer(ctx context.Context, s *engine.ToolServer) ([]web.ToolInfo, error) {
	list, err := t.reg.TestServer(ctx, tools.ServerConfig{Name: s.Name, Transport: s.Transport, Command: s.Command,
		Args: s.Args, Env: s.Env, URL: s.URL, Headers: s.Headers})
	out := make([]web.ToolInfo, 0, len(list))
	for _, s := range list {
		out = append(out, web.ToolInfo(s))
	}
	return out, err
}

// Main is the console program: Run starts it, Close stops it. Tests run
// the real wiring through it on 127.0.0.1:0 with a temporary data directory.
type Main struct {
	Config config.Config
	Stdout io.Writer // start-up banner (URL, first admin password)
	Logger *slog.Logger

	App *app.App
	// StopGrace is how long Close lets answers stream on before ending
	// them with a note; default 7s (of the 10s Close waits).
	StopGrace time.Duration
	ln        net.Listener
	server    *http.Server
	served    chan error
	// base is every request's parent context; Close ends it with the
	// cause engine.ErrStopping, so answers still streaming end with a note.
	base     context.Context
	stopBase context.CancelCauseFunc
	stop     chan struct{} // ends the background work (session purge)
	done     sync.WaitGroup
}

// NewMain returns a console for cfg.
func NewMain(cfg config.Config, stdout io.Writer, logger *slog.Logger) *Main {
	if cfg.Tracing.ServiceName == "" {
		cfg.Tracing.ServiceName = "convosphere-console"
	}
	return &Main{Config: cfg, Stdout: stdout, Logger: logger}
}

// Run opens the store and the engine, creates the first admin when there is
// no user, seeds the demo when configured, and starts serving. It returns
// once the console accepts connections.
func (m *Main) Run(ctx context.Context) (err error) {
	cfg := m.Config
	if m.App, err = app.Open(ctx, cfg, m.Logger); err != nil {
		return err
	}
	adminPassword, created, err := ensureAdmin(ctx, m.App.Store, cfg.Admin.Password)
	if err != nil {
		return err
	}
	if err := m.App.SyncKnowledge(ctx); err != nil {
		return err
	}
	if cfg.Demo.DocsDir != "" {
		if err := m.App.SeedDemo(ctx, cfg.Demo.DocsDir); err != nil {
			return err
		}
	}
	handler, err := web.New(web.Config{
		MaxMessageBytes:    cfg.Engine.MaxMessageBytes,
		SessionTTL:         cfg.Console.SessionTTL,
		SessionIdleTimeout: cfg.Console.SessionIdleTimeout,
		ModelPrices:        modelPrices(cfg.Console.ModelPrices),
		SecureCookies:      cfg.Console.SecureCookies,
		MaxUploadBytes:     cfg.Console.MaxUploadBytes,
		Version:            version,
	}, web.Deps{
		Store: m.App.Store, Chat: m.App.Handler, Ready: m.App.Ready, Degraded: m.App.Degraded, Logger: m.Logger,
		Knowledge: knowledgeAPI{Service: m.App.Knowledge, store: m.App.Store},
		Tools:     toolInventory{reg: m.App.Tools, store: m.App.Store},
		Providers: providersAPI{app: m.App},
		MCP: mcpserver.NewServer(mcpserver.Deps{Retriever: m.App.Knowledge, Assistants: m.App.Store,
			KnowledgeBases: m.App.Store, Version: version}),
	})
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	// GET /metrics, outside the router (no session, no audit), and the
	// requests counted by area.
	observed, err := m.App.ObserveHTTP(handler, observe.RouteByPrefix(
		"/api/v1/chat", "/api/", "/mcp", "/static/", "/healthz", "/readyz", "/login", "/"))
	if err != nil {
		return err
	}
	if m.ln, err = net.Listen("tcp", cfg.Console.Addr); err != nil {
		return fmt.Errorf("listen on console.addr %s: %w (choose a free port with CONVOSPHERE_CONSOLE_ADDR)", cfg.Console.Addr, err)
	}
	m.base, m.stopBase = context.WithCancelCause(context.Background())
	m.server = &http.Server{
		BaseContext:       func(net.Listener) context.Context { return m.base },
		Handler:           observed,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	m.served = make(chan error, 1)
	go func() { m.served <- m.server.Serve(m.ln) }()
	m.stop = make(chan struct{})
	m.done.Go(func() { m.purgeSessions(handler) })

	m.Logger.Info("console ready", "url", m.URL())
	fmt.Fprintf(m.Stdout, "\n  ConvoSphere console: %s/playground\n", m.URL())
	switch {
	case created && cfg.Admin.Password == "":
		fmt.Fprintf(m.Stdout, "  Created user admin with the generated password: %s\n  (shown once: keep it, or set admin.password before the first start)\n", adminPassword)
	case cfg.Demo.DocsDir != "" && cfg.Admin.Password != "":
		// make run keeps the demo's admin password in the data directory and
		// passes it on every start; show it when it is still the one in use.
		if u, err := m.App.Store.UserByName(ctx, "admin"); err == nil && password.Verify(u.PasswordHash, cfg.Admin.Password) {
			fmt.Fprintf(m.Stdout, "  Sign in as: admin / %s\n", cfg.Admin.Password)
		}
	}
	if cfg.Demo.DocsDir != "" {
		fmt.Fprintf(m.Stdout, "  Ask the demo assistant %q, e.g. \"How do I connect Slack?\"\n", app.DemoAssistant)
	}
	fmt.Fprintln(m.Stdout)
	return nil
}

// providersAPI serves the console's model providers from the store,
// sealing API keys with the app's secret box; the model router picks up a
// change at once in this process (other processes within seconds).
type providersAPI struct{ app *app.App }

func (p providersAPI) List(ctx context.Context) ([]*engine.ModelProvider, error) {
	return p.app.Store.ModelProviders(ctx)
}

// stored returns the stored provider named name, or nil.
func (p providersAPI) stored(ctx context.Context, name string) (*engine.ModelProvider, error) {
	list, err := p.app.Store.ModelProviders(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range list {
		if s.Name == name {
			return s, nil
		}
	}
	return nil, nil
}

func (p providersAPI) Save(ctx context.Context, mp *engine.ModelProvider, keepKey bool) error {
	switch {
	case mp.APIKey != "":
		sealed, err := p.app.Secrets.Seal(mp.APIKey)
		if err != nil {
			return err
		}
		mp.APIKeySealed, mp.APIKey = sealed, ""
	case keepKey:
		old, err := p.stored(ctx, mp.Name)
		if err != nil {
			return engine.WrapError(engine.EUNAVAILABLE, err, "The model providers could not be read; please try again in a minute.")
		}
		if old != nil {
			mp.APIKeySealed = old.APIKeySealed
		}
	}
	if err := mp.Validate(); err != nil {
		return err
	}
	if err := p.app.Store.SaveModelProvider(ctx, mp); err != nil {
		return err
	}
	return p.app.ModelRouter.Refresh(ctx)
}

func (p providersAPI) Delete(ctx context.Context, name string) error {
	if err := p.app.Store.DeleteModelProvider(ctx, name); err != nil {
		return err
	}
	return p.app.ModelRouter.Refresh(ctx)
}

func (p providersAPI) Models(ctx context.Context, mp *engine.ModelProvider, apiKey string) ([]string, error) {
	if apiKey != "" {
		mp.APIKey = apiKey
	} else if old, err := p.stored(ctx, mp.Name); err == nil && old != nil {
		mp.APIKeySealed = old.APIKeySealed
	}
	return p.app.ModelRouter.ProviderModels(ctx, mp)
}

// modelPrices converts the configured prices for the console.
func modelPrices(in map[string]config.ModelPrice) map[string]web.ModelPrice {
	out := make(map[string]web.ModelPrice, len(in))
	for model, p := range in {
		out[model] = web.ModelPrice{InputPerMillion: p.InputPerMillion, OutputPerMillion: p.OutputPerMillion}
	}
	return out
}

// sessionPurgeEvery is how often expired and idle sessions are deleted.
const sessionPurgeEvery = 10 * time.Minute

// purgeSessions deletes expired and idle sessions at start and then every
// sessionPurgeEvery, until Close.
func (m *Main) purgeSessions(h *web.Server) {
	t := time.NewTicker(sessionPurgeEvery)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		n, err := h.PurgeSessions(ctx)
		cancel()
		switch {
		case err != nil:
			m.Logger.Warn("purge sessions", "error", err)
		case n > 0:
			m.Logger.Info("purged expired and idle sessions", "sessions", n)
		}
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
	}
}

// URL is the console's base URL.
func (m *Main) URL() string {
	if m.ln == nil {
		return ""
	}
	return "http://" + m.ln.Addr().String()
}

// Wait blocks until the server stops or ctx ends.
func (m *Main) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-m.served:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve: %w", err)
	}
}

// Close stops accepting connections, lets requests in flight (streams
// included) finish for up to 10 seconds — answers still streaming after 7
// end with a note to ask again —, and closes the store.
func (m *Main) Close() error {
	var errs []error
	if m.stop != nil {
		close(m.stop)
		m.done.Wait()
		m.stop = nil
	}
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		grace := m.StopGrace
		if grace <= 0 {
			grace = 7 * time.Second
		}
		end := time.AfterFunc(grace, func() { m.stopBase(engine.ErrStopping) })
		defer end.Stop()
		if err := m.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down console: %w", err))
		}
		m.server = nil
	}
	if m.App != nil {
		errs = append(errs, m.App.Close())
		m.App = nil
	}
	return errors.Join(errs...)
}

// knowledgeAPI adapts *knowledge.Service to web.Knowledge, whose Ingest
// also reports whether the content was already indexed.
type knowledgeAPI struct {
	*knowledge.Service
	store engine.KnowledgeStore
}

var _ web.Knowledge = knowledgeAPI{}

// Ingest implements web.Knowledge. The service leaves content that is
// already indexed alone without saying so; the record stored before the
// call tells: the same hash, indexed, and handed back untouched (a
// concurrent upload of the same name would have changed its UpdatedAt).
func (k knowledgeAPI) Ingest(ctx context.Context, kb, source string, content []byte) (*engine.Document, bool, error) {
	sum := sha256.Sum256(content)
	prev, err := k.store.DocumentBySource(ctx, kb, strings.TrimSpace(source))
	same := err == nil && prev.SHA256 == hex.EncodeToString(sum[:]) && prev.Status == engine.DocumentIndexed
	doc, err := k.Service.Ingest(ctx, kb, source, content)
	if err != nil {
		return doc, false, err
	}
	return doc, same && doc.ID == prev.ID && doc.UpdatedAt.Equal(prev.UpdatedAt), nil
}

// DocumentChunks implements web.Knowledge.
func (k knowledgeAPI) DocumentChunks(ctx context.Context, documentID string) (*engine.Document, []engine.Passage, error) {
	doc, chunks, err := k.Service.Chunks(ctx, documentID)
	passages := make([]engine.Passage, len(chunks))
	for i, c := range chunks {
		passages[i] = c.Passage(0)
	}
	return doc, passages, err
}

// ensureAdmin creates user admin when the store has no users, with the
// configured password or a generated one. It returns the password used and
// whether the user was created.
func ensureAdmin(ctx context.Context, users engine.UserStore, pw string) (string, bool, error) {
	n, err := users.CountUsers(ctx)
	if err != nil {
		return "", false, fmt.Errorf("count users: %w", err)
	}
	if n > 0 {
		return "", false, nil
	}
	if pw == "" {
		pw = generatePassword()
	}
	hash, err := password.Hash(pw)
	if err != nil {
		return "", false, fmt.Errorf("admin.password: %w", err)
	}
	u := &engine.User{Name: "admin", DisplayName: "Administrator", Role: engine.RoleAdmin, PasswordHash: hash}
	if err := users.CreateUser(ctx, u); err != nil {
		if engine.ErrorCode(err) == engine.ECONFLICT { // another process created it first
			return "", false, nil
		}
		return "", false, fmt.Errorf("create user admin: %w", err)
	}
	return pw, true, nil
}

// generatePassword returns a random password of 22 URL-safe characters.
func generatePassword() string {
	token, _ := engine.NewSecret("")
	return token[:22]
}

func (c *cli) serve(ctx context.Context) error {
	logger := app.NewLogger(c.cfg.Log, c.stderr)
	m := NewMain(c.cfg, c.stdout, logger)
	if err := m.Run(ctx); err != nil {
		_ = m.Close()
		return err
	}
	err := m.Wait(ctx)
	logger.Info("console stopping")
	return errors.Join(err, m.Close())
}
