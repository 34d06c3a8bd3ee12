package durable

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/links"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/worker"
)

// Routes served by a Server.
const (
	PathMint  = "/v1/durable-links"
	PathClick = "/l/"
)

// Defaults of Options.
const (
	DefaultMaxTTL    = 90 * 24 * time.Hour
	DefaultLinkTTL   = 15 * time.Minute
	DefaultCacheSize = 10000
	maxMintBody      = 8 << 10
)

// Revoker says whether a durable link was revoked; nil means none is.
// It must be fast (answer from memory) and safe for concurrent use;
// *revocation.Poller implements it.
type Revoker interface {
	// Revoked returns why the link is revoked ("" when it is not), or an
	// error when it cannot tell (the list is unread or stale): the click
	// is then refused with 503, never let through.
	Revoked(ctx context.Context, tokenID, bucket, object string, issuedAt time.Time) (reason string, err error)
}

// TokenAuditor records what happens to a durable link's token without a
// URL being signed: its creation and its refused clicks. Both go through
// the recorder's fail-open or fail-closed path, like a link's record;
// *audit.Recorder implements it.
type TokenAuditor interface {
	Mint(ctx context.Context, m audit.Minting) error
	Refuse(ctx context.Context, f audit.Refusal) error
}

// Authenticator authenticates a minting caller, writing the refusal
// itself; *worker.PushServer implements it.
type Authenticator interface {
	Authenticate(w http.ResponseWriter, r *http.Request) (caller audit.Identity, ok bool)
}

// Options configure a Server, or a Minter (which takes the keys, the
// public URL, TTL and MaxTTL, Tokens, Logger and Now).
type Options struct {
	// Keys authenticate tokens; Ring, when set, replaces them and may be
	// refreshed while the Server runs (rotation without a restart).
	Keys *Keys
	Ring *KeyRing
	// Issuer issues the signed URL of a click (policy, lookup, signing and
	// its audit record); a *links.Sync over the service's
	// links.Issuer.
	Issuer worker.LinkIssuer
	// Audit records clicks answered from the cache (the Issuer records the
	// others); nil records none.
	Audit links.Auditor
	// Auth authenticates POST /v1/durable-links; required.
	Auth Authenticator
	// PublicURL is the https://HOST prefix of durable links.
	PublicURL string
	// MaxTTL caps a durable link's lifetime (default DefaultMaxTTL).
	MaxTTL time.Duration
	// TTL is the lifetime of the durable links a Minter mints (default
	// MaxTTL; at least 1m, at most MaxTTL). A Server takes each link's
	// from its request.
	TTL time.Duration
	// LinkTTL is the lifetime of the signed URL a click redirects to
	// (default DefaultLinkTTL); it is reused for half of it.
	LinkTTL time.Duration
	// CacheSize bounds the signed URLs kept (default DefaultCacheSize).
	CacheSize int
	Revoked   Revoker
	// Tokens records every durable link minted, and clicks refused after
	// the token authenticated (revoked, expired, revocation list
	// unavailable); nil records none. When it fails closed, a durable link
	// whose record was not written is not released (503
	// audit_unavailable).
	Tokens TokenAuditor
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server serves POST /v1/durable-links and GET /l/TOKEN.
type Server struct {
	o      Options
	public string
	log    *zap.Logger
	flight singleflight.Group
	cache  *lru
}

// New validates o and returns a Server.
func New(o Options) (*Server, error) {
	public, err := o.prepare()
	if err != nil {
		return nil, err
	}
	if o.Issuer == nil || o.Auth == nil {
		return nil, errors.New("durable: issuer and authenticator are required")
	}
	if o.LinkTTL == 0 {
		o.LinkTTL = DefaultLinkTTL
	}
	if o.LinkTTL < 2*time.Second || o.LinkTTL > sign.MaxExpiry || o.LinkTTL%time.Second != 0 {
		return nil, fmt.Errorf("durable: link lifetime %s outside 2s..%s or not whole seconds", o.LinkTTL, sign.MaxExpiry)
	}
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	return &Server{o: o, public: public, log: o.Logger, cache: newLRU(o.CacheSize)}, nil
}

// prepare checks and completes, in o (a copy of the caller's), what a
// Server and a Minter share: the keys (Ring, from Keys when unset), the
// public URL (returned without a trailing slash), MaxTTL, Logger and Now.
func (o *Options) prepare() (public string, err error) {
	if o.Ring == nil && o.Keys != nil {
		o.Ring = NewKeyRing(o.Keys)
	}
	if o.Ring == nil || o.Ring.Current() == nil {
		return "", errors.New("durable: keys are required")
	}
	p, err := url.Parse(o.PublicURL)
	if err != nil || p.Scheme == "" || p.Host == "" || (p.Path != "" && p.Path != "/") || p.RawQuery != "" {
		return "", fmt.Errorf("durable: public URL %q is not scheme://host", o.PublicURL)
	}
	if o.MaxTTL == 0 {
		o.MaxTTL = DefaultMaxTTL
	}
	if o.MaxTTL < time.Minute {
		return "", fmt.Errorf("durable: max lifetime %s under 1m", o.MaxTTL)
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return strings.TrimSuffix(o.PublicURL, "/"), nil
}

// ServeHTTP routes PathMint and PathClick.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == PathMint:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			worker.WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed", "POST only")
			return
		}
		s.mint(w, r)
	case strings.HasPrefix(r.URL.Path, PathClick):
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			worker.WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed", "GET or HEAD only")
			return
		}
		s.click(w, r, strings.TrimPrefix(r.URL.Path, PathClick))
	default:
		http.NotFound(w, r)
	}
}

