// Package tools is the tool registry: tools from MCP servers (through
// mark3labs/mcp-go, over stdio, streamable HTTP or SSE) and built-in
// tools, offered to each assistant by its allowlist and run for the
// engine's tool loop (it implements engine.ToolSet).
//
// A tool is named "<server>__<tool>" (built-in tools: "builtin__<tool>"),
// which is what an assistant's Tools list holds. Each call has a timeout
// (the MCP request is cancelled), its output is capped (truncated with a
// note), and a stdio server that crashed is restarted with backoff while
// the conversation goes on with a clear message. A stdio server's process
// gets only the environment configured for it (and PATH and HOME), never
// ConvoSphere's own secrets.
package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/convosphere/convosphere/engine"
)

// Transports.
const (
	TransportStdio = "stdio"
	TransportHTTP  = "http" // streamable HTTP
	TransportSSE   = "sse"
)

// Separator joins a server's name and its tool's name.
const Separator = "__"

// ServerConfig configures one MCP server.
type ServerConfig struct {
	Name      string            // [a-z0-9_-], unique
	Transport string            // stdio, http or sse
	Command   string            // stdio
	Args      []string          // stdio
	Env       map[string]string // stdio: the process's whole environment, besides PATH and HOME
	URL       string            // http, sse
	Headers   map[string]string // http, sse (e.g. Authorization)
}

// Config configures the registry.
type Config struct {
	Servers        []ServerConfig
	CallTimeout    time.Duration // per call; default 30s
	MaxOutputBytes int           // per call result; default 16 KiB
	Builtins       Builtins      // the built-in tools (builtin__current_time, …)
	// Pins holds the tools admins enabled: an MCP tool is offered only
	// when pinned and unchanged since. Nil turns pinning off (tests).
	Pins engine.ToolPinStore
	// Stored holds the MCP servers configured in the console, read again
	// at most every ReloadEvery (default 5s); those of the config file
	// (Servers) take precedence on a name.
	Stored      engine.ToolServerStore
	ReloadEvery time.Duration
}

func (c *Config) setDefaults() {
	if c.CallTimeout == 0 {
		c.CallTimeout = 30 * time.Second
	}
	if c.MaxOutputBytes == 0 {
		c.MaxOutputBytes = 16 << 10
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	seen := map[string]bool{}
	for _, s := range c.Servers {
		ts := engine.ToolServer{Name: s.Name, Transport: s.Transport, Command: s.Command, URL: s.URL}
		if err := ts.Validate(); err != nil {
			return err
		}
		if seen[s.Name] {
			return engine.Errorf(engine.EINVALID, "MCP server name %q appears twice", s.Name)
		}
		seen[s.Name] = true
	}
	if c.CallTimeout < 0 || c.MaxOutputBytes < 0 {
		return engine.Errorf(engine.EINVALID, "tool call timeout and output limit must not be negative")
	}
	return nil
}

// Registry holds the MCP servers' tools; it implements engine.ToolSet.
type Registry struct {
	cfg    Config
	log    *slog.Logger
	wg     sync.WaitGroup
	cancel context.CancelFunc

	smu        sync.Mutex
	servers    map[string]*server
	configured map[string]bool // from the config file
	loadedAt   time.Time
}

var _ engine.ToolSet = (*Registry)(nil)

// server is one MCP server: its client while connected, and its tools.
type server struct {
	cfg ServerConfig

	mu     sync.Mutex
	client *client.Client
	tools  []mcp.Tool
	down   error     // why it is not connected
	next   time.Time // when a crashed server may be started again
	tries  int
}

// New returns a registry; Start connects its servers.
func New(cfg Config, logger *slog.Logger) (*Registry, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReloadEvery == 0 {
		cfg.ReloadEvery = 5 * time.Second
	}
	r := &Registry{cfg: cfg, log: logger.With("component", "tools"), servers: map[string]*server{}, configured: map[string]bool{}}
	for _, s := range cfg.Servers {
		r.servers[s.Name] = &server{cfg: s}
		r.configured[s.Name] = true
	}
	return r, nil
}

// Invalidate makes the next use read the servers configured in the
// console again (a change notice: another replica saved one).
func (r *Registry) Invalidate() {
	r.smu.Lock()
	r.loadedAt = time.Time{}
	r.smu.Unlock()
}

// reload brings the servers configured in the console up to date: new
// ones are added, removed or changed ones closed (a changed one starts
// again with its new settings).
func (r *Registry) reload(ctx context.Context) {
	if r.cfg.Stored == nil {
		return
	}
	r.smu.Lock()
	if time.Since(r.loadedAt) < r.cfg.ReloadEvery {
		r.smu.Unlock()
		return
	}
	r.loadedAt = time.Now()
	r.smu.Unlock()
	stored, err := r.cfg.Stored.ToolServers(ctx)
	if err != nil {
		r.log.WarnContext(ctx, "read MCP servers", "error", err)
		return
	}
	want := map[string]ServerConfig{}
	for _, ts := range stored {
		if err := ts.Validate(); err != nil {
			r.log.WarnContext(ctx, "MCP server ignored", "server", ts.Name, "error", err)
			continue
		}
		want[ts.Name] = ServerConfig{Name: ts.Name, Transport: ts.Transport, Command: ts.Command, Args: ts.Args,
			Env: ts.Env, URL: ts.URL, Headers: ts.Headers}
	}
	r.smu.Lock()
	defer r.smu.Unlock()
	for name, s := range r.servers {
		if r.configured[name] {
			continue
		}
		if w, ok := want[name]; !ok || !sameServer(w, s.cfg) {
			s.close()
			delete(r.servers, name)
		}
	}
	for name, w := range want {
		if _, ok := r.servers[name]; !ok && !r.configured[name] {
			r.servers[name] = &server{cfg: w}
		}
	}
}

func sameServer(a, b ServerConfig) bool {
	aj, _ := json.Marshal(a)
	bj, _ := json.Marshal(b)
	return string(aj) == string(bj)
}

func (s *server) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		_ = s.client.Close()
		s.client = nil
	}
}

