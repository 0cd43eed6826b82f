package web

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/console/web/password"
	"github.com/convosphere/convosphere/engine"
)

// loginForm fetches the sign-in page and returns its CSRF cookie and the
// hidden field's value.
func (e *testEnv) loginForm(next string) (*http.Cookie, string) {
	e.tb.Helper()
	path := "/login"
	if next != "" {
		path += "?next=" + url.QueryEscape(next)
	}
	w := e.get(path, nil)
	if w.Code != http.StatusOK {
		e.tb.Fatalf("GET %s = %d", path, w.Code)
	}
	ck := cookieFrom(w, e.srv.cookies.loginCSRF)
	if ck == nil {
		e.tb.Fatal("the sign-in page set no CSRF cookie")
	}
	doc := MustParseHTML(e.tb, w.Body.Bytes())
	form := findOne(e.tb, doc, "form", hasAttr("action", "/login"))
	field := findOne(e.tb, form, "input", hasAttr("name", "csrf"))
	val, _ := attr(field, "value")
	return ck, val
}

// login posts the sign-in form from a fresh page, like a browser.
func (e *testEnv) login(name, password, next string) *httptest.ResponseRecorder {
	e.tb.Helper()
	ck, csrf := e.loginForm(next)
	form := url.Values{"username": {name}, "password": {password}, "csrf": {csrf}}
	if next != "" {
		form.Set("next", next)
	}
	return e.postForm("/login", form, ck)
}

func TestLoginPage(t *testing.T) {
	env := mustEnv(t, envOptions{})
	w := env.get("/login?next=%2Fplayground", nil)
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d", w.Code)
	}
	ck := cookieFrom(w, "cs_login")
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
		t.Fatalf("login CSRF cookie = %+v, want HttpOnly SameSite=Lax", ck)
	}
	doc := MustParseHTML(t, w.Body.Bytes())
	form := findOne(t, doc, "form", hasAttr("action", "/login"))
	if m, _ := attr(form, "method"); m != "post" {
		t.Fatalf("form method = %q", m)
	}
	for _, id := range []string{"login-name", "login-password"} {
		findOne(t, form, "input", hasAttr("id", id))
		findOne(t, form, "label", hasAttr("for", id))
	}
	csrf, _ := attr(findOne(t, form, "input", hasAttr("name", "csrf")), "value")
	if csrf != ck.Value {
		t.Fatal("the hidden CSRF field differs from the cookie")
	}
	next, _ := attr(findOne(t, form, "input", hasAttr("name", "next")), "value")
	if next != "/playground" {
		t.Fatalf("next = %q", next)
	}
	// Only local paths are kept as next.
	w = env.get("/login?next="+url.QueryEscape("https://evil.example/"), nil)
	if n := findAll(MustParseHTML(t, w.Body.Bytes()), "input", hasAttr("name", "next")); len(n) != 0 {
		t.Fatal("a foreign next URL was kept in the form")
	}
}

