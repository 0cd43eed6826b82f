package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/convosphere/convosphere/cmd/internal/app"
	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/console/web"
	"github.com/convosphere/convosphere/console/web/password"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
)

// cli runs the admin subcommands.
type cli struct {
	cfg    config.Config
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	tty    bool // stderr is a terminal: show progress bars

	barOpen bool // a progress bar is drawn and its line not ended
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
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
		return fmt.Errorf("%w: user needs a subcommand: create, list, link or unlink", errUsage)
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
		pw := generatePassword()
		if *fromStdin {
			line, err := bufio.NewReader(c.stdin).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read password: %w", err)
			}
			pw = strings.TrimRight(line, "\r\n")
			if err := password.CheckNew(pw, *name); err != nil {
				return fmt.Errorf("user create: %w", err)
			}
		}
		hash, err := password.Hash(pw)
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
				fmt.Fprintf(c.stdout, "password: %s\n", pw)
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
	case "link", "unlink":
		return c.linkUser(ctx, args[0], args[1:])
	}
	return fmt.Errorf("%w: unknown user subcommand %q: use create, list, link or unlink", errUsage, args[0])
}

// linkUser runs `user link --name N --platform P --id ID` (a chat user is
// that console user: an admin's chat identity may approve tool calls) and
// `user unlink --platform P --id ID`.
func (c *cli) linkUser(ctx context.Context, sub string, args []string) error {
	fs := c.flags("user " + sub)
	name := fs.String("name", "", "the console user (link only)")
	platform := fs.String("platform", "", "slack, discord or mattermost")
	id := fs.String("id", "", "the user's id on the platform (Slack U…, a Discord snowflake, a Mattermost user id)")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch engine.Platform(*platform) {
	case engine.PlatformSlack, engine.PlatformDiscord, engine.PlatformMattermost:
	default:
		return fmt.Errorf("%w: user %s: --platform %q is unknown: use slack, discord or mattermost", errUsage, sub, *platform)
	}
	if strings.TrimSpace(*id) == "" || (sub == "link" && *name == "") {
		return fmt.Errorf("%w: user %s needs --platform and --id (and --name to link)", errUsage, sub)
	}
	return c.withStore(ctx, func(st engine.Store) error {
		if sub == "unlink" {
			if err := st.UnlinkIdentity(ctx, engine.Platform(*platform), *id); err != nil {
				return fmt.Errorf("unlink %s user %s: %w", *platform, *id, err)
			}
			fmt.Fprintf(c.stdout, "unlinked %s user %s\n", *platform, *id)
			return nil
		}
		u, err := st.UserByName(ctx, *name)
		if err != nil {
			return fmt.Errorf("user %s: %w", *name, err)
		}
		if err := st.LinkIdentity(ctx, &engine.Identity{Platform: engine.Platform(*platform), ChatUserID: *id, UserID: u.ID}); err != nil {
			return fmt.Errorf("link %s user %s: %w", *platform, *id, err)
		}
		fmt.Fprintf(c.stdout, "linked %s user %s to %s (%s)\n", *platform, *id, u.Name, u.Role)
		return nil
	})
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
		return fmt.Errorf("%w: knowledge needs a subcommand: ingest, search or reindex", errUsage)
	}
	switch args[0] {
	case "ingest":
		return c.knowledgeIngest(ctx, args[1:])
	case "search":
		return c.knowledgeSearch(ctx, args[1:])
	case "reindex":
		return c.knowledgeReindex(ctx, args[1:])
	}
	return fmt.Errorf("%w: unknown knowledge subcommand %q: use ingest, search or reindex", errUsage, args[0])
}

// kbFlag checks the --kb flag of the knowledge commands.
func kbFlag(sub, name string) error {
	if name == "" {
		return fmt.Errorf("%w: knowledge %s needs --kb", errUsage, sub)
	}
	kb := engine.KnowledgeBase{Name: name}
	if err := kb.Validate(); err != nil {
		return fmt.Errorf("%w: --kb: %s", errUsage, engine.ErrorMessage(err))
	}
	return nil
}

