package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustWriteFile(tb testing.TB, body string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "convosphere.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestLoadDefaultsFileAndEnv(t *testing.T) {
	t.Setenv("CONVOSPHERE_CONFIG", "")
	file := mustWriteFile(t, "console:\n  addr: 127.0.0.1:9000\nllm:\n  model: from-file\n  base_url: http://localhost:11434/v1\n")
	t.Setenv("CONVOSPHERE_LLM_MODEL", "from-env")
	t.Setenv("CONVOSPHERE_DATA_DIR", "/tmp/cs-data")
	t.Setenv("CONVOSPHERE_ENGINE_STALL_TIMEOUT", "10s")
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"file overrides default", c.Console.Addr, "127.0.0.1:9000"},
		{"env overrides file", c.LLM.Model, "from-env"},
		{"env sets top-level key", c.DataDir, "/tmp/cs-data"},
		{"env parses durations", c.Engine.StallTimeout, 10 * time.Second},
		{"default kept", c.Bot.Addr, "127.0.0.1:8081"},
		{"default message limit", c.Engine.MaxMessageBytes, 16384},
		{"default inbox retention", c.Bot.InboxRetention, 7 * 24 * time.Hour},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestLoadErrorsNameKeyAndFix(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		env     map[string]string
		wantKey string
	}{
		{"unknown key in file", "consol:\n  addr: x\n", nil, "consol"},
		{"malformed yaml", "console: [\n", nil, "valid YAML"},
		{"bad console addr", "", map[string]string{"CONVOSPHERE_CONSOLE_ADDR": "8080"}, "console.addr"},
		{"bad database url", "", map[string]string{"CONVOSPHERE_DATABASE_URL": "mysql://x/y"}, "database.url"},
		{"base url without model", "", map[string]string{"CONVOSPHERE_LLM_BASE_URL": "http://localhost:11434/v1"}, "llm.model"},
		{"bad llm url", "", map[string]string{"CONVOSPHERE_LLM_BASE_URL": "localhost:11434", "CONVOSPHERE_LLM_MODEL": "m"}, "llm.base_url"},
		{"short admin password", "", map[string]string{"CONVOSPHERE_ADMIN_PASSWORD": "short"}, "admin.password"},
		{"bad duration", "", map[string]string{"CONVOSPHERE_ENGINE_TURN_TIMEOUT": "soon"}, "turn_timeout"},
		{"message limit", "", map[string]string{"CONVOSPHERE_ENGINE_MAX_MESSAGE_BYTES": "0"}, "engine.max_message_bytes"},
		{"inbox retention too short", "", map[string]string{"CONVOSPHERE_BOT_INBOX_RETENTION": "10m"}, "bot.inbox_retention"},
		{"log level", "", map[string]string{"CONVOSPHERE_LOG_LEVEL": "loud"}, "log.level"},
		{"slack mode", "", map[string]string{"CONVOSPHERE_SLACK_MODE": "rtm"}, "slack.mode"},
		{"slack http without secret", "", map[string]string{"CONVOSPHERE_SLACK_BOT_TOKEN": "xoxb-1"}, "slack.signing_secret"},
		{"slack socket without app token", "", map[string]string{"CONVOSPHERE_SLACK_BOT_TOKEN": "xoxb-1", "CONVOSPHERE_SLACK_MODE": "socket"}, "slack.app_token"},
		{"slack user token", "", map[string]string{"CONVOSPHERE_SLACK_BOT_TOKEN": "xoxp-1", "CONVOSPHERE_SLACK_SIGNING_SECRET": "s"}, "slack.bot_token"},
		{"slack secret without token", "", map[string]string{"CONVOSPHERE_SLACK_SIGNING_SECRET": "s"}, "slack.bot_token"},
		{"discord without application id", "", map[string]string{"CONVOSPHERE_DISCORD_BOT_TOKEN": "t", "CONVOSPHERE_DISCORD_PUBLIC_KEY": strings.Repeat("ab", 32)}, "discord.application_id"},
		{"discord bad public key", "", map[string]string{"CONVOSPHERE_DISCORD_BOT_TOKEN": "t", "CONVOSPHERE_DISCORD_APPLICATION_ID": "1", "CONVOSPHERE_DISCORD_PUBLIC_KEY": "zz"}, "discord.public_key"},
		{"mattermost without token", "", map[string]string{"CONVOSPHERE_MATTERMOST_URL": "https://chat.example.com"}, "mattermost.token"},
		{"mattermost url", "", map[string]string{"CONVOSPHERE_MATTERMOST_URL": "chat.example.com", "CONVOSPHERE_MATTERMOST_TOKEN": "t"}, "mattermost.url"},
		{"discord mode", "", map[string]string{"CONVOSPHERE_DISCORD_MODE": "rtm"}, "discord.mode"},
		{"slack api url", "", map[string]string{"CONVOSPHERE_SLACK_BOT_TOKEN": "xoxb-1", "CONVOSPHERE_SLACK_SIGNING_SECRET": "s", "CONVOSPHERE_SLACK_API_URL": "slack.com/api"}, "slack.api_url"},
		{"short encryption key", "", map[string]string{"CONVOSPHERE_SECURITY_ENCRYPTION_KEY": "c2hvcnQ="}, "security.encryption_key"},
		{"encryption key not base64", "security:\n  encryption_key: not a key\n", nil, "openssl rand -base64 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CONVOSPHERE_CONFIG", "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			file := ""
			if tt.file != "" {
				file = mustWriteFile(t, tt.file)
			}
			_, err := Load(file)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantKey) {
				t.Errorf("error %q does not name %q", err, tt.wantKey)
			}
		})
	}
}

