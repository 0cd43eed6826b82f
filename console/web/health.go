package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// healthz answers liveness probes: the process serves HTTP. It checks no
// dependency, so a database outage does not get the console restarted.
func (s *Server) healthz(c *gin.Context) {
	s.writeJSON(c, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers readiness probes from Deps.Ready.
func (s *Server) readyz(c *gin.Context) {
	if s.deps.Ready == nil {
		s.writeJSON(c, http.StatusOK, map[string]string{"status": "ready"})
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.ReadyTimeout)
	defer cancel()
	err := s.deps.Ready(ctx)
	if err == nil {
		if s.deps.Degraded != nil {
			if d := s.deps.Degraded(ctx); len(d) > 0 {
				s.log.WarnContext(ctx, "degraded", "problems", d)
				s.writeJSON(c, http.StatusOK, map[string]any{"status": "degraded", "degraded": d})
				return
			}
		}
		s.writeJSON(c, http.StatusOK, map[string]string{"status": "ready"})
		return
	}
	s.log.WarnContext(ctx, "not ready", "error", err)
	// The probe is unauthenticated: say what is wrong in the words of an
	// *engine.Error, never a raw cause (addresses, driver messages).
	msg := "A dependency is not ready; the server log has the details."
	var e *engine.Error
	if errors.As(err, &e) && e.Message != "" && e.Code != engine.EINTERNAL {
		msg = e.Message
	}
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "The readiness check timed out."
	}
	s.writeJSON(c, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": msg})
}
