package router_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/llm/openai"
	"github.com/convosphere/convosphere/llm/openaitest"
	"github.com/convosphere/convosphere/llm/router"
)

// providers is an in-memory engine.ProviderStore.
type providers struct {
	mu    sync.Mutex
	list  map[string]engine.ModelProvider
	err   error // returned by ModelProviders when set
	reads int
}

func (s *providers) SaveModelProvider(_ context.Context, p *engine.ModelProvider) error {
	if err := p.ValidateSealed(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.list == nil {
		s.list = map[string]engine.ModelProvider{}
	}
	p.UpdatedAt = engine.StoredTime(time.Now())
	c := *p
	c.APIKey = ""
	s.list[p.Name] = c
	return nil
}

func (s *providers) DeleteModelProvider(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.list[name]; !ok {
		return engine.Errorf(engine.ENOTFOUND, "Model provider %q was not found.", name)
	}
	delete(s.list, name)
	return nil
}

func (s *providers) ModelProviders(context.Context) ([]*engine.ModelProvider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.err != nil {
		return nil, s.err
	}
	out := []*engine.ModelProvider{}
	for _, p := range s.list {
		out = append(out, &p)
	}
	slices.SortFunc(out, func(a, b *engine.ModelProvider) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (s *providers) readCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

func (s *providers) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// MustSecretBox returns a SecretBox over a key of 32 copies of b.
func MustSecretBox(tb testing.TB, b byte) *engine.SecretBox {
	tb.Helper()
	box, err := engine.NewSecretBox(bytes.Repeat([]byte{b}, engine.EncryptionKeySize))
	if err != nil {
		tb.Fatal(err)
	}
	return box
}

// MustSave seals key (when not empty) with box and saves a provider of srv.
func MustSave(tb testing.TB, store *providers, box *engine.SecretBox, name string, srv *openaitest.Server, key string) {
	tb.Helper()
	p := &engine.ModelProvider{Name: name, BaseURL: srv.BaseURL(), Models: []string{"m1", "m2"}}
	if key != "" {
		sealed, err := box.Seal(key)
		if err != nil {
			tb.Fatal(err)
		}
		p.APIKeySealed = sealed
	}
	if err := store.SaveModelProvider(context.Background(), p); err != nil {
		tb.Fatal(err)
	}
}

// fixture is a router over a default server and a store of providers.
type fixture struct {
	router   *router.Router
	store    *providers
	box      *engine.SecretBox
	def      *openaitest.Server
	connects atomic.Int32
}

func newFixture(tb testing.TB, refresh time.Duration) *fixture {
	tb.Helper()
	f := &fixture{store: &providers{}, box: MustSecretBox(tb, 7), def: openaitest.NewServer(tb)}
	def, err := openai.New(openai.Config{BaseURL: f.def.BaseURL(), Model: "default-model", EmbeddingModel: "embed", MaxRetries: -1})
	if err != nil {
		tb.Fatal(err)
	}
	f.router, err = router.New(router.Config{
		Default: def, Providers: f.store, Secrets: f.box, RefreshEvery: refresh,
		Connect: func(p engine.ModelProvider, apiKey string) (engine.LanguageModel, error) {
			f.connects.Add(1)
			return openai.New(openai.Config{BaseURL: p.BaseURL, APIKey: apiKey, APIType: p.APIType, APIVersion: p.APIVersion,
				Model: p.Models[0], MaxRetries: -1, Settings: "model provider " + p.Name})
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// MustAnswer streams a request for model through r and returns the
// answer's text and the model the events named.
func MustAnswer(tb testing.TB, r engine.LanguageModel, model string) (text, answered string) {
	tb.Helper()
	events, err := r.Stream(context.Background(), engine.ChatRequest{Model: model, Messages: []engine.ChatMessage{{Role: engine.RoleUser, Content: "hi"}}})
	if err != nil {
		tb.Fatalf("Stream(%q): %v", model, err)
	}
	timeout := time.After(10 * time.Second)
	var b strings.Builder
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				tb.Fatalf("Stream(%q) closed without EventDone", model)
			}
			if ev.Model != "" {
				answered = ev.Model
			}
			switch ev.Kind {
			case engine.EventText:
				b.WriteString(ev.Text)
			case engine.EventError:
				tb.Fatalf("Stream(%q): %v", model, ev.Err)
			case engine.EventDone:
				return b.String(), answered
			}
		case <-timeout:
			tb.Fatalf("Stream(%q) did not finish", model)
		}
	}
}

// mustFail fails tb unless streaming model fails with code and a message
// containing every one of says.
func mustFail(tb testing.TB, r engine.LanguageModel, model, code string, says ...string) {
	tb.Helper()
	events, err := r.Stream(context.Background(), engine.ChatRequest{Model: model, Messages: []engine.ChatMessage{{Role: engine.RoleUser, Content: "hi"}}})
	if err == nil {
		for ev := range events {
			if ev.Kind == engine.EventError {
				err = ev.Err
			}
		}
	}
	if engine.ErrorCode(err) != code {
		tb.Fatalf("Stream(%q) error = %v (%s), want %s", model, err, engine.ErrorCode(err), code)
	}
	for _, s := range says {
		if !strings.Contains(engine.ErrorMessage(err), s) {
			tb.Fatalf("Stream(%q) error %q does not say %q", model, engine.ErrorMessage(err), s)
		}
	}
}

// lastRequest returns the last chat request srv got, failing if it got
// none.
func lastRequest(tb testing.TB, srv *openaitest.Server) openaitest.ChatRequest {
	tb.Helper()
	reqs := srv.Requests()
	if len(reqs) == 0 {
		tb.Fatal("the server got no request")
	}
	return reqs[len(reqs)-1]
}

func TestRouting(t *testing.T) {
	f := newFixture(t, time.Hour)
	alpha, beta := openaitest.NewServer(t), openaitest.NewServer(t)
	alpha.RequireAPIKey("key-alpha")
	alpha.SetDefault(func(openaitest.ChatRequest) openaitest.Reply { return openaitest.Reply{Text: "from alpha"} })
	beta.SetDefault(func(openaitest.ChatRequest) openaitest.Reply { return openaitest.Reply{Text: "from beta"} })
	f.def.SetDefault(func(openaitest.ChatRequest) openaitest.Reply { return openaitest.Reply{Text: "from default"} })
	MustSave(t, f.store, f.box, "alpha", alpha, "key-alpha")
	MustSave(t, f.store, f.box, "beta", beta, "") // a local server without a key

	tests := []struct {
		model     string
		srv       *openaitest.Server
		text      string
		sentModel string
		answered  string
		auth      string
	}{
		{"alpha/m1", alpha, "from alpha", "m1", "alpha/m1", "Bearer key-alpha"},
		{"beta/m2", beta, "from beta", "m2", "beta/m2", ""},
		{"alpha/a/b", alpha, "from alpha", "a/b", "alpha/a/b", "Bearer key-alpha"},
		{"", f.def, "from default", "default-model", "default-model", ""},
		{"gpt-4o", f.def, "from default", "gpt-4o", "gpt-4o", ""},
		{"meta-llama/Llama-3-8B", f.def, "from default", "meta-llama/Llama-3-8B", "meta-llama/Llama-3-8B", ""},
		{"/m1", f.def, "from default", "/m1", "/m1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			text, answered := MustAnswer(t, f.router, tt.model)
			req := lastRequest(t, tt.srv)
			if text != tt.text || answered != tt.answered || req.Model != tt.sentModel || req.Header.Get("Authorization") != tt.auth {
				t.Fatalf("got %q from %q; server saw model %q with Authorization %q; want %q from %q, model %q, Authorization %q",
					text, answered, req.Model, req.Header.Get("Authorization"), tt.text, tt.answered, tt.sentModel, tt.auth)
			}
		})
	}
	if n := f.connects.Load(); n != 2 {
		t.Errorf("%d clients built, want 2 (one per provider, reused)", n)
	}
	mustFail(t, f.router, "alpha/", engine.EINVALID, `"alpha/" names model provider "alpha" but no model`, "alpha/m1")

	// The router names its default model's default and embeds with it.
	if got := f.router.DefaultModel(); got != "default-model" {
		t.Errorf("DefaultModel = %q", got)
	}
	if v, err := f.router.Embed(context.Background(), []string{"a", "b"}); err != nil || len(v) != 2 {
		t.Errorf("Embed = %d vectors, %v", len(v), err)
	}
}

func TestUpdatesArePickedUp(t *testing.T) {
	f := newFixture(t, 50*time.Millisecond)
	one, two := openaitest.NewServer(t), openaitest.NewServer(t)
	one.SetDefault(func(openaitest.ChatRequest) openaitest.Reply { return openaitest.Reply{Text: "one"} })
	two.SetDefault(func(openaitest.ChatRequest) openaitest.Reply { return openaitest.Reply{Text: "two"} })
	two.RequireAPIKey("new-key")

	// Before the provider exists its name is just a model name.
	if text, _ := MustAnswer(t, f.router, "acme/m1"); text == "one" {
		t.Fatal("an unknown provider was routed")
	}
	MustSave(t, f.store, f.box, "acme", one, "old-key")
	waitFor(t, f.router, "acme/m1", "one")

	// Unchanged providers keep their client, however often they are read.
	time.Sleep(120 * time.Millisecond)
	MustAnswer(t, f.router, "acme/m1")
	if n := f.connects.Load(); n != 1 {
		t.Fatalf("%d clients built for an unchanged provider, want 1", n)
	}

	// A changed address and key reach the router within the refresh interval.
	MustSave(t, f.store, f.box, "acme", two, "new-key")
	waitFor(t, f.router, "acme/m1", "two")
	if n := f.connects.Load(); n != 2 {
		t.Fatalf("%d clients built after one change, want 2", n)
	}
	if got := lastRequest(t, two).Header.Get("Authorization"); got != "Bearer new-key" {
		t.Fatalf("Authorization = %q", got)
	}

	// Refresh reads at once.
	slow := newFixture(t, time.Hour)
	MustAnswer(t, slow.router, "acme/m1") // loads the (empty) providers
	MustSave(t, slow.store, slow.box, "acme", one, "")
	if err := slow.router.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if text, _ := MustAnswer(t, slow.router, "acme/m1"); text != "one" {
		t.Fatalf("after Refresh: %q", text)
	}
}

// waitFor streams model until the answer is want, for up to 5 seconds;
// failures in between are retried.
func waitFor(tb testing.TB, r engine.LanguageModel, model, want string) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var text string
	var err error
	for time.Now().Before(deadline) {
		if text, err = answer(r, model); err == nil && text == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("%s still answers %q (%v), want %q", model, text, err, want)
}

// answer streams a request for model and returns its text or error.
func answer(r engine.LanguageModel, model string) (string, error) {
	events, err := r.Stream(context.Background(), engine.ChatRequest{Model: model, Messages: []engine.ChatMessage{{Role: engine.RoleUser, Content: "hi"}}})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for ev := range events {
		switch ev.Kind {
		case engine.EventText:
			b.WriteString(ev.Text)
		case engine.EventError:
			err = ev.Err
		}
	}
	return b.String(), err
}

func TestDeletedProviderFails(t *testing.T) {
	f := newFixture(t, 20*time.Millisecond)
	acme := openaitest.NewServer(t)
	MustSave(t, f.store, f.box, "acme", acme, "k")
	MustAnswer(t, f.router, "acme/m1")
	if err := f.store.DeleteModelProvider(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(40 * time.Millisecond)
	before := len(acme.Requests()) + len(f.def.Requests())
	mustFail(t, f.router, "acme/m1", engine.EUNAVAILABLE, `Model provider "acme" was deleted`, `choose another model`)
	if after := len(acme.Requests()) + len(f.def.Requests()); after != before {
		t.Fatal("a request for a deleted provider reached a server")
	}

	// Created again, it is used again.
	MustSave(t, f.store, f.box, "acme", acme, "k")
	waitFor(t, f.router, "acme/m1", "You asked: hi [1]")
}

func TestUnusableKeyFails(t *testing.T) {
	f := newFixture(t, time.Hour)
	acme := openaitest.NewServer(t)
	MustSave(t, f.store, MustSecretBox(t, 9), "acme", acme, "sealed-with-another-key")
	mustFail(t, f.router, "acme/m1", engine.EUNAVAILABLE, `The API key of model provider "acme" cannot be decrypted`, "security.encryption_key")
	if n := len(acme.Requests()) + len(f.def.Requests()); n != 0 {
		t.Fatalf("%d requests reached a server", n)
	}

	// Without an encryption key at all (PostgreSQL without security.encryption_key).
	def, _ := openai.New(openai.Config{BaseURL: f.def.BaseURL(), Model: "d", MaxRetries: -1})
	nokey, err := router.New(router.Config{Default: def, Providers: f.store, Connect: func(p engine.ModelProvider, k string) (engine.LanguageModel, error) {
		return openai.New(openai.Config{BaseURL: p.BaseURL, APIKey: k, Model: "m"})
	}})
	if err != nil {
		t.Fatal(err)
	}
	mustFail(t, nokey, "acme/m1", engine.EUNAVAILABLE, `Model provider "acme" has an API key, but no encryption key is configured`, "set security.encryption_key")

	// A key the server rejects names the provider, not llm.api_key.
	acme.RequireAPIKey("right")
	MustSave(t, f.store, f.box, "acme", acme, "wrong")
	if err := f.router.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustFail(t, f.router, "acme/m1", engine.EUNAVAILABLE, "rejected the API key", "the API key of model provider acme")
}

func TestStoreFailures(t *testing.T) {
	f := newFixture(t, 20*time.Millisecond)
	f.store.setErr(errors.New("database is locked"))
	mustFail(t, f.router, "acme/m1", engine.EUNAVAILABLE, "The model providers could not be read")
	// Requests that name no provider do not read the store.
	reads := f.store.readCount()
	if text, _ := MustAnswer(t, f.router, "gpt-4o"); text == "" {
		t.Fatal("no answer")
	}
	if f.store.readCount() != reads {
		t.Fatal("a request without a provider prefix read the store")
	}

	// After one good read, a failing store keeps the last providers.
	acme := openaitest.NewServer(t)
	f.store.setErr(nil)
	MustSave(t, f.store, f.box, "acme", acme, "")
	MustAnswer(t, f.router, "acme/m1")
	f.store.setErr(errors.New("connection reset"))
	time.Sleep(40 * time.Millisecond)
	MustAnswer(t, f.router, "acme/m1")
	if n := len(acme.Requests()); n != 2 {
		t.Fatalf("acme got %d requests, want 2", n)
	}
}

func TestProviderModels(t *testing.T) {
	f := newFixture(t, time.Hour)
	srv := openaitest.NewServer(t)
	srv.RequireAPIKey("sk-test")
	srv.SetModels("gpt-4o-mini", "gpt-4o")
	sealed, err := f.box.Seal("sk-test")
	if err != nil {
		t.Fatal(err)
	}
	otherSealed, _ := MustSecretBox(t, 1).Seal("sk-test")
	tests := []struct {
		name string
		p    engine.ModelProvider
		code string
		says string
	}{
		{"plain key, no models yet", engine.ModelProvider{Name: "new", BaseURL: srv.BaseURL(), APIKey: "sk-test"}, "", ""},
		{"sealed key", engine.ModelProvider{Name: "saved", BaseURL: srv.BaseURL(), APIKeySealed: sealed, Models: []string{"x"}}, "", ""},
		{"wrong key", engine.ModelProvider{Name: "bad", BaseURL: srv.BaseURL(), APIKey: "nope"}, engine.EUNAVAILABLE, "the API key of model provider bad"},
		{"key sealed with another key", engine.ModelProvider{Name: "old", BaseURL: srv.BaseURL(), APIKeySealed: otherSealed}, engine.EUNAVAILABLE, "security.encryption_key"},
		{"bad URL", engine.ModelProvider{Name: "url", BaseURL: "ftp://x"}, engine.EUNAVAILABLE, `Model provider "url" cannot be used`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.p
			if len(p.Models) == 0 {
				p.Models = []string{"placeholder"} // the test Connect takes the first
			}
			got, err := f.router.ProviderModels(context.Background(), &p)
			if tt.code == "" {
				if err != nil || strings.Join(got, ",") != "gpt-4o-mini,gpt-4o" {
					t.Fatalf("ProviderModels = %v, %v", got, err)
				}
				return
			}
			if engine.ErrorCode(err) != tt.code || !strings.Contains(engine.ErrorMessage(err), tt.says) {
				t.Fatalf("ProviderModels error = %v, want %s saying %q", err, tt.code, tt.says)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	def, _ := openai.New(openai.Config{Model: "m"})
	tests := []struct {
		name string
		cfg  router.Config
		ok   bool
	}{
		{"default only", router.Config{Default: def}, true},
		{"no default", router.Config{}, false},
		{"providers without connect", router.Config{Default: def, Providers: &providers{}}, false},
		{"negative refresh", router.Config{Default: def, RefreshEvery: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := router.New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New = %v", err)
			}
		})
	}
}

func TestCancelStopsTheStream(t *testing.T) {
	f := newFixture(t, time.Hour)
	acme := openaitest.NewServer(t)
	acme.Script(openaitest.Reply{Chunks: []string{"a ", "b ", "c"}, Interrupt: openaitest.Stall, InterruptAfter: 1})
	MustSave(t, f.store, f.box, "acme", acme, "")
	ctx, cancel := context.WithCancel(context.Background())
	events, err := f.router.Stream(ctx, engine.ChatRequest{Model: "acme/m1", Messages: []engine.ChatMessage{{Role: engine.RoleUser, Content: "hi"}}})
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-events; ev.Kind != engine.EventText || ev.Model != "acme/m1" {
		t.Fatalf("first event = %+v", ev)
	}
	cancel()
	done := make(chan struct{})
	go func() {
		for range events { // the consumer may stop reading; here it drains
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not close after cancel")
	}
}
