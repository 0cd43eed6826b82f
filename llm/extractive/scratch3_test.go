package extractive

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
)

func TestScratchShow(t *testing.T) {
	f := os.Getenv("DOC")
	b, _ := os.ReadFile(f)
	p := knowledge.Chunker{}.Markdown(f, b)
	r, _ := New(Config{MaxPassages: 3})
	var ps []engine.Passage
	for _, c := range p.Chunks {
		if strings.Contains(c.Text, "```") || strings.Contains(c.Text, "|") || strings.Contains(c.Text, "\n- ") {
			ps = append(ps, c.Passage(0))
		}
	}
	fmt.Println(r.Answer(os.Getenv("Q"), ps))
}
