// Command bot runs ConvoSphere's engine workers: they claim inbound events
// from the durable inbox and answer them through the platform adapters. It
// also serves the bot's listener (bot.addr): health and readiness now,
// platform webhooks as adapters are configured.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	discordadapter "github.com/convosphere/convosphere/adapters/discord"
	mattermostadapter "github.com/convosphere/convosphere/adapters/mattermost"
	slackadapter "github.com/convosphere/convosphere/adapters/slack"
	"github.com/convosphere/convosphere/cmd/internal/app"
	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/engine"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet("bot", flag.ContinueOnError)
	configFile := fs.String("config", "", "configuration file (YAML); default $CONVOSPHERE_CONFIG")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	cfg, err := config.Load(*configFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bot:", err)
		os.Exit(2)
	}
	if args := fs.Args(); len(args) > 0 {
		os.Exit(runCommand(ctx, cfg, args, os.Stdout, os.Stderr))
	}
	logger := app.NewLogger(cfg.Log, os.Stderr)
	m := NewMain(cfg, logger)
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "bot:", err)
		_ = m.Close()
		os.Exit(1)
	}
	<-ctx.Done()
	logger.Info("bot stopping")
	if err := m.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "bot:", err)
		os.Exit(1)
	}
}

// Main is the bot program: Run starts it, Close stops it.
type Main struct {
	Config config.Config
	Logger *slog.Logger

	App     *app.App
	Slack   *slackadapter.Adapter   // nil unless slack.bot_token is set
	Discord *discordadapter.Adapter // nil unless discord.bot_token is set
	// Mattermost is nil unless mattermost.url is set.
	Mattermost *mattermostadapter.Adapter
	ln         net.Listener
	server     *http.Server
	cancel     context.CancelFunc
	workers    sync.WaitGroup
}

// NewMain returns a bot for cfg.
func NewMain(cfg config.Config, logger *slog.Logger) *Main {
	if cfg.Tracing.ServiceName == "" {
		cfg.Tracing.ServiceName = "convosphere-bot"
	}
	return &Main{Config: cfg, Logger: logger}
}

