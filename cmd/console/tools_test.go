package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/llm/openaitest"
)

// TestToolCallEndToEnd: the console's real wiring with an MCP server from
// npm (server-everything over stdio) and an OpenAI-compatible model that
// asks for one of its tools: the tool runs and its result reaches the
// model, which answers.
func TestToolCallEndToEnd(t *testing.T) {
	everything := os.Getenv("CONVOSPHERE_TEST_MCP_EVERYTHING")
	if everything == "" {
		if os.Getenv("CONVOSPHERE_REQUIRE_SERVERS") != "" {
			t.Fatal("CONVOSPHERE_TEST_MCP_EVERYTHING is not set: run scripts/services.sh start")
		}
		t.Skip("CONVOSPHERE_TEST_MCP_EVERYTHING is not set (scripts/mcp-servers.sh)")
	}
	llm := openaitest.NewServer(t)
	m := MustRunMain(t, func(c *config.Config) {
		c.LLM.BaseURL = llm.BaseURL()
		c.LLM.Model = "e2e-model"
		c.Tools.MCPServers = []config.MCPServer{{Name: "everything", Transport: "stdio", Command: "node", Args: []string{everything}}}
	})
	ctx := context.Background()
	a, err := m.App.Store.AssistantByName(ctx, "ConvoSphere Guide")
	if err != nil {
		t.Fatal(err)
	}
	a.Tools = []string{"everything__get-sum"}
	if err := m.App.Store.UpdateAssistant(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := m.App.Tools.Enable(ctx, "everything__get-sum", "admin"); err != nil {
		t.Fatal(err)
	}
	llm.Script(
		openaitest.Reply{ToolCalls: []openaitest.ToolCall{{ID: "call_1", Name: "everything__get-sum", Arguments: `{"a":20,"b":22}`}}},
		openaitest.Reply{Chunks: []string{"The sum is 42."}},
	)
	resp := postChat(t, m, mustToken(t, m), "", `{"message": "What is 20 + 22?"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("chat: %s", resp.Status)
	}
	c := decodeChat(t, resp.Body)
	if c.Answer != "The sum is 42." {
		t.Fatalf("answer %+v", c)
	}
	reqs := llm.Requests()
	if len(reqs) != 2 || len(reqs[0].Tools) != 1 {
		t.Fatalf("%d model requests, tools offered %+v", len(reqs), reqs[0].Tools)
	}
	last := reqs[1].Messages[len(reqs[1].Messages)-1]
	if last.Role != "tool" || last.ToolCallID != "call_1" || !strings.Contains(last.Content, "42") {
		t.Errorf("the tool result sent to the model: %+v", last)
	}
	tr, err := m.App.Store.TraceByID(ctx, c.TraceID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range tr.Steps {
		found = found || s.Name == engine.StepTools && strings.Contains(s.Detail, "everything__get-sum ok")
	}
	if !found {
		t.Errorf("the trace has no step for the tool call: %+v", tr.Steps)
	}
}

// TestToolsCommand: `console tools list`, `enable` and `disable` over the
// configured MCP servers.
func TestToolsCommand(t *testing.T) {
	everything := os.Getenv("CONVOSPHERE_TEST_MCP_EVERYTHING")
	if everything == "" {
		if os.Getenv("CONVOSPHERE_REQUIRE_SERVERS") != "" {
			t.Fatal("CONVOSPHERE_TEST_MCP_EVERYTHING is not set: run scripts/services.sh start")
		}
		t.Skip("CONVOSPHERE_TEST_MCP_EVERYTHING is not set (scripts/mcp-servers.sh)")
	}
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "convosphere.yaml")
	yaml := "data_dir: " + dir + "\ntools:\n  mcp_servers:\n    - name: everything\n      transport: stdio\n      command: node\n      args: [\"" + everything + "\"]\n"
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"--config", cfgFile}, args...), strings.NewReader(""), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := run("tools", "list")
	if code != 0 || !strings.Contains(out, "everything__get-sum") || !strings.Contains(out, "not enabled") {
		t.Fatalf("tools list: %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = run("tools", "enable", "everything__get-sum"); code != 0 || !strings.Contains(out, "enabled everything__get-sum") {
		t.Fatalf("tools enable: %d %s %s", code, out, errOut)
	}
	if _, out, _ = run("tools", "list"); !regexp.MustCompile(`everything__get-sum\s+enabled`).MatchString(out) {
		t.Errorf("after enable:\n%s", out)
	}
	if code, _, errOut = run("tools", "enable", "everything__nope"); code != 1 || !strings.Contains(errOut, "no configured MCP server offers") && !strings.Contains(errOut, "No configured MCP server offers") {
		t.Errorf("enabling an unknown tool: %d %s", code, errOut)
	}
	if code, out, _ = run("tools", "disable", "everything__get-sum"); code != 0 || !strings.Contains(out, "disabled") {
		t.Errorf("tools disable: %d %s", code, out)
	}
}
