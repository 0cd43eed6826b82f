package web

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/engine/enginetest"
)

// chatAnswer is the contract of POST /api/v1/chat.
type chatAnswer struct {
	ConversationID string `json:"conversation_id"`
	Answer         string `json:"answer"`
	Citations      []struct {
		Index    int    `json:"index"`
		Document string `json:"document"`
		Title    string `json:"title"`
		Snippet  string `json:"snippet"`
		Section  string `json:"section"`
	} `json:"citations"`
	TraceID string `json:"trace_id"`
	Outcome string `json:"outcome"`
	Notice  string `json:"notice"`
}

func mustAnswer(tb testing.TB, data []byte) chatAnswer {
	tb.Helper()
	// The four contract fields are always present.
	raw := decodeJSON(tb, data)
	for _, k := range []string{"conversation_id", "answer", "citations", "trace_id"} {
		if _, ok := raw[k]; !ok {
			tb.Fatalf("answer has no %q: %s", k, data)
		}
	}
	if _, ok := raw["citations"].([]any); !ok {
		tb.Fatalf("citations is not an array: %s", data)
	}
	var a chatAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		tb.Fatal(err)
	}
	return a
}

func TestChatJSON(t *testing.T) {
	env := mustEnv(t, envOptions{})
	env.MustAssistant("helper", true)
	alice := env.MustUser("alice", engine.RoleViewer)
	env.model.Script(enginetest.Reply{Chunks: []string{"You get 25 days ", "of leave [1]."}})

	w := env.postChat(env.MustToken(alice), `{"message": "How much leave do I get?"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d: %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("content type = %q", ct)
	}
	a := mustAnswer(t, w.Body.Bytes())
	if a.Answer != "You get 25 days of leave [1]." || a.Outcome != "answered" || a.Notice != "" {
		t.Fatalf("answer = %+v", a)
	}
	if len(a.Citations) != 1 {
		t.Fatalf("citations = %+v", a.Citations)
	}
	c := a.Citations[0]
	if c.Index != 1 || c.Document != "handbook/leave.md" || c.Title != "Leave policy" ||
		c.Snippet != "Everyone gets 25 days of paid leave per year." || c.Section != "Leave › Holidays" {
		t.Fatalf("citation = %+v", c)
	}

	// The conversation belongs to alice, on the console, in her channel.
	conv, err := env.store.ConversationByID(context.Background(), a.ConversationID)
	if err != nil {
		t.Fatal(err)
	}
	if conv.UserID != alice.ID || conv.Platform != engine.PlatformConsole || conv.ChannelID != "user:"+alice.ID || conv.ThreadID == "" {
		t.Fatalf("conversation = %+v", conv)
	}
	turns := env.turns(a.ConversationID)
	if len(turns) != 2 || turns[0].Content != "How much leave do I get?" || turns[0].UserName != "alice" || turns[1].Content != a.Answer {
		t.Fatalf("turns = %+v", turns)
	}
	tr, err := env.store.TraceByID(context.Background(), a.TraceID)
	if err != nil || tr.ConversationID != a.ConversationID || tr.UserID != alice.ID || tr.Outcome != engine.OutcomeAnswered {
		t.Fatalf("trace = %+v, %v", tr, err)
	}
	if strings.Contains(env.logs.String(), "How much leave") {
		t.Fatal("a message body reached the log")
	}
	// The request log line has the fields operators need.
	var found bool
	for line := range strings.Lines(env.logs.String()) {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "http request" || rec["path"] != "/api/v1/chat" {
			continue
		}
		_, hasDuration := rec["duration_ms"].(float64)
		found = rec["method"] == "POST" && rec["status"] == float64(200) && hasDuration && rec["user_id"] == alice.ID
	}
	if !found {
		t.Fatalf("no request log line with method, path, status, duration_ms: %s", env.logs)
	}
}

func TestChatSSE(t *testing.T) {
	env := mustEnv(t, envOptions{})
	env.MustAssistant("helper", true)
	alice := env.MustSession(env.MustUser("alice", engine.RoleViewer))
	env.model.Script(enginetest.Reply{Chunks: []string{"Submit ", "receipts ", "within 30 days [2]."}})

	w := env.postChat(alice, `{"message":"Expenses?","assistant":"HELPER"}`, "Accept", "text/event-stream")
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d: %s", w.Code, w.Body)
	}
	for k, v := range map[string]string{
		"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
	} {
		if got := w.Header().Get(k); got != v {
			t.Fatalf("%s = %q, want %q", k, got, v)
		}
	}
	if !w.Flushed {
		t.Fatal("the stream was never flushed")
	}
	events := parseSSE(t, w.Body)
	var (
		text   strings.Builder
		names  []string
		status int
	)
	for i, ev := range events {
		names = append(names, ev.Name)
		switch ev.Name {
		case "status":
			status++
		case "delta":
			var d struct {
				Text string `json:"text"`
			}
			if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
				t.Fatal(err)
			}
			text.WriteString(d.Text)
		case "done":
			if i != len(events)-1 {
				t.Fatalf("done is not the last event: %v", names)
			}
		default:
			t.Fatalf("unexpected event %q", ev.Name)
		}
	}
	// Statuses come first: searching the knowledge, then writing.
	if status != 2 || names[0] != "status" || names[1] != "status" {
		t.Fatalf("events = %v, want two statuses first (searching the knowledge, writing)", names)
	}
	if names[len(names)-1] != "done" || strings.Count(strings.Join(names, ","), "delta") != 3 {
		t.Fatalf("events = %v, want 3 deltas and done", names)
	}
	a := mustAnswer(t, []byte(events[len(events)-1].Data))
	if a.Answer != text.String() || a.Answer != "Submit receipts within 30 days [2]." {
		t.Fatalf("done answer %q, deltas %q", a.Answer, text.String())
	}
	if len(a.Citations) != 1 || a.Citations[0].Index != 2 || a.Citations[0].Document != "handbook/expenses.md" {
		t.Fatalf("citations = %+v", a.Citations)
	}
	if a.ConversationID == "" || a.TraceID == "" {
		t.Fatalf("answer = %+v", a)
	}
	// The done event carries exactly what the JSON response would.
	var asMap map[string]any
	_ = json.Unmarshal([]byte(events[len(events)-1].Data), &asMap)
	// A signed-in browser (the Playground) also gets the answer rendered from Markdown.
	want := []string{"answer", "answer_html", "citations", "conversation_id", "outcome", "trace_id"}
	if html, _ := asMap["answer_html"].(string); html != "<p>Submit receipts within 30 days [2].</p>\n" {
		t.Errorf("answer_html = %q", html)
	}
	var got []string
	for k := range asMap {
		got = append(got, k)
	}
	if !sameSet(got, want) {
		t.Fatalf("done fields = %v, want %v", got, want)
	}
}

func TestRenderMarkdownIsSafe(t *testing.T) {
	tests := []struct {
		name, in, want, never string
	}{
		{"emphasis and quote", "**Title**\n> quoted", "<strong>Title</strong>", ""},
		{"table", "| a | b |\n| --- | --- |\n| 1 | 2 |", "<table>", ""},
		{"raw html dropped", "<script>alert(1)</script><img src=x onerror=alert(1)>", "", "<script"},
		{"javascript link dropped", "[x](javascript:alert(1))", "", "javascript:"},
		{"attribute injection", "[x](\"onmouseover=alert(1))", "", "\"onmouseover"},
	}
	for _, tt := range tests {
		got := renderMarkdown(tt.in)
		if tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q lacks %q", tt.name, got, tt.want)
		}
		if tt.never != "" && strings.Contains(got, tt.never) {
			t.Errorf("%s: %q contains %q", tt.name, got, tt.never)
		}
	}
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

// gateModel sends its first chunk, then waits for release before the rest.
type gateModel struct{ release chan struct{} }

func (m *gateModel) Stream(ctx context.Context, _ engine.ChatRequest) (<-chan engine.StreamEvent, error) {
	out := make(chan engine.StreamEvent)
	go func() {
		defer close(out)
		for i, ev := range []engine.StreamEvent{
			{Kind: engine.EventText, Text: "first "}, {Kind: engine.EventText, Text: "second"}, {Kind: engine.EventDone},
		} {
			if i == 1 {
				select {
				case <-m.release:
				case <-ctx.Done():
					return
				}
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// TestChatSSEStreamsAsItArrives checks over a real connection that the
// first delta reaches the client while the model is still answering.
func TestChatSSEStreamsAsItArrives(t *testing.T) {
	gate := &gateModel{release: make(chan struct{})}
	env := mustEnv(t, envOptions{Model: gate})
	a := env.MustAssistant("plain", true)
	a.KnowledgeBases = []string{}
	if err := env.store.UpdateAssistant(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	tok := env.MustToken(env.MustUser("alice", engine.RoleViewer))
	ts := httptest.NewServer(env.srv)
	defer ts.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/api/v1/chat", strings.NewReader(`{"message":"go"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	tok.apply(req)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	// The first event after the status lines (the assistant is writing).
	var first []string
	for len(first) < 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read first event: %v (got %q)", err, first)
		}
		first = append(first, strings.TrimRight(line, "\n"))
		if len(first) == 3 && first[0] == "event: status" {
			first = nil
		}
	}
	if first[0] != "event: delta" || first[1] != `data: {"text":"first "}` || first[2] != "" {
		t.Fatalf("first event = %q", first)
	}
	close(gate.release)
	events := parseSSE(t, br)
	if len(events) != 2 || events[0].Name != "delta" || events[1].Name != "done" {
		t.Fatalf("rest = %+v", events)
	}
	if got := mustAnswer(t, []byte(events[1].Data)).Answer; got != "first second" {
		t.Fatalf("answer = %q", got)
	}
}

