// Package openaitest runs a scripted OpenAI-compatible HTTP server for tests.
//
// The server speaks the wire format OpenAI documents for
// /v1/chat/completions (streamed as server-sent events and not streamed),
// /v1/embeddings and /v1/models, and also the Azure OpenAI paths
// /openai/deployments/{deployment}/chat/completions and .../embeddings.
// Tests queue replies with Script; when the queue is empty the server echoes
// the last user message and cites [1]. Every request is recorded so tests can
// assert on the prompt, the model and the headers.
package openaitest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Interruption is how a scripted streamed reply breaks off.
type Interruption int

// Interruptions of a streamed reply, after Reply.InterruptAfter content chunks.
const (
	// Stall stops sending and keeps the connection open until the client
	// goes away or the server closes.
	Stall Interruption = iota + 1
	// Disconnect closes the connection abruptly, without finishing the
	// response.
	Disconnect
	// ErrorEvent sends an error object as an event (`data: {"error":...}`)
	// and ends the response, as OpenAI does for failures mid-stream.
	ErrorEvent
)

// Reply scripts the answer to one request.
type Reply struct {
	// Text is the answer. When Chunks is empty it is streamed word by word.
	Text string
	// Chunks are the content deltas of a streamed answer, in order; when set,
	// the answer is their concatenation and Text is ignored.
	Chunks []string
	// ToolCalls are streamed after the text, their arguments in fragments.
	ToolCalls []ToolCall
	// Model is the model the response names; default: the request's model.
	Model string
	// FinishReason defaults to "stop", or "tool_calls" with tool calls.
	FinishReason string
	// Usage is reported when the client asks for it (always when not
	// streaming); default: word counts of the prompt and the answer.
	Usage *Usage

	// Delay waits before the response starts.
	Delay time.Duration
	// ChunkDelay waits before each streamed chunk.
	ChunkDelay time.Duration

	// Status, when not 0 or 200, fails the request with this HTTP status and
	// an OpenAI error object carrying ErrorMessage and ErrorCode.
	Status       int
	ErrorMessage string
	ErrorCode    string
	// RetryAfter is sent as the Retry-After header when set, verbatim
	// (seconds or an HTTP date).
	RetryAfter string

	// Interrupt breaks a streamed reply off after InterruptAfter content
	// chunks were sent.
	Interrupt      Interruption
	InterruptAfter int
}

// ToolCall is a tool call a scripted reply makes.
type ToolCall struct {
	ID        string // default: call_<n>
	Name      string
	Arguments string // JSON object
}

// Usage counts the tokens of a reply.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// ChatRequest is a chat completion request as the server received it.
type ChatRequest struct {
	Model               string         `json:"model"`
	Messages            []Message      `json:"messages"`
	Stream              bool           `json:"stream"`
	StreamOptions       *StreamOptions `json:"stream_options,omitempty"`
	Temperature         *float64       `json:"temperature,omitempty"`
	MaxTokens           int            `json:"max_tokens,omitempty"`
	MaxCompletionTokens int            `json:"max_completion_tokens,omitempty"`
	Tools               []Tool         `json:"tools,omitempty"`

	// Path, Query and Header are how the request arrived (not part of the body).
	Path   string      `json:"-"`
	Query  string      `json:"-"`
	Header http.Header `json:"-"`
}

// StreamOptions are a streamed request's options.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// Message is one message of a chat request.
type Message struct {
	Role       string         `json:"role"`
	Content    string         `json:"content"`
	Name       string         `json:"name,omitempty"`
	ToolCalls  []WireToolCall `json:"tool_calls,omitempty"`
	ToolCallID string         `json:"tool_call_id,omitempty"`
}

// WireToolCall is a tool call as OpenAI's wire format spells it.
type WireToolCall struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments,omitempty"`
	} `json:"function"`
}

// Tool is a tool offered in a chat request.
type Tool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters,omitempty"`
	} `json:"function"`
}

