package tools

import (
	"encoding/json"
	"fmt"
	"strings"
)

// inputSchema extracts a tool's input schema from its MCP JSON.
func inputSchema(tool []byte) (json.RawMessage, error) {
	var t struct {
		InputSchema json.RawMessage `json:"inputSchema"`
	}
	if err := json.Unmarshal(tool, &t); err != nil {
		return nil, err
	}
	if len(t.InputSchema) == 0 || string(t.InputSchema) == "null" {
		return json.RawMessage(`{"type":"object","properties":{}}`), nil
	}
	return t.InputSchema, nil
}

// decodeArguments parses a call's arguments: a JSON object, or nothing.
func decodeArguments(s string) (map[string]any, error) {
	if strings.TrimSpace(s) == "" {
		return map[string]any{}, nil
	}
	var args map[string]any
	if err := json.Unmarshal([]byte(s), &args); err != nil {
		return nil, fmt.Errorf("%w", err)
	}
	if args == nil {
		args = map[string]any{}
	}
	return args, nil
}
