package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/chromedp/chromedp"

	"github.com/convosphere/convosphere/console/web/password"
	"github.com/convosphere/convosphere/engine"
)

// usersEnv is a console with the invitation routes and an admin, ada,
// signed in.
func usersEnv(t *testing.T) (*testEnv, *client) {
	t.Helper()
	env := mustEnv(t, envOptions{})
	mustInvitationRoutes(env)
	return env, env.MustSession(env.MustUser("ada", engine.RoleAdmin))
}

// mustInvitationRoutes registers the invitation links on the test's
// console unless routes.go does already (they live outside the groups that
// require a sign-in).
func mustInvitationRoutes(env *testEnv) {
	for _, rt := range env.srv.router.Routes() {
		if rt.Path == "/invite/:token" {
			return
		}
	}
	env.srv.invitationRoutes(env.srv.router)
}

// mustCreateUser invites a user through the API and returns the answer.
func mustCreateUser(t *testing.T, env *testEnv, admin *client, body string) userResponse {
	t.Helper()
	w := env.sendJSON(http.MethodPost, "/api/v1/users", body, admin)
	if w.Code != http.StatusCreated {
		t.Fatalf("create user %s: %d %s", body, w.Code, w.Body)
	}
	got := decodeStrict[userResponse](t, w.Body.Bytes())
	if got.Invitation == nil {
		t.Fatalf("no invitation: %s", w.Body)
	}
	return got
}

// tokenOf returns the invitation token of a link.
func tokenOf(t *testing.T, inv *invitationJSON) string {
	t.Helper()
	token, ok := strings.CutPrefix(inv.Path, "/invite/")
	if !ok || token == "" {
		t.Fatalf("invitation path %q", inv.Path)
	}
	return token
}

// inviteForm opens an invitation link like a browser and returns its CSRF
// cookie and the hidden field's value.
func (e *testEnv) inviteForm(path string) (*http.Cookie, string) {
	e.tb.Helper()
	w := e.get(path, nil)
	if w.Code != http.StatusOK {
		e.tb.Fatalf("GET %s = %d %s", path, w.Code, w.Body)
	}
	ck := cookieFrom(w, e.srv.cookies.loginCSRF)
	if ck == nil {
		e.tb.Fatal("the invitation page set no CSRF cookie")
	}
	doc := MustParseHTML(e.tb, w.Body.Bytes())
	form := selectOne(e.tb, doc, "form[method=post]")
	csrf, _ := attr(selectOne(e.tb, form, "input[name=csrf]"), "value")
	return ck, csrf
}

// acceptForm posts the invitation form with a password typed twice.
func (e *testEnv) acceptForm(path, password, confirm string) *httptest.ResponseRecorder {
	e.tb.Helper()
	ck, csrf := e.inviteForm(path)
	return e.postForm(path, url.Values{"csrf": {csrf}, "password": {password}, "confirm": {confirm}}, ck)
}

const newPassword = "plum tractor seventeen lantern"

// TestUsersRBAC: every route of the users and settings areas is for admins
// only; viewers and editors get 403 (with sessions and with tokens),
// signed-out visitors are sent to sign in (pages) or get 401 (API), and a
// refused request changes nothing.
func TestUsersRBAC(t *testing.T) {
	env, adminSess := usersEnv(t)
	ctx := context.Background()
	target := env.MustUser("tess", engine.RoleViewer)
	if err := env.store.LinkIdentity(ctx, &engine.Identity{Platform: engine.PlatformSlack, ChatUserID: "U0TESS", UserID: target.ID}); err != nil {
		t.Fatal(err)
	}
	tok := env.MustToken(target)
	tokens, err := env.store.ListAPITokens(ctx, target.ID)
	if err != nil || len(tokens) != 1 {
		t.Fatal(tokens, err)
	}
	routes := []struct {
		method, path, body string
		adminStatus        int
	}{
		{http.MethodGet, "/users", "", http.StatusOK},
		{http.MethodGet, "/users/" + target.ID, "", http.StatusOK},
		{http.MethodGet, "/settings", "", http.StatusOK},
		{http.MethodGet, "/api/v1/users", "", http.StatusOK},
		{http.MethodGet, "/api/v1/users/" + target.ID, "", http.StatusOK},
		{http.MethodGet, "/api/v1/users/" + target.ID + "/identities", "", http.StatusOK},
		{http.MethodGet, "/api/v1/tokens", "", http.StatusOK},
		{http.MethodPost, "/api/v1/users", `{"name": "newbie", "role": "viewer"}`, http.StatusCreated},
		{http.MethodPatch, "/api/v1/users/" + target.ID, `{"display_name": "Tess T."}`, http.StatusOK},
		{http.MethodPost, "/api/v1/users/" + target.ID + "/invite", `{}`, http.StatusCreated},
		{http.MethodPost, "/api/v1/users/" + target.ID + "/identities", `{"platform": "discord", "chat_user_id": "123456789012345678"}`, http.StatusCreated},
		{http.MethodDelete, "/api/v1/users/" + target.ID + "/identities/slack/U0TESS", "", http.StatusNoContent},
		{http.MethodPost, "/api/v1/tokens", `{"name": "ci"}`, http.StatusCreated},
		{http.MethodDelete, "/api/v1/tokens/" + tokens[0].ID, "", http.StatusNoContent},
	}
	who := []struct {
		name   string
		client *client
	}{
		{"viewer session", env.MustSession(env.MustUser("vera", engine.RoleViewer))},
		{"editor session", env.MustSession(env.MustUser("ed", engine.RoleEditor))},
		{"viewer token", env.MustToken(env.MustUser("vito", engine.RoleViewer))},
		{"editor token", env.MustToken(env.MustUser("edna", engine.RoleEditor))},
		{"signed out", nil},
	}
	for _, rt := range routes {
		for _, w := range who {
			t.Run(w.name+" "+rt.method+" "+rt.path, func(t *testing.T) {
				if w.client != nil && w.client.token != "" && !strings.HasPrefix(rt.path, "/api/") {
					t.Skip("pages take sessions, not tokens")
				}
				res := env.sendJSON(rt.method, rt.path, rt.body, w.client)
				switch {
				case w.client == nil && strings.HasPrefix(rt.path, "/api/"):
					if res.Code != http.StatusUnauthorized {
						t.Fatalf("status %d, want 401: %s", res.Code, res.Body)
					}
				case w.client == nil:
					if res.Code != http.StatusFound || !strings.HasPrefix(res.Header().Get("Location"), "/login?next=") {
						t.Fatalf("status %d to %q, want a redirect to sign in", res.Code, res.Header().Get("Location"))
					}
				default:
					if res.Code != http.StatusForbidden {
						t.Fatalf("status %d, want 403: %s", res.Code, res.Body)
					}
					if strings.HasPrefix(rt.path, "/api/") {
						if code, msg := errorOf(t, res.Body.Bytes()); code != engine.EFORBIDDEN || !strings.Contains(msg, "admin role") {
							t.Fatalf("error %s %q", code, msg)
						}
					}
				}
			})
		}
	}
	// Nothing changed.
	if _, err := env.store.UserByName(ctx, "newbie"); !engine.IsNotFound(err) {
		t.Fatalf("a refused request created a user: %v", err)
	}
	if u, _ := env.store.UserByID(ctx, target.ID); u.DisplayName != "" {
		t.Fatal("a refused request changed a user")
	}
	if ids, _ := env.store.IdentitiesOf(ctx, target.ID); len(ids) != 1 || ids[0].ChatUserID != "U0TESS" {
		t.Fatalf("a refused request changed the identities: %v", ids)
	}
	if list, _ := env.store.ListAPITokens(ctx, ""); len(list) != 3 {
		t.Fatalf("a refused request changed the tokens: %d", len(list))
	}
	if invs, _ := env.store.ListInvitations(ctx); len(invs) != 0 {
		t.Fatalf("a refused request made an invitation: %d", len(invs))
	}
	if w := env.get("/api/v1/tokens", tok); w.Code != http.StatusForbidden {
		t.Fatalf("the viewer's own token lists tokens: %d", w.Code)
	}

	// Admins, with a session and with a token, reach every route.
	adminTok := env.MustToken(adminSess.user)
	for _, rt := range routes {
		for name, c := range map[string]*client{"session": adminSess, "token": adminTok} {
			if c.token != "" && !strings.HasPrefix(rt.path, "/api/") {
				continue
			}
			if c.token != "" && rt.method != http.MethodGet {
				continue // the state-changing routes ran once already
			}
			res := env.sendJSON(rt.method, rt.path, rt.body, c)
			if res.Code != rt.adminStatus {
				t.Errorf("admin %s %s %s: %d, want %d: %s", name, rt.method, rt.path, res.Code, rt.adminStatus, res.Body)
			}
		}
	}

	// The invitation links need no sign-in.
	for _, path := range []string{"/invite/inv_nope", "/invite/" + strings.Repeat("x", 47)} {
		if w := env.get(path, nil); w.Code != http.StatusNotFound || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
			t.Errorf("GET %s signed out: %d, want the invitation page's 404", path, w.Code)
		}
	}
	if w := env.sendJSON(http.MethodPost, "/api/v1/invitations/inv_nope", `{"password": "x"}`, nil); w.Code != http.StatusNotFound {
		t.Errorf("accept an unknown invitation: %d, want 404", w.Code)
	}
}

