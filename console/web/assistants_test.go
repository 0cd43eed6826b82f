package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/convosphere/convosphere/engine"
)

// sendJSON makes an API request with a JSON body (none when empty).
func (e *testEnv) sendJSON(method, path, body string, c *client) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	c.apply(r)
	return e.serve(r)
}

// assistantOut is an assistant as GET /api/v1/assistants/:id shows it.
type assistantOut struct {
	ID             string                     `json:"id"`
	Name           string                     `json:"name"`
	Description    string                     `json:"description"`
	SystemPrompt   string                     `json:"system_prompt"`
	Model          string                     `json:"model"`
	Temperature    float64                    `json:"temperature"`
	KnowledgeBases []string                   `json:"knowledge_bases"`
	Tools          []string                   `json:"tools"`
	ToolPolicy     map[string]engine.ToolMode `json:"tool_policy"`
	Bindings       []engine.Binding           `json:"bindings"`
	IsDefault      bool                       `json:"is_default"`
	CreatedAt      string                     `json:"created_at"`
}

func mustAssistantOut(tb testing.TB, w *httptest.ResponseRecorder, status int) assistantOut {
	tb.Helper()
	if w.Code != status {
		tb.Fatalf("status %d, want %d: %s", w.Code, status, w.Body)
	}
	raw := decodeJSON(tb, w.Body.Bytes())
	if _, ok := raw["tool_policy"].(map[string]any); !ok {
		tb.Fatalf("tool_policy is not an object: %s", w.Body)
	}
	var a assistantOut
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		tb.Fatal(err)
	}
	return a
}

func TestAssistantsCRUD(t *testing.T) {
	env := mustEnv(t, envOptions{})
	admin := env.MustToken(env.MustUser("ada", engine.RoleAdmin))
	ctx := context.Background()

	w := env.sendJSON(http.MethodPost, "/api/v1/assistants", `{"name":"ops","description":"Runs things","system_prompt":"Be careful.",
		"temperature":0.3,"knowledge_bases":["handbook"],"tools":["files__read","files__write","web__fetch"],
		"tool_policy":{"files__write":"ask","web__fetch":"deny"},"bindings":[{"platform":"slack","channel_id":"C1","trigger":"mention"}]}`, admin)
	created := mustAssistantOut(t, w, http.StatusCreated)
	if created.ID == "" || created.Name != "ops" || created.Temperature != 0.3 || len(created.Tools) != 3 ||
		created.ToolPolicy["files__write"] != engine.ToolAsk || created.ToolPolicy["web__fetch"] != engine.ToolDeny {
		t.Fatalf("created %+v", created)
	}
	if loc := w.Header().Get("Location"); loc != "/api/v1/assistants/"+created.ID {
		t.Fatalf("Location %q", loc)
	}
	stored, err := env.store.AssistantByID(ctx, created.ID)
	if err != nil || stored.ToolModeFor("files__write") != engine.ToolAsk || stored.ToolModeFor("files__read") != engine.ToolAllow ||
		stored.ToolModeFor("web__fetch") != engine.ToolDeny || stored.SystemPrompt != "Be careful." {
		t.Fatalf("stored %+v, %v", stored, err)
	}

	got := mustAssistantOut(t, env.get("/api/v1/assistants/"+created.ID, admin), http.StatusOK)
	if got.SystemPrompt != "Be careful." || got.ToolPolicy["files__write"] != engine.ToolAsk || len(got.Bindings) != 1 {
		t.Fatalf("get %+v", got)
	}

	// PUT replaces the editable fields; a GET body may be sent back as is.
	var body map[string]any
	if err := json.Unmarshal(env.get("/api/v1/assistants/"+created.ID, admin).Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	body["tools"] = []string{"files__read"}
	body["tool_policy"] = map[string]string{"files__read": "ask"}
	body["is_default"] = true
	raw, _ := json.Marshal(body)
	updated := mustAssistantOut(t, env.sendJSON(http.MethodPut, "/api/v1/assistants/"+created.ID, string(raw), admin), http.StatusOK)
	if len(updated.Tools) != 1 || updated.ToolPolicy["files__read"] != engine.ToolAsk || len(updated.ToolPolicy) != 1 ||
		!updated.IsDefault || updated.CreatedAt != got.CreatedAt || updated.SystemPrompt != "Be careful." {
		t.Fatalf("updated %+v", updated)
	}
	// Fields left out are emptied.
	updated = mustAssistantOut(t, env.sendJSON(http.MethodPut, "/api/v1/assistants/"+created.ID, `{"name":"ops"}`, admin), http.StatusOK)
	if len(updated.Tools) != 0 || len(updated.ToolPolicy) != 0 || updated.SystemPrompt != "" || updated.IsDefault {
		t.Fatalf("replaced %+v", updated)
	}

	// The list shows the policy to everyone.
	viewer := env.MustToken(env.MustUser("vera", engine.RoleViewer))
	env.sendJSON(http.MethodPut, "/api/v1/assistants/"+created.ID, `{"name":"ops","tools":["x"],"tool_policy":{"x":"ask"}}`, admin)
	if w := env.get("/api/v1/assistants", viewer); !strings.Contains(w.Body.String(), `"tools":["x"],"tool_policy":{"x":"ask"}`) {
		t.Fatalf("list: %s", w.Body)
	}

	if w := env.sendJSON(http.MethodDelete, "/api/v1/assistants/"+created.ID, "", admin); w.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	if _, err := env.store.AssistantByID(ctx, created.ID); !engine.IsNotFound(err) {
		t.Fatalf("still stored: %v", err)
	}
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		if w := env.sendJSON(method, "/api/v1/assistants/"+created.ID, "", admin); w.Code != http.StatusNotFound {
			t.Fatalf("%s after delete: %d", method, w.Code)
		}
	}
	if w := env.sendJSON(http.MethodPut, "/api/v1/assistants/"+created.ID, `{"name":"ops"}`, admin); w.Code != http.StatusNotFound {
		t.Fatalf("PUT after delete: %d", w.Code)
	}
}

