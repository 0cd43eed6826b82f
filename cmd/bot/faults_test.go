package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convosphere/convosphere/cmd/internal/config"
	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/store/postgres"
	"github.com/convosphere/convosphere/store/postgres/pgtest"
)

// TestPostgresRestartDuringIngestion stops PostgreSQL while Slack events
// arrive: deliveries get 503 (so Slack retries them) instead of a 200 for
// an event that was not stored, and once the database is back every event
// is answered exactly once.
func TestPostgresRestartDuringIngestion(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a PostgreSQL server")
	}
	pg := pgtest.StartServer(t)
	db, err := postgres.Open(t.Context(), postgres.Config{URL: pg.URL()})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAssistant(t.Context(), &engine.Assistant{Name: "Guide", IsDefault: true}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	fake := &replicaSlack{}
	api := httptest.NewServer(fake)
	defer api.Close()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Bot.Addr = "127.0.0.1:0"
	cfg.Database.URL = pg.URL()
	cfg.Engine.TurnTimeout = 3 * time.Second
	cfg.RateLimits = config.RateLimits{}
	cfg.Slack = config.Slack{BotToken: "xoxb-pg", SigningSecret: slackSecret, Mode: "http", APIURL: api.URL + "/api/"}
	m := NewMain(cfg, slog.New(slog.DiscardHandler))
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })

	const events = 60
	var refused atomic.Int32 // deliveries answered 5xx or not at all while the database was down
	var wg sync.WaitGroup
	acked := make(chan int, events)
	for i := range events {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 40 * time.Millisecond) // spread over ~2.4 s
			body := mentionBody(fmt.Sprintf("EvPG%02d", i), 100+i)
			for retry := 0; ; retry++ { // as Slack does: again until a 200
				code, err := postSlack(m.Addr(), body, retry)
				if err == nil && code == http.StatusOK {
					acked <- i
					return
				}
				refused.Add(1)
				if retry > 200 {
					t.Errorf("event %d never acknowledged (last: %d %v)", i, code, err)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	for range events / 3 {
		<-acked
	}
	pg.Stop()
	time.Sleep(1500 * time.Millisecond)
	pg.Start()
	wg.Wait()
	if refused.Load() == 0 {
		t.Error("no delivery was refused while the database was down: the restart did not happen during ingestion")
	}

	deadline := time.Now().Add(60 * time.Second)
	for len(distinct(fake.snapshot())) < events && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	answers := fake.snapshot()
	if got := len(distinct(answers)); got != events {
		t.Fatalf("%d of %d events answered after the restart", got, events)
	}
	if len(answers) != events {
		t.Errorf("%d answers for %d events: some were answered twice", len(answers), events)
	}
}