// TestInviteAcceptSignIn: an admin invites a user; the link shows a form
// that sets the password once (CSRF, matching fields and strength rules),
// after which the link is dead and the user signs in.
func TestInviteAcceptSignIn(t *testing.T) {
	env, admin := usersEnv(t)
	ctx := context.Background()
	got := mustCreateUser(t, env, admin, `{"name": "grace", "display_name": "Grace Hopper", "role": "editor"}`)
	if got.User.Name != "grace" || got.User.Role != engine.RoleEditor || got.User.Status != userInvited || got.User.HasPassword {
		t.Fatalf("created %+v", got.User)
	}
	inv := got.Invitation
	token := tokenOf(t, inv)
	if inv.URL != "http://example.com"+inv.Path {
		t.Errorf("url %q", inv.URL)
	}
	if d := time.Until(inv.ExpiresAt); d < engine.InvitationTTL-time.Minute || d > engine.InvitationTTL {
		t.Errorf("expires in %s", d)
	}
	if !got.User.InvitationExpiresAt.Equal(inv.ExpiresAt) {
		t.Errorf("user's invitation expiry %v, want %v", got.User.InvitationExpiresAt, inv.ExpiresAt)
	}
	// Only the hash is stored.
	if _, err := env.store.InvitationByTokenHash(ctx, token); !engine.IsNotFound(err) {
		t.Fatalf("the raw token was stored: %v", err)
	}
	stored, err := env.store.InvitationByTokenHash(ctx, engine.HashSecret(token))
	if err != nil || stored.UserID != got.User.ID || stored.CreatedBy != admin.user.ID {
		t.Fatalf("stored invitation %+v, %v", stored, err)
	}
	// Without a password, the user cannot sign in yet.
	if w := env.login("grace", "", ""); w.Code == http.StatusSeeOther {
		t.Fatal("an invited user signed in without a password")
	}

	// The page greets the user.
	w := env.get(inv.Path, nil)
	doc := mustDoc(t, w.Body.Bytes())
	if w.Code != http.StatusOK || !strings.Contains(doc.Find("main").Text(), "Grace Hopper") {
		t.Fatalf("invitation page %d: %s", w.Code, w.Body)
	}
	for _, id := range []string{"invite-password", "invite-confirm"} {
		if doc.Find("input#"+id+"[type=password]").Length() != 1 || doc.Find("label[for="+id+"]").Length() != 1 {
			t.Errorf("field %s missing or unlabelled", id)
		}
	}

	// CSRF: the form's token must match its cookie.
	ck, csrf := env.inviteForm(inv.Path)
	for name, tt := range map[string]struct {
		form    url.Values
		cookies []*http.Cookie
	}{
		"no cookie":      {url.Values{"csrf": {csrf}, "password": {newPassword}, "confirm": {newPassword}}, nil},
		"no field":       {url.Values{"password": {newPassword}, "confirm": {newPassword}}, []*http.Cookie{ck}},
		"forged field":   {url.Values{"csrf": {"login_forged"}, "password": {newPassword}, "confirm": {newPassword}}, []*http.Cookie{ck}},
		"another cookie": {url.Values{"csrf": {csrf}, "password": {newPassword}, "confirm": {newPassword}}, []*http.Cookie{{Name: ck.Name, Value: "login_other"}}},
	} {
		w := env.postForm(inv.Path, tt.form, tt.cookies...)
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "came from another site") {
			t.Errorf("%s: %d, want 403", name, w.Code)
		}
	}

	// Weak passwords are refused with a reason, and the link still works.
	weak := []struct{ password, confirm, want string }{
		{"short pw", "short pw", "too short"},
		{newPassword, newPassword + "x", "two passwords differ"},
		{"aaaaabbbbbaaaaa", "aaaaabbbbbaaaaa", "at least 5 different"},
		{"Password123", "Password123", "most common"},
		{"grace-is-my-name", "grace-is-my-name", "user name"},
		{"tab\tinside password", "tab\tinside password", "control characters"},
		{strings.Repeat("long password ", 80), strings.Repeat("long password ", 80), "too long"},
	}
	for _, tt := range weak {
		w := env.acceptForm(inv.Path, tt.password, tt.confirm)
		if w.Code != http.StatusBadRequest {
			t.Fatalf("%q: %d, want 400", tt.want, w.Code)
		}
		doc := mustDoc(t, w.Body.Bytes())
		if msg := doc.Find("#invite-error").Text(); !strings.Contains(msg, tt.want) {
			t.Errorf("error %q, want %q", msg, tt.want)
		}
		if doc.Find("form[method=post] input[name=csrf]").Length() != 1 {
			t.Error("the form is not shown again")
		}
	}
	if u, _ := env.store.UserByName(ctx, "grace"); u.PasswordHash != "" {
		t.Fatal("a refused password was stored")
	}

	// A good password: done, and the link is dead.
	w = env.acceptForm(inv.Path, newPassword, newPassword)
	if w.Code != http.StatusOK || mustDoc(t, w.Body.Bytes()).Find("#invite-done").Length() != 1 {
		t.Fatalf("accept: %d %s", w.Code, w.Body)
	}
	if w := env.get(inv.Path, nil); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "used already") {
		t.Fatalf("the used link: %d", w.Code)
	}
	if w := env.sendJSON(http.MethodPost, "/api/v1/invitations/"+token, `{"password": "another good passphrase"}`, nil); w.Code != http.StatusConflict {
		t.Fatalf("the used link over the API: %d %s", w.Code, w.Body)
	}
	u, _ := env.store.UserByName(ctx, "grace")
	if !password.Verify(u.PasswordHash, newPassword) {
		t.Fatal("the password was not set")
	}

	// Grace signs in; the users page shows her active, with the time.
	if w := env.login("grace", newPassword, ""); w.Code != http.StatusSeeOther || cookieFrom(w, "cs_session") == nil {
		t.Fatalf("sign in: %d %s", w.Code, w.Body)
	}
	page := mustDoc(t, env.get("/users", admin).Body.Bytes())
	row := page.Find(fmt.Sprintf(`tr.user[data-user-id=%q]`, u.ID))
	if row.Find(`[data-status=active]`).Length() != 1 || row.Find("td time").Length() != 2 {
		t.Fatalf("grace's row: %s", row.Text())
	}

	// The token never reaches the log.
	if logs := env.logs.String(); strings.Contains(logs, token) || strings.Contains(logs, newPassword) {
		t.Fatal("an invitation token or a password reached the log")
	}
}

