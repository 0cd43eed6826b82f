// Package app wires the components both binaries share: the store, the
// knowledge service and index, the language model and the engine. It is the
// only place (with the mains) that knows concrete types.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
	"github.com/convosphere/convosphere/knowledge/embedded"
	"github.com/convosphere/convosphere/knowledge/extract"
	"github.com/convosphere/convosphere/knowledge/rerank"
	"github.com/convosphere/convosphere/knowledge/weaviate"
	"github.com/convosphere/convosphere/llm/extractive"
	"github.com/convosphere/convosphere/llm/openai"
	"github.com/convosphere/convosphere/llm/router"
	"github.com/convosphere/convosphere/observe"
	"github.com/convosphere/convosphere/store/postgres"
	"github.com/convosphere/convosphere/store/redis"
	"github.com/convosphere/convosphere/store/sqlite"
	"github.com/convosphere/convosphere/tools"
)

// App holds the shared components of a running process.
type App struct {
	Config    config.Config
	Logger    *slog.Logger
	Store     engine.Store
	Index     knowledge.Index
	Knowledge *knowledge.Service
	// Model is ModelRouter: the model providers configured in the
	// console, over the default model of llm.*.
	Model       engine.LanguageModel
	ModelRouter *router.Router
	// Secrets seals and opens API keys at rest (security.encryption_key);
	// nil without a key (PostgreSQL without security.encryption_key): its
	// Seal then fails saying so.
	Secrets *engine.SecretBox
	Tools   *tools.Registry
	Engine  *engine.Engine
	// Handler is Engine observed (metrics, traces): the workers and the
	// console's chat answer through it.
	Handler engine.Handler
	// Observer holds the metrics and the tracer (metrics.*, tracing.*).
	Observer *observe.Observer
	metrics  *metricsServer // metrics.addr's listener, when set
	// Redis is nil unless redis.url is set. Locker, Notifier and Limiter
	// are then shared through it, else in-process.
	Redis    *redis.Client
	Locker   engine.Locker
	Notifier engine.Notifier
	Limiter  engine.RateLimiter
}

// OpenTools starts the configured MCP servers (tools.mcp_servers); a
// server that fails is logged and retried on use.
// The store holds the pins (admins enable each MCP tool) and the MCP
// servers configured in the console (see tools.Registry).
func OpenTools(ctx context.Context, cfg config.Tools, retriever engine.Retriever, store engine.Store, logger *slog.Logger) (*tools.Registry, error) {
	servers := make([]tools.ServerConfig, len(cfg.MCPServers))
	for i, s := range cfg.MCPServers {
		servers[i] = tools.ServerConfig{Name: s.Name, Transport: s.Transport, Command: s.Command, Args: s.Args,
			Env: s.Env, URL: s.URL, Headers: s.Headers}
	}
	r, err := tools.New(tools.Config{Servers: servers, CallTimeout: cfg.CallTimeout, MaxOutputBytes: cfg.MaxOutputBytes,
		Builtins: tools.Builtins{Retriever: retriever, FetchAllowlist: cfg.FetchAllowlist}, Pins: store, Stored: store}, logger)
	if err != nil {
		return nil, fmt.Errorf("tools.mcp_servers: %w", err)
	}
	r.Start(ctx)
	return r, nil
}

