package jobs

import (
	"context"
	"fmt"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/sign"
)

// objectFailure is the one place that decides what a failed policy check or
// signature makes of one object of a job: an error row (code, nil), or a
// failure of the whole piece (fatal), which the worker redelivers so that
// the piece is redone.
//
// Only a permanent failure, as failure.Classify sees it, is an error row: a
// policy refusal, or a *sign.InputError (a name, query or expiry the signer
// can never sign).
// Everything else is the signer's state, not the object's: the engine
// giving up after its retries, 5xx answers, hangs, throttling, a denied or
// disabled signing account, cancellation. Counting those as failed rows
// would announce a job as done while the signer was down, so they fail the
// piece as a transient (signer) error instead: a signer outage never
// finishes a job, it delays it, and the subscription's dead-letter policy
// bounds how long.
func objectFailure(ctx context.Context, object string, err error) (code failure.Code, fatal error) {
	if ctx.Err() != nil {
		return "", err
	}
	c := failure.Classify(err)
	switch {
	case c.Kind == failure.KindPermanent:
		return c.Code, nil
	case c.Kind == failure.KindTransient && c.Component != failure.Unknown:
		return "", err
	}
	return "", &sign.RetryableError{Err: fmt.Errorf("signer: %s: %w", object, err)}
}
