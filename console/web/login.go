package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/console/web/password"
	"github.com/convosphere/convosphere/engine"
)

// maxFormBytes caps the body of the sign-in and sign-out forms.
const maxFormBytes = 64 << 10

// dummyPasswordHash is checked when no user has the name, so that an
// unknown name takes as long to refuse as a wrong password.
const dummyPasswordHash = "$argon2id$v=19$m=65536,t=3,p=2$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

// loginPage is the data of the sign-in page.
type loginPage struct {
	Name  string
	Next  string
	CSRF  string // the form's double-submit token (the same value is in a cookie)
	Error string
}

// home shows signed-in users (any role) the dashboard and sends others to
// sign in.
func (s *Server) home(c *gin.Context) {
	_, ok, err := s.optionalPrincipal(c)
	switch {
	case err != nil:
		s.fail(c, err)
	case ok:
		s.showDashboard(c)
	default:
		redirect(c, http.StatusFound, "/login")
	}
}

// showLogin shows the sign-in form.
func (s *Server) showLogin(c *gin.Context) {
	_, ok, err := s.optionalPrincipal(c)
	switch {
	case err != nil:
		s.fail(c, err)
		return
	case ok:
		redirect(c, http.StatusFound, afterSignIn(c.Query("next")))
		return
	}
	s.renderLogin(c, http.StatusOK, loginPage{Next: c.Query("next")})
}

// submitLogin checks a name and password and starts a session.
func (s *Server) submitLogin(c *gin.Context) {
	ctx := c.Request.Context()
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxFormBytes)
	if err := c.Request.ParseForm(); err != nil {
		s.auditSignIn(c, auditLoginFailed, nil, "", http.StatusBadRequest, "the sign-in form could not be read")
		s.renderLogin(c, http.StatusBadRequest, loginPage{Error: "The sign-in form could not be read; please try again."})
		return
	}
	form := c.Request.PostForm
	// The field is "username" (the documented contract); "name" is what
	// earlier versions of the form sent.
	name := strings.TrimSpace(form.Get("username"))
	if name == "" {
		name = strings.TrimSpace(form.Get("name"))
	}
	pw := form.Get("password")
	page := loginPage{Name: name, Next: form.Get("next")}

	ck, err := c.Request.Cookie(s.cookies.loginCSRF)
	if err != nil || !equalSecret(ck.Value, form.Get("csrf")) {
		s.auditSignIn(c, auditLoginFailed, nil, name, http.StatusForbidden, "the sign-in form expired or came from another site")
		page.Error = "The sign-in form has expired or came from another site. Please sign in again."
		s.renderLogin(c, http.StatusForbidden, page)
		return
	}
	if name == "" || pw == "" {
		s.auditSignIn(c, auditLoginFailed, nil, name, http.StatusBadRequest, "name or password missing")
		page.Error = "Enter your name and your password."
		s.renderLogin(c, http.StatusBadRequest, page)
		return
	}

	ip := c.ClientIP()
	if wait := s.throttle.wait(ip, name); wait > 0 {
		s.log.WarnContext(ctx, "sign-in throttled", "client_ip", ip, "user_name", name)
		minutes := int((wait + time.Minute - 1) / time.Minute)
		s.auditSignIn(c, auditLoginFailed, nil, name, http.StatusTooManyRequests, "throttled after too many failures")
		c.Header("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		page.Error = fmt.Sprintf("Too many failed sign-in attempts. Try again in %d minute%s.", minutes, plural(minutes))
		s.renderLogin(c, http.StatusTooManyRequests, page)
		return
	}

	user, err := s.deps.Store.UserByName(ctx, name)
	hash := dummyPasswordHash
	switch {
	case err == nil:
		hash = user.PasswordHash
	case !engine.IsNotFound(err):
		s.auditSignIn(c, auditLoginFailed, nil, name, http.StatusServiceUnavailable, "the accounts could not be read")
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "You could not be signed in because the accounts could not be read; please try again in a minute."))
		return
	}
	// Always run the password check, whether or not the user exists.
	if ok := password.Verify(hash, pw); !ok || user == nil || user.Disabled {
		s.auditSignIn(c, auditLoginFailed, nil, name, http.StatusUnauthorized, signInFailure(user, ok))
		s.throttle.fail(ip, name)
		s.log.InfoContext(ctx, "sign-in failed", "client_ip", ip, "user_name", name)
		page.Error = "Invalid name or password."
		s.renderLogin(c, http.StatusUnauthorized, page)
		return
	}
	s.throttle.succeed(ip, name)
	s.upgradeHash(ctx, user, pw)
	if err := s.startSession(c, user); err != nil {
		s.auditSignIn(c, auditLoginFailed, nil, name, http.StatusServiceUnavailable, "the session could not be saved")
		s.fail(c, err)
		return
	}
	s.auditSignIn(c, auditLogin, user, name, http.StatusSeeOther, "")
	s.noteSignIn(ctx, user.ID) // users.go: the last sign-in the users page shows
	s.clearCookie(c, s.cookies.loginCSRF)
	s.log.InfoContext(ctx, "signed in", "user_id", user.ID, "client_ip", ip)
	redirect(c, http.StatusSeeOther, afterSignIn(page.Next))
}