func TestChatInterruptedAndFailed(t *testing.T) {
	modelDown := engine.Errorf(engine.EUNAVAILABLE, "The language model is unavailable right now; please try again in a minute.")
	tests := []struct {
		name   string
		reply  enginetest.Reply
		sse    bool
		status int
		check  func(t *testing.T, body []byte)
	}{
		{name: "interrupted json", reply: enginetest.Reply{Chunks: []string{"Half an "}, Err: modelDown}, status: http.StatusOK,
			check: func(t *testing.T, body []byte) {
				a := mustAnswer(t, body)
				if a.Answer != "Half an " || a.Outcome != "interrupted" || !strings.HasPrefix(a.Notice, "The answer was interrupted") || a.TraceID == "" {
					t.Fatalf("answer = %+v", a)
				}
			}},
		{name: "interrupted sse", reply: enginetest.Reply{Chunks: []string{"Half an "}, Err: modelDown}, sse: true, status: http.StatusOK,
			check: func(t *testing.T, body []byte) {
				events := parseSSE(t, strings.NewReader(string(body)))
				last := events[len(events)-1]
				if last.Name != "done" {
					t.Fatalf("last event = %q", last.Name)
				}
				if a := mustAnswer(t, []byte(last.Data)); a.Outcome != "interrupted" || a.Notice == "" || a.Answer != "Half an " {
					t.Fatalf("answer = %+v", a)
				}
			}},
		{name: "failed json", reply: enginetest.Reply{Err: modelDown}, status: http.StatusServiceUnavailable,
			check: func(t *testing.T, body []byte) {
				code, msg := errorOf(t, body)
				if code != engine.EUNAVAILABLE || msg != modelDown.Message {
					t.Fatalf("error = %s %q", code, msg)
				}
				if decodeJSON(t, body)["trace_id"] == "" {
					t.Fatal("no trace_id in the error")
				}
			}},
		{name: "failed sse", reply: enginetest.Reply{Err: modelDown}, sse: true, status: http.StatusOK,
			check: func(t *testing.T, body []byte) {
				events := parseSSE(t, strings.NewReader(string(body)))
				last := events[len(events)-1]
				if last.Name != "error" {
					t.Fatalf("last event = %q", last.Name)
				}
				var e struct {
					Error   errorDetail `json:"error"`
					TraceID string      `json:"trace_id"`
				}
				if err := json.Unmarshal([]byte(last.Data), &e); err != nil {
					t.Fatal(err)
				}
				if e.Error.Code != engine.EUNAVAILABLE || e.Error.Message != modelDown.Message || e.TraceID == "" {
					t.Fatalf("error event = %+v", e)
				}
			}},
		{name: "internal error is generic", reply: enginetest.Reply{Err: &engine.Error{Code: engine.EINTERNAL, Message: "secret detail", Err: errors.New("boom")}},
			status: http.StatusInternalServerError,
			check: func(t *testing.T, body []byte) {
				code, msg := errorOf(t, body)
				if code != engine.EINTERNAL || strings.Contains(msg, "secret detail") {
					t.Fatalf("error = %s %q", code, msg)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := mustEnv(t, envOptions{})
			env.MustAssistant("helper", true)
			tok := env.MustToken(env.MustUser("alice", engine.RoleViewer))
			env.model.Script(tt.reply)
			var header []string
			if tt.sse {
				header = []string{"Accept", "text/event-stream"}
			}
			w := env.postChat(tok, `{"message":"Tell me"}`, header...)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			tt.check(t, w.Body.Bytes())
		})
	}
}

func TestChatAcceptsJSONWhateverTheContentType(t *testing.T) {
	env := mustEnv(t, envOptions{})
	env.MustAssistant("helper", true)
	tok := env.MustToken(env.MustUser("alice", engine.RoleViewer))
	for _, ct := range []string{"", "application/json", "application/json; charset=UTF-8", "text/plain", "application/x-www-form-urlencoded"} {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/chat", strings.NewReader(`{"message":"hi"}`))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		tok.apply(r)
		if w := env.serve(r); w.Code != http.StatusOK {
			t.Errorf("Content-Type %q: status %d: %s", ct, w.Code, w.Body)
		}
	}
}

func TestChatBadInput(t *testing.T) {
	const limit = 1024
	long := strings.Repeat("a", limit+1)
	huge := strings.Repeat("a", 2*limit+9000)
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		code        string
		message     string // a part of the message
	}{
		{"invalid utf-8", "application/json", "{\"message\": \"caf\xe9\"}", 400, "invalid", "not valid UTF-8 (first bad byte at offset 16)"},
		{"malformed json", "application/json", "{\"message\": \"hi\",\n \"assistant\" \"x\"}", 400, "invalid", "not valid JSON: invalid character '\"' after object key at line 2, column 14"},
		{"truncated json", "application/json", `{"message": "hi"`, 400, "invalid", "ends too early"},
		{"empty body", "application/json", "", 400, "invalid", "The request body is empty"},
		{"not an object", "application/json", `["hi"]`, 400, "invalid", "must be a JSON object"},
		{"two objects", "application/json", `{"message":"a"} {"message":"b"}`, 400, "invalid", "more data after the JSON object"},
		{"unknown field", "application/json", `{"message":"hi","stream":true}`, 400, "invalid", `Unknown field "stream"`},
		{"wrong field type", "application/json", `{"message":42}`, 400, "invalid", `Field "message" must be a string, not a JSON number`},
		{"multipart body", "multipart/form-data; boundary=x", `{"message":"hi"}`, 415, "unsupported_media_type", "Content-Type: application/json"},
		{"form body that is not JSON", "application/x-www-form-urlencoded", `message=hi`, 400, "invalid", "not valid JSON"},
		{"latin-1 charset", "application/json; charset=iso-8859-1", `{"message":"hi"}`, 415, "unsupported_media_type", "not supported"},
		{"empty message", "application/json", `{"message":""}`, 400, "invalid", "The message is empty"},
		{"blank message", "application/json", `{"message":"  \n\t "}`, 400, "invalid", "The message is empty"},
		{"missing message", "application/json", `{"assistant":"helper"}`, 400, "invalid", "The message is empty"},
		{"NUL byte", "application/json", `{"message":"a\u0000b"}`, 400, "invalid", "NUL byte"},
		{"message too long", "application/json", `{"message":"` + long + `"}`, 413, "too_large", "over the limit of 1024 bytes"},
		{"body over the cap", "application/json", `{"message":"` + huge + `"}`, 413, "too_large", "The request body is over 10240 bytes"},
		{"unknown assistant", "application/json", `{"message":"hi","assistant":"nobody"}`, 404, "not_found", `There is no assistant named "nobody"`},
		{"unknown conversation", "application/json", `{"message":"hi","conversation_id":"01nope"}`, 404, "not_found", `Conversation "01nope" does not exist`},
		{"control character in id", "application/json", `{"message":"hi","conversation_id":"a\nb"}`, 400, "invalid", `Field "conversation_id"`},
	}
	env := mustEnv(t, envOptions{Config: Config{MaxMessageBytes: limit}})
	env.MustAssistant("helper", true)
	tok := env.MustToken(env.MustUser("alice", engine.RoleViewer))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/api/v1/chat", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			r.Header.Set("Accept", "text/event-stream") // bad input is refused before any stream starts
			tok.apply(r)
			w := env.serve(r)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			code, msg := errorOf(t, w.Body.Bytes())
			if code != tt.code || !strings.Contains(msg, tt.message) {
				t.Fatalf("error = %s %q, want %s containing %q", code, msg, tt.code, tt.message)
			}
			if env.chat.calls.Load() != 0 {
				t.Fatal("bad input reached the engine")
			}
			if convs := env.conversations(); len(convs) != 0 {
				t.Fatalf("bad input stored %d conversations", len(convs))
			}
		})
	}
}

