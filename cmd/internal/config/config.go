// Package config reads ConvoSphere's configuration with viper: built-in
// defaults, then an optional YAML file, then CONVOSPHERE_* environment
// variables (the key upper-cased with dots turned into underscores, e.g.
// console.addr → CONVOSPHERE_CONSOLE_ADDR). Only cmd/* reads configuration;
// components receive plain Config structs.
package config

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/convosphere/convosphere/engine"
)

// EnvPrefix prefixes every environment variable.
const EnvPrefix = "CONVOSPHERE"

// Config is the effective configuration of both binaries. Fields tagged
// secret:"true" are redacted when printed.
type Config struct {
	DataDir    string     `mapstructure:"data_dir" yaml:"data_dir"`
	Console    Console    `mapstructure:"console" yaml:"console"`
	Bot        Bot        `mapstructure:"bot" yaml:"bot"`
	Admin      Admin      `mapstructure:"admin" yaml:"admin"`
	Security   Security   `mapstructure:"security" yaml:"security"`
	Database   Database   `mapstructure:"database" yaml:"database"`
	Redis      Redis      `mapstructure:"redis" yaml:"redis"`
	Weaviate   Weaviate   `mapstructure:"weaviate" yaml:"weaviate"`
	LLM        LLM        `mapstructure:"llm" yaml:"llm"`
	Rerank     Rerank     `mapstructure:"rerank" yaml:"rerank"`
	Knowledge  Knowledge  `mapstructure:"knowledge" yaml:"knowledge"`
	Slack      Slack      `mapstructure:"slack" yaml:"slack"`
	Discord    Discord    `mapstructure:"discord" yaml:"discord"`
	Mattermost Mattermost `mapstructure:"mattermost" yaml:"mattermost"`
	Tools      Tools      `mapstructure:"tools" yaml:"tools"`
	Engine     Engine     `mapstructure:"engine" yaml:"engine"`
	RateLimits RateLimits `mapstructure:"rate_limits" yaml:"rate_limits"`
	Log        Log        `mapstructure:"log" yaml:"log"`
	Demo       Demo       `mapstructure:"demo" yaml:"demo"`
	Metrics    Metrics    `mapstructure:"metrics" yaml:"metrics"`
	Tracing    Tracing    `mapstructure:"tracing" yaml:"tracing"`
}

// Console configures the admin console.
type Console struct {
	Addr          string        `mapstructure:"addr" yaml:"addr"`
	SecureCookies bool          `mapstructure:"secure_cookies" yaml:"secure_cookies"`
	SessionTTL    time.Duration `mapstructure:"session_ttl" yaml:"session_ttl"`
	// SessionIdleTimeout ends a console session unused for this long.
	SessionIdleTimeout time.Duration `mapstructure:"session_idle_timeout" yaml:"session_idle_timeout"`
	// ModelPrices price each model's tokens (in the YAML file: model name
	// → input_per_million and output_per_million, in dollars) for the
	// analytics' estimated cost and the budgets' cost limits (the bot
	// reads them too).
	ModelPrices map[string]ModelPrice `mapstructure:"model_prices" yaml:"model_prices"`
	// MaxUploadBytes caps one knowledge upload request (all its files).
	MaxUploadBytes int64 `mapstructure:"max_upload_bytes" yaml:"max_upload_bytes"`
	// PublicURL is the address people reach the console at; chat answers
	// link their citations to its document pages. Empty: no links.
	PublicURL string `mapstructure:"public_url" yaml:"public_url"`
}

// Bot configures the bot process.
type Bot struct {
	Addr    string `mapstructure:"addr" yaml:"addr"`
	Workers int    `mapstructure:"workers" yaml:"workers"`
	// ShutdownGrace is how long answers in progress may go on after
	// SIGTERM; then they are interrupted with a note and handed back to
	// the inbox for another replica (or the restarted bot) to finish.
	ShutdownGrace time.Duration `mapstructure:"shutdown_grace" yaml:"shutdown_grace"`
	// InboxRetention is how long a handled event stays in the inbox (its id
	// recognises a platform delivering it again); 0 keeps them forever.
	InboxRetention time.Duration `mapstructure:"inbox_retention" yaml:"inbox_retention"`
}

