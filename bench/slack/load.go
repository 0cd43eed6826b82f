package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The bench's Slack workspace: the bot user that every event mentions.
const (
	benchTeam    = "T0BENCH"
	benchApp     = "A0BENCH"
	benchBotUser = "U0BOT"
	benchBotID   = "B0BOT"
	benchChannel = "C0BENCH"
	eventsPath   = "/slack/events"
)

// signature is Slack's request signature: "v0=" and the hex HMAC-SHA256,
// keyed by the signing secret, of "v0:" + timestamp + ":" + body
// (https://api.slack.com/authentication/verifying-requests-from-slack).
func signature(secret, timestamp string, body []byte) string {
	return newSigner(secret).sign(timestamp, body)
}

// signer signs requests with one reusable HMAC, for one goroutine.
type signer struct {
	mac hash.Hash
	sum []byte
	out []byte
}

func newSigner(secret string) *signer {
	return &signer{mac: hmac.New(sha256.New, []byte(secret))}
}

func (s *signer) sign(timestamp string, body []byte) string {
	s.mac.Reset()
	io.WriteString(s.mac, "v0:"+timestamp+":")
	s.mac.Write(body)
	s.sum = s.mac.Sum(s.sum[:0])
	s.out = append(s.out[:0], "v0="...)
	s.out = hex.AppendEncode(s.out, s.sum)
	return string(s.out)
}

// newSecret is a random signing secret for one run.
func newSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Event callback payload, modelled on Slack's app_mention example
// (https://api.slack.com/events/app_mention).
type eventCallback struct {
	Token              string          `json:"token"`
	TeamID             string          `json:"team_id"`
	APIAppID           string          `json:"api_app_id"`
	Event              appMention      `json:"event"`
	Type               string          `json:"type"`
	EventID            string          `json:"event_id"`
	EventTime          json.Number     `json:"event_time"`
	Authorizations     []authorization `json:"authorizations"`
	IsExtSharedChannel bool            `json:"is_ext_shared_channel"`
	EventContext       string          `json:"event_context"`
}

type appMention struct {
	Type    string `json:"type"`
	User    string `json:"user"`
	Text    string `json:"text"`
	TS      string `json:"ts"`
	Channel string `json:"channel"`
	EventTS string `json:"event_ts"`
}

type authorization struct {
	EnterpriseID        *string `json:"enterprise_id"`
	TeamID              string  `json:"team_id"`
	UserID              string  `json:"user_id"`
	IsBot               bool    `json:"is_bot"`
	IsEnterpriseInstall bool    `json:"is_enterprise_install"`
}

// Placeholders in the payload template, filled in for each request.
const (
	phEventID   = "{{event_id}}"
	phUser      = "{{user}}"
	phN         = "{{n}}"
	phTS        = "{{ts}}"
	phEventTime = `"{{event_time}}"` // a number: the quotes go too
)

// payloadMaker builds distinct app_mention payloads from a template
// encoded once, so the load loop does no JSON encoding: payload n has the
// event_id Ev<run tag><n>, its own message ts and the text
// "<@U0BOT> question n".
type payloadMaker struct {
	tag    string // makes event ids unique across runs
	baseTS int64  // message ts seconds of payload 0
	pieces []string
	fields []string // fields[i] follows pieces[i]
}