func TestChatConversation(t *testing.T) {
	env := mustEnv(t, envOptions{})
	helper := env.MustAssistant("helper", true)
	other := env.MustAssistant("other", false)
	alice := env.MustUser("alice", engine.RoleViewer)
	aliceTok := env.MustToken(alice)
	bobTok := env.MustToken(env.MustUser("bob", engine.RoleEditor))
	adminTok := env.MustToken(env.MustUser("root", engine.RoleAdmin))

	first := mustAnswer(t, env.postChat(aliceTok, `{"message":"first question"}`).Body.Bytes())
	if first.ConversationID == "" {
		t.Fatal("no conversation id")
	}
	second := env.postChat(aliceTok, `{"message":"second question","conversation_id":"`+first.ConversationID+`"}`)
	if second.Code != http.StatusOK {
		t.Fatalf("continue = %d: %s", second.Code, second.Body)
	}
	if got := mustAnswer(t, second.Body.Bytes()).ConversationID; got != first.ConversationID {
		t.Fatalf("continued in %q, want %q", got, first.ConversationID)
	}
	// The model saw the history.
	reqs := env.model.Requests()
	last := reqs[len(reqs)-1].Messages
	var contents []string
	for _, m := range last {
		contents = append(contents, m.Content)
	}
	if !reflect.DeepEqual(contents[1:], []string{"first question", "You asked: first question", "second question"}) {
		t.Fatalf("model messages = %q", contents)
	}
	if n := len(env.turns(first.ConversationID)); n != 4 {
		t.Fatalf("turns = %d, want 4", n)
	}

	// Another user cannot see or continue it; nothing is added.
	w := env.postChat(bobTok, `{"message":"let me in","conversation_id":"`+first.ConversationID+`"}`)
	if code, _ := errorOf(t, w.Body.Bytes()); w.Code != http.StatusNotFound || code != engine.ENOTFOUND {
		t.Fatalf("other user = %d %s", w.Code, w.Body)
	}
	if n := len(env.turns(first.ConversationID)); n != 4 {
		t.Fatalf("turns after refusal = %d, want 4", n)
	}
	// Another assistant cannot take it over.
	w = env.postChat(aliceTok, `{"message":"switch","assistant":"`+other.Name+`","conversation_id":"`+first.ConversationID+`"}`)
	if w.Code != http.StatusBadRequest {
		t.Fatalf("other assistant = %d %s", w.Code, w.Body)
	}
	// Naming its own assistant is fine.
	w = env.postChat(aliceTok, `{"message":"third","assistant":"`+helper.Name+`","conversation_id":"`+first.ConversationID+`"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("same assistant = %d %s", w.Code, w.Body)
	}
	// An admin may continue anyone's conversation.
	w = env.postChat(adminTok, `{"message":"admin here","conversation_id":"`+first.ConversationID+`"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("admin = %d %s", w.Code, w.Body)
	}
	if n := len(env.turns(first.ConversationID)); n != 8 {
		t.Fatalf("turns = %d, want 8", n)
	}
	// A new message without conversation_id starts a new conversation.
	third := mustAnswer(t, env.postChat(aliceTok, `{"message":"fresh start","assistant":"other"}`).Body.Bytes())
	if third.ConversationID == first.ConversationID {
		t.Fatal("a message without conversation_id continued the old one")
	}
	conv, err := env.store.ConversationByID(context.Background(), third.ConversationID)
	if err != nil || conv.AssistantID != other.ID {
		t.Fatalf("new conversation = %+v, %v", conv, err)
	}
}

func TestChatNoDefaultAssistant(t *testing.T) {
	env := mustEnv(t, envOptions{})
	env.MustAssistant("named", false)
	tok := env.MustToken(env.MustUser("alice", engine.RoleViewer))
	w := env.postChat(tok, `{"message":"hi"}`)
	if code, _ := errorOf(t, w.Body.Bytes()); w.Code != http.StatusNotFound || code != engine.ENOTFOUND {
		t.Fatalf("no default = %d %s", w.Code, w.Body)
	}
	if env.chat.calls.Load() != 0 || len(env.conversations()) != 0 {
		t.Fatal("a message with no assistant to answer it was stored")
	}
}

func TestAPIAuth(t *testing.T) {
	env := mustEnv(t, envOptions{})
	env.MustAssistant("helper", true)
	alice := env.MustUser("alice", engine.RoleViewer)
	sess := env.MustSession(alice)
	tok := env.MustToken(alice)
	tests := []struct {
		name   string
		as     *client
		header [2]string
		status int
	}{
		{"nothing", nil, [2]string{}, 401},
		{"unknown token", &client{token: "cs_forged"}, [2]string{}, 401},
		{"basic auth", nil, [2]string{"Authorization", "Basic YWxpY2U6cHc="}, 401},
		{"empty bearer", nil, [2]string{"Authorization", "Bearer "}, 401},
		{"session without csrf", &client{session: sess.session}, [2]string{}, 401},
		{"session with wrong csrf", &client{session: sess.session, csrf: "forged"}, [2]string{}, 401},
		{"session with csrf", sess, [2]string{}, 200},
		{"token", tok, [2]string{}, 200},
		{"lowercase bearer", nil, [2]string{"Authorization", "bearer " + tok.token}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/api/v1/assistants", "/api/v1/chat"} {
				method, body := http.MethodGet, ""
				if path == "/api/v1/chat" {
					method, body = http.MethodPost, `{"message":"hello"}`
				}
				r := httptest.NewRequest(method, path, strings.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				if tt.header[0] != "" {
					r.Header.Set(tt.header[0], tt.header[1])
				}
				tt.as.apply(r)
				w := env.serve(r)
				if w.Code != tt.status {
					t.Fatalf("%s %s = %d, want %d: %s", method, path, w.Code, tt.status, w.Body)
				}
				if tt.status == 401 {
					if code, _ := errorOf(t, w.Body.Bytes()); code != engine.EUNAUTHORIZED {
						t.Fatalf("code = %s", code)
					}
					if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
						t.Fatalf("WWW-Authenticate = %q", w.Header().Get("WWW-Authenticate"))
					}
				}
			}
		})
	}
	// Using a token records when it was last used.
	toks, err := env.store.ListAPITokens(context.Background(), alice.ID)
	if err != nil || len(toks) != 1 || toks[0].LastUsedAt.IsZero() {
		t.Fatalf("tokens = %+v, %v", toks, err)
	}
}

