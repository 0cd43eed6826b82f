// Package router is the language model of a running process: it sends a
// request whose model is "<provider>/<model>", where <provider> is a model
// provider configured in the console (engine.ModelProvider), to that
// provider's client with the model <model>, and every other request to the
// default model (the one of the llm.* configuration, or the extractive
// responder). A model name whose prefix is no provider's name, such as
// "meta-llama/Llama-3-8B", goes to the default model unchanged.
//
// Providers are read from the store and cached; the cache is read again at
// most every RefreshEvery when a request names a provider, so changes made
// in the console reach running bots within seconds. A provider's client is
// built again only when the provider changed (its UpdatedAt). A request for
// a provider that cannot be used (its key cannot be opened, its settings
// are wrong, or it was deleted) fails with an EUNAVAILABLE error naming the
// provider: it never silently goes to another one.
package router

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// DefaultRefreshEvery is how often the providers are read again by default.
const DefaultRefreshEvery = 3 * time.Second

// Connect builds the client of a provider. apiKey is its opened key ("" when
// it has none). Requests through the router always name their model; the
// client's default model is not used for chat.
type Connect func(p engine.ModelProvider, apiKey string) (engine.LanguageModel, error)

// Config configures a Router.
type Config struct {
	// Default answers every request that names no provider. Required.
	Default engine.LanguageModel
	// Providers holds the model providers; nil: every request goes to
	// Default.
	Providers engine.ProviderStore
	// Secrets opens the providers' sealed API keys; nil: providers with a
	// key cannot be used (their requests fail and say why).
	Secrets *engine.SecretBox
	// Connect builds a provider's client (llm/openai in the binaries).
	// Required with Providers.
	Connect Connect
	// RefreshEvery is how long the providers read from the store are used
	// before they are read again; default DefaultRefreshEvery.
	RefreshEvery time.Duration
	Logger       *slog.Logger
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.Default == nil:
		return engine.Errorf(engine.EINVALID, "The model router needs a default language model.")
	case c.Providers != nil && c.Connect == nil:
		return engine.Errorf(engine.EINVALID, "The model router needs a Connect function to build the providers' clients.")
	case c.RefreshEvery < 0:
		return engine.Errorf(engine.EINVALID, "The model router's refresh interval must not be negative.")
	}
	return nil
}

// Router is an engine.LanguageModel (and engine.ModelNamer, engine.Embedder,
// engine.ProviderModelLister) over the default model and the stored model
// providers. It is safe for concurrent use.
type Router struct {
	cfg Config
	log *slog.Logger

	loadMu sync.Mutex // one store read at a time

	mu       sync.Mutex
	entries  map[string]*entry // by provider name
	deleted  map[string]bool   // providers seen and since deleted
	loadedAt time.Time
	loaded   bool
}

// entry is a provider as last read, with its client or why it cannot be used.
type entry struct {
	p      engine.ModelProvider // without APIKey
	client engine.LanguageModel
	err    error
}

var (
	_ engine.LanguageModel       = (*Router)(nil)
	_ engine.ModelNamer          = (*Router)(nil)
	_ engine.Embedder            = (*Router)(nil)
	_ engine.ProviderModelLister = (*Router)(nil)
)

// New returns a router; it reads the providers on the first request that
// names one.
func New(cfg Config) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.RefreshEvery == 0 {
		cfg.RefreshEvery = DefaultRefreshEvery
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Router{cfg: cfg, log: log.With("component", "llm_router"), entries: map[string]*entry{}, deleted: map[string]bool{}}, nil
}

// Stream answers req with the provider its model names, or the default
// model. Any model of a provider may be named, not only those of its
// Models (which is what the assistant form offers).
func (r *Router) Stream(ctx context.Context, req engine.ChatRequest) (<-chan engine.StreamEvent, error) {
	name, model, ok := strings.Cut(req.Model, "/")
	if !ok || name == "" || r.cfg.Providers == nil {
		return r.cfg.Default.Stream(ctx, req)
	}
	if err := r.refresh(ctx, false); err != nil {
		return nil, err
	}
	r.mu.Lock()
	e, gone := r.entries[name], r.deleted[name]
	r.mu.Unlock()
	switch {
	case e == nil && gone:
		return nil, engine.Errorf(engine.EUNAVAILABLE, "Model provider %q was deleted; an admin should choose another model for this assistant (it asks for %q).", name, req.Model)
	case e == nil:
		return r.cfg.Default.Stream(ctx, req) // e.g. meta-llama/Llama-3-8B
	case e.err != nil:
		return nil, e.err
	case model == "":
		example := name + "/gpt-4o-mini"
		if q := e.p.QualifiedModels(); len(q) > 0 {
			example = q[0]
		}
		return nil, engine.Errorf(engine.EINVALID, "The model %q names model provider %q but no model: use %s/<model>, e.g. %s.", req.Model, name, name, example)
	}
	req.Model = model
	in, err := e.client.Stream(ctx, req)
	if err != nil {
		return nil, err
	}
	return relay(ctx, in, name+"/"), nil
}

// relay forwards events, naming the answering model "<provider>/<model>" so
// traces tell providers apart. It stops when in closes; after ctx ends it
// drains in without forwarding.
func relay(ctx context.Context, in <-chan engine.StreamEvent, prefix string) <-chan engine.StreamEvent {
	out := make(chan engine.StreamEvent)
	go func() {
		defer close(out)
		for ev := range in {
			if ev.Model != "" && !strings.HasPrefix(ev.Model, prefix) {
				ev.Model = prefix + ev.Model
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				for range in {
				}
				return
			}
		}
	}()
	return out
}

