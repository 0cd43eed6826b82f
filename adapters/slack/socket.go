package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/convosphere/convosphere/engine"
)

// Socket Mode timing.
const (
	helloTimeout    = 10 * time.Second // a new connection must say hello within
	socketReadIdle  = 2 * time.Minute  // no message or ping for this long: the connection is dead
	socketWriteWait = 10 * time.Second
	backoffMin      = time.Second
	backoffMax      = time.Minute
	linkDisabled    = 5 * time.Minute // wait before trying again after Slack disabled Socket Mode
)

// socketMessage is what Slack sends over a Socket Mode connection.
type socketMessage struct {
	Type       string          `json:"type"` // hello, events_api, interactive, slash_commands, disconnect
	EnvelopeID string          `json:"envelope_id"`
	Payload    json.RawMessage `json:"payload"`
	Reason     string          `json:"reason"` // disconnect: warning, refresh_requested, link_disabled
	RetryNum   int             `json:"retry_attempt"`
}

// socketClient keeps a Socket Mode connection open. Slack asks for a new
// connection now and then (a disconnect message: "warning" some seconds
// before it closes the old one, "refresh_requested"): the client opens the
// new one first and closes the old one once the new one said hello, so no
// event goes undelivered in between. Events delivered twice (on both, or
// redelivered after a missing ack) are acknowledged and dropped by the
// inbox. An event is acknowledged only once stored: if storing fails, no
// ack, and Slack delivers it again.
type socketClient struct {
	a    *Adapter
	live atomic.Int32 // connections open and past hello
}

func newSocketClient(a *Adapter) *socketClient { return &socketClient{a: a} }

func (s *socketClient) connected() bool { return s.live.Load() > 0 }

// sconn is one websocket connection.
type sconn struct {
	ws      *websocket.Conn
	writeMu sync.Mutex
	refresh chan string   // Slack asked for a new connection (the reason)
	closed  chan struct{} // the read loop ended
	err     error         // why, once closed
	once    sync.Once
}

func (c *sconn) close() {
	c.once.Do(func() { _ = c.ws.Close() })
}

func (c *sconn) ack(envelopeID string) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(socketWriteWait))
	return c.ws.WriteJSON(map[string]string{"envelope_id": envelopeID})
}

// run keeps one connection open until ctx ends.
func (s *socketClient) run(ctx context.Context) {
	log := s.a.log.With("mode", "socket")
	backoff := backoffMin
	var current *sconn
	defer func() {
		if current != nil {
			current.close()
		}
	}()
	for ctx.Err() == nil {
		if current == nil {
			c, err := s.open(ctx)
			if err != nil {
				wait := backoff
				if errors.Is(err, errLinkDisabled) {
					wait = linkDisabled
				}
				log.ErrorContext(ctx, "slack socket mode: cannot connect; retrying", "error", err, "retry_in_ms", wait.Milliseconds())
				s.a.report(ctx, engine.StatusReconnecting, "socket mode: "+err.Error())
				if !engine.Sleep(ctx, engine.Jitter(wait)) {
					return
				}
				backoff = min(backoff*2, backoffMax)
				continue
			}
			backoff = backoffMin
			current = c
			log.InfoContext(ctx, "slack socket mode connected")
			s.a.report(ctx, engine.StatusConnected, "socket mode")
		}
		select {
		case <-ctx.Done():
			return
		case <-current.closed:
			log.WarnContext(ctx, "slack socket mode connection closed; reconnecting", "error", current.err)
			s.a.report(ctx, engine.StatusReconnecting, "socket mode connection closed")
			current = nil
		case reason := <-current.refresh:
			log.InfoContext(ctx, "slack asked for a new socket mode connection", "reason", reason)
			next, err := s.open(ctx)
			if err != nil {
				// Keep the old one while it lasts; reconnect when it closes.
				log.WarnContext(ctx, "slack socket mode: new connection failed; keeping the old one", "error", err)
				continue
			}
			old := current
			current = next
			old.close()
		}
	}
}

var errLinkDisabled = errors.New("socket mode is disabled for this app (enable it in the app's settings)")

// open asks Slack for a connection URL (apps.connections.open), dials it
// and waits for hello; then the connection is read in the background.
func (s *socketClient) open(ctx context.Context) (*sconn, error) {
	octx, cancel := context.WithTimeout(ctx, helloTimeout+socketWriteWait)
	defer cancel()
	var wsURL string
	err := s.a.call(octx, "apps.connections.open", "", func(ctx context.Context) error {
		var err error
		_, wsURL, err = s.a.api.StartSocketModeContext(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	ws, resp, err := websocket.DefaultDialer.DialContext(octx, wsURL, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dial socket mode: %w", err)
	}
	ws.SetReadLimit(4 << 20)
	_ = ws.SetReadDeadline(time.Now().Add(helloTimeout))
	var hello socketMessage
	if err := ws.ReadJSON(&hello); err != nil {
		ws.Close()
		return nil, fmt.Errorf("socket mode hello: %w", err)
	}
	switch {
	case hello.Type == "disconnect" && hello.Reason == "link_disabled":
		ws.Close()
		return nil, errLinkDisabled
	case hello.Type != "hello":
		ws.Close()
		return nil, fmt.Errorf("socket mode: expected hello, got %q", hello.Type)
	}
	c := &sconn{ws: ws, refresh: make(chan string, 1), closed: make(chan struct{})}
	ws.SetPingHandler(func(data string) error {
		_ = ws.SetReadDeadline(time.Now().Add(socketReadIdle))
		c.writeMu.Lock()
		defer c.writeMu.Unlock()
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(socketWriteWait))
	})
	s.live.Add(1)
	s.a.wg.Go(func() {
		defer s.live.Add(-1)
		defer close(c.closed)
		defer c.close()
		c.err = s.read(context.WithoutCancel(ctx), c)
	})
	return c, nil
}

// read handles a connection's messages until it closes.
func (s *socketClient) read(ctx context.Context, c *sconn) error {
	for {
		_ = c.ws.SetReadDeadline(time.Now().Add(socketReadIdle))
		_, raw, err := c.ws.ReadMessage()
		if err != nil {
			return err
		}
		var m socketMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			// Not an envelope we can read (nor ack): skip it, keep the
			// connection; Slack redelivers what was not acknowledged.
			s.a.log.WarnContext(ctx, "slack socket mode: undecodable message skipped", "error", err, "bytes", len(raw))
			continue
		}
		switch m.Type {
		case "events_api":
			var env envelope
			if err := json.Unmarshal(m.Payload, &env); err != nil {
				s.a.log.WarnContext(ctx, "slack socket mode: undecodable event acknowledged and dropped", "error", err)
			} else if err := s.a.accept(ctx, env); err != nil {
				// Not stored: no ack, so Slack delivers it again.
				s.a.log.ErrorContext(ctx, "slack event not stored; not acknowledged", "event_id", env.EventID, "error", err)
				continue
			}
		case "interactive":
			if err := s.a.interaction(ctx, m.Payload); err != nil {
				s.a.log.ErrorContext(ctx, "slack interaction not recorded; not acknowledged", "error", err)
				continue
			}
		case "disconnect":
			if m.Reason == "link_disabled" {
				return errLinkDisabled
			}
			select {
			case c.refresh <- m.Reason:
			default:
			}
			continue
		case "hello":
			continue
		}
		if m.EnvelopeID != "" {
			if err := c.ack(m.EnvelopeID); err != nil {
				return fmt.Errorf("ack: %w", err)
			}
		}
	}
}