// snapshot returns the servers by name, reloading the stored ones first.
func (r *Registry) snapshot(ctx context.Context) map[string]*server {
	r.reload(ctx)
	r.smu.Lock()
	defer r.smu.Unlock()
	out := make(map[string]*server, len(r.servers))
	for k, v := range r.servers {
		out[k] = v
	}
	return out
}

// Start connects every server (initialize, tools/list). A server that
// fails is logged and retried on use; Start does not fail for it.
func (r *Registry) Start(ctx context.Context) {
	for _, s := range r.snapshot(ctx) {
		if err := r.connect(ctx, s); err != nil {
			r.log.WarnContext(ctx, "MCP server unavailable", "server", s.cfg.Name, "error", err)
		}
	}
}

// Close stops the servers.
func (r *Registry) Close() error {
	r.smu.Lock()
	defer r.smu.Unlock()
	for _, s := range r.servers {
		s.close()
	}
	return nil
}

// connect starts (or restarts) a server's client and lists its tools.
func (r *Registry) connect(ctx context.Context, s *server) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		return nil
	}
	if time.Now().Before(s.next) {
		return fmt.Errorf("restarting after a failure: %w", s.down)
	}
	c, err := newClient(s.cfg)
	if err == nil {
		cctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
		defer cancel()
		// The connection lives until Close: an SSE stream (and a stdio
		// process) must not end with this call's context.
		if err = c.Start(context.WithoutCancel(ctx)); err == nil {
			init := mcp.InitializeRequest{}
			init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
			init.Params.ClientInfo = mcp.Implementation{Name: "convosphere", Version: "1"}
			if _, err = c.Initialize(cctx, init); err == nil {
				var list *mcp.ListToolsResult
				if list, err = c.ListTools(cctx, mcp.ListToolsRequest{}); err == nil {
					s.tools = list.Tools
				}
			}
		}
		if err != nil {
			_ = c.Close()
		}
	}
	if err != nil {
		s.down = err
		s.tries++
		s.next = time.Now().Add(min(time.Second<<min(s.tries-1, 6), time.Minute))
		return err
	}
	s.client, s.down, s.tries = c, nil, 0
	name := s.cfg.Name
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/tools/list_changed" {
			r.wg.Go(func() { r.refresh(context.Background(), name) })
		}
	})
	r.log.InfoContext(ctx, "MCP server connected", "server", name, "tools", len(s.tools))
	return nil
}

