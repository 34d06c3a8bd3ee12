package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/logging"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// Limits of POST /v1/links.
const (
	// MaxLinkBatch is the most items one POST /v1/links request may carry.
	MaxLinkBatch = 1000
	// MaxLinkRequestBytes bounds a POST /v1/links body: a full batch of
	// items with names at their limits (1024-byte object, 222-byte bucket).
	MaxLinkRequestBytes = 2 << 20
	// linkBatchWorkers bounds the items of one batch issued at once.
	linkBatchWorkers = 16
)

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
	// ResponseParams are response-* parameters to sign in (a durable
	// link's); never read from the body.
	ResponseParams []sign.Param `json:"-"`
	// Caller is the authenticated caller (zero when authentication is
	// off); set by the server, never read from the body.
	Caller audit.Identity `json:"-"`
}

// LinkIssuer issues one link synchronously; links.Sync is the production
// one. Its errors are classified like
// a handler's, by failure.Classify, and answered as linkErrorStatus says.
type LinkIssuer interface {
	IssueLink(ctx context.Context, req LinkRequest) (*schema.Link, error)
}

// LinkIssuerFunc adapts a function to LinkIssuer.
type LinkIssuerFunc func(ctx context.Context, req LinkRequest) (*schema.Link, error)

// IssueLink calls f.
func (f LinkIssuerFunc) IssueLink(ctx context.Context, req LinkRequest) (*schema.Link, error) {
	return f(ctx, req)
}

// linkBody is a POST /v1/links body: one LinkRequest, or a batch of them
// in items.
type linkBody struct {
	LinkRequest
	Items []LinkRequest `json:"items"`
}

// LinkResult is one item's answer in a batch: a link or an error.
type LinkResult struct {
	Link  *schema.Link `json:"link,omitempty"`
	Error *ItemError   `json:"error,omitempty"`
}

// ItemError is why one item of a batch got no link: the code and message a
// single request would have answered, and that answer's status.
type ItemError struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// LinkBatchResponse answers a batch: Items[i] answers the request's
// items[i].
type LinkBatchResponse struct {
	Items []LinkResult `json:"items"`
}

// serveLink answers POST /v1/links. A body with "items" is a batch of up to
// MaxLinkBatch requests, answered 200 with one LinkResult per item, in
// order; any other body is one request, answered with the link or an
// error status.
func (s *PushServer) serveLink(w http.ResponseWriter, r *http.Request, caller audit.Identity) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxLinkRequestBytes))
	if err != nil {
		writeBodyError(w, err, string(schema.CodeInvalidJSON))
		return
	}
	ctx, cancel := s.withTimeout(r.Context())
	defer cancel()
	body, err := parseLinkBody(ctx, raw)
	if err != nil {
		e := s.linkError(r, err)
		writeError(w, e.Status, e.Code, e.Message)
		return
	}
	if body.Items == nil {
		req := body.LinkRequest
		req.Caller = caller
		link, err := s.links.IssueLink(ctx, req)
		if err != nil {
			e := s.linkError(r, err)
			writeError(w, e.Status, e.Code, e.Message)
			return
		}
		writeLinkJSON(w, link)
		return
	}
	switch {
	case body.Bucket != "" || body.Object != "" || body.Generation != 0 || body.Method != "" || body.ExpiresIn != "":
		writeError(w, http.StatusBadRequest, string(schema.CodeInvalidField), "a batch carries its requests in items only")
		return
	case len(body.Items) == 0:
		writeError(w, http.StatusBadRequest, string(schema.CodeMissingField), "items is empty")
		return
	case len(body.Items) > MaxLinkBatch:
		writeError(w, http.StatusRequestEntityTooLarge, string(schema.CodeTooLarge), fmt.Sprintf("%d items; at most %d per request", len(body.Items), MaxLinkBatch))
		return
	}
	writeLinkJSON(w, LinkBatchResponse{Items: s.issueBatch(ctx, r, body.Items, caller)})
}

// issueBatch issues items with at most linkBatchWorkers at once and returns
// their results in order.
func (s *PushServer) issueBatch(ctx context.Context, r *http.Request, items []LinkRequest, caller audit.Identity) []LinkResult {
	results := make([]LinkResult, len(items))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(linkBatchWorkers, len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				req := items[i]
				req.Caller = caller
				link, err := s.links.IssueLink(ctx, req)
				if err != nil {
					e := s.linkError(r, err)
					results[i].Error = &e
					continue
				}
				results[i].Link = link
			}
		}()
	}
	for i := range items {
		next <- i
	}
	close(next)
	wg.Wait()
	return results
}

// linkError classifies an IssueLink error and logs the server's failures.
func (s *PushServer) linkError(r *http.Request, err error) ItemError {
	status, code, msg := linkErrorStatus(err)
	if status >= 500 {
		s.log.Warn("link request failed", zap.String("code", code), zap.Error(err), logging.TraceFromHeaders(s.project, r.Header))
	}
	return ItemError{Status: status, Code: code, Message: msg}
}

// writeLinkJSON answers 200 with v, which holds credentials: no cache may
// keep it, and URLs keep their & (no HTML escaping).
func writeLinkJSON(w http.ResponseWriter, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		writeError(w, http.StatusInternalServerError, string(schema.CodeInternal), "encoding the response failed")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes()) // the client may be gone; nothing to do then
}

// linkErrorStatus maps an IssueLink error, as failure.Classify sees it, to
// a status, a stable code and a message safe to return to the caller: a
// missing object (failure.CodeObjectNotFound) is 404; an audit record that could not be written 503
// (audit_unavailable); a policy refusal 403 with the rule that refused; other
// permanent failures 400 with their reason code; a transient failure of a
// known component (or a cut context) 503 with its reason (signer_unavailable,
// storage_unavailable, cancelled); anything else 500.
func linkErrorStatus(err error) (int, string, string) {
	if errors.Is(err, audit.ErrUnavailable) {
		return http.StatusServiceUnavailable, "audit_unavailable", "the link could not be recorded; retry later"
	}
	c := failure.Classify(err)
	switch {
	case c.Kind == failure.KindPermanent && c.Code == failure.CodeObjectNotFound:
		return http.StatusNotFound, string(c.Code), err.Error()
	case c.Kind == failure.KindPermanent && c.Code == failure.CodePolicyRefused:
		code := c.Detail
		if code == "" {
			code = string(c.Code)
		}
		return http.StatusForbidden, code, err.Error()
	case c.Kind == failure.KindPermanent:
		return http.StatusBadRequest, string(c.Code), err.Error()
	case c.Kind == failure.KindTransient && c.Component != failure.Unknown:
		return http.StatusServiceUnavailable, c.Reason(), "not available now (" + string(c.Component) + "); retry later"
	}
	return http.StatusInternalServerError, string(failure.CodeInternal), "internal error"
}