func TestAssistantsAPI(t *testing.T) {
	env := mustEnv(t, envOptions{})
	zeta := env.MustAssistant("zeta", false)
	zeta.Tools, zeta.ToolPolicy = []string{"files__read", "files__write"}, map[string]engine.ToolMode{"files__write": engine.ToolAsk}
	if err := env.store.UpdateAssistant(context.Background(), zeta); err != nil {
		t.Fatal(err)
	}
	alpha := env.MustAssistant("alpha", true)
	tok := env.MustToken(env.MustUser("alice", engine.RoleViewer))
	w := env.get("/api/v1/assistants", tok)
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d", w.Code)
	}
	var got struct {
		Assistants []assistantJSON `json:"assistants"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := []assistantJSON{
		{ID: alpha.ID, Name: "alpha", Description: "Answers about alpha", IsDefault: true, Tools: []string{}, ToolPolicy: map[string]engine.ToolMode{}},
		{ID: zeta.ID, Name: "zeta", Description: "Answers about zeta", Tools: []string{"files__read", "files__write"},
			ToolPolicy: map[string]engine.ToolMode{"files__write": engine.ToolAsk}},
	}
	if !reflect.DeepEqual(got.Assistants, want) {
		t.Fatalf("assistants = %+v, want %+v", got.Assistants, want)
	}
}

func TestAcceptsEventStream(t *testing.T) {
	tests := map[string]bool{
		"":                                    false,
		"application/json":                    false,
		"text/event-stream":                   true,
		"application/json, text/event-stream": true,
		"text/event-stream;q=0":               false,
		"text/event-stream; q=0.5":            true,
		"*/*":                                 false,
	}
	for accept, want := range tests {
		if got := acceptsEventStream(accept); got != want {
			t.Errorf("acceptsEventStream(%q) = %v, want %v", accept, got, want)
		}
	}
}

func TestChatSSEKeepAlive(t *testing.T) {
	env := mustEnv(t, envOptions{Config: Config{SSEKeepAlive: 10 * time.Millisecond}})
	env.MustAssistant("helper", true)
	tok := env.MustToken(env.MustUser("alice", engine.RoleViewer))
	env.model.Script(enginetest.Reply{Chunks: []string{"slow ", "answer"}, Delay: 60 * time.Millisecond})
	w := env.postChat(tok, `{"message":"take your time"}`, "Accept", "text/event-stream")
	body := w.Body.String()
	if !strings.Contains(body, "\n\n: keep-alive\n\n") && !strings.HasPrefix(body, ": keep-alive\n\n") {
		t.Fatalf("no keep-alive comment in a quiet stream:\n%s", body)
	}
	events := parseSSE(t, strings.NewReader(body))
	if last := events[len(events)-1]; last.Name != "done" || mustAnswer(t, []byte(last.Data)).Answer != "slow answer" {
		t.Fatalf("last event = %+v", last)
	}
}
