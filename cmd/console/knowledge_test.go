package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/console/web/password"
	"github.com/convosphere/convosphere/engine"
)

// Test documents: leave.md answers questions about vacation leave,
// expenses.md about receipts, and garbage.bin is binary noise.
const (
	leaveDoc = "# Leave policy\n\nThe handbook of the company.\n\n## Vacation\n\n" +
		"Everyone gets 25 days of paid vacation leave per year. Vacation leave is booked in the HR tool.\n"
	expensesDoc = "# Expenses\n\nSubmit receipts within 30 days. Travel is booked through the travel desk.\n"
)

var garbage = []byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\xff\xfe\x00\x01binary\x00noise\x00\x9c\x80")

// upload posts files (name → content, in order) as multipart/form-data.
func upload(tb testing.TB, m *Main, token, kb string, files ...[2]string) *http.Response {
	tb.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for _, f := range files {
		part, err := w.CreateFormFile("file", f[0])
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := io.WriteString(part, f[1]); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, m.URL()+"/api/v1/knowledge-bases/"+kb+"/documents", &body)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { resp.Body.Close() })
	return resp
}

// postJSON posts a JSON body to path.
func postJSON(tb testing.TB, m *Main, token, path, body string) *http.Response {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, m.URL()+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { resp.Body.Close() })
	return resp
}

type uploadReply struct {
	KnowledgeBase string `json:"knowledge_base"`
	Created       bool   `json:"created"`
	Documents     []struct {
		Name       string `json:"name"`
		Status     string `json:"status"`
		DocumentID string `json:"document_id"`
		Chunks     int    `json:"chunks"`
		Error      *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	} `json:"documents"`
}

type searchReply struct {
	Query   string `json:"query"`
	Results []struct {
		Document string  `json:"document"`
		Chunk    string  `json:"chunk"`
		Score    float64 `json:"score"`
		Heading  string  `json:"heading"`
	} `json:"results"`
	Applied engine.AppliedSettings `json:"applied"`
}

type errorReply struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// decodeStrict decodes a response with exactly the fields of T.
func decodeStrict[T any](tb testing.TB, resp *http.Response, status int) T {
	tb.Helper()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != status {
		tb.Fatalf("%s %s: %s, want %d\n%s", resp.Request.Method, resp.Request.URL.Path, resp.Status, status, body)
	}
	var v T
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		tb.Fatalf("response does not have the documented shape: %v\n%s", err, body)
	}
	return v
}

// mustUserToken creates a user with the role and returns an API token for it.
func mustUserToken(tb testing.TB, m *Main, name string, role engine.Role) string {
	tb.Helper()
	ctx := context.Background()
	hash, err := password.Hash("a-long-test-password")
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.App.Store.CreateUser(ctx, &engine.User{Name: name, Role: role, PasswordHash: hash}); err != nil {
		tb.Fatal(err)
	}
	token, err := CreateToken(ctx, m.App.Store, name, "test")
	if err != nil {
		tb.Fatal(err)
	}
	return token
}

