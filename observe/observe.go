// Package observe makes a ConvoSphere process observable: Prometheus
// metrics (a private registry served at /metrics), OpenTelemetry traces
// exported over OTLP/HTTP (one trace per inbound event, whichever replica
// receives and answers it) and log records that carry the ids of the
// event and span they were written for.
//
// It works by decoration, in the wiring (cmd/internal/app): Store counts
// the durable inbox's events, Model, Tools, Retriever and Handler time the
// engine's collaborators and turns, StartEvent (an engine.EventObserver)
// follows each event a worker claims, and HTTP counts requests. The
// engine itself knows nothing of metrics or traces.
package observe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/convosphere/convosphere/engine"
)

// instrumentation names the tracer of this package.
const instrumentation = "github.com/convosphere/convosphere/observe"

// Config configures metrics and tracing. The zero value collects metrics
// and traces nothing.
type Config struct {
	// Service is the service.name of the traces; default "convosphere".
	Service string
	// Version is the service.version of the traces (optional).
	Version string
	// OTLPEndpoint is the URL of an OTLP/HTTP receiver, e.g.
	// http://otel-collector:4318 (/v1/traces is added when the URL has no
	// path). Empty: tracing is off. The exporter also reads the standard
	// OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION and certificate
	// variables.
	OTLPEndpoint string
	// SampleRatio is the share of events traced, in (0, 1]; 0 means 1. The
	// decision follows the event's trace id, so every replica decides the
	// same for one event.
	SampleRatio float64
	// Exporter receives the spans instead of the OTLP exporter, which
	// turns tracing on (tests use tracetest.NewInMemoryExporter).
	Exporter sdktrace.SpanExporter
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		return engine.Errorf(engine.EINVALID, "observe: the sample ratio %g is not between 0 and 1", c.SampleRatio)
	}
	if c.OTLPEndpoint != "" {
		u, err := url.Parse(c.OTLPEndpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return engine.Errorf(engine.EINVALID, "observe: the OTLP endpoint %q is not an http:// or https:// URL", c.OTLPEndpoint)
		}
	}
	return nil
}

// Observer holds a process's metrics and tracer. Its methods decorate
// the engine's collaborators; all are safe for concurrent use.
type Observer struct {
	cfg      Config
	log      *slog.Logger
	registry *prometheus.Registry
	m        *metrics
	provider *sdktrace.TracerProvider // nil when tracing is off
	tracer   trace.Tracer             // a no-op tracer when tracing is off
	sampler  sdktrace.Sampler
	prop     propagation.TextMapPropagator
}

// New returns an observer: a private Prometheus registry with the Go and
// process collectors and ConvoSphere's metrics, and a tracer exporting to
// cfg.OTLPEndpoint (or cfg.Exporter) when one is set.
func New(cfg Config, logger *slog.Logger) (*Observer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Service == "" {
		cfg.Service = "convosphere"
	}
	if cfg.SampleRatio == 0 {
		cfg.SampleRatio = 1
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o := &Observer{
		cfg:      cfg,
		log:      logger.With("component", "observe"),
		registry: prometheus.NewRegistry(),
		tracer:   noop.NewTracerProvider().Tracer(instrumentation),
		sampler:  sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio)),
		prop:     propagation.TraceContext{},
	}
	o.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	o.m = newMetrics(o.registry)

	exp := cfg.Exporter
	if exp == nil && cfg.OTLPEndpoint != "" {
		endpoint := cfg.OTLPEndpoint
		if u, _ := url.Parse(endpoint); u.Path == "" || u.Path == "/" {
			endpoint = strings.TrimSuffix(endpoint, "/") + "/v1/traces"
		}
		// New does not connect: the batcher exports in the background.
		client, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(endpoint))
		if err != nil {
			return nil, fmt.Errorf("observe: OTLP exporter: %w", err)
		}
		exp = &loggingExporter{SpanExporter: client, log: o.log, endpoint: endpoint}
	}
	if exp != nil {
		res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
			attribute.String("service.name", cfg.Service), attribute.String("service.version", cfg.Version)))
		if err != nil {
			return nil, fmt.Errorf("observe: trace resource: %w", err)
		}
		o.provider = sdktrace.NewTracerProvider(
			sdktrace.WithBatcher(exp),
			sdktrace.WithResource(res),
			sdktrace.WithSampler(o.sampler),
			sdktrace.WithIDGenerator(idGenerator{}),
		)
		o.tracer = o.provider.Tracer(instrumentation)
	}
	return o, nil
}

// Tracing reports whether spans are exported.
func (o *Observer) Tracing() bool { return o.provider != nil }

// Registry is the process's Prometheus registry.
func (o *Observer) Registry() *prometheus.Registry { return o.registry }

// MetricsHandler serves the registry in the Prometheus text format (or
// OpenMetrics when asked).
func (o *Observer) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(o.registry, promhttp.HandlerOpts{
		Registry:          o.registry,
		EnableOpenMetrics: true,
		ErrorLog:          slog.NewLogLogger(o.log.Handler(), slog.LevelWarn),
	})
}

// Flush exports the spans that ended so far.
func (o *Observer) Flush(ctx context.Context) error {
	if o.provider == nil {
		return nil
	}
	return o.provider.ForceFlush(ctx)
}

// Close exports the remaining spans and stops the exporter, waiting up to
// five seconds.
func (o *Observer) Close() error {
	if o.provider == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := o.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("observe: flush traces: %w", err)
	}
	return nil
}

// loggingExporter logs failed exports once a minute at most, with the
// process's logger, and hides them from OpenTelemetry's global error
// handler (which would print them unstructured on every attempt).
type loggingExporter struct {
	sdktrace.SpanExporter
	log      *slog.Logger
	endpoint string

	mu     sync.Mutex
	last   time.Time
	failed int
}

func (e *loggingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failed += len(spans)
	if time.Since(e.last) >= time.Minute {
		e.log.WarnContext(ctx, "export traces failed; spans are dropped", "endpoint", e.endpoint, "dropped_spans", e.failed, "error", err)
		e.last, e.failed = time.Now(), 0
	}
	return nil
}

// label turns a platform into a metric label value.
func label(p engine.Platform) string {
	if p == "" {
		return "unknown"
	}
	return string(p)
}
