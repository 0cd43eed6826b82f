package tools

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
)

func TestBuiltins(t *testing.T) {
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/away" {
			http.Redirect(w, r, "http://elsewhere.invalid/", http.StatusFound)
			return
		}
		w.Write([]byte("release notes: v2 is out"))
	}))
	defer site.Close()
	host := mustHost(t, site.URL)
	retriever := &enginetest.Retriever{Passages: []engine.Passage{{KnowledgeBase: "docs", Title: "Ops", Document: "ops.md", Text: "Deploy on Tuesdays.", Score: 1}}}
	r, err := New(Config{Builtins: Builtins{Retriever: retriever, FetchAllowlist: []string{host},
		Now: func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &engine.Assistant{Name: "ops", KnowledgeBases: []string{"docs"},
		Tools: []string{"builtin__current_time", "builtin__search_knowledge", "builtin__fetch_url"}}
	specs, err := r.Tools(context.Background(), a)
	if err != nil || len(specs) != 3 {
		t.Fatalf("specs %v, %v", specs, err)
	}
	tests := []struct {
		name, tool, args, outcome, want string
	}{
		{"time", "builtin__current_time", `{"time_zone":"Europe/Paris"}`, engine.ToolOK, "Europe/Paris: 2026-11-26T13:00:00+01:00"},
		{"bad zone", "builtin__current_time", `{"time_zone":"Mars/Olympus"}`, engine.ToolError, "Unknown time zone"},
		{"search", "builtin__search_knowledge", `{"query":"deploy day"}`, engine.ToolOK, "Deploy on Tuesdays."},
		{"fetch allowed", "builtin__fetch_url", `{"url":"` + site.URL + `/notes"}`, engine.ToolOK, "v2 is out"},
		{"fetch other site", "builtin__fetch_url", `{"url":"http://example.org/"}`, engine.ToolDenied, "not an allowed site"},
		{"fetch redirected away", "builtin__fetch_url", `{"url":"` + site.URL + `/away"}`, engine.ToolError, "not allowed"},
		{"fetch not http", "builtin__fetch_url", `{"url":"file:///etc/passwd"}`, engine.ToolError, "http or https"},
	}
	for _, tt := range tests {
		got := call(r, a, tt.tool, tt.args)
		if got.Outcome != tt.outcome || !strings.Contains(got.Content, tt.want) {
			t.Errorf("%s: %+v, want %s with %q", tt.name, got, tt.outcome, tt.want)
		}
	}
	// fetch_url is off without an allowlist.
	off, _ := New(Config{}, nil)
	if specs, _ := off.Tools(context.Background(), a); len(specs) != 1 || specs[0].Name != "builtin__current_time" {
		t.Errorf("without a retriever and allowlist: %v", specs)
	}
	if got := call(off, a, "builtin__fetch_url", `{"url":"`+site.URL+`"}`); got.Outcome != engine.ToolDenied {
		t.Errorf("fetch_url while off: %+v", got)
	}
}

func mustHost(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Hostname()
}