func TestAssistantsValidation(t *testing.T) {
	env := mustEnv(t, envOptions{})
	admin := env.MustToken(env.MustUser("ada", engine.RoleAdmin))
	taken := env.MustAssistant("taken", false)
	tests := []struct {
		name   string
		body   string
		status int
		want   string
	}{
		{"policy for a tool not in tools", `{"name":"a","tools":["files__read"],"tool_policy":{"files__read":"allow","files__write":"ask"}}`,
			http.StatusBadRequest, `sets "ask" for "files__write", which is not in "tools"`},
		{"policy without tools", `{"name":"a","tool_policy":{"x":"deny"}}`, http.StatusBadRequest, `"x", which is not in "tools"`},
		{"unknown mode", `{"name":"a","tools":["x"],"tool_policy":{"x":"sometimes"}}`, http.StatusBadRequest, `Tool policy "sometimes" for x is unknown: use allow, ask or deny`},
		{"empty tool name", `{"name":"a","tools":["x"," "]}`, http.StatusBadRequest, `empty tool name (entry 2)`},
		{"duplicate tool", `{"name":"a","tools":["x","x"]}`, http.StatusBadRequest, `lists "x" twice`},
		{"bad name", `{"name":"!!"}`, http.StatusBadRequest, `Assistant name "!!" is invalid`},
		{"no name", `{}`, http.StatusBadRequest, `Assistant name "" is invalid`},
		{"temperature", `{"name":"a","temperature":3}`, http.StatusBadRequest, `Temperature 3.00 is out of range`},
		{"bad trigger", `{"name":"a","bindings":[{"platform":"slack","channel_id":"C1","trigger":"often"}]}`, http.StatusBadRequest, `Trigger "often" is unknown`},
		{"unknown field", `{"name":"a","prompt":"x"}`, http.StatusBadRequest, `Unknown field "prompt"`},
		{"unknown nested field", `{"name":"a","retrieval":{"top_k":3}}`, http.StatusBadRequest, `Unknown field "top_k"`},
		{"wrong type", `{"name":"a","tools":"x"}`, http.StatusBadRequest, `Field "tools" must be an array`},
		{"policy not an object", `{"name":"a","tool_policy":["x"]}`, http.StatusBadRequest, `Field "tool_policy" must be an object`},
		{"id on create", `{"name":"a","id":"mine"}`, http.StatusBadRequest, `assigned by the server`},
		{"not JSON", `name=a`, http.StatusBadRequest, `not valid JSON`},
		{"empty", ``, http.StatusBadRequest, `The request body is empty`},
		{"name taken", `{"name":"TAKEN"}`, http.StatusConflict, `An assistant named "TAKEN" already exists`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := env.sendJSON(http.MethodPost, "/api/v1/assistants", tt.body, admin)
			_, msg := errorOf(t, w.Body.Bytes())
			if w.Code != tt.status || !strings.Contains(msg, tt.want) {
				t.Fatalf("%d %q, want %d with %q", w.Code, msg, tt.status, tt.want)
			}
		})
	}
	all, err := env.store.ListAssistants(context.Background())
	if err != nil || len(all) != 1 {
		t.Fatalf("a refused request stored an assistant: %d, %v", len(all), err)
	}
	// PUT checks the same, and the id cannot change.
	w := env.sendJSON(http.MethodPut, "/api/v1/assistants/"+taken.ID, `{"name":"taken","tool_policy":{"y":"ask"}}`, admin)
	if _, msg := errorOf(t, w.Body.Bytes()); w.Code != http.StatusBadRequest || !strings.Contains(msg, `"y", which is not in "tools"`) {
		t.Fatalf("put: %d %s", w.Code, w.Body)
	}
	w = env.sendJSON(http.MethodPut, "/api/v1/assistants/"+taken.ID, `{"name":"taken","id":"other"}`, admin)
	if _, msg := errorOf(t, w.Body.Bytes()); w.Code != http.StatusBadRequest || !strings.Contains(msg, "cannot be changed") {
		t.Fatalf("put with another id: %d %s", w.Code, w.Body)
	}
	if a, _ := env.store.AssistantByID(context.Background(), taken.ID); len(a.ToolPolicy) != 0 {
		t.Fatal("a refused PUT changed the assistant")
	}
}