// LastUserMessage returns the content of the request's last user message.
func (r ChatRequest) LastUserMessage() string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return r.Messages[i].Content
		}
	}
	return ""
}

// EmbeddingRequest is an embeddings request as the server received it.
type EmbeddingRequest struct {
	Model  string
	Input  []string
	Path   string
	Query  string
	Header http.Header
}

// DefaultDims is the size of the server's embedding vectors unless
// SetDims says otherwise.
const DefaultDims = 64

// Server is a scripted OpenAI-compatible server.
type Server struct {
	// URL is the server's root, like httptest.Server.URL; OpenAI clients
	// use BaseURL, Azure clients URL.
	URL string

	srv     *httptest.Server
	closing chan struct{}

	mu         sync.Mutex
	chat       []Reply
	embed      []Reply
	requests   []ChatRequest
	embeddings []EmbeddingRequest
	fallback   func(ChatRequest) Reply
	models     []string
	dims       int
	apiKey     string
	calls      int
}

// NewServer starts a server that is closed when the test ends.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{
		closing: make(chan struct{}),
		models:  []string{"test-model", "test-embedding"},
		dims:    DefaultDims,
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.srv.URL
	tb.Cleanup(s.Close)
	return s
}

// Close stops the server, ending stalled responses. It is safe to call
// more than once.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.closing:
		s.mu.Unlock()
		return
	default:
		close(s.closing)
	}
	s.mu.Unlock()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// BaseURL is the OpenAI-style base URL, URL + "/v1".
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// Script queues replies to the next chat completion requests, one each.
func (s *Server) Script(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chat = append(s.chat, replies...)
}

// ScriptEmbeddings queues replies to the next embeddings requests; only
// Status, ErrorMessage, ErrorCode, RetryAfter and Delay apply. A reply with
// no Status answers normally.
func (s *Server) ScriptEmbeddings(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.embed = append(s.embed, replies...)
}

// SetDefault sets the reply used when no scripted reply is queued. The
// default default echoes the last user message and cites [1].
func (s *Server) SetDefault(f func(ChatRequest) Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fallback = f
}

// SetModels sets the model ids /v1/models lists.
func (s *Server) SetModels(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.models = append([]string(nil), ids...)
}

// SetDims sets the size of embedding vectors.
func (s *Server) SetDims(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dims = n
}

// RequireAPIKey makes every request without this key (as a bearer token or
// Azure's api-key header) fail with 401.
func (s *Server) RequireAPIKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiKey = key
}

// Requests returns the chat completion requests received so far, including
// those answered with scripted failures.
func (s *Server) Requests() []ChatRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ChatRequest(nil), s.requests...)
}

// EmbeddingRequests returns the embeddings requests received so far.
func (s *Server) EmbeddingRequests() []EmbeddingRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]EmbeddingRequest(nil), s.embeddings...)
}

// Pending returns how many scripted chat replies are still queued.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.chat)
}

// EchoReply is the default reply: it repeats the last user message and
// cites the first passage.
func EchoReply(req ChatRequest) Reply {
	return Reply{Text: "You asked: " + req.LastUserMessage() + " [1]"}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if !s.authorized(r) {
		writeError(w, Reply{Status: http.StatusUnauthorized, ErrorMessage: "Incorrect API key provided.", ErrorCode: "invalid_api_key"})
		return
	}
	switch {
	case r.Method == http.MethodPost && (path == "/v1/chat/completions" || azurePath(path, "/chat/completions")):
		s.serveChat(w, r)
	case r.Method == http.MethodPost && (path == "/v1/embeddings" || azurePath(path, "/embeddings")):
		s.serveEmbeddings(w, r)
	case r.Method == http.MethodGet && (path == "/v1/models" || path == "/openai/models"):
		s.serveModels(w)
	default:
		writeError(w, Reply{Status: http.StatusNotFound, ErrorMessage: "Unknown request URL: " + r.Method + " " + path, ErrorCode: "unknown_url"})
	}
}

