package engine

import (
	"bytes"
	"embed"
	"strings"
	"text/template"
)

//go:embed prompts/*.tmpl
var promptFS embed.FS

// prompts are parsed once; a missing or broken template fails at start-up.
var prompts = template.Must(template.New("prompts").Funcs(template.FuncMap{
	"add":  func(a, b int) int { return a + b },
	"join": strings.Join,
}).ParseFS(promptFS, "prompts/*.tmpl"))

type systemPromptData struct {
	SystemPrompt string
	Passages     []Passage
	Thread       []ThreadLine
}

// renderSystemPrompt renders the assistant's system prompt with the
// numbered passages the model may cite and the thread's earlier messages.
func renderSystemPrompt(a *Assistant, passages []Passage, thread []ThreadLine) (string, error) {
	var buf bytes.Buffer
	if err := prompts.ExecuteTemplate(&buf, "system", systemPromptData{SystemPrompt: a.SystemPrompt, Passages: passages, Thread: thread}); err != nil {
		return "", WrapError(EINTERNAL, err, "render system prompt")
	}
	return strings.TrimSpace(buf.String()), nil
}
