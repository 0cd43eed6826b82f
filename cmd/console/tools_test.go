package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/llm/openaitest"
)

// TestToolCallEndToEnd: the console's real wiring with an MCP server from
// npm (server-everything over stdio) and an OpenAI-compatible model that
// asks for one of its tools: the tool runs and its result reaches the
// model, which answers.
func TestToolCallEndToEnd(t *testing.T) {
	everything := mustEverything(t)
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
	everything := mustEverything(t)
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

// TestToolPolicyEndToEnd: the console's real wiring with server-everything
// from npm and a scripted OpenAI-compatible model, for an assistant whose
// tools are under "ask" and "deny": the asked call waits for the asker's
// decision (another user may not decide), runs once approved, and is
// reported to the model as declined when rejected; the denied tool is not
// offered and refused when asked for anyway.
func TestToolPolicyEndToEnd(t *testing.T) {
	everything := mustEverything(t)
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
	a.Tools = []string{"everything__get-sum", "everything__echo"}
	a.ToolPolicy = map[string]engine.ToolMode{"everything__get-sum": engine.ToolAsk, "everything__echo": engine.ToolDeny}
	if err := m.App.Store.UpdateAssistant(ctx, a); err != nil {
		t.Fatal(err)
	}
	for _, tool := range a.Tools {
		if _, err := m.App.Tools.Enable(ctx, tool, "admin"); err != nil {
			t.Fatal(err)
		}
	}
	tokens := map[string]string{}
	for _, name := range []string{"vic", "val"} {
		if err := m.App.Store.CreateUser(ctx, &engine.User{Name: name, Role: engine.RoleViewer, PasswordHash: "unused"}); err != nil {
			t.Fatal(err)
		}
		tok, err := CreateToken(ctx, m.App.Store, name, "test")
		if err != nil {
			t.Fatal(err)
		}
		tokens[name] = tok
	}
	askSum := openaitest.Reply{ToolCalls: []openaitest.ToolCall{{ID: "call_sum", Name: "everything__get-sum", Arguments: `{"a":20,"b":22}`}}}

	t.Run("ask then approved", func(t *testing.T) {
		llm.Script(askSum, openaitest.Reply{Chunks: []string{"The sum is 42."}})
		ap := mustAwaitApproval(t, m, tokens["vic"], "What is 20 + 22?")
		if resp := postDecision(t, m, tokens["val"], ap, "approve"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("another viewer's decision: %s, want 403", resp.Status)
		}
		resp := postDecision(t, m, tokens["vic"], ap, "approve")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("the asker's approval: %s", resp.Status)
		}
		if c := decodeChat(t, resp.Body); c.Answer != "The sum is 42." {
			t.Errorf("answer after approval %+v", c)
		}
		if last := lastMessage(llm); last.Role != "tool" || last.ToolCallID != "call_sum" || !strings.Contains(last.Content, "42") {
			t.Errorf("the tool result sent to the model: %+v", last)
		}
		if resp := postDecision(t, m, tokens["vic"], ap, "reject"); resp.StatusCode != http.StatusConflict {
			t.Errorf("a second decision: %s, want 409", resp.Status)
		}
	})
	t.Run("ask then rejected", func(t *testing.T) {
		llm.Script(askSum, openaitest.Reply{Chunks: []string{"Then I will not add them."}})
		ap := mustAwaitApproval(t, m, tokens["vic"], "What is 20 + 22?")
		resp := postDecision(t, m, tokens["vic"], ap, "reject")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("reject: %s", resp.Status)
		}
		if c := decodeChat(t, resp.Body); c.Answer != "Then I will not add them." {
			t.Errorf("answer after rejection %+v", c)
		}
		if last := lastMessage(llm); last.Role != "tool" || !strings.Contains(last.Content, "declined this call to everything__get-sum") || strings.Contains(last.Content, "42") {
			t.Errorf("the model was told %+v", last)
		}
	})
	t.Run("denied", func(t *testing.T) {
		llm.Script(openaitest.Reply{ToolCalls: []openaitest.ToolCall{{ID: "call_echo", Name: "everything__echo", Arguments: `{"message":"hi"}`}}},
			openaitest.Reply{Chunks: []string{"I cannot echo."}})
		resp := postChat(t, m, tokens["vic"], "", `{"message": "Echo hi"}`)
		if c := decodeChat(t, resp.Body); c.Answer != "I cannot echo." {
			t.Fatalf("answer %+v", c)
		}
		reqs := llm.Requests()
		for _, tool := range reqs[len(reqs)-2].Tools {
			if strings.Contains(tool.Function.Name, "echo") {
				t.Errorf("the denied tool was offered: %+v", reqs[len(reqs)-2].Tools)
			}
		}
		if last := lastMessage(llm); !strings.Contains(last.Content, "denied by this assistant's policy") {
			t.Errorf("the model was told %+v", last)
		}
	})
	audit, err := m.App.Store.ListToolCalls(ctx, engine.ToolCallFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, r := range audit {
		outcomes = append(outcomes, r.Outcome)
	}
	if got := strings.Join(outcomes, ","); got != "denied,rejected,ok" {
		t.Errorf("audit outcomes (newest first) %s", got)
	}
}