func TestEndToEndKnowledgeREST(t *testing.T) {
	m := MustRunMain(t, nil)
	admin := mustToken(t, m)
	editor := mustUserToken(t, m, "eve", engine.RoleEditor)
	viewer := mustUserToken(t, m, "vic", engine.RoleViewer)
	ctx := context.Background()

	// One good Markdown file, one binary file, one name that tries to escape.
	got := decodeStrict[uploadReply](t, upload(t, m, admin, "handbook",
		[2]string{"leave.md", leaveDoc}, [2]string{"garbage.bin", string(garbage)}, [2]string{"../../escape.md", expensesDoc}), http.StatusOK)
	if got.KnowledgeBase != "handbook" || !got.Created || len(got.Documents) != 3 {
		t.Fatalf("upload = %+v", got)
	}
	leave, junk, escape := got.Documents[0], got.Documents[1], got.Documents[2]
	if leave.Name != "leave.md" || leave.Status != "indexed" || leave.DocumentID == "" || leave.Chunks == 0 || leave.Error != nil {
		t.Errorf("good file = %+v", leave)
	}
	if junk.Status != "failed" || junk.Error == nil || junk.Error.Code != "invalid" || !strings.Contains(junk.Error.Message, "garbage.bin") {
		t.Errorf("binary file = %+v (error %+v)", junk, junk.Error)
	}
	if escape.Status != "failed" || escape.Error == nil || escape.Error.Code != "invalid" || !strings.Contains(escape.Error.Message, "path traversal") {
		t.Errorf("escaping name = %+v (error %+v)", escape, escape.Error)
	}
	// Nothing was written under the escaping name, on disk or in the store.
	for _, dir := range []string{m.Config.DataDir, filepath.Dir(m.Config.DataDir), filepath.Dir(filepath.Dir(m.Config.DataDir))} {
		if _, err := os.Stat(filepath.Join(dir, "escape.md")); err == nil {
			t.Errorf("%s/escape.md was written", dir)
		}
	}
	_ = filepath.WalkDir(m.Config.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), "escape") {
			t.Errorf("%s was written", path)
		}
		return nil
	})
	docs, err := m.App.Store.ListDocuments(ctx, "handbook")
	if err != nil || len(docs) != 1 || docs[0].Source != "leave.md" {
		t.Fatalf("stored documents = %+v (%v)", docs, err)
	}

	// The same upload again: unchanged, no duplicate chunks.
	again := decodeStrict[uploadReply](t, upload(t, m, editor, "handbook", [2]string{"leave.md", leaveDoc}, [2]string{"garbage.bin", string(garbage)}), http.StatusOK)
	if d := again.Documents[0]; again.Created || d.Status != "unchanged" || d.DocumentID != leave.DocumentID || d.Chunks != leave.Chunks {
		t.Errorf("re-upload = %+v", again)
	}
	if d := again.Documents[1]; d.Status != "failed" || d.Error == nil {
		t.Errorf("binary file again = %+v", d)
	}
	indexed, err := m.App.Index.Documents(ctx, "handbook")
	if err != nil || len(indexed) != 1 || indexed[0].Chunks != leave.Chunks {
		t.Fatalf("index holds %+v (%v), want one document with %d chunks", indexed, err, leave.Chunks)
	}

	// A second document, then a search: the leave policy ranks first.
	more := decodeStrict[uploadReply](t, upload(t, m, editor, "handbook", [2]string{"expenses.md", expensesDoc}), http.StatusOK)
	if more.Documents[0].Status != "indexed" {
		t.Fatalf("second document = %+v", more)
	}
	res := decodeStrict[searchReply](t, postJSON(t, m, viewer, "/api/v1/knowledge-bases/handbook/search",
		`{"query": "how many days of vacation leave do I get", "k": 10}`), http.StatusOK)
	if res.Query != "how many days of vacation leave do I get" || len(res.Results) == 0 {
		t.Fatalf("search = %+v", res)
	}
	first := res.Results[0]
	if first.Document != "leave.md" || !strings.Contains(first.Chunk, "25 days") || first.Score <= 0 || first.Heading != "Leave policy › Vacation" {
		t.Errorf("first result = %+v", first)
	}
	for i := 1; i < len(res.Results); i++ {
		if res.Results[i].Score > res.Results[i-1].Score {
			t.Errorf("results out of rank order: %+v", res.Results)
		}
	}
	if res.Applied.Backend != "embedded" || res.Applied.Limit != 10 || res.Applied.Mode == "" {
		t.Errorf("applied = %+v", res.Applied)
	}

	// Viewers search and list but do not upload.
	resp := upload(t, m, viewer, "handbook", [2]string{"mine.md", "# Mine"})
	if e := decodeStrict[errorReply](t, resp, http.StatusForbidden); e.Error.Code != "forbidden" || !strings.Contains(e.Error.Message, "admin or editor") {
		t.Errorf("viewer upload = %+v", e)
	}
	req, _ := http.NewRequest(http.MethodGet, m.URL()+"/api/v1/knowledge-bases", nil)
	req.Header.Set("Authorization", "Bearer "+viewer)
	listResp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer listResp.Body.Close()
	var list struct {
		KnowledgeBases []struct {
			Name      string `json:"name"`
			Documents int    `json:"documents"`
			Indexed   int    `json:"indexed"`
		} `json:"knowledge_bases"`
	}
	if err := json.NewDecoder(listResp.Body).Decode(&list); err != nil || listResp.StatusCode != http.StatusOK {
		t.Fatalf("list: %s %v", listResp.Status, err)
	}
	i := slices.IndexFunc(list.KnowledgeBases, func(kb struct {
		Name      string `json:"name"`
		Documents int    `json:"documents"`
		Indexed   int    `json:"indexed"`
	}) bool {
		return kb.Name == "handbook"
	})
	if i < 0 || list.KnowledgeBases[i].Documents != 2 || list.KnowledgeBases[i].Indexed != 2 {
		t.Errorf("knowledge bases = %+v", list.KnowledgeBases)
	}

	for _, tt := range []struct {
		name, path, body string
		status           int
	}{
		{"unknown knowledge base", "/api/v1/knowledge-bases/nope/search", `{"query": "leave"}`, http.StatusNotFound},
		{"empty query", "/api/v1/knowledge-bases/handbook/search", `{"query": ""}`, http.StatusBadRequest},
		{"bad k", "/api/v1/knowledge-bases/handbook/search", `{"query": "leave", "k": 500}`, http.StatusBadRequest},
		{"not json", "/api/v1/knowledge-bases/handbook/search", `query=leave`, http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := decodeStrict[errorReply](t, postJSON(t, m, viewer, tt.path, tt.body), tt.status)
			if e.Error.Message == "" {
				t.Errorf("no message: %+v", e)
			}
		})
	}
}