// TestInvitationAPI: accepting over the API, a new link replacing the old
// one, expiry, disabled users, and password resets that end the sessions.
func TestInvitationAPI(t *testing.T) {
	env, admin := usersEnv(t)
	ctx := context.Background()
	got := mustCreateUser(t, env, admin, `{"name": "linus"}`)
	if got.User.Role != engine.RoleViewer {
		t.Fatalf("default role %s, want viewer", got.User.Role)
	}
	first := tokenOf(t, got.Invitation)

	// A new link replaces the first.
	w := env.sendJSON(http.MethodPost, "/api/v1/users/"+got.User.ID+"/invite", "", admin)
	if w.Code != http.StatusCreated {
		t.Fatalf("new link: %d %s", w.Code, w.Body)
	}
	second := tokenOf(t, decodeStrict[userResponse](t, w.Body.Bytes()).Invitation)
	accept := func(token, body string) *httptest.ResponseRecorder {
		return env.sendJSON(http.MethodPost, "/api/v1/invitations/"+token, body, nil)
	}
	if w := accept(first, `{"password": "`+newPassword+`"}`); w.Code != http.StatusNotFound {
		t.Fatalf("the replaced link: %d %s", w.Code, w.Body)
	}
	bad := []struct {
		body string
		code int
		want string
	}{
		{`{"password": "short"}`, http.StatusBadRequest, "too short"},
		{`{"password": 12}`, http.StatusBadRequest, `"password"`},
		{`{"password": "` + newPassword + `", "name": "root"}`, http.StatusBadRequest, "Unknown field"},
		{``, http.StatusBadRequest, "empty"},
	}
	for _, tt := range bad {
		w := accept(second, tt.body)
		if code, msg := errorOf(t, w.Body.Bytes()); w.Code != tt.code || !strings.Contains(msg, tt.want) {
			t.Errorf("%s: %d %s %q, want %d %q", tt.body, w.Code, code, msg, tt.code, tt.want)
		}
	}

	// Expired: the clock moves past the week.
	env.srv.now = func() time.Time { return time.Now().Add(engine.InvitationTTL + time.Minute) }
	if w := accept(second, `{"password": "`+newPassword+`"}`); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "expired") {
		t.Fatalf("expired link: %d %s", w.Code, w.Body)
	}
	// (The admin's session has expired on that clock: a token does not.)
	if users := decodeStrict[usersResponse](t, env.get("/api/v1/users", env.MustToken(admin.user)).Body.Bytes()); !slices.ContainsFunc(users.Users, func(u userJSON) bool {
		return u.Name == "linus" && u.Status == userInvitationExpired && u.InvitationExpiresAt.IsZero()
	}) {
		t.Fatalf("an expired invitation is not shown as such: %+v", users)
	}
	env.srv.now = time.Now

	// A disabled user's link cannot be used, nor can one be made.
	patch := func(id, body string) *httptest.ResponseRecorder {
		return env.sendJSON(http.MethodPatch, "/api/v1/users/"+id, body, admin)
	}
	if w := patch(got.User.ID, `{"disabled": true}`); w.Code != http.StatusOK {
		t.Fatal(w.Code, w.Body)
	}
	if w := accept(second, `{"password": "`+newPassword+`"}`); w.Code != http.StatusForbidden {
		t.Fatalf("a disabled user's link: %d %s", w.Code, w.Body)
	}
	if w := env.sendJSON(http.MethodPost, "/api/v1/users/"+got.User.ID+"/invite", "", admin); w.Code != http.StatusConflict {
		t.Fatalf("a link for a disabled user: %d %s", w.Code, w.Body)
	}
	if w := patch(got.User.ID, `{"disabled": false}`); w.Code != http.StatusOK {
		t.Fatal(w.Code, w.Body)
	}
	w = accept(second, `{"password": "`+newPassword+`"}`)
	res := decodeStrict[acceptInvitationResponse](t, w.Body.Bytes())
	if w.Code != http.StatusOK || res.User.Name != "linus" || res.SignIn != "/login" {
		t.Fatalf("accept: %d %s", w.Code, w.Body)
	}

	// A password reset link for a signed-in user ends their sessions.
	bob := env.MustUser("bob", engine.RoleEditor)
	bobSess := env.MustSession(bob)
	w = env.sendJSON(http.MethodPost, "/api/v1/users/"+bob.ID+"/invite", "", admin)
	reset := decodeStrict[userResponse](t, w.Body.Bytes())
	if reset.User.Status != userActive || !reset.User.HasPassword {
		t.Fatalf("a user with a reset link: %+v", reset.User)
	}
	page := mustDoc(t, env.get(reset.Invitation.Path, nil).Body.Bytes())
	if !strings.Contains(page.Find("h1").Text(), "new password") {
		t.Errorf("reset page title %q", page.Find("h1").Text())
	}
	if w := env.acceptForm(reset.Invitation.Path, "a fresh new passphrase", "a fresh new passphrase"); w.Code != http.StatusOK {
		t.Fatalf("reset: %d %s", w.Code, w.Body)
	}
	if w := env.get("/playground", bobSess); w.Code != http.StatusFound {
		t.Fatalf("bob's old session after the reset: %d", w.Code)
	}
	if w := env.login("bob", testPassword, ""); w.Code != http.StatusUnauthorized {
		t.Fatalf("old password after the reset: %d", w.Code)
	}
	if w := env.login("bob", "a fresh new passphrase", ""); w.Code != http.StatusSeeOther {
		t.Fatalf("new password: %d", w.Code)
	}
	_ = ctx
}

