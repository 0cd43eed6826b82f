package tools

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	mcpsrv "github.com/mark3labs/mcp-go/server"

	"github.com/convosphere/convosphere/engine"
)

// mcpServer is an MCP server made with mcp-go, with one tool, "shout".
func mcpServer() *mcpsrv.MCPServer {
	s := mcpsrv.NewMCPServer("test", "1", mcpsrv.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("shout", mcp.WithDescription("Upper-cases a text."), mcp.WithString("text", mcp.Required())),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(strings.ToUpper(req.GetString("text", ""))), nil
		})
	return s
}

// TestHTTPAndSSETransports: the registry talks to MCP servers over
// streamable HTTP and SSE (servers made with mcp-go, on loopback), with
// the configured headers.
func TestHTTPAndSSETransports(t *testing.T) {
	var seen []string
	wrap := func(h interface {
		ServeHTTP(w http.ResponseWriter, r *http.Request)
	}) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer s3cret" {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			seen = append(seen, r.Method)
			h.ServeHTTP(w, r)
		})
	}
	streamable := httptest.NewServer(wrap(mcpsrv.NewStreamableHTTPServer(mcpServer())))
	defer streamable.Close()
	sseSrv := httptest.NewUnstartedServer(nil)
	sseSrv.Start()
	defer sseSrv.Close()
	sseSrv.Config.Handler = wrap(mcpsrv.NewSSEServer(mcpServer(), mcpsrv.WithBaseURL(sseSrv.URL)))

	headers := map[string]string{"Authorization": "Bearer s3cret"}
	r, err := New(Config{Servers: []ServerConfig{
		{Name: "web", Transport: TransportHTTP, URL: streamable.URL + "/mcp", Headers: headers},
		{Name: "events", Transport: TransportSSE, URL: sseSrv.URL + "/sse", Headers: headers},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Start(context.Background())
	defer r.Close()
	a := assistantWith("web__shout", "events__shout")
	specs, err := r.Tools(context.Background(), a)
	if err != nil || len(specs) != 2 {
		t.Fatalf("tools %v, %v", specs, err)
	}
	for _, name := range []string{"web__shout", "events__shout"} {
		if got := call(r, a, name, `{"text":"deploy now"}`); got.Outcome != engine.ToolOK || got.Content != "DEPLOY NOW" {
			t.Errorf("%s: %+v", name, got)
		}
	}
	if len(seen) == 0 {
		t.Error("the servers saw no authorised request")
	}
}
