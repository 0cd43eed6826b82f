package engine_test

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/convosphere/convosphere"

type listedPackage struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Deps       []string
}

// mustListPackages runs `go list -json` over the module.
func mustListPackages(tb testing.TB) []listedPackage {
	tb.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			tb.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		tb.Fatalf("go list: %v", err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			tb.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// group returns the part of the tree a package belongs to for the import
// rules: "engine", "adapters/slack", "llm/openai", "knowledge", "store/sqlite",
// "console/web", "cmd", ... ("" for packages outside the rules).
func group(path string) string {
	rel, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return ""
	}
	parts := strings.Split(rel, "/")
	switch parts[0] {
	case "engine", "knowledge", "tools", "cmd", "bench":
		return parts[0]
	case "adapters", "llm", "store", "console":
		if len(parts) > 1 {
			return parts[0] + "/" + parts[1]
		}
	}
	return parts[0]
}

// infrastructure lists modules the engine must never depend on.
var infrastructure = []string{
	"github.com/slack-go/", "github.com/bwmarrin/discordgo", "github.com/mattermost/", "github.com/gin-gonic/",
	"github.com/jackc/pgx", "github.com/redis/go-redis", "github.com/weaviate/", "github.com/mark3labs/mcp-go",
	"github.com/spf13/viper", "github.com/sashabaranov/go-openai", "modernc.org/sqlite",
}

func TestImportRules(t *testing.T) {
	pkgs := mustListPackages(t)
	std := map[string]bool{}
	for _, p := range pkgs {
		if p.Standard {
			std[p.ImportPath] = true
		}
	}
	for _, p := range pkgs {
		g := group(p.ImportPath)
		for _, dep := range p.Deps {
			if dep == "C" {
				continue
			}
			if g == "engine" && !strings.HasPrefix(dep, module+"/engine") && strings.Contains(strings.Split(dep, "/")[0], ".") {
				t.Errorf("%s depends on %s: the engine imports the standard library only", p.ImportPath, dep)
			}
			if g != "cmd" && strings.HasPrefix(dep, "github.com/spf13/viper") {
				t.Errorf("%s depends on viper: configuration is read in cmd/* only", p.ImportPath)
			}
			for _, infra := range infrastructure {
				if g == "engine" && strings.HasPrefix(dep, infra) {
					t.Errorf("%s depends on infrastructure module %s", p.ImportPath, dep)
				}
			}
		}
		for _, imp := range p.Imports {
			ig := group(imp)
			if ig == "" || ig == g || ig == "engine" || g == "cmd" || g == "bench" {
				continue
			}
			t.Errorf("%s imports %s: %s must import only the engine and its own sub-packages (wiring belongs in cmd/*)", p.ImportPath, imp, g)
		}
	}
}

func TestGroup(t *testing.T) {
	tests := []struct{ path, want string }{
		{module + "/engine", "engine"},
		{module + "/engine/enginetest", "engine"},
		{module + "/adapters/slack", "adapters/slack"},
		{module + "/adapters/slack/blockkit", "adapters/slack"},
		{module + "/knowledge/embedded", "knowledge"},
		{module + "/store/sqlite", "store/sqlite"},
		{module + "/console/web", "console/web"},
		{module + "/cmd/console", "cmd"},
		{"github.com/gin-gonic/gin", ""},
	}
	for _, tt := range tests {
		if got := group(tt.path); got != tt.want {
			t.Errorf("group(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}
