// Package openai is ConvoSphere's language model and embedder for any
// OpenAI-compatible endpoint: OpenAI, Azure OpenAI, Ollama, vLLM and the
// llama.cpp server. It wraps github.com/sashabaranov/go-openai and adds
// bounded retries that honour Retry-After, and errors people can read.
package openai

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/convosphere/convosphere/engine"
)

// API types.
const (
	APITypeOpenAI = "openai"
	APITypeAzure  = "azure"
)

// Defaults applied by New to zero fields.
const (
	DefaultBaseURL            = "https://api.openai.com/v1"
	DefaultAzureAPIVersion    = "2024-10-21"
	DefaultRequestTimeout     = 60 * time.Second
	DefaultConnectTimeout     = 10 * time.Second
	DefaultMaxRetries         = 3
	DefaultRetryBaseDelay     = 500 * time.Millisecond
	DefaultRetryMaxDelay      = 20 * time.Second
	DefaultEmbeddingBatchSize = 64
)

// Config configures a Provider. Zero fields get defaults.
type Config struct {
	// BaseURL is the API root, e.g. https://api.openai.com/v1 (default),
	// http://localhost:11434/v1 (Ollama), http://localhost:8000/v1 (vLLM) or,
	// for Azure, https://RESOURCE.openai.azure.com.
	BaseURL string
	// APIKey may be empty for local servers. It is never logged.
	APIKey string
	// Model is the chat model used when a request names none (for Azure,
	// the deployment name).
	Model string
	// EmbeddingModel is the embeddings model (for Azure, its deployment);
	// Embed fails while it is empty.
	EmbeddingModel string
	// APIType is "openai" (default, any OpenAI-compatible server) or "azure".
	APIType string
	// APIVersion is Azure's api-version; default DefaultAzureAPIVersion.
	APIVersion string
	// Organization is sent as OpenAI-Organization when set.
	Organization string
	// Settings names where these settings are kept, for error messages:
	// empty for the llm.* configuration keys ("check llm.api_key"); a name
	// like `model provider "acme"` for settings kept elsewhere ("check the
	// API key of model provider "acme"").
	Settings string

	// RequestTimeout bounds each attempt of a non-streaming call
	// (embeddings, model listing); streams are bounded by their ctx.
	RequestTimeout time.Duration
	// ConnectTimeout bounds dialling and the TLS handshake.
	ConnectTimeout time.Duration
	// MaxRetries is how many times a failed call is retried; 0 means
	// DefaultMaxRetries and a negative value disables retries.
	MaxRetries int
	// RetryBaseDelay and RetryMaxDelay bound the exponential backoff (full
	// jitter); RetryMaxDelay also caps a server's Retry-After.
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration
	// EmbeddingBatchSize is how many texts go in one embeddings request.
	EmbeddingBatchSize int

	Logger *slog.Logger
}

// String prints the configuration with the API key redacted.
func (c Config) String() string {
	return fmt.Sprintf("openai.Config{BaseURL:%q APIType:%q Model:%q EmbeddingModel:%q APIKey:%s}",
		c.BaseURL, c.APIType, c.Model, c.EmbeddingModel, redact(c.APIKey))
}

// LogValue logs the configuration with the API key redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", c.BaseURL),
		slog.String("api_type", c.APIType),
		slog.String("model", c.Model),
		slog.String("embedding_model", c.EmbeddingModel),
		slog.String("api_key", redact(c.APIKey)),
	)
}

func redact(secret string) string {
	if secret == "" {
		return "(none)"
	}
	return "(redacted)"
}

// settingNames are the settings as error messages name them when they are
// not the llm.* configuration keys (Config.Settings is set).
var settingNames = map[string]string{
	"api_key":         "the API key",
	"api_type":        "the API type",
	"base_url":        "the base URL",
	"model":           "the model",
	"embedding_model": "the embedding model",
}

// setting names a setting in an error message: the configuration key
// llm.<key>, or "the API key of <Settings>".
func (c Config) setting(key string) string {
	if c.Settings == "" {
		return "llm." + key
	}
	return settingNames[key] + " of " + c.Settings
}