func newPayloadMaker(start time.Time) *payloadMaker {
	ev := eventCallback{
		Token:    "bench-verification-token",
		TeamID:   benchTeam,
		APIAppID: benchApp,
		Event: appMention{Type: "app_mention", User: phUser, Text: "<@" + benchBotUser + "> question " + phN,
			TS: phTS, Channel: benchChannel, EventTS: phTS},
		Type:           "event_callback",
		EventID:        phEventID,
		EventTime:      "0",
		Authorizations: []authorization{{TeamID: benchTeam, UserID: benchBotUser, IsBot: true}},
		EventContext:   "4-eyJldCI6ImFwcF9tZW50aW9uIiwidGlkIjoiVDBCRU5DSCIsImFpZCI6IkEwQkVOQ0gifQ",
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // Slack sends "<@U0BOT>" as it is
	if err := enc.Encode(ev); err != nil {
		panic(err)
	}
	tmpl := strings.Replace(strings.TrimSpace(b.String()), `"event_time":0`, `"event_time":`+phEventTime, 1)
	m := &payloadMaker{tag: strings.ToUpper(strconv.FormatInt(start.Unix(), 36)), baseTS: start.Unix()}
	for {
		i, ph := firstPlaceholder(tmpl)
		if i < 0 {
			m.pieces = append(m.pieces, tmpl)
			return m
		}
		m.pieces = append(m.pieces, tmpl[:i])
		m.fields = append(m.fields, ph)
		tmpl = tmpl[i+len(ph):]
	}
}

func firstPlaceholder(s string) (int, string) {
	at, which := -1, ""
	for _, ph := range []string{phEventID, phUser, phN, phTS, phEventTime} {
		if i := strings.Index(s, ph); i >= 0 && (at < 0 || i < at) {
			at, which = i, ph
		}
	}
	return at, which
}

// Append appends payload n, sent at now, to dst.
func (m *payloadMaker) Append(dst []byte, n uint64, now time.Time) []byte {
	for i, p := range m.pieces {
		dst = append(dst, p...)
		if i == len(m.fields) {
			break
		}
		switch m.fields[i] {
		case phEventID:
			dst = append(dst, "Ev"...)
			dst = append(dst, m.tag...)
			dst = appendPadded(dst, n, 9)
		case phUser:
			dst = append(dst, "U0ASKER"...)
			dst = appendPadded(dst, n%100, 2)
		case phN:
			dst = strconv.AppendUint(dst, n, 10)
		case phTS:
			dst = strconv.AppendInt(dst, m.baseTS+int64(n/1_000_000), 10)
			dst = append(dst, '.')
			dst = appendPadded(dst, n%1_000_000, 6)
		case phEventTime:
			dst = strconv.AppendInt(dst, now.Unix(), 10)
		}
	}
	return dst
}

func appendPadded(dst []byte, v uint64, width int) []byte {
	s := strconv.AppendUint(nil, v, 10)
	for range width - len(s) {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// loadConfig is one load run against one server.
type loadConfig struct {
	URL         string // POST target
	Secret      string
	Concurrency int
	Warmup      time.Duration
	Duration    time.Duration // measured window, when Requests is 0
	Requests    int           // measured requests, when not 0
	Timeout     time.Duration // per request
	Maker       *payloadMaker
}

// loadResult is what one load run measured. Requests sent during the
// warm-up count only towards the failure check.
type loadResult struct {
	Requests       int             // measured: answered or failed
	Errors         int             // measured: not 2xx or no answer
	Seconds        float64         // the measured window
	Latencies      []time.Duration // measured, sorted
	WarmupRequests int
	WarmupErrors   int
	ErrorsBy       map[string]int // every phase: "404 Not Found", "error: ..."
	FirstBody      string         // of the first answer that was not 2xx
	Aborted        string         // why the load stopped early
}

// maxFailure is the share of failed requests that aborts a system.
const maxFailure = 0.01

// worker is one client: its own connection, signer and buffers.
type worker struct {
	client *rawClient
	signer *signer
	body   []byte

	latencies              []time.Duration
	requests, errors       int
	warmRequests, warmErrs int
}

// runLoad sends signed events from cfg.Concurrency clients: a warm-up,
// then the measured window. It stops early once more than 1% of the
// requests failed.
func runLoad(ctx context.Context, cfg loadConfig) (*loadResult, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var (
		seq            atomic.Uint64
		total, failed  atomic.Int64
		measuredTaken  atomic.Int64
		mu             sync.Mutex
		errorsBy       = map[string]int{}
		firstBody      string
		wg             sync.WaitGroup
		workers        = make([]*worker, cfg.Concurrency)
		start          = time.Now()
		measureStart   = start.Add(cfg.Warmup)
		measureEnd     = measureStart.Add(cfg.Duration)
		byRequestCount = cfg.Requests > 0
	)
	fail := func(key, body string) {
		failed.Add(1)
		mu.Lock()
		errorsBy[key]++
		if firstBody == "" && body != "" {
			firstBody = body
		}
		mu.Unlock()
	}
	for i := range workers {
		w := &worker{client: &rawClient{timeout: cfg.Timeout}, signer: newSigner(cfg.Secret)}
		if byRequestCount {
			w.latencies = make([]time.Duration, 0, cfg.Requests/cfg.Concurrency+1)
		} else {
			w.latencies = make([]time.Duration, 0, 4096)
		}
		workers[i] = w
	}
	for _, w := range workers {
		wg.Go(func() {
			defer w.client.CloseIdleConnections()
			for ctx.Err() == nil {
				now := time.Now()
				measured := !now.Before(measureStart)
				if measured {
					if byRequestCount {
						if measuredTaken.Add(1) > int64(cfg.Requests) {
							return
						}
					} else if !now.Before(measureEnd) {
						return
					}
				}
				w.body = cfg.Maker.Append(w.body[:0], seq.Add(1), now)
				ts := strconv.FormatInt(now.Unix(), 10)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(w.body))
				if err != nil {
					cancel(err)
					return
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
				req.Header.Set("X-Slack-Request-Timestamp", ts)
				req.Header.Set("X-Slack-Signature", w.signer.sign(ts, w.body))

				t0 := time.Now()
				resp, err := w.client.Do(req)
				ok := false
				if err == nil {
					var head []byte
					if resp.StatusCode < 200 || resp.StatusCode > 299 {
						head, _ = io.ReadAll(io.LimitReader(resp.Body, 200))
					}
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					switch {
					case err != nil:
						fail("error: reading the answer: "+shortError(err), "")
					case resp.StatusCode < 200 || resp.StatusCode > 299:
						fail(resp.Status, strings.TrimSpace(string(head)))
					default:
						ok = true
					}
				} else if ctx.Err() == nil {
					fail("error: "+shortError(err), "")
				} else {
					return // stopped: this request counts nowhere
				}
				d := time.Since(t0)
				total.Add(1)
				if measured {
					w.requests++
					w.latencies = append(w.latencies, d)
					if !ok {
						w.errors++
					}
				} else {
					w.warmRequests++
					if !ok {
						w.warmErrs++
					}
				}
			}
		})
	}
	// Stop early when more than 1% fail.
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				n, f := total.Load(), failed.Load()
				if n >= 20 && float64(f) > maxFailure*float64(n) {
					cancel(fmt.Errorf("%d of the first %d requests failed", f, n))
					return
				}
			}
		}
	}()
	wg.Wait()
	close(done)
	end := time.Now()

	res := &loadResult{ErrorsBy: errorsBy, FirstBody: firstBody}
	for _, w := range workers {
		res.Requests += w.requests
		res.Errors += w.errors
		res.WarmupRequests += w.warmRequests
		res.WarmupErrors += w.warmErrs
		res.Latencies = append(res.Latencies, w.latencies...)
	}
	slices.Sort(res.Latencies)
	if end.After(measureStart) {
		res.Seconds = end.Sub(measureStart).Seconds()
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		res.Aborted = cause.Error()
	} else if err := ctx.Err(); err != nil {
		return res, err // interrupted
	}
	return res, nil
}

