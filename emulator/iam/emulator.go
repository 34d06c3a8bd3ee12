// Package iam is a local stand-in for the IAM Credentials API's signBlob
// method and the public-key endpoints that verify its signatures, for
// development without a Google project and for tests of keyless signing.
//
// It speaks the real wire format: POST
// /v1/projects/-/serviceAccounts/EMAIL:signBlob takes {payload, delegates}
// and answers {keyId, signedBlob}; errors are Google JSON errors such as
// {"error":{"code":429,"message":...,"status":"RESOURCE_EXHAUSTED"}}. The
// signing key's certificate is at /service_accounts/v1/metadata/x509/EMAIL
// and its JWK set at /service_accounts/v1/metadata/jwk/EMAIL.
//
// Faults are injected on purpose: a latency (mean ± jitter), a quota (a
// token bucket; calls above it get 429 at once, as the real API answers),
// random 500/502/503 answers, hangs that hold a request until the client
// gives up, and the transient 403 "Permission iam.serviceAccounts.signBlob
// denied". All draws come from one source seeded by Options.Seed.
//
// Nothing in sign, jobs or worker imports this package.
package iam

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultEmail is the account the emulator signs as when neither
// Options.Email nor a key file names one.
const DefaultEmail = "signer@linkissuer-emulator.iam.gserviceaccount.com"

const (
	defaultHangMax = time.Minute
	maxBodyBytes   = 1 << 20
	maxChains      = 100
)

// Options configure an Emulator. A nil *Options means: DefaultEmail, a
// generated RSA-2048 key, no latency, no quota, no faults, seed 0.
type Options struct {
	// Email is the account served. Default: the key file's email, else
	// DefaultEmail.
	Email string
	// Key signs. Nil means a fresh RSA-2048 key.
	Key *rsa.PrivateKey
	// KeyID is returned as keyId. Default: derived from the public key.
	KeyID string
	// Latency is the mean time before an answer; Jitter spreads it
	// uniformly over Latency ± Jitter.
	Latency, Jitter time.Duration
	// Quota is the signBlob calls admitted per second (a token bucket);
	// calls above it get 429 RESOURCE_EXHAUSTED at once. 0 means unlimited.
	Quota float64
	// Burst is the bucket's depth. Default: one second of Quota.
	Burst int
	// Window, if set, counts the quota in fixed windows instead of a
	// bucket: Quota × Window calls per window (say 1000/s over a minute:
	// 60,000 per minute), all admitted as fast as they come, then 429s
	// until the window resets on the next multiple of Window since the Unix
	// epoch. Burst does not apply.
	Window time.Duration
	// ErrorRate is the share of calls answered 500, 502 or 503.
	ErrorRate float64
	// HangRate is the share of calls held until the client gives up, the
	// emulator closes or HangMax passes (then 504).
	HangRate float64
	// HangMax bounds a hang. Default one minute.
	HangMax time.Duration
	// DeniedRate is the share of calls answered with the transient 403
	// "Permission iam.serviceAccounts.signBlob denied".
	DeniedRate float64
	// Seed seeds the draws of latency and faults.
	Seed uint64
}

// Validate reports impossible options. It does not modify o.
func (o *Options) Validate() error {
	if o == nil {
		return nil
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"error rate", o.ErrorRate}, {"hang rate", o.HangRate}, {"denied rate", o.DeniedRate}} {
		if r.v < 0 || r.v > 1 {
			return fmt.Errorf("%s %v is not between 0 and 1", r.name, r.v)
		}
	}
	if o.ErrorRate+o.HangRate+o.DeniedRate > 1 {
		return errors.New("error, hang and denied rates add up to more than 1")
	}
	if o.Latency < 0 || o.Jitter < 0 || o.HangMax < 0 {
		return errors.New("latency, jitter and hang max must not be negative")
	}
	if o.Quota < 0 || o.Burst < 0 || o.Window < 0 {
		return errors.New("quota, burst and window must not be negative")
	}
	if o.Window > 0 && o.Quota > 0 && o.Quota*o.Window.Seconds() < 1 {
		return errors.New("a quota window must admit at least one call")
	}
	if o.Email != "" && !strings.Contains(o.Email, "@") {
		return fmt.Errorf("email %q is not an email", o.Email)
	}
	return nil
}