// mustAwaitApproval asks a question whose tool call waits for approval
// and returns the approval's id.
func mustAwaitApproval(t *testing.T, m *Main, token, question string) string {
	t.Helper()
	resp := postChat(t, m, token, "", `{"message": "`+question+`"}`)
	var c struct {
		Outcome  string `json:"outcome"`
		Approval *struct {
			ID    string `json:"id"`
			Tools []struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"tools"`
		} `json:"approval"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || c.Outcome != "awaiting_approval" || c.Approval == nil || len(c.Approval.Tools) != 1 || c.Approval.Tools[0].Name != "everything__get-sum" {
		t.Fatalf("chat: %s %+v", resp.Status, c)
	}
	return c.Approval.ID
}

func postDecision(t *testing.T, m *Main, token, id, decision string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, m.URL()+"/api/v1/tool-approvals/"+id, strings.NewReader(`{"decision":"`+decision+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func lastMessage(llm *openaitest.Server) openaitest.Message {
	reqs := llm.Requests()
	msgs := reqs[len(reqs)-1].Messages
	return msgs[len(msgs)-1]
}

// TestRugPullEndToEnd: an MCP server (built on the official SDK from npm)
// whose enabled tool later rewrites its description and schema and
// announces it (tools/list_changed). The registry reads the list again,
// the tool is disabled at once: not offered to the scripted model, its
// call refused and audited; re-enabling it pins the new description.
func TestRugPullEndToEnd(t *testing.T) {
	everything := mustEverything(t)
	nodeModules := everything[:strings.LastIndex(everything, "/node_modules/")+len("/node_modules")]
	script, err := filepath.Abs(filepath.Join("testdata", "rugpull.cjs"))
	if err != nil {
		t.Fatal(err)
	}
	flag := filepath.Join(t.TempDir(), "pull")
	llm := openaitest.NewServer(t)
	m := MustRunMain(t, func(c *config.Config) {
		c.LLM.BaseURL = llm.BaseURL()
		c.LLM.Model = "e2e-model"
		c.Tools.MCPServers = []config.MCPServer{{Name: "rug", Transport: "stdio", Command: "node", Args: []string{script},
			Env: map[string]string{"NODE_PATH": nodeModules, "RUGPULL_FLAG": flag}}}
	})
	ctx := context.Background()
	a, err := m.App.Store.AssistantByName(ctx, "ConvoSphere Guide")
	if err != nil {
		t.Fatal(err)
	}
	a.Tools = []string{"rug__add"}
	if err := m.App.Store.UpdateAssistant(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := m.App.Tools.Enable(ctx, "rug__add", "admin"); err != nil {
		t.Fatal(err)
	}
	token := mustToken(t, m)
	askAdd := openaitest.Reply{ToolCalls: []openaitest.ToolCall{{ID: "call_add", Name: "rug__add", Arguments: `{"a":2,"b":3}`}}}

	llm.Script(askAdd, openaitest.Reply{Chunks: []string{"5."}})
	if c := decodeChat(t, postChat(t, m, token, "", `{"message": "2 + 3?"}`).Body); c.Answer != "5." {
		t.Fatalf("answer %+v (error %+v)", c, c.Error)
	}
	if last := lastMessage(llm); last.Content != "5" {
		t.Fatalf("the pinned tool's result: %+v", last)
	}

	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	state := ""
	for deadline := time.Now().Add(10 * time.Second); state != "changed" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		inv, _ := m.App.Tools.Inventory(ctx)
		for _, tool := range inv {
			if tool.Name == "rug__add" {
				state = tool.State
			}
		}
	}
	if state != "changed" {
		t.Fatalf("after the server changed the tool, its state is %q, want changed", state)
	}
	llm.Script(askAdd, openaitest.Reply{Chunks: []string{"I cannot add now."}})
	if c := decodeChat(t, postChat(t, m, token, "", `{"message": "2 + 3?"}`).Body); c.Answer != "I cannot add now." {
		t.Fatalf("answer %+v", c)
	}
	reqs := llm.Requests()
	if offered := reqs[len(reqs)-2].Tools; len(offered) != 0 {
		t.Errorf("the changed tool is still offered: %+v", offered)
	}
	if last := lastMessage(llm); last.Role != "tool" || last.Content == "5" {
		t.Errorf("the changed tool ran: %+v", last)
	}
	audit, err := m.App.Store.ListToolCalls(ctx, engine.ToolCallFilter{Limit: 1})
	if err != nil || len(audit) != 1 || audit[0].Outcome != engine.ToolDenied {
		t.Errorf("audit %+v, %v", audit, err)
	}

	if _, err := m.App.Tools.Enable(ctx, "rug__add", "admin"); err != nil {
		t.Fatal(err)
	}
	llm.Script(askAdd, openaitest.Reply{Chunks: []string{"5 again."}})
	if c := decodeChat(t, postChat(t, m, token, "", `{"message": "2 + 3?"}`).Body); c.Answer != "5 again." {
		t.Fatalf("answer %+v", c)
	}
	reqs = llm.Requests()
	if offered := reqs[len(reqs)-2].Tools; len(offered) != 1 || !strings.Contains(offered[0].Function.Description, "id_rsa") {
		t.Errorf("after re-enabling, offered %+v; want the new description", offered)
	}
}

// TestToolFailuresEndToEnd: the console's real wiring with server-everything
// and a scripted model whose tool call times out, then whose tool server
// crashed: each time the model is told what happened in words and the
// user gets an answer; the crashed server is started again for later
// calls. Both failures are in the audit.
func TestToolFailuresEndToEnd(t *testing.T) {
	everything := mustEverything(t)
	marker := strconv.FormatInt(time.Now().UnixNano(), 36)
	llm := openaitest.NewServer(t)
	m := MustRunMain(t, func(c *config.Config) {
		c.LLM.BaseURL = llm.BaseURL()
		c.LLM.Model = "e2e-model"
		c.Tools.CallTimeout = time.Second
		c.Tools.MCPServers = []config.MCPServer{{Name: "everything", Transport: "stdio", Command: "node", Args: []string{everything},
			Env: map[string]string{"CONVOSPHERE_TEST_MARKER": marker}}}
	})
	ctx := context.Background()
	a, err := m.App.Store.AssistantByName(ctx, "ConvoSphere Guide")
	if err != nil {
		t.Fatal(err)
	}
	a.Tools = []string{"everything__get-sum", "everything__trigger-long-running-operation"}
	if err := m.App.Store.UpdateAssistant(ctx, a); err != nil {
		t.Fatal(err)
	}
	for _, tool := range a.Tools {
		if _, err := m.App.Tools.Enable(ctx, tool, "admin"); err != nil {
			t.Fatal(err)
		}
	}
	token := mustToken(t, m)
	tests := []struct {
		name, tool, args string
		before           func(t *testing.T)
		toldModel        string
		outcome          string
	}{
		{name: "timeout", tool: "everything__trigger-long-running-operation", args: `{"duration":10,"steps":2}`,
			toldModel: "did not answer within 1s", outcome: engine.ToolTimeout},
		{name: "crash", tool: "everything__get-sum", args: `{"a":1,"b":2}`,
			before: func(t *testing.T) {
				if err := syscall.Kill(pidWithMarker(t, marker), syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				time.Sleep(200 * time.Millisecond)
			},
			toldModel: "is being restarted", outcome: engine.ToolError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before(t)
			}
			llm.Script(openaitest.Reply{ToolCalls: []openaitest.ToolCall{{ID: "call_1", Name: tt.tool, Arguments: tt.args}}},
				openaitest.Reply{Chunks: []string{"The tool failed; here is what I know."}})
			resp := postChat(t, m, token, "", `{"message": "Use the tool"}`)
			if c := decodeChat(t, resp.Body); resp.StatusCode != http.StatusOK || c.Answer != "The tool failed; here is what I know." {
				t.Fatalf("chat: %s %+v", resp.Status, c)
			}
			if last := lastMessage(llm); last.Role != "tool" || !strings.Contains(last.Content, tt.toldModel) {
				t.Errorf("the model was told %+v, want %q", last, tt.toldModel)
			}
			audit, err := m.App.Store.ListToolCalls(ctx, engine.ToolCallFilter{Limit: 1})
			if err != nil || len(audit) != 1 || audit[0].Outcome != tt.outcome || audit[0].Tool != tt.tool {
				t.Errorf("audit %+v, %v", audit, err)
			}
		})
	}
	// The crashed server comes back (after its backoff) for later calls.
	deadline := time.Now().Add(15 * time.Second)
	for {
		llm.Script(openaitest.Reply{ToolCalls: []openaitest.ToolCall{{ID: "call_2", Name: "everything__get-sum", Arguments: `{"a":20,"b":22}`}}},
			openaitest.Reply{Chunks: []string{"Done."}})
		decodeChat(t, postChat(t, m, token, "", `{"message": "20 + 22?"}`).Body)
		if strings.Contains(lastMessage(llm).Content, "42") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the crashed server was not restarted: the model was told %+v", lastMessage(llm))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// pidWithMarker finds the process whose environment holds the marker.
func pidWithMarker(t *testing.T, marker string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && bytes.Contains(env, []byte("CONVOSPHERE_TEST_MARKER="+marker)) {
			return pid
		}
	}
	t.Fatal("the MCP server's process was not found")
	return 0
}

// mustEverything is the path of server-everything from npm
// (scripts/mcp-servers.sh); the test is skipped without it, unless
// CONVOSPHERE_REQUIRE_SERVERS makes it fail.
func mustEverything(t *testing.T) string {
	t.Helper()
	everything := os.Getenv("CONVOSPHERE_TEST_MCP_EVERYTHING")
	if everything == "" {
		if os.Getenv("CONVOSPHERE_REQUIRE_SERVERS") != "" {
			t.Fatal("CONVOSPHERE_TEST_MCP_EVERYTHING is not set: run scripts/services.sh start")
		}
		t.Skip("CONVOSPHERE_TEST_MCP_EVERYTHING is not set (scripts/mcp-servers.sh)")
	}
	return everything
}
