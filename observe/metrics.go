package observe

import "github.com/prometheus/client_golang/prometheus"

// namespace prefixes every metric of ConvoSphere.
const namespace = "convosphere"

// Histogram buckets, in seconds.
var (
	// turnBuckets: from a quick rejection to a long answer with tools.
	turnBuckets = []float64{0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300}
	// fastBuckets: a model's first token, a tool call, a search.
	fastBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	// waitBuckets: how long an event waits in the inbox for a worker.
	waitBuckets = []float64{0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}
	// httpBuckets: requests to the listeners.
	httpBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
)

// metrics are ConvoSphere's own collectors. Labels take bounded values
// only: platforms, outcomes, error codes, model and MCP server names as
// configured, route patterns; never user, channel or event ids.
type metrics struct {
	eventsReceived     *prometheus.CounterVec   // platform
	eventsAcknowledged *prometheus.CounterVec   // platform
	eventsDeduplicated *prometheus.CounterVec   // platform
	eventsProcessed    *prometheus.CounterVec   // platform, result
	eventsInFlight     *prometheus.GaugeVec     // platform
	eventWait          *prometheus.HistogramVec // platform
	eventProcessing    *prometheus.HistogramVec // platform

	replies          *prometheus.CounterVec   // platform, outcome
	replySeconds     *prometheus.HistogramVec // platform, outcome
	replyFirstUpdate *prometheus.HistogramVec // platform

	modelRequests   *prometheus.CounterVec   // model, outcome
	modelTokens     *prometheus.CounterVec   // model, type
	modelFirstToken *prometheus.HistogramVec // model
	modelSeconds    *prometheus.HistogramVec // model, outcome

	toolCalls        *prometheus.CounterVec   // server, outcome
	toolSeconds      *prometheus.HistogramVec // server
	retrievalSeconds *prometheus.HistogramVec // outcome

	errors *prometheus.CounterVec // component, kind

	httpRequests *prometheus.CounterVec   // route, method, code
	httpSeconds  *prometheus.HistogramVec // route, method
}

func newMetrics(reg prometheus.Registerer) *metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels)
		reg.MustRegister(h)
		return h
	}
	inFlight := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "events_in_flight",
		Help: "Inbox events a worker of this process is handling now."}, []string{"platform"})
	reg.MustRegister(inFlight)
	return &metrics{
		eventsReceived: counter("events_received_total",
			"Platform events the adapters wrote to the durable inbox (each delivery, duplicates and failures included).", "platform"),
		eventsAcknowledged: counter("events_acknowledged_total",
			"Platform events stored in the inbox for the first time, then acknowledged to the platform.", "platform"),
		eventsDeduplicated: counter("events_deduplicated_total",
			"Platform deliveries of an event already in the inbox (a platform retry): acknowledged, not handled again.", "platform"),
		eventsProcessed: counter("events_processed_total",
			"Inbox events a worker finished with: completed, retried (to be claimed again later) or dead_lettered.", "platform", "result"),
		eventsInFlight: inFlight,
		eventWait: histogram("event_wait_seconds",
			"Time an event waited in the inbox, from when it became available (received, or due again after a retry) to its claim.", waitBuckets, "platform"),
		eventProcessing: histogram("event_processing_seconds",
			"Time a worker spent on an event, from its claim to completing, retrying or dead-lettering it.", turnBuckets, "platform"),

		replies: counter("replies_total",
			"Turns that finished, by outcome (answered, extractive, no_answer, interrupted, failed, rejected, awaiting_approval).", "platform", "outcome"),
		replySeconds: histogram("reply_duration_seconds",
			"End-to-end time of a turn, from the message's receipt to its final reply (or notice) being posted.", turnBuckets, "platform", "outcome"),
		replyFirstUpdate: histogram("reply_first_update_seconds",
			"Time from a message's receipt to the first words of its answer shown to the user.", turnBuckets, "platform"),

		modelRequests: counter("model_requests_total",
			"Calls to the language model, by outcome (ok, error, canceled).", "model", "outcome"),
		modelTokens: counter("model_tokens_total",
			"Tokens of the language model calls as the provider reports them, by type (input, output).", "model", "type"),
		modelFirstToken: histogram("model_first_token_seconds",
			"Time from a call to the language model to its first streamed text or tool call.", fastBuckets, "model"),
		modelSeconds: histogram("model_duration_seconds",
			"Time of a whole language model call, until its stream ends.", turnBuckets, "model", "outcome"),

		toolCalls: counter("tool_calls_total",
			"Tool calls that ran, by MCP server (builtin for the built-in tools) and outcome (ok, error, timeout, denied, rejected).", "server", "outcome"),
		toolSeconds: histogram("tool_call_duration_seconds",
			"Time of a tool call.", fastBuckets, "server"),
		retrievalSeconds: histogram("retrieval_duration_seconds",
			"Time of a knowledge search of a turn, by outcome (ok, error).", fastBuckets, "outcome"),

		errors: counter("errors_total",
			"Errors by component (inbox, worker, turn, reply, model, tools, retrieval) and kind (the engine's error code: invalid, not_found, conflict, unauthorized, forbidden, too_large, unavailable, timeout, internal).", "component", "kind"),

		httpRequests: counter("http_requests_total",
			"HTTP requests to the process's listener, by route, method and status code.", "route", "method", "code"),
		httpSeconds: histogram("http_request_duration_seconds",
			"Time to answer an HTTP request (to its end: streamed answers included).", httpBuckets, "route", "method"),
	}
}

// fail counts an error of component by its engine error code.
func (m *metrics) fail(component string, err error) string {
	kind := engineCode(err)
	if kind == "" { // a failure reported without an error
		kind = "internal"
	}
	m.errors.WithLabelValues(component, kind).Inc()
	return kind
}