func (c *cli) knowledgeIngest(ctx context.Context, args []string) error {
	fs := c.flags("knowledge ingest")
	kb := fs.String("kb", "", "knowledge base name (required; created if missing)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := kbFlag("ingest", *kb); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: knowledge ingest needs one or more paths", errUsage)
	}
	a, err := app.Open(ctx, c.cfg, app.NewLogger(c.cfg.Log, c.stderr))
	if err != nil {
		return err
	}
	defer a.Close()
	return c.ingest(ctx, a, *kb, fs.Args())
}

// knowledgeReindex chunks, embeds and indexes a knowledge base again from
// its stored originals (after changing knowledge.chunk_size or the
// embedding model), with no re-upload.
func (c *cli) knowledgeReindex(ctx context.Context, args []string) error {
	fs := c.flags("knowledge reindex")
	kb := fs.String("kb", "", "knowledge base name (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := kbFlag("reindex", *kb); err != nil {
		return err
	}
	a, err := app.Open(ctx, c.cfg, app.NewLogger(c.cfg.Log, c.stderr))
	if err != nil {
		return err
	}
	defer a.Close()
	start := time.Now()
	report, err := a.Knowledge.Reindex(ctx, *kb)
	if err != nil {
		return fmt.Errorf("reindex %s: %w", *kb, err)
	}
	var sum ingestSummary
	sum.add(report)
	c.printIngestSummary(*kb, sum, time.Since(start))
	if sum.failed > 0 {
		return fmt.Errorf("%d documents failed to reindex (reasons above); the others were reindexed", sum.failed)
	}
	return nil
}

func (c *cli) knowledgeSearch(ctx context.Context, args []string) error {
	fs := c.flags("knowledge search")
	kb := fs.String("kb", "", "knowledge base name (required)")
	var k int
	fs.IntVar(&k, "k", web.DefaultSearchK, fmt.Sprintf("passages per query, 1 to %d", web.MaxSearchK))
	fs.IntVar(&k, "limit", web.DefaultSearchK, "the same as -k")
	jsonl := fs.Bool("jsonl", false, `read JSON lines {"query": "..."} on standard input; write one JSON line of results per query`)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := kbFlag("search", *kb); err != nil {
		return err
	}
	if err := web.ValidateSearchK(k); err != nil {
		return fmt.Errorf("%w: -k: %s", errUsage, engine.ErrorMessage(err))
	}
	switch {
	case *jsonl && fs.NArg() > 0:
		return fmt.Errorf("%w: knowledge search --jsonl reads its queries from standard input: leave out QUERY", errUsage)
	case !*jsonl && fs.NArg() == 0:
		return fmt.Errorf("%w: knowledge search needs a query, or --jsonl to read queries from standard input", errUsage)
	}
	a, err := app.Open(ctx, c.cfg, app.NewLogger(c.cfg.Log, c.stderr))
	if err != nil {
		return err
	}
	defer a.Close()
	if _, err := a.Store.KnowledgeBaseByName(ctx, *kb); engine.IsNotFound(err) {
		return fmt.Errorf("knowledge base %s does not exist: ingest documents into it first (console knowledge ingest --kb %s PATH)", *kb, *kb)
	} else if err != nil {
		return fmt.Errorf("load knowledge base %s: %w", *kb, err)
	}
	if *jsonl {
		return c.searchJSONL(ctx, a, *kb, k)
	}
	return c.search(ctx, a, *kb, strings.Join(fs.Args(), " "), k)
}

// ingestSummary adds up what an ingestion did across its paths.
type ingestSummary struct {
	indexed, unchanged, failed, skipped int
	chunks, unchangedChunks             int
	failures                            []knowledge.IngestResult
}

// add counts one path's report. IngestPath reports unchanged documents
// and ignored files both as skipped; only unchanged documents have an id.
func (s *ingestSummary) add(r knowledge.IngestReport) {
	s.indexed += len(r.OK)
	for _, ok := range r.OK {
		s.chunks += ok.Chunks
	}
	for _, sk := range r.Skipped {
		if sk.DocumentID != "" {
			s.unchanged++
			s.unchangedChunks += sk.Chunks
		} else {
			s.skipped++
		}
	}
	s.failed += len(r.Failed)
	s.failures = append(s.failures, r.Failed...)
}