// azurePath reports whether path is /openai/deployments/{name}{suffix}.
func azurePath(path, suffix string) bool {
	rest, ok := strings.CutPrefix(path, "/openai/deployments/")
	if !ok {
		return false
	}
	name, ok := strings.CutSuffix(rest, suffix)
	return ok && name != "" && !strings.Contains(name, "/")
}

func (s *Server) authorized(r *http.Request) bool {
	s.mu.Lock()
	key := s.apiKey
	s.mu.Unlock()
	if key == "" {
		return true
	}
	return r.Header.Get("Authorization") == "Bearer "+key || r.Header.Get("api-key") == key
}

func (s *Server) serveChat(w http.ResponseWriter, r *http.Request) {
	var req ChatRequest
	body, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeError(w, Reply{Status: http.StatusBadRequest, ErrorMessage: "Invalid JSON body: " + err.Error(), ErrorCode: "invalid_request_error"})
		return
	}
	req.Path, req.Query, req.Header = r.URL.Path, r.URL.RawQuery, r.Header.Clone()

	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.calls++
	var reply Reply
	switch {
	case len(s.chat) > 0:
		reply, s.chat = s.chat[0], s.chat[1:]
	case s.fallback != nil:
		reply = s.fallback(req)
	default:
		reply = EchoReply(req)
	}
	s.mu.Unlock()

	if !s.wait(r, reply.Delay) {
		return
	}
	if reply.Status != 0 && reply.Status != http.StatusOK {
		writeError(w, reply)
		return
	}
	if reply.Model == "" {
		reply.Model = req.Model
	}
	usage := Usage{PromptTokens: promptWords(req), CompletionTokens: len(strings.Fields(reply.content()))}
	if reply.Usage != nil {
		usage = *reply.Usage
	}
	if usage.TotalTokens == 0 {
		usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
	}
	reply.Usage = &usage
	if reply.FinishReason == "" {
		reply.FinishReason = "stop"
		if len(reply.ToolCalls) > 0 {
			reply.FinishReason = "tool_calls"
		}
	}
	for i := range reply.ToolCalls {
		if reply.ToolCalls[i].ID == "" {
			reply.ToolCalls[i].ID = fmt.Sprintf("call_%d", i+1)
		}
	}
	id := fmt.Sprintf("chatcmpl-test%d", s.callNumber())
	if req.Stream {
		s.streamChat(w, r, id, req, reply)
		return
	}
	writeChat(w, id, reply)
}

func (s *Server) callNumber() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// content is the whole answer of a reply.
func (r Reply) content() string {
	if len(r.Chunks) > 0 {
		return strings.Join(r.Chunks, "")
	}
	return r.Text
}

// chunks is the answer split into streamed deltas.
func (r Reply) chunks() []string {
	if len(r.Chunks) > 0 {
		return r.Chunks
	}
	return splitWords(r.Text)
}

// splitWords splits text before each space run, so the pieces concatenate
// back to text: "a b" -> "a", " b".
func splitWords(text string) []string {
	var out []string
	start := 0
	for i := 1; i < len(text); i++ {
		if text[i] == ' ' && text[i-1] != ' ' {
			out = append(out, text[start:i])
			start = i
		}
	}
	if start < len(text) {
		out = append(out, text[start:])
	}
	return out
}

func promptWords(req ChatRequest) int {
	n := 0
	for _, m := range req.Messages {
		n += len(strings.Fields(m.Content))
	}
	return n
}

// wait sleeps for d unless the client goes away or the server closes.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.closing:
	}
	return false
}

