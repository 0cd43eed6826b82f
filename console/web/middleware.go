package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// contentSecurityPolicy allows only the console's own scripts, styles and
// connections; no inline script, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// logRequests logs one line per request: method, path, status, duration.
// Query strings and bodies are never logged.
func (s *Server) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	level := slog.LevelInfo
	switch p := c.Request.URL.Path; {
	case p == "/healthz" || p == "/readyz" || len(p) > 8 && p[:8] == "/static/":
		level = slog.LevelDebug
	}
	attrs := []slog.Attr{
		slog.String("method", c.Request.Method),
		slog.String("path", c.Request.URL.Path),
		slog.Int("status", c.Writer.Status()),
		slog.Int64("duration_ms", time.Since(start).Milliseconds()),
		slog.String("client_ip", c.ClientIP()),
	}
	if p := principalOf(c); p != nil {
		attrs = append(attrs, slog.String("user_id", p.User.ID))
	}
	s.log.LogAttrs(c.Request.Context(), level, "http request", attrs...)
}

// recoverPanics turns a panic in a handler into a logged 500.
func (s *Server) recoverPanics(c *gin.Context) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
			panic(v)
		}
		s.log.ErrorContext(c.Request.Context(), "handler panicked", "method", c.Request.Method,
			"path", c.Request.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		if !c.Writer.Written() {
			s.failStatus(c, http.StatusInternalServerError, engine.EINTERNAL, internalMessage)
		}
		c.Abort()
	}()
	c.Next()
}

// securityHeaders sets the headers every response carries.
func (s *Server) securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	c.Next()
}

// rejectCrossOrigin refuses state-changing requests that a browser sent
// from another site (Sec-Fetch-Site or Origin), on top of the CSRF tokens.
func (s *Server) rejectCrossOrigin(c *gin.Context) {
	if err := s.origins.Check(c.Request); err != nil {
		s.fail(c, engine.Errorf(engine.EFORBIDDEN, "Cross-site requests are refused: use the console's own pages or an API token."))
		return
	}
	c.Next()
}