// Slack configures the Slack adapter; it is on when bot_token is set.
type Slack struct {
	SigningSecret string `mapstructure:"signing_secret" yaml:"signing_secret" secret:"true"`
	BotToken      string `mapstructure:"bot_token" yaml:"bot_token" secret:"true"`
	AppToken      string `mapstructure:"app_token" yaml:"app_token" secret:"true"`
	Mode          string `mapstructure:"mode" yaml:"mode"`       // http or socket
	APIURL        string `mapstructure:"api_url" yaml:"api_url"` // base URL of the Web API
}

// Enabled reports whether the Slack adapter is configured.
func (s Slack) Enabled() bool { return s.BotToken != "" }

// Discord configures the Discord adapter; it is on when bot_token is set.
type Discord struct {
	ApplicationID string `mapstructure:"application_id" yaml:"application_id"`
	PublicKey     string `mapstructure:"public_key" yaml:"public_key"`
	BotToken      string `mapstructure:"bot_token" yaml:"bot_token" secret:"true"`
	Mode          string `mapstructure:"mode" yaml:"mode"`       // http or gateway
	APIURL        string `mapstructure:"api_url" yaml:"api_url"` // REST base URL with the version
}

// Enabled reports whether the Discord adapter is configured.
func (d Discord) Enabled() bool { return d.BotToken != "" }

// Mattermost configures the Mattermost adapter; it is on when url is set.
type Mattermost struct {
	URL   string `mapstructure:"url" yaml:"url"`                   // the server
	Token string `mapstructure:"token" yaml:"token" secret:"true"` // the bot account's access token
	// ActionsURL is where the Mattermost server reaches the bot's
	// /mattermost/actions endpoint (approval buttons); empty: no buttons.
	ActionsURL string `mapstructure:"actions_url" yaml:"actions_url"`
}

// Enabled reports whether the Mattermost adapter is configured.
func (m Mattermost) Enabled() bool { return m.URL != "" }

// Tools configures the assistants' tools: MCP servers (set in the YAML
// file: a list) and the limits of a call.
type Tools struct {
	CallTimeout    time.Duration `mapstructure:"call_timeout" yaml:"call_timeout"`
	MaxOutputBytes int           `mapstructure:"max_output_bytes" yaml:"max_output_bytes"`
	// ApprovalTTL is how long a tool call under an "ask" policy waits for
	// a decision.
	ApprovalTTL time.Duration `mapstructure:"approval_ttl" yaml:"approval_ttl"`
	// FetchAllowlist are the sites the built-in fetch_url may read; empty:
	// the tool is off.
	FetchAllowlist []string    `mapstructure:"fetch_allowlist" yaml:"fetch_allowlist"`
	MCPServers     []MCPServer `mapstructure:"mcp_servers" yaml:"mcp_servers"`
}

// ModelPrice is what a model's tokens cost, per million.
type ModelPrice struct {
	InputPerMillion  float64 `mapstructure:"input_per_million" yaml:"input_per_million"`
	OutputPerMillion float64 `mapstructure:"output_per_million" yaml:"output_per_million"`
}

// MCPServer is one MCP server: stdio (command, args, env) or http/sse
// (url, headers). Env and headers are secrets.
type MCPServer struct {
	Name      string            `mapstructure:"name" yaml:"name"`
	Transport string            `mapstructure:"transport" yaml:"transport"`
	Command   string            `mapstructure:"command" yaml:"command"`
	Args      []string          `mapstructure:"args" yaml:"args"`
	Env       map[string]string `mapstructure:"env" yaml:"env" secret:"map"`
	URL       string            `mapstructure:"url" yaml:"url"`
	Headers   map[string]string `mapstructure:"headers" yaml:"headers" secret:"map"`
}

// Admin configures the first administrator.
type Admin struct {
	Password string `mapstructure:"password" yaml:"password" secret:"true"`
}

