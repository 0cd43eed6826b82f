package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/convosphere/convosphere/cmd/internal/app"
	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
)

// cli runs the admin subcommands.
type cli struct {
	cfg    config.Config
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %s: %v", errUsage, fs.Name(), err)
	}
	return nil
}

// withStore opens the store (applying migrations), runs f and closes it.
func (c *cli) withStore(ctx context.Context, f func(engine.Store) error) error {
	st, err := app.OpenStore(ctx, c.cfg, app.NewLogger(c.cfg.Log, c.stderr), true)
	if err != nil {
		return err
	}
	return errors.Join(f(st), st.Close())
}

func (c *cli) migrate(ctx context.Context) error {
	return c.withStore(ctx, func(engine.Store) error {
		fmt.Fprintln(c.stdout, "migrations applied")
		return nil
	})
}

func (c *cli) user(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: user needs a subcommand: create or list", errUsage)
	}
	switch args[0] {
	case "create":
		fs := c.flags("user create")
		name := fs.String("name", "", "user name (required)")
		role := fs.String("role", string(engine.RoleViewer), "admin, editor or viewer")
		fromStdin := fs.Bool("password-stdin", false, "read the password from standard input (default: generate one)")
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		if *name == "" {
			return fmt.Errorf("%w: user create needs --name", errUsage)
		}
		if !engine.Role(*role).Valid() {
			return fmt.Errorf("%w: --role %q is unknown: use admin, editor or viewer", errUsage, *role)
		}
		password := generatePassword()
		if *fromStdin {
			line, err := bufio.NewReader(c.stdin).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read password: %w", err)
			}
			password = strings.TrimRight(line, "\r\n")
		}
		hash, err := engine.HashPassword(password)
		if err != nil {
			return err
		}
		return c.withStore(ctx, func(st engine.Store) error {
			u := &engine.User{Name: *name, Role: engine.Role(*role), PasswordHash: hash}
			if err := st.CreateUser(ctx, u); err != nil {
				return fmt.Errorf("create user %s: %w", *name, err)
			}
			fmt.Fprintf(c.stdout, "created user %s (%s)\n", u.Name, u.Role)
			if !*fromStdin {
				fmt.Fprintf(c.stdout, "password: %s\n", password)
			}
			return nil
		})
	case "list":
		return c.withStore(ctx, func(st engine.Store) error {
			users, err := st.ListUsers(ctx)
			if err != nil {
				return fmt.Errorf("list users: %w", err)
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLE\tDISABLED\tCREATED")
			for _, u := range users {
				fmt.Fprintf(tw, "%s\t%s\t%t\t%s\n", u.Name, u.Role, u.Disabled, u.CreatedAt.Format("2006-01-02 15:04"))
			}
			return tw.Flush()
		})
	}
	return fmt.Errorf("%w: unknown user subcommand %q: use create or list", errUsage, args[0])
}

func (c *cli) token(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "create" {
		return fmt.Errorf("%w: token needs the subcommand create", errUsage)
	}
	fs := c.flags("token create")
	userName := fs.String("user", "", "the user the token acts as (required)")
	label := fs.String("name", "cli", "a label to recognise the token by")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *userName == "" {
		return fmt.Errorf("%w: token create needs --user", errUsage)
	}
	return c.withStore(ctx, func(st engine.Store) error {
		token, err := CreateToken(ctx, st, *userName, *label)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "API token for %s (shown once; send it as Authorization: Bearer):\n%s\n", *userName, token)
		return nil
	})
}

// CreateToken creates an API token for the named user and returns it.
func CreateToken(ctx context.Context, users engine.UserStore, userName, label string) (string, error) {
	u, err := users.UserByName(ctx, userName)
	if engine.IsNotFound(err) {
		return "", fmt.Errorf("there is no user %q: create it with `console user create --name %s`", userName, userName)
	} else if err != nil {
		return "", fmt.Errorf("load user %s: %w", userName, err)
	}
	if u.Disabled {
		return "", fmt.Errorf("user %s is disabled: enable it before creating a token", userName)
	}
	token, hash := engine.NewSecret("cs_")
	if err := users.CreateAPIToken(ctx, &engine.APIToken{UserID: u.ID, Name: label, TokenHash: hash}); err != nil {
		return "", fmt.Errorf("create token: %w", err)
	}
	return token, nil
}

