package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// cookieNames are the console's cookie names; with secure cookies they
// carry the __Host- prefix, which browsers only accept over HTTPS for the
// whole host.
type cookieNames struct {
	session   string
	loginCSRF string
}

func newCookieNames(secure bool) cookieNames {
	if secure {
		return cookieNames{session: "__Host-cs_session", loginCSRF: "__Host-cs_login"}
	}
	return cookieNames{session: "cs_session", loginCSRF: "cs_login"}
}

// principal is who made a request: a signed-in browser session or an API token.
type principal struct {
	User    *engine.User
	Session *engine.Session  // nil for API tokens
	Token   *engine.APIToken // nil for sessions
	csrf    string           // the session's CSRF token; "" for API tokens
}

const principalKey = "console.principal"

// principalOf returns the request's principal, or nil before authentication.
func principalOf(c *gin.Context) *principal {
	v, ok := c.Get(principalKey)
	if !ok {
		return nil
	}
	p, _ := v.(*principal)
	return p
}

// csrfToken derives the session's CSRF token from its secret, which only
// the browser holding the session cookie knows (the store keeps a hash).
func csrfToken(sessionSecret string) string {
	m := hmac.New(sha256.New, []byte(sessionSecret))
	m.Write([]byte("convosphere csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// equalSecret compares two secrets in constant time; empty never matches.
func equalSecret(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

var errSignIn = engine.Errorf(engine.EUNAUTHORIZED, "Sign in first: your session is missing or has expired.")

// sessionPrincipal authenticates the session cookie. The user is loaded on
// every request, so disabling a user locks them out at once.
func (s *Server) sessionPrincipal(ctx context.Context, r *http.Request) (*principal, error) {
	ck, err := r.Cookie(s.cookies.session)
	if err != nil || ck.Value == "" {
		return nil, errSignIn
	}
	sess, err := s.deps.Store.SessionByTokenHash(ctx, engine.HashSecret(ck.Value))
	switch {
	case engine.IsNotFound(err):
		return nil, errSignIn
	case err != nil:
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "Your session could not be checked; please try again in a minute.")
	case !sess.ExpiresAt.After(s.now()):
		return nil, errSignIn
	case s.now().Sub(sess.LastSeenAt) > s.cfg.SessionIdleTimeout:
		// Idle too long: the session ends here, whatever its absolute expiry.
		if err := s.deps.Store.DeleteSession(ctx, sess.ID); err != nil && !engine.IsNotFound(err) {
			s.log.WarnContext(ctx, "delete idle session", "error", err)
		}
		return nil, errIdle
	}
	user, err := s.activeUser(ctx, sess.UserID)
	if err != nil {
		return nil, err
	}
	s.touchSession(ctx, sess)
	return &principal{User: user, Session: sess, csrf: csrfToken(ck.Value)}, nil
}

var errIdle = engine.Errorf(engine.EUNAUTHORIZED, "Sign in again: your session ended after a while without activity.")

// sessionTouchEvery is how stale LastSeenAt may get before a request
// records it again: one write a minute per session, not one per request.
const sessionTouchEvery = time.Minute

// touchSession records that sess is in use. A failure is logged: at worst
// the session ends early.
func (s *Server) touchSession(ctx context.Context, sess *engine.Session) {
	now := s.now()
	if now.Sub(sess.LastSeenAt) < sessionTouchEvery {
		return
	}
	if err := s.deps.Store.TouchSession(ctx, sess.ID, now); err != nil {
		s.log.WarnContext(ctx, "record session use", "error", err)
		return
	}
	sess.LastSeenAt = engine.StoredTime(now)
}

// PurgeSessions deletes expired and idle sessions from the store; the
// console runs it now and then (cmd/console).
func (s *Server) PurgeSessions(ctx context.Context) (int, error) {
	return s.deps.Store.PurgeSessions(ctx, s.now().Add(-s.cfg.SessionIdleTimeout))
}

// tokenPrincipal authenticates an API token.
func (s *Server) tokenPrincipal(ctx context.Context, token string) (*principal, error) {
	invalid := engine.Errorf(engine.EUNAUTHORIZED, "The API token is invalid or has been revoked: create a new one in the console.")
	if token == "" {
		return nil, invalid
	}
	t, err := s.deps.Store.APITokenByHash(ctx, engine.HashSecret(token))
	switch {
	case engine.IsNotFound(err):
		return nil, invalid
	case err != nil:
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "The API token could not be checked; please try again in a minute.")
	}
	user, err := s.activeUser(ctx, t.UserID)
	if err != nil {
		if engine.ErrorCode(err) == engine.EUNAUTHORIZED {
			return nil, invalid
		}
		return nil, err
	}
	// Record use at most once a minute, so busy clients do not write on
	// every call. A failure to record is no reason to refuse the call.
	now := s.now()
	if now.Sub(t.LastUsedAt) > time.Minute {
		if err := s.deps.Store.TouchAPIToken(ctx, t.ID, now); err != nil {
			s.log.WarnContext(ctx, "touch api token", "token_id", t.ID, "error", err)
		}
	}
	return &principal{User: user, Token: t}, nil
}

// activeUser loads a user who may act: existing and not disabled.
func (s *Server) activeUser(ctx context.Context, id string) (*engine.User, error) {
	u, err := s.deps.Store.UserByID(ctx, id)
	switch {
	case engine.IsNotFound(err):
		return nil, errSignIn
	case err != nil:
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "Your account could not be checked; please try again in a minute.")
	case u.Disabled:
		return nil, errSignIn
	}
	return u, nil
}

// requirePageUser lets signed-in users through and sends everyone else to
// the sign-in page, which brings them back afterwards.
func (s *Server) requirePageUser(c *gin.Context) {
	p, err := s.sessionPrincipal(c.Request.Context(), c.Request)
	if err != nil {
		if engine.ErrorCode(err) != engine.EUNAUTHORIZED {
			s.fail(c, err)
			return
		}
		s.clearCookie(c, s.cookies.session)
		redirect(c, http.StatusFound, "/login?next="+url.QueryEscape(c.Request.URL.RequestURI()))
		return
	}
	c.Set(principalKey, p)
	c.Next()
}

// requireAPIUser accepts an API token (Authorization: Bearer) or, for the
// playground, a session cookie with the page's X-CSRF-Token header.
func (s *Server) requireAPIUser(c *gin.Context) {
	p, err := s.apiPrincipal(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Set(principalKey, p)
	c.Next()
}

func (s *Server) apiPrincipal(c *gin.Context) (*principal, error) {
	ctx := c.Request.Context()
	if h := c.GetHeader("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return nil, engine.Errorf(engine.EUNAUTHORIZED, "The Authorization header must be \"Bearer <token>\" with an API token from the console.")
		}
		return s.tokenPrincipal(ctx, strings.TrimSpace(token))
	}
	if _, err := c.Request.Cookie(s.cookies.session); err != nil {
		return nil, engine.Errorf(engine.EUNAUTHORIZED, "Authentication is required: send \"Authorization: Bearer <token>\" with an API token from the console.")
	}
	p, err := s.sessionPrincipal(ctx, c.Request)
	if err != nil {
		return nil, err
	}
	if !equalSecret(c.GetHeader("X-CSRF-Token"), p.csrf) {
		return nil, engine.Errorf(engine.EUNAUTHORIZED, "Requests made with the session cookie need the page's X-CSRF-Token header; API clients send \"Authorization: Bearer <token>\" instead.")
	}
	return p, nil
}