// MintRequest is the body of POST /v1/durable-links.
type MintRequest struct {
	Bucket     string `json:"bucket"`
	Object     string `json:"object"`
	Generation int64  `json:"generation,omitempty"`
	// Method is GET (default) or HEAD: a durable link is followed by a
	// browser.
	Method string `json:"method,omitempty"`
	// TTL is the durable link's lifetime: N days ("30d") or a Go duration;
	// empty means the cap.
	TTL string `json:"ttl,omitempty"`
	// ResponseParams are signed into every URL the link redirects to;
	// names from ResponseParamNames (a name the policy sets keeps the
	// policy's value).
	ResponseParams map[string]string `json:"response_params,omitempty"`
}

// MintResponse answers POST /v1/durable-links; an event's link.v1
// message carries the same object (worker --durable-links).
type MintResponse = schema.DurableLink

func (s *Server) mint(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.o.Auth.Authenticate(w, r)
	if !ok {
		return
	}
	var req MintRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxMintBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		worker.WriteError(w, http.StatusBadRequest, string(schema.CodeInvalidJSON), "the body is not one JSON object of bucket, object, generation, method, ttl")
		return
	}
	ttl, err := s.ttl(req.TTL)
	if err != nil {
		worker.WriteError(w, http.StatusBadRequest, string(schema.CodeInvalidField), err.Error())
		return
	}
	method := strings.ToUpper(req.Method)
	if method == "" {
		method = http.MethodGet
	}
	switch {
	case req.Bucket == "":
		worker.WriteError(w, http.StatusBadRequest, string(schema.CodeMissingField), "bucket is required")
		return
	case method != http.MethodGet && method != http.MethodHead:
		worker.WriteError(w, http.StatusBadRequest, string(schema.CodeInvalidField), "method: GET or HEAD only")
		return
	case req.Generation < 0:
		worker.WriteError(w, http.StatusBadRequest, string(schema.CodeInvalidField), "generation: negative")
		return
	}
	if err := schema.ValidateObjectName("object", req.Object); err != nil {
		worker.WriteError(w, http.StatusBadRequest, string(schema.CodeOf(err)), err.Error())
		return
	}
	now := s.o.Now().Truncate(time.Second)
	c := Claims{ID: NewID(), Bucket: req.Bucket, Object: req.Object, Generation: req.Generation, Method: method,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(ttl).Unix()}
	for name, v := range req.ResponseParams {
		c.Params = append(c.Params, Param{Name: name, Value: v})
	}
	slices.SortFunc(c.Params, func(a, b Param) int { return strings.Compare(a.Name, b.Name) })
	tok, err := s.o.Ring.Current().Mint(c)
	if err != nil {
		worker.WriteError(w, http.StatusBadRequest, string(schema.CodeInvalidField), strings.TrimPrefix(strings.TrimPrefix(err.Error(), ErrMalformed.Error()+": "), "durable: "))
		return
	}
	ctx := audit.WithRequester(r.Context(), audit.Requester{Path: audit.PathDurable, Caller: caller})
	if err := recordMint(ctx, s.o.Tokens, c, tok); err != nil {
		// Fail-closed: an unrecorded durable link is not released.
		status, code, msg := worker.LinkErrorStatus(err)
		s.log.Warn("durable link withheld: not audited", zap.String("token_id", c.ID), zap.String("code", code), zap.Error(err))
		worker.WriteError(w, status, code, msg)
		return
	}
	s.log.Info("durable link minted", zap.String("token_id", c.ID), zap.String("caller", caller.Email),
		zap.String("bucket", c.Bucket), zap.Time("expires_at", now.Add(ttl)))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(c.link(s.public, tok))
}

