package deploy

import (
	"bufio"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// root is the repository root, seen from this package's directory.
const root = ".."

// envPrefix prefixes every configuration variable (config.EnvPrefix; the
// package is internal to cmd/, so it is read from the source).
const envPrefix = "CONVOSPHERE_"

// ---------------------------------------------------------------------------
// Configuration keys, read from the source of cmd/internal/config.

// configKey is one leaf key of config.Config: "database.url" and its
// secret tag ("true", "url", "map" or "").
type configKey struct {
	key    string
	secret string
}

// envName is the environment variable of a configuration key.
func envName(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// configKeys parses cmd/internal/config and returns every leaf key of its
// Config struct by environment variable name, following the mapstructure
// tags the way config.Load's flatten does (nested structs of the package
// are expanded; everything else is a leaf).
func configKeys(t *testing.T) map[string]configKey {
	t.Helper()
	dir := filepath.Join(root, "cmd", "internal", "config")
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read the config package: %v", err)
	}
	structs := map[string]*ast.StructType{}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok {
				if st, ok := ts.Type.(*ast.StructType); ok {
					structs[ts.Name.Name] = st
				}
			}
			return true
		})
	}
	top, ok := structs["Config"]
	if !ok {
		t.Fatalf("no Config struct in %s", dir)
	}
	keys := map[string]configKey{}
	var walk func(st *ast.StructType, prefix string)
	walk = func(st *ast.StructType, prefix string) {
		for _, field := range st.Fields.List {
			var tag reflect.StructTag
			if field.Tag != nil {
				raw, err := strconv.Unquote(field.Tag.Value)
				if err != nil {
					t.Fatalf("config: tag %s: %v", field.Tag.Value, err)
				}
				tag = reflect.StructTag(raw)
			}
			for _, name := range field.Names {
				if !name.IsExported() {
					continue
				}
				key := tag.Get("mapstructure")
				if key == "" {
					key = strings.ToLower(name.Name)
				}
				if prefix != "" {
					key = prefix + "." + key
				}
				if id, ok := field.Type.(*ast.Ident); ok && structs[id.Name] != nil {
					walk(structs[id.Name], key)
					continue
				}
				keys[envName(key)] = configKey{key: key, secret: tag.Get("secret")}
			}
		}
	}
	walk(top, "")
	// Read by config.Load itself: the configuration file.
	keys[envPrefix+"CONFIG"] = configKey{key: "(config file)"}
	return keys
}

func TestConfigKeysAreRead(t *testing.T) {
	keys := configKeys(t)
	for _, want := range []struct{ env, key, secret string }{
		{"CONVOSPHERE_DATA_DIR", "data_dir", ""},
		{"CONVOSPHERE_CONSOLE_ADDR", "console.addr", ""},
		{"CONVOSPHERE_BOT_ADDR", "bot.addr", ""},
		{"CONVOSPHERE_DATABASE_URL", "database.url", "url"},
		{"CONVOSPHERE_REDIS_URL", "redis.url", "url"},
		{"CONVOSPHERE_WEAVIATE_URL", "weaviate.url", "url"},
		{"CONVOSPHERE_ADMIN_PASSWORD", "admin.password", "true"},
		{"CONVOSPHERE_LLM_API_KEY", "llm.api_key", "true"},
	} {
		got, ok := keys[want.env]
		if !ok {
			t.Errorf("the config package has no key for %s; keys read: %d", want.env, len(keys))
			continue
		}
		if got.key != want.key || got.secret != want.secret {
			t.Errorf("%s: key %q secret %q, want %q secret %q", want.env, got.key, got.secret, want.key, want.secret)
		}
	}
	if _, ok := keys["CONVOSPHERE_CONSOLE"]; ok {
		t.Error("the struct console was taken as a leaf key: nested structs must be expanded")
	}
}

// unknownEnvNames returns the CONVOSPHERE_ names that are not keys of the
// configuration (viper silently ignores a misspelt variable).
func unknownEnvNames(names []string, keys map[string]configKey) []string {
	var out []string
	for _, name := range names {
		if !strings.HasPrefix(name, envPrefix) {
			continue
		}
		if _, ok := keys[name]; !ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func checkEnvNames(t *testing.T, where string, names []string, keys map[string]configKey) {
	t.Helper()
	for _, name := range unknownEnvNames(names, keys) {
		t.Errorf("%s sets %s, which is not a configuration key (see cmd/internal/config and docs/configuration.md)", where, name)
	}
}

// defaultTurnTimeout is engine.turn_timeout's default, from the
// configuration reference.
func defaultTurnTimeout(t *testing.T) time.Duration {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("\\| `engine\\.turn_timeout` \\| `([^`]+)` \\|").FindSubmatch(b)
	if m == nil {
		t.Fatal("docs/configuration.md has no row for engine.turn_timeout")
	}
	d, err := time.ParseDuration(string(m[1]))
	if err != nil {
		t.Fatalf("engine.turn_timeout default %q: %v", m[1], err)
	}
	return d
}

// addrPort returns the port of a host:port listen address.
func addrPort(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		t.Fatalf("listen address %q is not host:port: %v", addr, err)
	}
	return port
}

// ---------------------------------------------------------------------------
// Dockerfile.

type instruction struct {
	cmd  string // upper case: FROM, RUN, USER, ...
	args string
}

type stage struct {
	from         string
	name         string
	instructions []instruction
}

// parseDockerfile splits a Dockerfile into stages of instructions, joining
// continuation lines and dropping comments.
func parseDockerfile(t *testing.T, r io.Reader) []stage {
	t.Helper()
	var stages []stage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		ins := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if ins.cmd == "FROM" {
			fields := strings.Fields(ins.args)
			fields = slices.DeleteFunc(fields, func(f string) bool { return strings.HasPrefix(f, "--") })
			st := stage{}
			if len(fields) > 0 {
				st.from = fields[0]
			}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				st.name = fields[2]
			}
			stages = append(stages, st)
			return
		}
		if len(stages) == 0 {
			if ins.cmd != "ARG" {
				t.Errorf("Dockerfile: %s before the first FROM", ins.cmd)
			}
			return
		}
		stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, ins)
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue // comments, also between continuation lines
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	flush()
	return stages
}

