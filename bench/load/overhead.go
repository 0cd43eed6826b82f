package main

import (
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
	"github.com/convosphere/convosphere/engine"
)

// turnTimes splits one trace's duration: the trace runs from the adapter
// receiving the event (msg.ReceivedAt) until the answer was posted
// (Engine.finish; saving the trace itself is after).
type turnTimes struct {
	Total    time.Duration // the trace's duration
	Received time.Duration // "received": receipt to Engine.Handle: inbox write, wait, claim, PrepareMessage, replier set-up
	Model    time.Duration // "model" steps: request to the model's last chunk, with the streamed edits of the answer
	Posted   time.Duration // "posted": the replier's Finish, the last platform calls
	Engine   time.Duration // Total - Received - Model: the engine's own time
}

// splitTrace splits a trace's duration by its steps; ok is false for a
// trace that is not a model answer (no model step).
func splitTrace(t *engine.Trace) (turnTimes, bool) {
	tt := turnTimes{Total: t.Duration}
	model := false
	for _, s := range t.Steps {
		switch s.Name {
		case engine.StepReceived:
			tt.Received += s.Duration
		case engine.StepModel:
			tt.Model += s.Duration
			model = true
		case engine.StepPosted:
			tt.Posted += s.Duration
		}
	}
	tt.Engine = tt.Total - tt.Received - tt.Model
	return tt, model && t.Outcome == engine.OutcomeAnswered && tt.Engine >= 0
}

// overhead summarises the engine's time per answered message.
type overhead struct {
	Traces   int              `json:"traces"`   // every trace of the scenario
	Answered int              `json:"answered"` // traces of model answers, measured here
	Engine   benchkit.Latency `json:"engine"`   // Total - Received - Model
	// EngineNoPost leaves out the posted step too: only the engine's own
	// work (assistant, history, retrieval, saving the turns, the gaps).
	EngineNoPost benchkit.Latency            `json:"engine_without_posting"`
	Steps        map[string]benchkit.Latency `json:"steps"`           // per step name, over the answered traces
	Outcomes     map[string]int              `json:"outcomes"`        // every trace
	EngineMS     []float64                   `json:"-"`               // for the plot
	Errors       int                         `json:"trace_errors"`    // traces with an error
	ErrorSample  string                      `json:"error,omitempty"` // one of them
}

func summariseTraces(traces []*engine.Trace) overhead {
	o := overhead{Traces: len(traces), Steps: map[string]benchkit.Latency{}, Outcomes: map[string]int{}}
	var eng, noPost []time.Duration
	steps := map[string][]time.Duration{}
	for _, t := range traces {
		o.Outcomes[string(t.Outcome)]++
		if t.Error != "" {
			o.Errors++
			if o.ErrorSample == "" {
				o.ErrorSample = t.Error
			}
		}
		tt, ok := splitTrace(t)
		if !ok {
			continue
		}
		o.Answered++
		eng = append(eng, tt.Engine)
		noPost = append(noPost, tt.Engine-tt.Posted)
		o.EngineMS = append(o.EngineMS, benchkit.Millis(tt.Engine))
		perStep := map[string]time.Duration{}
		for _, s := range t.Steps {
			perStep[s.Name] += s.Duration
		}
		for name, d := range perStep {
			steps[name] = append(steps[name], d)
		}
	}
	o.Engine = benchkit.Summarise(eng)
	o.EngineNoPost = benchkit.Summarise(noPost)
	for name, ds := range steps {
		o.Steps[name] = benchkit.Summarise(ds)
	}
	return o
}