// Security holds the key that encrypts secrets kept at rest.
type Security struct {
	// EncryptionKey seals the API keys of the model providers configured
	// in the console: 32 bytes as base64 or hex (`openssl rand -base64 32`).
	// Empty with the embedded store: a key is generated once into
	// <data_dir>/encryption.key. Empty with PostgreSQL: API keys cannot be
	// stored (every replica must share one key, so it must be configured).
	EncryptionKey string `mapstructure:"encryption_key" yaml:"encryption_key" secret:"true"`
}

// Database selects the relational store.
type Database struct {
	URL string `mapstructure:"url" yaml:"url" secret:"url"`
}

// Redis configures the optional Redis server.
type Redis struct {
	URL string `mapstructure:"url" yaml:"url" secret:"url"`
}

// Weaviate configures the optional Weaviate server.
type Weaviate struct {
	URL    string `mapstructure:"url" yaml:"url" secret:"url"`
	APIKey string `mapstructure:"api_key" yaml:"api_key" secret:"true"`
	// Collection holds every knowledge base's chunks.
	Collection string `mapstructure:"collection" yaml:"collection"`
}

// Rerank configures an optional rerank endpoint (Cohere, Jina, TEI, vLLM: POST {url}/rerank).
type Rerank struct {
	URL    string `mapstructure:"url" yaml:"url"`
	APIKey string `mapstructure:"api_key" yaml:"api_key" secret:"true"`
	Model  string `mapstructure:"model" yaml:"model"`
}

// Knowledge tunes ingestion.
type Knowledge struct {
	ChunkSize      int           `mapstructure:"chunk_size" yaml:"chunk_size"`
	ChunkOverlap   int           `mapstructure:"chunk_overlap" yaml:"chunk_overlap"`
	MaxFileBytes   int64         `mapstructure:"max_file_bytes" yaml:"max_file_bytes"`
	MaxPages       int           `mapstructure:"max_pages" yaml:"max_pages"`
	ExtractTimeout time.Duration `mapstructure:"extract_timeout" yaml:"extract_timeout"`
}

// LLM configures the OpenAI-compatible language model provider.
type LLM struct {
	BaseURL        string        `mapstructure:"base_url" yaml:"base_url"`
	APIKey         string        `mapstructure:"api_key" yaml:"api_key" secret:"true"`
	Model          string        `mapstructure:"model" yaml:"model"`
	EmbeddingModel string        `mapstructure:"embedding_model" yaml:"embedding_model"`
	APIType        string        `mapstructure:"api_type" yaml:"api_type"`
	APIVersion     string        `mapstructure:"api_version" yaml:"api_version"`
	Timeout        time.Duration `mapstructure:"timeout" yaml:"timeout"`
	MaxRetries     int           `mapstructure:"max_retries" yaml:"max_retries"`
}

// Enabled reports whether a language model is configured.
func (l LLM) Enabled() bool { return l.Model != "" || l.BaseURL != "" }

// Engine tunes the answering engine.
type Engine struct {
	MaxMessageBytes int           `mapstructure:"max_message_bytes" yaml:"max_message_bytes"`
	HistoryTokens   int           `mapstructure:"history_tokens" yaml:"history_tokens"`
	StallTimeout    time.Duration `mapstructure:"stall_timeout" yaml:"stall_timeout"`
	TurnTimeout     time.Duration `mapstructure:"turn_timeout" yaml:"turn_timeout"`
}

// RateLimits cap the messages answered per minute, per chat user, per
// channel and per assistant (token buckets: a burst of the same size is
// allowed); 0 turns a limit off. With redis.url set the replicas share
// the buckets. The first message over a limit gets a notice, the next
// ones none until the bucket refills.
type RateLimits struct {
	UserPerMinute      int `mapstructure:"user_per_minute" yaml:"user_per_minute"`
	ChannelPerMinute   int `mapstructure:"channel_per_minute" yaml:"channel_per_minute"`
	AssistantPerMinute int `mapstructure:"assistant_per_minute" yaml:"assistant_per_minute"`
}

