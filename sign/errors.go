package sign

import (
	"errors"
	"fmt"
)

// InputError reports a request that can never be signed as given: a bad
// bucket or object name, an expiry out of range, an unknown method. It is
// permanent: retrying the same input fails the same way.
type InputError struct {
	// Field names the offending input ("bucket", "object", "expires", ...).
	Field string
	// Reason says what is wrong with it.
	Reason string
}

func (e *InputError) Error() string {
	return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason)
}

// RetryableError marks a failure that may succeed when tried again (a 429,
// a 5xx, a timeout of a remote signer).
type RetryableError struct {
	Err error
}

func (e *RetryableError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *RetryableError) Unwrap() error { return e.Err }

// IsRetryable reports whether err, or any error it wraps, is a
// *RetryableError.
func IsRetryable(err error) bool {
	var r *RetryableError
	return errors.As(err, &r)
}

// IsThrottled reports whether err says the caller exceeds a quota: any
// error in the chain with a Throttled() bool method returning true (such
// as *iam.Error for a 429).
func IsThrottled(err error) bool {
	var t interface{ Throttled() bool }
	return errors.As(err, &t) && t.Throttled()
}

// IsInputError reports whether err is, or wraps, an *InputError.
func IsInputError(err error) bool {
	var e *InputError
	return errors.As(err, &e)
}
