package storetest

import (
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// providerNames returns the names of list, in order.
func providerNames(list []*engine.ModelProvider) []string {
	names := []string{}
	for _, p := range list {
		names = append(names, p.Name)
	}
	return names
}

func testModelProviders(t *testing.T, s engine.Store) {
	ctx := t.Context()
	list, err := s.ModelProviders(ctx)
	Must(t, err)
	MustEqual(t, "providers of an empty store", providerNames(list), []string{})

	// Every byte of a sealed key survives; the plain key is never stored;
	// an empty APIType is stored as openai.
	sealed := []byte{1, 0, 0xff, 0x80, '\'', '"', 0, 0x7f, 0xfe}
	acme := &engine.ModelProvider{Name: "acme", BaseURL: "https://llm.acme.example/v1", Models: []string{"gpt-4o-mini", "meta-llama/Llama-3-8B"},
		APIKey: "sk-plain-must-not-be-stored", APIKeySealed: sealed}
	Must(t, s.SaveModelProvider(ctx, acme))
	mustStoredTime(t, "CreatedAt", acme.CreatedAt)
	mustStoredTime(t, "UpdatedAt", acme.UpdatedAt)
	if !acme.CreatedAt.Equal(acme.UpdatedAt) || time.Since(acme.CreatedAt) > time.Minute {
		t.Fatalf("new provider: CreatedAt %v, UpdatedAt %v: want both about now", acme.CreatedAt, acme.UpdatedAt)
	}
	MustEqual(t, "APIType", acme.APIType, engine.ModelAPIOpenAI)

	// A provider without a key (a local server) and an Azure one.
	local := &engine.ModelProvider{Name: "a-local", APIType: engine.ModelAPIOpenAI, BaseURL: "http://127.0.0.1:11434/v1", Models: []string{"llama3.1"}}
	Must(t, s.SaveModelProvider(ctx, local))
	azure := &engine.ModelProvider{Name: "z_azure", APIType: engine.ModelAPIAzure, BaseURL: "https://x.openai.azure.com", APIVersion: "2024-10-21",
		Models: []string{"prod-gpt4o"}, APIKeySealed: []byte{1, 2, 3}}
	Must(t, s.SaveModelProvider(ctx, azure))

	list, err = s.ModelProviders(ctx)
	Must(t, err)
	want := func(p *engine.ModelProvider) *engine.ModelProvider {
		c := *p
		c.APIKey = ""
		return &c
	}
	// Ordered by name, bytewise ("a-local" before "acme").
	MustEqual(t, "stored providers", list, []*engine.ModelProvider{want(local), want(acme), want(azure)})
	if list[0].APIKeySealed != nil {
		t.Fatalf("a provider without a key has APIKeySealed %v, want nil", list[0].APIKeySealed)
	}

	// Replacing keeps CreatedAt, moves UpdatedAt, and replaces every field
	// (here: the key is removed).
	time.Sleep(2 * time.Millisecond)
	again := &engine.ModelProvider{Name: "acme", APIType: engine.ModelAPIOpenAI, Models: []string{"gpt-4o"}}
	Must(t, s.SaveModelProvider(ctx, again))
	if !again.CreatedAt.Equal(acme.CreatedAt) || !again.UpdatedAt.After(acme.UpdatedAt) {
		t.Fatalf("replaced provider: CreatedAt %v (was %v), UpdatedAt %v (was %v)", again.CreatedAt, acme.CreatedAt, again.UpdatedAt, acme.UpdatedAt)
	}
	list, err = s.ModelProviders(ctx)
	Must(t, err)
	MustEqual(t, "replaced provider", list[1], again)

	// Deleting.
	Must(t, s.DeleteModelProvider(ctx, "acme"))
	err = s.DeleteModelProvider(ctx, "acme")
	MustCode(t, err, engine.ENOTFOUND)
	mustMessageNames(t, err, "acme")
	list, err = s.ModelProviders(ctx)
	Must(t, err)
	MustEqual(t, "providers after deleting acme", providerNames(list), []string{"a-local", "z_azure"})
}

func testModelProviderValidation(t *testing.T, s engine.Store) {
	ctx := t.Context()
	tests := []struct {
		name string
		p    engine.ModelProvider
		says string
	}{
		{"bad name", engine.ModelProvider{Name: "Bad Name", Models: []string{"m"}}, "Bad Name"},
		{"unknown API type", engine.ModelProvider{Name: "p", APIType: "bedrock", Models: []string{"m"}}, "bedrock"},
		{"azure without URL", engine.ModelProvider{Name: "p", APIType: engine.ModelAPIAzure, Models: []string{"m"}, APIKeySealed: []byte{1}}, "base URL"},
		{"no models", engine.ModelProvider{Name: "p"}, "at least one model"},
		{"plain key only", engine.ModelProvider{Name: "p", Models: []string{"m"}, APIKey: "sk-plain"}, "not sealed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.SaveModelProvider(ctx, &tt.p)
			MustCode(t, err, engine.EINVALID)
			mustMessageNames(t, err, tt.says)
		})
	}
	list, err := s.ModelProviders(ctx)
	Must(t, err)
	MustEqual(t, "providers after invalid saves", providerNames(list), []string{})
	MustCode(t, s.DeleteModelProvider(ctx, "nobody"), engine.ENOTFOUND)
}