func TestLogin(t *testing.T) {
	tests := []struct {
		name       string
		user       string
		password   string
		next       string
		tamper     func(form url.Values, ck *http.Cookie) *http.Cookie
		wantStatus int
		wantTo     string // redirect target on success
		wantError  string // message on the page otherwise
	}{
		{name: "success", user: "alice", password: testPassword, wantStatus: http.StatusSeeOther, wantTo: "/"},
		{name: "name ignores case", user: "ALICE", password: testPassword, wantStatus: http.StatusSeeOther, wantTo: "/"},
		{name: "back to next", user: "alice", password: testPassword, next: "/playground?x=1",
			wantStatus: http.StatusSeeOther, wantTo: "/playground?x=1"},
		{name: "foreign next ignored", user: "alice", password: testPassword, next: "//evil.example/x",
			wantStatus: http.StatusSeeOther, wantTo: "/"},
		{name: "wrong password", user: "alice", password: "wrong password!", wantStatus: http.StatusUnauthorized,
			wantError: "Invalid name or password."},
		{name: "unknown user", user: "mallory", password: testPassword, wantStatus: http.StatusUnauthorized,
			wantError: "Invalid name or password."},
		{name: "disabled user", user: "dora", password: testPassword, wantStatus: http.StatusUnauthorized,
			wantError: "Invalid name or password."},
		{name: "empty password", user: "alice", password: "", wantStatus: http.StatusBadRequest,
			wantError: "Enter your name and your password."},
		{name: "missing csrf cookie", user: "alice", password: testPassword, wantStatus: http.StatusForbidden,
			tamper:    func(url.Values, *http.Cookie) *http.Cookie { return nil },
			wantError: "The sign-in form has expired"},
		{name: "csrf field mismatch", user: "alice", password: testPassword, wantStatus: http.StatusForbidden,
			tamper: func(f url.Values, ck *http.Cookie) *http.Cookie {
				f.Set("csrf", "login_forged")
				return ck
			},
			wantError: "The sign-in form has expired"},
		{name: "csrf field missing", user: "alice", password: testPassword, wantStatus: http.StatusForbidden,
			tamper: func(f url.Values, ck *http.Cookie) *http.Cookie {
				f.Del("csrf")
				return ck
			},
			wantError: "The sign-in form has expired"},
	}
	env := mustEnv(t, envOptions{})
	alice := env.MustUser("alice", engine.RoleViewer)
	dora := env.MustUser("dora", engine.RoleViewer)
	dora.Disabled = true
	if err := env.store.UpdateUser(context.Background(), dora); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ck, csrf := env.loginForm(tt.next)
			form := url.Values{"name": {tt.user}, "password": {tt.password}, "csrf": {csrf}}
			if tt.next != "" {
				form.Set("next", tt.next)
			}
			if tt.tamper != nil {
				ck = tt.tamper(form, ck)
			}
			var cookies []*http.Cookie
			if ck != nil {
				cookies = append(cookies, ck)
			}
			w := env.postForm("/login", form, cookies...)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", w.Code, tt.wantStatus, w.Body)
			}
			sess := cookieFrom(w, "cs_session")
			if tt.wantTo != "" {
				if loc := w.Header().Get("Location"); loc != tt.wantTo {
					t.Fatalf("Location = %q, want %q", loc, tt.wantTo)
				}
				if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Secure {
					t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Lax, not Secure", sess)
				}
				if !strings.HasPrefix(sess.Value, "sess_") || sess.MaxAge != int((12*time.Hour)/time.Second) {
					t.Fatalf("session cookie value/max-age = %q/%d", sess.Value, sess.MaxAge)
				}
				// Only the hash is stored: the raw secret finds nothing.
				if _, err := env.store.SessionByTokenHash(context.Background(), sess.Value); !engine.IsNotFound(err) {
					t.Fatalf("the raw session secret was stored (err = %v)", err)
				}
				s, err := env.store.SessionByTokenHash(context.Background(), engine.HashSecret(sess.Value))
				if err != nil || s.UserID != alice.ID {
					t.Fatalf("stored session = %+v, %v", s, err)
				}
				// The session opens the playground.
				if w := env.get("/playground", nil, sess); w.Code != http.StatusOK {
					t.Fatalf("playground with the new session = %d", w.Code)
				}
				return
			}
			if sess != nil {
				t.Fatal("a failed sign-in set a session cookie")
			}
			doc := MustParseHTML(t, w.Body.Bytes())
			alert := findOne(t, doc, "", hasAttr("role", "alert"))
			if got := textOf(alert); !strings.Contains(got, tt.wantError) {
				t.Fatalf("error = %q, want %q", got, tt.wantError)
			}
			// The form is shown again with a working CSRF token.
			findOne(t, doc, "form", hasAttr("action", "/login"))
		})
	}
	if strings.Contains(env.logs.String(), testPassword) {
		t.Fatal("a password reached the log")
	}
}

func TestLoginSecureCookies(t *testing.T) {
	env := mustEnv(t, envOptions{Config: Config{SecureCookies: true, SessionTTL: time.Hour}})
	env.MustUser("alice", engine.RoleViewer)
	w := env.login("alice", testPassword, "")
	if w.Code != http.StatusSeeOther {
		t.Fatalf("status = %d: %s", w.Code, w.Body)
	}
	ck := cookieFrom(w, "__Host-cs_session")
	if ck == nil || !ck.Secure || !ck.HttpOnly || ck.Path != "/" || ck.MaxAge != 3600 {
		t.Fatalf("secure session cookie = %+v", ck)
	}
}