func TestAssistantOnlyRetrievesFromItsKnowledgeBases(t *testing.T) {
	m := MustRunMain(t, nil)
	token := mustToken(t, m)
	ctx := context.Background()
	for _, kb := range []string{"a", "b"} {
		if err := m.App.Store.CreateKnowledgeBase(ctx, &engine.KnowledgeBase{Name: kb}); err != nil {
			t.Fatal(err)
		}
	}
	// b matches the question far better than a.
	if _, err := m.App.Knowledge.Ingest(ctx, "a", "alpha.md", []byte("# Releases\n\nReleases are cut by the release manager on Tuesdays.\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.App.Knowledge.Ingest(ctx, "b", "bravo.md", []byte("# Deploy schedule\n\nThe deploy schedule: deploys run on Fridays. "+
		"Every deploy follows the deploy schedule.\n")); err != nil {
		t.Fatal(err)
	}
	const question = "What is the deploy schedule for releases?"
	both, err := m.App.Knowledge.Retrieve(ctx, engine.RetrievalRequest{Query: question, KnowledgeBases: []string{"a", "b"}})
	if err != nil || len(both.Passages) < 2 || both.Passages[0].KnowledgeBase != "b" {
		t.Fatalf("the test needs b to rank above a when both are searched: %+v (%v)", both, err)
	}

	tests := []struct {
		assistant string
		kbs       []string
		want      []string // knowledge bases of the passages the turn used
		leak      string   // text that must not appear in the answer
	}{
		{"Only A", []string{"a"}, []string{"a"}, "Fridays"},
		{"Only B", []string{"b"}, []string{"b"}, "Tuesdays"},
		{"No Knowledge", []string{}, nil, "Fridays"},
	}
	for _, tt := range tests {
		t.Run(tt.assistant, func(t *testing.T) {
			as := &engine.Assistant{Name: tt.assistant, SystemPrompt: "Answer from the passages.", KnowledgeBases: tt.kbs}
			if err := as.Validate(); err != nil {
				t.Fatal(err)
			}
			if err := m.App.Store.CreateAssistant(ctx, as); err != nil {
				t.Fatal(err)
			}
			body, _ := json.Marshal(map[string]string{"message": question, "assistant": tt.assistant})
			resp := postChat(t, m, token, "", string(body))
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("chat: %s %s", resp.Status, b)
			}
			c := decodeChat(t, resp.Body)
			tr, err := m.App.Store.TraceByID(ctx, c.TraceID)
			if err != nil {
				t.Fatal(err)
			}
			var kbs []string
			for _, p := range tr.Passages {
				if !slices.Contains(kbs, p.KnowledgeBase) {
					kbs = append(kbs, p.KnowledgeBase)
				}
			}
			if !slices.Equal(kbs, tt.want) {
				t.Errorf("passages came from %q, want %q: %+v", kbs, tt.want, tr.Passages)
			}
			for _, cit := range c.Citations {
				if !slices.Contains(tt.kbs, knowledgeBaseOf(cit.Document)) {
					t.Errorf("citation of %s, outside %q", cit.Document, tt.kbs)
				}
			}
			if strings.Contains(c.Answer, tt.leak) {
				t.Errorf("the answer quotes a knowledge base the assistant is not bound to:\n%s", c.Answer)
			}
		})
	}
}

