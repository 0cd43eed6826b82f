package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/store/postgres"
	"github.com/convosphere/convosphere/store/sqlite"
)

const (
	readyTimeout = 90 * time.Second
	// knowledgeBase is the knowledge base of the bench's assistant.
	knowledgeBase = "load-docs"
	assistantName = "Load Guide"
)

// environment is what the scenarios of a run share: the fakes, the model,
// the built binaries and the database server.
type environment struct {
	opts options
	run  *Run
	tmp  string

	slack   *slackFake
	discord *discordFake
	mm      *mattermostFake
	model   *model

	slackSecret string
	discordKey  ed25519.PrivateKey // signs the interactions; the bot has its public key

	botBin, consoleBin string
	pgBase             string
	drops              []func()
}

func (e *environment) close() {
	for _, c := range []interface{ Close() error }{e.slack, e.discord, e.mm, e.model} {
		if c != nil {
			_ = c.Close()
		}
	}
	for _, drop := range e.drops {
		drop()
	}
	switch {
	case e.tmp == "":
	case e.opts.keep:
		benchkit.Logf("kept %s (the bots' logs and data)", e.tmp)
	default:
		_ = os.RemoveAll(e.tmp)
	}
}

// build compiles cmd/bot and, for the knowledge base, cmd/console.
func (e *environment) build(ctx context.Context) error {
	targets := [][2]string{{"bot", "./cmd/bot"}}
	if e.opts.knowledge {
		targets = append(targets, [2]string{"console", "./cmd/console"})
	}
	for _, t := range targets {
		bin := filepath.Join(e.tmp, t[0])
		if err := benchkit.Build(ctx, t[1], bin); err != nil {
			return err
		}
		if t[0] == "bot" {
			e.botBin = bin
		} else {
			e.consoleBin = bin
		}
	}
	return nil
}

// bot is a running cmd/bot.
type bot struct {
	srv     *benchkit.Server
	URL     string
	dataDir string
	dbURL   string
}

// baseEnv is the configuration every bot process and admin command of a
// scenario gets: its data directory and database.
func baseEnv(dataDir, dbURL string) []string {
	env := append(benchkit.WithoutPrefix(os.Environ(), "CONVOSPHERE_"),
		"CONVOSPHERE_DATA_DIR="+dataDir,
		"CONVOSPHERE_LOG_LEVEL=warn",
	)
	if dbURL != "" {
		env = append(env, "CONVOSPHERE_DATABASE_URL="+dbURL)
	}
	return env
}

// startBot prepares a fresh store for a scenario (the knowledge base and
// the assistant) and runs cmd/bot on it with all three platforms
// configured against the fakes, and the scripted model.
func (e *environment) startBot(ctx context.Context, name string) (*bot, error) {
	dataDir := filepath.Join(e.tmp, name+"-data")
	dbURL := ""
	if e.opts.postgres {
		var err error
		if dbURL, err = e.freshDatabase(ctx, name); err != nil {
			return nil, err
		}
	}
	if err := e.seed(ctx, dataDir, dbURL); err != nil {
		return nil, err
	}
	port, err := benchkit.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	env := append(baseEnv(dataDir, dbURL),
		"CONVOSPHERE_BOT_ADDR="+addr,
		"CONVOSPHERE_CONSOLE_ADDR=127.0.0.1:0",
		"CONVOSPHERE_BOT_WORKERS="+strconv.Itoa(e.opts.workers),
		"CONVOSPHERE_RATE_LIMITS_USER_PER_MINUTE=0",
		"CONVOSPHERE_RATE_LIMITS_CHANNEL_PER_MINUTE=0",
		"CONVOSPHERE_LLM_BASE_URL="+e.model.URL,
		"CONVOSPHERE_LLM_MODEL=bench-model",
		"CONVOSPHERE_LLM_API_KEY=load-key",
		"CONVOSPHERE_SLACK_MODE=http",
		"CONVOSPHERE_SLACK_SIGNING_SECRET="+e.slackSecret,
		"CONVOSPHERE_SLACK_BOT_TOKEN=xoxb-load",
		"CONVOSPHERE_SLACK_API_URL="+e.slack.URL,
		"CONVOSPHERE_DISCORD_MODE=http",
		"CONVOSPHERE_DISCORD_APPLICATION_ID="+discordApp,
		"CONVOSPHERE_DISCORD_PUBLIC_KEY="+hex.EncodeToString(e.discordKey.Public().(ed25519.PublicKey)),
		"CONVOSPHERE_DISCORD_BOT_TOKEN=load-discord-token",
		"CONVOSPHERE_DISCORD_API_URL="+e.discord.URL,
		"CONVOSPHERE_MATTERMOST_URL="+e.mm.URL,
		"CONVOSPHERE_MATTERMOST_TOKEN="+mattermostToken,
	)
	cmd := exec.Command(e.botBin)
	cmd.Env = env
	srv, err := benchkit.StartServer("bot-"+name, cmd, filepath.Join(e.tmp, name+"-bot.log"))
	if err != nil {
		return nil, err
	}
	srv.URL = "http://" + addr
	// Ready means the store answers and the Mattermost websocket is open.
	if err := srv.WaitReady(ctx, readyTimeout, benchkit.HTTPReady(srv.URL+"/readyz")); err != nil {
		srv.Stop()
		return nil, err
	}
	if err := e.mm.waitConnected(ctx, readyTimeout); err != nil {
		srv.Stop()
		return nil, err
	}
	return &bot{srv: srv, URL: srv.URL, dataDir: dataDir, dbURL: dbURL}, nil
}

