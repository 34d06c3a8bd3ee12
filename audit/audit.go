// Package audit accounts for every issued link without storing the
// credential: a linkissuer.audit.v1 record per link, written to a Sink
// (a Pub/Sub topic, batched, or Cloud Logging structured entries).
//
// Contract: a Recorder builds records from what was signed, never from the
// URL's signature; the URL itself is reduced to Fingerprint. In fail-closed
// mode Record returns an error when the sink did not take the record, and
// callers must then withhold the link (nack the message, answer 503); in
// fail-open mode a sink error is logged and counted, and Record returns nil.
package audit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// Sink takes audit records. Write returns once the record is durable as far
// as the sink can tell (published, or handed to the log); it must honour
// ctx and be safe for concurrent use.
type Sink interface {
	Write(ctx context.Context, r *schema.AuditRecord) error
}

// Paths say what asked for a link.
const (
	PathEvent   = "event"
	PathSync    = "sync"
	PathJob     = "job"
	PathDurable = "durable"
	PathCLI     = "cli"
)

// Requester says who asked for a link; it travels in the request context
// from the transport (which verified it) to the Recorder.
type Requester struct {
	Path         string
	Caller       string
	Subscription string
	MessageID    string
	JobID        string
	TokenID      string
}

type requesterKey struct{}

// WithRequester returns ctx carrying r.
func WithRequester(ctx context.Context, r Requester) context.Context {
	return context.WithValue(ctx, requesterKey{}, r)
}

// RequesterFrom returns the Requester in ctx and whether there is one.
func RequesterFrom(ctx context.Context) (Requester, bool) {
	r, ok := ctx.Value(requesterKey{}).(Requester)
	return r, ok
}

// Signer describes the signing identity recorded with every link.
type Signer struct {
	// Identity is the service-account email or HMAC access ID.
	Identity string
	// Kind is sign.KindRSA or sign.KindHMAC.
	Kind sign.Kind
	// KeyID is a key file's private_key_id, when known.
	KeyID string
}

// ErrUnavailable is what Record's errors match in fail-closed mode: the
// record was not written and the link must not be released. It is
// retryable (sign.IsRetryable), so messages are redelivered and the API
// answers 503.
var ErrUnavailable = errors.New("audit: record not written; link withheld")

// Recorder builds and writes audit records.
type Recorder struct {
	sink       Sink
	signer     Signer
	failClosed bool
	log        *zap.Logger
	failures   atomic.Int64
}

// Options configure a Recorder.
type Options struct {
	Signer Signer
	// FailClosed withholds links whose record could not be written.
	FailClosed bool
	// Logger receives sink failures in fail-open mode; nil means none.
	Logger *zap.Logger
}

// New returns a Recorder writing to sink.
func New(sink Sink, o Options) (*Recorder, error) {
	if sink == nil {
		return nil, errors.New("audit: no sink")
	}
	if o.Signer.Identity == "" {
		return nil, errors.New("audit: the signer identity is empty")
	}
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Recorder{sink: sink, signer: o.Signer, failClosed: o.FailClosed, log: log}, nil
}

// Failures is how many records could not be written (fail-open mode).
func (r *Recorder) Failures() int64 { return r.failures.Load() }

// Link describes one signed link to record: the request that was signed,
// its result and the object generation it is for.
type Link struct {
	Request    sign.Request
	Signed     *sign.SignedURL
	Generation int64
	Outcome    string
}

// Record writes the record of l, with the Requester found in ctx.
func (r *Recorder) Record(ctx context.Context, l Link) error {
	rec, err := r.Build(ctx, l)
	if err != nil {
		return err
	}
	if err := r.sink.Write(ctx, rec); err != nil {
		if r.failClosed {
			return &sign.RetryableError{Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
		}
		r.failures.Add(1)
		r.log.Warn("audit record not written (fail-open: the link is released)", zap.String("fingerprint", rec.Fingerprint), zap.Error(err))
	}
	return nil
}

// Build returns the record of l without writing it.
func (r *Recorder) Build(ctx context.Context, l Link) (*schema.AuditRecord, error) {
	if l.Signed == nil || l.Signed.URL == "" {
		return nil, errors.New("audit: no signed URL")
	}
	fp, err := Fingerprint(l.Signed.URL)
	if err != nil {
		return nil, err
	}
	who, _ := RequesterFrom(ctx)
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	rec := &schema.AuditRecord{
		RecordID:       hex.EncodeToString(id),
		IssuedAt:       l.Request.Time.UTC(),
		Path:           who.Path,
		Outcome:        l.Outcome,
		Caller:         who.Caller,
		Subscription:   who.Subscription,
		MessageID:      who.MessageID,
		JobID:          who.JobID,
		TokenID:        who.TokenID,
		Bucket:         l.Request.Bucket,
		Object:         l.Request.Object,
		Generation:     l.Generation,
		Method:         strings.ToUpper(l.Request.Method),
		ExpiresAt:      l.Signed.Expires.UTC(),
		SignerIdentity: r.signer.Identity,
		SignerKind:     strings.ToLower(r.signer.Kind.String()),
		KeyID:          r.signer.KeyID,
		Fingerprint:    fp,
	}
	if rec.Path == "" {
		rec.Path = PathEvent
	}
	if rec.Outcome == "" {
		rec.Outcome = schema.OutcomeIssued
	}
	rec.SignedHeaders = append(rec.SignedHeaders, "host")
	for _, h := range l.Signed.Headers {
		rec.SignedHeaders = append(rec.SignedHeaders, strings.ToLower(h.Name))
	}
	slices.Sort(rec.SignedHeaders)
	for _, p := range l.Request.Query {
		rec.ResponseParams = append(rec.ResponseParams, schema.AuditParam{Name: p.Name, Value: p.Value})
	}
	return rec, nil
}

// signatureParams are the query parameters that carry a V4 signature.
var signatureParams = []string{"X-Goog-Signature", "X-Amz-Signature"}

// Fingerprint identifies a signed URL without keeping its credential:
// "sha256:" and the lower-case hex SHA-256 of the URL with its signature
// parameter (X-Goog-Signature or X-Amz-Signature) removed, the other
// parameters kept in their order and encoding. Links that differ only in
// their signature share a fingerprint; any other difference (object,
// expiry, signing time, credential) changes it. It is pure: `linkissuer
// verify` computes the same value from a link found in the wild.
func Fingerprint(rawURL string) (string, error) {
	base, query, _ := strings.Cut(rawURL, "?")
	if _, err := url.Parse(rawURL); err != nil {
		return "", fmt.Errorf("audit: fingerprint: %w", err)
	}
	kept := make([]string, 0, 8)
	found := false
	for part := range strings.SplitSeq(query, "&") {
		name, _, _ := strings.Cut(part, "=")
		if slices.ContainsFunc(signatureParams, func(s string) bool { return strings.EqualFold(s, name) }) {
			found = true
			continue
		}
		kept = append(kept, part)
	}
	if !found {
		return "", errors.New("audit: fingerprint: the URL carries no V4 signature")
	}
	h := sha256.New()
	h.Write([]byte(base))
	h.Write([]byte{'?'})
	h.Write([]byte(strings.Join(kept, "&")))
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