// renderLogin shows the sign-in form with a double-submit CSRF token: the
// same random value in a cookie and in a hidden field.
func (s *Server) renderLogin(c *gin.Context, status int, page loginPage) {
	if _, ok := localPath(page.Next); !ok {
		page.Next = ""
	}
	if ck, err := c.Request.Cookie(s.cookies.loginCSRF); err == nil && strings.HasPrefix(ck.Value, "login_") && len(ck.Value) == 49 {
		page.CSRF = ck.Value
	} else {
		page.CSRF, _ = engine.NewSecret("login_")
		s.setCookie(c, &http.Cookie{Name: s.cookies.loginCSRF, Value: page.CSRF, Path: "/", HttpOnly: true, MaxAge: int((2 * time.Hour) / time.Second)})
	}
	v := s.newView(c, "Sign in")
	v.Nav = "login"
	v.Page = page
	s.render(c, status, "login", v)
}

// logout ends the session.
func (s *Server) logout(c *gin.Context) {
	p, ok, err := s.optionalPrincipal(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if !ok {
		s.clearCookie(c, s.cookies.session)
		redirect(c, http.StatusSeeOther, "/login")
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxFormBytes)
	if err := c.Request.ParseForm(); err != nil || !equalSecret(c.Request.PostForm.Get("csrf"), p.csrf) {
		s.auditSignIn(c, auditLogout, p.User, "", http.StatusForbidden, "the sign-out form expired or came from another site")
		s.fail(c, engine.Errorf(engine.EFORBIDDEN, "The sign-out form has expired: reload the page and sign out again."))
		return
	}
	if err := s.deps.Store.DeleteSession(c.Request.Context(), p.Session.ID); err != nil && !engine.IsNotFound(err) {
		s.auditSignIn(c, auditLogout, p.User, "", http.StatusServiceUnavailable, "the session could not be deleted")
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "You could not be signed out because the session could not be deleted; please try again in a minute."))
		return
	}
	s.clearCookie(c, s.cookies.session)
	s.auditSignIn(c, auditLogout, p.User, "", http.StatusSeeOther, "")
	s.log.InfoContext(c.Request.Context(), "signed out", "user_id", p.User.ID)
	redirect(c, http.StatusSeeOther, "/login")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// upgradeHash stores a new argon2id hash of a user's password after a
// successful sign-in when the stored one is of an older scheme or weaker
// parameters. A failure is logged: the sign-in goes on.
func (s *Server) upgradeHash(ctx context.Context, user *engine.User, pw string) {
	if !password.NeedsRehash(user.PasswordHash) {
		return
	}
	hash, err := password.Hash(pw)
	if err == nil {
		user.PasswordHash = hash
		err = s.deps.Store.UpdateUser(ctx, user)
	}
	if err != nil {
		s.log.WarnContext(ctx, "password hash not upgraded", "user_id", user.ID, "error", err)
		return
	}
	s.log.InfoContext(ctx, "password hash upgraded to argon2id", "user_id", user.ID)
}
