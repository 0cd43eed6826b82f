package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// chatRequest is the body of POST /api/v1/chat.
type chatRequest struct {
	Message        string `json:"message"`
	Assistant      string `json:"assistant"`
	ConversationID string `json:"conversation_id"`
}

// chatResponse is the answer of POST /api/v1/chat and the data of the SSE
// "done" event. conversation_id, answer, citations and trace_id are the
// contract; the other fields may be added to, never removed.
type chatResponse struct {
	ConversationID string         `json:"conversation_id"`
	Answer         string         `json:"answer"`
	Citations      []chatCitation `json:"citations"`
	TraceID        string         `json:"trace_id"`
	Outcome        engine.Outcome `json:"outcome"`
	Notice         string         `json:"notice,omitempty"`
	// AnswerHTML is the answer rendered from Markdown, sent to the
	// Playground (signed-in browsers) only.
	AnswerHTML string `json:"answer_html,omitempty"`
	// Approval is set when the outcome is awaiting_approval: the tool
	// calls waiting for the asker (or an admin) to approve or reject them
	// with POST /api/v1/tool-approvals/{id}.
	Approval *approvalJSON `json:"approval,omitempty"`
}

type chatCitation struct {
	Index         int    `json:"index"`
	Document      string `json:"document"`
	Title         string `json:"title"`
	Snippet       string `json:"snippet"`
	Section       string `json:"section,omitempty"`
	KnowledgeBase string `json:"knowledge_base,omitempty"`
}

func chatResponseOf(a *engine.Answer) chatResponse {
	r := chatResponse{
		ConversationID: a.ConversationID, Answer: a.Text, TraceID: a.TraceID,
		Outcome: a.Outcome, Notice: a.Notice, Citations: make([]chatCitation, 0, len(a.Citations)),
	}
	for _, c := range a.Citations {
		r.Citations = append(r.Citations, chatCitation{
			Index: c.Index, Document: c.Document, Title: c.Title, Snippet: c.Snippet,
			Section: c.Section, KnowledgeBase: c.KnowledgeBase,
		})
	}
	if a.Outcome == engine.OutcomeAwaiting && a.Approval != nil {
		ap := approvalJSONOf(a.Approval, time.Time{})
		r.Approval = &ap
	}
	return r
}

// chatResponseFor adds the rendered answer for the Playground.
func chatResponseFor(p *principal, a *engine.Answer) chatResponse {
	r := chatResponseOf(a)
	if p != nil && p.Session != nil {
		r.AnswerHTML = renderMarkdown(a.Text)
	}
	return r
}

// maxIDBytes bounds identifiers and names in a chat request.
const maxIDBytes = 128

// chat answers one message: as one JSON object, or as a server-sent event
// stream when the client accepts text/event-stream. Every check on the
// input happens before the engine is called, so bad input stores nothing.
func (s *Server) chat(c *gin.Context) {
	p := principalOf(c)
	req, err := s.readChatRequest(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	msg, err := s.chatMessage(c, p.User, req)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.answer(c, msg)
}

// answer runs msg through the engine and answers like POST /api/v1/chat:
// a server-sent event stream when the client accepts text/event-stream,
// else one JSON object. A turn that waits for a tool approval is an
// answer (outcome awaiting_approval, with the approval), not an error.
func (s *Server) answer(c *gin.Context, msg engine.Message) {
	// An answer may take minutes: lift a server-wide write timeout for this
	// response (the engine's turn timeout bounds it).
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})
	if acceptsEventStream(c.GetHeader("Accept")) {
		s.chatStream(c, msg)
		return
	}
	rep := &collectReplier{}
	ans, err := s.deps.Chat.Handle(c.Request.Context(), msg, rep)
	if ans == nil {
		ans = rep.answer
	}
	switch {
	case ans == nil:
		s.fail(c, engine.WrapError(engine.EINTERNAL, err, "chat returned no answer"))
	case err == nil, ans.Outcome == engine.OutcomeInterrupted:
		s.writeJSON(c, http.StatusOK, chatResponseFor(principalOf(c), ans))
	default:
		if ans.RetryAfter > 0 {
			c.Header("Retry-After", strconv.Itoa(max(1, int((ans.RetryAfter+time.Second-1)/time.Second))))
		}
		s.failTrace(c, err, ans.TraceID)
	}
}

