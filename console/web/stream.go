package web

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/convosphere/convosphere/engine"
)

// chatStream answers as server-sent events: "delta" events as the answer
// grows, "status" events while the assistant works, then one "done" event
// with the same object as the JSON response, or one "error" event.
func (s *Server) chatStream(c *gin.Context, msg engine.Message) {
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	c.Writer.Flush() // send the headers now: the client knows the stream started

	sse := &sseReplier{w: c.Writer, last: time.Now()}
	stop := sse.keepAlive(s.cfg.SSEKeepAlive)
	ans, err := s.deps.Chat.Handle(c.Request.Context(), msg, sse)
	stop()
	if ans == nil {
		ans = sse.final
	}
	switch {
	case ans == nil:
		_, detail := s.describe(c, engine.WrapError(engine.EINTERNAL, err, "chat returned no answer"), "")
		sse.send("error", errorBody{Error: detail})
	case err == nil, ans.Outcome == engine.OutcomeInterrupted:
		sse.send("done", chatResponseFor(principalOf(c), ans))
	default:
		_, detail := s.describe(c, err, ans.TraceID)
		sse.send("error", errorBody{Error: detail, TraceID: ans.TraceID, ConversationID: ans.ConversationID})
	}
	if werr := sse.writeErr(); werr != nil {
		s.log.InfoContext(c.Request.Context(), "event stream closed early", "error", werr)
	}
}

// sseReplier writes the engine's updates as server-sent events, flushing
// after each. The final event is written by chatStream once Handle has
// returned, because only then is the error (if any) known.
type sseReplier struct {
	mu    sync.Mutex
	w     gin.ResponseWriter
	last  time.Time // last write, for the keep-alive
	err   error     // first write error; later writes are skipped
	final *engine.Answer
}

// Update implements engine.Replier.
func (r *sseReplier) Update(_ context.Context, u engine.Update) error {
	if u.Delta == "" {
		return nil
	}
	return r.send("delta", map[string]string{"text": u.Delta})
}

// Status implements engine.StatusReporter.
func (r *sseReplier) Status(_ context.Context, status string) error {
	return r.send("status", map[string]string{"status": status})
}

// Finish implements engine.Replier; the answer is sent by chatStream.
func (r *sseReplier) Finish(_ context.Context, a engine.Answer) error {
	r.mu.Lock()
	r.final = &a
	r.mu.Unlock()
	return r.writeErr()
}

// send writes one event. The data is JSON on one line.
func (r *sseReplier) send(event string, data any) error {
	b, err := marshalJSON(data)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", event, err)
	}
	return r.write(fmt.Appendf(nil, "event: %s\ndata: %s\n\n", event, b))
}

func (r *sseReplier) write(b []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	if _, err := r.w.Write(b); err != nil {
		r.err = err
		return err
	}
	r.w.Flush()
	r.last = time.Now()
	return nil
}

func (r *sseReplier) writeErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// keepAlive writes a comment line whenever the stream has been quiet for
// every, so proxies do not close it while the model thinks. The returned
// function stops it and waits until it has stopped.
func (r *sseReplier) keepAlive(every time.Duration) (stop func()) {
	if every <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				r.mu.Lock()
				quiet := time.Since(r.last) >= every
				r.mu.Unlock()
				if quiet {
					_ = r.write([]byte(": keep-alive\n\n"))
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}
