package openai

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/convosphere/convosphere/engine"
)

// Operations, for errors and logs.
const (
	opChat   = "chat completion"
	opEmbed  = "embeddings"
	opModels = "list models"
)

// retryPolicy is bounded exponential backoff with full jitter.
type retryPolicy struct {
	maxRetries int
	base, max  time.Duration
}

// backoff returns a random delay in [0, min(max, base*2^retry)].
func (r retryPolicy) backoff(retry int) time.Duration {
	ceil := r.base
	for i := 0; i < retry && ceil < r.max; i++ {
		ceil *= 2
	}
	ceil = min(ceil, r.max)
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil + 1)
}

// delay is how long to wait before retry number retry (0-based): the
// server's Retry-After when it sent one, capped by the maximum delay, else
// the jittered backoff.
func (r retryPolicy) delay(retry int, a *attempt) time.Duration {
	if a.hasRetryAfter {
		return min(a.retryAfter, r.max)
	}
	return r.backoff(retry)
}

// attempt records what the HTTP layer saw of one attempt; go-openai's
// errors carry the status but not the headers.
type attempt struct {
	status        int
	retryAfter    time.Duration
	hasRetryAfter bool
}

type attemptKey struct{}

func withAttempt(ctx context.Context, a *attempt) context.Context {
	return context.WithValue(ctx, attemptKey{}, a)
}

// recordingDoer is the HTTP client given to go-openai: it notes the status
// and Retry-After of failed responses in the request's attempt.
type recordingDoer struct {
	client *http.Client
}

func (d *recordingDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	if a, ok := req.Context().Value(attemptKey{}).(*attempt); ok {
		a.status = resp.StatusCode
		if resp.StatusCode >= http.StatusBadRequest {
			a.retryAfter, a.hasRetryAfter = parseRetryAfter(resp.Header, time.Now())
		}
	}
	return resp, nil
}

// maxRetryAfter bounds parsed values before they become durations.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads Retry-After-Ms (Azure, OpenAI) or Retry-After in
// seconds or as an HTTP date.
func parseRetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 && !math.IsInf(ms, 0) {
			return min(time.Duration(min(ms, float64(maxRetryAfter/time.Millisecond))*float64(time.Millisecond)), maxRetryAfter), true
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs < 0 || math.IsNaN(secs) {
			return 0, false
		}
		return time.Duration(min(secs, maxRetryAfter.Seconds()) * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}

// do runs a non-streaming call with a per-attempt timeout and the retry
// policy.
func (p *Provider) do(ctx context.Context, op, model string, call func(ctx context.Context) error) error {
	for retry := 0; ; retry++ {
		a := &attempt{}
		actx, cancel := context.WithTimeout(withAttempt(ctx, a), p.cfg.RequestTimeout)
		err := call(actx)
		cancel()
		if err == nil {
			return nil
		}
		eerr, retryable := p.classify(ctx, op, model, err, a)
		if !retryable || retry >= p.retry.maxRetries {
			return eerr
		}
		if err := p.pause(ctx, op, model, retry, a, err); err != nil {
			return err
		}
	}
}

// pause waits before retry number retry; it returns an error when ctx ends
// first.
func (p *Provider) pause(ctx context.Context, op, model string, retry int, a *attempt, cause error) error {
	return p.pauseFor(ctx, op, model, retry, p.retry.delay(retry, a), a, cause)
}

// pauseFor waits d before retry number retry+1, as pause does.
func (p *Provider) pauseFor(ctx context.Context, op, model string, retry int, d time.Duration, a *attempt, cause error) error {
	p.log.WarnContext(ctx, "retry llm request", "op", op, "model", model, "retry", retry+1,
		"max_retries", p.retry.maxRetries, "status", a.status, "delay", d, "error", cause)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctxError(ctx, op)
	}
}

// ctxError is the error for a call whose ctx ended.
func ctxError(ctx context.Context, op string) error {
	err := fmt.Errorf("%s: %w", op, context.Cause(ctx))
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return engine.WrapError(engine.ETIMEOUT, err, "The %s did not answer in time.", noun(op))
	}
	return engine.WrapError(engine.EUNAVAILABLE, err, "The request to the %s was cancelled.", noun(op))
}

func noun(op string) string {
	if op == opEmbed {
		return "embedding model"
	}
	return "language model"
}

// errTruncated is a stream that ended before its finish reason.
var errTruncated = errors.New("stream ended before the answer was complete")

// validationErrors are go-openai's refusals to send a request the model
// cannot take.
var validationErrors = []error{
	goopenai.ErrChatCompletionInvalidModel,
	goopenai.ErrReasoningEffortUnsupported,
	goopenai.ErrReasoningToolsRequireResponses,
	goopenai.ErrReasoningSamplingUnsupported,
	goopenai.ErrReasoningModelMaxTokensDeprecated,
	goopenai.ErrReasoningModelLimitationsLogprobs,
	goopenai.ErrReasoningModelLimitationsOther,
}

