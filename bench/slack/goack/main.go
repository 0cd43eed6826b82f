// Command goack is the bench's reference point for the machine: the
// smallest Slack Events API app in Go. It verifies each request's signature
// with slack-go's SecretsVerifier, answers url_verification, and acks every
// other event with 200 without storing or parsing it. No ConvoSphere code
// runs in it; bench/slack measures it beside the bot and Bolt to show what
// the load generator and the machine allow any Go server to reach.
//
// Environment: ADDR (host:port to listen on), SLACK_SIGNING_SECRET.
package main

import (
	"bytes"
	"errors"
	"io"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/slack-go/slack"
)

func main() {
	secret := os.Getenv("SLACK_SIGNING_SECRET")
	if secret == "" {
		log.Fatal("goack: SLACK_SIGNING_SECRET is empty")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /slack/events", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read the body", http.StatusBadRequest)
			return
		}
		v, err := slack.NewSecretsVerifier(r.Header, secret)
		if err == nil {
			_, _ = v.Write(body)
			err = v.Ensure()
		}
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if bytes.Contains(body, []byte(`"type":"url_verification"`)) {
			http.Error(w, "url_verification is not handled by this bench app", http.StatusNotImplemented)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	srv := &http.Server{Addr: os.Getenv("ADDR"), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