// readChatRequest reads and checks the body. The order matters: size,
// then UTF-8 on the raw bytes (encoding/json would silently replace bad
// bytes), then JSON, then the message itself.
func (s *Server) readChatRequest(c *gin.Context) (*chatRequest, error) {
	if err := checkJSONContentType(c.GetHeader("Content-Type")); err != nil {
		return nil, err
	}
	limit := int64(s.cfg.MaxMessageBytes)*2 + 8<<10
	raw, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, engine.Errorf(engine.ETOOLARGE, "The request body is over %d bytes: send a shorter message (at most %d bytes).", limit, s.cfg.MaxMessageBytes)
		}
		return nil, engine.WrapError(engine.EINVALID, err, "The request body could not be read; send it again.")
	}
	if !utf8.Valid(raw) {
		return nil, engine.Errorf(engine.EINVALID, "The request body is not valid UTF-8 (first bad byte at offset %d): send the JSON as UTF-8.", firstInvalidUTF8(raw))
	}
	req, err := decodeChatRequest(raw)
	if err != nil {
		return nil, err
	}
	if err := engine.ValidateText(req.Message, s.cfg.MaxMessageBytes); err != nil {
		return nil, err
	}
	for _, f := range []struct{ name, value string }{{"assistant", req.Assistant}, {"conversation_id", req.ConversationID}} {
		if len(f.value) > maxIDBytes || strings.ContainsFunc(f.value, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, engine.Errorf(engine.EINVALID, "Field %q must be at most %d bytes with no control characters.", f.name, maxIDBytes)
		}
	}
	req.Assistant = strings.TrimSpace(req.Assistant)
	req.ConversationID = strings.TrimSpace(req.ConversationID)
	return req, nil
}

// checkJSONContentType accepts any body that may hold JSON text: the JSON
// is what is checked, so clients that leave the header out or send curl's
// default (application/x-www-form-urlencoded) still work. Multipart bodies
// and charsets other than UTF-8 cannot be JSON as this API reads it.
func checkJSONContentType(header string) error {
	if header == "" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(header)
	if err == nil && strings.HasPrefix(mt, "multipart/") {
		err = errors.New("multipart")
	}
	if err != nil {
		return &engine.Error{Code: errUnsupportedMediaType, Message: "Send the request body as JSON with the header Content-Type: application/json."}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return &engine.Error{Code: errUnsupportedMediaType, Message: fmt.Sprintf("Charset %q is not supported: send the JSON as UTF-8.", cs)}
	}
	return nil
}

// errUnsupportedMediaType is a console-only code for a 415 answer.
const errUnsupportedMediaType = "unsupported_media_type"

// chatForm describes the chat request in decoding errors.
var chatForm = jsonForm{
	Example: `{"message": "Hello"}`,
	Fields:  `"message", "assistant" and "conversation_id"`,
	Hint:    `send a JSON object with "message" and optionally "assistant" and "conversation_id"`,
}

// decodeChatRequest decodes exactly one JSON object with known fields and
// says where a malformed body went wrong.
func decodeChatRequest(raw []byte) (*chatRequest, error) {
	var req chatRequest
	if err := decodeJSONBody(raw, &req, chatForm); err != nil {
		return nil, err
	}
	return &req, nil
}

// jsonForm describes a JSON request body, so that decoding errors can say
// what a good one looks like.
type jsonForm struct {
	Example string // a small valid body
	Fields  string // the known fields, in words
	Hint    string // what to send, for errors with no better explanation
}

// decodeJSONBody decodes raw, which must be exactly one JSON object with
// only the fields of v, into v.
func decodeJSONBody(raw []byte, v any, form jsonForm) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return engine.Errorf(engine.EINVALID, "The request body is empty: send a JSON object such as %s.", form.Example)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(raw, err, form)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		off := dec.InputOffset()
		line, col := position(raw, off)
		return engine.Errorf(engine.EINVALID, "The request body has more data after the JSON object, at line %d, column %d: send exactly one object.", line, col)
	}
	return nil
}