func (c *cli) knowledge(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: knowledge needs a subcommand: ingest or search", errUsage)
	}
	sub := args[0]
	fs := c.flags("knowledge " + sub)
	kb := fs.String("kb", "", "knowledge base name (required)")
	limit := fs.Int("limit", 5, "search: passages to show")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *kb == "" {
		return fmt.Errorf("%w: knowledge %s needs --kb", errUsage, sub)
	}
	if sub != "ingest" && sub != "search" {
		return fmt.Errorf("%w: unknown knowledge subcommand %q: use ingest or search", errUsage, sub)
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: knowledge %s needs %s", errUsage, sub, map[string]string{"ingest": "one or more paths", "search": "a query"}[sub])
	}
	a, err := app.Open(ctx, c.cfg, app.NewLogger(c.cfg.Log, c.stderr))
	if err != nil {
		return err
	}
	defer a.Close()
	if sub == "search" {
		return c.search(ctx, a, *kb, strings.Join(fs.Args(), " "), *limit)
	}
	return c.ingest(ctx, a, *kb, fs.Args())
}

func (c *cli) ingest(ctx context.Context, a *app.App, kb string, paths []string) error {
	if _, err := a.Store.KnowledgeBaseByName(ctx, kb); engine.IsNotFound(err) {
		base := &engine.KnowledgeBase{Name: kb}
		if err := base.Validate(); err != nil {
			return err
		}
		if err := a.Store.CreateKnowledgeBase(ctx, base); err != nil {
			return fmt.Errorf("create knowledge base %s: %w", kb, err)
		}
		fmt.Fprintf(c.stdout, "created knowledge base %s\n", kb)
	} else if err != nil {
		return fmt.Errorf("load knowledge base %s: %w", kb, err)
	}
	failed := 0
	for _, p := range paths {
		report, err := a.Knowledge.IngestPath(ctx, kb, p, func(p knowledge.IngestProgress) {
			fmt.Fprintf(c.stderr, "\r%s", progressBar(p.Done, p.Total, p.Result.Source))
		})
		fmt.Fprintln(c.stderr)
		if err != nil {
			return fmt.Errorf("ingest %s: %w", p, err)
		}
		fmt.Fprintf(c.stdout, "%s: %d indexed, %d unchanged, %d failed\n", p, len(report.OK), len(report.Skipped), len(report.Failed))
		for _, f := range report.Failed {
			fmt.Fprintf(c.stdout, "  failed: %s: %s\n", f.Source, f.Reason)
		}
		failed += len(report.Failed)
	}
	if failed > 0 {
		return fmt.Errorf("%d files failed (see above); the others were ingested", failed)
	}
	return nil
}

func (c *cli) search(ctx context.Context, a *app.App, kb, query string, limit int) error {
	res, err := a.Knowledge.Retrieve(ctx, engine.RetrievalRequest{Query: query, KnowledgeBases: []string{kb}, Settings: engine.RetrievalSettings{Limit: limit}})
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	passages := res.Passages
	if len(passages) == 0 {
		fmt.Fprintln(c.stdout, "no passages match")
		return nil
	}
	for i, p := range passages {
		section := p.Section()
		fmt.Fprintf(c.stdout, "[%d] %.3f  %s — %s (%s)\n    %s\n", i+1, p.Score, p.Title, section, p.Document, engine.Snippet(p.Text, 200))
	}
	return nil
}

func (c *cli) config(args []string) error {
	if len(args) == 0 || args[0] != "show" {
		return fmt.Errorf("%w: config needs the subcommand show", errUsage)
	}
	out, err := c.cfg.Redacted()
	if err != nil {
		return err
	}
	_, err = c.stdout.Write(out)
	return err
}

// progressBar renders "[#####     ]  5/10 source" for a terminal line.
func progressBar(done, total int, source string) string {
	const width = 24
	filled := 0
	if total > 0 {
		filled = done * width / total
	}
	if len(source) > 40 {
		source = "…" + source[len(source)-39:]
	}
	return fmt.Sprintf("[%s%s] %d/%d %-40s", strings.Repeat("#", filled), strings.Repeat(" ", width-filled), done, total, source)
}