// Stats counts signBlob requests by outcome.
type Stats struct {
	Requests   int64 // every signBlob request received
	Signed     int64 // answered with a signature
	Throttled  int64 // 429 RESOURCE_EXHAUSTED
	ServerErr  int64 // injected 500, 502, 503
	Hung       int64 // injected hangs
	Denied     int64 // injected transient 403
	BadRequest int64 // 400: malformed body or delegates
	NotFound   int64 // 404: unknown account or method
	Canceled   int64 // the client gave up before the answer
}

// Emulator is the IAM Credentials stand-in, an http.Handler. It is safe
// for concurrent use. Close releases held requests.
type Emulator struct {
	email     string
	keyID     string
	key       *rsa.PrivateKey
	generated bool
	certPEM   []byte
	hangMax   time.Duration
	quota     interface{ take(time.Time) bool }
	dice      *dice
	mux       *http.ServeMux
	done      chan struct{}
	closeOnce sync.Once

	requests, signed, throttled, serverErr, hung, denied, badRequest, notFound, canceled atomic.Int64

	mu     sync.Mutex
	chains [][]string
}

// New builds an Emulator.
func New(opts *Options) (*Emulator, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	e := &Emulator{email: o.Email, key: o.Key, keyID: o.KeyID, hangMax: o.HangMax, done: make(chan struct{})}
	if e.email == "" {
		e.email = DefaultEmail
	}
	if e.key == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("generating the emulator's key: %w", err)
		}
		e.key, e.generated = k, true
	}
	e.key.Precompute()
	if e.keyID == "" {
		e.keyID = keyIDFor(&e.key.PublicKey)
	}
	if e.hangMax == 0 {
		e.hangMax = defaultHangMax
	}
	cert, err := selfSignedCert(e.key, e.email, time.Now())
	if err != nil {
		return nil, fmt.Errorf("emulator certificate: %w", err)
	}
	e.certPEM = cert
	burst := o.Burst
	if burst == 0 {
		burst = max(1, int(o.Quota))
	}
	e.quota = newBucket(o.Quota, burst, time.Now())
	if o.Window > 0 && o.Quota > 0 {
		e.quota = newWindow(int64(o.Quota*o.Window.Seconds()), o.Window)
	}
	e.dice = newDice(&o)

	e.mux = http.NewServeMux()
	e.mux.HandleFunc("POST /v1/projects/{project}/serviceAccounts/{name}", e.signBlob)
	e.mux.HandleFunc("GET /service_accounts/v1/metadata/x509/{email}", e.x509)
	e.mux.HandleFunc("GET /service_accounts/v1/metadata/jwk/{email}", e.jwks)
	e.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	return e, nil
}

// ServeHTTP implements http.Handler.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.mux.ServeHTTP(w, r) }

// Close answers requests held by latency or hangs with 503 UNAVAILABLE at
// once, and later signBlob requests too. It is idempotent.
func (e *Emulator) Close() { e.closeOnce.Do(func() { close(e.done) }) }

// Email is the service account served.
func (e *Emulator) Email() string { return e.email }

// KeyID is the keyId returned with each signature.
func (e *Emulator) KeyID() string { return e.keyID }

// PublicKey verifies the emulator's signatures.
func (e *Emulator) PublicKey() *rsa.PublicKey { return &e.key.PublicKey }

// Generated reports that the key was generated rather than given.
func (e *Emulator) Generated() bool { return e.generated }

// Stats returns the request counters.
func (e *Emulator) Stats() Stats {
	return Stats{
		Requests: e.requests.Load(), Signed: e.signed.Load(), Throttled: e.throttled.Load(),
		ServerErr: e.serverErr.Load(), Hung: e.hung.Load(), Denied: e.denied.Load(),
		BadRequest: e.badRequest.Load(), NotFound: e.notFound.Load(), Canceled: e.canceled.Load(),
	}
}

// Delegates returns the distinct delegate chains seen in signBlob requests,
// in order of first appearance (at most 100; an empty chain is recorded too).
func (e *Emulator) Delegates() [][]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([][]string, len(e.chains))
	for i, c := range e.chains {
		out[i] = append([]string(nil), c...)
	}
	return out
}