// TestDisableKillsSessionsAndTokens: disabling a user through the API ends
// the session they opened before at once (a redirect on the page, 401 on
// the API), refuses their tokens and their password; enabling brings the
// tokens back, not the sessions.
func TestDisableKillsSessionsAndTokens(t *testing.T) {
	env, admin := usersEnv(t)
	ctx := context.Background()
	env.MustAssistant("helper", true)
	bob := env.MustUser("bob", engine.RoleEditor)
	sess := env.MustSession(bob)
	tok := env.MustToken(bob)
	if w := env.get("/playground", sess); w.Code != http.StatusOK {
		t.Fatalf("before: playground %d", w.Code)
	}
	if w := env.get("/api/v1/assistants", tok); w.Code != http.StatusOK {
		t.Fatalf("before: token %d", w.Code)
	}

	w := env.sendJSON(http.MethodPatch, "/api/v1/users/"+bob.ID, `{"disabled": true}`, admin)
	got := decodeStrict[userResponse](t, w.Body.Bytes())
	if w.Code != http.StatusOK || !got.User.Disabled || got.User.Status != userDisabled {
		t.Fatalf("disable: %d %s", w.Code, w.Body)
	}
	if w := env.get("/playground", sess); w.Code != http.StatusFound || !strings.HasPrefix(w.Header().Get("Location"), "/login") {
		t.Fatalf("disabled user's page: %d", w.Code)
	}
	for name, c := range map[string]*client{"session": sess, "token": tok} {
		if w := env.get("/api/v1/assistants", c); w.Code != http.StatusUnauthorized {
			t.Fatalf("disabled user's %s on the API: %d", name, w.Code)
		}
	}
	if _, err := env.store.SessionByTokenHash(ctx, engine.HashSecret(sess.session.Value)); !engine.IsNotFound(err) {
		t.Fatalf("the session is still stored: %v", err)
	}
	if w := env.login("bob", testPassword, ""); w.Code != http.StatusUnauthorized {
		t.Fatalf("disabled user signs in: %d", w.Code)
	}
	page := mustDoc(t, env.get("/users/"+bob.ID, admin).Body.Bytes())
	if page.Find(`[data-status=disabled]`).Length() != 1 || page.Find(`button[data-set-disabled=false]`).Length() != 1 {
		t.Fatal("the user page does not show the account disabled with an Enable button")
	}

	w = env.sendJSON(http.MethodPatch, "/api/v1/users/"+bob.ID, `{"disabled": false}`, admin)
	if w.Code != http.StatusOK {
		t.Fatalf("enable: %d %s", w.Code, w.Body)
	}
	if w := env.get("/api/v1/assistants", tok); w.Code != http.StatusOK {
		t.Fatalf("token after enabling: %d", w.Code)
	}
	if w := env.get("/playground", sess); w.Code != http.StatusFound {
		t.Fatalf("the old session came back after enabling: %d", w.Code)
	}
}

// TestLastAdminProtection: the last enabled admin can be neither demoted
// nor disabled, by themselves or anyone; a disabled admin does not count.
func TestLastAdminProtection(t *testing.T) {
	env, ada := usersEnv(t)
	ctx := context.Background()
	dis := env.MustUser("dis", engine.RoleAdmin)
	dis.Disabled = true
	if err := env.store.UpdateUser(ctx, dis); err != nil {
		t.Fatal(err)
	}
	patch := func(c *client, id, body string) *httptest.ResponseRecorder {
		return env.sendJSON(http.MethodPatch, "/api/v1/users/"+id, body, c)
	}
	for _, body := range []string{`{"role": "viewer"}`, `{"role": "editor"}`, `{"disabled": true}`, `{"role": "viewer", "disabled": true}`} {
		w := patch(ada, ada.user.ID, body)
		if code, msg := errorOf(t, w.Body.Bytes()); w.Code != http.StatusConflict || !strings.Contains(msg, "You are the last enabled admin") {
			t.Errorf("%s: %d %s %q", body, w.Code, code, msg)
		}
	}
	if u, _ := env.store.UserByID(ctx, ada.user.ID); u.Role != engine.RoleAdmin || u.Disabled {
		t.Fatalf("ada was changed: %+v", u)
	}
	// Changes that keep the admin are fine.
	if w := patch(ada, ada.user.ID, `{"display_name": "Ada L.", "role": "admin", "disabled": false}`); w.Code != http.StatusOK {
		t.Fatalf("harmless change: %d %s", w.Code, w.Body)
	}
	// Enabling the other admin allows the change; then that one is last.
	if w := patch(ada, dis.ID, `{"disabled": false}`); w.Code != http.StatusOK {
		t.Fatal(w.Code, w.Body)
	}
	if w := patch(ada, ada.user.ID, `{"role": "editor"}`); w.Code != http.StatusOK {
		t.Fatalf("demote self with another admin: %d %s", w.Code, w.Body)
	}
	other := env.MustToken(dis)
	w := patch(other, dis.ID, `{"disabled": true}`)
	if _, msg := errorOf(t, w.Body.Bytes()); w.Code != http.StatusConflict || !strings.Contains(msg, "last enabled admin") {
		t.Fatalf("the last admin disables themselves with a token: %d %s", w.Code, w.Body)
	}
	// ada, now an editor, may not change anyone.
	if w := patch(ada, dis.ID, `{"role": "viewer"}`); w.Code != http.StatusForbidden {
		t.Fatalf("editor demotes the admin: %d", w.Code)
	}
}

// TestUserValidation: bad names, roles, display names and bodies are 400
// with a reason; a taken name is 409; unknown users are 404.
func TestUserValidation(t *testing.T) {
	env, admin := usersEnv(t)
	env.MustUser("taken", engine.RoleViewer)
	creates := []struct {
		body string
		code int
		want string
	}{
		{`{"name": ""}`, http.StatusBadRequest, "needs a name"},
		{`{"name": "two words"}`, http.StatusBadRequest, "no spaces"},
		{`{"name": "<script>alert(1)</script>"}`, http.StatusBadRequest, "letters, digits"},
		{`{"name": "` + strings.Repeat("n", 65) + `"}`, http.StatusBadRequest, "at most 64"},
		{`{"name": "ok", "role": "root"}`, http.StatusBadRequest, "Role \"root\" is unknown"},
		{`{"name": "ok", "display_name": "` + strings.Repeat("d", 101) + `"}`, http.StatusBadRequest, "at most 100"},
		{`{"name": "ok", "display_name": "a\nb"}`, http.StatusBadRequest, "control characters"},
		{`{"name": "ok", "password": "x"}`, http.StatusBadRequest, "Unknown field"},
		{`{"name": "TAKEN"}`, http.StatusConflict, "already exists"},
		{`[1]`, http.StatusBadRequest, "JSON object"},
	}
	for _, tt := range creates {
		w := env.sendJSON(http.MethodPost, "/api/v1/users", tt.body, admin)
		if _, msg := errorOf(t, w.Body.Bytes()); w.Code != tt.code || !strings.Contains(msg, tt.want) {
			t.Errorf("create %s: %d %q, want %d %q", tt.body, w.Code, msg, tt.code, tt.want)
		}
	}
	target := env.MustUser("tim", engine.RoleViewer)
	updates := []struct {
		id, body string
		code     int
		want     string
	}{
		{target.ID, `{}`, http.StatusBadRequest, "Nothing to change"},
		{target.ID, `{"role": "god"}`, http.StatusBadRequest, "unknown"},
		{target.ID, `{"name": "renamed"}`, http.StatusBadRequest, "Unknown field"},
		{target.ID, `{"disabled": "yes"}`, http.StatusBadRequest, `"disabled"`},
		{"no-such-user", `{"role": "viewer"}`, http.StatusNotFound, "no user with id"},
	}
	for _, tt := range updates {
		w := env.sendJSON(http.MethodPatch, "/api/v1/users/"+tt.id, tt.body, admin)
		if _, msg := errorOf(t, w.Body.Bytes()); w.Code != tt.code || !strings.Contains(msg, tt.want) {
			t.Errorf("update %s: %d %q, want %d %q", tt.body, w.Code, msg, tt.code, tt.want)
		}
	}
	for _, path := range []string{"/api/v1/users/no-such-user", "/api/v1/users/no-such-user/identities"} {
		if w := env.get(path, admin); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d", path, w.Code)
		}
	}
	if w := env.sendJSON(http.MethodPost, "/api/v1/users/no-such-user/invite", "", admin); w.Code != http.StatusNotFound {
		t.Errorf("invite an unknown user: %d", w.Code)
	}
	if w := env.get("/users/no-such-user", admin); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "no user with id") {
		t.Errorf("page of an unknown user: %d", w.Code)
	}
	// The role change applies at once: tim's session now reaches admin pages.
	tim := env.MustSession(target)
	if w := env.get("/users", tim); w.Code != http.StatusForbidden {
		t.Fatalf("viewer on /users: %d", w.Code)
	}
	if w := env.sendJSON(http.MethodPatch, "/api/v1/users/"+target.ID, `{"role": "admin"}`, admin); w.Code != http.StatusOK {
		t.Fatal(w.Code, w.Body)
	}
	if w := env.get("/users", tim); w.Code != http.StatusOK {
		t.Fatalf("promoted user on /users: %d", w.Code)
	}
}

