package tools

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/convosphere/convosphere/engine"
)

// ProbeTimeout bounds TestServer when its context has no earlier deadline.
const ProbeTimeout = 20 * time.Second

// TestServer connects to an MCP server that need not be saved (the
// console's "Test connection"): it starts or reaches it, initializes,
// lists its tools and closes it. The tools come back with their full names
// (server__tool) and their state under the stored pins, so a changed tool
// shows before the server is saved. The registry's servers are not
// touched.
//
// A failure is an *engine.Error whose message says what went wrong in
// words: EINVALID for settings that cannot work, ETIMEOUT when the server
// did not answer within the deadline (ProbeTimeout at most), EUNAVAILABLE
// otherwise (command not found, the exit status and the last lines of
// stderr, an HTTP status, a TLS or network error). Secret values (env,
// headers, the URL's credentials and query) never appear in the message.
func (r *Registry) TestServer(ctx context.Context, cfg ServerConfig) ([]ToolStatus, error) {
	ts := engine.ToolServer{Name: cfg.Name, Transport: cfg.Transport, Command: cfg.Command, URL: cfg.URL}
	if err := ts.Validate(); err != nil {
		return nil, err
	}
	if cfg.Transport != TransportStdio {
		if u, err := url.Parse(cfg.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, engine.Errorf(engine.EINVALID, "MCP server %s: the url must be an http:// or https:// address, such as https://mcp.example.com/mcp.", cfg.Name)
		}
	}
	pins, err := r.pins(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	limit := ProbeTimeout
	if d, ok := ctx.Deadline(); ok {
		limit = time.Until(d)
	}

	p := &probe{stderr: &tailBuffer{max: 16 << 10}}
	c, err := newProbeClient(cfg, p)
	if err != nil {
		return nil, p.describe(cfg, err, limit, false)
	}
	tools, err := listTools(ctx, c)
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
	// Closing waits for a stdio process to end, so its exit status and
	// stderr are complete when a failure is described.
	_ = c.Close()
	if p.http != nil {
		p.http.CloseIdleConnections()
	}
	if err != nil {
		return nil, p.describe(cfg, err, limit, timedOut)
	}
	out := make([]ToolStatus, 0, len(tools))
	for _, t := range tools {
		full := cfg.Name + Separator + t.Name
		h, err := toolHash(t)
		if err != nil {
			return nil, engine.WrapError(engine.EUNAVAILABLE, err, "The server's tool %q has an input schema that cannot be read: %s", t.Name, scrub(err.Error(), cfg))
		}
		out = append(out, ToolStatus{Name: full, Description: t.Description, State: state(pins, full, h), Hash: h})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// listTools initializes a client and lists its tools.
func listTools(ctx context.Context, c *client.Client) ([]mcp.Tool, error) {
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "convosphere", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		return nil, err
	}
	// One page, as the registry reads it.
	list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		return nil, err
	}
	return list.Tools, nil
}

// probe is what a test connection saw besides the client's error: the
// stdio process and its stderr, the HTTP responses that failed.
type probe struct {
	stderr *tailBuffer

	http *http.Transport // closed with the client: a probe keeps no connection

	mu     sync.Mutex
	cmd    *exec.Cmd
	status string // the last HTTP error response: "401 Unauthorized to POST /mcp"
	code   int
}

// newProbeClient is newClient with the process and HTTP responses watched.
func newProbeClient(cfg ServerConfig, p *probe) (*client.Client, error) {
	switch cfg.Transport {
	case TransportStdio:
		env := stdioEnv(cfg)
		cmdFunc := func(ctx context.Context, command string, _ []string, args []string) (*exec.Cmd, error) {
			cmd := exec.CommandContext(ctx, command, args...)
			cmd.Env = env
			cmd.Stderr = p.stderr
			// Wait stops reading stderr this long after the process ended,
			// should a child of it (npx runs node) keep the pipe open.
			cmd.WaitDelay = 2 * time.Second
			p.mu.Lock()
			p.cmd = cmd
			p.mu.Unlock()
			return cmd, nil
		}
		return client.NewStdioMCPClientWithOptions(cfg.Command, nil, cfg.Args, transport.WithCommandFunc(cmdFunc))
	case TransportHTTP, TransportSSE:
		base := http.DefaultTransport.(*http.Transport).Clone()
		p.http = base
		hc := &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
			res, err := base.RoundTrip(req)
			if err == nil && res.StatusCode >= 400 {
				p.mu.Lock()
				p.code = res.StatusCode
				p.status = fmt.Sprintf("%s to %s %s", res.Status, req.Method, req.URL.Path)
				p.mu.Unlock()
			}
			return res, err
		})}
		if cfg.Transport == TransportHTTP {
			return client.NewStreamableHttpClient(cfg.URL, transport.WithHTTPHeaders(cfg.Headers), transport.WithHTTPBasicClient(hc))
		}
		return client.NewSSEMCPClient(cfg.URL, transport.WithHeaders(cfg.Headers), transport.WithHTTPClient(hc))
	}
	return nil, engine.Errorf(engine.EINVALID, "transport %q is unknown: use stdio, http or sse", cfg.Transport)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// describe turns a failed test connection into an *engine.Error in words.