func (e *Emulator) recordChain(chain []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.chains {
		if equal(c, chain) {
			return
		}
	}
	if len(e.chains) < maxChains {
		e.chains = append(e.chains, append([]string{}, chain...))
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type signBlobRequest struct {
	Payload   *string  `json:"payload"`
	Delegates []string `json:"delegates"`
}

type signBlobResponse struct {
	KeyID      string `json:"keyId"`
	SignedBlob string `json:"signedBlob"`
}

func (e *Emulator) signBlob(w http.ResponseWriter, r *http.Request) {
	e.requests.Add(1)
	email, ok := strings.CutSuffix(r.PathValue("name"), ":signBlob")
	if !ok {
		e.notFound.Add(1)
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Method not found.")
		return
	}
	if r.PathValue("project") != "-" {
		e.badRequest.Add(1)
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "The project ID must be '-' in projects/-/serviceAccounts/"+email)
		return
	}
	if email != e.email {
		e.notFound.Add(1)
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Not found; Gaia id not found for email "+email)
		return
	}
	if !e.quota.take(time.Now()) {
		e.throttled.Add(1)
		writeError(w, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED",
			"Quota exceeded for quota metric 'Sign blob requests' and limit 'Sign blob requests per minute' of service 'iamcredentials.googleapis.com'.")
		return
	}
	var req signBlobRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := dec.Decode(&req); err != nil || req.Payload == nil {
		e.badRequest.Add(1)
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received; payload is required.")
		return
	}
	payload, err := decodeBytes(*req.Payload)
	if err != nil {
		e.badRequest.Add(1)
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid value at 'payload' (TYPE_BYTES), Base64 decoding failed.")
		return
	}
	for _, d := range req.Delegates {
		if !strings.HasPrefix(d, "projects/-/serviceAccounts/") || !strings.Contains(d, "@") {
			e.badRequest.Add(1)
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Delegates must be of the form projects/-/serviceAccounts/EMAIL, got "+d)
			return
		}
	}
	e.recordChain(req.Delegates)

	f, latency, status := e.dice.roll()
	if f == faultHang {
		e.hung.Add(1)
		if !e.wait(w, r, e.hangMax) {
			return
		}
		writeError(w, http.StatusGatewayTimeout, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.")
		return
	}
	if !e.wait(w, r, latency) {
		return
	}
	switch f {
	case faultServer:
		e.serverErr.Add(1)
		writeServerError(w, status)
		return
	case faultDenied:
		e.denied.Add(1)
		writeError(w, http.StatusForbidden, "PERMISSION_DENIED",
			"Permission 'iam.serviceAccounts.signBlob' denied on resource (or it may not exist).")
		return
	}
	sum := sha256.Sum256(payload)
	sig, err := rsa.SignPKCS1v15(nil, e.key, crypto.SHA256, sum[:])
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL", "Internal error encountered.")
		return
	}
	e.signed.Add(1)
	writeJSON(w, http.StatusOK, signBlobResponse{KeyID: e.keyID, SignedBlob: base64.StdEncoding.EncodeToString(sig)})
}

// wait holds the request for d. It reports false when the client gave up
// (nothing more to say) or the emulator closed first (then it has
// answered 503, as a server going away does).
func (e *Emulator) wait(w http.ResponseWriter, r *http.Request, d time.Duration) bool {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-e.done:
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "The service is shutting down.")
		return false
	default:
	}
	if timeout == nil {
		return true
	}
	select {
	case <-timeout:
		return true
	case <-r.Context().Done():
		e.canceled.Add(1)
		return false
	case <-e.done:
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "The service is shutting down.")
		return false
	}
}

func (e *Emulator) x509(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("email") != e.email {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{e.keyID: string(e.certPEM)})
}

func (e *Emulator) jwks(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("email") != e.email {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string][]jwk{"keys": {jwkFor(&e.key.PublicKey, e.keyID)}})
}

// decodeBytes accepts the base64 forms proto3 JSON accepts for bytes.
func decodeBytes(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("bad base64")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// writeError answers with Google's JSON error shape.
func writeError(w http.ResponseWriter, code int, status, message string) {
	type body struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
	}
	writeJSON(w, code, map[string]body{"error": {Code: code, Message: message, Status: status}})
}

// writeServerError answers an injected 5xx the way Google's front ends do:
// JSON for 500 and 503, an HTML page for 502.
func writeServerError(w http.ResponseWriter, code int) {
	switch code {
	case http.StatusBadGateway:
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(code)
		io.WriteString(w, "<!DOCTYPE html>\n<html lang=en><title>Error 502 (Server Error)!!1</title><p><b>502.</b> <ins>That's an error.</ins></html>\n")
	case http.StatusServiceUnavailable:
		writeError(w, code, "UNAVAILABLE", "The service is currently unavailable.")
	default:
		writeError(w, http.StatusInternalServerError, "INTERNAL", "Internal error encountered.")
	}
}