// Log configures logging.
type Log struct {
	Level  string `mapstructure:"level" yaml:"level"`
	Format string `mapstructure:"format" yaml:"format"`
}

// Demo seeds a demo assistant whose knowledge base is a docs directory.
type Demo struct {
	DocsDir string `mapstructure:"docs_dir" yaml:"docs_dir"`
}

// Metrics configures the Prometheus endpoint GET /metrics (see
// docs/observability.md). It needs no authentication, like /healthz: keep
// it on an internal network.
type Metrics struct {
	Enabled bool `mapstructure:"enabled" yaml:"enabled"`
	// Addr serves /metrics on a listener of its own (host:port); empty:
	// on the process's listener (bot.addr, console.addr).
	Addr string `mapstructure:"addr" yaml:"addr"`
}

// Tracing configures OpenTelemetry tracing: one trace per inbound event,
// exported over OTLP/HTTP.
type Tracing struct {
	// OTLPEndpoint is the OTLP/HTTP receiver, e.g. http://otel-collector:4318
	// (/v1/traces is added when the URL has no path); empty: tracing is off.
	OTLPEndpoint string `mapstructure:"otlp_endpoint" yaml:"otlp_endpoint" secret:"url"`
	// SampleRatio is the share of events traced, above 0 and at most 1.
	SampleRatio float64 `mapstructure:"sample_ratio" yaml:"sample_ratio"`
	// ServiceName names the process in the traces; empty: convosphere-bot
	// or convosphere-console.
	ServiceName string `mapstructure:"service_name" yaml:"service_name"`
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		DataDir:  "./data",
		Console:  Console{Addr: "127.0.0.1:8080", SessionTTL: 12 * time.Hour, SessionIdleTimeout: 30 * time.Minute, MaxUploadBytes: 64 << 20},
		Bot:      Bot{Addr: "127.0.0.1:8081", Workers: 4, ShutdownGrace: 20 * time.Second, InboxRetention: 7 * 24 * time.Hour},
		LLM:      LLM{APIType: "openai", Timeout: 2 * time.Minute, MaxRetries: 3},
		Weaviate: Weaviate{Collection: "ConvoSphereChunk"},
		Slack:    Slack{Mode: "http", APIURL: "https://slack.com/api/"},
		Discord:  Discord{Mode: "http", APIURL: "https://discord.com/api/v10"},
		Tools:    Tools{CallTimeout: 30 * time.Second, MaxOutputBytes: 16 << 10, ApprovalTTL: 24 * time.Hour},
		Knowledge: Knowledge{ChunkSize: 1200, ChunkOverlap: 150, MaxFileBytes: 20 << 20, MaxPages: 500,
			ExtractTimeout: time.Minute},
		Engine:     Engine{MaxMessageBytes: 16 << 10, HistoryTokens: 4000, StallTimeout: 45 * time.Second, TurnTimeout: 3 * time.Minute},
		RateLimits: RateLimits{UserPerMinute: 20, ChannelPerMinute: 60},
		Log:        Log{Level: "info", Format: "text"},
		Metrics:    Metrics{Enabled: true},
		Tracing:    Tracing{SampleRatio: 1},
	}
}

