package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"

	"github.com/linkissuer/linkissuer/failure"
	fleetview "github.com/linkissuer/linkissuer/fleet"
	"github.com/linkissuer/linkissuer/internal/wait"
	"github.com/linkissuer/linkissuer/sign"
)

// Defaults for Options.
const (
	DefaultMaxInFlight = 64
	DefaultInitialRate = 100 // calls per second, when no Ceiling is set
	DefaultMinRate     = 1
	DefaultMaxAttempts = 8
	DefaultBaseBackoff = 100 * time.Millisecond
	DefaultMaxBackoff  = 5 * time.Second
	DefaultCallTimeout = 10 * time.Second
)

// Options configure an Engine. A nil *Options, or a zero field, means the
// default.
type Options struct {
	// MaxInFlight bounds concurrent calls to the inner signer (default 64:
	// about 1,200 calls/s at signBlob's ~50 ms).
	MaxInFlight int
	// Ceiling caps the rate in calls per second, e.g. the project's known
	// quota (60,000/min is 1000). 0: no cap, the rate adapts on its own.
	Ceiling float64
	// Quota is the signBlob quota of the project in calls per second
	// (60,000/min is 1000), when it is known; 0: found from the 429s. It
	// is the whole project's, not this engine's: alone, the engine paces
	// at fleet.KnownShare of it and probes no higher; in a fleet
	// (package fleet) the replicas split it. A 429 still cuts the rate
	// (someone else may spend the same quota).
	Quota float64
	// InitialRate is where the rate starts: default Ceiling if set, else
	// fleet.KnownShare of Quota if set, else 100 calls/s, doubling every
	// 250 ms until the first throttle.
	InitialRate float64
	// MinRate is the floor the rate is never cut below (default 1/s).
	MinRate float64
	// MaxAttempts bounds the calls made for one signature, the first
	// included (default 8).
	MaxAttempts int
	// BaseBackoff and MaxBackoff shape retries: before attempt n+1 the
	// engine sleeps a uniform random time in [0, min(MaxBackoff,
	// BaseBackoff·2^(n-1))) (defaults 100 ms and 5 s).
	BaseBackoff, MaxBackoff time.Duration
	// CallTimeout bounds one call to the inner signer; a call that runs
	// out is retried (default 10 s).
	CallTimeout time.Duration
}

// Validate reports impossible options. It does not modify o.
func (o *Options) Validate() error {
	if o == nil {
		return nil
	}
	switch {
	case o.MaxInFlight < 0, o.MaxAttempts < 0:
		return &sign.InputError{Field: "engine", Reason: "MaxInFlight and MaxAttempts must not be negative"}
	case o.Ceiling < 0, o.Quota < 0, o.InitialRate < 0, o.MinRate < 0:
		return &sign.InputError{Field: "engine", Reason: "rates must not be negative"}
	case o.BaseBackoff < 0, o.MaxBackoff < 0, o.CallTimeout < 0:
		return &sign.InputError{Field: "engine", Reason: "durations must not be negative"}
	case o.Ceiling > 0 && o.MinRate > o.Ceiling:
		return &sign.InputError{Field: "engine", Reason: "MinRate is above Ceiling"}
	}
	return nil
}

// withDefaults returns a copy of o with every zero field set.
func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.MaxInFlight == 0 {
		r.MaxInFlight = DefaultMaxInFlight
	}
	if r.MinRate == 0 {
		r.MinRate = DefaultMinRate
	}
	if r.InitialRate == 0 {
		switch {
		case r.Ceiling > 0:
			r.InitialRate = r.Ceiling
		case r.Quota > 0:
			r.InitialRate = fleetview.KnownShare * r.Quota
		default:
			r.InitialRate = DefaultInitialRate
		}
	}
	r.InitialRate = max(r.InitialRate, r.MinRate)
	if r.Ceiling > 0 {
		r.InitialRate = min(r.InitialRate, r.Ceiling)
	}
	if r.MaxAttempts == 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
	if r.BaseBackoff == 0 {
		r.BaseBackoff = DefaultBaseBackoff
	}
	if r.MaxBackoff == 0 {
		r.MaxBackoff = DefaultMaxBackoff
	}
	if r.CallTimeout == 0 {
		r.CallTimeout = DefaultCallTimeout
	}
	return r
}

