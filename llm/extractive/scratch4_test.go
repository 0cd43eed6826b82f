package extractive

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/convosphere/convosphere/knowledge"
)

func TestScratchBlocks(t *testing.T) {
	f := os.Getenv("DOC")
	b, _ := os.ReadFile(f)
	p := knowledge.Chunker{}.Markdown(f, b)
	for _, c := range p.Chunks {
		if strings.Contains(c.Text, os.Getenv("PAT")) {
			fmt.Printf("%q\n", c.Text)
			for _, bl := range parseBlocks(c.Text) {
				fmt.Printf("kind %d gap %v %q\n", bl.kind, bl.gap, bl.lines)
			}
		}
	}
}