// Run opens the store and engine, starts the inbox workers and the
// listener, and returns once both run.
func (m *Main) Run(ctx context.Context) (err error) {
	cfg := m.Config
	if m.App, err = app.Open(ctx, cfg, m.Logger); err != nil {
		return err
	}
	if err := m.App.SyncKnowledge(ctx); err != nil {
		return err
	}
	repliers := map[engine.Platform]engine.ReplierFactory{}
	mux := http.NewServeMux()
	// The adapters' inbox writes wake an idle worker at once.
	wake := engine.NewWakeup()
	store := engine.WakeOnEnqueue(m.App.Store, wake)
	if cfg.Slack.Enabled() {
		if m.Slack, err = slackadapter.New(slackadapter.Config{
			SigningSecret: cfg.Slack.SigningSecret,
			BotToken:      cfg.Slack.BotToken,
			AppToken:      cfg.Slack.AppToken,
			Mode:          slackadapter.Mode(cfg.Slack.Mode),
			APIURL:        cfg.Slack.APIURL,
			CitationLink:  citationLink(cfg.Console.PublicURL),
			Locker:        m.App.Locker,
		}, store, m.Logger); err != nil {
			return err
		}
		if err := m.Slack.Start(ctx); err != nil {
			return err
		}
		repliers[engine.PlatformSlack] = m.Slack
		engine.SubscribeRetrying(ctx, m.App.Notifier, engine.TopicAssistants, m.Slack.ForgetPolicies, m.Logger)
		if cfg.Slack.Mode == "http" {
			h := m.Slack.Handler()
			mux.Handle("POST /slack/events", h)
			mux.Handle("POST /slack/interactions", h)
		}
	}
	if cfg.Discord.Enabled() {
		if m.Discord, err = newDiscord(cfg, store, m.App.Locker, m.Logger); err != nil {
			return err
		}
		repliers[engine.PlatformDiscord] = m.Discord
		if cfg.Discord.Mode == "http" {
			mux.Handle("POST /discord/interactions", m.Discord.Handler())
		}
		m.Discord.Start(ctx)
	}
	if cfg.Mattermost.Enabled() {
		if m.Mattermost, err = mattermostadapter.New(mattermostadapter.Config{URL: cfg.Mattermost.URL, Token: cfg.Mattermost.Token, ActionsURL: cfg.Mattermost.ActionsURL, Locker: m.App.Locker}, store, m.Logger); err != nil {
			return err
		}
		if err := m.Mattermost.Start(ctx); err != nil {
			return err
		}
		repliers[engine.PlatformMattermost] = m.Mattermost
		mux.Handle("POST /mattermost/actions", m.Mattermost.Handler())
	}
	// A claim outlives the longest turn, so no other worker takes an event
	// that is still being answered.
	// A crashed bot's events wait for their lease to expire before another
	// worker takes them, so the margin is kept to half a turn (at least 5s).
	lease := cfg.Engine.TurnTimeout + max(cfg.Engine.TurnTimeout/2, 5*time.Second)
	worker, err := engine.NewWorker(engine.WorkerConfig{Concurrency: cfg.Bot.Workers, Lease: lease, ShutdownGrace: cfg.Bot.ShutdownGrace}, engine.WorkerDeps{
		Inbox: m.App.Store, Handler: m.App.Handler, Repliers: repliers, Logger: m.Logger, Observer: m.App.Observer, Wakeup: wake,
	})
	if err != nil {
		return fmt.Errorf("workers: %w", err)
	}
	handler, err := m.App.ObserveHTTP(mux, nil) // GET /metrics, and the requests counted by route
	if err != nil {
		return err
	}
	if m.ln, err = net.Listen("tcp", cfg.Bot.Addr); err != nil {
		return fmt.Errorf("listen on bot.addr %s: %w (choose a free port with CONVOSPHERE_BOT_ADDR)", cfg.Bot.Addr, err)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		err := m.App.Ready(ctx)
		if err == nil && m.Slack != nil {
			err = m.Slack.Ready()
		}
		if err == nil && m.Discord != nil {
			err = m.Discord.Ready()
		}
		if err == nil && m.Mattermost != nil {
			err = m.Mattermost.Ready()
		}
		if err != nil {
			m.Logger.WarnContext(ctx, "not ready", "error", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
			return
		}
		if d := m.App.Degraded(ctx); len(d) > 0 {
			m.Logger.WarnContext(ctx, "degraded", "problems", d)
			writeJSON(w, http.StatusOK, map[string]any{"status": "degraded", "degraded": d})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	m.server = &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second}
	go func() {
		if err := m.server.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Logger.Error("bot listener stopped", "error", err)
		}
	}()

	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	m.workers.Go(func() { _ = worker.Run(wctx) })
	m.workers.Go(func() {
		engine.RunInboxPurge(wctx, m.App.Store, cfg.Bot.InboxRetention, time.Hour, m.Logger.With("component", "inbox"))
	})
	if w, ok := m.App.Index.(interface{ Warm(context.Context) error }); ok {
		// Load the knowledge bases' search postings now, in the background,
		// not on the first question.
		m.workers.Go(func() {
			start := time.Now()
			if err := w.Warm(wctx); err != nil && wctx.Err() == nil {
				m.Logger.Warn("knowledge index warm-up failed; it loads on the first search", "error", err)
				return
			}
			m.Logger.Info("knowledge index loaded", "duration_ms", time.Since(start).Milliseconds())
		})
	}
	platforms := len(repliers)
	m.Logger.Info("bot ready", "addr", m.ln.Addr().String(), "workers", cfg.Bot.Workers, "platforms", platforms)
	if platforms == 0 {
		m.Logger.Info("no chat platform is configured; set slack.bot_token, discord.bot_token or mattermost.url (see docs/slack.md, docs/discord.md, docs/mattermost.md)")
	}
	return nil
}

// Addr is the listener's address.
func (m *Main) Addr() string {
	if m.ln == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// Close stops the listener, lets the workers finish the events in hand, and
// closes the store.
func (m *Main) Close() error {
	var errs []error
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errs = append(errs, m.server.Shutdown(ctx))
	}
	if m.cancel != nil {
		m.cancel()
	}
	m.workers.Wait()
	if m.Slack != nil {
		errs = append(errs, m.Slack.Close())
	}
	if m.Discord != nil {
		errs = append(errs, m.Discord.Close())
	}
	if m.Mattermost != nil {
		errs = append(errs, m.Mattermost.Close())
	}
	if m.App != nil {
		errs = append(errs, m.App.Close())
	}
	return errors.Join(errs...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// citationLink links a citation to its chunk on the console's document
// page (console.public_url); nil without a public URL.
func citationLink(publicURL string) func(engine.Citation) string {
	base := strings.TrimRight(publicURL, "/")
	if base == "" {
		return nil
	}
	return func(c engine.Citation) string {
		doc, pos, ok := strings.Cut(c.PassageID, ":")
		if !ok || c.KnowledgeBase == "" || doc == "" {
			return ""
		}
		if _, err := strconv.Atoi(pos); err != nil {
			return ""
		}
		return base + "/knowledge/" + url.PathEscape(c.KnowledgeBase) + "/documents/" + url.PathEscape(doc) + "#chunk-" + pos
	}
}

// newDiscord returns the Discord adapter of cfg.
func newDiscord(cfg config.Config, store discordadapter.Store, locker engine.Locker, logger *slog.Logger) (*discordadapter.Adapter, error) {
	return discordadapter.New(discordadapter.Config{
		ApplicationID: cfg.Discord.ApplicationID,
		PublicKey:     cfg.Discord.PublicKey,
		BotToken:      cfg.Discord.BotToken,
		Mode:          discordadapter.Mode(cfg.Discord.Mode),
		APIURL:        cfg.Discord.APIURL,
		Locker:        locker,
	}, store, logger)
}

// runCommand runs a bot command: "discord register [--guild ID]".
func runCommand(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 || args[0] != "discord" || args[1] != "register" {
		fmt.Fprintf(stderr, "bot: unknown command %q: the commands are\n  bot discord register [--guild ID]   register the /ask and /assistant slash commands\n", strings.Join(args, " "))
		return 2
	}
	fs := flag.NewFlagSet("discord register", flag.ContinueOnError)
	fs.SetOutput(stderr)
	guild := fs.String("guild", "", "register in this server only (visible at once); default: globally (up to an hour)")
	if err := fs.Parse(args[2:]); err != nil {
		return 2
	}
	if !cfg.Discord.Enabled() {
		fmt.Fprintln(stderr, "bot: discord register: discord.bot_token is not set (see docs/discord.md)")
		return 2
	}
	d, err := newDiscord(cfg, nil, nil, nil)
	if err != nil {
		fmt.Fprintln(stderr, "bot: discord register:", err)
		return 2
	}
	cmds, err := d.Register(ctx, *guild)
	if err != nil {
		fmt.Fprintln(stderr, "bot: discord register:", engine.ErrorMessage(err))
		return 1
	}
	where := "globally (Discord may take up to an hour to show them everywhere)"
	if *guild != "" {
		where = "in server " + *guild
	}
	for _, c := range cmds {
		fmt.Fprintf(stdout, "registered /%s (id %s)\n", c.Name, c.ID)
	}
	fmt.Fprintf(stdout, "%d commands registered %s\n", len(cmds), where)
	return 0
}
