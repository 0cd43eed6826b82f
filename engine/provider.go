package engine

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// Model provider API types.
const (
	ModelAPIOpenAI = "openai" // any OpenAI-compatible server (OpenAI, Ollama, vLLM, llama.cpp)
	ModelAPIAzure  = "azure"  // Azure OpenAI
)

// ModelProvider is a language-model endpoint configured in the console.
// An assistant uses one of its models by naming "<provider>/<model>"
// (see QualifiedModels). Its API key is kept sealed (SecretBox): APIKey is
// the plain key in memory only, APIKeySealed what the store keeps.
type ModelProvider struct {
	Name       string `json:"name"`                  // [a-z0-9][a-z0-9_-]{0,31}
	APIType    string `json:"api_type"`              // ModelAPIOpenAI (empty: the same) or ModelAPIAzure
	BaseURL    string `json:"base_url,omitempty"`    // empty with openai: https://api.openai.com/v1
	APIVersion string `json:"api_version,omitempty"` // azure only; empty: the client's default
	// Models are the models offered in the assistant form, e.g.
	// "gpt-4o-mini" (for Azure, deployment names).
	Models []string `json:"models"`
	// APIKey is the plain key, in memory only: never stored, never
	// serialized. Seal it into APIKeySealed before saving.
	APIKey string `json:"-"`
	// APIKeySealed is the key sealed by a SecretBox; empty: no key (a
	// local server).
	APIKeySealed []byte    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// ProviderStore keeps the model providers configured in the console.
type ProviderStore interface {
	// SaveModelProvider inserts p, or replaces the provider of the same
	// Name, keeping its CreatedAt; p is filled with the stored timestamps
	// (an empty APIType is stored as ModelAPIOpenAI). It keeps
	// APIKeySealed, never APIKey: EINVALID when p fails ValidateSealed.
	SaveModelProvider(ctx context.Context, p *ModelProvider) error
	DeleteModelProvider(ctx context.Context, name string) error   // ENOTFOUND when there is none
	ModelProviders(ctx context.Context) ([]*ModelProvider, error) // by name, with APIKeySealed and no APIKey
}

// ModelLister is implemented by language models that can list the models
// their endpoint serves, which is also a cheap check that the endpoint and
// its key work.
type ModelLister interface {
	Models(ctx context.Context) ([]string, error)
}

// ProviderModelLister lists the models a provider's endpoint serves, for
// the console's "test the connection": p need not be saved; its APIKey is
// used when set, else its APIKeySealed is opened.
type ProviderModelLister interface {
	ProviderModels(ctx context.Context, p *ModelProvider) ([]string, error)
}

var modelProviderNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// modelNameMax is the longest model name accepted.
const modelNameMax = 200

// Validate checks a provider's settings; the error says what to fix. It
// does not look at the key's form: see ValidateSealed.
func (p *ModelProvider) Validate() error {
	if !modelProviderNameRE.MatchString(p.Name) {
		return Errorf(EINVALID, "Model provider name %q is invalid: use up to 32 lower-case letters, digits, - or _, starting with a letter or digit (e.g. openai, ollama-gpu).", p.Name)
	}
	switch p.APIType {
	case "", ModelAPIOpenAI, ModelAPIAzure:
	default:
		return Errorf(EINVALID, "Model provider %s: API type %q is unknown: use openai (OpenAI, Ollama, vLLM, llama.cpp or any OpenAI-compatible server) or azure.", p.Name, p.APIType)
	}
	azure := p.APIType == ModelAPIAzure
	if p.BaseURL == "" && azure {
		return Errorf(EINVALID, "Model provider %s: an Azure provider needs a base URL: the resource endpoint, e.g. https://NAME.openai.azure.com.", p.Name)
	}
	if p.BaseURL != "" {
		u, err := url.Parse(p.BaseURL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			return Errorf(EINVALID, "Model provider %s: base URL %q is not an http(s) URL: use e.g. https://api.openai.com/v1 or http://localhost:11434/v1.", p.Name, p.BaseURL)
		case u.User != nil:
			return Errorf(EINVALID, "Model provider %s: the base URL must not contain credentials: put the key in the API key field.", p.Name)
		}
	}
	if p.APIVersion != "" && !azure {
		return Errorf(EINVALID, "Model provider %s: the API version applies to Azure only: clear it, or set the API type to azure.", p.Name)
	}
	if len(p.Models) == 0 {
		return Errorf(EINVALID, "Model provider %s: list at least one model to offer to assistants, e.g. gpt-4o-mini or llama3.1.", p.Name)
	}
	seen := make(map[string]bool, len(p.Models))
	for _, m := range p.Models {
		switch {
		case m == "" || strings.TrimSpace(m) != m || strings.IndexFunc(m, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
			return Errorf(EINVALID, "Model provider %s: model %q is invalid: use the model's id without spaces, e.g. gpt-4o-mini.", p.Name, m)
		case len(m) > modelNameMax:
			return Errorf(EINVALID, "Model provider %s: a model name is longer than %d characters.", p.Name, modelNameMax)
		case seen[m]:
			return Errorf(EINVALID, "Model provider %s: model %q is listed twice.", p.Name, m)
		}
		seen[m] = true
	}
	if azure && p.APIKey == "" && len(p.APIKeySealed) == 0 {
		return Errorf(EINVALID, "Model provider %s: an Azure provider needs an API key.", p.Name)
	}
	return nil
}

// ValidateSealed is Validate plus the check the stores make: a key must
// have been sealed into APIKeySealed, since APIKey is never stored.
func (p *ModelProvider) ValidateSealed() error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p.APIKey != "" && len(p.APIKeySealed) == 0 {
		return Errorf(EINVALID, "Model provider %s: the API key was not sealed: seal it with the SecretBox into APIKeySealed before saving (the plain key is never stored).", p.Name)
	}
	return nil
}

// QualifiedModels returns the provider's models as assistants name them:
// "<provider>/<model>".
func (p *ModelProvider) QualifiedModels() []string {
	out := make([]string, len(p.Models))
	for i, m := range p.Models {
		out[i] = p.Name + "/" + m
	}
	return out
}

// HasAPIKey reports whether the provider has a key (plain or sealed), for
// forms that show "a key is set" without showing it.
func (p *ModelProvider) HasAPIKey() bool { return p.APIKey != "" || len(p.APIKeySealed) > 0 }