func (p *probe) describe(cfg ServerConfig, err error, limit time.Duration, timedOut bool) error {
	if engine.ErrorCode(err) == engine.EINVALID {
		return err
	}
	var code, msg string
	if cfg.Transport == TransportStdio {
		code, msg = p.describeProcess(cfg, err, limit, timedOut)
	} else {
		code, msg = p.describeHTTP(cfg, err, limit, timedOut)
	}
	// The cause is scrubbed too: it is logged, and url.Error repeats the URL.
	return engine.WrapError(code, errors.New(scrub(err.Error(), cfg)), "%s", scrub(msg, cfg))
}

func (p *probe) describeProcess(cfg ServerConfig, err error, limit time.Duration, timedOut bool) (string, string) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	tail := p.stderr.lastLines(10, 300)
	withTail := func(s string) string {
		if tail == "" {
			return s + " It wrote nothing to stderr."
		}
		return s + " The last lines it wrote to stderr:\n" + tail
	}
	switch {
	case errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist):
		return engine.EUNAVAILABLE, fmt.Sprintf("The command %q was not found: install it on the machines that run the console and the bot, or give its full path (it is looked up in their PATH).", cfg.Command)
	case errors.Is(err, fs.ErrPermission):
		return engine.EUNAVAILABLE, fmt.Sprintf("The command %q could not be run: permission denied (is it an executable file?).", cfg.Command)
	case cmd == nil || cmd.Process == nil:
		return engine.EUNAVAILABLE, fmt.Sprintf("The command %q could not be started: %v.", cfg.Command, rootCause(err))
	}
	if st := cmd.ProcessState; st != nil && !timedOut && processEnded(err) {
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return engine.EUNAVAILABLE, withTail(fmt.Sprintf("The command %q was killed by signal %s before it answered.", cfg.Command, ws.Signal()))
		}
		return engine.EUNAVAILABLE, withTail(fmt.Sprintf("The command %q exited with status %d before it answered as an MCP server.", cfg.Command, st.ExitCode()))
	}
	if timedOut {
		hint := ""
		if base := strings.TrimSuffix(filepath.Base(cfg.Command), ".exe"); base == "npx" || base == "uvx" {
			hint = " (a first run of " + base + " downloads the package first: try again once it is done)"
		}
		msg := fmt.Sprintf("The command %q did not answer within %s%s: is it an MCP server that speaks JSON-RPC on its standard input and output?", cfg.Command, roundDuration(limit), hint)
		if tail != "" {
			msg += " The last lines it wrote to stderr:\n" + tail
		}
		return engine.ETIMEOUT, msg
	}
	return engine.EUNAVAILABLE, withTail(fmt.Sprintf("The command %q did not answer as an MCP server: %v.", cfg.Command, rootCause(err)))
}

// processEnded reports whether a stdio client failed because its process
// went away (its output closed, or its input refused writes).
func processEnded(err error) bool {
	return errors.Is(err, transport.ErrTransportClosed) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, os.ErrClosed) || strings.Contains(err.Error(), "broken pipe") || strings.Contains(err.Error(), "file already closed")
}

