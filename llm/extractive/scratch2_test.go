package extractive

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/convosphere/convosphere/knowledge"
)

func TestScratchDocs(t *testing.T) {
	var files []string
	filepath.WalkDir("../..", func(p string, d os.DirEntry, err error) error {
		if strings.HasSuffix(p, ".md") && !strings.Contains(p, "node_modules") {
			files = append(files, p)
		}
		return nil
	})
	qs := []string{"how do I configure slack tokens", "docker compose postgres", "what is the signing secret", "zzz", "run the tests", "API key environment variable"}
	n, cut := 0, 0
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, size := range []int{400, 1200, 3000} {
			p := knowledge.Chunker{Size: size, Overlap: 150}.Markdown(f, b)
			for _, c := range p.Chunks {
				for _, q := range qs {
					for _, max := range []int{80, 200, 600} {
						lines := quoteLines(c.Text, termsOf(q), max)
						n++
						if len(lines) == 0 {
							t.Errorf("%s: empty quote of %q", f, c.Text)
						}
						if l := linesLen(lines); l > max {
							t.Errorf("%s max %d: %d runes:\n%s", f, max, l, strings.Join(lines, "\n"))
						}
						joined := strings.Join(lines, "\n")
						if !utf8.ValidString(joined) {
							t.Errorf("invalid utf8")
						}
						if strings.Contains(joined, "…") {
							cut++
						}
						// fences balanced
						open := ""
						for _, l := range lines {
							if fence, ok := fenceOf(l); ok && indentOf(l) < 4 {
								if open == "" {
									open = fence
								} else if closesFence(l, open) {
									open = ""
								}
							}
						}
						if open != "" && !strings.Contains(c.Text, "> ```") {
							t.Errorf("%s max %d q %q: unclosed fence:\n%s\n----- from\n%s", f, max, q, joined, c.Text)
						}
					}
				}
			}
		}
	}
	t.Logf("%d quotes, %d cut", n, cut)
}