// shortError drops the request line Go puts in front of transport errors.
func shortError(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "\": "); i >= 0 {
		s = s[i+3:]
	}
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

// rawClient sends requests one after another on one keep-alive
// connection, writing each with Request.Write and reading the answer with
// http.ReadResponse. It skips http.Transport's connection pool and its two
// goroutines per connection, which would cost the clients (sharing the
// machine with the server under test) several times the CPU.
type rawClient struct {
	timeout time.Duration
	conn    net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
}

// Do sends req and returns the answer, its body to be read and closed
// before the next call. A broken connection is dialled again once.
func (c *rawClient) Do(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.do(req)
		if err == nil || attempt == 1 || req.Context().Err() != nil {
			return resp, err
		}
		c.CloseIdleConnections()
		if req.GetBody != nil {
			if req.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
	}
}

func (c *rawClient) do(req *http.Request) (*http.Response, error) {
	if c.conn == nil {
		d := net.Dialer{Timeout: c.timeout}
		conn, err := d.DialContext(req.Context(), "tcp", req.URL.Host)
		if err != nil {
			return nil, err
		}
		c.conn, c.br, c.bw = conn, bufio.NewReaderSize(conn, 16<<10), bufio.NewWriterSize(conn, 16<<10)
	}
	_ = c.conn.SetDeadline(time.Now().Add(c.timeout))
	if err := req.Write(c.bw); err != nil {
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		return nil, err
	}
	if resp.Close {
		resp.Body = closeAfter{resp.Body, c}
	}
	return resp, nil
}

// CloseIdleConnections closes the connection.
func (c *rawClient) CloseIdleConnections() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// closeAfter closes the connection once a "Connection: close" answer is read.
type closeAfter struct {
	io.ReadCloser
	c *rawClient
}

func (b closeAfter) Close() error {
	err := b.ReadCloser.Close()
	b.c.CloseIdleConnections()
	return err
}
