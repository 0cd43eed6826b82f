package observe

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/convosphere/convosphere/engine"
)

// Tool and retrieval span attributes.
const (
	attrToolName       = attribute.Key("gen_ai.tool.name")
	attrToolServer     = attribute.Key("convosphere.tool.server")
	attrToolOutcome    = attribute.Key("convosphere.tool.outcome")
	attrPassages       = attribute.Key("convosphere.retrieval.passages")
	attrSearchMode     = attribute.Key("convosphere.retrieval.mode")
	attrKnowledgeBases = attribute.Key("convosphere.retrieval.knowledge_bases")
)

// toolSeparator joins an MCP server's name and its tool's name in the
// names the tool set offers (tools.Separator; observe imports the engine only).
const toolSeparator = "__"

// ToolServer is the MCP server of a full tool name (server__tool);
// "builtin" for the built-in tools and for names without a server.
func ToolServer(tool string) string {
	server, _, ok := strings.Cut(tool, toolSeparator)
	if !ok || server == "" {
		return "builtin"
	}
	return server
}

// Tools returns ts with its calls observed: counted by server and outcome,
// timed, and traced as tool.call spans. Calls the engine refuses itself
// (denied by the assistant's policy, waiting for an approval) never reach
// the tool set and are not counted.
func (o *Observer) Tools(ts engine.ToolSet) engine.ToolSet { return &toolSet{next: ts, o: o} }

type toolSet struct {
	next engine.ToolSet
	o    *Observer
}

func (t *toolSet) Tools(ctx context.Context, a *engine.Assistant) ([]engine.ToolSpec, error) {
	specs, err := t.next.Tools(ctx, a)
	if err != nil {
		t.o.m.fail("tools", err)
	}
	return specs, err
}

func (t *toolSet) Call(ctx context.Context, inv engine.ToolInvocation) engine.ToolResult {
	server := ToolServer(inv.Call.Name)
	ctx, span := t.o.tracer.Start(ctx, "tool.call", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attrToolName.String(inv.Call.Name), attrToolServer.String(server)))
	defer span.End()
	start := time.Now()
	r := t.next.Call(ctx, inv)
	outcome := r.Outcome
	if outcome == "" {
		outcome = engine.ToolOK
		if r.IsError {
			outcome = engine.ToolError
		}
	}
	t.o.m.toolCalls.WithLabelValues(server, outcome).Inc()
	t.o.m.toolSeconds.WithLabelValues(server).Observe(time.Since(start).Seconds())
	span.SetAttributes(attrToolOutcome.String(outcome))
	if r.IsError {
		span.SetStatus(codes.Error, outcome)
	}
	return r
}

// Retriever returns r with its searches timed, their failures counted and
// each traced as a knowledge.retrieve span.
func (o *Observer) Retriever(r engine.Retriever) engine.Retriever { return &retriever{next: r, o: o} }

type retriever struct {
	next engine.Retriever
	o    *Observer
}

func (r *retriever) Retrieve(ctx context.Context, req engine.RetrievalRequest) (*engine.Retrieval, error) {
	ctx, span := r.o.tracer.Start(ctx, "knowledge.retrieve", trace.WithAttributes(attrKnowledgeBases.StringSlice(req.KnowledgeBases)))
	defer span.End()
	start := time.Now()
	res, err := r.next.Retrieve(ctx, req)
	outcome := "ok"
	if err != nil {
		outcome = "error"
		r.o.m.fail("retrieval", err)
		setError(span, err)
	} else if res != nil {
		span.SetAttributes(attrPassages.Int(len(res.Passages)), attrSearchMode.String(string(res.Applied.Mode)))
	}
	r.o.m.retrievalSeconds.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	return res, err
}