// refresh lists a server's tools again (after tools/list_changed).
func (r *Registry) refresh(ctx context.Context, name string) {
	r.smu.Lock()
	s := r.servers[name]
	r.smu.Unlock()
	if s == nil {
		return
	}
	s.mu.Lock()
	c := s.client
	s.mu.Unlock()
	if c == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	defer cancel()
	list, err := c.ListTools(cctx, mcp.ListToolsRequest{})
	if err != nil {
		r.log.WarnContext(ctx, "MCP tools refresh failed", "server", name, "error", err)
		return
	}
	s.mu.Lock()
	s.tools = list.Tools
	s.mu.Unlock()
	r.log.InfoContext(ctx, "MCP tools changed", "server", name, "tools", len(list.Tools))
}

// newClient makes the mcp-go client of a server.
func newClient(cfg ServerConfig) (*client.Client, error) {
	switch cfg.Transport {
	case TransportStdio:
		env := stdioEnv(cfg)
		cmdFunc := func(ctx context.Context, command string, _ []string, args []string) (*exec.Cmd, error) {
			cmd := exec.CommandContext(ctx, command, args...)
			cmd.Env = env // only what is configured: not ConvoSphere's secrets
			return cmd, nil
		}
		return client.NewStdioMCPClientWithOptions(cfg.Command, nil, cfg.Args, transport.WithCommandFunc(cmdFunc))
	case TransportHTTP:
		return client.NewStreamableHttpClient(cfg.URL, transport.WithHTTPHeaders(cfg.Headers))
	case TransportSSE:
		return client.NewSSEMCPClient(cfg.URL, transport.WithHeaders(cfg.Headers))
	}
	return nil, fmt.Errorf("transport %q is unknown", cfg.Transport)
}

// Tools implements engine.ToolSet: the tools of the assistant's allowlist
// that a connected server offers.
func (r *Registry) Tools(ctx context.Context, a *engine.Assistant) ([]engine.ToolSpec, error) {
	allowed := map[string]bool{}
	for _, name := range a.Tools {
		allowed[name] = true
	}
	pins, err := r.pins(ctx)
	if err != nil {
		return nil, err
	}
	var specs []engine.ToolSpec
	var errs []error
	for _, spec := range r.cfg.Builtins.specs() {
		if allowed[spec.Name] {
			specs = append(specs, spec)
		}
	}
	servers := r.snapshot(ctx)
	for _, name := range sortedNames(servers) {
		s := servers[name]
		if !anyAllowed(allowed, name) {
			continue
		}
		if err := r.connect(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("MCP server %s: %w", name, err))
			continue
		}
		s.mu.Lock()
		for _, t := range s.tools {
			full := name + Separator + t.Name
			if !allowed[full] {
				continue
			}
			if h, err := toolHash(t); err != nil || state(pins, full, h) != StateEnabled {
				if err == nil && state(pins, full, h) == StateChanged {
					r.log.WarnContext(ctx, "MCP tool changed since it was enabled: disabled until an admin enables it again", "tool", full)
				}
				continue
			}
			schema, err := t.MarshalJSON()
			if err == nil {
				schema, err = inputSchema(schema)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("tool %s: %w", full, err))
				continue
			}
			specs = append(specs, engine.ToolSpec{Name: full, Description: t.Description, InputSchema: schema})
		}
		s.mu.Unlock()
	}
	return specs, errors.Join(errs...)
}

func anyAllowed(allowed map[string]bool, server string) bool {
	for name := range allowed {
		if strings.HasPrefix(name, server+Separator) {
			return true
		}
	}
	return false
}