// ttl parses a durable lifetime and applies the cap.
func (s *Server) ttl(v string) (time.Duration, error) {
	if v == "" {
		return s.o.MaxTTL, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 32)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("ttl: expected N days (30d) or a Go duration, got %.40q", v)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, fmt.Errorf("ttl: expected N days (30d) or a Go duration, got %.40q", v)
		}
	}
	switch {
	case d < time.Minute:
		return 0, fmt.Errorf("ttl: %s is under 1m", d)
	case d > s.o.MaxTTL:
		return 0, fmt.Errorf("ttl: %s is over the cap of %s", d, s.o.MaxTTL)
	}
	return d, nil
}

// click answers GET /l/TOKEN: 404 for anything not a valid token (bad
// encoding, unknown key, wrong MAC: nothing is revealed), 410 for an
// expired or revoked link, 503 while the revocation list cannot be
// trusted, else the issuer's answer (403 policy, 404 object, 503 signer or
// audit) or 302 to the signed URL. Refusals of an authenticated token are
// audited with outcome "refused" and a reason.
func (s *Server) click(w http.ResponseWriter, r *http.Request, tok string) {
	now := s.o.Now()
	ctx := r.Context()
	c, err := s.o.Ring.Current().Parse(tok, now)
	switch {
	case errors.Is(err, ErrExpired):
		s.refuse(ctx, w, c, tok, now, http.StatusGone, "expired", "expired", "this link has expired")
		return
	case err != nil:
		s.refuse(ctx, w, Claims{}, "", now, http.StatusNotFound, "not_found", "", "no such link")
		return
	}
	if s.o.Revoked != nil {
		reason, err := s.o.Revoked.Revoked(ctx, c.ID, c.Bucket, c.Object, time.Unix(c.IssuedAt, 0))
		switch {
		case err != nil:
			s.log.Warn("durable click refused: revocation list unavailable", zap.String("token_id", c.ID), zap.Error(err))
			w.Header().Set("Retry-After", "10")
			s.refuse(ctx, w, c, tok, now, http.StatusServiceUnavailable, "unavailable", "revocations_unavailable",
				"the revocation list cannot be read; try again later")
			return
		case reason != "":
			s.cache.remove(c.ID)
			s.refuse(ctx, w, c, tok, now, http.StatusGone, "revoked", "revoked: "+reason, "this link has been revoked")
			return
		}
	}
	link, err := s.signed(ctx, c, now)
	if err != nil {
		status, code, msg := worker.LinkErrorStatus(err)
		if status >= 500 {
			s.log.Warn("durable click failed", zap.String("token_id", c.ID), zap.String("code", code), zap.Error(err))
		}
		s.refuse(ctx, w, Claims{ID: c.ID}, "", now, status, code, "", msg)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, link.URL, http.StatusFound)
}