type wireError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func errorBody(reply Reply) wireError {
	var e wireError
	e.Error.Message = reply.ErrorMessage
	if e.Error.Message == "" {
		e.Error.Message = http.StatusText(reply.Status)
	}
	e.Error.Type = "server_error"
	if reply.Status >= 400 && reply.Status < 500 {
		e.Error.Type = "invalid_request_error"
	}
	if reply.ErrorCode != "" {
		code := reply.ErrorCode
		e.Error.Code = &code
	}
	return e
}

func writeError(w http.ResponseWriter, reply Reply) {
	if reply.RetryAfter != "" {
		w.Header().Set("Retry-After", reply.RetryAfter)
	}
	writeJSON(w, reply.Status, errorBody(reply))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type wireFunction struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

type wireCall struct {
	Index    *int         `json:"index,omitempty"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function wireFunction `json:"function"`
}

func writeChat(w http.ResponseWriter, id string, reply Reply) {
	type message struct {
		Role      string     `json:"role"`
		Content   *string    `json:"content"`
		ToolCalls []wireCall `json:"tool_calls,omitempty"`
	}
	type choice struct {
		Index        int     `json:"index"`
		Message      message `json:"message"`
		FinishReason string  `json:"finish_reason"`
	}
	msg := message{Role: "assistant"}
	if c := reply.content(); c != "" || len(reply.ToolCalls) == 0 {
		msg.Content = &c
	}
	for _, tc := range reply.ToolCalls {
		msg.ToolCalls = append(msg.ToolCalls, wireCall{ID: tc.ID, Type: "function", Function: wireFunction{Name: tc.Name, Arguments: tc.Arguments}})
	}
	writeJSON(w, http.StatusOK, struct {
		ID      string   `json:"id"`
		Object  string   `json:"object"`
		Created int64    `json:"created"`
		Model   string   `json:"model"`
		Choices []choice `json:"choices"`
		Usage   *Usage   `json:"usage"`
	}{
		ID: id, Object: "chat.completion", Created: time.Now().Unix(), Model: reply.Model,
		Choices: []choice{{Message: msg, FinishReason: reply.FinishReason}},
		Usage:   reply.Usage,
	})
}

type streamDelta struct {
	Role      string     `json:"role,omitempty"`
	Content   *string    `json:"content,omitempty"`
	ToolCalls []wireCall `json:"tool_calls,omitempty"`
}

type streamChoice struct {
	Index        int         `json:"index"`
	Delta        streamDelta `json:"delta"`
	FinishReason *string     `json:"finish_reason"`
}

type streamChunk struct {
	ID      string         `json:"id"`
	Object  string         `json:"object"`
	Created int64          `json:"created"`
	Model   string         `json:"model"`
	Choices []streamChoice `json:"choices"`
	Usage   *Usage         `json:"usage,omitempty"`
}

// streamChat writes a reply as OpenAI streams it: a role chunk, content
// chunks, tool call chunks (id and name first, then argument fragments), a
// chunk with the finish reason, a usage chunk when asked for, then [DONE].
func (s *Server) streamChat(w http.ResponseWriter, r *http.Request, id string, req ChatRequest, reply Reply) {
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	created := time.Now().Unix()
	send := func(choices []streamChoice, usage *Usage) bool {
		if !s.wait(r, reply.ChunkDelay) {
			return false
		}
		b, _ := json.Marshal(streamChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: reply.Model, Choices: choices, Usage: usage})
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	delta := func(d streamDelta) []streamChoice { return []streamChoice{{Delta: d}} }

	empty := ""
	if !send(delta(streamDelta{Role: "assistant", Content: &empty}), nil) {
		return
	}
	for i, c := range reply.chunks() {
		if reply.Interrupt != 0 && i == reply.InterruptAfter {
			s.interrupt(w, r, flusher, reply)
			return
		}
		if !send(delta(streamDelta{Content: &c}), nil) {
			return
		}
	}
	if reply.Interrupt != 0 && reply.InterruptAfter >= len(reply.chunks()) {
		s.interrupt(w, r, flusher, reply)
		return
	}
	for i, tc := range reply.ToolCalls {
		idx := i
		first := wireCall{Index: &idx, ID: tc.ID, Type: "function", Function: wireFunction{Name: tc.Name}}
		if !send(delta(streamDelta{ToolCalls: []wireCall{first}}), nil) {
			return
		}
		for _, frag := range fragments(tc.Arguments, 3) {
			if !send(delta(streamDelta{ToolCalls: []wireCall{{Index: &idx, Function: wireFunction{Arguments: frag}}}}), nil) {
				return
			}
		}
	}
	finish := reply.FinishReason
	if !send([]streamChoice{{Delta: streamDelta{}, FinishReason: &finish}}, nil) {
		return
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		if !send([]streamChoice{}, reply.Usage) {
			return
		}
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
	if flusher != nil {
		flusher.Flush()
	}
}

func (s *Server) interrupt(w http.ResponseWriter, r *http.Request, flusher http.Flusher, reply Reply) {
	switch reply.Interrupt {
	case Stall:
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
	case Disconnect:
		if flusher != nil {
			flusher.Flush()
		}
		panic(http.ErrAbortHandler) // closes the connection without ending the response
	case ErrorEvent:
		if reply.Status == 0 {
			reply.Status = http.StatusInternalServerError
		}
		b, _ := json.Marshal(errorBody(reply))
		_, _ = fmt.Fprintf(w, "data: %s\n\n", b)
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// fragments splits s into about n pieces on byte boundaries that do not cut
// a UTF-8 sequence.
func fragments(s string, n int) []string {
	if s == "" {
		return nil
	}
	size := max(1, len(s)/n)
	var out []string
	for len(s) > 0 {
		end := min(size, len(s))
		for end < len(s) && s[end]&0xC0 == 0x80 { // continuation byte
			end++
		}
		out = append(out, s[:end])
		s = s[end:]
	}
	return out
}

func (s *Server) serveEmbeddings(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Model string          `json:"model"`
		Input json.RawMessage `json:"input"`
	}
	raw, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(raw, &body)
	}
	var input []string
	if err == nil {
		input, err = decodeInput(body.Input)
	}
	if err != nil {
		writeError(w, Reply{Status: http.StatusBadRequest, ErrorMessage: "Invalid embeddings request: " + err.Error(), ErrorCode: "invalid_request_error"})
		return
	}
	s.mu.Lock()
	s.embeddings = append(s.embeddings, EmbeddingRequest{Model: body.Model, Input: input, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone()})
	var reply Reply
	if len(s.embed) > 0 {
		reply, s.embed = s.embed[0], s.embed[1:]
	}
	dims := s.dims
	s.mu.Unlock()

	if !s.wait(r, reply.Delay) {
		return
	}
	if reply.Status != 0 && reply.Status != http.StatusOK {
		writeError(w, reply)
		return
	}
	type item struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	}
	data := make([]item, len(input))
	words := 0
	for i, text := range input {
		data[i] = item{Object: "embedding", Index: i, Embedding: Embedding(text, dims)}
		words += len(strings.Fields(text))
	}
	writeJSON(w, http.StatusOK, struct {
		Object string `json:"object"`
		Data   []item `json:"data"`
		Model  string `json:"model"`
		Usage  Usage  `json:"usage"`
	}{Object: "list", Data: data, Model: body.Model, Usage: Usage{PromptTokens: words, TotalTokens: words}})
}

// decodeInput accepts a string or an array of strings.
func decodeInput(raw json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("input must be a string or an array of strings")
	}
	if len(many) == 0 {
		return nil, fmt.Errorf("input must not be empty")
	}
	return many, nil
}

func (s *Server) serveModels(w http.ResponseWriter) {
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	s.mu.Lock()
	data := make([]model, 0, len(s.models))
	for _, id := range s.models {
		data = append(data, model{ID: id, Object: "model", Created: 1700000000, OwnedBy: "openaitest"})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: data})
}