func sortedNames(m map[string]*server) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Call implements engine.ToolSet.
func (r *Registry) Call(ctx context.Context, inv engine.ToolInvocation) engine.ToolResult {
	name, tool, ok := strings.Cut(inv.Call.Name, Separator)
	if ok && name == builtinServer && allowedFor(inv.Assistant, inv.Call.Name) {
		offered := false
		for _, spec := range r.cfg.Builtins.specs() {
			offered = offered || spec.Name == inv.Call.Name
		}
		args, err := decodeArguments(inv.Call.Arguments)
		switch {
		case !offered:
			return engine.ToolResult{Content: fmt.Sprintf("The tool %q is not available.", inv.Call.Name), IsError: true, Outcome: engine.ToolDenied}
		case err != nil:
			return engine.ToolResult{Content: "The arguments are not a JSON object: " + err.Error(), IsError: true, Outcome: engine.ToolError}
		}
		cctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
		defer cancel()
		res := r.cfg.Builtins.call(cctx, inv, tool, args)
		res.Content = r.truncate(res.Content)
		return res
	}
	s := r.snapshot(ctx)[name]
	if !ok || s == nil || !allowedFor(inv.Assistant, inv.Call.Name) {
		return engine.ToolResult{Content: fmt.Sprintf("The tool %q is not available to this assistant.", inv.Call.Name), IsError: true, Outcome: engine.ToolDenied}
	}
	if err := r.connect(ctx, s); err != nil {
		return engine.ToolResult{Content: fmt.Sprintf("The tool server %q is unavailable (%v); it is being restarted. Answer without it, or try again later.", name, err),
			IsError: true, Outcome: engine.ToolError}
	}
	s.mu.Lock()
	c := s.client
	var current *mcp.Tool
	for i := range s.tools {
		if s.tools[i].Name == tool {
			current = &s.tools[i]
		}
	}
	s.mu.Unlock()
	if current == nil {
		return engine.ToolResult{Content: fmt.Sprintf("The server %q no longer offers %q.", name, tool), IsError: true, Outcome: engine.ToolDenied}
	}
	pins, err := r.pins(ctx)
	if err != nil {
		return engine.ToolResult{Content: "The tool could not be checked: " + err.Error(), IsError: true, Outcome: engine.ToolError}
	}
	if h, err := toolHash(*current); err != nil || state(pins, inv.Call.Name, h) != StateEnabled {
		return engine.ToolResult{Content: fmt.Sprintf("The tool %q is disabled: it changed since an admin enabled it, or was never enabled.", inv.Call.Name),
			IsError: true, Outcome: engine.ToolDenied}
	}
	args, err := decodeArguments(inv.Call.Arguments)
	if err != nil {
		return engine.ToolResult{Content: "The arguments are not a JSON object: " + err.Error(), IsError: true, Outcome: engine.ToolError}
	}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	res, err := c.CallTool(cctx, req)
	switch {
	case errors.Is(cctx.Err(), context.DeadlineExceeded):
		return engine.ToolResult{Content: fmt.Sprintf("The tool %q did not answer within %s; the call was cancelled.", inv.Call.Name, r.cfg.CallTimeout),
			IsError: true, Outcome: engine.ToolTimeout}
	case err != nil:
		r.markDown(s, c, err)
		return engine.ToolResult{Content: fmt.Sprintf("The tool server %q failed (%v); it is being restarted. Answer without it, or try again later.", name, err),
			IsError: true, Outcome: engine.ToolError}
	}
	out := r.truncate(resultText(res))
	if res.IsError {
		return engine.ToolResult{Content: out, IsError: true, Outcome: engine.ToolError}
	}
	return engine.ToolResult{Content: out, Outcome: engine.ToolOK}
}

func allowedFor(a *engine.Assistant, name string) bool {
	if a == nil {
		return false
	}
	for _, t := range a.Tools {
		if t == name {
			return true
		}
	}
	return false
}

// markDown drops a client whose transport failed (a crashed process), so
// the next use restarts it, after a backoff.
func (r *Registry) markDown(s *server, c *client.Client, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != c {
		return
	}
	_ = c.Close()
	s.client, s.down = nil, err
	s.tries++
	s.next = time.Now().Add(min(time.Second<<min(s.tries-1, 6), time.Minute))
	r.log.Warn("MCP server failed; it will be restarted", "server", s.cfg.Name, "error", err)
}

// truncate caps a result at MaxOutputBytes, on a rune boundary, with a note.
func (r *Registry) truncate(s string) string {
	if len(s) <= r.cfg.MaxOutputBytes {
		return s
	}
	cut := r.cfg.MaxOutputBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("\n\n[output truncated: %d of %d bytes shown]", cut, len(s))
}

// resultText is a result's text content (other content is described).
func resultText(res *mcp.CallToolResult) string {
	var sb strings.Builder
	for _, c := range res.Content {
		if sb.Len() > 0 {
			sb.WriteString("\n")
		}
		switch v := c.(type) {
		case mcp.TextContent:
			sb.WriteString(v.Text)
		case mcp.ImageContent:
			sb.WriteString("[an image: " + v.MIMEType + "]")
		case mcp.AudioContent:
			sb.WriteString("[audio: " + v.MIMEType + "]")
		case mcp.EmbeddedResource:
			sb.WriteString("[a resource]")
		default:
			sb.WriteString("[content]")
		}
	}
	return sb.String()
}
