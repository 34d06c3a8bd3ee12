// Package audit accounts for every issued link without storing the
// credential: a linkissuer.audit.v1 record per link, written to a Sink
// (a Pub/Sub topic, batched, or Cloud Logging structured entries).
//
// Contract: a Recorder builds records from what was signed, never from the
// URL's signature; the URL itself is reduced to Fingerprint. In fail-closed
// mode Record returns an error when the sink did not take the record, and
// callers must then withhold the link (nack the message, answer 503); in
// fail-open mode Record does not wait for the sink at all: the record joins
// a bounded queue of records being written (Options.QueueSize), a record
// that finds the queue full is dropped, and drops and sink errors are
// logged and counted (Failures, Dropped, Collectors); Record returns nil.
//
// Begin starts a record without waiting for it, so that a caller releasing
// many links at once (a job's rows) can sign while the records are being
// written and wait for all of them just before the release.
//
// A durable link's token has records of its own, with no URL signed: Mint
// (the link created) and Refuse (a click refused). Their fingerprint is
// TokenFingerprint of the token, and they take the same fail-open or
// fail-closed path as a link's record.
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
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// Sink takes audit records. Write returns once the record is durable as far
// as the sink can tell (published, or handed to the log); it must honour
// ctx and be safe for concurrent use.
type Sink interface {
	Write(ctx context.Context, r *schema.AuditRecord) error
}

// Starter is a Sink that can hand a record over without waiting for the
// outcome: Start returns at once (or after a bounded hand-over), and wait
// reports what Write would have. PubSubSink, LogSink and Sinks are
// Starters; a Recorder runs other sinks' Write on a goroutine instead.
type Starter interface {
	Start(ctx context.Context, r *schema.AuditRecord) (wait func(context.Context) error)
}

// Paths say what asked for a link.
const (
	PathEvent   = "event"
	PathSync    = "sync"
	PathJob     = "job"
	PathDurable = "durable"
	PathCLI     = "cli"
)

// Identity is a verified caller: the email, subject (sub) and issuer
// (iss) of the ID token a push or API request carried. A caller with no
// token has only a name standing in for one in Email (the sign CLI's
// user, "durable:ID" for a click on a durable link).
type Identity struct {
	Email   string
	Subject string
	Issuer  string
}

// Requester says who asked for a link; it travels in the request context
// from the transport (which verified it) to the Recorder.
type Requester struct {
	Path         string
	Caller       Identity
	Subscription string
	MessageID    string
	JobID        string
	// Submitter is a job's submitter, as the job message says.
	Submitter string
	TokenID   string
}

type callerKey struct{}

// WithCaller returns ctx carrying the verified identity of the caller of a
// push or API request. A Requester without a Caller takes it, so
// transports that authenticate need not know how the request is handled.
func WithCaller(ctx context.Context, caller Identity) context.Context {
	if caller == (Identity{}) {
		return ctx
	}
	return context.WithValue(ctx, callerKey{}, caller)
}

// CallerFrom returns the caller WithCaller put in ctx, or the zero
// Identity.
func CallerFrom(ctx context.Context) Identity {
	c, _ := ctx.Value(callerKey{}).(Identity)
	return c
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
// record was not written and the link must not be released. The errors are
// transient with component failure.Audit (reason audit_unavailable), so
// messages are redelivered, job pieces redone and the API answers 503.
var ErrUnavailable = errors.New("audit: record not written; link withheld")

// DefaultQueueSize is Options.QueueSize's default: about ten seconds of
// records at a quota of 1,000 links/s.
const DefaultQueueSize = 10000

// Recorder builds and writes audit records.
type Recorder struct {
	sink       Sink
	signer     Signer
	failClosed bool
	log        *zap.Logger
	failures   atomic.Int64
	dropped    atomic.Int64
	// slots bounds the fail-open records being written; pending waits
	// for them (Flush).
	slots   chan struct{}
	pending sync.WaitGroup
}

// Options configure a Recorder.
type Options struct {
	Signer Signer
	// FailClosed withholds links whose record could not be written.
	FailClosed bool
	// QueueSize bounds the records being written in fail-open mode, where
	// Record does not wait for them; a record beyond it is dropped and
	// counted (default DefaultQueueSize).
	QueueSize int
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
	if o.QueueSize < 0 {
		return nil, errors.New("audit: negative queue size")
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Recorder{sink: sink, signer: o.Signer, failClosed: o.FailClosed, log: log,
		slots: make(chan struct{}, o.QueueSize)}, nil
}

// Failures is how many records could not be written in fail-open mode
// (sink errors and drops).
func (r *Recorder) Failures() int64 { return r.failures.Load() }

// Dropped is how many of Failures were dropped unwritten because
// QueueSize records were being written already.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Queued is how many fail-open records are being written now.
func (r *Recorder) Queued() int { return len(r.slots) }

// FailClosed reports whether links wait for their records.
func (r *Recorder) FailClosed() bool { return r.failClosed }

// Collectors are r's Prometheus metrics: linkissuer_audit_records_failed_total
// and linkissuer_audit_records_dropped_total (counters, fail-open mode) and
// linkissuer_audit_records_queued (gauge).
func (r *Recorder) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "linkissuer_audit_records_failed_total",
			Help: "Audit records not written in fail-open mode (sink errors and drops); their links were released.",
		}, func() float64 { return float64(r.Failures()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "linkissuer_audit_records_dropped_total",
			Help: "Audit records dropped in fail-open mode because the queue of records being written was full.",
		}, func() float64 { return float64(r.Dropped()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "linkissuer_audit_records_queued",
			Help: "Fail-open audit records being written now.",
		}, func() float64 { return float64(r.Queued()) }),
	}
}

