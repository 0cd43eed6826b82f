package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// internalMessage is all a client learns about an internal error; the
// details go to the log, once.
const internalMessage = "Something went wrong on the server. It has been logged; please try again."

// httpStatus translates an engine error code into an HTTP status. This is
// the only place where that happens.
func httpStatus(code string) int {
	switch code {
	case engine.EINVALID:
		return http.StatusBadRequest
	case engine.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case engine.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case engine.EFORBIDDEN:
		return http.StatusForbidden
	case engine.ENOTFOUND:
		return http.StatusNotFound
	case engine.ECONFLICT:
		return http.StatusConflict
	case engine.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case engine.ETIMEOUT:
		return http.StatusGatewayTimeout
	case engine.ERATELIMITED:
		return http.StatusTooManyRequests
	case errUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	}
	return http.StatusInternalServerError
}

// errorDetail is the body of every JSON error:
// {"error": {"code": "invalid", "message": "…"}, "trace_id": "…"}.
type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type errorBody struct {
	Error          errorDetail `json:"error"`
	TraceID        string      `json:"trace_id,omitempty"`
	ConversationID string      `json:"conversation_id,omitempty"`
}

// isAPI reports whether the request is for the JSON API (errors as JSON).
func isAPI(c *gin.Context) bool {
	return strings.HasPrefix(c.Request.URL.Path, "/api/")
}

// describe turns err into the status, code and message shown to the
// client, logging it when it is the server's fault. Each failure passes
// here once, so it is logged once.
func (s *Server) describe(c *gin.Context, err error, traceID string) (int, errorDetail) {
	code := engine.ErrorCode(err)
	status := httpStatus(code)
	msg := engine.ErrorMessage(err)
	attrs := []any{"method", c.Request.Method, "path", c.Request.URL.Path, "code", code, "error", err}
	if traceID != "" {
		attrs = append(attrs, "trace_id", traceID)
	}
	switch {
	case status == http.StatusInternalServerError:
		s.log.ErrorContext(c.Request.Context(), "request failed", attrs...)
		code, msg = engine.EINTERNAL, internalMessage
	case code == engine.EUNAVAILABLE || code == engine.ETIMEOUT:
		s.log.WarnContext(c.Request.Context(), "request failed", attrs...)
	}
	return status, errorDetail{Code: code, Message: msg}
}

// fail answers with err: a JSON error under /api/, an error page elsewhere.
func (s *Server) fail(c *gin.Context, err error) {
	s.failTrace(c, err, "")
}

// failTrace is fail with the trace id of the turn that failed.
func (s *Server) failTrace(c *gin.Context, err error, traceID string) {
	status, detail := s.describe(c, err, traceID)
	if status == http.StatusUnauthorized && isAPI(c) {
		c.Header("WWW-Authenticate", `Bearer realm="convosphere"`)
	}
	s.failStatus(c, status, detail.Code, detail.Message, traceID)
}

// failStatus answers with an explicit status and code (for the statuses
// with no engine code: 405, 415, 429).
func (s *Server) failStatus(c *gin.Context, status int, code, message string, traceID ...string) {
	if isAPI(c) {
		body := errorBody{Error: errorDetail{Code: code, Message: message}}
		if len(traceID) > 0 {
			body.TraceID = traceID[0]
		}
		s.writeJSON(c, status, body)
		c.Abort()
		return
	}
	v := s.newView(c, http.StatusText(status))
	v.Page = errorPage{Status: status, Code: code, Message: message}
	s.render(c, status, "error", v)
	c.Abort()
}

// errorPage is the data of the error page.
type errorPage struct {
	Status  int
	Code    string
	Message string
}

// marshalJSON encodes v on one line without escaping <, > and &.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// writeJSON writes v as the JSON response.
func (s *Server) writeJSON(c *gin.Context, status int, v any) {
	b, err := marshalJSON(v)
	if err != nil {
		s.log.ErrorContext(c.Request.Context(), "encode json response", "path", c.Request.URL.Path, "error", err)
		status = http.StatusInternalServerError
		b, _ = marshalJSON(errorBody{Error: errorDetail{Code: engine.EINTERNAL, Message: internalMessage}})
	}
	c.Header("Cache-Control", "no-store")
	c.Data(status, "application/json; charset=utf-8", append(b, '\n'))
}

// render executes page name into a buffer first, so that a template error
// becomes a clean 500 instead of half a page.
func (s *Server) render(c *gin.Context, status int, name string, v *view) {
	t, ok := s.pages[name]
	var buf bytes.Buffer
	err := errors.New("no such page")
	if ok {
		err = t.ExecuteTemplate(&buf, "layout", v)
	}
	if err != nil {
		s.log.ErrorContext(c.Request.Context(), "render page", "page", name, "error", err)
		c.Header("Cache-Control", "no-store")
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte(internalMessage+"\n"))
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// redirect sends the browser to a local path.
func redirect(c *gin.Context, status int, location string) {
	c.Header("Cache-Control", "no-store")
	c.Redirect(status, location)
	c.Abort()
}

func notFoundError(path string) error {
	return engine.Errorf(engine.ENOTFOUND, "There is nothing at %s: check the address.", path)
}