func (p *probe) describeHTTP(cfg ServerConfig, err error, limit time.Duration, timedOut bool) (string, string) {
	p.mu.Lock()
	status, code := p.status, p.code
	p.mu.Unlock()
	host := cfg.URL
	if u, perr := url.Parse(cfg.URL); perr == nil {
		host = u.Host
	}
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		dns      *net.DNSError
	)
	switch {
	case status != "":
		msg := "The server answered " + status + "."
		switch {
		case code == http.StatusUnauthorized || code == http.StatusForbidden:
			msg += " Check the headers (such as Authorization: Bearer …): the server refused the credentials, or none were sent."
		case code == http.StatusNotFound || code == http.StatusMethodNotAllowed:
			if cfg.Transport == TransportHTTP {
				msg += " Check the URL's path; if the server speaks the older HTTP+SSE transport, choose sse."
			} else {
				msg += " Check the URL's path (SSE servers usually serve /sse); if the server speaks streamable HTTP, choose http."
			}
		case code >= 500:
			msg += " The server itself failed: its logs say why."
		}
		return engine.EUNAVAILABLE, msg
	case timedOut:
		return engine.ETIMEOUT, fmt.Sprintf("The server at %s did not answer within %s.", host, roundDuration(limit))
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid):
		return engine.EUNAVAILABLE, fmt.Sprintf("TLS: the certificate of %s could not be verified (%v). Use a certificate that the console's machine trusts.", host, rootCause(err))
	case errors.As(err, &record) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return engine.EUNAVAILABLE, fmt.Sprintf("TLS: %s does not speak TLS; use an http:// URL, or the server's HTTPS port.", host)
	case strings.Contains(err.Error(), "tls: "):
		return engine.EUNAVAILABLE, fmt.Sprintf("TLS: the secure connection to %s failed (%v).", host, rootCause(err))
	case errors.As(err, &dns):
		return engine.EUNAVAILABLE, fmt.Sprintf("The host %q could not be found (DNS): check the URL.", dns.Name)
	case errors.Is(err, syscall.ECONNREFUSED):
		return engine.EUNAVAILABLE, fmt.Sprintf("Nothing accepts connections at %s (connection refused): is the server running, and is the port right?", host)
	case errors.Is(err, context.DeadlineExceeded) || isNetTimeout(err):
		return engine.ETIMEOUT, fmt.Sprintf("The server at %s did not answer within %s.", host, roundDuration(limit))
	}
	return engine.EUNAVAILABLE, fmt.Sprintf("The server at %s did not answer as an MCP server: %v.", host, rootCause(err))
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// rootCause drops the url.Error wrapper (it repeats the URL, query and
// all) and mcp-go's "transport error:" prefix.
func rootCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	var te *transport.Error
	if errors.As(err, &te) && te.Err != nil {
		return te.Err
	}
	return err
}

func roundDuration(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// scrub removes secret values from a message: env and header values, and
// the URL's password and query.
func scrub(msg string, cfg ServerConfig) string {
	var secrets []string
	for _, v := range cfg.Env {
		secrets = append(secrets, v)
	}
	for _, v := range cfg.Headers {
		secrets = append(secrets, v)
		if _, token, ok := strings.Cut(v, " "); ok {
			secrets = append(secrets, token) // "Bearer <token>"
		}
	}
	if u, err := url.Parse(cfg.URL); err == nil {
		if pw, ok := u.User.Password(); ok {
			secrets = append(secrets, pw)
		}
		if u.RawQuery != "" {
			secrets = append(secrets, u.RawQuery)
		}
		for _, vs := range u.Query() {
			secrets = append(secrets, vs...)
		}
	}
	// Longest first, so that a value containing another goes whole.
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, s := range secrets {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}

// stdioEnv is a stdio server's whole environment: PATH and HOME, and what
// is configured for it — never ConvoSphere's own settings or secrets.
func stdioEnv(cfg ServerConfig) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range cfg.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// lastLines returns the last n non-empty lines, each cut at width bytes.
func (b *tailBuffer) lastLines(n, width int) string {
	b.mu.Lock()
	text := string(bytes.ToValidUTF8(b.buf, []byte("?")))
	b.mu.Unlock()
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if l = strings.TrimRight(l, " \t\r"); strings.TrimSpace(l) != "" {
			if len(l) > width {
				cut := width
				for cut > 0 && (l[cut]&0xC0) == 0x80 {
					cut--
				}
				l = l[:cut] + "…"
			}
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
