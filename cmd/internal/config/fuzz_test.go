package config

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzLoad: arbitrary YAML as the configuration file, and arbitrary
// values in a few CONVOSPHERE_* variables. Load never panics. When it
// succeeds, the configuration is valid and printing it (Redacted) works
// and shows no secret. When it fails, the error says what to do: a
// *Error naming a known key, its variable and a fix; or, for a file that
// cannot be read as YAML or decoded into the configuration, an error
// naming the file or pointing to the example of the known keys.
//
//	go test -run '^$' -fuzz '^FuzzLoad$' -fuzztime 30s ./cmd/internal/config/
func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile("../../../configs/convosphere.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(example), "", "", "", "", "", "")
	f.Add("console:\n  addr: 127.0.0.1:9000\nllm:\n  model: m\n  base_url: http://localhost:11434/v1\n", "8", "12h", "debug", "postgres://u:p@db/cs", "0.5", "example.com,docs.example.com")
	f.Add("slack:\n  bot_token: xoxb-1\n  signing_secret: s3cr3t-signing\n  mode: socket\n  app_token: xapp-1\n", "0", "30s", "LOUD", "mysql://x", "2", "")
	f.Add("discord:\n  bot_token: t0ken-discord\n  application_id: \"1\"\n  public_key: "+strings.Repeat("ab", 32)+"\n", "-1", "soon", "", "postgres://%zz", "NaN", "a,,b")
	f.Add("tools:\n  mcp_servers:\n    - name: files\n      transport: stdio\n      command: npx\n      env: {API_TOKEN: very-secret-value}\n      headers: {Authorization: Bearer x}\n", "", "", "", "", "", "")
	f.Add("console:\n  model_prices:\n    Acme/M: {input_per_million: 0.1, output_per_million: -1}\n", "", "", "", "", "", "")
	f.Add("consol:\n  addr: x\n", "", "", "", "", "", "")
	f.Add("console: [\n", "", "", "", "", "", "")
	f.Add("bot:\n  workers: many\n", "", "", "", "", "", "")
	f.Add("1: 2\n? [a, b]\n: c\nknowledge: {chunk_size: 1e9}\n", "", "", "", "", "", "")
	f.Add("admin: {password: short}\nsecurity: {encryption_key: c2hvcnQ=}\n", "", "", "", "", "", "")
	f.Add("&a [*a]", "", "", "", "", "", "")
	f.Add("tools: {mcp_servers: {name: x}}\n", "", "", "", "", "", "")
	f.Add("\xff\xfe", "", "", "", "", "", "")
	f.Add("console: 0\n", "", "", "", "", "", "")

	keys := map[string]bool{"tools.mcp_servers": true}
	for k := range flatten(reflect.ValueOf(Default()), "") {
		keys[k] = true
	}
	// A section ("console", "tools.fetch") is a key too: a decoding error
	// may name it ("'console' expected a map").
	sections := map[string]bool{}
	for k := range keys {
		for i := strings.LastIndexByte(k, '.'); i > 0; i = strings.LastIndexByte(k[:i], '.') {
			sections[k[:i]] = true
		}
	}
	for k := range sections {
		keys[k] = true
	}

	f.Fuzz(func(t *testing.T, file, workers, sessionTTL, logLevel, databaseURL, sampleRatio, allowlist string) {
		for _, kv := range os.Environ() {
			if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, EnvPrefix+"_") {
				t.Setenv(k, "")
			}
		}
		for k, v := range map[string]string{
			"BOT_WORKERS": workers, "CONSOLE_SESSION_TTL": sessionTTL, "LOG_LEVEL": logLevel,
			"DATABASE_URL": databaseURL, "TRACING_SAMPLE_RATIO": sampleRatio, "TOOLS_FETCH_ALLOWLIST": allowlist,
		} {
			t.Setenv(EnvPrefix+"_"+k, strings.ReplaceAll(v, "\x00", "")) // a variable cannot hold NUL
		}
		path := filepath.Join(t.TempDir(), "convosphere.yaml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}

		c, err := Load(path)
		if err != nil {
			checkLoadError(t, err, path, keys)
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Load returned a configuration that does not validate: %v", err)
		}
		out, err := c.Redacted()
		if err != nil {
			t.Fatalf("Redacted: %v", err)
		}
		var tree map[string]any
		if err := yaml.Unmarshal(out, &tree); err != nil {
			t.Fatalf("Redacted is not YAML: %v\n%s", err, out)
		}
		checkRedacted(t, reflect.ValueOf(c), tree, "")
	})
}