// TestIdentities: link, list and unlink chat identities, with clear
// errors for unknown users, bad platforms and malformed ids; a linked chat
// user counts as the console user.
func TestIdentities(t *testing.T) {
	env, admin := usersEnv(t)
	ctx := context.Background()
	ben := env.MustUser("ben", engine.RoleAdmin)
	cy := env.MustUser("cy", engine.RoleViewer)
	base := "/api/v1/users/" + ben.ID + "/identities"
	link := func(path, body string) *httptest.ResponseRecorder {
		return env.sendJSON(http.MethodPost, path, body, admin)
	}
	ok := []struct {
		body string
		code int
	}{
		{`{"platform": "slack", "chat_user_id": "U012AB3CD"}`, http.StatusCreated},
		{`{"platform": "slack", "chat_user_id": " U012AB3CD "}`, http.StatusOK}, // the same link again
		{`{"platform": "discord", "chat_user_id": "123456789012345678"}`, http.StatusCreated},
		{`{"platform": "mattermost", "chat_user_id": "k1y6q8c9ojbp3ktqf1rzgyyn4a"}`, http.StatusCreated},
		{`{"platform": "slack", "chat_user_id": "W0ENTERPRISE"}`, http.StatusCreated},
	}
	for _, tt := range ok {
		w := link(base, tt.body)
		if w.Code != tt.code {
			t.Fatalf("link %s: %d %s, want %d", tt.body, w.Code, w.Body, tt.code)
		}
		if got := decodeStrict[identityResponse](t, w.Body.Bytes()); got.Identity.ChatUserID == "" || got.Identity.CreatedAt.IsZero() {
			t.Fatalf("link answer %s", w.Body)
		}
	}
	bad := []struct {
		path, body string
		code       int
		want       string
	}{
		{"/api/v1/users/no-such-user/identities", `{"platform": "slack", "chat_user_id": "U1234"}`, http.StatusNotFound, "no user with id"},
		{base, `{"platform": "irc", "chat_user_id": "U1234"}`, http.StatusBadRequest, `Platform "irc" cannot be linked: use slack, discord or mattermost`},
		{base, `{"platform": "console", "chat_user_id": "U1234"}`, http.StatusBadRequest, "cannot be linked"},
		{base, `{"chat_user_id": "U1234"}`, http.StatusBadRequest, "Say which chat platform"},
		{base, `{"platform": "slack"}`, http.StatusBadRequest, "Give the Slack user's id"},
		{base, `{"platform": "slack", "chat_user_id": "@ben"}`, http.StatusBadRequest, "Copy member ID"},
		{base, `{"platform": "slack", "chat_user_id": "<script>alert(1)</script>"}`, http.StatusBadRequest, "is not a Slack user id"},
		{base, `{"platform": "discord", "chat_user_id": "ben#1234"}`, http.StatusBadRequest, "Copy User ID"},
		{base, `{"platform": "mattermost", "chat_user_id": "ben"}`, http.StatusBadRequest, "26 lowercase"},
		{base, `{"platform": "slack", "chat_user_id": "U1", "extra": 1}`, http.StatusBadRequest, "Unknown field"},
		{"/api/v1/users/" + cy.ID + "/identities", `{"platform": "slack", "chat_user_id": "U012AB3CD"}`, http.StatusConflict, "already linked to ben: unlink it there first"},
	}
	for _, tt := range bad {
		w := link(tt.path, tt.body)
		if _, msg := errorOf(t, w.Body.Bytes()); w.Code != tt.code || !strings.Contains(msg, tt.want) {
			t.Errorf("link %s: %d %q, want %d %q", tt.body, w.Code, msg, tt.code, tt.want)
		}
	}
	w := env.get(base, admin)
	list := decodeStrict[identitiesResponse](t, w.Body.Bytes())
	var got []string
	for _, id := range list.Identities {
		got = append(got, string(id.Platform)+":"+id.ChatUserID)
	}
	if want := []string{"discord:123456789012345678", "mattermost:k1y6q8c9ojbp3ktqf1rzgyyn4a", "slack:U012AB3CD", "slack:W0ENTERPRISE"}; !slices.Equal(got, want) {
		t.Fatalf("identities %v, want %v", got, want)
	}
	// The chat user counts as ben: an admin in the chat.
	if u, err := env.store.UserByIdentity(ctx, engine.PlatformSlack, "U012AB3CD"); err != nil || u.ID != ben.ID {
		t.Fatalf("UserByIdentity = %v, %v", u, err)
	}
	// The users list and the user page show them.
	doc := mustDoc(t, env.get("/users", admin).Body.Bytes())
	if n := doc.Find(fmt.Sprintf(`tr.user[data-user-id=%q] .identity`, ben.ID)).Length(); n != 4 {
		t.Errorf("users page lists %d identities of ben", n)
	}
	doc = mustDoc(t, env.get("/users/"+ben.ID, admin).Body.Bytes())
	if n := doc.Find("table#identities tr.identity button[data-unlink]").Length(); n != 4 {
		t.Errorf("user page lists %d identities with Unlink", n)
	}

	unlink := func(userID, platform, chatID string) *httptest.ResponseRecorder {
		return env.sendJSON(http.MethodDelete, "/api/v1/users/"+userID+"/identities/"+platform+"/"+chatID, "", admin)
	}
	if w := unlink(cy.ID, "slack", "U012AB3CD"); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "not linked to cy") {
		t.Fatalf("unlink through another user: %d %s", w.Code, w.Body)
	}
	if w := unlink(ben.ID, "slack", "U012AB3CD"); w.Code != http.StatusNoContent {
		t.Fatalf("unlink: %d %s", w.Code, w.Body)
	}
	if w := unlink(ben.ID, "slack", "U012AB3CD"); w.Code != http.StatusNotFound {
		t.Fatalf("unlink again: %d", w.Code)
	}
	if w := unlink("no-such-user", "slack", "U012AB3CD"); w.Code != http.StatusNotFound {
		t.Fatalf("unlink for an unknown user: %d", w.Code)
	}
	if _, err := env.store.UserByIdentity(ctx, engine.PlatformSlack, "U012AB3CD"); !engine.IsNotFound(err) {
		t.Fatalf("still linked: %v", err)
	}
	// Now cy may have it.
	if w := link("/api/v1/users/"+cy.ID+"/identities", `{"platform": "slack", "chat_user_id": "U012AB3CD"}`); w.Code != http.StatusCreated {
		t.Fatalf("link to cy: %d %s", w.Code, w.Body)
	}
	doc = mustDoc(t, env.get("/users/"+env.MustUser("nolinks", engine.RoleViewer).ID, admin).Body.Bytes())
	if doc.Find("#identities-empty:not([hidden])").Length() != 1 || doc.Find("#identities-wrap[hidden]").Length() != 1 {
		t.Error("no empty state for a user without identities")
	}
}

