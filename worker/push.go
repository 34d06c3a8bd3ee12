package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/api/idtoken"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/logging"
	"github.com/linkissuer/linkissuer/schema"
)

// Routes served by a PushServer.
const (
	PathPush   = "/pubsub/push"
	PathEvents = "/events"
	PathLinks  = "/v1/links"
)

// Limits and defaults of a PushServer.
const (
	// DefaultMaxBodyBytes fits the largest Pub/Sub message (10 MB of data,
	// base64-encoded in a push envelope) plus 1 MiB of attributes and
	// envelope. Larger bodies get 413.
	DefaultMaxBodyBytes = (schema.MaxMessageBytes+2)/3*4 + 1<<20
	// DefaultMaxInFlight bounds requests processed at once; more get 429,
	// which Pub/Sub and Eventarc answer by backing off.
	DefaultMaxInFlight = 100
)

// googleIssuers are the iss values of Google-signed ID tokens.
var googleIssuers = []string{"https://accounts.google.com", "accounts.google.com"}

// TokenValidator checks a Google-signed ID token's signature and expiry;
// *idtoken.Validator implements it. With an empty audience it skips the
// audience check, which the PushServer does itself against its list.
type TokenValidator interface {
	Validate(ctx context.Context, token, audience string) (*idtoken.Payload, error)
}

// defaultValidator validates with Google's published certificates over
// http.DefaultClient, bounded by the request context.
type defaultValidator struct{}

func (defaultValidator) Validate(ctx context.Context, token, audience string) (*idtoken.Payload, error) {
	return idtoken.Validate(ctx, token, audience)
}

// PushOptions configure a PushServer. A nil *PushOptions means the
// defaults, which require AllowedEmails and so do not validate.
type PushOptions struct {
	// Audiences are the accepted aud claims: the push endpoint URL, or the
	// subscription's configured audience, and for Eventarc the service
	// URL. Required unless InsecureSkipAuth. They are never derived from
	// the request: its Host header is the caller's to choose, so a token
	// minted for another service would pass with that service's Host.
	Audiences []string
	// AllowedEmails are the service accounts whose tokens are accepted (the
	// push subscription's and the Eventarc trigger's). Required unless
	// InsecureSkipAuth: any Google account can mint a token for any
	// audience, so the email is what authorizes.
	AllowedEmails []string
	// InsecureSkipAuth accepts every request without a token. For local
	// runs against emulators only; NewPushServer logs a warning.
	InsecureSkipAuth bool
	// Validator checks token signatures; nil means idtoken.Validate
	// (Google's certificates over http.DefaultClient).
	Validator TokenValidator
	// MaxBodyBytes bounds /pubsub/push and /events bodies (0: default);
	// larger ones get 413.
	MaxBodyBytes int64
	// MaxBytesInFlight bounds the bytes of bodies held by the requests in
	// flight (0: DefaultMaxBytesInFlight); a body that does not fit gets
	// 429 with Retry-After. At least MaxBodyBytes.
	MaxBytesInFlight int64
	// MaxInFlight bounds concurrent requests (0: default).
	MaxInFlight int
	// HandlerTimeout bounds one message's processing beyond the request's
	// own context (0: no extra bound). Keep it under the subscription's ack
	// deadline: Pub/Sub redelivers a push it stopped waiting for.
	HandlerTimeout time.Duration
	// Links serves POST /v1/links; nil answers 404 there.
	Links LinkIssuer
	// Logger receives one line per request (debug when it succeeds), with
	// the request's trace; nil means no logs.
	Logger *zap.Logger
	// Project names the trace in log entries
	// (projects/PROJECT/traces/ID); empty leaves the trace out.
	Project string
	// Metrics, if set, counts requests by route and status.
	Metrics *HTTPMetrics
}

