package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
)

const readyTimeout = 2 * time.Minute

// consoleBin runs the console binary against one database and data
// directory.
type consoleBin struct {
	path  string
	dbURL string
	data  string
}

// buildConsole builds ./cmd/console into dir.
func buildConsole(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "console")
	if err := benchkit.Build(ctx, "./cmd/console", bin); err != nil {
		return "", err
	}
	return bin, nil
}

func (c consoleBin) env(extra ...string) []string {
	return append(benchkit.WithoutPrefix(os.Environ(), "CONVOSPHERE_"), append([]string{
		"CONVOSPHERE_DATABASE_URL=" + c.dbURL,
		"CONVOSPHERE_DATA_DIR=" + c.data,
		"CONVOSPHERE_LOG_LEVEL=warn",
	}, extra...)...)
}

// run runs a console subcommand and returns its standard output.
func (c consoleBin) run(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.path, args...)
	cmd.Env = c.env()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("console %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// signInUser creates an admin user for the bench and an API token for it
// with the console's own commands. A user left by an earlier run on a
// reused database keeps its name; the bench makes another.
func (c consoleBin) signInUser(ctx context.Context) (name, password, token string, err error) {
	password = randomHex(16)
	name = "bench"
	if _, err = c.run(ctx, password+"\n", "user", "create", "--name", name, "--role", "admin", "--password-stdin"); err != nil {
		name = fmt.Sprintf("bench-%d", time.Now().Unix())
		if _, err2 := c.run(ctx, password+"\n", "user", "create", "--name", name, "--role", "admin", "--password-stdin"); err2 != nil {
			return "", "", "", fmt.Errorf("%w; then %w", err, err2)
		}
	}
	out, err := c.run(ctx, "", "token", "create", "--user", name, "--name", "bench-console")
	if err != nil {
		return "", "", "", err
	}
	if token = lastLine(out); token == "" || strings.Contains(token, " ") {
		return "", "", "", fmt.Errorf("console token create printed no token on its last line: %q", out)
	}
	return name, password, token, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.TrimSpace(s[strings.LastIndexByte(s, '\n')+1:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// serve starts `console serve` on a free loopback port and waits until it
// is ready.
func (c consoleBin) serve(ctx context.Context, logFile string) (*benchkit.Server, error) {
	port, err := benchkit.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(c.path, "serve")
	cmd.Env = c.env("CONVOSPHERE_CONSOLE_ADDR=" + addr)
	srv, err := benchkit.StartServer("console", cmd, logFile)
	if err != nil {
		return nil, err
	}
	srv.URL = "http://" + addr
	if err := srv.WaitReady(ctx, readyTimeout, benchkit.HTTPReady(srv.URL+"/readyz")); err != nil {
		srv.Stop()
		return nil, err
	}
	return srv, nil
}

var (
	inputTag  = regexp.MustCompile(`(?is)<input\b[^>]*>`)
	attribute = regexp.MustCompile(`(?is)([a-z_:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))`)
	formTag   = regexp.MustCompile(`(?is)<form\b[^>]*>.*?</form>`)
)

// loginForm fills the sign-in form of the page: its hidden fields (the
// CSRF token) as they are, the user name into the text field marked
// autocomplete=username (or named name or username) and the password into
// the password field.
func loginForm(page, user, password string) (url.Values, error) {
	form := ""
	for _, f := range formTag.FindAllString(page, -1) {
		if strings.Contains(strings.ToLower(f), `type="password"`) {
			form = f
			break
		}
	}
	if form == "" {
		return nil, errors.New("the sign-in page has no form with a password field")
	}
	v := url.Values{}
	userField, passwordField := "", ""
	for _, tag := range inputTag.FindAllString(form, -1) {
		attrs := map[string]string{}
		for _, m := range attribute.FindAllStringSubmatch(tag, -1) {
			attrs[strings.ToLower(m[1])] = html.UnescapeString(m[2] + m[3] + m[4])
		}
		name := attrs["name"]
		switch typ := strings.ToLower(attrs["type"]); {
		case name == "":
		case typ == "hidden":
			v.Set(name, attrs["value"])
		case typ == "password":
			passwordField = name
		case attrs["autocomplete"] == "username" || (userField == "" && (name == "name" || name == "username")):
			userField = name
		}
	}
	if userField == "" || passwordField == "" {
		return nil, fmt.Errorf("the sign-in form has no user name or password field (found %q, %q)", userField, passwordField)
	}
	v.Set(userField, user)
	v.Set(passwordField, password)
	return v, nil
}

// signIn signs in through the sign-in page, as a browser does, and
// returns a client whose cookie jar holds the session.
func signIn(ctx context.Context, base, user, password string, transport http.RoundTripper, timeout time.Duration) (*http.Client, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	c := &http.Client{Jar: jar, Transport: transport, Timeout: timeout}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/login", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /login: %w", err)
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /login: %s %v", resp.Status, err)
	}
	form, err := loginForm(string(page), user, password)
	if err != nil {
		return nil, err
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, base+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	noRedirect := *c
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err = noRedirect.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST /login: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 3 || strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		return nil, fmt.Errorf("POST /login: %s (%s)", resp.Status, pageMessage(body))
	}
	return c, nil
}

var (
	titleTag  = regexp.MustCompile(`(?is)<title>(.*?)</title>`)
	alertText = regexp.MustCompile(`(?is)role="alert"[^>]*>(.*?)</(?:p|div|section)>`)
	tags      = regexp.MustCompile(`(?s)<[^>]*>`)
	// jsonMessage is the message of the API's JSON errors.
	jsonMessage = regexp.MustCompile(`"message"\s*:\s*"((?:[^"\\]|\\.)*)"`)
)

// pageMessage is a short description of an answer: a JSON error's
// message, or a page's alert or title.
func pageMessage(body []byte) string {
	s := strings.TrimSpace(string(body))
	if strings.HasPrefix(s, "{") {
		if m := jsonMessage.FindStringSubmatch(s); m != nil {
			if u, err := strconv.Unquote(`"` + m[1] + `"`); err == nil {
				return u
			}
			return m[1]
		}
	}
	for _, re := range []*regexp.Regexp{alertText, titleTag} {
		if m := re.FindStringSubmatch(s); m != nil {
			if t := strings.Join(strings.Fields(html.UnescapeString(tags.ReplaceAllString(m[1], " "))), " "); t != "" {
				return t
			}
		}
	}
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
