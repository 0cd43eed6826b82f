package extractive

import (
	"fmt"
	"strings"
	"testing"

	"github.com/convosphere/convosphere/engine"
)

func TestScratch(t *testing.T) {
	slack := "## Slack\n\n2. Give ConvoSphere the tokens\n\n| Slack setting | where to find it |\n|---|---|\n| Bot token | OAuth & Permissions |\n| Signing secret | Basic Information |\n| App token | Basic Information › App-Level Tokens |\n\n```sh\nexport A=1\nexport B=2\n```\n\nThen restart the bot:\n\n- run `csctl restart`\n- check the logs\n  for errors\n- done"
	long := slack + "\n\n" + strings.Repeat("Some unrelated paragraph text that goes on and on. ", 8) + "\n\n```go\n" + strings.Repeat("fmt.Println(\"hello world\")\n", 20) + "```\n\n| Key | Value |\n|---|---|\n" + strings.Repeat("| other | thing |\n", 10) + "| signing | rotate with csctl keys rotate |\n" + strings.Repeat("| other | thing |\n", 10)
	for _, c := range []struct{ q, text string; max int }{
		{"where do I find the signing secret?", slack, 600},
		{"where do I find the signing secret?", slack, 200},
		{"how do I rotate the signing key", long, 600},
		{"hello world", long, 300},
		{"Println", "```go\n" + strings.Repeat("fmt.Println(\"hello world\")\n", 40) + "```", 200},
		{"logs", slack, 120},
	} {
		r, _ := New(Config{MaxQuoteRunes: c.max})
		out := r.Answer(c.q, []engine.Passage{{Title: "Setup", HeadingPath: []string{"Slack"}, Text: c.text}})
		fmt.Printf("==== %q max %d\n%s\n", c.q, c.max, out)
		n := linesLen(quoteLines(c.text, termsOf(c.q), c.max))
		fmt.Println("---- size", n)
	}
}
