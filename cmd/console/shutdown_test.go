package main

import (
	"bufio"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/llm/openaitest"
)

// Stopping the console while an answer streams ends the stream with the
// partial answer and a note to ask again, within Close's grace.
func TestCloseEndsStreamsWithANote(t *testing.T) {
	llm := openaitest.NewServer(t)
	m := MustRunMain(t, func(c *config.Config) {
		c.LLM.BaseURL = llm.BaseURL()
		c.LLM.Model = "e2e-model"
	})
	m.StopGrace = 300 * time.Millisecond
	token := mustToken(t, m)
	llm.Script(openaitest.Reply{Chunks: []string{"The first half ", "never ends"}, Interrupt: openaitest.Stall, InterruptAfter: 1})
	resp := postChat(t, m, token, "text/event-stream", `{"message": "Tell me everything"}`)
	sc := bufio.NewScanner(resp.Body)
	var events []string
	for sc.Scan() && len(events) == 0 {
		if strings.HasPrefix(sc.Text(), "event: delta") {
			events = append(events, "delta")
		}
	}
	if len(events) == 0 {
		t.Fatal("the answer never started streaming")
	}
	closed := make(chan time.Duration, 1)
	start := time.Now()
	go func() { _ = m.Close(); closed <- time.Since(start) }()
	var rest strings.Builder
	for sc.Scan() {
		rest.WriteString(sc.Text() + "\n")
	}
	if !strings.Contains(rest.String(), "The server stopped while answering; please ask again in a minute.") {
		t.Fatalf("the stream ended without the note:\n%s", rest.String())
	}
	select {
	case d := <-closed:
		if d > 5*time.Second {
			t.Errorf("Close took %v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
}