// Validate reports the first problem with o without changing it.
func (o *PushOptions) Validate() error {
	var v PushOptions
	if o != nil {
		v = *o
	}
	switch {
	case v.MaxBodyBytes < 0:
		return errors.New("worker: push MaxBodyBytes is negative")
	case v.MaxBytesInFlight < 0:
		return errors.New("worker: push MaxBytesInFlight is negative")
	case cmp.Or(v.MaxBytesInFlight, DefaultMaxBytesInFlight) < cmp.Or(v.MaxBodyBytes, DefaultMaxBodyBytes):
		return fmt.Errorf("worker: push MaxBytesInFlight (%d) is below MaxBodyBytes (%d): the largest body could never be read",
			cmp.Or(v.MaxBytesInFlight, DefaultMaxBytesInFlight), cmp.Or(v.MaxBodyBytes, DefaultMaxBodyBytes))
	case v.MaxInFlight < 0:
		return errors.New("worker: push MaxInFlight is negative")
	case v.HandlerTimeout < 0:
		return errors.New("worker: push HandlerTimeout is negative")
	case !v.InsecureSkipAuth && len(v.AllowedEmails) == 0:
		return errors.New("worker: push authentication needs AllowedEmails (the push and Eventarc service accounts)")
	case !v.InsecureSkipAuth && len(v.Audiences) == 0:
		return errors.New("worker: push authentication needs Audiences (the push endpoint URL or the service URL); they are never taken from the request's Host")
	}
	for _, e := range v.AllowedEmails {
		if !strings.Contains(e, "@") {
			return fmt.Errorf("worker: push AllowedEmails: %q is not an email", e)
		}
	}
	if slices.Contains(v.Audiences, "") {
		return errors.New("worker: push Audiences has an empty entry")
	}
	return nil
}

// PushServer serves Pub/Sub push deliveries, Eventarc CloudEvents and,
// optionally, synchronous link requests. Each delivery goes through
// Router.Process and its Decision becomes the status code:
//
//   - acked (issued, ignored, dead-lettered): 204;
//   - retry: 503, and Pub/Sub or Eventarc redeliver with backoff;
//   - overload (MaxInFlight requests, or MaxBytesInFlight bytes of bodies,
//     reached): 429 with Retry-After, also redelivered;
//   - missing or invalid token: 401; valid token of another account: 403;
//   - body over the limit: 413;
//   - a body that is not a push envelope or a CloudEvent: 400, without
//     running the router. Pub/Sub retries any non-2xx, but it never sends
//     a malformed envelope, so such a request comes from some other
//     client and 400 tells that client what is wrong. Invalid data inside
//     a well-formed envelope is the router's case: dead-lettered, then
//     204.
type PushServer struct {
	router    *Router
	links     LinkIssuer
	validator TokenValidator
	audiences []string
	emails    map[string]bool
	skipAuth  bool
	maxBody   int64
	budget    *byteBudget
	sem       chan struct{}
	timeout   time.Duration
	log       *zap.Logger
	project   string
	metrics   *HTTPMetrics
}

// NewPushServer returns a PushServer delivering to r.
func NewPushServer(r *Router, o *PushOptions) (*PushServer, error) {
	if r == nil {
		return nil, errors.New("worker: push server needs a router")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	s := &PushServer{
		router:    r,
		links:     o.Links,
		validator: cmp.Or(o.Validator, TokenValidator(defaultValidator{})),
		audiences: slices.Clone(o.Audiences),
		emails:    map[string]bool{},
		skipAuth:  o.InsecureSkipAuth,
		maxBody:   cmp.Or(o.MaxBodyBytes, DefaultMaxBodyBytes),
		budget:    &byteBudget{max: cmp.Or(o.MaxBytesInFlight, DefaultMaxBytesInFlight)},
		sem:       make(chan struct{}, cmp.Or(o.MaxInFlight, DefaultMaxInFlight)),
		timeout:   o.HandlerTimeout,
		log:       cmp.Or(o.Logger, zap.NewNop()),
		project:   o.Project,
		metrics:   o.Metrics,
	}
	for _, e := range o.AllowedEmails {
		s.emails[strings.ToLower(e)] = true
	}
	if s.skipAuth {
		s.log.Warn("push authentication is OFF: every request is accepted without a token; use only locally")
	}
	return s, nil
}

// ServeHTTP routes to the push, events and links endpoints.
func (s *PushServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	route, msgID := s.serve(rec, r)
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	elapsed := time.Since(start)
	s.metrics.observe(route, status, elapsed)
	s.logRequest(r, route, status, msgID, elapsed)
}

// serve handles one request and returns the route label and the message
// ID, if one was read, for the request log.
func (s *PushServer) serve(w *statusRecorder, r *http.Request) (route, msgID string) {
	switch r.URL.Path {
	case PathPush, PathEvents:
		route = r.URL.Path
	case PathLinks:
		route = r.URL.Path
		if s.links == nil {
			writeError(w, http.StatusNotFound, "not_found", "synchronous issuance is not enabled")
			return route, ""
		}
	default:
		writeError(w, http.StatusNotFound, "not_found", "no such route")
		return "other", ""
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return route, ""
	}
	caller, ok := s.authenticate(w, r)
	if !ok {
		return route, ""
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
		writeError(w, http.StatusTooManyRequests, "overloaded", "too many requests in flight; retry later")
		return route, ""
	}
	if route == PathLinks {
		s.serveLink(w, r, caller)
		return route, ""
	}

	body, release, ok := s.readBody(w, r)
	if !ok {
		return route, ""
	}
	defer release()
	ctx, cancel := s.withTimeout(r.Context())
	defer cancel()
	// The verified caller (the push or Eventarc service account) reaches
	// the audit record of the link the event yields.
	ctx = audit.WithCaller(ctx, caller)
	var m *Message
	var err error
	if route == PathPush {
		m, err = pushMessage(ctx, r.Header, body)
	} else {
		m, err = eventMessage(ctx, r.Header, body)
	}
	if ctx.Err() != nil {
		writeError(w, http.StatusServiceUnavailable, "timeout", "the request timed out; retry later")
		return route, ""
	}
	if err != nil {
		status := http.StatusBadRequest
		var bad *envelopeError
		if errors.As(err, &bad) {
			status = bad.status
		}
		writeError(w, status, "bad_envelope", err.Error())
		return route, ""
	}
	s.deliver(ctx, w, m)
	return route, m.ID
}

func (s *PushServer) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.timeout > 0 {
		return context.WithTimeout(ctx, s.timeout)
	}
	return ctx, func() {}
}

