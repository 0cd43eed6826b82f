package slack

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

var next atomic.Int64

// BenchmarkAck measures the acknowledgement path of one Events API
// delivery (verify, decode, store in the inbox), without the workers and
// without the network, with 32 deliveries in flight (as bench/slack).
func BenchmarkAck(b *testing.B) {
	f := newFakeSlack(b)
	db := MustStore(b)
	h := MustAdapter(b, f, db).Handler()
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = eventBody(fmt.Sprintf("EvB%08d", i), mention("<@UBOT> question", fmt.Sprintf("1700000000.%06d", i), ""))
	}
	now := time.Now().Unix()
	b.ReportAllocs()
	b.ResetTimer()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1)) - 1
			if w := serve(h, request("/slack/events", "application/json", bodies[i%len(bodies)], now, testSecret)); w.Code != 200 {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}