// knowledgeBaseOf names the knowledge base of the scope test's documents.
func knowledgeBaseOf(document string) string {
	switch document {
	case "alpha.md":
		return "a"
	case "bravo.md":
		return "b"
	}
	return "?" + document
}

// jsonLines parses output lines into maps of their raw fields.
func jsonLines(tb testing.TB, out string) []map[string]json.RawMessage {
	tb.Helper()
	var lines []map[string]json.RawMessage
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var v map[string]json.RawMessage
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			tb.Fatalf("output line is not a JSON object: %q", l)
		}
		lines = append(lines, v)
	}
	return lines
}

func keysOf(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestKnowledgeCommands(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CONVOSPHERE_CONFIG", "")
	t.Setenv("CONVOSPHERE_DATA_DIR", filepath.Join(dir, "data"))
	ctx := context.Background()
	exec := func(stdin string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(ctx, args, strings.NewReader(stdin), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	docs := filepath.Join(dir, "docs")
	for name, content := range map[string]string{
		"leave.md": leaveDoc, "sub/expenses.txt": expensesDoc, "garbage.md": string(garbage), "logo.png": "png",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(docs, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(docs, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Not a terminal: one line per file on stderr, the summary on stdout,
	// exit 1 because one file failed; the others are kept.
	code, out, errOut := exec("", "knowledge", "ingest", "--kb", "hr", docs)
	if code != 1 {
		t.Fatalf("ingest: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"created knowledge base hr\n", "documents: 2 indexed, 0 unchanged, 1 failed\n", "chunks: ",
		"skipped: 1 files", "failures:\n  garbage.md: unsupported file type", "elapsed: "} {
		if !strings.Contains(out, want) {
			t.Errorf("ingest summary lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{"] failed    garbage.md: unsupported file type", "] indexed   leave.md (", "] indexed   sub/expenses.txt (",
		"] skipped   logo.png", "1 of 3 files failed"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("ingest progress lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "\r") {
		t.Errorf("a progress bar was drawn on a non-terminal:\n%q", errOut)
	}
	code, out, _ = exec("", "knowledge", "ingest", "--kb", "hr", docs)
	if code != 1 || !strings.Contains(out, "documents: 0 indexed, 2 unchanged, 1 failed\n") || !strings.Contains(out, "chunks: 0 indexed, ") {
		t.Errorf("second ingest: exit %d\n%s", code, out)
	}
	if code, out, errOut := exec("", "knowledge", "ingest", "--kb", "hr", filepath.Join(docs, "leave.md")); code != 0 || !strings.Contains(out, "documents: 0 indexed, 1 unchanged, 0 failed") {
		t.Errorf("ingest of one good file: exit %d\n%s\n%s", code, out, errOut)
	}

	// JSON lines: one output line per query, bad lines included.
	stdin := strings.Join([]string{
		`{"query": "how many days of vacation leave"}`,
		`this is not json`,
		`{"question": "no query field"}`,
		`{"query": ""}`,
		``,
		`{"query": "receipts <travel> & desk", "id": 7}`,
		`{"query": 42}`,
	}, "\n")
	code, out, errOut = exec(stdin, "knowledge", "search", "--kb", "hr", "-k", "10", "--jsonl")
	if code != 0 {
		t.Fatalf("search --jsonl: exit %d\n%s", code, errOut)
	}
	if strings.Contains(out, `\u003c`) {
		t.Errorf("HTML characters are escaped: %s", out)
	}
	lines := jsonLines(t, out)
	if len(lines) != 6 {
		t.Fatalf("%d output lines for 6 queries:\n%s", len(lines), out)
	}
	wantKeys := [][]string{{"query", "results"}, {"error", "line"}, {"error", "line"}, {"error", "line", "query"}, {"query", "results"}, {"error", "line"}}
	for i, want := range wantKeys {
		if got := keysOf(lines[i]); !slices.Equal(got, want) {
			t.Errorf("line %d has fields %q, want %q: %s", i+1, got, want, strings.Split(out, "\n")[i])
		}
	}
	var first struct {
		Query   string           `json:"query"`
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal([]byte(strings.Split(out, "\n")[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.Query != "how many days of vacation leave" || len(first.Results) == 0 {
		t.Fatalf("first line = %+v", first)
	}
	r := first.Results[0]
	if len(r) != 4 || r["document"] != "leave.md" || !strings.Contains(r["chunk"].(string), "25 days") || r["heading"] != "Leave policy › Vacation" {
		t.Errorf("first result = %v", r)
	}
	if _, ok := r["score"].(float64); !ok {
		t.Errorf("score is not a number: %v", r)
	}
	var bad struct {
		Query string `json:"query"`
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Line int `json:"line"`
	}
	if err := json.Unmarshal(lines[3]["error"], &bad.Error); err != nil || bad.Error.Code != "invalid" || !strings.Contains(bad.Error.Message, "empty") {
		t.Errorf("empty query line = %s (%v)", lines[3]["error"], err)
	}
	if string(lines[3]["query"]) != `""` || string(lines[3]["line"]) != "4" || string(lines[5]["line"]) != "7" {
		t.Errorf("error lines = %v / %v", lines[3], lines[5])
	}
	if !strings.Contains(errOut, "4 of 6 queries could not be searched") {
		t.Errorf("stderr = %s", errOut)
	}
	var receipts struct {
		Results []struct{ Document string } `json:"results"`
	}
	_ = json.Unmarshal([]byte(strings.Split(out, "\n")[4]), &receipts)
	if len(receipts.Results) == 0 || receipts.Results[0].Document != "sub/expenses.txt" {
		t.Errorf("receipts line = %s", strings.Split(out, "\n")[4])
	}

	// -k limits the results; the default is 10.
	_, out, _ = exec(`{"query": "vacation receipts leave travel"}`, "knowledge", "search", "--kb", "hr", "-k", "1", "--jsonl")
	if l := jsonLines(t, out); len(l) != 1 || strings.Count(string(l[0]["results"]), `"document"`) != 1 {
		t.Errorf("-k 1: %s", out)
	}

	// The plain search keeps working, with -k and --limit.
	for _, flag := range []string{"-k", "--limit"} {
		code, out, errOut := exec("", "knowledge", "search", "--kb", "hr", flag, "1", "vacation", "leave")
		if code != 0 || !strings.Contains(out, "[1] ") || strings.Contains(out, "[2] ") || !strings.Contains(out, "leave.md") {
			t.Errorf("search %s 1: exit %d\n%s\n%s", flag, code, out, errOut)
		}
	}

	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown knowledge base", []string{"search", "--kb", "nope", "--jsonl"}, 1, "does not exist"},
		{"bad k", []string{"search", "--kb", "hr", "-k", "0", "--jsonl"}, 2, "1 to 50"},
		{"query with --jsonl", []string{"search", "--kb", "hr", "--jsonl", "leave"}, 2, "leave out QUERY"},
		{"no query", []string{"search", "--kb", "hr"}, 2, "needs a query"},
		{"bad name", []string{"ingest", "--kb", "Bad Name", docs}, 2, "Knowledge base name"},
		{"no paths", []string{"ingest", "--kb", "hr"}, 2, "one or more paths"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := exec("", append([]string{"knowledge"}, tt.args...)...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant %d mentioning %q", code, errOut, tt.code, tt.want)
			}
		})
	}
}

func TestIngestProgressBarOnTerminal(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	docs := t.TempDir()
	for _, name := range []string{"a.md", "b.md", "c.md"} {
		if err := os.WriteFile(filepath.Join(docs, name), []byte("# "+name+"\n\nSome text about "+name+".\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut bytes.Buffer
	c := &cli{cfg: cfg, stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, tty: true}
	if err := c.knowledge(context.Background(), []string{"ingest", "--kb", "bar", docs}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\r[########", "] 1/3 a.md", "] 3/3 c.md", "\r[" + strings.Repeat("#", 24) + "] 3/3 c.md"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("progress lacks %q:\n%q", want, errOut.String())
		}
	}
	if !regexp.MustCompile(`\] 3/3 c\.md *\n`).MatchString(errOut.String()) {
		t.Errorf("the finished bar's line is not ended:\n%q", errOut.String())
	}
	if strings.Contains(errOut.String(), "indexed   a.md") {
		t.Errorf("per-file lines on a terminal:\n%q", errOut.String())
	}
	if !strings.Contains(out.String(), "documents: 3 indexed, 0 unchanged, 0 failed") {
		t.Errorf("summary:\n%s", out.String())
	}
}

func TestReadLine(t *testing.T) {
	const max = 8
	tests := []struct {
		name  string
		input string
		want  []string // each line read; "LONG" for a line reported as too long
	}{
		{"lines", "a\nbb\n", []string{"a", "bb", ""}},
		{"crlf", "a\r\nb\r\n", []string{"a", "b", ""}},
		{"no final newline", "a\nb", []string{"a", "b"}},
		{"exactly max", "12345678\n", []string{"12345678", ""}},
		{"too long, then short", "123456789\nok\n", []string{"LONG", "ok", ""}},
		{"much longer than the buffer", strings.Repeat("x", 100) + "\nok", []string{"LONG", "ok"}},
		{"empty line", "\n\nz", []string{"", "", "z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bufio.NewReaderSize(strings.NewReader(tt.input), 16)
			var got []string
			for {
				line, long, err := readLine(r, max)
				if long {
					got = append(got, "LONG")
				} else {
					got = append(got, string(line))
				}
				if err != nil {
					break
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("read %q, want %q", got, tt.want)
			}
		})
	}
}

// TestKnowledgeReindex re-chunks stored originals after a chunk size change,
// with no re-upload.
func TestKnowledgeReindex(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CONVOSPHERE_CONFIG", "")
	t.Setenv("CONVOSPHERE_DATA_DIR", dir)
	ctx := context.Background()
	exec := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(ctx, args, strings.NewReader(""), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, out, errOut := exec("knowledge", "ingest", "--kb", "docs", filepath.Join("..", "..", "docs", "configuration.md")); code != 0 {
		t.Fatalf("ingest: %d %s %s", code, out, errOut)
	}
	chunksOf := func(out string) string {
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "chunks: ") {
				return line
			}
		}
		return ""
	}
	t.Setenv("CONVOSPHERE_KNOWLEDGE_CHUNK_SIZE", "400")
	t.Setenv("CONVOSPHERE_KNOWLEDGE_CHUNK_OVERLAP", "50")
	code, out, errOut := exec("knowledge", "reindex", "--kb", "docs")
	if code != 0 || !strings.Contains(out, "documents: 1 indexed") {
		t.Fatalf("reindex: %d %s %s", code, out, errOut)
	}
	smaller := chunksOf(out)
	t.Setenv("CONVOSPHERE_KNOWLEDGE_CHUNK_SIZE", "2400")
	t.Setenv("CONVOSPHERE_KNOWLEDGE_CHUNK_OVERLAP", "100")
	_, out, _ = exec("knowledge", "reindex", "--kb", "docs")
	if larger := chunksOf(out); smaller == "" || larger == "" || smaller == larger {
		t.Errorf("chunk counts did not follow knowledge.chunk_size: %q then %q", smaller, larger)
	}
	if code, _, errOut := exec("knowledge", "reindex", "--kb", "nope"); code == 0 || !strings.Contains(errOut, "nope") {
		t.Errorf("reindex of a missing knowledge base: %d %s", code, errOut)
	}
}
