package tools

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestMain doubles as a stdio MCP server (made with mcp-go) when
// CONVOSPHERE_TEST_STDIO_SERVER is set: its tool "slow" waits until it is
// cancelled and then writes "cancelled" to $CANCEL_FILE.
func TestMain(m *testing.M) {
	if os.Getenv("CONVOSPHERE_TEST_STDIO_SERVER") == "" {
		os.Exit(m.Run())
	}
	s := mcpsrv.NewMCPServer("stdio-test", "1", mcpsrv.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("slow", mcp.WithDescription("Takes its time.")),
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			select {
			case <-ctx.Done():
				_ = os.WriteFile(os.Getenv("CANCEL_FILE"), []byte("cancelled"), 0o600)
				return nil, ctx.Err()
			case <-time.After(30 * time.Second):
				return mcp.NewToolResultText("late"), nil
			}
		})
	if err := mcpsrv.ServeStdio(s); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// TestTimeoutCancelsTheCall: a call that outlives tools.call_timeout is
// cancelled the MCP way, and the tool's work stops: over stdio with a
// notifications/cancelled for the request (the server then ends the
// tool's context), over streamable HTTP by ending the request's stream.
func TestTimeoutCancelsTheCall(t *testing.T) {
	t.Run("stdio", func(t *testing.T) {
		flag := filepath.Join(t.TempDir(), "cancelled")
		r, err := New(Config{CallTimeout: 300 * time.Millisecond, Servers: []ServerConfig{{Name: "local", Transport: TransportStdio,
			Command: os.Args[0], Env: map[string]string{"CONVOSPHERE_TEST_STDIO_SERVER": "1", "CANCEL_FILE": flag}}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Start(context.Background())
		defer r.Close()
		if got := call(r, assistantWith("local__slow"), "local__slow", `{}`); got.Outcome != engine.ToolTimeout {
			t.Fatalf("outcome %+v, want a timeout", got)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			if b, _ := os.ReadFile(flag); string(b) == "cancelled" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the stdio server's tool was not cancelled after the timeout")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Run("streamable HTTP", func(t *testing.T) {
		s := mcpsrv.NewMCPServer("test", "1", mcpsrv.WithToolCapabilities(false))
		ended := make(chan struct{})
		s.AddTool(mcp.NewTool("slow", mcp.WithDescription("Takes its time.")),
			func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				select {
				case <-ctx.Done():
					close(ended)
					return nil, ctx.Err()
				case <-time.After(10 * time.Second):
					return mcp.NewToolResultText("late"), nil
				}
			})
		srv := httptest.NewServer(mcpsrv.NewStreamableHTTPServer(s))
		defer srv.Close()
		r, err := New(Config{CallTimeout: 300 * time.Millisecond, Servers: []ServerConfig{{Name: "web", Transport: TransportHTTP, URL: srv.URL + "/mcp"}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Start(context.Background())
		defer r.Close()
		if got := call(r, assistantWith("web__slow"), "web__slow", `{}`); got.Outcome != engine.ToolTimeout {
			t.Fatalf("outcome %+v, want a timeout", got)
		}
		select {
		case <-ended:
		case <-time.After(5 * time.Second):
			t.Fatal("the tool's context did not end after the timeout")
		}
	})
}
