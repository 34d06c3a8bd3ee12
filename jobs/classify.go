package jobs

import (
	"context"
	"fmt"

	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// signFailure is the one place that decides what a failed signature makes
// of one object of a job: an error row (code, nil), or a failure of the
// whole piece (fatal), which the worker redelivers so that the piece is
// redone.
//
// Only a refusal of this object's request as given is an error row: a
// *sign.InputError (a name, query or expiry the signer can never sign).
// Everything else is the signer's state, not the object's: the engine
// giving up after its retries, 5xx answers, hangs, throttling, a denied or
// disabled signing account, cancellation. Counting those as failed rows
// would announce a job as done while the signer was down, so they fail the
// piece as a transient (signer) error instead: a signer outage never
// finishes a job, it delays it, and the subscription's dead-letter policy
// bounds how long.
func signFailure(ctx context.Context, object string, err error) (code schema.ReasonCode, fatal error) {
	switch {
	case ctx.Err() != nil:
		return "", err
	case sign.IsInputError(err):
		return schema.CodeSignRefused, nil
	case sign.IsRetryable(err):
		return "", err
	}
	return "", &sign.RetryableError{Err: fmt.Errorf("signer: %s: %w", object, err)}
}