// deliver runs the router and maps its Decision to the status code.
func (s *PushServer) deliver(ctx context.Context, w http.ResponseWriter, m *Message) {
	d := s.router.Process(ctx, m)
	if d.Ack {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// The reason code only: the error text stays in our logs.
	writeError(w, http.StatusServiceUnavailable, d.Reason, "not processed; redeliver")
}

// authenticate checks the bearer token and writes 401, 403 or 503 when it
// fails. It returns the caller's verified identity: the token's email,
// subject and issuer (the zero Identity when authentication is off).
func (s *PushServer) authenticate(w http.ResponseWriter, r *http.Request) (audit.Identity, bool) {
	if s.skipAuth {
		return audit.Identity{}, true
	}
	fail := func(status int, code, msg string, err error) (audit.Identity, bool) {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		}
		s.log.Warn("push request refused", zap.String("path", r.URL.Path), zap.String("code", code),
			zap.Error(err), logging.TraceFromHeaders(s.project, r.Header))
		writeError(w, status, code, msg)
		return audit.Identity{}, false
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return fail(http.StatusUnauthorized, "missing_token", "an Authorization: Bearer ID token is required", nil)
	}
	if strings.HasSuffix(token, ".SIGNATURE_REMOVED_BY_GOOGLE") {
		// Cloud Run's own IAM check verified the token and stripped its
		// signature; nothing here can verify it again.
		return fail(http.StatusUnauthorized, "signature_removed",
			"the platform removed the token signature; disable the platform invoker check or turn in-app verification off", nil)
	}
	p, err := s.validator.Validate(r.Context(), token, "")
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			// Google's certificates could not be fetched: retry later.
			return fail(http.StatusServiceUnavailable, "auth_unavailable", "token verification is unavailable", err)
		}
		return fail(http.StatusUnauthorized, "invalid_token", "the token is malformed, expired or not signed by Google", err)
	}
	if !slices.Contains(googleIssuers, p.Issuer) {
		return fail(http.StatusUnauthorized, "invalid_token", "the token is not issued by Google", fmt.Errorf("issuer %q", p.Issuer))
	}
	if !slices.Contains(s.audiences, p.Audience) {
		return fail(http.StatusUnauthorized, "wrong_audience", "the token is for another audience", fmt.Errorf("audience %q", p.Audience))
	}
	email, _ := p.Claims["email"].(string)
	if verified, _ := p.Claims["email_verified"].(bool); !verified || !s.emails[strings.ToLower(email)] {
		return fail(http.StatusForbidden, "forbidden", "this service account may not call this endpoint",
			fmt.Errorf("email %q (verified: %v)", email, p.Claims["email_verified"]))
	}
	return audit.Identity{Email: email, Subject: p.Subject, Issuer: p.Issuer}, true
}