// seed gives a fresh store the bench's assistant: the default one, with
// the knowledge base of the documentation (ingested by cmd/console, as an
// operator does) unless -knowledge=false.
func (e *environment) seed(ctx context.Context, dataDir, dbURL string) error {
	as := &engine.Assistant{
		Name: assistantName, IsDefault: true, Temperature: 0.2,
		SystemPrompt: "You are the load benchmark's assistant. Answer from the passages, cite them with [n], be concise.",
	}
	if e.opts.knowledge {
		files, err := knowledgeFiles()
		if err != nil {
			return err
		}
		args := append([]string{"knowledge", "ingest", "--kb", knowledgeBase}, files...)
		cmd := exec.CommandContext(ctx, e.consoleBin, args...)
		cmd.Env = baseEnv(dataDir, dbURL)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("console knowledge ingest: %w: %s", err, out)
		}
		as.KnowledgeBases = []string{knowledgeBase}
	}
	store, err := openStore(ctx, dataDir, dbURL, false)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.CreateAssistant(ctx, as); err != nil {
		return fmt.Errorf("create the assistant: %w", err)
	}
	return nil
}

// knowledgeFiles are the documentation pages the knowledge base holds:
// docs/*.md but this generated file.
func knowledgeFiles() ([]string, error) {
	all, err := filepath.Glob("docs/*.md")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range all {
		if filepath.Base(f) != "benchmarks.md" {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no docs/*.md to ingest: run from the repository root, or give -knowledge=false")
	}
	return out, nil
}

// traceStore is what the bench reads of a bot's store after a scenario.
type traceStore interface {
	CreateAssistant(ctx context.Context, a *engine.Assistant) error
	ListConversations(ctx context.Context, f engine.ConversationFilter) ([]*engine.Conversation, error)
	ListTraces(ctx context.Context, conversationID string) ([]*engine.Trace, error)
	Close() error
}

// openStore opens the scenario's store: SQLite in the data directory, or
// PostgreSQL. migrated says the bot has migrated it already.
func openStore(ctx context.Context, dataDir, dbURL string, migrated bool) (traceStore, error) {
	if dbURL != "" {
		db, err := postgres.Open(ctx, postgres.Config{URL: dbURL, SkipMigrations: migrated})
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL: %w", err)
		}
		return db, nil
	}
	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dataDir, "convosphere.db"), SkipMigrations: migrated})
	if err != nil {
		return nil, fmt.Errorf("open SQLite: %w", err)
	}
	return db, nil
}

// readTraces reads every trace of the scenario's store (the bot stopped).
func readTraces(ctx context.Context, b *bot) ([]*engine.Trace, error) {
	store, err := openStore(ctx, b.dataDir, b.dbURL, true)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	var out []*engine.Trace
	const page = 1000
	for offset := 0; ; offset += page {
		convs, err := store.ListConversations(ctx, engine.ConversationFilter{Limit: page, Offset: offset})
		if err != nil {
			return nil, fmt.Errorf("list conversations: %w", err)
		}
		for _, c := range convs {
			ts, err := store.ListTraces(ctx, c.ID)
			if err != nil {
				return nil, fmt.Errorf("list traces: %w", err)
			}
			out = append(out, ts...)
		}
		if len(convs) < page {
			return out, nil
		}
	}
}

// freshDatabase is a new database for a scenario on the PostgreSQL server
// of -database-url (or of scripts/services.sh), dropped at the end.
func (e *environment) freshDatabase(ctx context.Context, name string) (string, error) {
	if e.pgBase == "" {
		base := e.opts.databaseURL
		if base == "" {
			benchkit.Logf("postgres: no -database-url: running scripts/services.sh postgres")
			var err error
			if base, err = benchkit.StartPostgres(ctx); err != nil {
				return "", fmt.Errorf("%w (or give -database-url)", err)
			}
			e.run.Notes = append(e.run.Notes, "PostgreSQL from scripts/services.sh postgres, left running (scripts/services.sh stop stops it)")
		}
		if v, err := benchkit.ServerVersion(ctx, base); err == nil {
			e.run.PostgreSQL = v
		}
		e.pgBase = base
	}
	fresh, drop, err := benchkit.FreshDatabase(ctx, e.pgBase, "convosphere_bench_load_"+strings.ReplaceAll(name, "-", "_"))
	if err != nil {
		return "", fmt.Errorf("postgres: create a fresh database: %w", err)
	}
	e.drops = append(e.drops, drop)
	return fresh, nil
}

// newHTTPClient is the clients' HTTP client: keep-alive connections
// enough for every concurrent conversation.
func newHTTPClient(conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.MaxIdleConns = conns * 2
	t.MaxIdleConnsPerHost = conns * 2
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}