// refuse answers a refused click and logs it with the token id. When
// reason is set (the token authenticated: c and tok are real) the refusal
// is also audited; an audit failure does not change the answer.
func (s *Server) refuse(ctx context.Context, w http.ResponseWriter, c Claims, tok string, now time.Time, status int, code, reason, msg string) {
	s.log.Info("durable click refused", zap.String("token_id", c.ID), zap.Int("status", status), zap.String("code", code),
		zap.String("outcome", schema.OutcomeRefused), zap.String("reason", reason))
	if reason != "" && s.o.Tokens != nil {
		err := s.o.Tokens.Refuse(audit.WithRequester(ctx, requester(c)), audit.Refusal{At: now, Bucket: c.Bucket, Object: c.Object,
			Generation: c.Generation, Method: c.Method, ExpiresAt: time.Unix(c.ExpiresAt, 0), Reason: reason, Token: tok})
		if err != nil {
			s.log.Warn("refused click not audited", zap.String("token_id", c.ID), zap.Error(err))
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	worker.WriteError(w, status, code, msg)
}

// signed returns the signed URL of c: the cached one while under half its
// lifetime, else a fresh one, issued once for concurrent clicks. Every
// click is audited: the Issuer records the click that signed, s.o.Audit
// the others.
func (s *Server) signed(ctx context.Context, c Claims, now time.Time) (*schema.Link, error) {
	if e, ok := s.cache.get(c.ID, now); ok {
		return e, s.record(ctx, c, e)
	}
	leader := false
	v, err, _ := s.flight.Do(c.ID, func() (any, error) {
		leader = true
		if e, ok := s.cache.get(c.ID, s.o.Now()); ok {
			leader = false
			return e, nil
		}
		// The flight is shared: it does not stop when the click that
		// started it goes away; the timeout bounds it.
		ictx := audit.WithRequester(context.WithoutCancel(ctx), requester(c))
		ictx, cancel := context.WithTimeout(ictx, 30*time.Second)
		defer cancel()
		l, err := s.o.Issuer.IssueLink(ictx, worker.LinkRequest{
			Bucket: c.Bucket, Object: c.Object, Generation: c.Generation, Method: c.Method,
			ExpiresIn:      strconv.FormatInt(int64(s.o.LinkTTL/time.Second), 10) + "s",
			ResponseParams: params(c.Params),
			Caller:         clicker(c),
		})
		if err != nil {
			return nil, err
		}
		s.cache.put(c.ID, l, l.IssuedAt.Add(l.ExpiresAt.Sub(l.IssuedAt)/2))
		return l, nil
	})
	if err != nil {
		return nil, err
	}
	l := v.(*schema.Link)
	if !leader {
		return l, s.record(ctx, c, l)
	}
	return l, nil
}

func params(ps []Param) []sign.Param {
	var out []sign.Param
	for _, p := range ps {
		out = append(out, sign.Param{Name: p.Name, Value: p.Value})
	}
	return out
}

// clicker stands for whoever follows a durable link: anyone holding it.
func clicker(c Claims) audit.Identity { return audit.Identity{Email: "durable:" + c.ID} }

func requester(c Claims) audit.Requester {
	return audit.Requester{Path: audit.PathDurable, Caller: clicker(c), TokenID: c.ID}
}

// record audits a click answered with an already signed URL.
func (s *Server) record(ctx context.Context, c Claims, l *schema.Link) error {
	if s.o.Audit == nil {
		return nil
	}
	req := sign.Request{Method: l.Method, Bucket: l.Bucket, Object: l.Object, Time: l.IssuedAt, Expires: l.ExpiresAt.Sub(l.IssuedAt)}
	if u, err := url.Parse(l.URL); err == nil {
		for name, vals := range u.Query() {
			if strings.HasPrefix(name, "X-Goog-") || strings.HasPrefix(name, "X-Amz-") {
				continue
			}
			for _, v := range vals {
				req.Query = append(req.Query, sign.Param{Name: name, Value: v})
			}
		}
	}
	return s.o.Audit.Record(audit.WithRequester(ctx, requester(c)), audit.Link{
		Request: req, Signed: &sign.SignedURL{URL: l.URL, Method: l.HTTPMethod, Expires: l.ExpiresAt}, Generation: l.Generation,
	})
}

// lru is a bounded LRU of signed links by token id, each reusable until
// its reuse time.
type lru struct {
	mu    sync.Mutex
	max   int
	order *list.List
	items map[string]*list.Element
}

type entry struct {
	id    string
	link  *schema.Link
	until time.Time
}

func newLRU(max int) *lru {
	return &lru{max: max, order: list.New(), items: map[string]*list.Element{}}
}

func (c *lru) get(id string, now time.Time) (*schema.Link, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[id]
	if !ok {
		return nil, false
	}
	e := el.Value.(*entry)
	if !now.Before(e.until) {
		c.order.Remove(el)
		delete(c.items, id)
		return nil, false
	}
	c.order.MoveToFront(el)
	return e.link, true
}

func (c *lru) put(id string, l *schema.Link, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[id]; ok {
		el.Value = &entry{id: id, link: l, until: until}
		c.order.MoveToFront(el)
		return
	}
	c.items[id] = c.order.PushFront(&entry{id: id, link: l, until: until})
	for c.order.Len() > c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.items, old.Value.(*entry).id)
	}
}

func (c *lru) remove(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[id]; ok {
		c.order.Remove(el)
		delete(c.items, id)
	}
}

func (c *lru) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
