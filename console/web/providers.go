package web

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// ModelProviders manages the language-model providers of the settings page
// and API. cmd/console adapts the store, the secret box that seals API
// keys and the model router to it.
type ModelProviders interface {
	// List returns the providers, by name (API keys sealed, never plain).
	List(ctx context.Context) ([]*engine.ModelProvider, error)
	// Save validates and stores p, sealing p.APIKey when it is not empty;
	// with an empty APIKey the stored key is kept (keepKey) or removed.
	Save(ctx context.Context, p *engine.ModelProvider, keepKey bool) error
	// Delete removes a provider; ENOTFOUND when there is none.
	Delete(ctx context.Context, name string) error
	// Models asks the provider's API which models it serves (a connection
	// test), with apiKey when given, else the stored key.
	Models(ctx context.Context, p *engine.ModelProvider, apiKey string) ([]string, error)
}

// providerJSON is a model provider as the API shows it: never its key.
type providerJSON struct {
	Name       string    `json:"name"`
	APIType    string    `json:"api_type"`
	BaseURL    string    `json:"base_url"`
	APIVersion string    `json:"api_version,omitempty"`
	Models     []string  `json:"models"`
	HasAPIKey  bool      `json:"has_api_key"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

func providerJSONOf(p *engine.ModelProvider) providerJSON {
	return providerJSON{Name: p.Name, APIType: p.APIType, BaseURL: p.BaseURL, APIVersion: p.APIVersion,
		Models: p.Models, HasAPIKey: p.HasAPIKey(), CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

// providersResponse is the body of GET /api/v1/model-providers.
type providersResponse struct {
	Providers []providerJSON `json:"providers"`
}

// providerRequest is the body of PUT /api/v1/model-providers/{name} and of
// POST /api/v1/model-providers/{name}/test. APIKey: a new key; empty keeps
// the stored one unless ClearAPIKey.
type providerRequest struct {
	APIType     string   `json:"api_type"`
	BaseURL     string   `json:"base_url"`
	APIVersion  string   `json:"api_version"`
	Models      []string `json:"models"`
	APIKey      string   `json:"api_key"`
	ClearAPIKey bool     `json:"clear_api_key"`
}

var providerForm = jsonForm{
	Example: `{"base_url": "https://api.openai.com/v1", "models": ["gpt-4o-mini"], "api_key": "sk-…"}`,
	Fields:  `"api_type", "base_url", "api_version", "models", "api_key" and "clear_api_key"`,
	Hint:    `send the provider's "base_url", its "models" and optionally a new "api_key"`,
}

// providerTestResponse is the body of POST /api/v1/model-providers/{name}/test.
type providerTestResponse struct {
	OK     bool     `json:"ok"`
	Models []string `json:"models"`
}

// providerRoutes registers the model providers API (admins).
func (s *Server) providerRoutes(api *gin.RouterGroup) {
	g := api.Group("/model-providers", s.requireRole("Managing model providers", engine.RoleAdmin))
	g.GET("", s.listProviders)
	g.PUT("/:name", s.putProvider)
	g.DELETE("/:name", s.deleteProvider)
	g.POST("/:name/test", s.testProvider)
}

var errNoProviders = engine.Errorf(engine.EUNAVAILABLE, "Model providers are not available in this console.")

// providers lists the providers for the API and the settings page.
func (s *Server) providers(ctx context.Context) ([]providerJSON, error) {
	if s.deps.Providers == nil {
		return nil, errNoProviders
	}
	list, err := s.deps.Providers.List(ctx)
	if err != nil {
		return nil, engine.WrapError(engine.EUNAVAILABLE, err, "The model providers could not be loaded; please try again in a minute.")
	}
	out := make([]providerJSON, 0, len(list))
	for _, p := range list {
		out = append(out, providerJSONOf(p))
	}
	return out, nil
}

// listProviders serves GET /api/v1/model-providers.
func (s *Server) listProviders(c *gin.Context) {
	list, err := s.providers(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	s.writeJSON(c, http.StatusOK, providersResponse{Providers: list})
}

// providerOf reads the request body into a provider named by the path.
func (s *Server) providerOf(c *gin.Context) (*engine.ModelProvider, *providerRequest, error) {
	if s.deps.Providers == nil {
		return nil, nil, errNoProviders
	}
	var req providerRequest
	if err := readJSON(c, 16<<10, &req, providerForm); err != nil {
		return nil, nil, err
	}
	models := make([]string, 0, len(req.Models))
	for _, m := range req.Models {
		if m = strings.TrimSpace(m); m != "" {
			models = append(models, m)
		}
	}
	p := &engine.ModelProvider{Name: c.Param("name"), APIType: strings.TrimSpace(req.APIType), BaseURL: strings.TrimSpace(req.BaseURL),
		APIVersion: strings.TrimSpace(req.APIVersion), Models: models}
	if p.APIType == "" {
		p.APIType = "openai"
	}
	return p, &req, nil
}

// putProvider serves PUT /api/v1/model-providers/{name}: add or replace a
// provider; an empty api_key keeps the stored key. 200 with the provider.
func (s *Server) putProvider(c *gin.Context) {
	p, req, err := s.providerOf(c)
	if err == nil {
		p.APIKey = strings.TrimSpace(req.APIKey)
		err = s.deps.Providers.Save(c.Request.Context(), p, !req.ClearAPIKey)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	setAuditTarget(c, p.Name)
	s.log.InfoContext(c.Request.Context(), "model provider saved", "provider", p.Name, "by_user_id", principalOf(c).User.ID)
	list, err := s.deps.Providers.List(c.Request.Context())
	if err == nil {
		for _, stored := range list {
			if stored.Name == p.Name {
				p = stored
			}
		}
	}
	s.writeJSON(c, http.StatusOK, providerJSONOf(p))
}

// deleteProvider serves DELETE /api/v1/model-providers/{name}. 204.
func (s *Server) deleteProvider(c *gin.Context) {
	if s.deps.Providers == nil {
		s.fail(c, errNoProviders)
		return
	}
	name := c.Param("name")
	err := s.deps.Providers.Delete(c.Request.Context(), name)
	switch {
	case engine.IsNotFound(err):
		s.fail(c, engine.Errorf(engine.ENOTFOUND, "There is no model provider named %q.", name))
		return
	case err != nil:
		s.fail(c, engine.WrapError(engine.EUNAVAILABLE, err, "The model provider could not be deleted; please try again in a minute."))
		return
	}
	c.Status(http.StatusNoContent)
}

// testProvider serves POST /api/v1/model-providers/{name}/test: lists the
// models the provider's API serves, with the key given or the stored one.
// 200 with ok and the models, or the provider's refusal in words (502).
func (s *Server) testProvider(c *gin.Context) {
	p, req, err := s.providerOf(c)
	if err == nil {
		// The connection test needs no model list and may use the stored key.
		check := *p
		if len(check.Models) == 0 {
			check.Models = []string{"any"}
		}
		check.APIKey = "unchecked"
		err = check.Validate()
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 20*time.Second)
	defer cancel()
	models, err := s.deps.Providers.Models(ctx, p, strings.TrimSpace(req.APIKey))
	if err != nil {
		s.failStatus(c, http.StatusBadGateway, "provider_unreachable", "The provider did not answer as expected: "+engine.ErrorMessage(err))
		return
	}
	s.writeJSON(c, http.StatusOK, providerTestResponse{OK: true, Models: models})
}
