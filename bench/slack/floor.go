package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convosphere/convosphere/bench/internal/benchkit"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/store/sqlite"
)

// StoreFloor is what the embedded store's durable inbox write costs on its
// own: concurrent (*sqlite.DB).Enqueue calls (the group commit a bot's ack
// waits for) in the bench process, with no HTTP, no signature check and no
// JSON decoding. Its CPU time per event is a floor for an ack that
// includes this write, whatever the code around it.
type StoreFloor struct {
	Concurrency     int     `json:"concurrency"`
	Events          int     `json:"events"`
	Seconds         float64 `json:"seconds"`
	EventsPerSec    float64 `json:"events_per_sec"`
	CPUCores        float64 `json:"cpu_cores"`
	CPUMicrosPerEvt float64 `json:"cpu_us_per_event"`
	Failed          string  `json:"failed,omitempty"`
}

// floorPayload is an inbox payload the size and shape of what the Slack
// adapter stores for an app_mention (the message and its Slack details).
func floorPayload(n int) []byte {
	p := struct {
		engine.Message
		Slack map[string]any `json:"slack"`
	}{
		Message: engine.Message{
			ID: "EvFLOOR" + strconv.Itoa(n),
			Thread: engine.Thread{Channel: engine.Channel{Platform: engine.PlatformSlack, ID: benchChannel},
				ID: fmt.Sprintf("1700000000.%06d", n%1_000_000)},
			User:       engine.ChatUser{ID: "U0ASKER" + strconv.Itoa(n%100)},
			Text:       "question " + strconv.Itoa(n),
			ReceivedAt: time.Now().UTC(),
		},
		Slack: map[string]any{"ts": fmt.Sprintf("1700000000.%06d", n%1_000_000), "team": benchTeam},
	}
	b, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	return b
}

// measureStoreFloor runs concurrency writers against a fresh embedded store
// in dir for d and reports the process's CPU time per stored event. The
// payloads are built before the clock starts.
func measureStoreFloor(ctx context.Context, dir string, concurrency int, d time.Duration) *StoreFloor {
	res := &StoreFloor{Concurrency: concurrency}
	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "floor.db")})
	if err != nil {
		res.Failed = err.Error()
		return res
	}
	defer db.Close()
	// Enough payloads for any rate this machine could reach, reused in turn
	// with distinct event ids.
	payloads := make([][]byte, 4096)
	for i := range payloads {
		payloads[i] = floorPayload(i)
	}
	var (
		next    atomic.Int64
		stored  atomic.Int64
		failure atomic.Value
		wg      sync.WaitGroup
	)
	cpu0, t0 := benchkit.SelfCPUSeconds(), time.Now()
	deadline := t0.Add(d)
	for range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				n := int(next.Add(1))
				p := payloads[n%len(payloads)]
				_, err := db.Enqueue(ctx, &engine.InboxEvent{Platform: engine.PlatformSlack,
					EventID:   "EvFLOOR" + strconv.Itoa(n),
					ThreadKey: "slack:" + benchChannel + ":1700000000." + strconv.Itoa(n), Payload: p})
				if err != nil {
					failure.CompareAndSwap(nil, err.Error())
					return
				}
				stored.Add(1)
			}
		})
	}
	wg.Wait()
	wall, cpu1 := time.Since(t0).Seconds(), benchkit.SelfCPUSeconds()
	if f, _ := failure.Load().(string); f != "" {
		res.Failed = f
	}
	res.Events, res.Seconds = int(stored.Load()), wall
	if wall > 0 {
		res.EventsPerSec = float64(res.Events) / wall
	}
	if cpu0 >= 0 && cpu1 >= cpu0 && wall > 0 && res.Events > 0 {
		res.CPUCores = (cpu1 - cpu0) / wall
		res.CPUMicrosPerEvt = (cpu1 - cpu0) / float64(res.Events) * 1e6
	}
	return res
}
