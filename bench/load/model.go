package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// answerEnd ends every scripted answer: a platform message showing it
// shows the whole answer.
const answerEnd = "That is all."

// modelConfig scripts the language model.
type modelConfig struct {
	TokensPerSec float64       // streaming speed
	FirstToken   time.Duration // before the first token
	MinTokens    int           // answer length, uniformly in [MinTokens, MaxTokens]
	MaxTokens    int
}

// model is a scripted OpenAI-compatible chat completion server:
// POST /v1/chat/completions with "stream": true answers with server-sent
// events, one token per chunk at TokensPerSec after FirstToken, and the
// usage in a last chunk when stream_options.include_usage asks for it, as
// OpenAI documents. An answer is MinTokens to MaxTokens words (a token
// each), chosen from the conversation's length and last question, so a
// retried question gets the same answer; it cites [1] and ends with
// answerEnd.
type model struct {
	cfg modelConfig
	URL string // base URL, with /v1
	srv *http.Server

	requests atomic.Int64
	active   atomic.Int64
	peak     atomic.Int64
	tokens   atomic.Int64
	aborted  atomic.Int64 // streams the client left before the end
}

func startModel(cfg modelConfig) (*model, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("model server: %w", err)
	}
	m := &model{cfg: cfg, URL: "http://" + ln.Addr().String() + "/v1"}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", m.serveChat)
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"object":"list","data":[{"id":"bench-model","object":"model","created":0,"owned_by":"bench"}]}`)
	})
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = m.srv.Serve(ln) }()
	return m, nil
}

func (m *model) Close() error { return m.srv.Close() }

// chatRequest is the part of a chat completion request the model reads.
type chatRequest struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

// words make up the answers.
var words = strings.Fields(`the bot answers in the thread where it was asked and keeps every
	reply in order so a retried event edits its earlier message instead of posting again
	deploy with the example configuration then rotate the signing secret and restart the
	workers which claim events from the durable inbox before they stream the answer`)

// scriptedAnswer is the answer to a conversation whose last question is
// question, as tokens: n words chosen from the question's hash, then the
// citation and answerEnd.
func scriptedAnswer(question string, minTokens, maxTokens int) []string {
	h := fnv.New64a()
	h.Write([]byte(question))
	seed := h.Sum64()
	rng := rand.New(rand.NewPCG(seed, seed>>1|1))
	n := minTokens
	if maxTokens > minTokens {
		n += rng.IntN(maxTokens - minTokens + 1)
	}
	end := []string{" [1].", " That", " is", " all."}
	body := max(n-len(end), 1)
	out := make([]string, 0, body+len(end))
	for i := range body {
		w := words[rng.IntN(len(words))]
		if i == 0 {
			out = append(out, strings.ToUpper(w[:1])+w[1:])
			continue
		}
		out = append(out, " "+w)
	}
	return append(out, end...)
}

func (m *model) serveChat(w http.ResponseWriter, r *http.Request) {
	m.requests.Add(1)
	var req chatRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<20)).Decode(&req); err != nil {
		http.Error(w, `{"error":{"message":"invalid JSON","type":"invalid_request_error"}}`, http.StatusBadRequest)
		return
	}
	question, prompt := "", 0
	for _, msg := range req.Messages {
		prompt += len(strings.Fields(msg.Content))
		if msg.Role == "user" {
			question = msg.Content
		}
	}
	tokens := scriptedAnswer(fmt.Sprintf("%d:%s", len(req.Messages), question), m.cfg.MinTokens, m.cfg.MaxTokens)
	modelName := req.Model
	if modelName == "" {
		modelName = "bench-model"
	}
	created := time.Now().Unix()
	usage := fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`, prompt, len(tokens), prompt+len(tokens))
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		content, _ := json.Marshal(strings.Join(tokens, ""))
		fmt.Fprintf(w, `{"id":"chatcmpl-bench","object":"chat.completion","created":%d,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":%s},"finish_reason":"stop"}],"usage":%s}`,
			created, modelName, content, usage)
		return
	}
	n := m.active.Add(1)
	defer m.active.Add(-1)
	for {
		p := m.peak.Load()
		if n <= p || m.peak.CompareAndSwap(p, n) {
			break
		}
	}
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	ctx := r.Context()
	start := time.Now().Add(m.cfg.FirstToken)
	interval := time.Duration(float64(time.Second) / m.cfg.TokensPerSec)
	timer := time.NewTimer(time.Until(start))
	defer timer.Stop()
	prefix := fmt.Sprintf(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":%d,"model":%q,"choices":[{"index":0,"delta":{`, created, modelName)
	buf := make([]byte, 0, 512)
	for i, tok := range tokens {
		// Each token is due at its time from the start: a late write does
		// not delay the ones after it.
		select {
		case <-ctx.Done():
			m.aborted.Add(1)
			return
		case <-timer.C:
		}
		buf = append(buf[:0], prefix...)
		if i == 0 {
			buf = append(buf, `"role":"assistant",`...)
		}
		buf = append(buf, `"content":`...)
		buf = strconv.AppendQuote(buf, tok) // the words are ASCII: a Go quote is a JSON string
		buf = append(buf, `},"finish_reason":null}]}`+"\n\n"...)
		if _, err := w.Write(buf); err != nil {
			m.aborted.Add(1)
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		m.tokens.Add(1)
		timer.Reset(time.Until(start.Add(time.Duration(i+1) * interval)))
	}
	tail := prefix + `},"finish_reason":"stop"}]}` + "\n\n"
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		tail += fmt.Sprintf(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":%d,"model":%q,"choices":[],"usage":%s}`+"\n\n", created, modelName, usage)
	}
	tail += "data: [DONE]\n\n"
	_, _ = w.Write([]byte(tail))
}
