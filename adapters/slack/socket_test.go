package slack

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func eventsAPIEnvelope(envelopeID, eventID string, retry int) map[string]any {
	var payload map[string]any
	_ = json.Unmarshal(eventBody(eventID, mention("<@UBOT> over the socket", "1700000000.000001", "")), &payload)
	return map[string]any{
		"envelope_id": envelopeID, "payload": payload, "type": "events_api",
		"accepts_response_payload": false, "retry_attempt": retry, "retry_reason": "",
	}
}

func waitAck(t *testing.T, s *fakeSocket, want string) {
	t.Helper()
	select {
	case got := <-s.acks:
		if got != want {
			t.Fatalf("ack for %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no ack for %s", want)
	}
}

func nextConn(t *testing.T, s *fakeSocket) *websocket.Conn {
	t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no socket mode connection")
		return nil
	}
}

// TestSocketMode: events arrive over the websocket and are acknowledged
// once stored; a redelivered envelope is acknowledged and dropped; on a
// disconnect warning the client opens the new connection before it lets
// the old one go.
func TestSocketMode(t *testing.T) {
	f := newFakeSlack(t)
	sock := newFakeSocket(t)
	f.socketURL = sock.URL()
	db := MustStore(t)
	a := MustAdapter(t, f, db, func(c *Config) { c.Mode = ModeSocket; c.AppToken = "xapp-test"; c.SigningSecret = "" })

	first := nextConn(t, sock)
	if err := first.WriteJSON(eventsAPIEnvelope("env-1", "EvS1", 0)); err != nil {
		t.Fatal(err)
	}
	waitAck(t, sock, "env-1")
	// Slack did not see the ack in time and delivers again.
	if err := first.WriteJSON(eventsAPIEnvelope("env-2", "EvS1", 1)); err != nil {
		t.Fatal(err)
	}
	waitAck(t, sock, "env-2")
	if evs := inboxEvents(t, db); len(evs) != 1 || evs[0].EventID != "EvS1" {
		t.Fatalf("inbox %+v, want EvS1 once", evs)
	}
	if err := a.Ready(); err != nil {
		t.Errorf("Ready = %v while connected", err)
	}

	// Slack warns that this connection will close: a second one opens
	// while the first is still up.
	if err := first.WriteJSON(map[string]any{"type": "disconnect", "reason": "warning", "debug_info": map[string]any{"host": "fake"}}); err != nil {
		t.Fatal(err)
	}
	second := nextConn(t, sock)
	// The client closes the first once the second said hello.
	select {
	case c := <-sock.closed:
		if c != first {
			t.Error("the new connection closed instead of the old one")
		}
	case <-time.After(5 * time.Second):
		t.Error("the old connection is still open after the new one said hello")
	}
	if err := second.WriteJSON(eventsAPIEnvelope("env-3", "EvS2", 0)); err != nil {
		t.Fatal(err)
	}
	waitAck(t, sock, "env-3")
	if evs := inboxEvents(t, db); len(evs) != 1 || evs[0].EventID != "EvS2" {
		t.Fatalf("inbox %+v, want EvS2", evs)
	}
	if n := f.count("apps.connections.open"); n != 2 {
		t.Errorf("apps.connections.open called %d times, want 2", n)
	}

	// The connection drops without warning: the client reconnects.
	second.Close()
	third := nextConn(t, sock)
	if err := third.WriteJSON(eventsAPIEnvelope("env-4", "EvS3", 0)); err != nil {
		t.Fatal(err)
	}
	waitAck(t, sock, "env-4")
	if err := a.Close(); err != nil {
		t.Error(err)
	}
}

// TestSocketModeNoAckWhenNotStored: an event the inbox cannot store is
// not acknowledged, so Slack delivers it again.
func TestSocketModeNoAckWhenNotStored(t *testing.T) {
	f := newFakeSlack(t)
	sock := newFakeSocket(t)
	f.socketURL = sock.URL()
	MustAdapter(t, f, failingInbox{MustStore(t)}, func(c *Config) { c.Mode = ModeSocket; c.AppToken = "xapp-test"; c.SigningSecret = "" })
	c := nextConn(t, sock)
	if err := c.WriteJSON(eventsAPIEnvelope("env-1", "EvS1", 0)); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteJSON(map[string]any{"envelope_id": "env-2", "type": "slash_commands", "payload": map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	// The next ack is for the slash command: the event got none.
	waitAck(t, sock, "env-2")
}