// ingest ingests every path into kb, creating it when missing, and prints
// a summary. A file or path that fails is reported with its reason and the
// others go on; the error then says how many failed (exit status 1).
func (c *cli) ingest(ctx context.Context, a *app.App, kb string, paths []string) error {
	start := time.Now()
	if _, err := a.Store.KnowledgeBaseByName(ctx, kb); engine.IsNotFound(err) {
		if err := a.Store.CreateKnowledgeBase(ctx, &engine.KnowledgeBase{Name: kb}); err != nil && engine.ErrorCode(err) != engine.ECONFLICT {
			return fmt.Errorf("create knowledge base %s: %w", kb, err)
		}
		fmt.Fprintf(c.stdout, "created knowledge base %s\n", kb)
	} else if err != nil {
		return fmt.Errorf("load knowledge base %s: %w", kb, err)
	}
	var sum ingestSummary
	for _, root := range paths {
		report, err := a.Knowledge.IngestPath(ctx, kb, root, c.ingestProgress)
		if c.barOpen { // stopped before the last file
			fmt.Fprintln(c.stderr)
			c.barOpen = false
		}
		sum.add(report)
		if err != nil {
			if ctx.Err() != nil {
				c.printIngestSummary(kb, sum, time.Since(start))
				return fmt.Errorf("ingest %s: interrupted: %w", root, err)
			}
			// A path that cannot be read fails alone, like a file.
			f := knowledge.IngestResult{Source: root, Path: root, Err: err, Reason: engine.ErrorMessage(err)}
			sum.failed++
			sum.failures = append(sum.failures, f)
			if !c.tty {
				fmt.Fprintf(c.stderr, "failed    %s: %s\n", root, f.Reason)
			}
		}
	}
	c.printIngestSummary(kb, sum, time.Since(start))
	if sum.failed > 0 {
		return fmt.Errorf("%d of %d files failed (reasons above); the others were kept", sum.failed, sum.indexed+sum.unchanged+sum.failed)
	}
	return nil
}

// ingestProgress shows a progress bar on a terminal, else one line per file.
func (c *cli) ingestProgress(p knowledge.IngestProgress) {
	if c.tty {
		fmt.Fprintf(c.stderr, "\r%s", progressBar(p.Done, p.Total, p.Result.Source))
		c.barOpen = p.Done < p.Total
		if !c.barOpen {
			fmt.Fprintln(c.stderr)
		}
		return
	}
	done := fmt.Sprintf("[%d/%d]", p.Done, p.Total)
	r := p.Result
	switch {
	case p.Outcome == knowledge.OutcomeOK:
		fmt.Fprintf(c.stderr, "%s indexed   %s (%d chunks)\n", done, r.Source, r.Chunks)
	case p.Outcome == knowledge.OutcomeSkipped && r.DocumentID != "":
		fmt.Fprintf(c.stderr, "%s unchanged %s\n", done, r.Source)
	case p.Outcome == knowledge.OutcomeSkipped:
		fmt.Fprintf(c.stderr, "%s skipped   %s\n", done, reasonFor(r.Source, r.Reason))
	default:
		fmt.Fprintf(c.stderr, "%s failed    %s\n", done, reasonFor(r.Source, r.Reason))
	}
}