// classify turns an attempt's error into an engine error with a sentence a
// user can read, and says whether another attempt may succeed. ctx is the
// caller's context, not the attempt's.
func (p *Provider) classify(ctx context.Context, op, model string, err error, a *attempt) (error, bool) {
	if ctx.Err() != nil {
		return ctxError(ctx, op), false
	}
	var known *engine.Error
	if errors.As(err, &known) {
		return err, false
	}
	what := noun(op)
	key := p.cfg.setting("model")
	if op == opEmbed {
		key = p.cfg.setting("embedding_model")
	}
	apiKey, baseURL := p.cfg.setting("api_key"), p.cfg.setting("base_url")
	cause := fmt.Errorf("%s: %w", op, err)
	status, apiErr := statusOf(err, a)
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		// The server's text may echo part of the key: keep only the status.
		cause = fmt.Errorf("%s: http %d", op, status)
		return engine.WrapError(engine.EUNAVAILABLE, cause, "The %s rejected the API key; an admin should check %s.", what, apiKey), false
	case status == http.StatusNotFound:
		return engine.WrapError(engine.EUNAVAILABLE, cause, "The %s %q was not found; an admin should check %s and %s.", what, model, key, baseURL), false
	case status == http.StatusTooManyRequests && isQuota(apiErr):
		return engine.WrapError(engine.EUNAVAILABLE, cause, "The %s account has run out of quota; an admin should check the provider's plan and billing.", what), false
	case status == http.StatusTooManyRequests:
		return engine.WrapError(engine.EUNAVAILABLE, cause, "The %s is busy (rate limited); please try again in a minute.", what), true
	case status == http.StatusRequestTimeout:
		return engine.WrapError(engine.ETIMEOUT, cause, "The %s did not answer in time; please try again.", what), true
	case status == http.StatusConflict || status >= http.StatusInternalServerError:
		return engine.WrapError(engine.EUNAVAILABLE, cause, "The %s is unavailable right now (HTTP %d); please try again in a minute.", what, status), true
	case status >= http.StatusBadRequest:
		return engine.WrapError(engine.EINVALID, cause, "The %s rejected the request (HTTP %d); the conversation may be too long for the model, or an admin should check %s.", what, status, key), false
	case apiErr != nil:
		// An error event inside a stream: the server gave up while answering.
		return engine.WrapError(engine.EUNAVAILABLE, cause, "The %s reported an error while answering; please try again.", what), false
	}
	for _, v := range validationErrors {
		if errors.Is(err, v) {
			return engine.WrapError(engine.EINVALID, cause, "The model %q cannot be used for chat this way; an admin should check %s.", model, key), false
		}
	}
	var (
		certErr *tls.CertificateVerificationError
		dnsErr  *net.DNSError
		netErr  net.Error
		urlErr  *url.Error
		opErr   *net.OpError
	)
	switch {
	case errors.As(err, &certErr):
		return engine.WrapError(engine.EUNAVAILABLE, cause, "The %s's TLS certificate could not be verified; an admin should check %s.", what, baseURL), false
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return engine.WrapError(engine.EUNAVAILABLE, cause, "The %s's host name could not be found; an admin should check %s.", what, baseURL), false
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return engine.WrapError(engine.ETIMEOUT, cause, "The %s did not answer in time; please try again.", what), true
	case errors.Is(err, errTruncated) || errors.Is(err, io.ErrUnexpectedEOF):
		return engine.WrapError(engine.EUNAVAILABLE, cause, "The %s's answer was cut off; please try again.", what), true
	case errors.Is(err, syscall.ECONNREFUSED):
		return engine.WrapError(engine.EUNAVAILABLE, cause, "The %s could not be reached; an admin should check that it runs at %s.", what, baseURL), true
	case errors.As(err, &urlErr) || errors.As(err, &opErr) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF):
		return engine.WrapError(engine.EUNAVAILABLE, cause, "The connection to the %s failed; please try again in a minute.", what), true
	}
	return engine.WrapError(engine.EUNAVAILABLE, cause, "The %s failed to answer; please try again in a minute.", what), false
}

// statusOf returns the HTTP status of a failed response and the API error
// the server sent, if any.
func statusOf(err error, a *attempt) (int, *goopenai.APIError) {
	var (
		apiErr *goopenai.APIError
		reqErr *goopenai.RequestError
		status int
	)
	if errors.As(err, &apiErr) {
		status = apiErr.HTTPStatusCode
	} else {
		apiErr = nil
	}
	if status == 0 && errors.As(err, &reqErr) {
		status = reqErr.HTTPStatusCode
	}
	if status == 0 && a.status >= http.StatusBadRequest {
		status = a.status
	}
	return status, apiErr
}

// isQuota reports an exhausted account, which waiting does not fix.
func isQuota(apiErr *goopenai.APIError) bool {
	if apiErr == nil {
		return false
	}
	code, _ := apiErr.Code.(string)
	return code == "insufficient_quota" || apiErr.Type == "insufficient_quota"
}
