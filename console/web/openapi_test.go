package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// Types for the schema generator's tests.
type (
	schemaLeaf struct {
		A string `json:"a"`
	}
	schemaInner struct {
		Inner    string `json:"inner"`
		Shadowed string `json:"shadowed"` // hidden by schemaSample's own
	}
	schemaTwin1 struct {
		Twin string `json:"twin"`
	}
	schemaTwin2 struct {
		Twin string `json:"twin"`
	} // as deep as schemaTwin1's: both are dropped
	schemaTagged struct {
		T string `json:"t"`
	}
	schemaNode struct {
		Name     string       `json:"name"`
		Children []schemaNode `json:"children"`
		Parent   *schemaNode  `json:"parent,omitempty"`
	}
	schemaText      struct{}
	schemaMarshaler struct{}
	// Citation has the name of engine.Citation.
	Citation         struct{ Mine bool }
	schemaNewRequest struct {
		Name string `json:"name"`
	}
)

func (schemaText) MarshalText() ([]byte, error)      { return []byte("text"), nil }
func (schemaMarshaler) MarshalJSON() ([]byte, error) { return []byte(`"x"`), nil }

// schemaSample has a field of every kind the generator handles.
type schemaSample struct {
	Plain     string            `json:"plain"`
	Optional  string            `json:"optional,omitempty"`
	Zero      time.Time         `json:"zero,omitzero"`
	When      time.Time         `json:"when,omitempty"` // omitempty never leaves a struct out
	Leaf      schemaLeaf        `json:"leaf,omitempty"`
	Count     int               `json:"count,string"`
	Untagged  bool              // encoding/json uses the Go name
	Skipped   string            `json:"-"`
	Dash      string            `json:"-,"`
	hidden    string            // unexported: never written
	Ptr       *float64          `json:"ptr"`
	Raw       json.RawMessage   `json:"raw"`
	Bytes     []byte            `json:"bytes"`
	Any       any               `json:"any"`
	Map       map[string]int    `json:"map"`
	IntKeys   map[int]string    `json:"int_keys"`
	List      []schemaLeaf      `json:"list"`
	Array     [2]int            `json:"array"`
	Role      engine.Role       `json:"role"`
	MaybeRole *engine.Role      `json:"maybe_role,omitempty"`
	Text      schemaText        `json:"text"`
	Anon      struct{ X int }   `json:"anon"`
	Shadowed  int               `json:"shadowed"`
	Texts     map[string]string `json:"texts,omitzero"`
	schemaInner
	*schemaTwin1
	schemaTwin2
	schemaTagged `json:"tagged"`
}

// schemaSampleFull is a schemaSample with every field set, so that
// encoding/json writes them all.
func schemaSampleFull() schemaSample {
	f, r := 1.5, engine.RoleAdmin
	return schemaSample{Plain: "p", Optional: "o", Zero: time.Now(), When: time.Now(), Leaf: schemaLeaf{"a"}, Count: 3, Untagged: true,
		Skipped: "s", Dash: "d", hidden: "h", Ptr: &f, Raw: json.RawMessage(`{"k":1}`), Bytes: []byte("b"), Any: 1, Map: map[string]int{"a": 1},
		IntKeys: map[int]string{1: "a"}, List: []schemaLeaf{{"a"}}, Array: [2]int{1, 2}, Role: engine.RoleViewer, MaybeRole: &r,
		Anon: struct{ X int }{1}, Shadowed: 1, Texts: map[string]string{"a": "b"}, schemaInner: schemaInner{"i", "s"},
		schemaTwin1: &schemaTwin1{"t1"}, schemaTwin2: schemaTwin2{"t2"}, schemaTagged: schemaTagged{"t"}}
}

