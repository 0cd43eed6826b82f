package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/convosphere/convosphere/console/web/password"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
	"github.com/convosphere/convosphere/store/sqlite"
)

// testPassword is the password of every test user who signs in.
const testPassword = "correct horse battery staple"

var (
	passwordHashOnce sync.Once
	passwordHash     string
)

// mustPasswordHash hashes testPassword once per test binary (PBKDF2 is slow on purpose).
func mustPasswordHash(tb testing.TB) string {
	tb.Helper()
	passwordHashOnce.Do(func() {
		h, err := password.Hash(testPassword)
		if err != nil {
			tb.Fatalf("hash password: %v", err)
		}
		passwordHash = h
	})
	return passwordHash
}

// MustOpenStore opens a real SQLite store in a temporary directory.
func MustOpenStore(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(tb.TempDir(), "console.db")})
	if err != nil {
		tb.Fatalf("open sqlite store: %v", err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// countingChat counts the calls that reach the engine.
type countingChat struct {
	inner Chat
	calls atomic.Int32
}

func (c *countingChat) Handle(ctx context.Context, msg engine.Message, r engine.Replier) (*engine.Answer, error) {
	c.calls.Add(1)
	return c.inner.Handle(ctx, msg, r)
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// envOptions change how mustEnv builds the console.
type envOptions struct {
	Config Config
	Ready  func(context.Context) error
	Model  engine.LanguageModel // default: env.model, a scripted model
	// NoKnowledge runs the console without a knowledge service.
	NoKnowledge bool
	// Tools are the engine's tools (nil: none).
	Tools engine.ToolSet
	// Inventory is the console's tool inventory (nil: not configured).
	Inventory ToolInventory
}

// testEnv is a console wired to a real SQLite store and a real engine
// answering from a scripted model and a fixed retriever.
type testEnv struct {
	tb        testing.TB
	srv       *Server
	store     *sqlite.DB
	model     *enginetest.Model
	retriever *enginetest.Retriever
	knowledge *fakeKnowledge
	chat      *countingChat
	logs      *syncBuffer
}

// testPassages are what the retriever finds in the "handbook" knowledge base.
var testPassages = []engine.Passage{
	{ID: "p1", KnowledgeBase: "handbook", DocumentID: "d1", Document: "handbook/leave.md", Title: "Leave policy",
		HeadingPath: []string{"Leave", "Holidays"}, Text: "Everyone gets 25 days of paid leave per year.", Score: 0.9},
	{ID: "p2", KnowledgeBase: "handbook", DocumentID: "d2", Document: "handbook/expenses.md", Title: "Expenses",
		Text: "Submit receipts within 30 days.", Score: 0.5},
}

func mustEnv(tb testing.TB, opts envOptions) *testEnv {
	tb.Helper()
	e := &testEnv{
		tb:        tb,
		store:     MustOpenStore(tb),
		model:     enginetest.NewModel(),
		retriever: &enginetest.Retriever{Passages: testPassages},
		logs:      &syncBuffer{},
	}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var model engine.LanguageModel = e.model
	if opts.Model != nil {
		model = opts.Model
	}
	eng, err := engine.New(engine.Config{MaxMessageBytes: opts.Config.MaxMessageBytes}, engine.Deps{
		Assistants: e.store, Conversations: e.store, Traces: e.store,
		Model: model, Retriever: e.retriever, Logger: log,
		Tools: opts.Tools, ToolAudit: e.store, Approvals: e.store,
	})
	if err != nil {
		tb.Fatalf("engine.New: %v", err)
	}
	e.chat = &countingChat{inner: eng}
	e.knowledge = &fakeKnowledge{store: e.store, Retriever: e.retriever}
	deps := Deps{Store: e.store, Chat: e.chat, Knowledge: e.knowledge, Ready: opts.Ready, Logger: log, Tools: opts.Inventory}
	if opts.NoKnowledge {
		deps.Knowledge = nil
	}
	e.srv, err = New(opts.Config, deps)
	if err != nil {
		tb.Fatalf("web.New: %v", err)
	}
	return e
}

// MustUser creates a user who can sign in with testPassword.
func (e *testEnv) MustUser(name string, role engine.Role) *engine.User {
	e.tb.Helper()
	u := &engine.User{Name: name, Role: role, PasswordHash: mustPasswordHash(e.tb)}
	if err := e.store.CreateUser(context.Background(), u); err != nil {
		e.tb.Fatalf("create user %s: %v", name, err)
	}
	return u
}

// MustAssistant creates an assistant searching the "handbook" knowledge base.
func (e *testEnv) MustAssistant(name string, isDefault bool) *engine.Assistant {
	e.tb.Helper()
	a := &engine.Assistant{Name: name, Description: "Answers about " + name, SystemPrompt: "Be brief.",
		KnowledgeBases: []string{"handbook"}, IsDefault: isDefault}
	if err := e.store.CreateAssistant(context.Background(), a); err != nil {
		e.tb.Fatalf("create assistant %s: %v", name, err)
	}
	return a
}

// client is how a test authenticates: a session (cookie and CSRF token) or an API token.
type client struct {
	user    *engine.User
	session *http.Cookie
	csrf    string
	token   string
}

// MustSession signs u in directly through the store, as the login handler does.
func (e *testEnv) MustSession(u *engine.User) *client {
	e.tb.Helper()
	secret, hash := engine.NewSecret("sess_")
	s := &engine.Session{UserID: u.ID, TokenHash: hash, ExpiresAt: time.Now().Add(time.Hour)}
	if err := e.store.CreateSession(context.Background(), s); err != nil {
		e.tb.Fatalf("create session: %v", err)
	}
	return &client{user: u, session: &http.Cookie{Name: e.srv.cookies.session, Value: secret}, csrf: csrfToken(secret)}
}

// MustToken creates an API token for u.
func (e *testEnv) MustToken(u *engine.User) *client {
	e.tb.Helper()
	token, hash := engine.NewSecret("cs_")
	if err := e.store.CreateAPIToken(context.Background(), &engine.APIToken{UserID: u.ID, Name: "test", TokenHash: hash}); err != nil {
		e.tb.Fatalf("create api token: %v", err)
	}
	return &client{user: u, token: token}
}

// apply authenticates r as c: bearer token, or session cookie and X-CSRF-Token.
func (c *client) apply(r *http.Request) {
	if c == nil {
		return
	}
	if c.token != "" {
		r.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.session != nil {
		r.AddCookie(c.session)
		if c.csrf != "" {
			r.Header.Set("X-CSRF-Token", c.csrf)
		}
	}
}

// serve runs one request through the console.
func (e *testEnv) serve(r *http.Request) *httptest.ResponseRecorder {
	e.tb.Helper()
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	return w
}

// get requests path, as c when c is not nil.
func (e *testEnv) get(path string, c *client, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	c.apply(r)
	for _, ck := range cookies {
		r.AddCookie(ck)
	}
	return e.serve(r)
}

// postChat posts body to the chat API as JSON.
func (e *testEnv) postChat(c *client, body string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/chat", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	c.apply(r)
	return e.serve(r)
}

// postForm posts a form with cookies.
func (e *testEnv) postForm(path string, form url.Values, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range cookies {
		r.AddCookie(ck)
	}
	return e.serve(r)
}

// conversations returns every stored conversation.
func (e *testEnv) conversations() []*engine.Conversation {
	e.tb.Helper()
	convs, err := e.store.ListConversations(context.Background(), engine.ConversationFilter{Limit: 1000})
	if err != nil {
		e.tb.Fatalf("list conversations: %v", err)
	}
	return convs
}

// turns returns the turns of a conversation.
func (e *testEnv) turns(convID string) []*engine.Turn {
	e.tb.Helper()
	turns, err := e.store.Turns(context.Background(), convID, 0)
	if err != nil {
		e.tb.Fatalf("turns of %s: %v", convID, err)
	}
	return turns
}

// decodeJSON decodes a response body into a generic map.
func decodeJSON(tb testing.TB, body []byte) map[string]any {
	tb.Helper()
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		tb.Fatalf("response is not a JSON object: %v\n%s", err, body)
	}
	return v
}

// errorOf returns the code and message of a JSON error body.
func errorOf(tb testing.TB, body []byte) (code, message string) {
	tb.Helper()
	var v struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Error.Code == "" || v.Error.Message == "" {
		tb.Fatalf("not a JSON error body (%v): %s", err, body)
	}
	return v.Error.Code, v.Error.Message
}

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	Name string
	Data string
}

// parseSSE parses a text/event-stream body strictly enough for the tests:
// every event has one event line and one data line.
func parseSSE(tb testing.TB, body io.Reader) []sseEvent {
	tb.Helper()
	var (
		events []sseEvent
		cur    sseEvent
	)
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Name != "" || cur.Data != "" {
				events = append(events, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			cur.Name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if cur.Data != "" {
				tb.Fatalf("event %q has several data lines", cur.Name)
			}
			cur.Data = strings.TrimPrefix(line, "data: ")
		default:
			tb.Fatalf("unexpected line in event stream: %q", line)
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("read event stream: %v", err)
	}
	if cur.Name != "" || cur.Data != "" {
		tb.Fatalf("event stream ends inside an event: %+v", cur)
	}
	return events
}

// MustParseHTML parses a page.
func MustParseHTML(tb testing.TB, body []byte) *html.Node {
	tb.Helper()
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("parse html: %v", err)
	}
	return doc
}

// findAll returns the elements under n with the tag (any tag when "") for
// which match (when not nil) is true, in document order.
func findAll(n *html.Node, tag string, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (tag == "" || n.Data == tag) && (match == nil || match(n)) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

// findOne returns the single element matching, failing the test otherwise.
func findOne(tb testing.TB, n *html.Node, tag string, match func(*html.Node) bool) *html.Node {
	tb.Helper()
	all := findAll(n, tag, match)
	if len(all) != 1 {
		tb.Fatalf("found %d <%s> elements, want 1", len(all), tag)
	}
	return all[0]
}

// attr returns an attribute's value and whether it is present.
func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// hasAttr matches elements whose attribute has the value.
func hasAttr(key, val string) func(*html.Node) bool {
	return func(n *html.Node) bool {
		v, ok := attr(n, key)
		return ok && v == val
	}
}

// textOf returns the text content of n.
func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// cookieFrom returns the cookie a response sets, or nil.
func cookieFrom(w *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, ck := range w.Result().Cookies() {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}