func readDockerfile(t *testing.T) []stage {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stages := parseDockerfile(t, f)
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a multi-stage build (build, runtime)", len(stages))
	}
	return stages
}

func (s stage) all(cmd string) []string {
	var out []string
	for _, ins := range s.instructions {
		if ins.cmd == cmd {
			out = append(out, ins.args)
		}
	}
	return out
}

// imageUser is the user the runtime image runs as: the last USER of the
// last stage, as uid (and optional gid).
func imageUser(t *testing.T) (uid int, user string) {
	t.Helper()
	stages := readDockerfile(t)
	users := stages[len(stages)-1].all("USER")
	if len(users) == 0 {
		t.Fatal("the runtime stage of the Dockerfile has no USER: the image would run as root")
	}
	user = users[len(users)-1]
	name, _, _ := strings.Cut(user, ":")
	uid, err := strconv.Atoi(name)
	if err != nil {
		t.Fatalf("USER %q is not numeric: Kubernetes' runAsNonRoot can only verify a numeric uid", user)
	}
	return uid, user
}

func TestParseDockerfile(t *testing.T) {
	const src = `# syntax=docker/dockerfile:1
ARG GO=1.26
FROM --platform=$BUILDPLATFORM golang:${GO} AS build
RUN CGO_ENABLED=0 \
	# a comment inside
	go build ./cmd/x
FROM debian:bookworm-slim
USER 10001:10001
`
	stages := parseDockerfile(t, strings.NewReader(src))
	want := []stage{
		{from: "golang:${GO}", name: "build", instructions: []instruction{{"RUN", "CGO_ENABLED=0  go build ./cmd/x"}}},
		{from: "debian:bookworm-slim", instructions: []instruction{{"USER", "10001:10001"}}},
	}
	if !reflect.DeepEqual(stages, want) {
		t.Errorf("parseDockerfile:\n got %+v\nwant %+v", stages, want)
	}
}

func TestDockerfile(t *testing.T) {
	stages := readDockerfile(t)
	build, runtime := stages[0], stages[len(stages)-1]
	runs := strings.Join(build.all("RUN"), "\n")
	uid, user := imageUser(t)
	tests := []struct {
		name string
		ok   bool
		why  string
	}{
		{"non-root USER", uid != 0, fmt.Sprintf("USER %s is root", user)},
		{"static binaries", strings.Contains(runs, "CGO_ENABLED=0") && strings.Contains(runs, "go build"),
			"the build stage must run `CGO_ENABLED=0 go build` (pure Go, static binaries)"},
		{"both binaries built", strings.Contains(runs, "./cmd/console") && strings.Contains(runs, "./cmd/bot"),
			"the build stage must build ./cmd/console and ./cmd/bot"},
		{"binaries copied from the build stage", slices.ContainsFunc(runtime.all("COPY"), func(a string) bool {
			return strings.Contains(a, "--from="+build.name) && strings.HasSuffix(a, " /convosphere/")
		}), "the runtime stage must COPY --from=" + build.name + " the binaries to /convosphere/ (the commands of compose and Kubernetes)"},
		{"slim runtime base", !strings.HasPrefix(runtime.from, "golang"), "the runtime stage must not be the Go toolchain image"},
		{"pdftotext in the runtime", strings.Contains(strings.Join(runtime.all("RUN"), "\n"), "poppler-utils"),
			"PDF uploads need poppler-utils in the runtime image"},
		{"probe tool in the runtime", strings.Contains(strings.Join(runtime.all("RUN"), "\n"), "curl"),
			"the health checks of docker-compose.yml and the HEALTHCHECK use curl"},
		{"HEALTHCHECK", len(runtime.all("HEALTHCHECK")) == 1 && strings.Contains(runtime.all("HEALTHCHECK")[0], "/healthz"),
			"the runtime stage should have one HEALTHCHECK on /healthz"},
		{"OCI labels", strings.Contains(strings.Join(runtime.all("LABEL"), " "), "org.opencontainers.image.source") &&
			strings.Contains(strings.Join(runtime.all("LABEL"), " "), "org.opencontainers.image.version"),
			"the runtime stage should carry org.opencontainers.image.* labels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok {
				t.Error(tt.why)
			}
		})
	}
	t.Run("container listen addresses", func(t *testing.T) {
		env := strings.Join(runtime.all("ENV"), " ")
		for _, name := range []string{"CONVOSPHERE_CONSOLE_ADDR=0.0.0.0:", "CONVOSPHERE_BOT_ADDR=0.0.0.0:"} {
			if !strings.Contains(env, name) {
				t.Errorf("the runtime stage should set %s… (the built-in defaults listen on loopback only)", name)
			}
		}
		checkEnvNames(t, "Dockerfile ENV", regexp.MustCompile(`CONVOSPHERE_[A-Z0-9_]+`).FindAllString(env, -1), configKeys(t))
	})
}

