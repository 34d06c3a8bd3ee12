package worker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/logging"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// MaxLinkRequestBytes bounds a POST /v1/links body.
const MaxLinkRequestBytes = 64 << 10

// LinkRequest is the body of POST /v1/links.
type LinkRequest struct {
	Bucket string `json:"bucket"`
	Object string `json:"object"`
	// Generation pins a generation; 0 means the live one.
	Generation int64 `json:"generation,omitempty"`
	// Method defaults to GET.
	Method string `json:"method,omitempty"`
	// ExpiresIn uses the job syntax ("15m", "7d"; see
	// schema.ParseExpiresIn); empty means the policy default.
	ExpiresIn string `json:"expires_in,omitempty"`
	// Caller is the authenticated service account ("" when authentication
	// is off); set by the server, never read from the body.
	Caller string `json:"-"`
}

// LinkIssuer issues one link synchronously. Its errors are classified like
// a handler's: *policy.Refusal -> 403; schema.ErrInvalid, *sign.InputError,
// *PermanentError -> 400; retryable and context errors -> 503; anything
// else -> 500.
type LinkIssuer interface {
	IssueLink(ctx context.Context, req LinkRequest) (*schema.Link, error)
}

// LinkIssuerFunc adapts a function to LinkIssuer.
type LinkIssuerFunc func(ctx context.Context, req LinkRequest) (*schema.Link, error)

// IssueLink calls f.
func (f LinkIssuerFunc) IssueLink(ctx context.Context, req LinkRequest) (*schema.Link, error) {
	return f(ctx, req)
}

// serveLink answers POST /v1/links.
func (s *PushServer) serveLink(w http.ResponseWriter, r *http.Request, caller string) {
	var req LinkRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxLinkRequestBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err != nil {
		writeBodyError(w, err, string(schema.CodeInvalidJSON))
		return
	}
	req.Caller = caller
	ctx, cancel := s.withTimeout(r.Context())
	defer cancel()
	link, err := s.links.IssueLink(ctx, req)
	if err != nil {
		status, code, msg := linkErrorStatus(err)
		if status >= 500 {
			s.log.Warn("link request failed", zap.String("code", code), zap.Error(err), logging.TraceFromHeaders(s.project, r.Header))
		}
		writeError(w, status, code, msg)
		return
	}
	// The body holds a credential: no cache may keep it.
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, link)
}

// linkErrorStatus maps an IssueLink error to a status, a stable code and a
// message safe to return to the caller.
func linkErrorStatus(err error) (int, string, string) {
	var refusal *policy.Refusal
	var input *sign.InputError
	var perm *PermanentError
	switch {
	case errors.As(err, &refusal):
		return http.StatusForbidden, refusal.Code, refusal.Error()
	case errors.Is(err, schema.ErrInvalid):
		return http.StatusBadRequest, string(schema.CodeOf(err)), err.Error()
	case errors.As(err, &input):
		return http.StatusBadRequest, string(schema.CodeInvalidField), input.Error()
	case errors.As(err, &perm):
		return http.StatusBadRequest, perm.Code, perm.Error()
	case sign.IsRetryable(err):
		return http.StatusServiceUnavailable, "signer_unavailable", "the signer is unavailable; retry later"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "timeout", "the request timed out; retry later"
	}
	return http.StatusInternalServerError, string(schema.CodeInternal), "internal error"
}
