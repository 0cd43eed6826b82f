package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/convosphere/convosphere/engine"
)

// Built-in tools, named "builtin__<tool>".
const (
	builtinServer    = "builtin"
	toolSearch       = "search_knowledge"
	toolCurrentTime  = "current_time"
	toolFetchURL     = "fetch_url"
	maxFetchBodySize = 1 << 20
)

// Builtins configures the built-in tools.
type Builtins struct {
	// Retriever searches the assistant's knowledge bases (search_knowledge).
	Retriever engine.Retriever
	// FetchAllowlist are the hosts fetch_url may read (exact host names,
	// or ".example.com" for a domain and its subdomains); empty: the tool
	// is off.
	FetchAllowlist []string
	// HTTPClient fetches; default a client with a 15s timeout.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (b Builtins) specs() []engine.ToolSpec {
	specs := []engine.ToolSpec{{
		Name:        builtinServer + Separator + toolCurrentTime,
		Description: "The current date and time (UTC and, given an IANA time zone such as Europe/Paris, there).",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"time_zone":{"type":"string","description":"IANA time zone, e.g. America/New_York"}}}`),
	}}
	if b.Retriever != nil {
		specs = append(specs, engine.ToolSpec{
			Name:        builtinServer + Separator + toolSearch,
			Description: "Search the assistant's knowledge bases again, with other words than the question's; returns the best passages with their document and section.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"query":{"type":"string","description":"What to look for"}},"required":["query"]}`),
		})
	}
	if len(b.FetchAllowlist) > 0 {
		specs = append(specs, engine.ToolSpec{
			Name:        builtinServer + Separator + toolFetchURL,
			Description: "Fetch a web page or document from an allowed site (" + strings.Join(b.FetchAllowlist, ", ") + ") and return its text.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"url":{"type":"string","description":"http or https URL"}},"required":["url"]}`),
		})
	}
	return specs
}

// call runs a built-in tool.
func (b Builtins) call(ctx context.Context, inv engine.ToolInvocation, tool string, args map[string]any) engine.ToolResult {
	switch tool {
	case toolCurrentTime:
		now := time.Now
		if b.Now != nil {
			now = b.Now
		}
		t := now().UTC()
		out := "UTC: " + t.Format(time.RFC3339) + " (" + t.Weekday().String() + ")"
		if tz, _ := args["time_zone"].(string); tz != "" {
			loc, err := time.LoadLocation(tz)
			if err != nil {
				return engine.ToolResult{Content: fmt.Sprintf("Unknown time zone %q: use an IANA name such as Europe/Paris.", tz), IsError: true, Outcome: engine.ToolError}
			}
			lt := t.In(loc)
			out += "\n" + tz + ": " + lt.Format(time.RFC3339) + " (" + lt.Weekday().String() + ")"
		}
		return engine.ToolResult{Content: out, Outcome: engine.ToolOK}
	case toolSearch:
		query, _ := args["query"].(string)
		if b.Retriever == nil || strings.TrimSpace(query) == "" || inv.Assistant == nil || len(inv.Assistant.KnowledgeBases) == 0 {
			return engine.ToolResult{Content: "Nothing to search: give a query (and the assistant needs knowledge bases).", IsError: true, Outcome: engine.ToolError}
		}
		res, err := b.Retriever.Retrieve(ctx, engine.RetrievalRequest{Query: query, KnowledgeBases: inv.Assistant.KnowledgeBases, Settings: inv.Assistant.Retrieval})
		if err != nil {
			return engine.ToolResult{Content: "The search failed: " + engine.ErrorMessage(err), IsError: true, Outcome: engine.ToolError}
		}
		var sb strings.Builder
		for i, p := range res.Passages {
			fmt.Fprintf(&sb, "[%d] %s", i+1, p.Title)
			if len(p.HeadingPath) > 0 {
				sb.WriteString(" › " + strings.Join(p.HeadingPath, " › "))
			}
			fmt.Fprintf(&sb, " (%s)\n%s\n\n", p.Document, p.Text)
		}
		if sb.Len() == 0 {
			return engine.ToolResult{Content: "No passage matches.", Outcome: engine.ToolOK}
		}
		return engine.ToolResult{Content: strings.TrimSpace(sb.String()), Outcome: engine.ToolOK}
	case toolFetchURL:
		raw, _ := args["url"].(string)
		return b.fetch(ctx, raw)
	}
	return engine.ToolResult{Content: fmt.Sprintf("There is no built-in tool %q.", tool), IsError: true, Outcome: engine.ToolDenied}
}

// allowedHost reports whether fetch_url may read host.
func (b Builtins) allowedHost(host string) bool {
	host = strings.ToLower(host)
	for _, a := range b.FetchAllowlist {
		a = strings.ToLower(strings.TrimSpace(a))
		if host == a || strings.HasPrefix(a, ".") && (strings.HasSuffix(host, a) || host == a[1:]) {
			return true
		}
	}
	return false
}

func (b Builtins) fetch(ctx context.Context, raw string) engine.ToolResult {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return engine.ToolResult{Content: "Give an http or https URL.", IsError: true, Outcome: engine.ToolError}
	}
	if len(b.FetchAllowlist) == 0 || !b.allowedHost(u.Hostname()) {
		return engine.ToolResult{Content: fmt.Sprintf("%s is not an allowed site; the allowed ones are: %s.", u.Hostname(), strings.Join(b.FetchAllowlist, ", ")), IsError: true, Outcome: engine.ToolDenied}
	}
	client := b.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	c := *client
	// Redirects must stay on allowed sites too.
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 || !b.allowedHost(req.URL.Hostname()) {
			return errors.New("redirected to a site that is not allowed")
		}
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return engine.ToolResult{Content: err.Error(), IsError: true, Outcome: engine.ToolError}
	}
	req.Header.Set("User-Agent", "ConvoSphere fetch_url")
	resp, err := c.Do(req)
	if err != nil {
		return engine.ToolResult{Content: "The fetch failed: " + err.Error(), IsError: true, Outcome: engine.ToolError}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchBodySize))
	if err != nil {
		return engine.ToolResult{Content: "The fetch failed: " + err.Error(), IsError: true, Outcome: engine.ToolError}
	}
	if resp.StatusCode >= 400 {
		return engine.ToolResult{Content: fmt.Sprintf("%s answered %s.", u.Hostname(), resp.Status), IsError: true, Outcome: engine.ToolError}
	}
	return engine.ToolResult{Content: string(body), Outcome: engine.ToolOK}
}