// NewLogger returns the process logger described by cfg.
func NewLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(observe.LogHandler(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(observe.LogHandler(slog.NewTextHandler(w, opts)))
}

// OpenStore opens the configured relational store: SQLite in the data
// directory by default, PostgreSQL when database.url is set. Migrations are
// applied unless migrate is false.
func OpenStore(ctx context.Context, cfg config.Config, logger *slog.Logger, migrate bool) (engine.Store, error) {
	if cfg.Database.URL != "" {
		db, err := postgres.Open(ctx, postgres.Config{URL: cfg.Database.URL, SkipMigrations: !migrate, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL (database.url): %w", err)
		}
		return db, nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data_dir %s: %w", cfg.DataDir, err)
	}
	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(cfg.DataDir, "convosphere.db"), SkipMigrations: !migrate, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("open SQLite in data_dir %s: %w", cfg.DataDir, err)
	}
	return db, nil
}

// OpenIndex opens the knowledge index: Weaviate when weaviate.url is set,
// else the embedded index in the data directory.
func OpenIndex(ctx context.Context, cfg config.Config, logger *slog.Logger) (knowledge.Index, error) {
	if cfg.Weaviate.URL != "" {
		ix, err := weaviate.Open(ctx, weaviate.Config{URL: cfg.Weaviate.URL, APIKey: cfg.Weaviate.APIKey, Collection: cfg.Weaviate.Collection, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("open the Weaviate knowledge index (weaviate.url): %w", err)
		}
		return ix, nil
	}
	ix, err := embedded.Open(ctx, embedded.Config{Path: filepath.Join(cfg.DataDir, "index.db")})
	if err != nil {
		return nil, fmt.Errorf("open the knowledge index in data_dir %s: %w", cfg.DataDir, err)
	}
	return ix, nil
}

// Open builds every shared component. Close releases them.
func Open(ctx context.Context, cfg config.Config, logger *slog.Logger) (_ *App, err error) {
	a := &App{Config: cfg, Logger: logger}
	defer func() {
		if err != nil {
			_ = a.Close()
		}
	}()
	if a.Observer, err = OpenObserver(cfg, logger); err != nil {
		return nil, err
	}
	if a.Store, err = OpenStore(ctx, cfg, logger, true); err != nil {
		return nil, err
	}
	a.Store = a.Observer.Store(a.Store) // counts and traces the inbox's events
	a.openShared(ctx, cfg, logger)
	a.Store = engine.WithChangeNotices(ctx, a.Store, a.Notifier, 0, logger)
	if a.Index, err = OpenIndex(ctx, cfg, logger); err != nil {
		return nil, err
	}
	if a.Secrets, err = OpenSecrets(cfg, logger); err != nil {
		return nil, err
	}
	def, err := NewModel(cfg.LLM, logger)
	if err != nil {
		return nil, err
	}
	if a.ModelRouter, err = NewRouter(cfg.LLM, def, a.Store, a.Secrets, logger); err != nil {
		return nil, err
	}
	a.Model = a.ModelRouter
	deps := knowledge.Deps{Store: a.Store, Index: a.Index, Logger: logger}
	if e, ok := def.(engine.Embedder); ok && cfg.LLM.EmbeddingModel != "" {
		deps.Embedder = e
		logger.Info("hybrid search on", "embedding_model", cfg.LLM.EmbeddingModel)
	}
	if cfg.Rerank.URL != "" {
		rr, err := rerank.New(rerank.Config{URL: cfg.Rerank.URL, APIKey: cfg.Rerank.APIKey, Model: cfg.Rerank.Model}, rerank.Deps{Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("rerank (rerank.*): %w", err)
		}
		deps.Reranker = rr
	}
	k := cfg.Knowledge
	a.Knowledge, err = knowledge.New(knowledge.Config{
		ChunkSize: k.ChunkSize, ChunkOverlap: k.ChunkOverlap, MaxFileBytes: k.MaxFileBytes,
		Extract: extract.Config{MaxPages: k.MaxPages, Timeout: k.ExtractTimeout},
	}, deps)
	if err != nil {
		return nil, fmt.Errorf("knowledge: %w", err)
	}
	if a.Tools, err = OpenTools(ctx, cfg.Tools, a.Knowledge, a.Store, logger); err != nil {
		return nil, err
	}
	// Budgets price tokens as the console's analytics do (console.model_prices).
	prices := make(map[string]engine.ModelPrice, len(cfg.Console.ModelPrices))
	for model, p := range cfg.Console.ModelPrices {
		prices[model] = engine.ModelPrice{InputPerMillion: p.InputPerMillion, OutputPerMillion: p.OutputPerMillion}
	}
	budgets, err := engine.NewBudgetMeter(engine.BudgetConfig{Prices: prices}, engine.BudgetDeps{Store: a.Store, Audit: a.Store, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("budgets (console.model_prices): %w", err)
	}
	a.Engine, err = engine.New(engine.Config{
		MaxMessageBytes: cfg.Engine.MaxMessageBytes,
		HistoryTokens:   cfg.Engine.HistoryTokens,
		StallTimeout:    cfg.Engine.StallTimeout,
		TurnTimeout:     cfg.Engine.TurnTimeout,
		ApprovalTTL:     cfg.Tools.ApprovalTTL,
		RateLimits: engine.RateLimits{
			User:      engine.Rate{Limit: cfg.RateLimits.UserPerMinute, Per: time.Minute},
			Channel:   engine.Rate{Limit: cfg.RateLimits.ChannelPerMinute, Per: time.Minute},
			Assistant: engine.Rate{Limit: cfg.RateLimits.AssistantPerMinute, Per: time.Minute},
		},
	}, engine.Deps{
		Assistants: a.Store, Conversations: a.Store, Traces: a.Store,
		Model: a.Observer.Model(a.Model), Retriever: a.Observer.Retriever(a.Knowledge), Tools: a.Observer.Tools(a.Tools),
		ToolAudit: a.Store, Approvals: a.Store, Logger: logger,
		Limiter: a.Limiter, Budgets: budgets,
	})
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	a.Handler = a.Observer.Handler(a.Engine)
	a.subscribeChanges(ctx, logger)
	return a, nil
}

// NewModel returns the configured language model: the OpenAI-compatible
// provider when llm.model or llm.base_url is set, else the extractive
// responder that quotes knowledge passages.
func NewModel(cfg config.LLM, logger *slog.Logger) (engine.LanguageModel, error) {
	if !cfg.Enabled() {
		logger.Info("no language model configured (llm.model): answers quote knowledge passages")
		return extractive.New(extractive.Config{})
	}
	retries := cfg.MaxRetries
	if retries == 0 {
		retries = -1 // the provider reads 0 as "default"
	}
	p, err := openai.New(openai.Config{
		BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, Model: cfg.Model, EmbeddingModel: cfg.EmbeddingModel,
		APIType: cfg.APIType, APIVersion: cfg.APIVersion, RequestTimeout: cfg.Timeout,
		MaxRetries: retries, Logger: logger,
	})
	if err != nil {
		return nil, fmt.Errorf("language model (llm.*): %w", err)
	}
	logger.Info("language model configured", "model", cfg.Model, "api_type", cfg.APIType)
	return p, nil
}

// NewRouter returns the language model of the process: requests for
// "<provider>/<model>" go to the model providers configured in the console
// (read from store, their keys opened with secrets), the others to def.
func NewRouter(cfg config.LLM, def engine.LanguageModel, store engine.ProviderStore, secrets *engine.SecretBox, logger *slog.Logger) (*router.Router, error) {
	retries := cfg.MaxRetries
	if retries == 0 {
		retries = -1 // the provider reads 0 as "default"
	}
	r, err := router.New(router.Config{
		Default: def, Providers: store, Secrets: secrets, Logger: logger,
		Connect: func(p engine.ModelProvider, apiKey string) (engine.LanguageModel, error) {
			model := p.Name // requests always name their model; the client needs a default
			if len(p.Models) > 0 {
				model = p.Models[0]
			}
			return openai.New(openai.Config{
				BaseURL: p.BaseURL, APIKey: apiKey, APIType: p.APIType, APIVersion: p.APIVersion, Model: model,
				RequestTimeout: cfg.Timeout, MaxRetries: retries, Settings: fmt.Sprintf("model provider %q", p.Name), Logger: logger,
			})
		},
	})
	if err != nil {
		return nil, fmt.Errorf("model providers: %w", err)
	}
	return r, nil
}

// Ready reports whether the process's dependencies answer.
func (a *App) Ready(ctx context.Context) error {
	if err := a.Store.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	return nil
}

// Degraded lists what does not work but has a fallback (for /readyz,
// which stays ready): Redis down means rate limits are off, sign-ins fail
// and locks wait, while events are still answered and de-duplicated.
func (a *App) Degraded(ctx context.Context) []string {
	if a.Redis == nil {
		return nil
	}
	if err := a.Redis.Ping(ctx); err != nil {
		return []string{"redis: Redis is unavailable; rate limits are off, console sign-ins fail and leader locks wait until it is back"}
	}
	return nil
}

// Close releases every component that was opened.
func (a *App) Close() error {
	var errs []error
	if a.Tools != nil {
		errs = append(errs, a.Tools.Close())
	}
	if a.Index != nil {
		errs = append(errs, a.Index.Close())
	}
	if a.Store != nil {
		errs = append(errs, a.Store.Close())
	}
	if a.Redis != nil {
		errs = append(errs, a.Redis.Close())
	}
	errs = append(errs, a.closeObserver())
	return errors.Join(errs...)
}

// SyncKnowledge makes the knowledge index hold every stored document (a new
// index file, or another replica's uploads) and logs what it did.
func (a *App) SyncKnowledge(ctx context.Context) error {
	if err := a.Knowledge.Sync(ctx); err != nil {
		return fmt.Errorf("sync knowledge index: %w", err)
	}
	return nil
}

// Demo names what SeedDemo creates.
const (
	DemoKnowledgeBase = "convosphere-docs"
	DemoAssistant     = "ConvoSphere Guide"
)

const demoPrompt = `You are ConvoSphere Guide, the assistant of the ConvoSphere documentation.
Answer questions about installing, configuring and operating ConvoSphere from the documentation
passages you are given. Be concise, use Markdown, and cite passages with [n].`

// SeedDemo creates (or refreshes) the knowledge base of the docs directory
// and, when there are no assistants yet, a default assistant that answers
// from it. Re-running it only re-indexes documents that changed.
func (a *App) SeedDemo(ctx context.Context, docsDir string) error {
	if _, err := a.Store.KnowledgeBaseByName(ctx, DemoKnowledgeBase); engine.IsNotFound(err) {
		kb := &engine.KnowledgeBase{Name: DemoKnowledgeBase, Description: "ConvoSphere's own documentation (" + docsDir + ")"}
		if err := a.Store.CreateKnowledgeBase(ctx, kb); err != nil && engine.ErrorCode(err) != engine.ECONFLICT {
			return fmt.Errorf("create demo knowledge base: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("load demo knowledge base: %w", err)
	}
	report, err := a.Knowledge.IngestPath(ctx, DemoKnowledgeBase, docsDir, nil)
	if err != nil {
		return fmt.Errorf("ingest demo docs from %s: %w", docsDir, err)
	}
	a.Logger.Info("demo knowledge base ready", "knowledge_base", DemoKnowledgeBase, "indexed", len(report.OK), "unchanged", len(report.Skipped), "failed", len(report.Failed))
	for _, f := range report.Failed {
		a.Logger.Warn("demo document failed", "source", f.Source, "reason", f.Reason)
	}
	all, err := a.Store.ListAssistants(ctx)
	if err != nil {
		return fmt.Errorf("list assistants: %w", err)
	}
	if len(all) > 0 {
		return nil
	}
	as := &engine.Assistant{
		Name:           DemoAssistant,
		Description:    "Answers questions about ConvoSphere from its documentation.",
		SystemPrompt:   strings.TrimSpace(demoPrompt),
		Temperature:    0.2,
		KnowledgeBases: []string{DemoKnowledgeBase},
		IsDefault:      true,
	}
	if err := as.Validate(); err != nil {
		return err
	}
	if err := a.Store.CreateAssistant(ctx, as); err != nil && engine.ErrorCode(err) != engine.ECONFLICT {
		return fmt.Errorf("create demo assistant: %w", err)
	}
	return nil
}
