package openai

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"sort"
	"strings"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/convosphere/convosphere/engine"
)

// Stream streams a chat completion. Events are text deltas, one
// EventToolCall per complete tool call, EventUsage when the server reports
// usage, then exactly one EventDone or EventError, after which the channel
// is closed. Failures before anything was delivered are retried; a stream
// that already delivered events is never retried, so text is not repeated.
// When ctx ends the stream stops promptly.
func (p *Provider) Stream(ctx context.Context, req engine.ChatRequest) (<-chan engine.StreamEvent, error) {
	creq, err := p.chatRequest(req)
	if err != nil {
		return nil, err
	}
	out := make(chan engine.StreamEvent, 8)
	go p.stream(ctx, creq, out)
	return out, nil
}

// reasoningPrefixes name OpenAI's reasoning models, which take
// max_completion_tokens and no temperature.
var reasoningPrefixes = []string{"o1", "o3", "o4", "gpt-5", "gpt-6"}

func isReasoningModel(model string) bool {
	for _, p := range reasoningPrefixes {
		if strings.HasPrefix(model, p) {
			return true
		}
	}
	return false
}

// emptySchema is the parameters of a tool that takes no arguments.
var emptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

// chatRequest converts an engine request to OpenAI's wire request.
func (p *Provider) chatRequest(req engine.ChatRequest) (goopenai.ChatCompletionRequest, error) {
	model := req.Model
	if model == "" {
		model = p.cfg.Model
	}
	creq := goopenai.ChatCompletionRequest{
		Model:         model,
		Stream:        true,
		StreamOptions: &goopenai.StreamOptions{IncludeUsage: true},
	}
	if isReasoningModel(model) {
		creq.MaxCompletionTokens = req.MaxTokens
	} else {
		creq.MaxTokens = req.MaxTokens
		creq.Temperature = float32(req.Temperature)
		if creq.Temperature == 0 {
			// go-openai omits a zero temperature; this sends (about) 0 as asked.
			creq.Temperature = math.SmallestNonzeroFloat32
		}
	}
	if len(req.Messages) == 0 {
		return creq, engine.Errorf(engine.EINVALID, "The request to the language model has no messages.")
	}
	for _, m := range req.Messages {
		switch m.Role {
		case engine.RoleSystem, engine.RoleUser, engine.RoleAssistant, engine.RoleTool:
		default:
			return creq, engine.Errorf(engine.EINVALID, "Chat role %q is unknown: use system, user, assistant or tool.", m.Role)
		}
		cm := goopenai.ChatCompletionMessage{Role: string(m.Role), Content: m.Content, ToolCallID: m.ToolCallID}
		if m.Role == engine.RoleTool && cm.Content == "" {
			cm.Content = "(no output)" // OpenAI rejects a tool result without content
		}
		for _, tc := range m.ToolCalls {
			args := tc.Arguments
			if strings.TrimSpace(args) == "" {
				args = "{}"
			}
			cm.ToolCalls = append(cm.ToolCalls, goopenai.ToolCall{
				ID: tc.ID, Type: goopenai.ToolTypeFunction,
				Function: goopenai.FunctionCall{Name: tc.Name, Arguments: args},
			})
		}
		creq.Messages = append(creq.Messages, cm)
	}
	for _, t := range req.Tools {
		if t.Name == "" {
			return creq, engine.Errorf(engine.EINVALID, "A tool offered to the language model has no name.")
		}
		schema := t.InputSchema
		if len(schema) == 0 {
			schema = emptySchema
		} else if !json.Valid(schema) {
			return creq, engine.Errorf(engine.EINVALID, "Tool %q has an input schema that is not valid JSON.", t.Name)
		}
		creq.Tools = append(creq.Tools, goopenai.Tool{
			Type:     goopenai.ToolTypeFunction,
			Function: &goopenai.FunctionDefinition{Name: t.Name, Description: t.Description, Parameters: schema},
		})
	}
	return creq, nil
}

// stream runs attempts until one succeeds, one fails after delivering
// events, or the retries are spent.
func (p *Provider) stream(ctx context.Context, creq goopenai.ChatCompletionRequest, out chan<- engine.StreamEvent) {
	defer close(out)
	s := &streamer{ctx: ctx, out: out, model: creq.Model}
	for retry := 0; ; retry++ {
		a := &attempt{}
		err := p.streamOnce(withAttempt(ctx, a), creq, s)
		if err == nil {
			s.finish(engine.StreamEvent{Kind: engine.EventDone})
			return
		}
		eerr, retryable := p.classify(ctx, opChat, creq.Model, err, a)
		if s.delivered || !retryable || retry >= p.retry.maxRetries {
			s.finish(engine.StreamEvent{Kind: engine.EventError, Err: eerr})
			return
		}
		d := p.retry.delay(retry, a)
		// The consumer's stall watchdog allows for the wait. (When ctx has
		// ended, the pause below says so.)
		_ = s.send(engine.StreamEvent{Kind: engine.EventWait, Wait: d})
		if err := p.pauseFor(ctx, opChat, creq.Model, retry, d, a, err); err != nil {
			s.finish(engine.StreamEvent{Kind: engine.EventError, Err: err})
			return
		}
	}
}

