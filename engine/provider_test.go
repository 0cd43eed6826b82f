package engine_test

import (
	"strings"
	"testing"

	"github.com/convosphere/convosphere/engine"
)

func TestModelProviderValidate(t *testing.T) {
	valid := func() engine.ModelProvider {
		return engine.ModelProvider{Name: "acme", BaseURL: "http://127.0.0.1:11434/v1", Models: []string{"llama3.1", "meta-llama/Llama-3-8B"}}
	}
	tests := []struct {
		name string
		edit func(*engine.ModelProvider)
		says string // "" = valid
	}{
		{"valid", func(*engine.ModelProvider) {}, ""},
		{"openai without base URL", func(p *engine.ModelProvider) { p.BaseURL, p.APIType = "", "openai" }, ""},
		{"azure", func(p *engine.ModelProvider) {
			p.APIType, p.BaseURL, p.APIVersion, p.APIKeySealed = "azure", "https://x.openai.azure.com", "2024-10-21", []byte{1}
		}, ""},
		{"name upper case", func(p *engine.ModelProvider) { p.Name = "Acme" }, "name \"Acme\" is invalid"},
		{"name with slash", func(p *engine.ModelProvider) { p.Name = "a/b" }, "is invalid"},
		{"name too long", func(p *engine.ModelProvider) { p.Name = strings.Repeat("a", 33) }, "up to 32"},
		{"empty name", func(p *engine.ModelProvider) { p.Name = "" }, "is invalid"},
		{"unknown type", func(p *engine.ModelProvider) { p.APIType = "anthropic" }, "API type \"anthropic\" is unknown"},
		{"azure without URL", func(p *engine.ModelProvider) { p.APIType, p.BaseURL, p.APIKey = "azure", "", "k" }, "needs a base URL"},
		{"azure without key", func(p *engine.ModelProvider) { p.APIType, p.BaseURL = "azure", "https://x.openai.azure.com" }, "needs an API key"},
		{"bad URL", func(p *engine.ModelProvider) { p.BaseURL = "localhost:11434" }, "is not an http(s) URL"},
		{"URL with credentials", func(p *engine.ModelProvider) { p.BaseURL = "https://u:p@x.example/v1" }, "must not contain credentials"},
		{"version without azure", func(p *engine.ModelProvider) { p.APIVersion = "2024-10-21" }, "applies to Azure only"},
		{"no models", func(p *engine.ModelProvider) { p.Models = nil }, "at least one model"},
		{"blank model", func(p *engine.ModelProvider) { p.Models = []string{" "} }, "is invalid"},
		{"model with space", func(p *engine.ModelProvider) { p.Models = []string{"gpt 4"} }, "without spaces"},
		{"duplicate model", func(p *engine.ModelProvider) { p.Models = []string{"m", "m"} }, "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := valid()
			tt.edit(&p)
			err := p.Validate()
			if tt.says == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if engine.ErrorCode(err) != engine.EINVALID || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("Validate = %v, want EINVALID saying %q", err, tt.says)
			}
		})
	}

	p := valid()
	if p.HasAPIKey() {
		t.Fatal("HasAPIKey without a key")
	}
	p.APIKey = "sk-plain"
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := p.ValidateSealed(); engine.ErrorCode(err) != engine.EINVALID || !strings.Contains(err.Error(), "not sealed") {
		t.Fatalf("ValidateSealed with a plain key only = %v", err)
	}
	p.APIKeySealed = []byte{1, 2}
	if err := p.ValidateSealed(); err != nil {
		t.Fatal(err)
	}
	p.APIKey = ""
	if !p.HasAPIKey() {
		t.Fatal("HasAPIKey with a sealed key = false")
	}
	if got := p.QualifiedModels(); strings.Join(got, ",") != "acme/llama3.1,acme/meta-llama/Llama-3-8B" {
		t.Fatalf("QualifiedModels = %q", got)
	}
}
