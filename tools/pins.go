package tools

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/convosphere/convosphere/engine"
)

// Tool states for admins.
const (
	StateEnabled    = "enabled"     // pinned, and the server describes it as pinned
	StateNotEnabled = "not enabled" // no pin: an admin has not enabled it
	StateChanged    = "changed"     // the server changed it since it was pinned: disabled
)

// ToolStatus is an MCP tool as an admin sees it.
type ToolStatus struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	State       string `json:"state"`
	Hash        string `json:"hash"`
}

// toolHash identifies what a tool says it is: its name, description and
// input schema.
func toolHash(t mcp.Tool) (string, error) {
	raw, err := t.MarshalJSON()
	if err != nil {
		return "", err
	}
	schema, err := inputSchema(raw)
	if err != nil {
		return "", err
	}
	var canonical any
	if err := json.Unmarshal(schema, &canonical); err != nil {
		return "", err
	}
	b, err := json.Marshal(map[string]any{"name": t.Name, "description": t.Description, "input_schema": canonical})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// pins returns the stored pins by tool, or nil when pinning is off.
func (r *Registry) pins(ctx context.Context) (map[string]string, error) {
	if r.cfg.Pins == nil {
		return nil, nil
	}
	list, err := r.cfg.Pins.ToolPins(ctx)
	if err != nil {
		return nil, fmt.Errorf("read tool pins: %w", err)
	}
	m := make(map[string]string, len(list))
	for _, p := range list {
		m[p.Tool] = p.Hash
	}
	return m, nil
}

// state says whether a tool may be used under the pins (nil: pinning off).
func state(pins map[string]string, name, hash string) string {
	if pins == nil {
		return StateEnabled
	}
	pinned, ok := pins[name]
	switch {
	case !ok:
		return StateNotEnabled
	case pinned != hash:
		return StateChanged
	}
	return StateEnabled
}

// Inventory lists the tools of every configured MCP server (connecting
// them as needed) with their state.
func (r *Registry) Inventory(ctx context.Context) ([]ToolStatus, error) {
	pins, err := r.pins(ctx)
	if err != nil {
		return nil, err
	}
	var out []ToolStatus
	var errs []error
	servers := r.snapshot(ctx)
	for _, name := range sortedNames(servers) {
		s := servers[name]
		if err := r.connect(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("MCP server %s: %w", name, err))
			continue
		}
		s.mu.Lock()
		for _, t := range s.tools {
			full := name + Separator + t.Name
			h, err := toolHash(t)
			if err != nil {
				errs = append(errs, fmt.Errorf("tool %s: %w", full, err))
				continue
			}
			out = append(out, ToolStatus{Name: full, Description: t.Description, State: state(pins, full, h), Hash: h})
		}
		s.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(errs) > 0 {
		return out, fmt.Errorf("%v", errs)
	}
	return out, nil
}

// Enable pins a tool as its server describes it now.
func (r *Registry) Enable(ctx context.Context, tool, by string) (*engine.ToolPin, error) {
	if r.cfg.Pins == nil {
		return nil, engine.Errorf(engine.EINVALID, "tool pinning is off")
	}
	all, err := r.Inventory(ctx)
	for _, t := range all {
		if t.Name == tool {
			p := &engine.ToolPin{Tool: tool, Hash: t.Hash, PinnedBy: by}
			return p, r.cfg.Pins.SetToolPin(ctx, p)
		}
	}
	if err != nil {
		return nil, err
	}
	return nil, engine.Errorf(engine.ENOTFOUND, "No configured MCP server offers a tool named %q: `console tools list` shows them.", tool)
}