// requireRole lets through signed-in users who hold one of roles and
// refuses the others with 403; action says what the roles are needed for,
// e.g. "Managing knowledge bases". It runs after requireAPIUser or
// requirePageUser.
func (s *Server) requireRole(action string, roles ...engine.Role) gin.HandlerFunc {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	need := strings.Join(names, " or ")
	return func(c *gin.Context) {
		p := principalOf(c)
		if p == nil {
			s.fail(c, errSignIn)
			return
		}
		if !slices.Contains(roles, p.User.Role) {
			s.fail(c, engine.Errorf(engine.EFORBIDDEN, "%s needs the %s role; you are signed in as %s with the %s role. Ask an admin to change your role.",
				action, need, p.User.Name, p.User.Role))
			return
		}
		c.Next()
	}
}

// optionalPrincipal authenticates the session when there is one, for pages
// that anyone may see. Store failures are errors; no session is (nil, false).
func (s *Server) optionalPrincipal(c *gin.Context) (*principal, bool, error) {
	p, err := s.sessionPrincipal(c.Request.Context(), c.Request)
	switch {
	case err == nil:
		c.Set(principalKey, p)
		return p, true, nil
	case engine.ErrorCode(err) == engine.EUNAUTHORIZED:
		return nil, false, nil
	}
	return nil, false, err
}

// startSession signs user in: a random secret goes to the cookie, only its
// hash to the store.
func (s *Server) startSession(c *gin.Context, user *engine.User) error {
	secret, hash := engine.NewSecret("sess_")
	sess := &engine.Session{UserID: user.ID, TokenHash: hash, ExpiresAt: s.now().Add(s.cfg.SessionTTL)}
	if err := s.deps.Store.CreateSession(c.Request.Context(), sess); err != nil {
		return engine.WrapError(engine.EUNAVAILABLE, err, "You could not be signed in because the session could not be saved; please try again in a minute.")
	}
	s.setCookie(c, &http.Cookie{
		Name: s.cookies.session, Value: secret, Path: "/", HttpOnly: true,
		Expires: sess.ExpiresAt, MaxAge: int(s.cfg.SessionTTL / time.Second),
	})
	return nil
}

// setCookie sets a cookie with the console's defaults: SameSite=Lax and
// Secure when configured.
func (s *Server) setCookie(c *gin.Context, ck *http.Cookie) {
	ck.SameSite = http.SameSiteLaxMode
	ck.Secure = s.cfg.SecureCookies
	if ck.Path == "" {
		ck.Path = "/"
	}
	http.SetCookie(c.Writer, ck)
}

// clearCookie removes a cookie the request carries.
func (s *Server) clearCookie(c *gin.Context, name string) {
	if _, err := c.Request.Cookie(name); err != nil {
		return
	}
	s.setCookie(c, &http.Cookie{Name: name, Value: "", Path: "/", HttpOnly: true, MaxAge: -1})
}

// localPath returns next when it is a path on this site, so that a
// sign-in link cannot send anyone elsewhere.
func localPath(next string) (string, bool) {
	if len(next) == 0 || len(next) > 2048 || next[0] != '/' || strings.HasPrefix(next, "//") {
		return "", false
	}
	for _, r := range next {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return "", false
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "", false
	}
	if u.Path == "/login" || u.Path == "/logout" {
		return "", false
	}
	return next, true
}

// afterSignIn is where a signed-in user goes: next when it is local, else
// the playground.
func afterSignIn(next string) string {
	if p, ok := localPath(next); ok {
		return p
	}
	return "/"
}