func TestDockerignore(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	var patterns []string
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	ignored := func(path string) bool {
		out := false
		for _, p := range patterns {
			neg := strings.HasPrefix(p, "!")
			p = strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/")
			name := path
			if rest, ok := strings.CutPrefix(p, "**/"); ok {
				p, name = rest, filepath.Base(path)
			}
			if ok, _ := filepath.Match(p, name); ok {
				out = !neg
			}
		}
		return out
	}
	// What `docker build` needs: the module files, every top-level package
	// directory the binaries import, and docs (copied into the image).
	need := []string{"go.mod", "go.sum", "docs", "docs/operations.md"}
	for _, dir := range []string{"cmd", "engine", "adapters", "console", "knowledge", "llm", "store", "tools"} {
		if _, err := os.Stat(filepath.Join(root, dir)); err == nil {
			need = append(need, dir)
		}
	}
	for _, path := range need {
		if ignored(path) {
			t.Errorf(".dockerignore excludes %s, which the image build needs", path)
		}
	}
	for _, path := range []string{".git", ".env", "bin", "data", "store/sqlite/x.db"} {
		if !ignored(path) {
			t.Errorf(".dockerignore should exclude %s", path)
		}
	}
}

// ---------------------------------------------------------------------------
// docker-compose.yml.

// command is a compose command or health check test: a list, or a string
// (run by the shell).
type command []string

func (c *command) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*c = command{"CMD-SHELL", n.Value}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return err
	}
	*c = list
	return nil
}

// environment is a compose environment: a mapping, or a list of KEY=VALUE.
type environment map[string]string

func (e *environment) UnmarshalYAML(n *yaml.Node) error {
	out := environment{}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			out[n.Content[i].Value] = n.Content[i+1].Value
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			k, v, _ := strings.Cut(item.Value, "=")
			out[k] = v
		}
	default:
		return fmt.Errorf("line %d: environment must be a mapping or a list", n.Line)
	}
	*e = out
	return nil
}

type healthcheck struct {
	Test        command `yaml:"test"`
	Interval    string  `yaml:"interval"`
	Timeout     string  `yaml:"timeout"`
	Retries     int     `yaml:"retries"`
	StartPeriod string  `yaml:"start_period"`
	Disable     bool    `yaml:"disable"`
}

type composeService struct {
	Image           string                                `yaml:"image"`
	Build           any                                   `yaml:"build"`
	Command         command                               `yaml:"command"`
	Environment     environment                           `yaml:"environment"`
	Ports           []string                              `yaml:"ports"`
	Volumes         []string                              `yaml:"volumes"`
	DependsOn       map[string]struct{ Condition string } `yaml:"depends_on"`
	Healthcheck     *healthcheck                          `yaml:"healthcheck"`
	StopGracePeriod string                                `yaml:"stop_grace_period"`
	ContainerName   string                                `yaml:"container_name"`
	Restart         string                                `yaml:"restart"`
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// mount is one short-syntax volume: source:target[:mode].
type mount struct{ source, target string }

func mounts(t *testing.T, svc string, vols []string) []mount {
	t.Helper()
	var out []mount
	for _, v := range vols {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			t.Errorf("service %s: volume %q is anonymous; name it so that `docker compose down` keeps the data", svc, v)
			continue
		}
		out = append(out, mount{source: parts[0], target: parts[1]})
	}
	return out
}

func (s composeService) mountedAt(t *testing.T, name, target string) (mount, bool) {
	for _, m := range mounts(t, name, s.Volumes) {
		if m.target == target {
			return m, true
		}
	}
	return mount{}, false
}

// interpolated replaces ${VAR:-default}, ${VAR:?message} and ${VAR} with
// the default (or "x"), as `docker compose config` would with VAR unset
// (and set, for :?).
func interpolated(s string) string {
	return interpolation.ReplaceAllStringFunc(s, func(m string) string {
		sub := interpolation.FindStringSubmatch(m)
		if strings.HasSuffix(sub[2], "-") {
			return sub[3]
		}
		return "x"
	})
}