func (c *Config) setDefaults() {
	c.APIType = strings.ToLower(strings.TrimSpace(c.APIType))
	if c.APIType == "" {
		c.APIType = APITypeOpenAI
	}
	c.BaseURL = strings.TrimRight(strings.TrimSpace(c.BaseURL), "/")
	if c.BaseURL == "" && c.APIType == APITypeOpenAI {
		c.BaseURL = DefaultBaseURL
	}
	if c.APIVersion == "" && c.APIType == APITypeAzure {
		c.APIVersion = DefaultAzureAPIVersion
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.RetryBaseDelay == 0 {
		c.RetryBaseDelay = DefaultRetryBaseDelay
	}
	if c.RetryMaxDelay == 0 {
		c.RetryMaxDelay = DefaultRetryMaxDelay
	}
	if c.EmbeddingBatchSize == 0 {
		c.EmbeddingBatchSize = DefaultEmbeddingBatchSize
	}
}

// Validate reports the first invalid setting, naming its configuration key.
// Zero values are valid where New supplies a default.
func (c Config) Validate() error {
	c.setDefaults()
	switch c.APIType {
	case APITypeOpenAI, APITypeAzure:
	default:
		return engine.Errorf(engine.EINVALID, "%s %q is unknown: use openai (any OpenAI-compatible server) or azure.", c.setting("api_type"), c.APIType)
	}
	if c.BaseURL == "" {
		return engine.Errorf(engine.EINVALID, "%s is required for Azure OpenAI: use the resource endpoint, e.g. https://NAME.openai.azure.com.", c.setting("base_url"))
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return engine.Errorf(engine.EINVALID, "%s %q is not an http(s) URL: use e.g. https://api.openai.com/v1 or http://localhost:11434/v1.", c.setting("base_url"), c.BaseURL)
	}
	if u.User != nil {
		return engine.Errorf(engine.EINVALID, "%s must not contain credentials: put the key in %s.", c.setting("base_url"), c.setting("api_key"))
	}
	if strings.TrimSpace(c.Model) == "" {
		return engine.Errorf(engine.EINVALID, "%s is not set: name the chat model (for Azure, the deployment), e.g. gpt-4o-mini or llama3.1.", c.setting("model"))
	}
	if c.APIType == APITypeAzure && c.APIKey == "" {
		return engine.Errorf(engine.EINVALID, "%s is required for Azure OpenAI.", c.setting("api_key"))
	}
	switch {
	case c.RequestTimeout < 0 || c.ConnectTimeout < 0:
		return engine.Errorf(engine.EINVALID, "The llm timeouts must not be negative.")
	case c.RetryBaseDelay < 0 || c.RetryMaxDelay < 0:
		return engine.Errorf(engine.EINVALID, "The llm retry delays must not be negative.")
	case c.RetryMaxDelay < c.RetryBaseDelay:
		return engine.Errorf(engine.EINVALID, "The llm retry max delay (%s) must not be shorter than the retry base delay (%s).", c.RetryMaxDelay, c.RetryBaseDelay)
	case c.EmbeddingBatchSize < 0:
		return engine.Errorf(engine.EINVALID, "The llm embedding batch size must not be negative.")
	}
	return nil
}

// Provider is an engine.LanguageModel and engine.Embedder backed by an
// OpenAI-compatible API. It is safe for concurrent use.
type Provider struct {
	cfg    Config
	client *goopenai.Client
	retry  retryPolicy
	log    *slog.Logger
}

var (
	_ engine.LanguageModel = (*Provider)(nil)
	_ engine.Embedder      = (*Provider)(nil)
	_ engine.ModelNamer    = (*Provider)(nil)
)

// New returns a provider for cfg, or an EINVALID error naming the bad setting.
func New(cfg Config) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	var cc goopenai.ClientConfig
	if cfg.APIType == APITypeAzure {
		cc = goopenai.DefaultAzureConfig(cfg.APIKey, cfg.BaseURL)
		cc.APIVersion = cfg.APIVersion
		cc.AzureModelMapperFunc = func(model string) string { return model } // deployment = model
	} else {
		cc = goopenai.DefaultConfig(cfg.APIKey)
		cc.BaseURL = cfg.BaseURL
	}
	cc.OrgID = cfg.Organization
	cc.HTTPClient = &recordingDoer{client: &http.Client{Transport: newTransport(cfg.ConnectTimeout)}}

	retries := cfg.MaxRetries
	if retries < 0 {
		retries = 0
	}
	return &Provider{
		cfg:    cfg,
		client: goopenai.NewClientWithConfig(cc),
		retry:  retryPolicy{maxRetries: retries, base: cfg.RetryBaseDelay, max: cfg.RetryMaxDelay},
		log:    log.With("component", "llm_openai"),
	}, nil
}

// newTransport is http.DefaultTransport with a bounded connect. It sets no
// overall timeout, which would cut long streams.
func newTransport(connect time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = connect
	return t
}

// DefaultModel names the chat model used when a request names none.
func (p *Provider) DefaultModel() string { return p.cfg.Model }

// Models lists the ids of the models the endpoint serves, which is also a
// cheap check that the endpoint and the key work.
func (p *Provider) Models(ctx context.Context) ([]string, error) {
	var list goopenai.ModelsList
	err := p.do(ctx, opModels, p.cfg.Model, func(ctx context.Context) error {
		var err error
		list, err = p.client.ListModels(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(list.Models))
	for _, m := range list.Models {
		ids = append(ids, m.ID)
	}
	return ids, nil
}