// Flush waits until the fail-open records being written are written (or
// failed), or ctx ends. Stop the sink's publisher first, or records may
// wait for their batch's delay.
func (r *Recorder) Flush(ctx context.Context) error {
	done := make(chan struct{})
	go func() { r.pending.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Link describes one signed link to record: the request that was signed,
// its result and the object generation it is for.
type Link struct {
	Request    sign.Request
	Signed     *sign.SignedURL
	Generation int64
	Outcome    string
}

// Record writes the record of l, with the Requester found in ctx. In
// fail-closed mode it returns once the sink has the record, or with an
// error matching ErrUnavailable; in fail-open mode it returns at once (see
// the package doc).
func (r *Recorder) Record(ctx context.Context, l Link) error {
	wait, err := r.Begin(ctx, l)
	if err != nil {
		return err
	}
	return wait(ctx)
}

// Begin builds the record of l and starts writing it; wait reports the
// outcome as Record would; it may be called again after a call returned
// its context's error. A caller that releases
// several links together begins every record as it signs and waits for
// them all before the release (fail-closed), so that signing and writing
// overlap. In fail-open mode Begin queues the record and wait returns nil
// at once.
func (r *Recorder) Begin(ctx context.Context, l Link) (wait func(context.Context) error, err error) {
	rec, err := r.Build(ctx, l)
	if err != nil {
		return nil, err
	}
	return r.begin(ctx, rec), nil
}

// begin starts writing rec: every record, of a link or of a durable
// link's token, goes this way. Fail-closed, wait reports the sink's
// outcome as an error matching ErrUnavailable; fail-open, rec joins the
// bounded queue (or is dropped and counted) and wait returns nil at once.
func (r *Recorder) begin(ctx context.Context, rec *schema.AuditRecord) (wait func(context.Context) error) {
	if r.failClosed {
		w := r.start(ctx, rec)
		return func(ctx context.Context) error {
			if err := w(ctx); err != nil {
				return failure.Transient(failure.Audit, fmt.Errorf("%w: %w", ErrUnavailable, err))
			}
			return nil
		}
	}
	select {
	case r.slots <- struct{}{}:
	default:
		r.dropped.Add(1)
		r.failures.Add(1)
		r.log.Warn("audit record dropped: the queue is full (fail-open: the link is released)", zap.String("fingerprint", rec.Fingerprint))
		return nothing
	}
	// The record outlives the request that asked for the link.
	bg := context.WithoutCancel(ctx)
	w := r.start(bg, rec)
	r.pending.Add(1)
	go func() {
		defer r.pending.Done()
		defer func() { <-r.slots }()
		if err := w(bg); err != nil {
			r.failures.Add(1)
			r.log.Warn("audit record not written (fail-open: the link is released)", zap.String("fingerprint", rec.Fingerprint), zap.Error(err))
		}
	}()
	return nothing
}

func nothing(context.Context) error { return nil }

// start hands rec to the sink.
func (r *Recorder) start(ctx context.Context, rec *schema.AuditRecord) func(context.Context) error {
	return startOn(ctx, r.sink, rec)
}

// startOn starts rec on s: Start for a Starter, Write on a goroutine
// otherwise.
func startOn(ctx context.Context, s Sink, rec *schema.AuditRecord) func(context.Context) error {
	if st, ok := s.(Starter); ok {
		return st.Start(ctx, rec)
	}
	done := make(chan error, 1)
	go func() { done <- s.Write(ctx, rec) }()
	return func(wctx context.Context) error {
		select {
		case err := <-done:
			return err
		case <-wctx.Done():
			return wctx.Err()
		}
	}
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
	rec := r.newRecord(ctx, PathEvent)
	rec.IssuedAt = l.Request.Time.UTC()
	rec.Outcome = l.Outcome
	rec.Bucket, rec.Object, rec.Generation = l.Request.Bucket, l.Request.Object, l.Generation
	rec.Method = strings.ToUpper(l.Request.Method)
	rec.ExpiresAt = l.Signed.Expires.UTC()
	rec.Fingerprint = fp
	if rec.Outcome == "" {
		rec.Outcome = schema.OutcomeIssued
	}
	rec.SignedHeaders = append(rec.SignedHeaders, "host")
	for _, h := range l.Signed.Headers {
		rec.SignedHeaders = append(rec.SignedHeaders, strings.ToLower(h.Name))
	}
	slices.Sort(rec.SignedHeaders)
	rec.ResponseParams = auditParams(l.Request.Query)
	return rec, nil
}

// newRecord returns a record with a fresh id, the Requester found in ctx
// (path, when it names none), its caller (or the transport's, see
// WithCaller) and r's signer.
func (r *Recorder) newRecord(ctx context.Context, path string) *schema.AuditRecord {
	who, _ := RequesterFrom(ctx)
	if who.Path == "" {
		who.Path = path
	}
	if who.Caller == (Identity{}) {
		who.Caller = CallerFrom(ctx)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return &schema.AuditRecord{
		RecordID:       hex.EncodeToString(id),
		Path:           who.Path,
		Caller:         who.Caller.Email,
		CallerSubject:  who.Caller.Subject,
		CallerIssuer:   who.Caller.Issuer,
		Subscription:   who.Subscription,
		MessageID:      who.MessageID,
		JobID:          who.JobID,
		Submitter:      who.Submitter,
		TokenID:        who.TokenID,
		SignerIdentity: r.signer.Identity,
		SignerKind:     strings.ToLower(r.signer.Kind.String()),
		KeyID:          r.signer.KeyID,
	}
}

func auditParams(ps []sign.Param) []schema.AuditParam {
	var out []schema.AuditParam
	for _, p := range ps {
		out = append(out, schema.AuditParam{Name: p.Name, Value: p.Value})
	}
	return out
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