// TestAssistantsRBAC: everyone signed in reads assistants; admins and
// editors manage them (editors without changing tools: see
// TestAssistantEditorCannotChangeTools); viewers are refused.
func TestAssistantsRBAC(t *testing.T) {
	env := mustEnv(t, envOptions{})
	a := env.MustAssistant("ops", true)
	viewer := env.MustUser("vera", engine.RoleViewer)
	for _, c := range []*client{env.MustToken(viewer), env.MustSession(viewer)} {
		for _, tc := range []struct{ method, path, body string }{
			{http.MethodPost, "/api/v1/assistants", `{"name":"new"}`},
			{http.MethodPut, "/api/v1/assistants/" + a.ID, `{"name":"ops","tools":["x"]}`},
			{http.MethodDelete, "/api/v1/assistants/" + a.ID, ""},
		} {
			w := env.sendJSON(tc.method, tc.path, tc.body, c)
			if code, msg := errorOf(t, w.Body.Bytes()); w.Code != http.StatusForbidden || code != engine.EFORBIDDEN || !strings.Contains(msg, "Managing assistants needs the admin or editor role") {
				t.Errorf("viewer %s %s: %d %s", tc.method, tc.path, w.Code, w.Body)
			}
		}
		for _, path := range []string{"/api/v1/assistants", "/api/v1/assistants/" + a.ID} {
			if w := env.get(path, c); w.Code != http.StatusOK {
				t.Errorf("viewer GET %s: %d", path, w.Code)
			}
		}
	}
	all, _ := env.store.ListAssistants(context.Background())
	if len(all) != 1 || len(all[0].Tools) != 0 {
		t.Fatalf("a refused request changed the assistants: %+v", all)
	}
	editor := env.MustToken(env.MustUser("eddie", engine.RoleEditor))
	w := env.sendJSON(http.MethodPost, "/api/v1/assistants", `{"name":"new","description":"by an editor"}`, editor)
	created := mustAssistantOut(t, w, http.StatusCreated)
	if w := env.sendJSON(http.MethodPut, "/api/v1/assistants/"+created.ID, `{"name":"new","system_prompt":"Edited."}`, editor); w.Code != http.StatusOK {
		t.Fatalf("editor PUT: %d %s", w.Code, w.Body)
	}
	if w := env.sendJSON(http.MethodDelete, "/api/v1/assistants/"+created.ID, "", editor); w.Code != http.StatusNoContent {
		t.Fatalf("editor DELETE: %d %s", w.Code, w.Body)
	}
	if w := env.sendJSON(http.MethodPost, "/api/v1/assistants", `{"name":"new"}`, nil); w.Code != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d", w.Code)
	}
}