var interpolation = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?:(:?[-?+])([^}]*))?\}`)

func TestCompose(t *testing.T) {
	c := readCompose(t)
	keys := configKeys(t)
	tests := []struct {
		service string
		image   string // prefix of the image; "" for the services built here
		data    string // where the service keeps its data (a named volume)
		probe   string // a part of the health check's command
	}{
		{"postgres", "postgres:", "/var/lib/postgresql/data", "pg_isready"},
		{"redis", "redis:7", "/data", "ping"},
		{"weaviate", "cr.weaviate.io/semitechnologies/weaviate:", "/var/lib/weaviate", "/v1/.well-known/ready"},
		{"console", "", "/data", "/readyz"},
		{"bot", "", "/data", "/readyz"},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			s, ok := c.Services[tt.service]
			if !ok {
				t.Fatalf("no service %s", tt.service)
			}
			if tt.image != "" && !strings.HasPrefix(s.Image, tt.image) {
				t.Errorf("image %q, want %s…", s.Image, tt.image)
			}
			if strings.HasSuffix(s.Image, ":latest") || (tt.image != "" && !strings.Contains(s.Image, ":")) {
				t.Errorf("image %q: pin a version", s.Image)
			}
			if tt.image == "" && s.Build == nil {
				t.Error("has no build: it runs the image of this repository's Dockerfile")
			}
			switch h := s.Healthcheck; {
			case h == nil || len(h.Test) == 0:
				t.Error("has no healthcheck")
			case h.Disable || h.Test[0] == "NONE":
				t.Error("healthcheck is disabled")
			case h.Test[0] != "CMD" && h.Test[0] != "CMD-SHELL":
				t.Errorf("healthcheck test %q must start with CMD or CMD-SHELL", h.Test)
			case !strings.Contains(strings.Join(h.Test, " "), tt.probe):
				t.Errorf("healthcheck %q does not check %s", h.Test, tt.probe)
			}
			m, ok := s.mountedAt(t, tt.service, tt.data)
			switch {
			case !ok:
				t.Errorf("no volume at %s", tt.data)
			case strings.HasPrefix(m.source, ".") || strings.HasPrefix(m.source, "/"):
				t.Errorf("%s is a bind mount of %s; use a named volume", tt.data, m.source)
			}
			if s.Restart == "" {
				t.Error("no restart policy")
			}
		})
	}

	t.Run("volumes declared", func(t *testing.T) {
		used := map[string]bool{}
		for name, s := range c.Services {
			for _, m := range mounts(t, name, s.Volumes) {
				if strings.HasPrefix(m.source, ".") || strings.HasPrefix(m.source, "/") {
					continue
				}
				used[m.source] = true
				if _, ok := c.Volumes[m.source]; !ok {
					t.Errorf("service %s mounts volume %s, which is not declared under volumes:", name, m.source)
				}
			}
		}
		for name := range c.Volumes {
			if !used[name] {
				t.Errorf("volume %s is declared but no service mounts it", name)
			}
		}
	})

	t.Run("ports on loopback", func(t *testing.T) {
		for name, s := range c.Services {
			for _, p := range s.Ports {
				if !strings.HasPrefix(p, "127.0.0.1:") {
					t.Errorf("service %s publishes %q on every interface; bind it to 127.0.0.1", name, p)
				}
			}
		}
	})

	t.Run("weaviate", func(t *testing.T) {
		s := c.Services["weaviate"]
		env := s.Environment
		if env["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"] != "true" && env["AUTHENTICATION_APIKEY_ENABLED"] != "true" {
			t.Error("set AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED or AUTHENTICATION_APIKEY_ENABLED")
		}
		if env["DEFAULT_VECTORIZER_MODULE"] != "none" {
			t.Errorf("DEFAULT_VECTORIZER_MODULE %q: ConvoSphere sends its own vectors, use none", env["DEFAULT_VECTORIZER_MODULE"])
		}
		if _, ok := s.mountedAt(t, "weaviate", env["PERSISTENCE_DATA_PATH"]); !ok {
			t.Errorf("PERSISTENCE_DATA_PATH %q is not on a volume", env["PERSISTENCE_DATA_PATH"])
		}
		if !slices.Contains(strings.Split(env["ENABLE_MODULES"], ","), "backup-filesystem") {
			t.Errorf("ENABLE_MODULES %q lacks backup-filesystem (docs/operations.md uses it)", env["ENABLE_MODULES"])
		}
		if _, ok := s.mountedAt(t, "weaviate", env["BACKUP_FILESYSTEM_PATH"]); !ok {
			t.Errorf("BACKUP_FILESYSTEM_PATH %q is not on a volume", env["BACKUP_FILESYSTEM_PATH"])
		}
	})

	t.Run("redis persistence", func(t *testing.T) {
		cmd := strings.Join(c.Services["redis"].Command, " ")
		if !strings.Contains(cmd, "--appendonly yes") {
			t.Errorf("redis command %q: want --appendonly yes", cmd)
		}
	})

	turn := defaultTurnTimeout(t)
	apps := []struct {
		service  string
		command  []string
		addrKey  string
		grace    time.Duration // at least this stop_grace_period
		scalable bool
	}{
		{"console", []string{"/convosphere/console", "serve"}, "CONVOSPHERE_CONSOLE_ADDR", 10 * time.Second, false},
		{"bot", []string{"/convosphere/bot"}, "CONVOSPHERE_BOT_ADDR", turn, true},
	}
	for _, tt := range apps {
		t.Run(tt.service+" wiring", func(t *testing.T) {
			s := c.Services[tt.service]
			if !slices.Equal(s.Command, tt.command) {
				t.Errorf("command %q, want %q", s.Command, tt.command)
			}
			if _, err := os.Stat(filepath.Join(root, "cmd", filepath.Base(tt.command[0]))); err != nil {
				t.Errorf("command %s: no such binary in cmd/: %v", tt.command[0], err)
			}
			env := s.Environment
			names := make([]string, 0, len(env))
			for k := range env {
				names = append(names, k)
			}
			checkEnvNames(t, "service "+tt.service, names, keys)
			for name, want := range map[string]string{
				"CONVOSPHERE_REDIS_URL":    "redis://redis:6379/0",
				"CONVOSPHERE_WEAVIATE_URL": "http://weaviate:8080",
				"CONVOSPHERE_DATA_DIR":     "/data",
			} {
				if env[name] != want {
					t.Errorf("%s = %q, want %q", name, env[name], want)
				}
			}
			if _, ok := s.mountedAt(t, tt.service, env["CONVOSPHERE_DATA_DIR"]); !ok {
				t.Errorf("CONVOSPHERE_DATA_DIR %q is not on a volume", env["CONVOSPHERE_DATA_DIR"])
			}
			// Every server the service is pointed at is a service of this file.
			for _, name := range []string{"CONVOSPHERE_DATABASE_URL", "CONVOSPHERE_REDIS_URL", "CONVOSPHERE_WEAVIATE_URL"} {
				u, err := url.Parse(interpolated(env[name]))
				if err != nil || u.Hostname() == "" {
					t.Errorf("%s = %q is not a URL: %v", name, env[name], err)
					continue
				}
				if _, ok := c.Services[u.Hostname()]; !ok {
					t.Errorf("%s points at host %s, which is not a service", name, u.Hostname())
				}
				if d, ok := s.DependsOn[u.Hostname()]; !ok || d.Condition != "service_healthy" {
					t.Errorf("depends_on %s: want condition service_healthy, got %+v (present: %v)", u.Hostname(), d, ok)
				}
			}
			// The health check probes the port the process listens on.
			port := addrPort(t, env[tt.addrKey])
			if hc := s.Healthcheck; hc != nil && !strings.Contains(strings.Join(hc.Test, " "), "127.0.0.1:"+port+"/") {
				t.Errorf("healthcheck %q does not probe port %s of %s", hc.Test, port, tt.addrKey)
			}
			if hc := s.Healthcheck; hc != nil && len(hc.Test) > 1 && hc.Test[0] == "CMD" && hc.Test[1] != "curl" {
				t.Errorf("healthcheck %q: the image has curl (Dockerfile)", hc.Test)
			}
			if tt.grace > 0 {
				d, err := time.ParseDuration(s.StopGracePeriod)
				if err != nil || d < tt.grace {
					t.Errorf("stop_grace_period %q: want at least %s (answers in hand finish after SIGTERM)", s.StopGracePeriod, tt.grace)
				}
			}
			if tt.scalable {
				if s.ContainerName != "" {
					t.Errorf("container_name %q prevents `docker compose up --scale %s=N`", s.ContainerName, tt.service)
				}
				for _, p := range s.Ports {
					parts := strings.Split(p, ":")
					if len(parts) == 3 && !strings.Contains(parts[1], "-") {
						t.Errorf("port %q has one fixed host port: `--scale %s=N` would collide; use a range or none", p, tt.service)
					}
					if parts[len(parts)-1] != port {
						t.Errorf("port %q does not publish %s's port %s", p, tt.addrKey, port)
					}
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Kubernetes manifests.

const k8sDir = "kubernetes"

// intOrString is a Kubernetes port reference: a number or a name.
type intOrString string

func (p *intOrString) UnmarshalYAML(n *yaml.Node) error {
	*p = intOrString(n.Value)
	return nil
}

type metadata struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

type probe struct {
	HTTPGet *struct {
		Path string      `yaml:"path"`
		Port intOrString `yaml:"port"`
	} `yaml:"httpGet"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	TimeoutSeconds   int `yaml:"timeoutSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

type securityContext struct {
	RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
	RunAsUser                *int64 `yaml:"runAsUser"`
	RunAsGroup               *int64 `yaml:"runAsGroup"`
	AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
	ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
	Capabilities             *struct {
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	SecurityContext *securityContext `yaml:"securityContext"`
	StartupProbe    *probe           `yaml:"startupProbe"`
	ReadinessProbe  *probe           `yaml:"readinessProbe"`
	LivenessProbe   *probe           `yaml:"livenessProbe"`
	Resources       struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type podSpec struct {
	AutomountServiceAccountToken  *bool            `yaml:"automountServiceAccountToken"`
	TerminationGracePeriodSeconds *int64           `yaml:"terminationGracePeriodSeconds"`
	RestartPolicy                 string           `yaml:"restartPolicy"`
	SecurityContext               *securityContext `yaml:"securityContext"`
	Containers                    []container      `yaml:"containers"`
	Volumes                       []struct {
		Name     string    `yaml:"name"`
		EmptyDir *struct{} `yaml:"emptyDir"`
	} `yaml:"volumes"`
}

type podTemplate struct {
	Metadata metadata `yaml:"metadata"`
	Spec     podSpec  `yaml:"spec"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type manifest struct {
	file       string
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   metadata `yaml:"metadata"`
	Spec       struct {
		// Deployment and Job.
		Replicas *int          `yaml:"replicas"`
		Selector labelSelector `yaml:"selector"`
		Template podTemplate   `yaml:"template"`
		// Service: Selector is a plain map there, so it is read apart.
		Ports []struct {
			Name       string      `yaml:"name"`
			Port       int         `yaml:"port"`
			TargetPort intOrString `yaml:"targetPort"`
		} `yaml:"ports"`
		// PodDisruptionBudget.
		MinAvailable   *intOrString `yaml:"minAvailable"`
		MaxUnavailable *intOrString `yaml:"maxUnavailable"`
		// Job.
		BackoffLimit *int `yaml:"backoffLimit"`
	} `yaml:"spec"`
	serviceSelector map[string]string
	Data            map[string]string `yaml:"data"`
	StringData      map[string]string `yaml:"stringData"`
}