// printIngestSummary writes what an ingestion did to standard output.
func (c *cli) printIngestSummary(kb string, s ingestSummary, elapsed time.Duration) {
	w := c.stdout
	fmt.Fprintf(w, "knowledge base %s\n", kb)
	fmt.Fprintf(w, "documents: %d indexed, %d unchanged, %d failed\n", s.indexed, s.unchanged, s.failed)
	fmt.Fprintf(w, "chunks: %d indexed, %d unchanged\n", s.chunks, s.unchangedChunks)
	if s.skipped > 0 {
		fmt.Fprintf(w, "skipped: %d files of other types (documents are .md, .markdown, .txt, .html, .htm, .pdf, .docx)\n", s.skipped)
	}
	if len(s.failures) > 0 {
		fmt.Fprintln(w, "failures:")
		for _, f := range s.failures {
			fmt.Fprintf(w, "  %s\n", reasonFor(f.Source, f.Reason))
		}
	}
	fmt.Fprintf(w, "elapsed: %s\n", elapsed.Round(time.Millisecond))
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

// jsonlMaxLine bounds one input line of knowledge search --jsonl.
const jsonlMaxLine = 1 << 20

// jsonlResults is the output line of a query that was searched; results
// have the shape of the REST API's search results.
type jsonlResults struct {
	Query   string             `json:"query"`
	Results []web.SearchResult `json:"results"`
}

// jsonlError is the output line of an input line that could not be
// searched: the query when the line had one, the error, and the 1-based
// input line number.
type jsonlError struct {
	Query *string         `json:"query,omitempty"`
	Error jsonlErrorField `json:"error"`
	Line  int             `json:"line"`
}

type jsonlErrorField struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// searchJSONL searches kb for the query of each JSON line on standard
// input and writes one JSON line per query, flushed at once. A bad line
// gets an error line and the stream goes on; blank lines are skipped.
func (c *cli) searchJSONL(ctx context.Context, a *app.App, kb string, k int) error {
	in := bufio.NewReaderSize(c.stdin, 64<<10)
	out := bufio.NewWriter(c.stdout)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	queries, failed := 0, 0
	for n := 1; ; n++ {
		line, long, rerr := readLine(in, jsonlMaxLine)
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return fmt.Errorf("read standard input: %w", rerr)
		}
		if long || len(bytes.TrimSpace(line)) > 0 {
			queries++
			v := c.searchLine(ctx, a, kb, k, n, line, long)
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("search interrupted after %d queries: %w", queries-1, err)
			}
			if _, ok := v.(jsonlError); ok {
				failed++
			}
			if err := enc.Encode(v); err != nil {
				return fmt.Errorf("write results: %w", err)
			}
			if err := out.Flush(); err != nil {
				return fmt.Errorf("write results: %w", err)
			}
		}
		if rerr != nil {
			break
		}
	}
	if failed > 0 {
		fmt.Fprintf(c.stderr, "console: %d of %d queries could not be searched; their lines carry an \"error\" field\n", failed, queries)
	}
	return nil
}

// searchLine searches for the query of input line n and returns its
// output line: jsonlResults, or jsonlError when the line is bad or the
// search failed.
func (c *cli) searchLine(ctx context.Context, a *app.App, kb string, k, n int, line []byte, long bool) any {
	fail := func(query *string, err error) jsonlError {
		return jsonlError{Query: query, Line: n, Error: jsonlErrorField{Code: engine.ErrorCode(err), Message: engine.ErrorMessage(err)}}
	}
	if long {
		return fail(nil, engine.Errorf(engine.EINVALID, "The line is over %d bytes: shorten the query.", jsonlMaxLine))
	}
	if !utf8.Valid(line) {
		return fail(nil, engine.Errorf(engine.EINVALID, "The line is not valid UTF-8."))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil || fields == nil {
		return fail(nil, engine.Errorf(engine.EINVALID, `The line is not a JSON object such as {"query": "some keywords or a question"}.`))
	}
	raw, ok := fields["query"]
	if !ok {
		return fail(nil, engine.Errorf(engine.EINVALID, `The line has no "query" field.`))
	}
	var query string
	if err := json.Unmarshal(raw, &query); err != nil {
		return fail(nil, engine.Errorf(engine.EINVALID, `The "query" field must be a string.`))
	}
	if err := web.ValidateSearchQuery(query, c.cfg.Engine.MaxMessageBytes); err != nil {
		return fail(&query, err)
	}
	res, err := a.Knowledge.Retrieve(ctx, engine.RetrievalRequest{Query: query, KnowledgeBases: []string{kb}, Settings: engine.RetrievalSettings{Limit: k}})
	if err != nil {
		if code := engine.ErrorCode(err); code == engine.EINTERNAL || code == engine.EUNAVAILABLE {
			a.Logger.WarnContext(ctx, "search failed", "knowledge_base", kb, "line", n, "error", err)
		}
		return fail(&query, err)
	}
	return jsonlResults{Query: query, Results: web.SearchResults(res.Passages)}
}

// readLine reads one line without its line ending. A line longer than max
// bytes is consumed whole and reported as long, without its content.
func readLine(r *bufio.Reader, max int) (line []byte, long bool, err error) {
	for {
		frag, err := r.ReadSlice('\n')
		if !long {
			line = append(line, frag...)
			if len(line) > max+2 { // the line ending does not count
				line, long = nil, true
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) > max {
			line, long = nil, true
		}
		return line, long, err
	}
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

// reasonFor prefixes a per-file reason with the file's name unless the
// reason already starts with it.
func reasonFor(source, reason string) string {
	if strings.HasPrefix(reason, source+":") {
		return reason
	}
	return source + ": " + reason
}
