package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// TestMCPServer: an MCP client (mcp-go, streamable HTTP) with an API token
// lists the tools and searches the demo knowledge base through /mcp; one
// without a token is refused.
func TestMCPServer(t *testing.T) {
	m := MustRunMain(t, nil)
	ctx := context.Background()
	c, err := client.NewStreamableHttpClient(m.URL()+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + mustToken(t, m)}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "convosphere-test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	if got := strings.Join(names, ","); !strings.Contains(got, "search_knowledge") || !strings.Contains(got, "list_assistants") || !strings.Contains(got, "list_knowledge_bases") {
		t.Fatalf("tools %s", got)
	}
	call := mcp.CallToolRequest{}
	call.Params.Name = "search_knowledge"
	call.Params.Arguments = map[string]any{"query": "How do I connect Slack?", "limit": 3}
	res, err := c.CallTool(ctx, call)
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError {
		t.Fatalf("search failed: %+v", res.Content)
	}
	raw, _ := json.Marshal(res.StructuredContent)
	var out struct {
		Passages []struct {
			Document string `json:"document"`
		} `json:"passages"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Passages) == 0 || out.Passages[0].Document != "slack.md" {
		t.Errorf("search_knowledge returned %s, want slack.md first", raw)
	}
	call.Params.Arguments = map[string]any{"query": "  "}
	if res, err := c.CallTool(ctx, call); err != nil || !res.IsError {
		t.Errorf("an empty query: %+v, %v; want a tool error", res, err)
	}
	call.Params.Name = "list_assistants"
	call.Params.Arguments = nil
	if res, err := c.CallTool(ctx, call); err != nil || res.IsError || !strings.Contains(textOf(res), "ConvoSphere Guide") {
		t.Errorf("list_assistants: %+v, %v", res, err)
	}

	anon, err := client.NewStreamableHttpClient(m.URL() + "/mcp")
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	_ = anon.Start(ctx)
	if _, err := anon.Initialize(ctx, init); err == nil {
		t.Error("an MCP client without a token was let in")
	}
}

func textOf(res *mcp.CallToolResult) string {
	var sb strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			sb.WriteString(tc.Text)
		}
	}
	return sb.String()
}