// streamOnce makes one attempt, sending events as they come.
func (p *Provider) streamOnce(ctx context.Context, creq goopenai.ChatCompletionRequest, s *streamer) error {
	stream, err := p.client.CreateChatCompletionStream(ctx, creq)
	if err != nil {
		return err
	}
	defer stream.Close()
	var (
		calls  toolCallBuffer
		finish goopenai.FinishReason
		usage  *goopenai.Usage
	)
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if chunk.Model != "" {
			s.model = chunk.Model
		}
		if chunk.Usage != nil {
			usage = chunk.Usage
		}
		for _, ch := range chunk.Choices {
			if ch.Index != 0 {
				continue
			}
			for _, text := range []string{ch.Delta.Content, ch.Delta.Refusal} {
				if text == "" {
					continue
				}
				if err := s.send(engine.StreamEvent{Kind: engine.EventText, Text: text}); err != nil {
					return err
				}
			}
			calls.add(ch.Delta.ToolCalls)
			if ch.FinishReason != "" && ch.FinishReason != goopenai.FinishReasonNull {
				finish = ch.FinishReason
			}
		}
	}
	switch finish {
	case "":
		return errTruncated
	case goopenai.FinishReasonContentFilter:
		return engine.Errorf(engine.EUNAVAILABLE, "The language model's content filter stopped the answer; please rephrase the question.")
	}
	for _, tc := range calls.complete() {
		if tc.Name == "" {
			p.log.WarnContext(ctx, "drop tool call without a name", "model", s.model, "tool_call_id", tc.ID)
			continue
		}
		if err := s.send(engine.StreamEvent{Kind: engine.EventToolCall, ToolCall: tc}); err != nil {
			return err
		}
	}
	if usage != nil {
		u := engine.Usage{InputTokens: usage.PromptTokens, OutputTokens: usage.CompletionTokens}
		if err := s.send(engine.StreamEvent{Kind: engine.EventUsage, Usage: u}); err != nil {
			return err
		}
	}
	return nil
}

// streamer sends one stream's events and remembers whether any were sent.
type streamer struct {
	ctx       context.Context
	out       chan<- engine.StreamEvent
	model     string
	delivered bool
}

func (s *streamer) send(ev engine.StreamEvent) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	ev.Model = s.model
	select {
	case s.out <- ev:
		// A wait delivers nothing of the answer: the next attempt may
		// still be retried.
		s.delivered = s.delivered || ev.Kind != engine.EventWait
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

// finish sends the last event. When ctx has ended it is delivered only if
// the reader is still there (or the buffer has room): the channel is closed
// right after either way.
func (s *streamer) finish(ev engine.StreamEvent) {
	ev.Model = s.model
	if s.ctx.Err() == nil {
		select {
		case s.out <- ev:
			return
		case <-s.ctx.Done():
		}
	}
	select {
	case s.out <- ev:
	default:
	}
}

// toolCallBuffer accumulates streamed tool call fragments. OpenAI sends the
// id and name first and the arguments in pieces, all keyed by index; some
// servers send whole calls without an index.
type toolCallBuffer struct {
	calls map[int]*engine.ToolCall
	last  int
}

func (b *toolCallBuffer) add(deltas []goopenai.ToolCall) {
	for _, d := range deltas {
		if b.calls == nil {
			b.calls = map[int]*engine.ToolCall{}
		}
		idx := b.last
		switch {
		case d.Index != nil:
			idx = *d.Index
		case d.ID != "":
			idx = len(b.calls)
			for i, tc := range b.calls {
				if tc.ID == d.ID {
					idx = i
				}
			}
		}
		tc := b.calls[idx]
		if tc == nil {
			tc = &engine.ToolCall{}
			b.calls[idx] = tc
		}
		if d.ID != "" {
			tc.ID = d.ID
		}
		if tc.Name == "" {
			tc.Name = d.Function.Name
		}
		tc.Arguments += d.Function.Arguments
		b.last = idx
	}
}

// complete returns the calls in index order, with an id and at least an
// empty arguments object.
func (b *toolCallBuffer) complete() []*engine.ToolCall {
	idx := make([]int, 0, len(b.calls))
	for i := range b.calls {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	out := make([]*engine.ToolCall, 0, len(idx))
	for _, i := range idx {
		tc := b.calls[i]
		if tc.ID == "" {
			tc.ID = newCallID()
		}
		if strings.TrimSpace(tc.Arguments) == "" {
			tc.Arguments = "{}"
		}
		out = append(out, tc)
	}
	return out
}

func newCallID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "call_" + hex.EncodeToString(b)
}