func TestSchemaOf(t *testing.T) {
	tests := []struct {
		name string
		v    any
		mode schemaMode
		want string
	}{
		{"bool", true, encodeMode, `{"type":"boolean"}`},
		{"int", 0, encodeMode, `{"type":"integer"}`},
		{"uint", uint8(0), encodeMode, `{"type":"integer","minimum":0}`},
		{"float", 0.5, encodeMode, `{"type":"number"}`},
		{"string", "", encodeMode, `{"type":"string"}`},
		{"slice", []string{}, encodeMode, `{"type":"array","items":{"type":"string"}}`},
		{"array", [3]bool{}, encodeMode, `{"type":"array","items":{"type":"boolean"}}`},
		{"map", map[string]int{}, encodeMode, `{"type":"object","additionalProperties":{"type":"integer"}}`},
		{"bytes", []byte{}, encodeMode, `{"type":"string","contentEncoding":"base64"}`},
		{"raw message", json.RawMessage{}, encodeMode, `{}`},
		{"interface", []any{}, encodeMode, `{"type":"array","items":{}}`},
		{"time", time.Time{}, encodeMode, `{"type":"string","format":"date-time"}`},
		{"duration", time.Duration(0), encodeMode, `{"type":"integer"}`},
		{"pointer", new(int), encodeMode, `{"type":["integer","null"]}`},
		{"enum", engine.ToolMode(""), encodeMode, `{"type":"string","enum":["allow","ask","deny"]}`},
		{"nullable enum", new(engine.Role), decodeMode, `{"type":["string","null"],"enum":["admin","editor","viewer",null]}`},
		{"number enum", engine.Rating(0), encodeMode, `{"type":"integer","enum":[1,-1]}`},
		{"text marshaler", schemaText{}, encodeMode, `{"type":"string"}`},
		{"named struct", schemaLeaf{}, encodeMode, `{"$ref":"#/components/schemas/SchemaLeaf"}`},
		{"named struct read", schemaLeaf{}, decodeMode, `{"$ref":"#/components/schemas/SchemaLeafInput"}`},
		{"request keeps its name", schemaNewRequest{}, decodeMode, `{"$ref":"#/components/schemas/SchemaNewRequest"}`},
		{"pointer to struct", &schemaLeaf{}, encodeMode, `{"anyOf":[{"$ref":"#/components/schemas/SchemaLeaf"},{"type":"null"}]}`},
		{"anonymous struct", struct {
			X int `json:"x,omitempty"`
			Y int `json:"y"`
		}{}, encodeMode, `{"type":"object","properties":{"x":{"type":"integer"},"y":{"type":"integer"}},"required":["y"]}`},
		{"anonymous struct read", struct {
			Y int `json:"y"`
		}{}, decodeMode, `{"type":"object","properties":{"y":{"type":"integer"}}}`},
		{"object", jsonObject{"list": []int{}, "note?": "", "inner": jsonObject{"ok": true}}, encodeMode,
			`{"type":"object","properties":{"inner":{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]},` +
				`"list":{"type":"array","items":{"type":"integer"}},"note":{"type":"string"}},"required":["inner","list"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newSchemaGen()
			got := mustJSON(t, g.schemaOf(tt.v, tt.mode))
			if len(g.errs) > 0 {
				t.Fatalf("errors: %v", g.errs)
			}
			if got != tt.want {
				t.Errorf("schema\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestSchemaStructFollowsEncodingJSON(t *testing.T) {
	g := newSchemaGen()
	ref := g.schemaOf(schemaSample{}, encodeMode)
	if len(g.errs) > 0 {
		t.Fatal(g.errs)
	}
	s := g.components[strings.TrimPrefix(ref.Ref, "#/components/schemas/")]
	if s == nil {
		t.Fatalf("no component for %s", mustJSON(t, ref))
	}
	var props []string
	for k := range s.Properties {
		props = append(props, k)
	}
	sort.Strings(props)
	wantProps := []string{"-", "Untagged", "anon", "any", "array", "bytes", "count", "inner", "int_keys", "leaf", "list", "map",
		"maybe_role", "optional", "plain", "ptr", "raw", "role", "shadowed", "tagged", "text", "texts", "when", "zero"}
	if !slices.Equal(props, wantProps) {
		t.Errorf("properties\n got %v\nwant %v", props, wantProps)
	}
	wantRequired := []string{"plain", "when", "leaf", "count", "Untagged", "-", "ptr", "raw", "bytes", "any", "map", "int_keys",
		"list", "array", "role", "text", "anon", "shadowed", "inner", "tagged"}
	if !slices.Equal(s.Required, wantRequired) {
		t.Errorf("required\n got %v\nwant %v", s.Required, wantRequired)
	}
	for name, want := range map[string]string{
		"count":    `{"type":"string"}`,
		"shadowed": `{"type":"integer"}`,
		"tagged":   `{"$ref":"#/components/schemas/SchemaTagged"}`,
		"anon":     `{"type":"object","properties":{"X":{"type":"integer"}},"required":["X"]}`,
		"int_keys": `{"type":"object","additionalProperties":{"type":"string"}}`,
	} {
		if got := mustJSON(t, s.Properties[name]); got != want {
			t.Errorf("%s: got %s, want %s", name, got, want)
		}
	}

	// What encoding/json writes agrees: every key is a property, every
	// property is written when set, every required one even when empty.
	full := decodeJSON(t, []byte(mustJSON(t, schemaSampleFull())))
	var written []string
	for k := range full {
		written = append(written, k)
	}
	sort.Strings(written)
	if !slices.Equal(written, wantProps) {
		t.Errorf("encoding/json writes %v, the schema has %v", written, wantProps)
	}
	empty := decodeJSON(t, []byte(mustJSON(t, schemaSample{})))
	for _, k := range s.Required {
		if _, ok := empty[k]; !ok {
			t.Errorf("required %q is left out of an empty value", k)
		}
	}
	for k := range empty {
		if !slices.Contains(s.Required, k) {
			t.Errorf("%q is written for an empty value but not required", k)
		}
	}

	// Read, nothing is required.
	g = newSchemaGen()
	ref = g.schemaOf(schemaSample{}, decodeMode)
	in := g.components[strings.TrimPrefix(ref.Ref, "#/components/schemas/")]
	if ref.Ref != "#/components/schemas/SchemaSampleInput" || in == nil || len(in.Required) != 0 || len(in.Properties) != len(wantProps) {
		t.Errorf("decode mode: %s %s", mustJSON(t, ref), mustJSON(t, in))
	}
}

func TestSchemaRecursiveType(t *testing.T) {
	g := newSchemaGen()
	ref := g.schemaOf(schemaNode{}, encodeMode)
	got := mustJSON(t, g.components)
	want := `{"SchemaNode":{"type":"object","properties":{"children":{"type":"array","items":{"$ref":"#/components/schemas/SchemaNode"}},` +
		`"name":{"type":"string"},"parent":{"anyOf":[{"$ref":"#/components/schemas/SchemaNode"},{"type":"null"}]}},"required":["name","children"]}}`
	if ref.Ref != "#/components/schemas/SchemaNode" || got != want || len(g.errs) > 0 {
		t.Errorf("got %s %s (%v)\nwant %s", ref.Ref, got, g.errs, want)
	}
}

func TestSchemaComponentNamesDoNotCollide(t *testing.T) {
	g := newSchemaGen()
	a := g.schemaOf(engine.Citation{}, encodeMode)
	b := g.schemaOf(Citation{}, encodeMode)
	again := g.schemaOf(engine.Citation{}, encodeMode)
	if a.Ref != "#/components/schemas/Citation" || b.Ref != "#/components/schemas/WebCitation" || again.Ref != a.Ref {
		t.Errorf("refs %s, %s, %s", a.Ref, b.Ref, again.Ref)
	}
	if _, ok := g.components["WebCitation"].Properties["Mine"]; !ok {
		t.Errorf("WebCitation is not web.Citation: %s", mustJSON(t, g.components["WebCitation"]))
	}
}

func TestSchemaRefusesTypesWithNoJSONForm(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"channel", make(chan int), "cannot encode a chan"},
		{"function", func() {}, "cannot encode a func"},
		{"complex", complex(1, 2), "cannot encode a complex128"},
		{"array keys", map[[2]int]string{}, "map keys"},
		{"own MarshalJSON", schemaMarshaler{}, "MarshalJSON"},
		{"inside a struct", struct {
			C chan int `json:"c"`
		}{}, "cannot encode a chan"},
		{"nil", nil, "no type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newSchemaGen()
			g.schemaOf(tt.v, encodeMode)
			if err := errors.Join(g.errs...); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestBuildOpenAPIRefusesInconsistentTables(t *testing.T) {
	good := apiOperation{Method: "GET", Path: "/api/v1/things/:id", ID: "getThing", Tag: "API", Summary: "A thing", Roles: anyRole,
		Params: []apiParam{pathParam("id", "The thing's id.")}, Responses: []apiResponse{{Status: 200, Description: "It.", Body: schemaLeaf{}}}}
	if _, err := buildOpenAPI([]apiOperation{good}, openAPIOptions{}); err != nil {
		t.Fatalf("a good table: %v", err)
	}
	tests := []struct {
		name   string
		change func(op *apiOperation) []apiOperation
		want   string
	}{
		{"undescribed path parameter", func(op *apiOperation) []apiOperation { op.Params = nil; return nil }, `path parameter "id" is not described`},
		{"parameter not in the path", func(op *apiOperation) []apiOperation {
			op.Params = append(op.Params, pathParam("other", "Other."))
			return nil
		}, `"other" is not in the path`},
		{"repeated operation id", func(op *apiOperation) []apiOperation {
			other := *op
			other.Method = "DELETE"
			return []apiOperation{other}
		}, `operationId "getThing"`},
		{"repeated route", func(op *apiOperation) []apiOperation {
			other := *op
			other.ID = "other"
			return []apiOperation{other}
		}, "described twice"},
		{"unknown tag", func(op *apiOperation) []apiOperation { op.Tag = "Things"; return nil }, `tag "Things"`},
		{"public with roles", func(op *apiOperation) []apiOperation { op.Public = true; return nil }, "either public or has roles"},
		{"neither public nor roles", func(op *apiOperation) []apiOperation { op.Roles = nil; return nil }, "either public or has roles"},
		{"required field not in the body", func(op *apiOperation) []apiOperation {
			op.Body, op.Required = schemaNewRequest{}, []string{"nmae"}
			return nil
		}, `required field "nmae"`},
		{"no responses", func(op *apiOperation) []apiOperation { op.Responses = nil; return nil }, "no response"},
		{"a type with no JSON form", func(op *apiOperation) []apiOperation {
			op.Responses[0].Body = make(chan int)
			return nil
		}, "cannot encode a chan"},
		{"an error status that is not one", func(op *apiOperation) []apiOperation { op.Errors = map[int]string{302: ""}; return nil }, "302 is not an error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := good
			op.Params = slices.Clone(good.Params)
			op.Responses = slices.Clone(good.Responses)
			more := tt.change(&op)
			_, err := buildOpenAPI(append([]apiOperation{op}, more...), openAPIOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestSchemaEnumsAreValid(t *testing.T) {
	for typ, values := range schemaEnums {
		valid, ok := typ.MethodByName("Valid")
		if !ok {
			continue
		}
		for _, v := range values {
			x := reflect.ValueOf(v).Convert(typ)
			if !valid.Func.Call([]reflect.Value{x})[0].Bool() {
				t.Errorf("%s: %v is not Valid()", typ, v)
			}
		}
	}
}

// TestOpenAPIRouteCoverage fails for an /api/v1 route that apiOperations
// does not describe, and for a description of a route that does not exist.
func TestOpenAPIRouteCoverage(t *testing.T) {
	env := mustEnv(t, envOptions{Inventory: inventory()})
	// The MCP routes exist only with an MCP handler; they are not /api/v1.
	srv, err := New(Config{}, Deps{Store: env.store, Chat: env.chat, Knowledge: env.knowledge, Tools: inventory(), MCP: http.NotFoundHandler()})
	if err != nil {
		t.Fatal(err)
	}
	described := map[string]bool{}
	for _, op := range apiOperations {
		described[op.Method+" "+op.Path] = true
	}
	routes := map[string]bool{}
	for _, rt := range srv.router.Routes() {
		if !strings.HasPrefix(rt.Path, "/api/") {
			continue
		}
		key := rt.Method + " " + rt.Path
		routes[key] = true
		if !described[key] {
			t.Errorf("%s is not in the OpenAPI document: describe it in apiOperations (openapi.go)", key)
		}
	}
	for key := range described {
		if !routes[key] {
			t.Errorf("apiOperations describes %s, which is not a route", key)
		}
	}
	if len(routes) < 40 {
		t.Fatalf("only %d API routes: the coverage test does not see them", len(routes))
	}
}

// oasSpec is a decoded OpenAPI document, for checking it and checking
// JSON against its schemas.
type oasSpec map[string]any

// resolve follows a local reference ("#/components/schemas/X").
func (d oasSpec) resolve(ref string) (map[string]any, bool) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	var cur any = map[string]any(d)
	for _, tok := range strings.Split(rest, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	m, ok := cur.(map[string]any)
	return m, ok
}

// operation returns the operation of a method and gin pattern.
func (d oasSpec) operation(method, pattern string) map[string]any {
	path, _ := openAPIPathOf(pattern)
	paths, _ := d["paths"].(map[string]any)
	item, _ := paths[path].(map[string]any)
	op, _ := item[strings.ToLower(method)].(map[string]any)
	return op
}

// responseSchema returns the schema of an operation's answer.
func (d oasSpec) responseSchema(method, pattern string, status int, mediaType string) (map[string]any, bool) {
	responses, _ := d.operation(method, pattern)["responses"].(map[string]any)
	resp, _ := responses[fmt.Sprint(status)].(map[string]any)
	content, _ := resp["content"].(map[string]any)
	media, _ := content[mediaType].(map[string]any)
	s, ok := media["schema"].(map[string]any)
	return s, ok
}

// eventSchema returns the schema of a server-sent event's data.
func (d oasSpec) eventSchema(method, pattern string, status int, event string) (map[string]any, bool) {
	responses, _ := d.operation(method, pattern)["responses"].(map[string]any)
	resp, _ := responses[fmt.Sprint(status)].(map[string]any)
	content, _ := resp["content"].(map[string]any)
	media, _ := content["text/event-stream"].(map[string]any)
	events, _ := media["x-events"].([]any)
	for _, e := range events {
		if e, _ := e.(map[string]any); e["event"] == event {
			s, ok := e["schema"].(map[string]any)
			return s, ok
		}
	}
	return nil, false
}

// check reports where v does not match schema s: a wrong type, a value
// outside an enum, a required key missing, and a key the schema does not
// declare (drift between the description and the handler).
func (d oasSpec) check(at string, v any, s map[string]any) []string {
	if ref, ok := s["$ref"].(string); ok {
		target, ok := d.resolve(ref)
		if !ok {
			return []string{at + ": unresolved " + ref}
		}
		return d.check(at, v, target)
	}
	if anyOf, ok := s["anyOf"].([]any); ok {
		var all []string
		for _, sub := range anyOf {
			p := d.check(at, v, sub.(map[string]any))
			if len(p) == 0 {
				return nil
			}
			all = append(all, p...)
		}
		return append([]string{at + ": matches no schema of anyOf"}, all...)
	}
	var types []string
	switch typ := s["type"].(type) {
	case string:
		types = []string{typ}
	case []any:
		for _, t := range typ {
			types = append(types, t.(string))
		}
	}
	if len(types) > 0 && !slices.ContainsFunc(types, func(t string) bool { return oasTypeIs(v, t) }) {
		return []string{fmt.Sprintf("%s: %s is not %v", at, oasTruncate(oasJSON(v), 80), types)}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return reflect.DeepEqual(e, v) }) {
		return []string{fmt.Sprintf("%s: %v is not one of %v", at, v, enum)}
	}
	if str, ok := v.(string); ok && s["format"] == "date-time" {
		if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
			return []string{fmt.Sprintf("%s: %q is not a date-time", at, str)}
		}
	}
	var problems []string
	switch v := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		required, _ := s["required"].([]any)
		for _, r := range required {
			if _, ok := v[r.(string)]; !ok {
				problems = append(problems, fmt.Sprintf("%s: required %q is missing", at, r))
			}
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if ps, ok := props[k].(map[string]any); ok {
				problems = append(problems, d.check(at+"."+k, v[k], ps)...)
			} else if ap, ok := s["additionalProperties"].(map[string]any); ok {
				problems = append(problems, d.check(at+"."+k, v[k], ap)...)
			} else if props != nil {
				problems = append(problems, fmt.Sprintf("%s: %q is not declared in the schema", at, k))
			}
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range v {
				problems = append(problems, d.check(fmt.Sprintf("%s[%d]", at, i), e, items)...)
			}
		}
	}
	return problems
}

func oasTypeIs(v any, typ string) bool {
	switch typ {
	case "null":
		return v == nil
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	case "number":
		_, ok := v.(float64)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

func oasJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func oasTruncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// oasWalk calls f on every object in v, with its JSON pointer.
func oasWalk(at string, v any, f func(at string, m map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		f(at, v)
		for k, e := range v {
			oasWalk(at+"/"+k, e, f)
		}
	case []any:
		for i, e := range v {
			oasWalk(fmt.Sprintf("%s/%d", at, i), e, f)
		}
	}
}

// mustOpenAPI fetches the document signed out.
func mustOpenAPI(t *testing.T, env *testEnv) oasSpec {
	t.Helper()
	w := env.get(openAPIPath, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", openAPIPath, w.Code, w.Body)
	}
	var d oasSpec
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	return d
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	env := mustEnv(t, envOptions{})
	d := mustOpenAPI(t, env)
	if d["openapi"] != "3.1.0" {
		t.Fatalf("openapi is %v", d["openapi"])
	}
	info, _ := d["info"].(map[string]any)
	if info["title"] == "" || info["version"] == "" {
		t.Errorf("info %v", info)
	}

	// Every reference resolves; every object schema requires only the
	// properties it has, and names JSON Schema types.
	validTypes := []string{"null", "boolean", "integer", "number", "string", "array", "object"}
	oasWalk("#", map[string]any(d), func(at string, m map[string]any) {
		if ref, ok := m["$ref"].(string); ok {
			if _, ok := d.resolve(ref); !ok {
				t.Errorf("%s: $ref %s does not resolve", at, ref)
			}
		}
		if props, ok := m["properties"].(map[string]any); ok {
			req, _ := m["required"].([]any)
			for _, r := range req {
				if _, ok := props[r.(string)]; !ok {
					t.Errorf("%s: required %q is not a property", at, r)
				}
			}
		}
		switch typ := m["type"].(type) {
		case string:
			if !slices.Contains(validTypes, typ) && !strings.Contains(at, "securitySchemes") {
				t.Errorf("%s: type %q", at, typ)
			}
		case []any:
			for _, x := range typ {
				if s, _ := x.(string); !slices.Contains(validTypes, s) {
					t.Errorf("%s: type %v", at, x)
				}
			}
		}
	})

	schemes, _ := d.resolve("#/components/securitySchemes")
	table := map[string]apiOperation{}
	for _, op := range apiOperations {
		table[op.ID] = op
	}
	ids := map[string]bool{}
	paths, _ := d["paths"].(map[string]any)
	for path, item := range paths {
		for method, v := range item.(map[string]any) {
			op := v.(map[string]any)
			where := strings.ToUpper(method) + " " + path
			id, _ := op["operationId"].(string)
			if id == "" || ids[id] {
				t.Errorf("%s: operationId %q is empty or not unique", where, id)
			}
			ids[id] = true
			want, ok := table[id]
			if !ok {
				t.Errorf("%s: operationId %q is not in apiOperations", where, id)
				continue
			}
			if wantPath, _ := openAPIPathOf(want.Path); wantPath != path || want.Method != strings.ToUpper(method) {
				t.Errorf("%s: apiOperations has %s at %s %s", where, id, want.Method, want.Path)
			}
			if responses, _ := op["responses"].(map[string]any); len(responses) == 0 || responses["default"] == nil {
				t.Errorf("%s: responses %v", where, op["responses"])
			}
			if op["summary"] == "" || len(op["tags"].([]any)) != 1 {
				t.Errorf("%s: summary %v, tags %v", where, op["summary"], op["tags"])
			}
			security, ok := op["security"].([]any)
			switch {
			case !ok:
				t.Errorf("%s: no security", where)
			case want.Public && len(security) != 0:
				t.Errorf("%s: public, but security %v", where, security)
			case !want.Public && len(security) == 0:
				t.Errorf("%s: needs authentication, but security is empty", where)
			}
			for _, req := range security {
				for name := range req.(map[string]any) {
					if schemes[name] == nil {
						t.Errorf("%s: security scheme %q is not defined", where, name)
					}
				}
			}
			var roles []engine.Role
			for _, r := range oasSlice(op["x-roles"]) {
				roles = append(roles, engine.Role(r.(string)))
			}
			if !slices.Equal(roles, want.Roles) {
				t.Errorf("%s: x-roles %v, want %v", where, roles, want.Roles)
			}
			_, params := openAPIPathOf(want.Path)
			for _, p := range oasSlice(op["parameters"]) {
				p := p.(map[string]any)
				if p["in"] == "path" {
					if p["required"] != true || !slices.Contains(params, p["name"].(string)) {
						t.Errorf("%s: path parameter %v", where, p)
					}
					params = slices.DeleteFunc(params, func(n string) bool { return n == p["name"] })
				}
			}
			if len(params) > 0 {
				t.Errorf("%s: path parameters %v are not described", where, params)
			}
		}
	}
	if len(ids) != len(apiOperations) {
		t.Errorf("%d operations in the document, %d in apiOperations", len(ids), len(apiOperations))
	}
}

func oasSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func TestOpenAPIServedSignedOut(t *testing.T) {
	env := mustEnv(t, envOptions{Config: Config{Version: "1.2.3"}})
	w := env.get(openAPIPath, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("signed out: %d %s", w.Code, w.Body)
	}
	h := w.Result().Header
	etag := h.Get("ETag")
	if ct := h.Get("Content-Type"); ct != "application/json; charset=utf-8" || etag == "" || !strings.Contains(h.Get("Cache-Control"), "no-cache") {
		t.Errorf("headers %v", h)
	}
	want, err := buildOpenAPI(apiOperations, openAPIOptions{Version: "1.2.3", SessionCookie: env.srv.cookies.session})
	if err != nil {
		t.Fatal(err)
	}
	if w.Body.String() != string(want) {
		t.Error("the served document is not the one built at start")
	}
	if d := decodeJSON(t, w.Body.Bytes()); d["info"].(map[string]any)["version"] != "1.2.3" {
		t.Errorf("info %v", d["info"])
	}

	tests := []struct {
		name   string
		header []string
		want   int
	}{
		{"same etag", []string{"If-None-Match", etag}, http.StatusNotModified},
		{"weak etag in a list", []string{"If-None-Match", `"old", W/` + etag}, http.StatusNotModified},
		{"another etag", []string{"If-None-Match", `"old"`}, http.StatusOK},
		{"a bad token is ignored", []string{"Authorization", "Bearer nope"}, http.StatusOK},
		{"a stale session is ignored", []string{"Cookie", env.srv.cookies.session + "=gone"}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, openAPIPath, nil)
			r.Header.Set(tt.header[0], tt.header[1])
			w := env.serve(r)
			if w.Code != tt.want || tt.want == http.StatusNotModified && w.Body.Len() != 0 {
				t.Errorf("status %d, want %d (%d bytes)", w.Code, tt.want, w.Body.Len())
			}
			if w.Result().Header.Get("ETag") != etag {
				t.Errorf("ETag %q, want %q", w.Result().Header.Get("ETag"), etag)
			}
		})
	}
	// The routes beside it still need a token.
	if w := env.get("/api/v1/assistants", nil); w.Code != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/assistants signed out: %d", w.Code)
	}
}

// TestOpenAPIRoles checks x-roles against the server: a role that is not
// listed is refused with 403, a listed one is not (the requests carry no
// body and made-up ids, so they fail otherwise), and public operations
// need no sign-in.
func TestOpenAPIRoles(t *testing.T) {
	env := mustEnv(t, envOptions{})
	clients := map[engine.Role]*client{}
	for _, role := range anyRole {
		clients[role] = env.MustToken(env.MustUser("u-"+string(role), role))
	}
	for _, op := range apiOperations {
		path := op.Path
		for _, seg := range strings.Split(op.Path, "/") {
			if strings.HasPrefix(seg, ":") {
				path = strings.Replace(path, seg, "nosuch", 1)
			}
		}
		if op.Public {
			if w := env.sendJSON(op.Method, path, "", nil); w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden {
				t.Errorf("%s %s is public, but signed out gets %d", op.Method, op.Path, w.Code)
			}
			continue
		}
		for _, role := range anyRole {
			w := env.sendJSON(op.Method, path, "", clients[role])
			allowed := slices.Contains(op.Roles, role)
			if allowed == (w.Code == http.StatusForbidden) {
				t.Errorf("%s %s as %s: %d, but x-roles is %v", op.Method, op.Path, role, w.Code, op.Roles)
			}
		}
	}
}

// openAPIProviders keeps model providers in memory.
type openAPIProviders struct {
	mu   sync.Mutex
	list []*engine.ModelProvider
}

func (f *openAPIProviders) List(context.Context) ([]*engine.ModelProvider, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.list), nil
}

func (f *openAPIProviders) Save(_ context.Context, p *engine.ModelProvider, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p.CreatedAt, p.UpdatedAt = time.Now(), time.Now()
	f.list = append(f.list, p)
	return nil
}

func (f *openAPIProviders) Delete(context.Context, string) error { return nil }

func (f *openAPIProviders) Models(context.Context, *engine.ModelProvider, string) ([]string, error) {
	return []string{"gpt-4o", "gpt-4o-mini"}, nil
}

// openAPIEnv is a console with something in every area: assistants with
// tools, approvals, MCP servers, a knowledge base with documents,
// conversations with traces and feedback, platform statuses, users with
// identities and invitations, tokens and an audit log. It returns an
// admin's token and session and the concrete paths of the routes with
// parameters.
func openAPIEnv(t *testing.T) (*testEnv, *client, *client, map[string]string) {
	t.Helper()
	env, session := toolsEnv(t, inventory())
	env.srv.deps.Providers = &openAPIProviders{}
	admin := env.MustToken(session.user)
	ctx := context.Background()
	if w := env.sendJSON(http.MethodPut, "/api/v1/model-providers/openai", `{"base_url":"https://api.openai.com/v1","models":["gpt-4o"],"api_key":"sk-x"}`, admin); w.Code != http.StatusOK {
		t.Fatalf("put provider: %d %s", w.Code, w.Body)
	}
	if w := env.upload(admin, "handbook", part{name: "leave.md", content: "# Leave\n\nEveryone gets 25 days."},
		part{name: "logo.bin", content: "\x00\x01"}, part{name: "broken.md", content: "UNAVAILABLE"}); w.Code != http.StatusOK {
		t.Fatalf("upload: %d %s", w.Code, w.Body)
	}
	for _, ps := range []*engine.PlatformStatus{
		{Platform: engine.PlatformSlack, State: "connected", Detail: "socket mode"},
		{Platform: engine.PlatformDiscord, State: "failed", Detail: "discord refused the token"},
	} {
		if err := env.store.SetPlatformStatus(ctx, ps); err != nil {
			t.Fatal(err)
		}
	}
	if w := env.postChat(admin, `{"message":"How many days of leave?"}`); w.Code != http.StatusOK {
		t.Fatalf("chat: %d %s", w.Code, w.Body)
	}
	w := env.sendJSON(http.MethodPost, "/api/v1/users", `{"name":"grace","display_name":"Grace Hopper","role":"editor"}`, admin)
	if w.Code != http.StatusCreated {
		t.Fatalf("create user: %d %s", w.Code, w.Body)
	}
	userID := decodeJSON(t, w.Body.Bytes())["user"].(map[string]any)["id"].(string)
	if w := env.sendJSON(http.MethodPost, "/api/v1/users/"+userID+"/identities", `{"platform":"slack","chat_user_id":"U012AB3CD"}`, admin); w.Code != http.StatusCreated {
		t.Fatalf("link identity: %d %s", w.Code, w.Body)
	}
	var convID string
	for _, c := range env.conversations() {
		if c.Platform != engine.PlatformConsole {
			continue
		}
		for _, turn := range env.turns(c.ID) {
			if turn.TraceID != "" && convID == "" {
				convID = c.ID
				if err := env.store.SaveFeedback(ctx, &engine.Feedback{TraceID: turn.TraceID, Platform: engine.PlatformConsole,
					UserID: session.user.ID, Rating: engine.RatingDown, Comment: "too short"}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	a, err := env.store.AssistantByName(ctx, "ops")
	if err != nil || convID == "" {
		t.Fatalf("assistant %v, conversation %q", err, convID)
	}
	paths := map[string]string{
		"/api/v1/assistants/:id":                "/api/v1/assistants/" + a.ID,
		"/api/v1/knowledge-bases/:kb/documents": "/api/v1/knowledge-bases/handbook/documents",
		"/api/v1/knowledge/search":              "/api/v1/knowledge/search?q=leave&kb=handbook&mode=hybrid",
		"/api/v1/conversations/:id":             "/api/v1/conversations/" + convID,
		"/api/v1/users/:id":                     "/api/v1/users/" + userID,
		"/api/v1/users/:id/identities":          "/api/v1/users/" + userID + "/identities",
		"/api/v1/analytics":                     "/api/v1/analytics?days=7",
	}
	return env, admin, session, paths
}

// TestOpenAPIResponsesMatchHandlers calls the real handlers and checks
// their answers against the document: every JSON GET route, the chat and
// the upload (as JSON and as events) and approval decisions. A key the
// schema does not declare, at any depth, is drift between apiOperations
// and a handler.
func TestOpenAPIResponsesMatchHandlers(t *testing.T) {
	env, admin, session, paths := openAPIEnv(t)
	d := mustOpenAPI(t, env)
	checkBody := func(t *testing.T, method, pattern string, status int, body []byte) {
		t.Helper()
		s, ok := d.responseSchema(method, pattern, status, "application/json")
		if !ok {
			t.Fatalf("%s %s: no JSON schema for %d", method, pattern, status)
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("%s %s: not JSON: %v", method, pattern, err)
		}
		for _, p := range d.check("$", v, s) {
			t.Errorf("%s %s %d: %s", method, pattern, status, p)
		}
	}
	checkEvents := func(t *testing.T, method, pattern string, w interface{ Result() *http.Response }) {
		t.Helper()
		resp := w.Result()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("%s %s: %d %s", method, pattern, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		events := parseSSE(t, resp.Body)
		if len(events) < 2 {
			t.Fatalf("%s %s: events %v", method, pattern, events)
		}
		for _, e := range events {
			s, ok := d.eventSchema(method, pattern, http.StatusOK, e.Name)
			if !ok {
				t.Errorf("%s %s: event %q is not described", method, pattern, e.Name)
				continue
			}
			var v any
			if err := json.Unmarshal([]byte(e.Data), &v); err != nil {
				t.Fatalf("event %s: %v", e.Name, err)
			}
			for _, p := range d.check("$", v, s) {
				t.Errorf("%s %s event %s: %s", method, pattern, e.Name, p)
			}
		}
	}

	for _, op := range apiOperations {
		if op.Method != http.MethodGet || op.Public {
			continue
		}
		if _, isCSV := op.Responses[0].Body.(csvFile); isCSV {
			continue
		}
		t.Run(op.ID, func(t *testing.T) {
			path, ok := paths[op.Path]
			if !ok && strings.Contains(op.Path, ":") {
				t.Fatalf("%s has parameters: add a concrete path for it to openAPIEnv", op.Path)
			}
			if !ok {
				path = op.Path
			}
			w := env.get(path, admin)
			if w.Code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
			}
			checkBody(t, op.Method, op.Path, http.StatusOK, w.Body.Bytes())
		})
	}

	t.Run("chat", func(t *testing.T) {
		// A session gets answer_html too.
		w := env.postChat(session, `{"message":"How many days of leave?"}`)
		if w.Code != http.StatusOK {
			t.Fatalf("chat: %d %s", w.Code, w.Body)
		}
		checkBody(t, "POST", "/api/v1/chat", http.StatusOK, w.Body.Bytes())
		checkEvents(t, "POST", "/api/v1/chat", env.postChat(admin, `{"message":"And sick days?"}`, "Accept", "text/event-stream"))
	})
	t.Run("upload", func(t *testing.T) {
		w := env.upload(admin, "handbook", part{name: "leave.md", content: "# Leave\n\nEveryone gets 25 days."}, part{name: "../x.md", content: "x"})
		if w.Code != http.StatusOK {
			t.Fatalf("upload: %d %s", w.Code, w.Body)
		}
		checkBody(t, "POST", "/api/v1/knowledge-bases/:kb/documents", http.StatusOK, w.Body.Bytes())
		checkEvents(t, "POST", "/api/v1/knowledge-bases/:kb/documents",
			env.uploadEventStream(admin, "handbook", part{name: "new.md", content: "New."}, part{name: "bad.bin", content: "\x00"}))
	})
	t.Run("decide approvals", func(t *testing.T) {
		var list struct {
			Approvals []struct {
				ID       string `json:"id"`
				Platform string `json:"platform"`
			} `json:"approvals"`
		}
		if err := json.Unmarshal(env.get("/api/v1/tool-approvals?status=pending", admin).Body.Bytes(), &list); err != nil {
			t.Fatal(err)
		}
		decided := map[int]bool{}
		for _, ap := range list.Approvals {
			w := env.sendJSON(http.MethodPost, "/api/v1/tool-approvals/"+ap.ID, `{"decision":"reject"}`, admin)
			decided[w.Code] = true
			if w.Code != http.StatusOK && w.Code != http.StatusAccepted {
				t.Fatalf("decide %s: %d %s", ap.Platform, w.Code, w.Body)
			}
			checkBody(t, "POST", "/api/v1/tool-approvals/:id", w.Code, w.Body.Bytes())
		}
		if !decided[http.StatusOK] || !decided[http.StatusAccepted] {
			t.Errorf("decisions answered %v: want a console approval (200) and a chat platform's (202)", decided)
		}
	})
	t.Run("tool servers", func(t *testing.T) {
		body := `{"transport":"stdio","command":"npx","args":["-y","@modelcontextprotocol/server-everything"],"env":{"API_TOKEN":"[redacted]"}}`
		w := env.sendJSON(http.MethodPost, "/api/v1/tool-servers/files/test", body, admin)
		if w.Code != http.StatusOK {
			t.Fatalf("test tool server: %d %s", w.Code, w.Body)
		}
		checkBody(t, "POST", "/api/v1/tool-servers/:name/test", w.Code, w.Body.Bytes())
		w = env.sendJSON(http.MethodPut, "/api/v1/tool-servers/files", body, admin)
		checkBody(t, "PUT", "/api/v1/tool-servers/:name", w.Code, w.Body.Bytes())
	})
	t.Run("model providers", func(t *testing.T) {
		body := `{"base_url":"http://127.0.0.1:11434/v1","models":["llama3"]}`
		w := env.sendJSON(http.MethodPut, "/api/v1/model-providers/local", body, admin)
		checkBody(t, "PUT", "/api/v1/model-providers/:name", w.Code, w.Body.Bytes())
		w = env.sendJSON(http.MethodPost, "/api/v1/model-providers/local/test", body, admin)
		checkBody(t, "POST", "/api/v1/model-providers/:name/test", w.Code, w.Body.Bytes())
		if w.Code != http.StatusOK {
			t.Errorf("test provider: %d %s", w.Code, w.Body)
		}
	})
	t.Run("errors", func(t *testing.T) {
		w := env.get("/api/v1/assistants/nosuch", admin)
		checkBody(t, "GET", "/api/v1/assistants/:id", w.Code, w.Body.Bytes())
		w = env.get("/api/v1/users", env.MustToken(env.MustUser("vera", engine.RoleViewer)))
		checkBody(t, "GET", "/api/v1/users", w.Code, w.Body.Bytes())
	})
}
