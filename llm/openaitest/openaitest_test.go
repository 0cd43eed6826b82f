package openaitest_test

import (
	"bufio"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/convosphere/convosphere/llm/openaitest"
)

func post(tb testing.TB, url, body string) *http.Response {
	tb.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		tb.Fatalf("post %s: %v", url, err)
	}
	tb.Cleanup(func() { resp.Body.Close() })
	return resp
}

// sseData returns the data payloads of an event stream.
func sseData(tb testing.TB, r io.Reader) []string {
	tb.Helper()
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		} else if sc.Text() != "" {
			tb.Fatalf("unexpected line %q", sc.Text())
		}
	}
	return out
}

func TestStreamWireFormat(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.Script(openaitest.Reply{Chunks: []string{"Hi", " there"}, Usage: &openaitest.Usage{PromptTokens: 3, CompletionTokens: 2}})
	resp := post(t, srv.BaseURL()+"/chat/completions",
		`{"model":"m1","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello"}]}`)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type = %q", ct)
	}
	data := sseData(t, resp.Body)
	if data[len(data)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %v", data)
	}
	type chunk struct {
		Object  string `json:"object"`
		Model   string `json:"model"`
		Choices []struct {
			Delta struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"delta"`
			FinishReason *string `json:"finish_reason"`
		} `json:"choices"`
		Usage *openaitest.Usage `json:"usage"`
	}
	var (
		text   string
		finish string
		usage  *openaitest.Usage
	)
	for i, d := range data[:len(data)-1] {
		var c chunk
		if err := json.Unmarshal([]byte(d), &c); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if c.Object != "chat.completion.chunk" || c.Model != "m1" {
			t.Fatalf("chunk %d = %+v", i, c)
		}
		if i == 0 && (len(c.Choices) != 1 || c.Choices[0].Delta.Role != "assistant") {
			t.Fatalf("first chunk has no assistant role: %s", d)
		}
		for _, ch := range c.Choices {
			text += ch.Delta.Content
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
		if c.Usage != nil {
			if len(c.Choices) != 0 {
				t.Fatalf("usage chunk has choices: %s", d)
			}
			usage = c.Usage
		}
	}
	if text != "Hi there" || finish != "stop" || usage == nil || usage.TotalTokens != 5 {
		t.Fatalf("text %q, finish %q, usage %+v", text, finish, usage)
	}
	if got := srv.Requests()[0]; got.Model != "m1" || got.LastUserMessage() != "hello" || !got.Stream {
		t.Fatalf("recorded request = %+v", got)
	}
}

func TestNonStreamAndDefaultReply(t *testing.T) {
	srv := openaitest.NewServer(t)
	resp := post(t, srv.BaseURL()+"/chat/completions", `{"model":"m","messages":[{"role":"user","content":"Where is it?"}]}`)
	var body struct {
		Object  string `json:"object"`
		Choices []struct {
			Message struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage openaitest.Usage `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.Object != "chat.completion" || len(body.Choices) != 1 || body.Choices[0].Message.Content != "You asked: Where is it? [1]" ||
		body.Choices[0].FinishReason != "stop" || body.Usage.PromptTokens != 3 {
		t.Fatalf("response = %+v", body)
	}
}

func TestErrorReply(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.Script(openaitest.Reply{Status: 429, RetryAfter: "2", ErrorMessage: "slow down", ErrorCode: "rate_limit_exceeded"})
	resp := post(t, srv.BaseURL()+"/chat/completions", `{"model":"m","stream":true,"messages":[]}`)
	var body struct {
		Error struct {
			Message string `json:"message"`
			Code    string `json:"code"`
		} `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" || body.Error.Message != "slow down" || body.Error.Code != "rate_limit_exceeded" {
		t.Fatalf("status %d, retry-after %q, body %+v", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

func TestEmbeddingsAndModels(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.SetDims(16)
	resp := post(t, srv.BaseURL()+"/embeddings", `{"model":"e","input":["deploy the bot","deploy the bot now","unrelated words here"]}`)
	var body struct {
		Data []struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if len(body.Data) != 3 || len(body.Data[0].Embedding) != 16 {
		t.Fatalf("data = %+v", body.Data)
	}
	cos := func(a, b []float32) float64 {
		var s float64
		for i := range a {
			s += float64(a[i]) * float64(b[i])
		}
		return s
	}
	v0, v1, v2 := body.Data[0].Embedding, body.Data[1].Embedding, body.Data[2].Embedding
	if math.Abs(cos(v0, v0)-1) > 1e-5 || cos(v0, v1) <= cos(v0, v2) {
		t.Fatalf("similar texts are not closer: %.3f vs %.3f", cos(v0, v1), cos(v0, v2))
	}
	if got := srv.EmbeddingRequests()[0].Input; len(got) != 3 {
		t.Fatalf("recorded input = %v", got)
	}

	mresp, err := http.Get(srv.BaseURL() + "/models")
	if err != nil {
		t.Fatal(err)
	}
	defer mresp.Body.Close()
	var models struct {
		Data []struct{ ID string } `json:"data"`
	}
	_ = json.NewDecoder(mresp.Body).Decode(&models)
	if len(models.Data) != 2 || models.Data[0].ID != "test-model" {
		t.Fatalf("models = %+v", models)
	}
}

func TestCloseEndsStalledStream(t *testing.T) {
	srv := openaitest.NewServer(t)
	srv.Script(openaitest.Reply{Chunks: []string{"a", "b"}, Interrupt: openaitest.Stall, InterruptAfter: 1})
	resp := post(t, srv.BaseURL()+"/chat/completions", `{"model":"m","stream":true,"messages":[]}`)
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close blocked on a stalled stream")
	}
}
