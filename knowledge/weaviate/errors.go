package weaviate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/weaviate/weaviate-go-client/v4/weaviate/fault"
	"github.com/weaviate/weaviate/entities/models"

	"github.com/convosphere/convosphere/engine"
	"github.com/convosphere/convosphere/knowledge"
)

// wrapErr turns an error of the client into one of the project's, with a
// message that says what to check. The client's error type does not unwrap,
// so its cause is looked at here.
func (ix *Index) wrapErr(ctx context.Context, err error, op string) error {
	var eerr *engine.Error
	if err == nil || errors.As(err, &eerr) {
		return err // nil, or translated already
	}
	if errors.Is(err, errReadOnly) {
		return engine.WrapError(engine.EUNAVAILABLE, err,
			"Weaviate collection %s stayed read-only for %s after its vector spaces changed (%s): see the server's log.", ix.class, readOnlyWait, op)
	}
	cause := err
	var werr *fault.WeaviateClientError
	if errors.As(err, &werr) && werr.DerivedFromError != nil {
		cause = werr.DerivedFromError
	}
	if ctxErr := ctx.Err(); ctxErr != nil && (errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded)) {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return engine.WrapError(engine.ETIMEOUT, err, "Weaviate at %s did not answer in time (%s).", ix.url, op)
		}
		return fmt.Errorf("weaviate %s: %w", op, ctxErr)
	}
	var uerr *url.Error
	if errors.As(cause, &uerr) && uerr.Timeout() {
		return engine.WrapError(engine.ETIMEOUT, err,
			"Weaviate at %s did not answer within %s (%s): check that the server is not overloaded, or raise weaviate.timeout.", ix.url, ix.timeout, op)
	}
	var operr *net.OpError
	var dnserr *net.DNSError
	if errors.As(cause, &operr) || errors.As(cause, &dnserr) {
		return engine.WrapError(engine.EUNAVAILABLE, err,
			"Weaviate at %s is unreachable (%s): check weaviate.url and that the server is running.", ix.url, op)
	}
	if uerr != nil { // any other transport failure: reset connection, EOF, TLS
		return engine.WrapError(engine.EUNAVAILABLE, err,
			"Weaviate at %s did not answer properly (%s): check weaviate.url and the server's log.", ix.url, op)
	}
	switch code := statusCode(err); {
	case code == 401 || code == 403:
		return engine.WrapError(engine.EUNAVAILABLE, err,
			"Weaviate at %s refused the request (%s, HTTP %d): check weaviate.api_key.", ix.url, op, code)
	case code == 429 || code >= 500:
		return engine.WrapError(engine.EUNAVAILABLE, err,
			"Weaviate at %s failed (%s, HTTP %d): see the server's log.", ix.url, op, code)
	}
	if isDimensionError(err.Error()) {
		// Upsert and Search check sizes first; this is a write that
		// raced another of a new size.
		return engine.WrapError(engine.EINVALID, fmt.Errorf("%w: %w", knowledge.ErrDimensions, err),
			"The vectors do not have the size of the vectors Weaviate already holds for them: the embedding model changed, so reindex the knowledge base.")
	}
	return fmt.Errorf("weaviate %s: %w", op, err)
}

// isDimensionError reports whether a Weaviate error message says that a
// vector's length differs from the index's.
func isDimensionError(msg string) bool {
	msg = strings.ToLower(msg)
	return strings.Contains(msg, "vector lengths don't match") ||
		strings.Contains(msg, "vector dimensions do not match")
}

// graphQLErr turns the errors of a GraphQL response into an error.
func (ix *Index) graphQLErr(ctx context.Context, errs []*models.GraphQLError, op string) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, 0, len(errs))
	for _, e := range errs {
		if e != nil {
			msgs = append(msgs, e.Message)
		}
	}
	return ix.wrapErr(ctx, errors.New(strings.Join(msgs, "; ")), op)
}