// Engine is a sign.Signer that runs an inner signer concurrently, paced to
// its quota, with retries. It is safe for concurrent use.
type Engine struct {
	inner   sign.Signer
	cred    sign.Credential
	opts    Options
	sem     *semaphore.Weighted
	limiter *limiter
	flights singleflight.Group
	stats   counters
}

// New wraps inner.
func New(inner sign.Signer, opts *Options) (*Engine, error) {
	if inner == nil {
		return nil, &sign.InputError{Field: "signer", Reason: "no signer to wrap"}
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	e := &Engine{
		inner:   inner,
		cred:    inner.Credential(),
		opts:    o,
		sem:     semaphore.NewWeighted(int64(o.MaxInFlight)),
		limiter: newLimiter(o.InitialRate, o.MinRate, o.Ceiling, o.Quota),
	}
	e.stats.init()
	return e, nil
}

// Credential implements sign.Signer: the inner signer's.
func (e *Engine) Credential() sign.Credential { return e.cred }

// Options returns the options in force, defaults filled in.
func (e *Engine) Options() Options { return e.opts }

// GiveUpError reports a signature that still failed after MaxAttempts
// calls, each with a retryable error. The engine is done with it:
// sign.IsRetryable reports false, and Err, the last cause, is unwrapped from
// its *sign.RetryableError (errors.As still finds, say, a *iam.Error).
// For failure.Classify it is a transient failure of the signer.
type GiveUpError struct {
	Attempts int
	Err      error
}

func (e *GiveUpError) Error() string {
	return fmt.Sprintf("gave up after %d attempts: %v", e.Attempts, e.Err)
}

// Unwrap returns the last cause.
func (e *GiveUpError) Unwrap() error { return e.Err }

// abandoned marks a shared call stopped because the caller that ran it
// gave up; the others try again under their own contexts.
type abandoned struct{ err error }

func (a *abandoned) Error() string { return a.err.Error() }
func (a *abandoned) Unwrap() error { return a.err }

// Sign implements sign.Signer.
func (e *Engine) Sign(ctx context.Context, scope sign.Scope, stringToSign []byte) ([]byte, error) {
	start := time.Now()
	sig, err := e.signShared(ctx, scope, stringToSign)
	e.stats.finish(time.Since(start), err)
	return sig, err
}

// signShared signs once per distinct (scope, string-to-sign) in flight.
func (e *Engine) signShared(ctx context.Context, scope sign.Scope, stringToSign []byte) ([]byte, error) {
	key := scope.String() + "\n" + string(stringToSign)
	for {
		led := false
		ch := e.flights.DoChan(key, func() (any, error) {
			led = true
			sig, err := e.signWithRetries(ctx, scope, stringToSign)
			if err != nil && ctx.Err() != nil {
				err = &abandoned{err}
			}
			return sig, err
		})
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("sign: %w", ctx.Err())
		case r := <-ch:
			var ab *abandoned
			switch {
			case r.Err == nil && led:
				return r.Val.([]byte), nil
			case r.Err == nil:
				e.stats.deduplicated.Add(1)
				return bytes.Clone(r.Val.([]byte)), nil
			case errors.As(r.Err, &ab):
				if !led && ctx.Err() == nil {
					continue // the caller that ran it left; run it ourselves
				}
				return nil, ab.err
			}
			if !led {
				e.stats.deduplicated.Add(1)
			}
			return nil, r.Err
		}
	}
}

