package web

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/console/web/password"
	"github.com/convosphere/convosphere/engine"
)

// invitationRoutes registers the invitation links. They need no sign-in:
// the token in the link is the credential, so routes.go registers them on
// the root router, outside the groups that require a session or a token.
func (s *Server) invitationRoutes(r gin.IRoutes) {
	r.GET("/invite/:token", s.hideInvitationToken, s.showInvitation)
	r.POST("/invite/:token", s.hideInvitationToken, s.submitInvitation)
	r.POST("/api/v1/invitations/:token", s.hideInvitationToken, s.acceptInvitation)
}

// hideInvitationToken keeps the token out of the request log and the error
// logs, which print the path: the handlers read it from the route's
// parameter.
func (s *Server) hideInvitationToken(c *gin.Context) {
	path := "/invite/{token}"
	if isAPI(c) {
		path = "/api/v1/invitations/{token}"
	}
	c.Request.URL.Path, c.Request.URL.RawPath = path, ""
	c.Next()
}

// invitationTokenPrefix starts every invitation token; engine.NewSecret
// adds 43 characters of base64.
const invitationTokenPrefix = "inv_"

var errBadInvitation = engine.Errorf(engine.ENOTFOUND,
	"This invitation link is not valid: check that it was copied whole, or ask an admin for a new one (a newer link replaces the older ones).")

// openInvitation finds the invitation of a link and its user, and says why
// it cannot be used when it cannot: unknown, used, expired, or its user
// disabled.
func (s *Server) openInvitation(ctx context.Context, token string) (*engine.Invitation, *engine.User, error) {
	if !strings.HasPrefix(token, invitationTokenPrefix) || len(token) != len(invitationTokenPrefix)+43 {
		return nil, nil, errBadInvitation
	}
	inv, err := s.deps.Store.InvitationByTokenHash(ctx, engine.HashSecret(token))
	switch {
	case engine.IsNotFound(err):
		return nil, nil, errBadInvitation
	case err != nil:
		return nil, nil, engine.WrapError(engine.EUNAVAILABLE, err, "The invitation could not be checked; please try again in a minute.")
	}
	switch inv.State(s.now()) {
	case engine.InvitationUsed:
		return nil, nil, engine.Errorf(engine.ECONFLICT, "This invitation link has been used already: sign in with the password you chose then, or ask an admin for a new link.")
	case engine.InvitationExpired:
		return nil, nil, engine.Errorf(engine.ECONFLICT, "This invitation link expired on %s: ask an admin for a new one.", inv.ExpiresAt.UTC().Format("2 Jan 2006 15:04 MST"))
	}
	u, err := s.deps.Store.UserByID(ctx, inv.UserID)
	switch {
	case engine.IsNotFound(err):
		return nil, nil, errBadInvitation
	case err != nil:
		return nil, nil, engine.WrapError(engine.EUNAVAILABLE, err, "The invitation could not be checked; please try again in a minute.")
	case u.Disabled:
		return nil, nil, engine.Errorf(engine.EFORBIDDEN, "The account %s is disabled, so its invitation cannot be used: ask an admin to enable it.", u.Name)
	}
	return inv, u, nil
}

// useInvitation checks the password, stores its hash on the invitation's
// user, ends their sessions and uses the invitation up.
func (s *Server) useInvitation(ctx context.Context, inv *engine.Invitation, u *engine.User, pw string) error {
	if err := password.CheckNew(pw, u.Name); err != nil {
		return err
	}
	hash, err := password.Hash(pw)
	if err != nil {
		return err
	}
	err = s.deps.Store.AcceptInvitation(ctx, inv.ID, hash, s.now())
	switch {
	case engine.ErrorCode(err) == engine.ECONFLICT:
		return engine.Errorf(engine.ECONFLICT, "This invitation link has just been used or has expired: ask an admin for a new one.")
	case engine.IsNotFound(err):
		return errBadInvitation
	case err != nil:
		return engine.WrapError(engine.EUNAVAILABLE, err, "Your password could not be saved; please try again in a minute.")
	}
	s.log.InfoContext(ctx, "invitation accepted", "user_id", u.ID, "invitation_id", inv.ID)
	return nil
}

// invitePage is the data of /invite/{token}.
type invitePage struct {
	Name        string
	DisplayName string
	Reset       bool // the user had a password: this link replaces it
	ExpiresAt   time.Time
	CSRF        string // the form's double-submit token (the same value is in a cookie)
	MinLength   int
	Error       string // the form's error
	Invalid     string // why the link cannot be used (no form then)
	Done        bool   // the password is set
}

// showInvitation serves GET /invite/{token}: the form on which an invited
// user chooses their password, or why the link cannot be used.
func (s *Server) showInvitation(c *gin.Context) {
	inv, u, err := s.openInvitation(c.Request.Context(), c.Param("token"))
	if err != nil {
		s.renderInvitationError(c, err)
		return
	}
	s.renderInvitation(c, http.StatusOK, invitePageOf(inv, u))
}