// readManifests decodes every document of every YAML file under
// deploy/kubernetes except kustomization.yaml.
func readManifests(t *testing.T) []manifest {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.y*ml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []manifest
	for _, file := range files {
		base := filepath.Base(file)
		if base == "kustomization.yaml" {
			continue
		}
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(f)
		for i := 0; ; i++ {
			var n yaml.Node
			err := dec.Decode(&n)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				t.Fatalf("%s: document %d: %v", base, i, err)
			}
			if len(n.Content) == 0 || n.Content[0].Kind != yaml.MappingNode {
				continue // an empty document
			}
			m := manifest{file: base}
			if err := n.Decode(&m); err != nil {
				f.Close()
				t.Fatalf("%s: document %d: %v", base, i, err)
			}
			if m.Kind == "Service" {
				var svc struct {
					Spec struct {
						Selector map[string]string `yaml:"selector"`
					} `yaml:"spec"`
				}
				if err := n.Decode(&svc); err != nil {
					t.Fatalf("%s: %v", base, err)
				}
				m.serviceSelector = svc.Spec.Selector
			}
			out = append(out, m)
		}
		f.Close()
	}
	if len(out) == 0 {
		t.Fatalf("no manifests under deploy/%s", k8sDir)
	}
	return out
}

type kustomization struct {
	APIVersion string           `yaml:"apiVersion"`
	Kind       string           `yaml:"kind"`
	Namespace  string           `yaml:"namespace"`
	Resources  []string         `yaml:"resources"`
	Images     []kustomizeImage `yaml:"images"`
}

type kustomizeImage struct {
	Name    string `yaml:"name"`
	NewName string `yaml:"newName"`
	NewTag  string `yaml:"newTag"`
}

func readKustomization(t *testing.T) kustomization {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	return k
}

// applied are the manifests `kubectl apply -k` creates.
func applied(t *testing.T, all []manifest) []manifest {
	t.Helper()
	res := readKustomization(t).Resources
	return slices.DeleteFunc(slices.Clone(all), func(m manifest) bool { return !slices.Contains(res, m.file) })
}

