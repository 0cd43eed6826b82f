// Package mcp holds ConvoSphere's Model Context Protocol side: Server makes
// the knowledge bases searchable by other agents (IDEs, desktop assistants)
// over MCP's streamable HTTP transport, at the console's /mcp.
package mcp

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/convosphere/convosphere/engine"
)

// Deps are what the tools read.
type Deps struct {
	Retriever  engine.Retriever
	Assistants interface {
		ListAssistants(ctx context.Context) ([]*engine.Assistant, error)
	}
	KnowledgeBases interface {
		ListKnowledgeBases(ctx context.Context) ([]*engine.KnowledgeBase, error)
	}
	Version string
}

// maxResults bounds one search.
const maxResults = 50

// NewServer returns the MCP endpoint as an http.Handler (streamable HTTP,
// stateless). It does no authentication: the console mounts it behind its
// bearer-token check. mcp-go's localhost (DNS rebinding) protection is off
// for that reason, and because the console usually sits behind a reverse
// proxy on the same host, whose requests arrive from loopback with the
// public Host header.
func NewServer(d Deps) http.Handler {
	s := server.NewMCPServer("convosphere", d.Version, server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("search_knowledge",
		mcp.WithDescription("Search ConvoSphere's knowledge bases the way its assistants do (BM25 and vectors, fused) and return the best passages with their document, title and section."),
		mcp.WithString("query", mcp.Required(), mcp.Description("What to look for: keywords or a question")),
		mcp.WithArray("knowledge_bases", mcp.WithStringItems(), mcp.Description("Knowledge base names to search; all when left out (see list_knowledge_bases)")),
		mcp.WithNumber("limit", mcp.Description("How many passages, 1 to 50 (default 5)")),
		mcp.WithReadOnlyHintAnnotation(true),
	), d.searchKnowledge)
	s.AddTool(mcp.NewTool("list_knowledge_bases",
		mcp.WithDescription("List the knowledge bases that search_knowledge can search."),
		mcp.WithReadOnlyHintAnnotation(true),
	), d.listKnowledgeBases)
	s.AddTool(mcp.NewTool("list_assistants",
		mcp.WithDescription("List ConvoSphere's assistants: name, description and the knowledge bases each answers from."),
		mcp.WithReadOnlyHintAnnotation(true),
	), d.listAssistants)
	return server.NewStreamableHTTPServer(s, server.WithStateLess(true), server.WithDisableLocalhostProtection(true))
}

type passageJSON struct {
	KnowledgeBase string  `json:"knowledge_base"`
	Document      string  `json:"document"`
	Title         string  `json:"title"`
	Section       string  `json:"section,omitempty"`
	Text          string  `json:"text"`
	Score         float64 `json:"score"`
}

func (d Deps) searchKnowledge(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	query := strings.TrimSpace(req.GetString("query", ""))
	if query == "" {
		return mcp.NewToolResultError("query is empty: give keywords or a question to search for"), nil
	}
	limit := req.GetInt("limit", 5)
	if limit < 1 || limit > maxResults {
		return mcp.NewToolResultError(fmt.Sprintf("limit %d is out of range: use 1 to %d", limit, maxResults)), nil
	}
	kbs := req.GetStringSlice("knowledge_bases", nil)
	if len(kbs) == 0 {
		all, err := d.KnowledgeBases.ListKnowledgeBases(ctx)
		if err != nil {
			return nil, fmt.Errorf("list knowledge bases: %w", err)
		}
		for _, kb := range all {
			kbs = append(kbs, kb.Name)
		}
		if len(kbs) == 0 {
			return mcp.NewToolResultStructured(map[string]any{"passages": []passageJSON{}}, "There are no knowledge bases yet."), nil
		}
	}
	res, err := d.Retriever.Retrieve(ctx, engine.RetrievalRequest{Query: query, KnowledgeBases: kbs,
		Settings: engine.RetrievalSettings{Limit: limit}})
	if err != nil {
		if msg := engine.ErrorMessage(err); msg != "" && engine.ErrorCode(err) != engine.EINTERNAL {
			return mcp.NewToolResultError(msg), nil
		}
		return nil, fmt.Errorf("search knowledge: %w", err)
	}
	out := make([]passageJSON, 0, len(res.Passages))
	var text strings.Builder
	for i, p := range res.Passages {
		pj := passageJSON{KnowledgeBase: p.KnowledgeBase, Document: p.Document, Title: p.Title,
			Section: strings.Join(p.HeadingPath, " › "), Text: p.Text, Score: p.Score}
		out = append(out, pj)
		fmt.Fprintf(&text, "[%d] %s", i+1, pj.Title)
		if pj.Section != "" {
			text.WriteString(" › " + pj.Section)
		}
		fmt.Fprintf(&text, " (%s, %s)\n%s\n\n", pj.Document, pj.KnowledgeBase, pj.Text)
	}
	if len(out) == 0 {
		text.WriteString("No passage matches.")
	}
	return mcp.NewToolResultStructured(map[string]any{"passages": out}, strings.TrimSpace(text.String())), nil
}

func (d Deps) listKnowledgeBases(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	all, err := d.KnowledgeBases.ListKnowledgeBases(ctx)
	if err != nil {
		return nil, fmt.Errorf("list knowledge bases: %w", err)
	}
	type kbJSON struct {
		Name        string `json:"name"`
		Description string `json:"description,omitempty"`
	}
	out := make([]kbJSON, 0, len(all))
	names := make([]string, 0, len(all))
	for _, kb := range all {
		out = append(out, kbJSON{kb.Name, kb.Description})
		names = append(names, kb.Name)
	}
	return mcp.NewToolResultStructured(map[string]any{"knowledge_bases": out}, strings.Join(names, "\n")), nil
}

func (d Deps) listAssistants(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	all, err := d.Assistants.ListAssistants(ctx)
	if err != nil {
		return nil, fmt.Errorf("list assistants: %w", err)
	}
	type assistantJSON struct {
		Name           string   `json:"name"`
		Description    string   `json:"description,omitempty"`
		KnowledgeBases []string `json:"knowledge_bases"`
		IsDefault      bool     `json:"is_default"`
	}
	out := make([]assistantJSON, 0, len(all))
	var text strings.Builder
	for _, a := range all {
		out = append(out, assistantJSON{a.Name, a.Description, a.KnowledgeBases, a.IsDefault})
		fmt.Fprintf(&text, "%s: %s\n", a.Name, a.Description)
	}
	return mcp.NewToolResultStructured(map[string]any{"assistants": out}, strings.TrimSpace(text.String())), nil
}
