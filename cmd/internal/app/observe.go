package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/observe"
)

// OpenObserver returns the process's metrics and tracing (metrics.*,
// tracing.*): metrics are always collected, traces exported when
// tracing.otlp_endpoint is set.
func OpenObserver(cfg config.Config, logger *slog.Logger) (*observe.Observer, error) {
	o, err := observe.New(observe.Config{
		Service:      cfg.Tracing.ServiceName,
		OTLPEndpoint: cfg.Tracing.OTLPEndpoint,
		SampleRatio:  cfg.Tracing.SampleRatio,
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	if o.Tracing() {
		logger.Info("tracing on", "service", cfg.Tracing.ServiceName, "sample_ratio", cfg.Tracing.SampleRatio)
	}
	return o, nil
}

// metricsServer serves /metrics on metrics.addr.
type metricsServer struct {
	ln     net.Listener
	server *http.Server
}

// ObserveHTTP returns h, the handler of the process's listener, with its
// requests counted (route names them, see observe.HTTP) and, when
// metrics.enabled, GET /metrics answered: by h's listener, or by a
// listener of its own on metrics.addr when that is set (started here,
// stopped by Close).
func (a *App) ObserveHTTP(h http.Handler, route func(*http.Request) string) (http.Handler, error) {
	h = a.Observer.HTTP(h, route)
	cfg := a.Config.Metrics
	if !cfg.Enabled {
		return h, nil
	}
	metrics := a.Observer.MetricsHandler()
	if cfg.Addr != "" {
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("listen on metrics.addr %s: %w (choose a free port with CONVOSPHERE_METRICS_ADDR)", cfg.Addr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics)
		a.metrics = &metricsServer{ln: ln, server: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
		go func() {
			if err := a.metrics.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.Logger.Error("metrics listener stopped", "error", err)
			}
		}()
		a.Logger.Info("metrics served", "addr", ln.Addr().String(), "path", "/metrics")
		return h, nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			metrics.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}), nil
}

// MetricsAddr is the address of the metrics.addr listener; empty when
// /metrics is served on the process's listener, or not at all.
func (a *App) MetricsAddr() string {
	if a.metrics == nil {
		return ""
	}
	return a.metrics.ln.Addr().String()
}

// closeObserver stops the metrics listener and exports the last spans.
func (a *App) closeObserver() error {
	var errs []error
	if a.metrics != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		errs = append(errs, a.metrics.server.Shutdown(ctx))
		a.metrics = nil
	}
	if a.Observer != nil {
		errs = append(errs, a.Observer.Close())
	}
	return errors.Join(errs...)
}