// DefaultModel names the default model's default (for traces).
func (r *Router) DefaultModel() string {
	if n, ok := r.cfg.Default.(engine.ModelNamer); ok {
		return n.DefaultModel()
	}
	return ""
}

// Embed delegates to the default model.
func (r *Router) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if e, ok := r.cfg.Default.(engine.Embedder); ok {
		return e.Embed(ctx, texts)
	}
	return nil, engine.Errorf(engine.EUNAVAILABLE, "No embedding model is configured: set llm.embedding_model (with llm.model or llm.base_url).")
}

// ProviderModels lists the models p's endpoint serves: the console's "test
// the connection". p need not be saved or complete (no Models yet); its
// APIKey is used when set, else its APIKeySealed is opened.
func (r *Router) ProviderModels(ctx context.Context, p *engine.ModelProvider) ([]string, error) {
	if r.cfg.Connect == nil {
		return nil, engine.Errorf(engine.EUNAVAILABLE, "Model providers are not available in this process.")
	}
	key := p.APIKey
	if key == "" && len(p.APIKeySealed) > 0 {
		var err error
		if key, err = r.openKey(p); err != nil {
			return nil, err
		}
	}
	c := *p
	c.APIKey = ""
	client, err := r.cfg.Connect(c, key)
	if err != nil {
		return nil, connectError(p.Name, err)
	}
	lister, ok := client.(engine.ModelLister)
	if !ok {
		return nil, engine.Errorf(engine.EUNAVAILABLE, "Model provider %q cannot list its models.", p.Name)
	}
	return lister.Models(ctx)
}

// Refresh reads the providers again now (the console calls it after a
// change so this process sees it at once).
func (r *Router) Refresh(ctx context.Context) error {
	return r.refresh(ctx, true)
}

func (r *Router) fresh() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loaded && time.Since(r.loadedAt) < r.cfg.RefreshEvery
}

// refresh reads the providers unless they were read less than RefreshEvery
// ago (or force). When reading fails after an earlier success, the last
// providers are kept (and read again after RefreshEvery).
func (r *Router) refresh(ctx context.Context, force bool) error {
	if r.cfg.Providers == nil || (!force && r.fresh()) {
		return nil
	}
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	if !force && r.fresh() { // another request just read them
		return nil
	}
	list, err := r.cfg.Providers.ModelProviders(ctx)
	if err != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.loaded {
			r.loadedAt = time.Now()
			r.log.WarnContext(ctx, "read model providers; using the last ones read", "error", err)
			return nil
		}
		return engine.WrapError(engine.EUNAVAILABLE, err, "The model providers could not be read; please try again in a minute.")
	}

	r.mu.Lock()
	old := r.entries
	r.mu.Unlock()
	next := make(map[string]*entry, len(list))
	for _, p := range list {
		if e, ok := old[p.Name]; ok && sameProvider(e.p, *p) {
			next[p.Name] = e
			continue
		}
		e := r.connect(*p)
		next[p.Name] = e
		if e.err != nil {
			r.log.WarnContext(ctx, "model provider unusable", "provider", p.Name, "error", e.err)
		} else {
			r.log.InfoContext(ctx, "model provider loaded", "provider", p.Name, "api_type", p.APIType, "models", len(p.Models))
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	for name := range old {
		if _, ok := next[name]; !ok {
			r.deleted[name] = true
			r.log.InfoContext(ctx, "model provider deleted", "provider", name)
		}
	}
	for name := range next {
		delete(r.deleted, name)
	}
	r.entries, r.loadedAt, r.loaded = next, time.Now(), true
	return nil
}

// sameProvider reports whether b is a as already loaded: the same
// UpdatedAt, and (against two saves within a microsecond) the same settings.
func sameProvider(a, b engine.ModelProvider) bool {
	return a.UpdatedAt.Equal(b.UpdatedAt) && a.APIType == b.APIType && a.BaseURL == b.BaseURL &&
		a.APIVersion == b.APIVersion && slices.Equal(a.Models, b.Models) && bytes.Equal(a.APIKeySealed, b.APIKeySealed)
}

// connect opens p's key and builds its client, or records why it cannot.
func (r *Router) connect(p engine.ModelProvider) *entry {
	p.APIKey = ""
	e := &entry{p: p}
	key := ""
	if len(p.APIKeySealed) > 0 {
		var err error
		if key, err = r.openKey(&p); err != nil {
			e.err = err
			return e
		}
	}
	client, err := r.cfg.Connect(p, key)
	if err != nil {
		e.err = connectError(p.Name, err)
		return e
	}
	e.client = client
	return e
}

// openKey opens p's sealed key, or says which provider's key cannot be
// opened and what to do.
func (r *Router) openKey(p *engine.ModelProvider) (string, error) {
	key, err := r.cfg.Secrets.Open(p.APIKeySealed)
	switch {
	case err == nil:
		return key, nil
	case r.cfg.Secrets == nil:
		return "", engine.WrapError(engine.EUNAVAILABLE, err, "Model provider %q has an API key, but no encryption key is configured to read it; an admin should set security.encryption_key (the same on every replica).", p.Name)
	default:
		return "", engine.WrapError(engine.EUNAVAILABLE, err, "The API key of model provider %q cannot be decrypted: it was sealed with another key; an admin should check security.encryption_key, or enter the provider's API key again in Settings.", p.Name)
	}
}

func connectError(name string, err error) error {
	return engine.WrapError(engine.EUNAVAILABLE, err, "Model provider %q cannot be used; an admin should check its settings: %s", name, engine.ErrorMessage(err))
}