// Load reads the configuration: defaults, then file (if not empty; else
// $CONVOSPHERE_CONFIG if set), then the environment.
func Load(file string) (Config, error) {
	v := viper.New()
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	def := Default()
	for key, val := range flatten(reflect.ValueOf(def), "") {
		v.SetDefault(key, val)
	}
	if file == "" {
		file = os.Getenv(EnvPrefix + "_CONFIG")
	}
	if file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return Config{}, fmt.Errorf("read config file %s: %w (check the path and that it is valid YAML)", file, err)
		}
	}
	var c Config
	if err := v.UnmarshalExact(&c); err != nil {
		return Config{}, fmt.Errorf("config: %w (see configs/convosphere.example.yaml for the known keys)", err)
	}
	if file != "" {
		// viper lower-cases map keys; environment variable names and HTTP
		// headers of MCP servers keep their case, from the file itself.
		if err := mcpServersFromFile(file, &c); err != nil {
			return Config{}, err
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// flatten lists every leaf key of a config struct with its value, so viper
// knows every key (AutomaticEnv only binds known keys).
func flatten(v reflect.Value, prefix string) map[string]any {
	out := map[string]any{}
	t := v.Type()
	for i := range t.NumField() {
		key := t.Field(i).Tag.Get("mapstructure")
		if prefix != "" {
			key = prefix + "." + key
		}
		f := v.Field(i)
		if f.Kind() == reflect.Struct {
			for k, val := range flatten(f, key) {
				out[k] = val
			}
			continue
		}
		out[key] = f.Interface()
	}
	return out
}

// Error is a configuration problem: the key, what is wrong and how to fix it.
type Error struct {
	Key     string
	Problem string
	Fix     string
}

func (e *Error) Error() string {
	env := EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(e.Key, ".", "_"))
	return fmt.Sprintf("config %s (env %s): %s; %s", e.Key, env, e.Problem, e.Fix)
}

// Validate checks every key and returns the first problem.
func (c *Config) Validate() error {
	if strings.TrimSpace(c.DataDir) == "" {
		return &Error{"data_dir", "is empty", "set a directory for the embedded database and index, e.g. ./data"}
	}
	for key, addr := range map[string]string{"console.addr": c.Console.Addr, "bot.addr": c.Bot.Addr} {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			return &Error{key, fmt.Sprintf("%q is not host:port", addr), "use a listen address like 127.0.0.1:8080 (port 0 picks a free port)"}
		}
	}
	if c.Admin.Password != "" && len(c.Admin.Password) < 10 {
		return &Error{"admin.password", "is shorter than 10 characters", "choose a longer password, or leave it empty to have one generated on first start"}
	}
	if c.Security.EncryptionKey != "" {
		if _, err := engine.ParseEncryptionKey(c.Security.EncryptionKey); err != nil {
			// "The encryption key decodes to 20 bytes, not 32: make one …"
			problem, _, _ := strings.Cut(strings.TrimPrefix(engine.ErrorMessage(err), "The encryption key "), ":")
			return &Error{"security.encryption_key", strings.TrimSuffix(problem, "."),
				"set 32 random bytes as base64, made with `openssl rand -base64 32` (or 64 hex characters: `openssl rand -hex 32`); changing the key makes stored API keys unreadable until they are entered again"}
		}
	}
	if err := checkURL("database.url", c.Database.URL, "postgres", "postgresql"); err != nil {
		return err
	}
	if err := checkURL("redis.url", c.Redis.URL, "redis", "rediss"); err != nil {
		return err
	}
	if r := c.Bot.InboxRetention; r != 0 && r < time.Hour {
		return &Error{"bot.inbox_retention", fmt.Sprintf("%s is too short", r), "use at least 1h, longer than the platforms' redeliveries (default 168h; 0 keeps handled events forever)"}
	}
	if c.Bot.ShutdownGrace < 0 {
		return &Error{"bot.shutdown_grace", "is negative", "use a duration such as 20s (0: answers in progress always finish before the bot stops)"}
	}
	for key, n := range map[string]int{"rate_limits.user_per_minute": c.RateLimits.UserPerMinute,
		"rate_limits.channel_per_minute": c.RateLimits.ChannelPerMinute, "rate_limits.assistant_per_minute": c.RateLimits.AssistantPerMinute} {
		if n < 0 {
			return &Error{key, fmt.Sprintf("%d is negative", n), "use a number of messages per minute, or 0 for no limit"}
		}
	}
	if err := checkURL("weaviate.url", c.Weaviate.URL, "http", "https"); err != nil {
		return err
	}
	if err := checkURL("llm.base_url", c.LLM.BaseURL, "http", "https"); err != nil {
		return err
	}
	if c.LLM.BaseURL != "" && c.LLM.Model == "" {
		return &Error{"llm.model", "is empty while llm.base_url is set", "name the chat model to use, e.g. gpt-4o-mini, or llama3.1 for Ollama"}
	}
	switch c.LLM.APIType {
	case "openai", "azure":
	default:
		return &Error{"llm.api_type", fmt.Sprintf("%q is unknown", c.LLM.APIType), "use openai (OpenAI, Ollama, vLLM, llama.cpp) or azure"}
	}
	if c.LLM.APIType == "azure" && c.LLM.BaseURL == "" {
		return &Error{"llm.base_url", "is empty while llm.api_type is azure", "set your Azure OpenAI endpoint, e.g. https://NAME.openai.azure.com"}
	}
	if err := checkURL("console.public_url", c.Console.PublicURL, "https", "http"); err != nil {
		return err
	}
	if err := checkURL("rerank.url", c.Rerank.URL, "http", "https"); err != nil {
		return err
	}
	if k := c.Knowledge; k.ChunkSize < 200 || k.ChunkSize > 20000 {
		return &Error{"knowledge.chunk_size", fmt.Sprintf("%d is out of range", k.ChunkSize), "use 200 to 20000 characters (default 1200)"}
	} else if k.ChunkOverlap < 0 || k.ChunkOverlap >= k.ChunkSize/2 {
		return &Error{"knowledge.chunk_overlap", fmt.Sprintf("%d is out of range", k.ChunkOverlap), "use 0 to less than half of knowledge.chunk_size (default 150)"}
	} else if k.MaxFileBytes < 1 {
		return &Error{"knowledge.max_file_bytes", "must be positive", "use a size in bytes such as 20971520 (20 MiB)"}
	} else if k.MaxPages < 1 {
		return &Error{"knowledge.max_pages", "must be positive", "use a page count such as 500"}
	} else if k.ExtractTimeout <= 0 {
		return &Error{"knowledge.extract_timeout", "must be positive", "use a duration such as 1m"}
	}
	if c.LLM.Timeout <= 0 {
		return &Error{"llm.timeout", "must be positive", "use a duration such as 2m"}
	}
	if c.LLM.MaxRetries < 0 || c.LLM.MaxRetries > 10 {
		return &Error{"llm.max_retries", fmt.Sprintf("%d is out of range", c.LLM.MaxRetries), "use 0 to 10"}
	}
	if c.Engine.MaxMessageBytes < 1 || c.Engine.MaxMessageBytes > 1<<20 {
		return &Error{"engine.max_message_bytes", fmt.Sprintf("%d is out of range", c.Engine.MaxMessageBytes), "use 1 to 1048576 (default 16384)"}
	}
	if c.Engine.HistoryTokens < 0 {
		return &Error{"engine.history_tokens", "is negative", "use 0 or more (default 4000)"}
	}
	if c.Engine.StallTimeout <= 0 || c.Engine.TurnTimeout <= 0 {
		return &Error{"engine.stall_timeout", "timeouts must be positive", "use durations such as 45s and 3m"}
	}
	if c.Console.MaxUploadBytes < 1 {
		return &Error{"console.max_upload_bytes", "must be positive", "use a size in bytes such as 67108864 (64 MiB)"}
	}
	if c.Console.SessionTTL < time.Minute {
		return &Error{"console.session_ttl", "is shorter than a minute", "use a duration such as 12h"}
	}
	for model, p := range c.Console.ModelPrices {
		if p.InputPerMillion < 0 || p.OutputPerMillion < 0 {
			return &Error{"console.model_prices", fmt.Sprintf("the price of %q is negative", model), "give input_per_million and output_per_million in dollars, e.g. 0.15 and 0.60"}
		}
	}
	if c.Console.SessionIdleTimeout < time.Minute {
		return &Error{"console.session_idle_timeout", "is shorter than a minute", "use a duration such as 30m"}
	}
	if err := c.Slack.validate(); err != nil {
		return err
	}
	if err := c.Discord.validate(); err != nil {
		return err
	}
	if c.Tools.CallTimeout <= 0 {
		return &Error{"tools.call_timeout", "must be positive", "use a duration such as 30s"}
	}
	if c.Tools.MaxOutputBytes < 1 {
		return &Error{"tools.max_output_bytes", "must be positive", "use a size in bytes such as 16384"}
	}
	if c.Tools.ApprovalTTL < time.Minute {
		return &Error{"tools.approval_ttl", "must be at least a minute", "use a duration such as 24h"}
	}
	if err := checkURL("mattermost.url", c.Mattermost.URL, "https", "http"); err != nil {
		return err
	}
	if err := checkURL("mattermost.actions_url", c.Mattermost.ActionsURL, "https", "http"); err != nil {
		return err
	}
	if c.Mattermost.Enabled() != (c.Mattermost.Token != "") {
		if c.Mattermost.Token == "" {
			return &Error{"mattermost.token", "is empty while mattermost.url is set", "create a bot account (System Console → Integrations → Bot Accounts) and copy its access token"}
		}
		return &Error{"mattermost.url", "is empty while mattermost.token is set", "set the server's address, e.g. https://chat.example.com"}
	}
	if c.Bot.Workers < 1 || c.Bot.Workers > 256 {
		return &Error{"bot.workers", fmt.Sprintf("%d is out of range", c.Bot.Workers), "use 1 to 256 (default 4)"}
	}
	if c.Metrics.Addr != "" {
		if _, port, err := net.SplitHostPort(c.Metrics.Addr); err != nil || port == "" {
			return &Error{"metrics.addr", fmt.Sprintf("%q is not host:port", c.Metrics.Addr), "use a listen address like 127.0.0.1:9090, or leave it empty to serve /metrics on bot.addr and console.addr"}
		}
	}
	if err := checkURL("tracing.otlp_endpoint", c.Tracing.OTLPEndpoint, "http", "https"); err != nil {
		return err
	}
	if r := c.Tracing.SampleRatio; r <= 0 || r > 1 {
		return &Error{"tracing.sample_ratio", fmt.Sprintf("%g is out of range", r), "use a share of the events above 0 and at most 1, e.g. 0.1 (default 1: every event)"}
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		return &Error{"log.level", fmt.Sprintf("%q is unknown", c.Log.Level), "use debug, info, warn or error"}
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return &Error{"log.format", fmt.Sprintf("%q is unknown", c.Log.Format), "use text or json"}
	}
	return nil
}

