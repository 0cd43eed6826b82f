package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// settingsRoutes registers the settings page and the API tokens API
// (admins only).
func (s *Server) settingsRoutes(pages, api *gin.RouterGroup) {
	pages.GET("/settings", s.requireRole("The settings page", engine.RoleAdmin), s.showSettings)
	tokens := api.Group("/tokens", s.requireRole("Managing API tokens", engine.RoleAdmin))
	tokens.GET("", s.listTokens)
	tokens.POST("", s.createToken)
	tokens.DELETE("/:id", s.revokeToken)
	s.providerRoutes(api)
}

// tokenJSON is an API token without its secret, which is shown once.
type tokenJSON struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	UserID     string    `json:"user_id"`
	UserName   string    `json:"user_name"` // the owner, whom the token acts as
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	// Current marks the token that authenticates this request.
	Current bool `json:"current,omitempty"`
}

// tokensResponse is the body of GET /api/v1/tokens.
type tokensResponse struct {
	Tokens []tokenJSON `json:"tokens"`
}

// createTokenRequest is the body of POST /api/v1/tokens.
type createTokenRequest struct {
	Name string `json:"name"`
}

var createTokenForm = jsonForm{
	Example: `{"name": "ci deploys"}`,
	Fields:  `"name"`,
	Hint:    `send {"name": "what the token is for"}`,
}

// createTokenResponse is the body of POST /api/v1/tokens: the token's
// secret is in Secret, this once; only its hash is stored.
type createTokenResponse struct {
	Token  tokenJSON `json:"token"`
	Secret string    `json:"secret"`
}

// maxTokenNameRunes bounds a token's name.
const maxTokenNameRunes = 100

// settingsPage is the data of /settings.
type settingsPage struct {
	Platforms      []*engine.PlatformStatus
	PlatformsError string
	MyTokens       []tokenJSON
	OtherTokens    []tokenJSON
	TokensError    string
	Providers      []providerJSON
	ProvidersError string
}

// showSettings serves GET /settings (admins): the chat platforms'
// connection status and the API tokens (the admin's own, and everyone's
// with their owner).
func (s *Server) showSettings(c *gin.Context) {
	ctx := c.Request.Context()
	var page settingsPage
	platforms, err := s.deps.Store.PlatformStatuses(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "list platform statuses", "error", err)
		page.PlatformsError = "The platforms' status could not be loaded; please try again in a minute."
	}
	page.Platforms = platforms
	me := principalOf(c)
	tokens, err := s.tokens(ctx, me, "")
	if err != nil {
		s.log.WarnContext(ctx, "list api tokens", "error", err)
		page.TokensError = engine.ErrorMessage(err)
	}
	for _, t := range tokens {
		if t.UserID == me.User.ID {
			page.MyTokens = append(page.MyTokens, t)
		} else {
			page.OtherTokens = append(page.OtherTokens, t)
		}
	}
	if page.Providers, err = s.providers(ctx); err != nil {
		page.ProvidersError = engine.ErrorMessage(err)
	}
	v := s.newView(c, "Settings")
	v.Nav = "settings"
	v.Page = page
	s.render(c, http.StatusOK, "settings", v)
}

// tokens lists the API tokens of userID (everyone's when empty) with their
// owners' names, oldest first.
func (s *Server) tokens(ctx context.Context, p *principal, userID string) ([]tokenJSON, error) {
	list, err := s.deps.Store.ListAPITokens(ctx, userID)
	if err != nil {
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "The API tokens could not be loaded; please try again in a minute.")
	}
	users, err := s.deps.Store.ListUsers(ctx)
	if err != nil {
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "The API tokens' owners could not be loaded; please try again in a minute.")
	}
	names := make(map[string]string, len(users))
	for _, u := range users {
		names[u.ID] = u.Name
	}
	out := make([]tokenJSON, 0, len(list))
	for _, t := range list {
		out = append(out, tokenJSONOf(t, names[t.UserID], p))
	}
	return out, nil
}

func tokenJSONOf(t *engine.APIToken, owner string, p *principal) tokenJSON {
	return tokenJSON{ID: t.ID, Name: t.Name, UserID: t.UserID, UserName: owner, CreatedAt: t.CreatedAt,
		LastUsedAt: t.LastUsedAt, Current: p.Token != nil && p.Token.ID == t.ID}
}

// listTokens serves GET /api/v1/tokens (admins): every API token with its
// owner, oldest first; ?user_id= keeps one user's.
func (s *Server) listTokens(c *gin.Context) {
	list, err := s.tokens(c.Request.Context(), principalOf(c), c.Query("user_id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeJSON(c, http.StatusOK, tokensResponse{Tokens: list})
}

// createToken serves POST /api/v1/tokens (admins): a new API token acting
// as the signed-in user; 201 with the token, whose secret is shown once.
func (s *Server) createToken(c *gin.Context) {
	ctx := c.Request.Context()
	var req createTokenRequest
	if err := readJSON(c, 4<<10, &req, createTokenForm); err != nil {
		s.fail(c, err)
		return
	}
	name := strings.TrimSpace(req.Name)
	switch n := utf8.RuneCountInString(name); {
	case name == "":
		s.fail(c, engine.Errorf(engine.EINVALID, "Name the token (\"name\") after what will use it, such as \"ci deploys\", so that you know which one to revoke later."))
		return
	case n > maxTokenNameRunes:
		s.fail(c, engine.Errorf(engine.EINVALID, "The token's name is %d characters long: use at most %d.", n, maxTokenNameRunes))
		return
	case hasControl(name):
		s.fail(c, engine.Errorf(engine.EINVALID, "The token's name must not contain control characters (line breaks, tabs)."))
		return
	}
	p := principalOf(c)
	secret, hash := engine.NewSecret("cs_")
	t := &engine.APIToken{UserID: p.User.ID, Name: name, TokenHash: hash}
	if err := s.deps.Store.CreateAPIToken(ctx, t); err != nil {
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The API token could not be created; please try again in a minute."))
		return
	}
	setAuditTarget(c, t.ID)
	addAuditDetail(c, fmt.Sprintf("token %q", t.Name))
	s.log.InfoContext(ctx, "api token created", "token_id", t.ID, "user_id", p.User.ID)
	s.writeJSON(c, http.StatusCreated, createTokenResponse{Token: tokenJSONOf(t, p.User.Name, p), Secret: secret})
}

// revokeToken serves DELETE /api/v1/tokens/{id} (admins): any user's
// token; it stops working at once. 204.
func (s *Server) revokeToken(c *gin.Context) {
	ctx := c.Request.Context()
	id := c.Param("id")
	err := s.deps.Store.DeleteAPIToken(ctx, id)
	switch {
	case engine.IsNotFound(err):
		s.fail(c, engine.Errorf(engine.ENOTFOUND, "There is no API token with id %q: it may have been revoked already (GET /api/v1/tokens lists them).", id))
		return
	case err != nil:
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The API token could not be revoked; please try again in a minute."))
		return
	}
	s.log.InfoContext(ctx, "api token revoked", "token_id", id, "by_user_id", principalOf(c).User.ID)
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusNoContent)
}
