// Command console runs ConvoSphere's admin console, web Playground and REST
// API, and holds the admin subcommands (migrate, user, token, knowledge,
// config). Run `console help` for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/convosphere/convosphere/cmd/internal/config"
)

const usage = `Usage: console [--config FILE] COMMAND [ARGS]

Commands:
  serve                                  run the console (default)
  migrate                                apply database migrations and exit
  user create --name NAME [--role admin|editor|viewer] [--password-stdin]
  user list
  user link --name NAME --platform slack|discord|mattermost --id CHAT_USER_ID
  user unlink --platform slack|discord|mattermost --id CHAT_USER_ID
  token create --user NAME [--name LABEL] create an API token; prints it on the last line
  knowledge ingest --kb NAME PATH...     ingest files or directories (Markdown, text, HTML, PDF, DOCX); creates the KB
  knowledge search --kb NAME [-k N] QUERY
                                         search a knowledge base (-k passages, default 10)
  knowledge search --kb NAME [-k N] --jsonl
                                         search for each JSON line {"query": "..."} on stdin,
                                         writing one JSON line of results per query
  knowledge reindex --kb NAME            chunk and embed again from the stored originals
  tools list                             the MCP servers' tools and whether they are enabled
  tools enable|disable NAME...           enable (pin as it is now) or disable a tool (server__tool)
  config show                            print the effective configuration, secrets redacted
  version                                print the version

Configuration: --config FILE or CONVOSPHERE_CONFIG, then CONVOSPHERE_* environment variables
(see docs/configuration.md).
`

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

// run executes one command and returns the process exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	global := flag.NewFlagSet("console", flag.ContinueOnError)
	global.SetOutput(stderr)
	global.Usage = func() { fmt.Fprint(stderr, usage) }
	configFile := global.String("config", "", "configuration file (YAML)")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	args = global.Args()
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version":
		fmt.Fprintln(stdout, version)
		return 0
	}
	cfg, err := config.Load(*configFile)
	if err != nil {
		fmt.Fprintln(stderr, "console:", err)
		return 2
	}
	c := &cli{cfg: cfg, stdin: stdin, stdout: stdout, stderr: stderr, tty: isTerminal(stderr)}
	switch cmd {
	case "serve":
		err = c.serve(ctx)
	case "migrate":
		err = c.migrate(ctx)
	case "user":
		err = c.user(ctx, args)
	case "token":
		err = c.token(ctx, args)
	case "knowledge":
		err = c.knowledge(ctx, args)
	case "tools":
		err = c.tools(ctx, args)
	case "config":
		err = c.config(args)
	default:
		err = fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "console: %v\n\n%s", err, usage)
		return 2
	default:
		fmt.Fprintln(stderr, "console:", err)
		return 1
	}
}