// jsonError explains a decoding error in words, with the position.
func jsonError(raw []byte, err error, form jsonForm) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		// Offset counts the offending byte too; point at it.
		off := syntax.Offset
		if strings.HasPrefix(syntax.Error(), "invalid character") && off > 0 {
			off--
		}
		line, col := position(raw, off)
		return engine.Errorf(engine.EINVALID, "The request body is not valid JSON: %s at line %d, column %d (byte %d).", syntax.Error(), line, col, off)
	case errors.Is(err, io.ErrUnexpectedEOF):
		line, col := position(raw, int64(len(raw)))
		return engine.Errorf(engine.EINVALID, "The request body is not valid JSON: it ends too early, at line %d, column %d; close every string, object and array.", line, col)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return engine.Errorf(engine.EINVALID, "The request body must be a JSON object such as %s, not a JSON %s.", form.Example, typ.Value)
		}
		line, col := position(raw, typ.Offset)
		return engine.Errorf(engine.EINVALID, "Field %q must be %s, not a JSON %s (line %d, column %d).", typ.Field, jsonKind(typ.Type), typ.Value, line, col)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return engine.Errorf(engine.EINVALID, "Unknown field %s: the fields are %s.", name, form.Fields)
	}
	return engine.WrapError(engine.EINVALID, err, "The request body is not valid: %s.", form.Hint)
}

// jsonKind names the JSON value a Go type decodes from.
func jsonKind(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a JSON value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// position converts a byte offset into a 1-based line and column.
func position(raw []byte, off int64) (line, col int) {
	if off > int64(len(raw)) {
		off = int64(len(raw))
	}
	before := raw[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
	return line, col
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
}

// chatMessage checks the assistant and the conversation and builds the
// engine message. A conversation is only visible to its owner and to admins.
func (s *Server) chatMessage(c *gin.Context, user *engine.User, req *chatRequest) (engine.Message, error) {
	ctx := c.Request.Context()
	ch := engine.Channel{Platform: engine.PlatformConsole, ID: "user:" + user.ID}
	var conv *engine.Conversation
	if req.ConversationID != "" {
		notFound := engine.Errorf(engine.ENOTFOUND, "Conversation %q does not exist: leave conversation_id out to start a new conversation.", req.ConversationID)
		var err error
		conv, err = s.deps.Store.ConversationByID(ctx, req.ConversationID)
		switch {
		case engine.IsNotFound(err):
			return engine.Message{}, notFound
		case err != nil:
			return engine.Message{}, engine.WrapError(engine.EUNAVAILABLE, err, "The conversation could not be loaded; please try again in a minute.")
		case conv.UserID != user.ID && user.Role != engine.RoleAdmin:
			return engine.Message{}, notFound
		}
	}
	// With a conversation and no assistant, the conversation's assistant
	// answers; otherwise resolve it here exactly as the engine will, so that
	// an unknown name is refused before anything is stored.
	if conv == nil || req.Assistant != "" {
		all, err := s.deps.Store.ListAssistants(ctx)
		if err != nil {
			return engine.Message{}, engine.WrapError(engine.EUNAVAILABLE, err, "The assistants could not be loaded; please try again in a minute.")
		}
		a, err := engine.ResolveAssistant(all, ch, req.Assistant)
		if err != nil {
			return engine.Message{}, err
		}
		if conv != nil && conv.AssistantID != a.ID {
			return engine.Message{}, engine.Errorf(engine.EINVALID, "Conversation %q belongs to another assistant: leave the assistant out, or leave conversation_id out to start a new conversation.", conv.ID)
		}
	}
	return engine.Message{
		ID:             engine.NewID(),
		Thread:         engine.Thread{Channel: ch, ID: ""},
		User:           engine.ChatUser{ID: user.ID, Name: user.Name},
		Text:           req.Message,
		ReceivedAt:     s.now(),
		Assistant:      req.Assistant,
		ConversationID: req.ConversationID,
	}, nil
}

// acceptsEventStream reports whether an Accept header asks for
// text/event-stream (with a non-zero quality).
func acceptsEventStream(accept string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || mt != "text/event-stream" {
			continue
		}
		if q, ok := params["q"]; ok && strings.Trim(q, "0.") == "" {
			continue
		}
		return true
	}
	return false
}

// collectReplier keeps the final answer for a JSON response.
type collectReplier struct {
	answer *engine.Answer
}

// Update implements engine.Replier; a JSON response waits for the end.
func (r *collectReplier) Update(_ context.Context, _ engine.Update) error { return nil }

// Finish implements engine.Replier.
func (r *collectReplier) Finish(_ context.Context, a engine.Answer) error {
	r.answer = &a
	return nil
}