// signWithRetries calls the inner signer until it succeeds, fails
// permanently, runs out of attempts or ctx is done.
func (e *Engine) signWithRetries(ctx context.Context, scope sign.Scope, stringToSign []byte) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		sig, probed, err := e.call(ctx, scope, stringToSign)
		if probed && err != nil && ctx.Err() == nil {
			// A refused probe of a paused limiter: the quota is dry, and
			// the limiter, not the backoff, decides when to try again.
			attempt--
			continue
		}
		switch {
		case err == nil:
			return sig, nil
		case ctx.Err() != nil:
			return nil, fmt.Errorf("sign: stopped after %d attempts: %w", attempt, ctx.Err())
		case !failure.IsTransient(err):
			return nil, err
		case attempt >= e.opts.MaxAttempts:
			e.stats.gaveUp.Add(1)
			return nil, &GiveUpError{Attempts: attempt, Err: unretryable(err)}
		}
		e.stats.retries.Add(1)
		if err := wait.Sleep(ctx, e.backoff(attempt)); err != nil {
			return nil, fmt.Errorf("sign: stopped after %d attempts: %w", attempt, err)
		}
	}
}

// call makes one call to the inner signer: a concurrency slot, a paced
// send slot, then the call under its own deadline. probed reports a call
// refused as the probe of a limiter paused for less than maxProbing.
func (e *Engine) call(ctx context.Context, scope sign.Scope, stringToSign []byte) (sig []byte, probed bool, err error) {
	if err := e.sem.Acquire(ctx, 1); err != nil {
		return nil, false, err
	}
	defer e.sem.Release(1)
	ticket, err := e.limiter.wait(ctx)
	if err != nil {
		return nil, false, err
	}
	sig, err = e.callOnce(ctx, ticket, scope, stringToSign)
	probed = err != nil && ticket.probe && sign.IsThrottled(err) && e.limiter.probing(time.Now())
	return sig, probed, err
}

// callOnce is the call itself, on a ticket.
func (e *Engine) callOnce(ctx context.Context, ticket ticket, scope sign.Scope, stringToSign []byte) ([]byte, error) {
	cctx, cancel := context.WithTimeout(ctx, e.opts.CallTimeout)
	defer cancel()

	e.stats.calls.Add(1)
	e.stats.inFlight.Add(1)
	sent := time.Now()
	sig, err := e.inner.Sign(cctx, scope, stringToSign)
	now := time.Now()
	e.stats.inFlight.Add(-1)
	e.stats.callLatency.observe(now.Sub(sent))

	switch {
	case err == nil && len(sig) == 0:
		return nil, errors.New("sign: the signer returned an empty signature")
	case err == nil:
		e.limiter.success(now, now.Sub(sent))
		return sig, nil
	case ctx.Err() != nil:
		return nil, err
	case cctx.Err() != nil:
		e.stats.timeouts.Add(1)
		return nil, &sign.RetryableError{Err: fmt.Errorf("sign: call timed out after %s: %w", e.opts.CallTimeout, err)}
	case sign.IsThrottled(err):
		e.stats.throttled.Add(1)
		if e.limiter.throttled(now, ticket) {
			e.stats.cuts.Add(1)
		}
	}
	return nil, err
}

// backoff is the full-jitter wait after the given failed attempt.
func (e *Engine) backoff(attempt int) time.Duration {
	limit := e.opts.MaxBackoff
	if attempt-1 < 32 {
		limit = min(limit, e.opts.BaseBackoff<<(attempt-1))
	}
	if limit <= 0 {
		return 0
	}
	return rand.N(limit)
}

// unretryable strips the *sign.RetryableError marker from err.
func unretryable(err error) error {
	var r *sign.RetryableError
	if errors.As(err, &r) {
		return r.Err
	}
	return err
}

// SetShare sets the rate's set-point, calls per second: this replica's
// share of a quota shared with other replicas (package fleet computes
// it). The rate never grows past it, comes back to it after a local cut,
// and follows it when it moves; a 429 still cuts at once. 0 removes it:
// the engine finds the quota alone, as without a fleet.
func (e *Engine) SetShare(perSecond float64) { e.limiter.setShare(time.Now(), perSecond) }

// Load reports what a fleet member publishes: calls admitted and refused
// (429) so far, the rate and what the quota admitted lately, whether
// callers wait for the rate (it binds), whether it paces a per-minute
// window, and the quota if it is known (Options.Quota). With SetShare, an
// Engine is a fleet.Limiter.
func (e *Engine) Load() fleetview.Load { return e.limiter.load(time.Now()) }
