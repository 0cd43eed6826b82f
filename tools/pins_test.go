package tools

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// memPins is an in-memory engine.ToolPinStore.
type memPins struct {
	mu   sync.Mutex
	pins map[string]*engine.ToolPin
}

func (m *memPins) SetToolPin(_ context.Context, p *engine.ToolPin) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pins == nil {
		m.pins = map[string]*engine.ToolPin{}
	}
	c := *p
	m.pins[p.Tool] = &c
	return nil
}

func (m *memPins) DeleteToolPin(_ context.Context, tool string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.pins, tool)
	return nil
}

func (m *memPins) ToolPins(context.Context) ([]*engine.ToolPin, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*engine.ToolPin
	for _, p := range m.pins {
		out = append(out, p)
	}
	return out, nil
}

// TestPinning: an MCP tool is offered and runs only once an admin enabled
// it, and stops when the server describes it otherwise (a changed schema).
func TestPinning(t *testing.T) {
	pins := &memPins{}
	r, _ := MustRegistry(t, func(c *Config) { c.Pins = pins })
	ctx := context.Background()
	a := assistantWith("everything__get-sum", "everything__echo")

	specs, err := r.Tools(ctx, a)
	if err != nil || len(specs) != 0 {
		t.Fatalf("before enabling: %v, %v; want none", specs, err)
	}
	if got := call(r, a, "everything__get-sum", `{"a":1,"b":2}`); got.Outcome != engine.ToolDenied {
		t.Errorf("a call before enabling: %+v", got)
	}
	if _, err := r.Enable(ctx, "everything__get-sum", "ada"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Enable(ctx, "everything__nope", "ada"); engine.ErrorCode(err) != engine.ENOTFOUND {
		t.Errorf("enabling an unknown tool: %v", err)
	}
	specs, _ = r.Tools(ctx, a)
	if len(specs) != 1 || specs[0].Name != "everything__get-sum" {
		t.Fatalf("after enabling get-sum: %v", specs)
	}
	if got := call(r, a, "everything__get-sum", `{"a":1,"b":2}`); got.Outcome != engine.ToolOK {
		t.Errorf("an enabled tool: %+v", got)
	}

	// The server now describes get-sum differently than when it was
	// enabled (as a poisoned description or a new schema would): here the
	// stored hash is for another description.
	pins.pins["everything__get-sum"].Hash = strings.Repeat("0", 64)
	if specs, _ := r.Tools(ctx, a); len(specs) != 0 {
		t.Errorf("a changed tool is still offered: %v", specs)
	}
	got := call(r, a, "everything__get-sum", `{"a":1,"b":2}`)
	if got.Outcome != engine.ToolDenied || !strings.Contains(got.Content, "changed") {
		t.Errorf("a changed tool: %+v", got)
	}
	inv, err := r.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, s := range inv {
		states[s.Name] = s.State
	}
	if states["everything__get-sum"] != StateChanged || states["everything__echo"] != StateNotEnabled {
		t.Errorf("inventory states %v", states)
	}
	// Re-approving pins the new description.
	if _, err := r.Enable(ctx, "everything__get-sum", "ada"); err != nil {
		t.Fatal(err)
	}
	if got := call(r, a, "everything__get-sum", `{"a":1,"b":2}`); got.Outcome != engine.ToolOK {
		t.Errorf("after re-enabling: %+v", got)
	}
}

// memServers is an in-memory engine.ToolServerStore.
type memServers struct {
	mu   sync.Mutex
	list map[string]*engine.ToolServer
}

func (m *memServers) SaveToolServer(_ context.Context, s *engine.ToolServer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.list == nil {
		m.list = map[string]*engine.ToolServer{}
	}
	c := *s
	m.list[s.Name] = &c
	return nil
}

func (m *memServers) DeleteToolServer(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.list, name)
	return nil
}

func (m *memServers) ToolServers(context.Context) ([]*engine.ToolServer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*engine.ToolServer
	for _, s := range m.list {
		out = append(out, s)
	}
	return out, nil
}

// TestServersFromTheConsole: servers saved in the store join the
// registry, and leave it when deleted.
func TestServersFromTheConsole(t *testing.T) {
	path := serverPath(t, "CONVOSPHERE_TEST_MCP_EVERYTHING")
	stored := &memServers{}
	r, err := New(Config{Stored: stored, ReloadEvery: 10 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	if inv, _ := r.Inventory(ctx); len(inv) != 0 {
		t.Fatalf("inventory before any server: %v", inv)
	}
	if err := stored.SaveToolServer(ctx, &engine.ToolServer{Name: "live", Transport: "stdio", Command: "node", Args: []string{path}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	inv, err := r.Inventory(ctx)
	if err != nil || len(inv) == 0 || !strings.HasPrefix(inv[0].Name, "live__") {
		t.Fatalf("inventory after saving a server: %v, %v", inv, err)
	}
	if got := call(r, assistantWith("live__get-sum"), "live__get-sum", `{"a":2,"b":2}`); got.Outcome != engine.ToolOK {
		t.Errorf("a call to the new server: %+v", got)
	}
	_ = stored.DeleteToolServer(ctx, "live")
	time.Sleep(20 * time.Millisecond)
	if inv, _ := r.Inventory(ctx); len(inv) != 0 {
		t.Errorf("inventory after deleting the server: %v", inv)
	}
}