// TestUsersPages: the list and a user's page, their forms, labels,
// scripts, navigation and empty or error states.
func TestUsersPages(t *testing.T) {
	env, admin := usersEnv(t)
	ctx := context.Background()
	mustCreateUser(t, env, admin, `{"name": "ivy", "display_name": "Ivy I.", "role": "editor"}`)
	if err := env.store.RecordSignIn(ctx, admin.user.ID, time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	w := env.get("/users", admin)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	doc := mustDoc(t, w.Body.Bytes())
	if doc.Find(`a[href="/users"][aria-current=page]`).Length() != 1 {
		t.Error("the Users link is not marked current")
	}
	rows := doc.Find("table#users tbody tr.user")
	if rows.Length() != 2 {
		t.Fatalf("%d rows", rows.Length())
	}
	ada := doc.Find(fmt.Sprintf(`tr.user[data-user-id=%q]`, admin.user.ID))
	if ada.Find(`a.user-name[href="/users/`+admin.user.ID+`"]`).Text() != "ada" || !strings.Contains(ada.Text(), "4 Mar 2026 05:06 UTC") ||
		ada.Find(`[data-role=admin]`).Length() != 1 || ada.Find(`[data-status=active]`).Length() != 1 {
		t.Errorf("ada's row: %q", ada.Text())
	}
	ivy := rows.FilterFunction(func(_ int, s *goquery.Selection) bool { return strings.Contains(s.Text(), "ivy") })
	if ivy.Find(`[data-status=invited]`).Length() != 1 || !strings.Contains(ivy.Text(), "never") || !strings.Contains(ivy.Text(), "Ivy I.") {
		t.Errorf("ivy's row: %q", ivy.Text())
	}
	form := doc.Find("form#invite-form")
	for _, id := range []string{"invite-name", "invite-display-name", "invite-role"} {
		if form.Find("#"+id).Length() != 1 || form.Find("label[for="+id+"]").Length() != 1 {
			t.Errorf("invite field %s missing or unlabelled", id)
		}
	}
	if form.Find("option").Length() != 3 {
		t.Error("the role choice does not offer three roles")
	}
	mustOwnScripts(t, w.Body.Bytes(), "users.js")

	// A user's page.
	w = env.get("/users/"+admin.user.ID, admin)
	doc = mustDoc(t, w.Body.Bytes())
	if w.Code != http.StatusOK || doc.Find("h1").Text() != "ada" || !strings.Contains(doc.Find(".user-facts").Text(), "(you)") {
		t.Fatalf("user page %d: %s", w.Code, doc.Find("main").Text())
	}
	if doc.Find(`#user-role option[selected][value=admin]`).Length() != 1 {
		t.Error("the current role is not selected")
	}
	for _, id := range []string{"user-display-name", "user-role", "identity-platform", "identity-chat-user-id"} {
		if doc.Find("#"+id).Length() != 1 || doc.Find("label[for="+id+"]").Length() != 1 {
			t.Errorf("field %s missing or unlabelled", id)
		}
	}
	if doc.Find(`button[data-set-disabled=true]`).Length() != 1 || doc.Find("#new-link").Length() != 1 {
		t.Error("no Disable or new link button")
	}
	if doc.Find(`#identity-platform option`).Length() != 3 {
		t.Error("the platforms are not slack, discord and mattermost")
	}
	mustOwnScripts(t, w.Body.Bytes(), "users.js")
}

// mustOwnScripts checks that a page loads only the console's own scripts
// (app.js and the page's, in order) and has no inline script or style
// attribute.
func mustOwnScripts(t *testing.T, body []byte, pages ...string) {
	t.Helper()
	doc := mustDoc(t, body)
	var srcs []string
	doc.Find("script").Each(func(_ int, s *goquery.Selection) {
		src, _ := s.Attr("src")
		if !strings.HasPrefix(src, "/static/") || strings.TrimSpace(s.Text()) != "" {
			t.Errorf("unexpected script %q %q", src, s.Text())
		}
		srcs = append(srcs, src)
	})
	ok := len(srcs) == len(pages)+1
	for i, page := range pages {
		ok = ok && strings.HasPrefix(srcs[i+1], "/static/"+page+"?v=")
	}
	if !ok {
		t.Errorf("scripts %v, want app.js and %v", srcs, pages)
	}
	if n := doc.Find("[style]").Length(); n != 0 {
		t.Errorf("%d inline style attributes (the CSP forbids them)", n)
	}
	if n := doc.Find("[onclick], [onload], [onerror], [onsubmit]").Length(); n != 0 {
		t.Errorf("%d inline event handlers", n)
	}
}

// TestUsersXSS: payloads in user names (stored by other means than the
// API, which refuses them), display names, chat identities and token
// names are shown as text on every page of the area.
func TestUsersXSS(t *testing.T) {
	env, admin := usersEnv(t)
	ctx := context.Background()
	payloads := []string{`<script>alert(1)</script>`, `"><img src=x onerror=alert(2)>`, `'-alert(3)-'`, `</textarea><svg onload=alert(4)>`}
	var users []*engine.User
	for i, p := range payloads {
		u := &engine.User{Name: fmt.Sprintf("x%d%s", i, p), DisplayName: p, Role: engine.RoleViewer, PasswordHash: mustPasswordHash(t)}
		if err := env.store.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := env.store.LinkIdentity(ctx, &engine.Identity{Platform: engine.PlatformSlack, ChatUserID: p, UserID: u.ID}); err != nil {
			t.Fatal(err)
		}
		token, hash := engine.NewSecret("cs_")
		_ = token
		if err := env.store.CreateAPIToken(ctx, &engine.APIToken{UserID: u.ID, Name: p, TokenHash: hash}); err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	// Through the API: display names and token names may hold anything.
	for _, p := range payloads {
		w := env.sendJSON(http.MethodPatch, "/api/v1/users/"+admin.user.ID, fmt.Sprintf(`{"display_name": %q}`, "ada "+p), admin)
		if w.Code != http.StatusOK {
			t.Fatalf("display name %q: %d %s", p, w.Code, w.Body)
		}
		if w := env.sendJSON(http.MethodPost, "/api/v1/tokens", fmt.Sprintf(`{"name": %q}`, p), admin); w.Code != http.StatusCreated {
			t.Fatalf("token name %q: %d %s", p, w.Code, w.Body)
		}
	}
	inv := mustCreateUser(t, env, admin, fmt.Sprintf(`{"name": "invitee", "display_name": %q}`, payloads[1]))
	pages := []string{"/users", "/settings", "/users/" + admin.user.ID}
	for _, u := range users {
		pages = append(pages, "/users/"+u.ID)
	}
	for _, path := range pages {
		w := env.get(path, admin)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d", path, w.Code)
		}
		checkNoPayload(t, path, w.Body.Bytes(), payloads)
		if path == "/settings" {
			mustOwnScripts(t, w.Body.Bytes(), "settings.js", "providers.js")
		} else {
			mustOwnScripts(t, w.Body.Bytes(), "users.js")
		}
	}
	w := env.get(inv.Invitation.Path, nil)
	checkNoPayload(t, "invitation page", w.Body.Bytes(), payloads)
	if !strings.Contains(mustDoc(t, w.Body.Bytes()).Find("main").Text(), payloads[1]) {
		t.Error("the invitation page does not show the display name as text")
	}
	// The payloads are there, as text.
	doc := mustDoc(t, env.get("/users", admin).Body.Bytes())
	if !strings.Contains(doc.Find("table#users").Text(), payloads[0]) {
		t.Error("the users table does not show the payload as text")
	}
}

// checkNoPayload fails when a payload reached a page as markup.
func checkNoPayload(t *testing.T, what string, body []byte, payloads []string) {
	t.Helper()
	s := string(body)
	for _, p := range payloads {
		if strings.Contains(s, p) {
			t.Errorf("%s: payload %q reached the page unescaped", what, p)
		}
	}
	doc := mustDoc(t, body)
	if n := doc.Find("img, svg[onload], [onerror], [onload]").Length(); n != 0 {
		t.Errorf("%s: %d elements from payloads", what, n)
	}
}

// TestUsersCSRF: state-changing calls made with a session need the page's
// X-CSRF-Token header; the pages' forms are driven by scripts that send it.
func TestUsersCSRF(t *testing.T) {
	env, admin := usersEnv(t)
	ctx := context.Background()
	bob := env.MustUser("bob", engine.RoleViewer)
	tokens, _ := env.store.ListAPITokens(ctx, env.MustToken(bob).user.ID)
	noCSRF := &client{user: admin.user, session: admin.session}
	forged := &client{user: admin.user, session: admin.session, csrf: "forged"}
	calls := []struct{ method, path, body string }{
		{http.MethodPost, "/api/v1/users", `{"name": "mallory", "role": "admin"}`},
		{http.MethodPatch, "/api/v1/users/" + bob.ID, `{"role": "admin"}`},
		{http.MethodPost, "/api/v1/users/" + bob.ID + "/invite", ``},
		{http.MethodPost, "/api/v1/users/" + bob.ID + "/identities", `{"platform": "slack", "chat_user_id": "U0MALLORY"}`},
		{http.MethodDelete, "/api/v1/users/" + bob.ID + "/identities/slack/U0MALLORY", ``},
		{http.MethodPost, "/api/v1/tokens", `{"name": "stolen"}`},
		{http.MethodDelete, "/api/v1/tokens/" + tokens[0].ID, ``},
	}
	for _, c := range calls {
		for name, cl := range map[string]*client{"no header": noCSRF, "forged header": forged} {
			if w := env.sendJSON(c.method, c.path, c.body, cl); w.Code != http.StatusUnauthorized {
				t.Errorf("%s %s with %s: %d, want 401", c.method, c.path, name, w.Code)
			}
		}
		// A cross-site browser request is refused before anything else.
		r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
		r.Header.Set("Sec-Fetch-Site", "cross-site")
		admin.apply(r)
		if w := env.serve(r); w.Code != http.StatusForbidden {
			t.Errorf("%s %s cross-site: %d, want 403", c.method, c.path, w.Code)
		}
	}
	if _, err := env.store.UserByName(ctx, "mallory"); !engine.IsNotFound(err) {
		t.Fatal("a forged request created a user")
	}
	if u, _ := env.store.UserByID(ctx, bob.ID); u.Role != engine.RoleViewer {
		t.Fatal("a forged request changed a role")
	}
	if list, _ := env.store.ListAPITokens(ctx, ""); len(list) != 1 {
		t.Fatalf("a forged request changed the tokens: %d", len(list))
	}
	// The pages carry the token for their scripts and post no form without it.
	for _, path := range []string{"/users", "/users/" + bob.ID, "/settings"} {
		doc := mustDoc(t, env.get(path, admin).Body.Bytes())
		if v, _ := doc.Find(`meta[name=csrf-token]`).Attr("content"); v != admin.csrf {
			t.Errorf("%s: csrf meta %q", path, v)
		}
		doc.Find("form").Each(func(_ int, f *goquery.Selection) {
			method, _ := f.Attr("method")
			if strings.EqualFold(method, "post") && f.Find("input[name=csrf]").Length() != 1 {
				t.Errorf("%s: a POST form without a CSRF field", path)
			}
		})
	}
}

// TestSessionFixation: signing in issues a new session id, whatever
// session cookie the browser carried before (one planted by an attacker,
// or the user's own), and the planted one does not become the user's.
func TestSessionFixation(t *testing.T) {
	env := mustEnv(t, envOptions{})
	ctx := context.Background()
	alice := env.MustUser("alice", engine.RoleViewer)
	mallory := env.MustSession(env.MustUser("mallory", engine.RoleViewer))
	for name, planted := range map[string]*http.Cookie{
		"made-up id":         {Name: "cs_session", Value: "sess_planted-by-the-attacker"},
		"attacker's session": mallory.session,
	} {
		t.Run(name, func(t *testing.T) {
			ck, csrf := env.loginForm("")
			w := env.postForm("/login", url.Values{"name": {"alice"}, "password": {testPassword}, "csrf": {csrf}}, ck, planted)
			if w.Code != http.StatusSeeOther {
				t.Fatalf("sign in: %d", w.Code)
			}
			sess := cookieFrom(w, "cs_session")
			if sess == nil || sess.Value == planted.Value {
				t.Fatalf("the session id was not renewed: %+v", sess)
			}
			s, err := env.store.SessionByTokenHash(ctx, engine.HashSecret(sess.Value))
			if err != nil || s.UserID != alice.ID {
				t.Fatalf("new session %+v, %v", s, err)
			}
			if s, err := env.store.SessionByTokenHash(ctx, engine.HashSecret(planted.Value)); err == nil && s.UserID == alice.ID {
				t.Fatal("the planted session now belongs to alice")
			}
		})
	}
	// Signing in twice gives two different ids.
	a, b := cookieFrom(env.login("alice", testPassword, ""), "cs_session"), cookieFrom(env.login("alice", testPassword, ""), "cs_session")
	if a == nil || b == nil || a.Value == b.Value {
		t.Fatal("two sign-ins share a session id")
	}
}

// TestLastSignInRecorded: signing in records the time the users page shows.
func TestLastSignInRecorded(t *testing.T) {
	env, admin := usersEnv(t)
	u := env.MustUser("sam", engine.RoleViewer)
	before := time.Now().Add(-time.Second)
	if w := env.login("sam", testPassword, ""); w.Code != http.StatusSeeOther {
		t.Fatal(w.Code)
	}
	got := decodeStrict[userResponse](t, env.get("/api/v1/users/"+u.ID, admin).Body.Bytes())
	if got.User.LastSignInAt.Before(before) {
		t.Fatalf("last sign-in %v", got.User.LastSignInAt)
	}
}

// TestUserJSONShape: the documented fields of a user, and never the
// password hash.
func TestUserJSONShape(t *testing.T) {
	env, admin := usersEnv(t)
	w := env.get("/api/v1/users", admin)
	body := w.Body.String()
	if strings.Contains(body, "pbkdf2") || strings.Contains(body, "password_hash") {
		t.Fatal("a password hash reached the API")
	}
	v := decodeJSON(t, w.Body.Bytes())
	users, _ := v["users"].([]any)
	if len(users) != 1 {
		t.Fatalf("users %v", v)
	}
	u := users[0].(map[string]any)
	for _, k := range []string{"id", "name", "display_name", "role", "disabled", "status", "has_password", "created_at", "updated_at", "identities"} {
		if _, ok := u[k]; !ok {
			t.Errorf("field %q missing: %v", k, u)
		}
	}
}

// TestUsersStylesUseTokens: the area's stylesheets use only the tokens of
// app.css (so both themes work) and no literal colour; the danger button's
// text passes AA on the backgrounds it sits on in both themes.
func TestUsersStylesUseTokens(t *testing.T) {
	light, dark := themeTokens(t)
	for _, name := range []string{"static/users.css", "static/settings.css"} {
		css, err := staticFS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`var\(--([a-z0-9-]+)\)`).FindAllStringSubmatch(string(css), -1) {
			if _, ok := light[m[1]]; !ok && !slices.Contains([]string{"gap", "radius", "font", "mono"}, m[1]) {
				t.Errorf("%s: var(--%s) is not a token of app.css", name, m[1])
			}
		}
		if lit := regexp.MustCompile(`#[0-9a-fA-F]{3,6}\b|rgba?\(`).FindString(string(css)); lit != "" {
			t.Errorf("%s: literal colour %q", name, lit)
		}
	}
	for _, theme := range []map[string]rgba{light, dark} {
		for _, bg := range []string{"bg", "bg-secondary", "danger-bg"} {
			if c := contrast(theme["danger"], theme[bg]); c < 4.5 {
				t.Errorf("danger on %s: %.2f", bg, c)
			}
		}
		if c := contrast(theme["text"], theme["surface"]); c < 4.5 {
			t.Errorf("text on surface (the secret box): %.2f", c)
		}
	}
}