// checkLoadError checks that a Load error tells the user what to fix.
func checkLoadError(t *testing.T, err error, path string, keys map[string]bool) {
	t.Helper()
	msg := err.Error()
	var ce *Error
	switch {
	case errors.As(err, &ce):
		env := EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(ce.Key, ".", "_"))
		if !keys[ce.Key] || ce.Problem == "" || ce.Fix == "" || !strings.Contains(msg, ce.Key) || !strings.Contains(msg, env) {
			t.Fatalf("config error %q: key %q (known: %v), problem %q, fix %q", msg, ce.Key, keys[ce.Key], ce.Problem, ce.Fix)
		}
	case strings.HasPrefix(msg, "read config file "+path+": "):
		// The file is not YAML (or cannot be read): the error names it.
	case strings.HasPrefix(msg, "config: ") && strings.HasSuffix(msg, "(see configs/convosphere.example.yaml for the known keys)"):
		// Unknown keys or values of the wrong type: the decoder names
		// them, and the example lists the known ones.
		named := strings.Contains(msg, "has invalid keys: ")
		for k := range keys {
			named = named || strings.Contains(msg, "'"+k)
		}
		if !named {
			t.Fatalf("decoding error %q names no key", msg)
		}
	default:
		t.Fatalf("Load error %q neither names a key and a fix nor the file", msg)
	}
}

// checkRedacted checks the printed configuration field by field: a
// secret that is set shows as [redacted], a secret map's values too, and
// a URL's password is masked.
func checkRedacted(t *testing.T, v reflect.Value, tree map[string]any, prefix string) {
	t.Helper()
	typ := v.Type()
	for i := range typ.NumField() {
		field, fv := typ.Field(i), v.Field(i)
		key := field.Tag.Get("yaml")
		got := tree[key]
		switch tag := field.Tag.Get("secret"); {
		case fv.Kind() == reflect.Struct:
			sub, ok := got.(map[string]any)
			if !ok {
				t.Fatalf("redacted %s%s is %T", prefix, key, got)
			}
			checkRedacted(t, fv, sub, prefix+key+".")
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
			list, _ := got.([]any)
			if len(list) != fv.Len() {
				t.Fatalf("redacted %s%s has %d entries, want %d", prefix, key, len(list), fv.Len())
			}
			for j := range fv.Len() {
				sub, _ := list[j].(map[string]any)
				checkRedacted(t, fv.Index(j), sub, prefix+key+".")
			}
		case tag == "true" && fv.String() != "":
			if got != "[redacted]" {
				t.Fatalf("secret %s%s printed as %v", prefix, key, got)
			}
		case tag == "map":
			m, _ := got.(map[string]any)
			for _, k := range fv.MapKeys() {
				if m[k.String()] != "[redacted]" {
					t.Fatalf("secret %s%s[%s] printed as %v", prefix, key, k, m[k.String()])
				}
			}
		case tag == "url" && fv.String() != "":
			s, _ := got.(string)
			if u, err := url.Parse(fv.String()); err == nil {
				if _, has := u.User.Password(); has {
					ru, err := url.Parse(s)
					if err != nil {
						t.Fatalf("redacted %s%s = %q", prefix, key, s)
					}
					if p, _ := ru.User.Password(); p != "redacted" {
						t.Fatalf("the password of %s%s printed: %q", prefix, key, s)
					}
				}
			} else if !strings.HasPrefix(s, "[redacted") {
				t.Fatalf("an unparsable %s%s printed as %q", prefix, key, s)
			}
		}
	}
}