func find(ms []manifest, kind, name string) (manifest, bool) {
	for _, m := range ms {
		if m.Kind == kind && m.Metadata.Name == name {
			return m, true
		}
	}
	return manifest{}, false
}

// selects reports whether every label of sel is on labels.
func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestKustomization(t *testing.T) {
	k := readKustomization(t)
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml: apiVersion %q kind %q", k.APIVersion, k.Kind)
	}
	if k.Namespace != "" {
		t.Errorf("kustomization.yaml sets namespace %q; the base must be namespace-agnostic", k.Namespace)
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(k8sDir, r)); err != nil {
			t.Errorf("resource %s: %v", r, err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(k8sDir, "*.y*ml"))
	for _, f := range files {
		base := filepath.Base(f)
		switch {
		case base == "kustomization.yaml":
		case strings.Contains(base, ".example."):
			if slices.Contains(k.Resources, base) {
				t.Errorf("%s is an example and must not be applied (it would overwrite real secrets)", base)
			}
		case !slices.Contains(k.Resources, base):
			t.Errorf("%s is not listed in kustomization.yaml's resources", base)
		}
	}
	if !slices.ContainsFunc(k.Images, func(i kustomizeImage) bool {
		return i.Name == "convosphere" && i.NewName != "" && i.NewTag != ""
	}) {
		t.Error("kustomization.yaml should set the image `convosphere` (images: name, newName, newTag)")
	}
}

func TestManifestsWellFormed(t *testing.T) {
	seen := map[string]string{}
	for _, m := range readManifests(t) {
		id := m.Kind + "/" + m.Metadata.Name
		if m.APIVersion == "" || m.Kind == "" || m.Metadata.Name == "" {
			t.Errorf("%s: a document lacks apiVersion, kind or metadata.name: %q %q %q", m.file, m.APIVersion, m.Kind, m.Metadata.Name)
		}
		if m.Metadata.Namespace != "" {
			t.Errorf("%s: %s names namespace %q; the manifests must be namespace-agnostic", m.file, id, m.Metadata.Namespace)
		}
		if other, dup := seen[id]; dup {
			t.Errorf("%s is defined in %s and %s", id, other, m.file)
		}
		seen[id] = m.file
		for _, c := range m.Spec.Template.Spec.Containers {
			if c.Image != "convosphere" {
				t.Errorf("%s: container %s image %q: use `convosphere`, set by kustomization.yaml's images", id, c.Name, c.Image)
			}
		}
	}
}

// checkPod checks what every ConvoSphere pod needs: non-root (the image's
// uid), a read-only root filesystem with emptyDir at /data and /tmp,
// resources, and configuration from the ConfigMap and the Secret.
func checkPod(t *testing.T, id string, pod podSpec, all []manifest, uid int) {
	t.Helper()
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", id, len(pod.Containers))
	}
	c := pod.Containers[0]
	psc, csc := pod.SecurityContext, c.SecurityContext
	if psc == nil {
		psc = &securityContext{}
	}
	if csc == nil {
		csc = &securityContext{}
	}
	nonRoot := csc.RunAsNonRoot
	if nonRoot == nil {
		nonRoot = psc.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		t.Errorf("%s: runAsNonRoot is not true", id)
	}
	user := csc.RunAsUser
	if user == nil {
		user = psc.RunAsUser
	}
	switch {
	case user == nil:
		t.Errorf("%s: no runAsUser; want the image's uid %d", id, uid)
	case *user == 0 || *user != int64(uid):
		t.Errorf("%s: runAsUser %d, want the image's uid %d", id, *user, uid)
	}
	if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem is not true", id)
	}
	if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation is not false", id)
	}
	if csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: capabilities do not drop ALL", id)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken is not false (the processes never call the Kubernetes API)", id)
	}
	for _, kind := range []string{"cpu", "memory"} {
		if c.Resources.Requests[kind] == "" || c.Resources.Limits[kind] == "" {
			t.Errorf("%s: resources lack a %s request or limit", id, kind)
		}
	}
	emptyDirs := map[string]bool{}
	for _, v := range pod.Volumes {
		if v.EmptyDir != nil {
			emptyDirs[v.Name] = true
		}
	}
	mounted := map[string]bool{}
	for _, vm := range c.VolumeMounts {
		if emptyDirs[vm.Name] && !vm.ReadOnly {
			mounted[vm.MountPath] = true
		}
	}

	var env []string
	for _, e := range c.Env {
		env = append(env, e.Name)
	}
	var configMap, secret bool
	dataDir := ""
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm, ok := find(applied(t, all), "ConfigMap", ef.ConfigMapRef.Name)
			if !ok {
				t.Errorf("%s: envFrom ConfigMap %s is not applied by the kustomization", id, ef.ConfigMapRef.Name)
				continue
			}
			configMap = true
			dataDir = cm.Data[envPrefix+"DATA_DIR"]
		case ef.SecretRef != nil:
			if _, ok := find(all, "Secret", ef.SecretRef.Name); !ok {
				t.Errorf("%s: envFrom Secret %s has no example in deploy/%s", id, ef.SecretRef.Name, k8sDir)
			}
			secret = true
		}
	}
	if !configMap || !secret {
		t.Errorf("%s: envFrom should read the ConfigMap (%v) and the Secret (%v)", id, configMap, secret)
	}
	checkEnvNames(t, id+" env", env, configKeys(t))
	if dataDir == "" {
		t.Errorf("%s: the ConfigMap does not set %sDATA_DIR", id, envPrefix)
	}
	for _, path := range []string{dataDir, "/tmp"} {
		if path != "" && !mounted[path] {
			t.Errorf("%s: %s is not a writable emptyDir mount (the root filesystem is read-only)", id, path)
		}
	}
}