func TestLoginThrottle(t *testing.T) {
	env := mustEnv(t, envOptions{Config: Config{LoginMaxFailures: 3, LoginWindow: time.Minute}})
	env.MustUser("alice", engine.RoleViewer)
	now := time.Now()
	env.srv.now = func() time.Time { return now }

	for i := range 3 {
		if w := env.login("alice", "wrong password!", ""); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: status = %d", i+1, w.Code)
		}
	}
	// Paused now, even with the right password, and in words.
	w := env.login("alice", testPassword, "")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("after 3 failures: status = %d, want 429", w.Code)
	}
	if w.Header().Get("Retry-After") != "60" {
		t.Fatalf("Retry-After = %q", w.Header().Get("Retry-After"))
	}
	if !strings.Contains(w.Body.String(), "Too many failed sign-in attempts. Try again in 1 minute.") {
		t.Fatalf("no throttle message: %s", w.Body)
	}
	if cookieFrom(w, "cs_session") != nil {
		t.Fatal("a throttled sign-in started a session")
	}
	// The name is counted with the client IP: "ALICE" is the same name.
	if w := env.login("ALICE", testPassword, ""); w.Code != http.StatusTooManyRequests {
		t.Fatalf("same name in capitals: status = %d", w.Code)
	}
	// Another client IP is not paused for the name.
	ck, csrf := env.loginForm("")
	r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{
		"name": {"alice"}, "password": {testPassword}, "csrf": {csrf}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = "192.0.2.99:4321"
	r.AddCookie(ck)
	if w := env.serve(r); w.Code != http.StatusSeeOther {
		t.Fatalf("another IP: status = %d", w.Code)
	}
	// After the window, the first IP may try again.
	now = now.Add(61 * time.Second)
	if w := env.login("alice", testPassword, ""); w.Code != http.StatusSeeOther {
		t.Fatalf("after the window: status = %d", w.Code)
	}
}

func TestThrottlePerIP(t *testing.T) {
	now := time.Now()
	th := newThrottle(2, time.Minute, func() time.Time { return now })
	// An IP spraying many names is paused after 4×max failures in all.
	for i := range 8 {
		name := string(rune('a' + i))
		if th.wait("198.51.100.1", name) != 0 {
			t.Fatalf("paused after %d failures", i)
		}
		th.fail("198.51.100.1", name)
	}
	if th.wait("198.51.100.1", "zed") == 0 {
		t.Fatal("an IP with 8 failures across names is not paused")
	}
	if th.wait("198.51.100.2", "a") != 0 {
		t.Fatal("another IP is paused")
	}
	th.succeed("198.51.100.1", "a")
	now = now.Add(time.Minute)
	if th.wait("198.51.100.1", "zed") != 0 {
		t.Fatal("still paused after the window")
	}
}

func TestRedirects(t *testing.T) {
	env := mustEnv(t, envOptions{})
	alice := env.MustSession(env.MustUser("alice", engine.RoleViewer))
	tests := []struct {
		name   string
		path   string
		as     *client
		status int
		to     string
	}{
		{"home signed out", "/", nil, http.StatusFound, "/login"},
		{"home signed in: the dashboard", "/", alice, http.StatusOK, ""},
		{"playground signed out", "/playground", nil, http.StatusFound, "/login?next=%2Fplayground"},
		{"playground query kept", "/playground?a=b", nil, http.StatusFound, "/login?next=%2Fplayground%3Fa%3Db"},
		{"login when signed in", "/login", alice, http.StatusFound, "/"},
		{"login when signed in with next", "/login?next=%2Fplayground%3Fq%3D1", alice, http.StatusFound, "/playground?q=1"},
		{"login when signed in, foreign next", "/login?next=https%3A%2F%2Fevil.example", alice, http.StatusFound, "/"},
		{"bad session cookie", "/playground", &client{session: &http.Cookie{Name: "cs_session", Value: "sess_forged"}},
			http.StatusFound, "/login?next=%2Fplayground"},
	}
	// An expired session is as good as none.
	secret, hash := engine.NewSecret("sess_")
	expired := &engine.Session{UserID: alice.user.ID, TokenHash: hash, ExpiresAt: time.Now().Add(-time.Minute)}
	if err := env.store.CreateSession(context.Background(), expired); err != nil {
		t.Fatal(err)
	}
	tests = append(tests, struct {
		name   string
		path   string
		as     *client
		status int
		to     string
	}{"expired session", "/playground", &client{session: &http.Cookie{Name: "cs_session", Value: secret}}, http.StatusFound, "/login?next=%2Fplayground"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := env.get(tt.path, tt.as)
			if w.Code != tt.status || w.Header().Get("Location") != tt.to {
				t.Fatalf("GET %s = %d → %q, want %d → %q", tt.path, w.Code, w.Header().Get("Location"), tt.status, tt.to)
			}
		})
	}
}

