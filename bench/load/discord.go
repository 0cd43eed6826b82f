package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	discordApp   = "100000000000000001"
	discordGuild = "100000000000000002"
)

// discordFake is Discord's REST API as the bot uses it for slash
// commands: the answer is edited into the deferred response
// (PATCH /webhooks/{app}/{token}/messages/@original), with follow-ups
// (POST /webhooks/{app}/{token}) for what does not fit, and channel
// messages once a token is too old. The interaction token names the
// interaction: the bench makes it "tok-" + the interaction id.
type discordFake struct {
	URL    string // the REST base with its version, as discord.api_url takes it
	srv    *http.Server
	ledger atomic.Pointer[ledger]

	mu    sync.Mutex
	seq   int64
	calls map[string]int
}

func startDiscordFake() (*discordFake, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("discord fake: %w", err)
	}
	f := &discordFake{URL: "http://" + ln.Addr().String() + "/api/v10"}
	f.reset(newLedger())
	mux := http.NewServeMux()
	mux.HandleFunc("PATCH /api/v10/webhooks/{app}/{token}/messages/{message}", f.editWebhookMessage)
	mux.HandleFunc("POST /api/v10/webhooks/{app}/{token}", f.followUp)
	mux.HandleFunc("POST /api/v10/channels/{channel}/messages", f.channelMessage)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		f.count(r.Method + " other")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{}`)
	})
	f.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

func (f *discordFake) Close() error { return f.srv.Close() }

func (f *discordFake) reset(l *ledger) {
	f.mu.Lock()
	f.calls = map[string]int{}
	f.mu.Unlock()
	f.ledger.Store(l)
}

func (f *discordFake) count(what string) {
	f.mu.Lock()
	f.calls[what]++
	f.mu.Unlock()
}

// Calls counts the REST calls per kind since the last reset.
func (f *discordFake) Calls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.calls)
}

func (f *discordFake) nextID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	return strconv.FormatInt(200000000000000000+f.seq, 10)
}

// messageBody is the part of a message create or edit the fake reads.
type messageBody struct {
	Content    *string           `json:"content"`
	Components []json.RawMessage `json:"components"`
}

func readMessage(r *http.Request) messageBody {
	var m messageBody
	_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&m)
	return m
}

func writeMessage(w http.ResponseWriter, id, channel, content string) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "channel_id": channel, "content": content, "type": 0})
}

func interactionOf(token string) string { return strings.TrimPrefix(token, "tok-") }

func (f *discordFake) editWebhookMessage(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	m := readMessage(r)
	id := interactionOf(r.PathValue("token"))
	content := ""
	if m.Content != nil {
		content = *m.Content
	}
	msgID := r.PathValue("message")
	if msgID == "@original" {
		f.count("edit original")
		// The deferred response is the answer's message: its first edit is
		// the first time the answer shows.
		l := f.ledger.Load()
		l.messageOnce(platDiscord, id, now)
		l.shown(platDiscord, id, content, now)
		msgID = id
	} else {
		f.count("edit follow-up")
		f.ledger.Load().shown(platDiscord, id, content, now)
	}
	writeMessage(w, msgID, "", content)
}

func (f *discordFake) followUp(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	f.count("follow-up")
	m := readMessage(r)
	id := interactionOf(r.PathValue("token"))
	content := ""
	if m.Content != nil {
		content = *m.Content
	}
	l := f.ledger.Load()
	l.message(platDiscord, id, now)
	l.shown(platDiscord, id, content, now)
	writeMessage(w, f.nextID(), "", content)
}

func (f *discordFake) channelMessage(w http.ResponseWriter, r *http.Request) {
	f.count("channel message")
	m := readMessage(r)
	content := ""
	if m.Content != nil {
		content = *m.Content
	}
	// A channel message carries no interaction: the bot sends them only
	// once a token is too old, which no answer here should reach.
	f.ledger.Load().strayMessage(platDiscord)
	writeMessage(w, f.nextID(), r.PathValue("channel"), content)
}

// discordClient sends signed /ask interactions to the bot.
type discordClient struct {
	url  string             // the bot's POST /discord/interactions
	key  ed25519.PrivateKey // its public key is the bot's discord.public_key
	http *http.Client
	seq  atomic.Int64
}

// newID is an interaction id (a snowflake-like number) no other
// interaction of the run has.
func (c *discordClient) newID() string {
	return strconv.FormatInt(100000000000000000+c.seq.Add(1)*10, 10)
}

// ask is the body of an /ask application command interaction (Discord's
// documented shape), asked by user in channel.
func ask(id, user, channel, question string) []byte {
	body, _ := json.Marshal(map[string]any{
		"type": 2, "id": id, "token": "tok-" + id, "application_id": discordApp, "guild_id": discordGuild,
		"channel_id": channel, "version": 1, "locale": "en-US", "guild_locale": "en-US", "app_permissions": "2147483648",
		"member": map[string]any{"user": map[string]any{"id": user, "username": "asker" + user[len(user)-4:], "global_name": "Load Asker"},
			"roles": []string{}, "nick": nil, "permissions": "2147483648"},
		"data": map[string]any{"id": "100000000000000003", "name": "ask", "type": 1,
			"options": []map[string]any{{"type": 3, "name": "question", "value": question}}},
	})
	return body
}

// deliver POSTs a signed interaction and reports its latency and whether
// the bot deferred it ({"type":5}).
func (c *discordClient) deliver(ctx context.Context, body []byte) (time.Duration, bool) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	sig := ed25519.Sign(c.key, append([]byte(ts), body...))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return 0, false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Discord-Interactions/1.0 (+https://discord.com)")
	req.Header.Set("X-Signature-Ed25519", hex.EncodeToString(sig))
	req.Header.Set("X-Signature-Timestamp", ts)
	t0 := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return time.Since(t0), false
	}
	var out struct {
		Type int `json:"type"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&out)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	return d, err == nil && resp.StatusCode == http.StatusOK && out.Type == 5
}