// TestUsersInTheBrowser: an admin invites a user with the form and gets
// the link; links and unlinks a chat identity and changes the role on the
// user's page; the invited user sets a password on the link; the admin
// creates an API token, shown once, and revokes another. Both themes.
func TestUsersInTheBrowser(t *testing.T) {
	ctx := mustBrowser(t)
	env, _ := usersEnv(t)
	srv := httptest.NewServer(env.srv)
	t.Cleanup(srv.Close)
	env.MustToken(env.MustUser("bob", engine.RoleEditor))

	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	value := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	count := func(sel string) int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	do(
		chromedp.Navigate(srv.URL+"/login?next=/users"),
		chromedp.WaitVisible(chromedp.CSS(`#login-name`)),
		chromedp.SendKeys(chromedp.CSS(`#login-name`), "ada"),
		chromedp.SendKeys(chromedp.CSS(`#login-password`), testPassword),
		chromedp.Submit(chromedp.CSS(`#login-password`)),
		chromedp.WaitVisible(chromedp.CSS(`#invite-form`)),
		chromedp.SendKeys(chromedp.CSS(`#invite-name`), "grace"),
		chromedp.SendKeys(chromedp.CSS(`#invite-display-name`), "Grace <b>H</b>"),
		chromedp.SetValue(chromedp.CSS(`#invite-role`), "editor"),
		chromedp.Click(chromedp.CSS(`#invite-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#invite-result`)),
	)
	link := value(`#invite-link`)
	if !strings.HasPrefix(link, srv.URL+"/invite/inv_") {
		t.Fatalf("link %q", link)
	}
	if got := text(`table#users tbody tr:first-child .user-display-name`); got != "Grace <b>H</b>" {
		t.Errorf("new row's display name %q", got)
	}
	// A mistake shows the server's message.
	do(
		chromedp.SendKeys(chromedp.CSS(`#invite-name`), "grace"),
		chromedp.Click(chromedp.CSS(`#invite-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#invite-error`)),
	)
	if got := text(`#invite-error`); !strings.Contains(got, "already exists") {
		t.Errorf("error %q", got)
	}

	// The user's page: link and unlink a chat identity, change the role.
	do(
		chromedp.Click(chromedp.CSS(`table#users tbody tr:first-child a.user-name`)),
		chromedp.WaitVisible(chromedp.CSS(`#identity-form`)),
		chromedp.SetValue(chromedp.CSS(`#identity-platform`), "discord"),
		chromedp.SendKeys(chromedp.CSS(`#identity-chat-user-id`), "not-an-id"),
		chromedp.Click(chromedp.CSS(`#identity-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#user-error`)),
	)
	if got := text(`#user-error`); !strings.Contains(got, "Copy User ID") {
		t.Errorf("identity error %q", got)
	}
	do(
		chromedp.SetValue(chromedp.CSS(`#identity-chat-user-id`), "123456789012345678"),
		chromedp.Click(chromedp.CSS(`#identity-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`table#identities tr.identity`)),
		chromedp.SetValue(chromedp.CSS(`#user-role`), "viewer"),
		chromedp.Click(chromedp.CSS(`#user-form button[type=submit]`)),
	)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('#user-form .form-status').textContent === 'Saved.'`)); err != nil {
		t.Fatalf("save: %v", err)
	}
	if u, _ := env.store.UserByName(context.Background(), "grace"); u.Role != engine.RoleViewer {
		t.Errorf("role %s after saving", u.Role)
	}
	do(
		chromedp.Click(chromedp.CSS(`table#identities button[data-unlink]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`table#identities tr.identity`)),
		chromedp.WaitVisible(chromedp.CSS(`#identities-empty`)),
	)
	shots := map[string][]byte{}
	shoot := func(name string) {
		t.Helper()
		for _, theme := range []string{"light", "dark"} {
			do(chromedp.Click(chromedp.CSS(`[data-theme-choice=`+theme+`]`)), chromedp.Sleep(400*time.Millisecond)) // transitions end
			b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			shots[name+"-"+theme] = b
		}
	}
	shoot("user")

	// Settings: a token shown once, and bob's revoked.
	do(
		chromedp.Navigate(srv.URL+"/settings"),
		chromedp.WaitVisible(chromedp.CSS(`#token-form`)),
		chromedp.SendKeys(chromedp.CSS(`#token-name`), "ci deploys"),
		chromedp.Click(chromedp.CSS(`#token-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#token-result`)),
	)
	if secret := value(`#token-value`); !strings.HasPrefix(secret, "cs_") {
		t.Errorf("token %q", secret)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.confirm = function () { return true; }; true`)); err != nil {
		t.Fatal(err)
	}
	do(
		chromedp.Click(chromedp.CSS(`#other-tokens button[data-revoke]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#other-tokens tr.token`)),
		chromedp.WaitVisible(chromedp.CSS(`#other-tokens-empty`)),
	)
	if got := text(`#my-tokens tr.token .token-name`); got != "ci deploys" {
		t.Errorf("the new token is listed as %q", got)
	}
	if list, _ := env.store.ListAPITokens(context.Background(), ""); len(list) != 1 || list[0].Name != "ci deploys" {
		t.Errorf("tokens after revoking bob's: %v", list)
	}
	shoot("settings")
	do(chromedp.Navigate(srv.URL + "/users"))
	shoot("users")

	// The invited user sets a password on the link.
	do(
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS(`#invite-password`)),
		chromedp.SendKeys(chromedp.CSS(`#invite-password`), newPassword),
		chromedp.SendKeys(chromedp.CSS(`#invite-confirm`), newPassword+"!"),
		chromedp.Submit(chromedp.CSS(`#invite-confirm`)),
		chromedp.WaitVisible(chromedp.CSS(`#invite-error`)),
	)
	shoot("invite-error")
	do(
		chromedp.SendKeys(chromedp.CSS(`#invite-password`), newPassword),
		chromedp.SendKeys(chromedp.CSS(`#invite-confirm`), newPassword),
		chromedp.Submit(chromedp.CSS(`#invite-confirm`)),
		chromedp.WaitVisible(chromedp.CSS(`#invite-done`)),
	)
	if count(`script:not([src])`) != 0 {
		t.Error("inline scripts")
	}
	if u, _ := env.store.UserByName(context.Background(), "grace"); !password.Verify(u.PasswordHash, newPassword) {
		t.Error("the password was not set")
	}
	if dir := os.Getenv("CONVOSPHERE_USERS_SCREENSHOTS"); dir != "" {
		for name, b := range shots {
			if err := os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