func TestLocalPath(t *testing.T) {
	tests := []struct {
		next string
		ok   bool
	}{
		{"/playground", true},
		{"/playground?conversation=abc#x", true},
		{"", false},
		{"playground", false},
		{"//evil.example", false},
		{"/\\evil.example", false},
		{"https://evil.example/", false},
		{"/ok\r\nSet-Cookie: x=y", false},
		{"/login", false},
		{"/logout", false},
		{"javascript:alert(1)", false},
	}
	for _, tt := range tests {
		if _, ok := localPath(tt.next); ok != tt.ok {
			t.Errorf("localPath(%q) ok = %v, want %v", tt.next, ok, tt.ok)
		}
	}
}

func TestLogout(t *testing.T) {
	env := mustEnv(t, envOptions{})
	alice := env.MustSession(env.MustUser("alice", engine.RoleViewer))

	// Without the CSRF token nothing happens.
	w := env.postForm("/logout", url.Values{"csrf": {"forged"}}, alice.session)
	if w.Code != http.StatusForbidden {
		t.Fatalf("logout without CSRF = %d, want 403", w.Code)
	}
	if w := env.get("/playground", alice); w.Code != http.StatusOK {
		t.Fatalf("session ended by a forged logout: %d", w.Code)
	}

	w = env.postForm("/logout", url.Values{"csrf": {alice.csrf}}, alice.session)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
		t.Fatalf("logout = %d → %q", w.Code, w.Header().Get("Location"))
	}
	if ck := cookieFrom(w, "cs_session"); ck == nil || ck.MaxAge >= 0 {
		t.Fatalf("session cookie not cleared: %+v", ck)
	}
	if _, err := env.store.SessionByTokenHash(context.Background(), engine.HashSecret(alice.session.Value)); !engine.IsNotFound(err) {
		t.Fatalf("session still stored: %v", err)
	}
	if w := env.get("/playground", alice); w.Code != http.StatusFound {
		t.Fatalf("old session cookie still works: %d", w.Code)
	}
}

func TestDisabledUserLockedOutAtOnce(t *testing.T) {
	env := mustEnv(t, envOptions{})
	env.MustAssistant("helper", true)
	u := env.MustUser("bob", engine.RoleEditor)
	sess := env.MustSession(u)
	tok := env.MustToken(u)
	if w := env.get("/playground", sess); w.Code != http.StatusOK {
		t.Fatalf("playground = %d", w.Code)
	}
	if w := env.get("/api/v1/assistants", tok); w.Code != http.StatusOK {
		t.Fatalf("assistants with token = %d", w.Code)
	}
	u.Disabled = true
	if err := env.store.UpdateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	if w := env.get("/playground", sess); w.Code != http.StatusFound {
		t.Fatalf("disabled user's session: playground = %d, want redirect", w.Code)
	}
	for name, c := range map[string]*client{"token": tok, "session": sess} {
		w := env.postChat(c, `{"message":"hi"}`)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("disabled user's %s: chat = %d, want 401", name, w.Code)
		}
	}
	if env.chat.calls.Load() != 0 {
		t.Fatal("a disabled user reached the engine")
	}
}