// mcpServersFromFile reads tools.mcp_servers from the YAML file as written.
func mcpServersFromFile(file string, c *Config) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read config file %s: %w", file, err)
	}
	var f struct {
		Tools struct {
			MCPServers []MCPServer `yaml:"mcp_servers"`
		} `yaml:"tools"`
		Console struct {
			ModelPrices map[string]ModelPrice `yaml:"model_prices"`
		} `yaml:"console"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		return fmt.Errorf("read config file %s: %w (check that it is valid YAML)", file, err)
	}
	if f.Tools.MCPServers != nil {
		c.Tools.MCPServers = f.Tools.MCPServers
	}
	if f.Console.ModelPrices != nil { // model names keep their case
		c.Console.ModelPrices = f.Console.ModelPrices
	}
	return nil
}

func (s Slack) validate() error {
	switch s.Mode {
	case "http", "socket":
	default:
		return &Error{"slack.mode", fmt.Sprintf("%q is unknown", s.Mode), "use http (Slack POSTs events to bot.addr's /slack/events) or socket (Socket Mode, no public URL needed)"}
	}
	if s.APIURL == "" {
		return &Error{"slack.api_url", "is empty", "leave it at https://slack.com/api/ unless you go through a proxy"}
	}
	if err := checkURL("slack.api_url", s.APIURL, "https", "http"); err != nil {
		return err
	}
	if !s.Enabled() {
		if s.SigningSecret != "" || s.AppToken != "" {
			return &Error{"slack.bot_token", "is empty while other slack keys are set", "copy the Bot User OAuth Token (xoxb-…) from your Slack app's OAuth & Permissions page (see docs/slack.md)"}
		}
		return nil
	}
	if !strings.HasPrefix(s.BotToken, "xoxb-") {
		return &Error{"slack.bot_token", "does not start with xoxb-", "use the Bot User OAuth Token (xoxb-…), not a user (xoxp-) or app-level (xapp-) token"}
	}
	switch {
	case s.Mode == "http" && s.SigningSecret == "":
		return &Error{"slack.signing_secret", "is empty while slack.mode is http", "copy the Signing Secret from your Slack app's Basic Information page; every request is verified with it"}
	case s.Mode == "socket" && s.AppToken == "":
		return &Error{"slack.app_token", "is empty while slack.mode is socket", "create an app-level token (xapp-…) with the connections:write scope on your Slack app's Basic Information page"}
	case s.AppToken != "" && !strings.HasPrefix(s.AppToken, "xapp-"):
		return &Error{"slack.app_token", "does not start with xapp-", "use an app-level token (xapp-…) from your Slack app's Basic Information page"}
	}
	return nil
}

func (d Discord) validate() error {
	switch d.Mode {
	case "http", "gateway":
	default:
		return &Error{"discord.mode", fmt.Sprintf("%q is unknown", d.Mode), "use http (Discord POSTs interactions to bot.addr's /discord/interactions) or gateway (the bot connects to Discord; no public URL)"}
	}
	if err := checkURL("discord.api_url", d.APIURL, "https", "http"); err != nil {
		return err
	}
	if d.APIURL == "" {
		return &Error{"discord.api_url", "is empty", "leave it at https://discord.com/api/v10 unless you go through a proxy"}
	}
	if !d.Enabled() {
		if d.ApplicationID != "" || d.PublicKey != "" {
			return &Error{"discord.bot_token", "is empty while other discord keys are set", "reset and copy the token on the Developer Portal's Bot page (see docs/discord.md)"}
		}
		return nil
	}
	if d.ApplicationID == "" {
		return &Error{"discord.application_id", "is empty while discord.bot_token is set", "copy the Application ID from the Developer Portal's General Information page"}
	}
	if d.Mode == "http" && (len(d.PublicKey) != 64 || strings.Trim(strings.ToLower(d.PublicKey), "0123456789abcdef") != "") {
		return &Error{"discord.public_key", "is not a 64-character hex key", "copy the Public Key from the Developer Portal's General Information page"}
	}
	return nil
}

func checkURL(key, raw string, schemes ...string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return &Error{key, "is not a valid URL", fmt.Sprintf("use a URL like %s://host:port/…", schemes[0])}
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return nil
		}
	}
	return &Error{key, fmt.Sprintf("has scheme %q", u.Scheme), fmt.Sprintf("use a %s:// URL", strings.Join(schemes, ":// or "))}
}

// Redacted returns the configuration as YAML with secrets hidden: secret
// fields become "[redacted]" when set, and URL passwords are masked.
func (c Config) Redacted() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(redactedTree(reflect.ValueOf(c))); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return buf.Bytes(), nil
}

// redactedTree turns a config struct into nested maps keyed like the YAML
// file, with secrets redacted and durations written as 1m30s.
func redactedTree(v reflect.Value) map[string]any {
	out := map[string]any{}
	t := v.Type()
	for i := range t.NumField() {
		f, field := v.Field(i), t.Field(i)
		key := field.Tag.Get("yaml")
		switch tag := field.Tag.Get("secret"); {
		case f.Kind() == reflect.Struct:
			out[key] = redactedTree(f)
		case f.Type() == reflect.TypeFor[time.Duration]():
			out[key] = time.Duration(f.Int()).String()
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct:
			list := make([]any, f.Len())
			for j := range f.Len() {
				list[j] = redactedTree(f.Index(j))
			}
			out[key] = list
		case tag == "map" && f.Len() > 0:
			m := map[string]string{}
			for _, k := range f.MapKeys() {
				m[k.String()] = "[redacted]"
			}
			out[key] = m
		case tag == "true" && f.String() != "":
			out[key] = "[redacted]"
		case tag == "url" && f.String() != "":
			out[key] = redactURL(f.String())
		default:
			out[key] = f.Interface()
		}
	}
	return out
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[redacted: not a valid URL]"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "redacted")
	}
	q := u.Query()
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") || strings.Contains(strings.ToLower(k), "key") {
			q.Set(k, "redacted")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}