// show prints an optional number.
func show[N int | int64](p *N) string {
	if p == nil {
		return "(unset)"
	}
	return strconv.FormatInt(int64(*p), 10)
}

func (c container) hasPort(ref intOrString) bool {
	for _, p := range c.Ports {
		if string(ref) == p.Name || string(ref) == strconv.Itoa(p.ContainerPort) {
			return true
		}
	}
	return false
}

func TestDeployments(t *testing.T) {
	all := readManifests(t)
	ms := applied(t, all)
	uid, _ := imageUser(t)
	cm, ok := find(ms, "ConfigMap", "convosphere-config")
	if !ok {
		t.Fatal("no ConfigMap convosphere-config is applied")
	}
	turn := defaultTurnTimeout(t)
	tests := []struct {
		name     string
		replicas int
		command  []string
		addrKey  string
		grace    time.Duration // terminationGracePeriodSeconds at least
	}{
		{"convosphere-bot", 3, []string{"/convosphere/bot"}, "CONVOSPHERE_BOT_ADDR", turn},
		{"convosphere-console", 2, []string{"/convosphere/console", "serve"}, "CONVOSPHERE_CONSOLE_ADDR", 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := find(ms, "Deployment", tt.name)
			if !ok {
				t.Fatalf("no Deployment %s is applied", tt.name)
			}
			if d.APIVersion != "apps/v1" {
				t.Errorf("apiVersion %q, want apps/v1", d.APIVersion)
			}
			if r := d.Spec.Replicas; r == nil || *r != tt.replicas {
				t.Errorf("replicas %s, want %d", show(r), tt.replicas)
			}
			labels := d.Spec.Template.Metadata.Labels
			if !selects(d.Spec.Selector.MatchLabels, labels) {
				t.Errorf("selector %v does not select the pod labels %v", d.Spec.Selector.MatchLabels, labels)
			}
			pod := d.Spec.Template.Spec
			checkPod(t, "Deployment/"+tt.name, pod, all, uid)
			if len(pod.Containers) != 1 {
				return
			}
			c := pod.Containers[0]
			if !slices.Equal(append(slices.Clone(c.Command), c.Args...), tt.command) {
				t.Errorf("command %q %q, want %q", c.Command, c.Args, tt.command)
			}
			port, _ := strconv.Atoi(addrPort(t, cm.Data[tt.addrKey]))
			if !c.hasPort(intOrString(strconv.Itoa(port))) {
				t.Errorf("no containerPort %d (the ConfigMap's %s)", port, tt.addrKey)
			}
			for _, p := range []struct {
				kind  string
				probe *probe
				path  string
			}{
				{"readinessProbe", c.ReadinessProbe, "/readyz"},
				{"livenessProbe", c.LivenessProbe, "/healthz"},
				{"startupProbe", c.StartupProbe, "/healthz"},
			} {
				switch {
				case p.probe == nil || p.probe.HTTPGet == nil:
					t.Errorf("no %s with httpGet", p.kind)
				case p.probe.HTTPGet.Path != p.path:
					t.Errorf("%s path %q, want %s", p.kind, p.probe.HTTPGet.Path, p.path)
				case !c.hasPort(p.probe.HTTPGet.Port):
					t.Errorf("%s port %q is not a port of the container", p.kind, p.probe.HTTPGet.Port)
				case p.kind != "startupProbe" && p.probe.TimeoutSeconds > 0 && p.probe.TimeoutSeconds < 3:
					// /readyz waits up to 3 s for the database.
					t.Errorf("%s timeoutSeconds %d: /readyz may take 3 s", p.kind, p.probe.TimeoutSeconds)
				}
			}
			if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second < tt.grace {
				t.Errorf("terminationGracePeriodSeconds %s: want at least %s", show(g), tt.grace)
			}

			// A Service and a PodDisruptionBudget select the pods.
			svcs, pdbs := 0, 0
			for _, m := range ms {
				switch m.Kind {
				case "Service":
					if !selects(m.serviceSelector, labels) {
						continue
					}
					svcs++
					for _, p := range m.Spec.Ports {
						if !c.hasPort(p.TargetPort) {
							t.Errorf("Service %s: targetPort %q is not a port of the container", m.Metadata.Name, p.TargetPort)
						}
					}
				case "PodDisruptionBudget":
					if !selects(m.Spec.Selector.MatchLabels, labels) {
						continue
					}
					pdbs++
					if m.APIVersion != "policy/v1" {
						t.Errorf("PodDisruptionBudget %s: apiVersion %q, want policy/v1", m.Metadata.Name, m.APIVersion)
					}
					switch {
					case m.Spec.MaxUnavailable != nil:
						if n, err := strconv.Atoi(string(*m.Spec.MaxUnavailable)); err == nil && n < 1 {
							t.Errorf("PodDisruptionBudget %s: maxUnavailable %d blocks every node drain", m.Metadata.Name, n)
						}
					case m.Spec.MinAvailable != nil:
						if n, err := strconv.Atoi(string(*m.Spec.MinAvailable)); err == nil && n >= tt.replicas {
							t.Errorf("PodDisruptionBudget %s: minAvailable %d of %d replicas blocks every node drain", m.Metadata.Name, n, tt.replicas)
						}
					default:
						t.Errorf("PodDisruptionBudget %s sets neither maxUnavailable nor minAvailable", m.Metadata.Name)
					}
				}
			}
			if svcs != 1 || pdbs != 1 {
				t.Errorf("%d Services and %d PodDisruptionBudgets select the pods, want 1 and 1", svcs, pdbs)
			}
		})
	}
}