func invitePageOf(inv *engine.Invitation, u *engine.User) invitePage {
	return invitePage{Name: u.Name, DisplayName: u.DisplayName, Reset: u.PasswordHash != "", ExpiresAt: inv.ExpiresAt}
}

// submitInvitation serves POST /invite/{token} (form fields csrf,
// password, confirm): sets the password and uses the link up.
func (s *Server) submitInvitation(c *gin.Context) {
	ctx := c.Request.Context()
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxFormBytes)
	if err := c.Request.ParseForm(); err != nil {
		s.renderInvitationError(c, engine.Errorf(engine.EINVALID, "The form could not be read: open the invitation link again."))
		return
	}
	form := c.Request.PostForm
	ck, err := c.Request.Cookie(s.cookies.loginCSRF)
	if err != nil || !equalSecret(ck.Value, form.Get("csrf")) {
		s.renderInvitationError(c, engine.Errorf(engine.EFORBIDDEN, "The form has expired or came from another site: open the invitation link again."))
		return
	}
	inv, u, err := s.openInvitation(ctx, c.Param("token"))
	if err != nil {
		s.renderInvitationError(c, err)
		return
	}
	setAuditTarget(c, u.ID)
	page := invitePageOf(inv, u)
	password := form.Get("password")
	if password != form.Get("confirm") {
		page.Error = "The two passwords differ: type the same password in both fields."
		s.renderInvitation(c, http.StatusBadRequest, page)
		return
	}
	if err := s.useInvitation(ctx, inv, u, password); err != nil {
		if code := engine.ErrorCode(err); code == engine.EINVALID {
			page.Error = engine.ErrorMessage(err)
			s.renderInvitation(c, http.StatusBadRequest, page)
			return
		}
		s.renderInvitationError(c, err)
		return
	}
	page.Done = true
	s.renderInvitation(c, http.StatusOK, page)
}

// renderInvitation shows the invitation page with a double-submit CSRF
// token, as the sign-in form has.
func (s *Server) renderInvitation(c *gin.Context, status int, page invitePage) {
	if !page.Done && page.Invalid == "" {
		page.CSRF = s.formCSRF(c)
	}
	page.MinLength = password.MinLength
	v := s.newView(c, "Choose your password")
	v.Nav = "invite"
	v.Page = page
	s.render(c, status, "invite", v)
}

// renderInvitationError shows why the link cannot be used; errors that are
// not about the link go to the error page.
func (s *Server) renderInvitationError(c *gin.Context, err error) {
	switch code := engine.ErrorCode(err); code {
	case engine.ENOTFOUND, engine.ECONFLICT, engine.EFORBIDDEN, engine.EINVALID:
		s.renderInvitation(c, httpStatus(code), invitePage{Invalid: engine.ErrorMessage(err)})
	default:
		s.fail(c, err)
	}
}

// formCSRF returns the double-submit token of forms shown before sign-in
// (the one the sign-in form uses), setting its cookie when missing.
func (s *Server) formCSRF(c *gin.Context) string {
	if ck, err := c.Request.Cookie(s.cookies.loginCSRF); err == nil && strings.HasPrefix(ck.Value, "login_") && len(ck.Value) == 49 {
		return ck.Value
	}
	token, _ := engine.NewSecret("login_")
	s.setCookie(c, &http.Cookie{Name: s.cookies.loginCSRF, Value: token, Path: "/", HttpOnly: true, MaxAge: int((2 * time.Hour) / time.Second)})
	return token
}

// acceptInvitationRequest is the body of POST /api/v1/invitations/{token}.
type acceptInvitationRequest struct {
	Password string `json:"password"`
}

var acceptInvitationForm = jsonForm{
	Example: `{"password": "four unrelated words here"}`,
	Fields:  `"password"`,
	Hint:    `send {"password": "…"}`,
}

// acceptInvitationResponse is the body of a successful POST
// /api/v1/invitations/{token}.
type acceptInvitationResponse struct {
	User   invitedUserJSON `json:"user"`
	SignIn string          `json:"sign_in"` // where to sign in: /login
}

// invitedUserJSON is whom an accepted invitation was for.
type invitedUserJSON struct {
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	DisplayName string      `json:"display_name"`
	Role        engine.Role `json:"role"`
}

// acceptInvitation serves POST /api/v1/invitations/{token} (no sign-in:
// the token is the credential): sets the invited user's password.
func (s *Server) acceptInvitation(c *gin.Context) {
	ctx := c.Request.Context()
	var req acceptInvitationRequest
	if err := readJSON(c, 8<<10, &req, acceptInvitationForm); err != nil {
		s.fail(c, err)
		return
	}
	inv, u, err := s.openInvitation(ctx, c.Param("token"))
	if err != nil {
		s.fail(c, err)
		return
	}
	setAuditTarget(c, u.ID)
	if err := s.useInvitation(ctx, inv, u, req.Password); err != nil {
		s.fail(c, err)
		return
	}
	s.writeJSON(c, http.StatusOK, acceptInvitationResponse{
		User:   invitedUserJSON{ID: u.ID, Name: u.Name, DisplayName: u.DisplayName, Role: u.Role},
		SignIn: "/login",
	})
}
