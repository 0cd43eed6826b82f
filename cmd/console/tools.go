package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/convosphere/convosphere/cmd/internal/app"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/textsplit"
)

// tools runs `console tools list|enable NAME...|disable NAME...`: the MCP
// servers' tools and which of them admins enabled (pinned).
func (c *cli) tools(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: tools needs a subcommand: list, enable or disable", errUsage)
	}
	return c.withStore(ctx, func(st engine.Store) error {
		reg, err := app.OpenTools(ctx, c.cfg.Tools, nil, st, app.NewLogger(c.cfg.Log, c.stderr))
		if err != nil {
			return err
		}
		defer reg.Close()
		switch args[0] {
		case "list":
			list, err := reg.Inventory(ctx)
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TOOL\tSTATE\tDESCRIPTION")
			for _, t := range list {
				fmt.Fprintf(w, "%s\t%s\t%s\n", t.Name, t.State, textsplit.Truncate(t.Description, 70, "…"))
			}
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			if len(list) == 0 && err == nil {
				fmt.Fprintln(c.stderr, "no MCP server is configured (tools.mcp_servers, see docs/tools.md)")
			}
			return err
		case "enable", "disable":
			if len(args) < 2 {
				return fmt.Errorf("%w: tools %s needs tool names (server__tool; see tools list)", errUsage, args[0])
			}
			var errs []error
			for _, name := range args[1:] {
				if args[0] == "enable" {
					p, err := reg.Enable(ctx, name, "console")
					if err != nil {
						errs = append(errs, fmt.Errorf("%s: %w", name, err))
						continue
					}
					fmt.Fprintf(c.stdout, "enabled %s (pinned to %.12s)\n", name, p.Hash)
					continue
				}
				if err := st.DeleteToolPin(ctx, name); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", name, err))
					continue
				}
				fmt.Fprintf(c.stdout, "disabled %s\n", name)
			}
			return errors.Join(errs...)
		}
		return fmt.Errorf("%w: unknown tools subcommand %q: use list, enable or disable", errUsage, args[0])
	})
}