// consoleSubcommands are the commands `console` accepts (its main's switch).
func consoleSubcommands(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "cmd", "console", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^\s*case ("[a-z-]+"(?:, "[a-z-]+")*):`).FindAllSubmatch(b, -1) {
		for q := range strings.SplitSeq(string(m[1]), ", ") {
			s, _ := strconv.Unquote(q)
			out = append(out, s)
		}
	}
	return out
}

func TestMigrationJob(t *testing.T) {
	all := readManifests(t)
	ms := applied(t, all)
	uid, _ := imageUser(t)
	if !slices.Contains(consoleSubcommands(t), "migrate") {
		t.Fatal("cmd/console has no migrate subcommand; the Job cannot run it")
	}
	var jobs []manifest
	for _, m := range ms {
		if m.Kind == "Job" {
			jobs = append(jobs, m)
		}
	}
	if len(jobs) != 1 {
		t.Fatalf("%d Jobs are applied, want the migration Job", len(jobs))
	}
	j := jobs[0]
	if j.APIVersion != "batch/v1" {
		t.Errorf("apiVersion %q, want batch/v1", j.APIVersion)
	}
	pod := j.Spec.Template.Spec
	checkPod(t, "Job/"+j.Metadata.Name, pod, all, uid)
	if len(pod.Containers) == 1 {
		c := pod.Containers[0]
		if got := append(slices.Clone(c.Command), c.Args...); !slices.Equal(got, []string{"/convosphere/console", "migrate"}) {
			t.Errorf("command %q, want [/convosphere/console migrate]", got)
		}
	}
	if pod.RestartPolicy != "Never" && pod.RestartPolicy != "OnFailure" {
		t.Errorf("restartPolicy %q: a Job needs Never or OnFailure", pod.RestartPolicy)
	}
	if j.Spec.BackoffLimit == nil || *j.Spec.BackoffLimit < 1 {
		t.Errorf("backoffLimit %s: retry while PostgreSQL is still starting", show(j.Spec.BackoffLimit))
	}
}

func TestConfigMapAndSecret(t *testing.T) {
	all := readManifests(t)
	keys := configKeys(t)
	var configMaps, secrets int
	for _, m := range all {
		switch m.Kind {
		case "ConfigMap":
			configMaps++
			names := make([]string, 0, len(m.Data))
			for name, value := range m.Data {
				names = append(names, name)
				if !strings.HasPrefix(name, envPrefix) {
					t.Errorf("ConfigMap %s: %s is not a %s variable", m.Metadata.Name, name, envPrefix)
				}
				k := keys[name]
				switch k.secret {
				case "true", "map":
					t.Errorf("ConfigMap %s holds %s (%s), a secret: put it in the Secret", m.Metadata.Name, name, k.key)
				case "url":
					if u, err := url.Parse(value); err != nil || u.User != nil {
						t.Errorf("ConfigMap %s: %s carries credentials: put it in the Secret", m.Metadata.Name, name)
					}
				}
			}
			checkEnvNames(t, "ConfigMap "+m.Metadata.Name, names, keys)
		case "Secret":
			secrets++
			if !strings.Contains(m.file, ".example.") {
				t.Errorf("%s: Secret %s outside an example file: real secrets do not belong in the repository", m.file, m.Metadata.Name)
			}
			if len(m.Data) > 0 {
				t.Errorf("Secret %s: use stringData (readable placeholders), not base64 data", m.Metadata.Name)
			}
			names := make([]string, 0, len(m.StringData))
			for name, value := range m.StringData {
				names = append(names, name)
				if !strings.Contains(value, "CHANGE-ME") {
					t.Errorf("Secret %s: %s = %q is not a CHANGE-ME placeholder", m.Metadata.Name, name, value)
				}
			}
			for _, need := range []string{"CONVOSPHERE_DATABASE_URL", "CONVOSPHERE_ADMIN_PASSWORD", "CONVOSPHERE_SECURITY_ENCRYPTION_KEY"} {
				if _, ok := m.StringData[need]; !ok {
					t.Errorf("Secret %s lacks %s", m.Metadata.Name, need)
				}
			}
			checkEnvNames(t, "Secret "+m.Metadata.Name, names, keys)
		}
	}
	if configMaps != 1 || secrets != 1 {
		t.Errorf("%d ConfigMaps and %d Secrets, want 1 and 1", configMaps, secrets)
	}
}

func TestUnknownEnvNames(t *testing.T) {
	keys := configKeys(t)
	tests := []struct {
		names []string
		want  []string
	}{
		{[]string{"CONVOSPHERE_DATABASE_URL", "CONVOSPHERE_REDIS_URL", "CONVOSPHERE_CONFIG", "POSTGRES_USER"}, nil},
		{[]string{"CONVOSPHERE_ENGINE_TURN_TIMEOUT", "CONVOSPHERE_CONSOLE_SESSION_IDLE_TIMEOUT"}, nil},
		{[]string{"CONVOSPHERE_DATABASE_URI", "CONVOSPHERE_REDIS", "CONVOSPHERE_CONSOLE"}, []string{"CONVOSPHERE_CONSOLE", "CONVOSPHERE_DATABASE_URI", "CONVOSPHERE_REDIS"}},
	}
	for _, tt := range tests {
		if got := unknownEnvNames(tt.names, keys); !slices.Equal(got, tt.want) {
			t.Errorf("unknownEnvNames(%q) = %q, want %q", tt.names, got, tt.want)
		}
	}
}

func TestInterpolated(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:${P:-secret}@postgres:5432/db", "postgres://u:secret@postgres:5432/db"},
		{"${A:?set A}", "x"},
		{"${B}", "x"},
		{"${C:-}", ""},
		{"plain", "plain"},
	}
	for _, tt := range tests {
		if got := interpolated(tt.in); got != tt.want {
			t.Errorf("interpolated(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