func TestRedacted(t *testing.T) {
	c := Default()
	c.Admin.Password = "very-secret-password"
	c.LLM.APIKey = "sk-live-123"
	c.Slack.BotToken, c.Slack.SigningSecret, c.Slack.AppToken = "xoxb-secret-token", "slack-signing-secret", "xapp-secret-token"
	c.Discord.BotToken = "discord-secret-token"
	c.Mattermost.Token = "mattermost-secret-token"
	c.Security.EncryptionKey = "3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	c.Database.URL = "postgres://cs:dbpass@db:5432/cs?sslmode=disable"
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, secret := range []string{"very-secret-password", "sk-live-123", "dbpass", "xoxb-secret-token", "slack-signing-secret", "xapp-secret-token", "discord-secret-token", "mattermost-secret-token", "3q2+7w"} {
		if strings.Contains(s, secret) {
			t.Errorf("redacted config leaks %q:\n%s", secret, s)
		}
	}
	for _, want := range []string{"[redacted]", "postgres://cs:redacted@db:5432/cs", "session_ttl: 12h0m0s", "addr: 127.0.0.1:8080"} {
		if !strings.Contains(s, want) {
			t.Errorf("redacted config lacks %q:\n%s", want, s)
		}
	}
}

func TestEncryptionKey(t *testing.T) {
	t.Setenv("CONVOSPHERE_CONFIG", "")
	const key = "3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	t.Setenv("CONVOSPHERE_SECURITY_ENCRYPTION_KEY", key)
	c, err := Load("")
	if err != nil || c.Security.EncryptionKey != key {
		t.Fatalf("Load = %q, %v", c.Security.EncryptionKey, err)
	}
	t.Setenv("CONVOSPHERE_SECURITY_ENCRYPTION_KEY", "c2VjcmV0LWJ1dC10b28tc2hvcnQ=")
	_, err = Load("")
	for _, want := range []string{"security.encryption_key", "CONVOSPHERE_SECURITY_ENCRYPTION_KEY", "decodes to 20 bytes, not 32", "openssl rand -base64 32"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "c2VjcmV0") {
		t.Errorf("the error repeats the key: %v", err)
	}
}

func TestExampleFileLoads(t *testing.T) {
	t.Setenv("CONVOSPHERE_CONFIG", "")
	if _, err := Load("../../../configs/convosphere.example.yaml"); err != nil {
		t.Fatalf("the example configuration does not load: %v", err)
	}
}

func TestMCPServersFromFile(t *testing.T) {
	t.Setenv("CONVOSPHERE_CONFIG", "")
	file := mustWriteFile(t, "tools:\n  mcp_servers:\n    - name: files\n      transport: stdio\n      command: npx\n      args: [\"-y\", \"server\"]\n      env:\n        API_TOKEN: very-secret-value\n")
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tools.MCPServers) != 1 || c.Tools.MCPServers[0].Command != "npx" || len(c.Tools.MCPServers[0].Args) != 2 || c.Tools.MCPServers[0].Env["API_TOKEN"] != "very-secret-value" {
		t.Fatalf("servers %+v", c.Tools.MCPServers)
	}
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "very-secret-value") || !strings.Contains(string(out), "API_TOKEN") {
		t.Errorf("redacted config:\n%s", out)
	}
}

func TestModelPricesFromFile(t *testing.T) {
	t.Setenv("CONVOSPHERE_CONFIG", "")
	file := mustWriteFile(t, "console:\n  model_prices:\n    gpt-4o-mini: {input_per_million: 0.15, output_per_million: 0.6}\n    acme/Llama-3-70B: {input_per_million: 0.9, output_per_million: 0.9}\n")
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Console.ModelPrices["gpt-4o-mini"]; p.InputPerMillion != 0.15 || p.OutputPerMillion != 0.6 {
		t.Errorf("gpt-4o-mini price %+v", p)
	}
	if _, ok := c.Console.ModelPrices["acme/Llama-3-70B"]; !ok {
		t.Errorf("the model name lost its case: %v", c.Console.ModelPrices)
	}
	bad := mustWriteFile(t, "console:\n  model_prices:\n    m: {input_per_million: -1}\n")
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "console.model_prices") {
		t.Errorf("a negative price: %v", err)
	}
}