func TestCrossOriginRefused(t *testing.T) {
	env := mustEnv(t, envOptions{})
	env.MustUser("alice", engine.RoleViewer)
	ck, csrf := env.loginForm("")
	r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{
		"name": {"alice"}, "password": {testPassword}, "csrf": {csrf}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	r.AddCookie(ck)
	if w := env.serve(r); w.Code != http.StatusForbidden || cookieFrom(w, "cs_session") != nil {
		t.Fatalf("cross-site sign-in = %d", w.Code)
	}
}

// TestDummyPasswordHash checks that the hash checked for unknown names has
// the shape and cost of a real one (argon2id with the same parameters), so
// refusing an unknown name takes as long as a wrong password.
func TestDummyPasswordHash(t *testing.T) {
	real := strings.Split(mustPasswordHash(t), "$")
	dummy := strings.Split(dummyPasswordHash, "$")
	if len(real) != 6 || len(dummy) != 6 {
		t.Fatalf("hash parts: real %d, dummy %d", len(real), len(dummy))
	}
	for i := range 4 {
		if dummy[i] != real[i] {
			t.Fatalf("dummy hash %q differs from %q in part %d", dummyPasswordHash, mustPasswordHash(t), i)
		}
	}
	if len(dummy[4]) != len(real[4]) || len(dummy[5]) != len(real[5]) || password.NeedsRehash(dummyPasswordHash) {
		t.Fatalf("dummy hash %q does not match the shape of %q", dummyPasswordHash, mustPasswordHash(t))
	}
	if password.Verify(dummyPasswordHash, testPassword) {
		t.Fatal("the dummy hash accepts a password")
	}
}

// TestLegacyHashUpgradedAtSignIn: a user whose password was stored by an
// earlier version (PBKDF2-SHA256) signs in with it, and the stored hash
// becomes argon2id; a failed attempt changes nothing.
func TestLegacyHashUpgradedAtSignIn(t *testing.T) {
	env := mustEnv(t, envOptions{})
	salt := []byte("0123456789abcdef")
	key, err := pbkdf2.Key(sha256.New, testPassword, salt, 1000, 32)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawStdEncoding
	legacy := fmt.Sprintf("pbkdf2-sha256$1000$%s$%s", enc.EncodeToString(salt), enc.EncodeToString(key))
	u := &engine.User{Name: "olduser", Role: engine.RoleViewer, PasswordHash: legacy}
	if err := env.store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	if w := env.login("olduser", "not the password", ""); w.Code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", w.Code)
	}
	if got, _ := env.store.UserByID(context.Background(), u.ID); got.PasswordHash != legacy {
		t.Fatal("a failed sign-in changed the stored hash")
	}
	if w := env.login("olduser", testPassword, ""); w.Code != http.StatusSeeOther {
		t.Fatalf("sign-in with a legacy hash: %d", w.Code)
	}
	got, err := env.store.UserByID(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.PasswordHash, "$argon2id$") || password.NeedsRehash(got.PasswordHash) || !password.Verify(got.PasswordHash, testPassword) {
		t.Errorf("stored hash after sign-in %q, want argon2id of the same password", got.PasswordHash)
	}
}

// TestSessionIdleTimeout: a session in use stays (its last use is recorded
// at most once a minute); one unused for longer than the idle timeout ends
// at its next request and is deleted, whatever its absolute expiry.
func TestSessionIdleTimeout(t *testing.T) {
	env := mustEnv(t, envOptions{Config: Config{SessionTTL: 12 * time.Hour, SessionIdleTimeout: 30 * time.Minute}})
	start := time.Now()
	c := mustLongSession(t, env, env.MustUser("alice", engine.RoleViewer), start.Add(12*time.Hour))
	steps := []struct {
		after time.Duration
		want  int
	}{
		{0, http.StatusOK},
		{20 * time.Minute, http.StatusOK}, // used: the idle clock restarts
		{45 * time.Minute, http.StatusOK}, // 25 minutes after the last use
		{80 * time.Minute, http.StatusFound},
		{81 * time.Minute, http.StatusFound}, // gone for good
	}
	for _, st := range steps {
		env.srv.now = func() time.Time { return start.Add(st.after) }
		if w := env.get("/playground", c); w.Code != st.want {
			t.Fatalf("after %s: GET /playground = %d, want %d", st.after, w.Code, st.want)
		}
	}
	if _, err := env.store.SessionByTokenHash(context.Background(), engine.HashSecret(c.session.Value)); !engine.IsNotFound(err) {
		t.Errorf("the idle session is still stored: %v", err)
	}
	// The API says why, in words.
	c2 := mustLongSession(t, env, env.MustUser("bob", engine.RoleViewer), start.Add(12*time.Hour))
	env.srv.now = func() time.Time { return start.Add(3 * time.Hour) }
	w := env.get("/api/v1/assistants", c2)
	if _, msg := errorOf(t, w.Body.Bytes()); w.Code != http.StatusUnauthorized || !strings.Contains(msg, "without activity") {
		t.Errorf("idle API request: %d %q", w.Code, msg)
	}
}

// mustLongSession is MustSession with another absolute expiry.
func mustLongSession(t *testing.T, env *testEnv, u *engine.User, expires time.Time) *client {
	t.Helper()
	secret, hash := engine.NewSecret("sess_")
	if err := env.store.CreateSession(context.Background(), &engine.Session{UserID: u.ID, TokenHash: hash, ExpiresAt: expires}); err != nil {
		t.Fatal(err)
	}
	return &client{user: u, session: &http.Cookie{Name: env.srv.cookies.session, Value: secret}, csrf: csrfToken(secret)}
}
