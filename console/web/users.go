package web

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// userRoutes registers the users pages and API (admins only). The
// invitation links, which need no sign-in, are in invitationRoutes.
func (s *Server) userRoutes(pages, api *gin.RouterGroup) {
	const action = "Managing users"
	pages.GET("/users", s.requireRole(action, engine.RoleAdmin), s.showUsers)
	pages.GET("/users/:id", s.requireRole(action, engine.RoleAdmin), s.showUser)

	users := api.Group("/users", s.requireRole(action, engine.RoleAdmin))
	users.GET("", s.listUsers)
	users.POST("", s.createUser)
	users.GET("/:id", s.getUser)
	users.PATCH("/:id", s.updateUser)
	users.POST("/:id/invite", s.inviteUser)
	users.GET("/:id/identities", s.listIdentities)
	users.POST("/:id/identities", s.linkIdentity)
	users.DELETE("/:id/identities/:platform/:chat_user_id", s.unlinkIdentity)
}

// User statuses, as userJSON.Status reports them.
const (
	userActive            = "active"
	userInvited           = "invited"            // no password yet; the invitation link works
	userInvitationExpired = "invitation_expired" // no password yet, and no working link: send a new one
	userDisabled          = "disabled"
)

// userJSON is a console user as admins manage it. It never carries the
// password hash.
type userJSON struct {
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	DisplayName string      `json:"display_name"`
	Role        engine.Role `json:"role"`
	Disabled    bool        `json:"disabled"`
	// Status is active, invited, invitation_expired or disabled.
	Status       string    `json:"status"`
	HasPassword  bool      `json:"has_password"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	LastSignInAt time.Time `json:"last_sign_in_at,omitzero"`
	// InvitationExpiresAt is when the user's unused invitation (or
	// password reset) link stops working; absent when there is none.
	InvitationExpiresAt time.Time      `json:"invitation_expires_at,omitzero"`
	Identities          []identityJSON `json:"identities"`
}

// identityJSON is a chat user linked to a console user.
type identityJSON struct {
	Platform   engine.Platform `json:"platform"`
	ChatUserID string          `json:"chat_user_id"`
	CreatedAt  time.Time       `json:"created_at"`
}

// invitationJSON is a new invitation link. The token is in the link and
// nowhere else: it is shown once.
type invitationJSON struct {
	URL       string    `json:"url"`  // the link on the address the request came to
	Path      string    `json:"path"` // /invite/{token}, for another address of the console
	ExpiresAt time.Time `json:"expires_at"`
}

// usersResponse is the body of GET /api/v1/users.
type usersResponse struct {
	Users []userJSON `json:"users"`
}

// userResponse is the body of GET and PATCH /api/v1/users/{id}, and of
// POST /api/v1/users and /api/v1/users/{id}/invite with the invitation.
type userResponse struct {
	User       userJSON        `json:"user"`
	Invitation *invitationJSON `json:"invitation,omitempty"`
}

// createUserRequest is the body of POST /api/v1/users.
type createUserRequest struct {
	Name        string      `json:"name"`
	DisplayName string      `json:"display_name"`
	Role        engine.Role `json:"role"` // default viewer
}

var createUserForm = jsonForm{
	Example: `{"name": "ada", "display_name": "Ada Lovelace", "role": "editor"}`,
	Fields:  `"name", "display_name" and "role"`,
	Hint:    `send a JSON object with "name" and optionally "display_name" and "role"`,
}

// updateUserRequest is the body of PATCH /api/v1/users/{id}: the fields
// sent change, the others stay.
type updateUserRequest struct {
	Role        *engine.Role `json:"role"`
	DisplayName *string      `json:"display_name"`
	Disabled    *bool        `json:"disabled"`
}

var updateUserForm = jsonForm{
	Example: `{"role": "viewer"}`,
	Fields:  `"role", "display_name" and "disabled"`,
	Hint:    `send a JSON object with one or more of "role", "display_name" and "disabled"`,
}

// identitiesResponse is the body of GET /api/v1/users/{id}/identities.
type identitiesResponse struct {
	Identities []identityJSON `json:"identities"`
}

// identityResponse is the body of POST /api/v1/users/{id}/identities.
type identityResponse struct {
	Identity identityJSON `json:"identity"`
}

// linkIdentityRequest is the body of POST /api/v1/users/{id}/identities.
type linkIdentityRequest struct {
	Platform   engine.Platform `json:"platform"`
	ChatUserID string          `json:"chat_user_id"`
}

var linkIdentityForm = jsonForm{
	Example: `{"platform": "slack", "chat_user_id": "U012AB3CD"}`,
	Fields:  `"platform" and "chat_user_id"`,
	Hint:    `send a JSON object with "platform" (slack, discord or mattermost) and "chat_user_id"`,
}

// usersPage is the data of /users.
type usersPage struct {
	Users          []userJSON
	Error          string
	Roles          []engine.Role
	InvitationDays int
}

// userPage is the data of /users/{id}.
type userPage struct {
	User      userJSON
	Self      bool // the admin looks at their own account
	Roles     []engine.Role
	Platforms []platformChoice
}

// platformChoice is a chat platform whose users can be linked, with how
// to find a user's id there.
type platformChoice struct {
	Platform engine.Platform
	Label    string
	Example  string
	Hint     string
	pattern  *regexp.Regexp
}

var linkablePlatforms = []platformChoice{
	{engine.PlatformSlack, "Slack", "U012AB3CD",
		"Slack member ids are capital letters and digits starting with U or W: in Slack, open the person's profile, then ⋮ → Copy member ID.",
		regexp.MustCompile(`^[UW][A-Z0-9]{2,30}$`)},
	{engine.PlatformDiscord, "Discord", "123456789012345678",
		"Discord user ids are numbers of 15 to 21 digits: with Developer Mode on (User Settings → Advanced), right-click the user → Copy User ID.",
		regexp.MustCompile(`^[0-9]{15,21}$`)},
	{engine.PlatformMattermost, "Mattermost", "k1y6q8c9ojbp3ktqf1rzgyyn4a",
		"Mattermost user ids are 26 lowercase letters and digits: System Console → User Management → Users, or GET /api/v4/users/username/NAME.",
		regexp.MustCompile(`^[a-z0-9]{26}$`)},
}

var roles = []engine.Role{engine.RoleViewer, engine.RoleEditor, engine.RoleAdmin}

// Limits of the text fields of a user.
const (
	maxUserNameRunes    = 64
	maxDisplayNameRunes = 100
)

// checkUserName says what is wrong with a new user's name: people type it
// to sign in, so it is one word of letters, digits and . _ - @ +.
func checkUserName(name string) error {
	n := utf8.RuneCountInString(name)
	if name == "" {
		return engine.Errorf(engine.EINVALID, "A user needs a name (\"name\"): the word they sign in with, such as ada or ada.lovelace.")
	}
	if n > maxUserNameRunes {
		return engine.Errorf(engine.EINVALID, "The user name is %d characters long: use at most %d.", n, maxUserNameRunes)
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("._-@+", r) {
			return engine.Errorf(engine.EINVALID, "The user name %q contains %q: use letters, digits and . _ - @ + only, with no spaces (the display name may hold anything).", name, r)
		}
	}
	return nil
}

// cleanDisplayName trims a display name and says what is wrong with it.
func cleanDisplayName(s string) (string, error) {
	s = strings.TrimSpace(s)
	if n := utf8.RuneCountInString(s); n > maxDisplayNameRunes {
		return "", engine.Errorf(engine.EINVALID, "The display name is %d characters long: use at most %d.", n, maxDisplayNameRunes)
	}
	if hasControl(s) {
		return "", engine.Errorf(engine.EINVALID, "The display name must not contain control characters (line breaks, tabs).")
	}
	return s, nil
}

func checkRole(r engine.Role) error {
	if !r.Valid() {
		return engine.Errorf(engine.EINVALID, "Role %q is unknown: use admin, editor or viewer.", r)
	}
	return nil
}

// userRoster is what the users pages need to know besides the users.
type userRoster struct {
	signIns     map[string]time.Time
	invitations map[string]*engine.Invitation // each user's newest unused one
}

func (s *Server) roster(ctx context.Context) (*userRoster, error) {
	signIns, err := s.deps.Store.LastSignIns(ctx)
	if err != nil {
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "The users' sign-in times could not be loaded; please try again in a minute.")
	}
	invs, err := s.deps.Store.ListInvitations(ctx)
	if err != nil {
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "The invitations could not be loaded; please try again in a minute.")
	}
	r := &userRoster{signIns: signIns, invitations: map[string]*engine.Invitation{}}
	for _, inv := range invs { // newest first
		if _, ok := r.invitations[inv.UserID]; !ok {
			r.invitations[inv.UserID] = inv
		}
	}
	return r, nil
}

// userJSONOf describes u with its identities and roster data.
func (s *Server) userJSONOf(ctx context.Context, u *engine.User, r *userRoster) (userJSON, error) {
	ids, err := s.deps.Store.IdentitiesOf(ctx, u.ID)
	if err != nil {
		return userJSON{}, engine.WrapError(engine.EUNAVAILABLE, err, "The chat identities of %s could not be loaded; please try again in a minute.", u.Name)
	}
	out := userJSON{ID: u.ID, Name: u.Name, DisplayName: u.DisplayName, Role: u.Role, Disabled: u.Disabled,
		HasPassword: u.PasswordHash != "", CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
		LastSignInAt: r.signIns[u.ID], Identities: identitiesJSON(ids)}
	now := s.now()
	inv := r.invitations[u.ID]
	if inv != nil && inv.State(now) == engine.InvitationPending {
		out.InvitationExpiresAt = inv.ExpiresAt
	}
	switch {
	case u.Disabled:
		out.Status = userDisabled
	case out.HasPassword:
		out.Status = userActive
	case !out.InvitationExpiresAt.IsZero():
		out.Status = userInvited
	default:
		out.Status = userInvitationExpired
	}
	return out, nil
}

func identitiesJSON(ids []*engine.Identity) []identityJSON {
	out := make([]identityJSON, 0, len(ids))
	for _, id := range ids {
		out = append(out, identityJSON{Platform: id.Platform, ChatUserID: id.ChatUserID, CreatedAt: id.CreatedAt})
	}
	return out
}

// allUsers describes every user, ordered by name.
func (s *Server) allUsers(ctx context.Context) ([]userJSON, error) {
	users, err := s.deps.Store.ListUsers(ctx)
	if err != nil {
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "The users could not be loaded; please try again in a minute.")
	}
	r, err := s.roster(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]userJSON, 0, len(users))
	for _, u := range users {
		j, err := s.userJSONOf(ctx, u, r)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

// oneUser describes one user.
func (s *Server) oneUser(ctx context.Context, u *engine.User) (userJSON, error) {
	r, err := s.roster(ctx)
	if err != nil {
		return userJSON{}, err
	}
	return s.userJSONOf(ctx, u, r)
}

// userParam loads the user named by the :id of the address.
func (s *Server) userParam(c *gin.Context) (*engine.User, error) {
	id := c.Param("id")
	u, err := s.deps.Store.UserByID(c.Request.Context(), id)
	switch {
	case engine.IsNotFound(err):
		return nil, engine.Errorf(engine.ENOTFOUND, "There is no user with id %q: the list of users (GET /api/v1/users, or the Users page) has their ids.", id)
	case err != nil:
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "The user could not be loaded; please try again in a minute.")
	}
	return u, nil
}

// showUsers serves GET /users (admins): every user with their role,
// status, linked chat identities and last sign-in, and the invite form.
func (s *Server) showUsers(c *gin.Context) {
	page := usersPage{Roles: roles, InvitationDays: int(engine.InvitationTTL / (24 * time.Hour))}
	list, err := s.allUsers(c.Request.Context())
	if err != nil {
		page.Error = engine.ErrorMessage(err)
		s.log.WarnContext(c.Request.Context(), "list users", "error", err)
	}
	page.Users = list
	v := s.newView(c, "Users")
	v.Nav = "users"
	v.Page = page
	s.render(c, http.StatusOK, "users", v)
}

// showUser serves GET /users/{id} (admins): one user's profile, role,
// access and chat identities, with the forms that change them.
func (s *Server) showUser(c *gin.Context) {
	u, err := s.userParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	j, err := s.oneUser(c.Request.Context(), u)
	if err != nil {
		s.fail(c, err)
		return
	}
	name := u.Name
	if u.DisplayName != "" {
		name = u.DisplayName
	}
	v := s.newView(c, name)
	v.Nav = "users"
	v.Page = userPage{User: j, Self: u.ID == principalOf(c).User.ID, Roles: roles, Platforms: linkablePlatforms}
	s.render(c, http.StatusOK, "user", v)
}

// listUsers serves GET /api/v1/users (admins): {"users": [...]}, ordered
// by name.
func (s *Server) listUsers(c *gin.Context) {
	list, err := s.allUsers(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeJSON(c, http.StatusOK, usersResponse{Users: list})
}

// getUser serves GET /api/v1/users/{id} (admins).
func (s *Server) getUser(c *gin.Context) {
	u, err := s.userParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	j, err := s.oneUser(c.Request.Context(), u)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeJSON(c, http.StatusOK, userResponse{User: j})
}

// createUser serves POST /api/v1/users (admins): creates a user without a
// password and answers 201 with the user and a one-time invitation link,
// valid for engine.InvitationTTL, on which they choose their password.
func (s *Server) createUser(c *gin.Context) {
	ctx := c.Request.Context()
	var req createUserRequest
	if err := readJSON(c, 16<<10, &req, createUserForm); err != nil {
		s.fail(c, err)
		return
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Role == "" {
		req.Role = engine.RoleViewer
	}
	err := checkUserName(req.Name)
	if err == nil {
		err = checkRole(req.Role)
	}
	var display string
	if err == nil {
		display, err = cleanDisplayName(req.DisplayName)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	u := &engine.User{Name: req.Name, DisplayName: display, Role: req.Role}
	err = s.deps.Store.CreateUser(ctx, u)
	switch {
	case engine.ErrorCode(err) == engine.ECONFLICT:
		s.fail(c, engine.Errorf(engine.ECONFLICT, "A user named %q already exists: choose another name, or send that user a new link from their page.", req.Name))
		return
	case err != nil:
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The user could not be created; please try again in a minute."))
		return
	}
	setAuditTarget(c, u.ID)
	addAuditDetail(c, fmt.Sprintf("%s, role %s", u.Name, u.Role))
	by := principalOf(c).User
	s.log.InfoContext(ctx, "user created", "user_id", u.ID, "role", string(u.Role), "by_user_id", by.ID)
	inv, err := s.newInvitation(c, u, by)
	if err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err,
			"User %s was created, but the invitation link could not be made: open their page and choose New invitation link.", u.Name))
		return
	}
	j, err := s.oneUser(ctx, u)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeJSON(c, http.StatusCreated, userResponse{User: j, Invitation: inv})
}

// inviteUser serves POST /api/v1/users/{id}/invite (admins): a new
// one-time link on which the user chooses a password (a lost invitation, a
// forgotten password). Earlier unused links stop working. 201 with the
// user and the link.
func (s *Server) inviteUser(c *gin.Context) {
	u, err := s.userParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if u.Disabled {
		s.fail(c, engine.Errorf(engine.ECONFLICT, "%s is disabled: enable the account before sending them a link.", u.Name))
		return
	}
	inv, err := s.newInvitation(c, u, principalOf(c).User)
	if err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The invitation link could not be made; please try again in a minute."))
		return
	}
	j, err := s.oneUser(c.Request.Context(), u)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeJSON(c, http.StatusCreated, userResponse{User: j, Invitation: inv})
}

// newInvitation stores a new invitation of u (replacing the unused ones)
// and returns its link; only the token's hash is stored.
func (s *Server) newInvitation(c *gin.Context, u, by *engine.User) (*invitationJSON, error) {
	token, hash := engine.NewSecret("inv_")
	inv := &engine.Invitation{UserID: u.ID, TokenHash: hash, CreatedBy: by.ID, ExpiresAt: s.now().Add(engine.InvitationTTL)}
	if err := s.deps.Store.CreateInvitation(c.Request.Context(), inv); err != nil {
		return nil, err
	}
	s.log.InfoContext(c.Request.Context(), "invitation created", "user_id", u.ID, "invitation_id", inv.ID, "by_user_id", by.ID)
	path := "/invite/" + token
	return &invitationJSON{URL: s.externalURL(c, path), Path: path, ExpiresAt: inv.ExpiresAt}, nil
}

// externalURL is path on the address the request came to.
func (s *Server) externalURL(c *gin.Context, path string) string {
	scheme := "http"
	if c.Request.TLS != nil || s.cfg.SecureCookies {
		scheme = "https"
	}
	return scheme + "://" + c.Request.Host + path
}

// adminChanges serializes the changes of roles and access, so that two
// admins demoting each other at once cannot leave no admin (within one
// console process).
var adminChanges sync.Mutex

// updateUser serves PATCH /api/v1/users/{id} (admins): changes the role,
// the display name or whether the user is disabled. Disabling ends the
// user's sessions at once and their API tokens stop working; the last
// enabled admin can be neither demoted nor disabled.
func (s *Server) updateUser(c *gin.Context) {
	ctx := c.Request.Context()
	var req updateUserRequest
	if err := readJSON(c, 16<<10, &req, updateUserForm); err != nil {
		s.fail(c, err)
		return
	}
	if req.Role == nil && req.DisplayName == nil && req.Disabled == nil {
		s.fail(c, engine.Errorf(engine.EINVALID, "Nothing to change: send one or more of \"role\", \"display_name\" and \"disabled\", such as %s.", updateUserForm.Example))
		return
	}
	adminChanges.Lock()
	defer adminChanges.Unlock()
	u, err := s.userParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	was := *u
	if req.Role != nil {
		if err := checkRole(*req.Role); err != nil {
			s.fail(c, err)
			return
		}
		u.Role = *req.Role
	}
	if req.DisplayName != nil {
		if u.DisplayName, err = cleanDisplayName(*req.DisplayName); err != nil {
			s.fail(c, err)
			return
		}
	}
	if req.Disabled != nil {
		u.Disabled = *req.Disabled
	}
	me := principalOf(c).User
	if enabledAdmin(&was) && !enabledAdmin(u) {
		if err := s.checkOtherAdmins(ctx, u, me); err != nil {
			s.fail(c, err)
			return
		}
	}
	if err := s.deps.Store.UpdateUser(ctx, u); err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The user could not be saved; please try again in a minute."))
		return
	}
	for _, d := range userChanges(&was, u) {
		addAuditDetail(c, d)
	}
	if u.Disabled && !was.Disabled {
		// Every request loads the user, so a disabled user is refused
		// already; this also throws their sessions away.
		if err := s.deps.Store.DeleteUserSessions(ctx, u.ID); err != nil {
			s.log.WarnContext(ctx, "delete sessions of a disabled user", "user_id", u.ID, "error", err)
		}
		s.log.InfoContext(ctx, "user disabled", "user_id", u.ID, "by_user_id", me.ID)
	}
	if !u.Disabled && was.Disabled {
		s.log.InfoContext(ctx, "user enabled", "user_id", u.ID, "by_user_id", me.ID)
	}
	if u.Role != was.Role {
		s.log.InfoContext(ctx, "user role changed", "user_id", u.ID, "from", string(was.Role), "to", string(u.Role), "by_user_id", me.ID)
	}
	j, err := s.oneUser(ctx, u)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeJSON(c, http.StatusOK, userResponse{User: j})
}

// userChanges describes what an update changed, for the audit log.
func userChanges(was, now *engine.User) []string {
	var out []string
	if was.Role != now.Role {
		out = append(out, fmt.Sprintf("role %s → %s", was.Role, now.Role))
	}
	if was.DisplayName != now.DisplayName {
		out = append(out, "display name changed")
	}
	switch {
	case now.Disabled && !was.Disabled:
		out = append(out, "disabled")
	case !now.Disabled && was.Disabled:
		out = append(out, "enabled")
	}
	return out
}

func enabledAdmin(u *engine.User) bool { return u.Role == engine.RoleAdmin && !u.Disabled }

// checkOtherAdmins refuses to take away the admin rights of u unless
// another enabled admin remains.
func (s *Server) checkOtherAdmins(ctx context.Context, u, me *engine.User) error {
	users, err := s.deps.Store.ListUsers(ctx)
	if err != nil {
		return engine.WrapError(engine.EUNAVAILABLE, err, "The other admins could not be counted; please try again in a minute.")
	}
	if slices.ContainsFunc(users, func(o *engine.User) bool { return o.ID != u.ID && enabledAdmin(o) }) {
		return nil
	}
	if u.ID == me.ID {
		return engine.Errorf(engine.ECONFLICT, "You are the last enabled admin: make another user an admin first, or nobody could manage the console.")
	}
	return engine.Errorf(engine.ECONFLICT, "%s is the last enabled admin: make another user an admin first, or nobody could manage the console.", u.Name)
}

// listIdentities serves GET /api/v1/users/{id}/identities (admins): the
// chat users linked to the user.
func (s *Server) listIdentities(c *gin.Context) {
	u, err := s.userParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ids, err := s.deps.Store.IdentitiesOf(c.Request.Context(), u.ID)
	if err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The chat identities could not be loaded; please try again in a minute."))
		return
	}
	s.writeJSON(c, http.StatusOK, identitiesResponse{Identities: identitiesJSON(ids)})
}

// platformChoiceOf returns the linkable platform p.
func platformChoiceOf(p engine.Platform) (platformChoice, error) {
	for _, pc := range linkablePlatforms {
		if pc.Platform == p {
			return pc, nil
		}
	}
	if p == "" {
		return platformChoice{}, engine.Errorf(engine.EINVALID, "Say which chat platform the user is on (\"platform\"): slack, discord or mattermost.")
	}
	return platformChoice{}, engine.Errorf(engine.EINVALID, "Platform %q cannot be linked: use slack, discord or mattermost.", p)
}

// checkChatUserID says what is wrong with a chat user id for the platform.
func checkChatUserID(pc platformChoice, id string) error {
	if id == "" {
		return engine.Errorf(engine.EINVALID, "Give the %s user's id (\"chat_user_id\"), such as %s. %s", pc.Label, pc.Example, pc.Hint)
	}
	if !pc.pattern.MatchString(id) {
		return engine.Errorf(engine.EINVALID, "%q is not a %s user id. %s", id, pc.Label, pc.Hint)
	}
	return nil
}

// linkIdentity serves POST /api/v1/users/{id}/identities (admins): links a
// chat user to the console user, who then counts as that console user in
// the chat (an admin's chat identity may approve tool calls). 201 with the
// link, or 200 when it existed; 409 when the chat user is linked to
// someone else.
func (s *Server) linkIdentity(c *gin.Context) {
	ctx := c.Request.Context()
	var req linkIdentityRequest
	if err := readJSON(c, 4<<10, &req, linkIdentityForm); err != nil {
		s.fail(c, err)
		return
	}
	u, err := s.userParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	pc, err := platformChoiceOf(req.Platform)
	if err != nil {
		s.fail(c, err)
		return
	}
	chatID := strings.TrimSpace(req.ChatUserID)
	if err := checkChatUserID(pc, chatID); err != nil {
		s.fail(c, err)
		return
	}
	owner, err := s.deps.Store.UserByIdentity(ctx, pc.Platform, chatID)
	switch {
	case err == nil && owner.ID == u.ID:
		ids, err := s.deps.Store.IdentitiesOf(ctx, u.ID)
		if err == nil {
			for _, id := range ids {
				if id.Platform == pc.Platform && id.ChatUserID == chatID {
					s.writeJSON(c, http.StatusOK, identityResponse{Identity: identitiesJSON([]*engine.Identity{id})[0]})
					return
				}
			}
		}
	case err == nil:
		s.fail(c, engine.Errorf(engine.ECONFLICT, "%s user %s is already linked to %s: unlink it there first.", pc.Label, chatID, owner.Name))
		return
	case !engine.IsNotFound(err):
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The chat identities could not be checked; please try again in a minute."))
		return
	}
	id := &engine.Identity{Platform: pc.Platform, ChatUserID: chatID, UserID: u.ID}
	if err := s.deps.Store.LinkIdentity(ctx, id); err != nil {
		if engine.IsNotFound(err) {
			s.fail(c, engine.Errorf(engine.ENOTFOUND, "There is no user with id %q any more.", u.ID))
			return
		}
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The chat identity could not be linked; please try again in a minute."))
		return
	}
	addAuditDetail(c, fmt.Sprintf("%s user %s linked to %s", pc.Label, chatID, u.Name))
	s.log.InfoContext(ctx, "chat identity linked", "user_id", u.ID, "platform", string(pc.Platform), "by_user_id", principalOf(c).User.ID)
	s.writeJSON(c, http.StatusCreated, identityResponse{Identity: identitiesJSON([]*engine.Identity{id})[0]})
}

// unlinkIdentity serves DELETE
// /api/v1/users/{id}/identities/{platform}/{chat_user_id} (admins): 204.
func (s *Server) unlinkIdentity(c *gin.Context) {
	ctx := c.Request.Context()
	u, err := s.userParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	platform, chatID := engine.Platform(c.Param("platform")), c.Param("chat_user_id")
	label := string(platform)
	if pc, err := platformChoiceOf(platform); err == nil {
		label = pc.Label
	}
	ids, err := s.deps.Store.IdentitiesOf(ctx, u.ID)
	if err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The chat identities could not be loaded; please try again in a minute."))
		return
	}
	if !slices.ContainsFunc(ids, func(id *engine.Identity) bool { return id.Platform == platform && id.ChatUserID == chatID }) {
		s.fail(c, engine.Errorf(engine.ENOTFOUND, "%s user %q is not linked to %s.", label, chatID, u.Name))
		return
	}
	if err := s.deps.Store.UnlinkIdentity(ctx, platform, chatID); err != nil && !engine.IsNotFound(err) {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The chat identity could not be unlinked; please try again in a minute."))
		return
	}
	s.log.InfoContext(ctx, "chat identity unlinked", "user_id", u.ID, "platform", string(platform), "by_user_id", principalOf(c).User.ID)
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusNoContent)
}

// noteSignIn records that a user signed in, for the users page. A failure
// is logged: it is no reason to refuse the sign-in.
func (s *Server) noteSignIn(ctx context.Context, userID string) {
	if err := s.deps.Store.RecordSignIn(ctx, userID, s.now()); err != nil {
		s.log.WarnContext(ctx, "record sign-in", "user_id", userID, "error", err)
	}
}
