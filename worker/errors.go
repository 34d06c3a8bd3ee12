package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// PermanentError is a failure that redelivery cannot fix. The Router
// dead-letters the message with Code and the error text, then acks it.
type PermanentError struct {
	Code string
	Err  error
}

func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as permanent with a stable reason code.
func Permanent(code string, err error) error {
	return &PermanentError{Code: code, Err: err}
}

// IgnoredError marks a message that is deliberately not processed (an
// overwritten generation's delete, a metadata update). The Router acks it
// and counts Reason.
type IgnoredError struct {
	Reason string
}

func (e *IgnoredError) Error() string { return "ignored: " + e.Reason }

// Ignore returns an *IgnoredError.
func Ignore(reason string) error { return &IgnoredError{Reason: reason} }

// Outcome is what became of a message.
type Outcome string

// Outcomes, used as metric labels.
const (
	OutcomeIssued     Outcome = "issued"      // outputs published, acked
	OutcomeIgnored    Outcome = "ignored"     // acked without output
	OutcomeDeadLetter Outcome = "dead_letter" // error message published, acked
	OutcomeRetry      Outcome = "retry"       // nacked for redelivery
)

// Classify maps a handler error to an outcome and a reason code. Unknown
// errors are transient: redelivery is the safe default, and the
// subscription's dead-letter policy bounds it.
func Classify(err error) (Outcome, string) {
	var perm *PermanentError
	var ign *IgnoredError
	var refusal *policy.Refusal
	var input *sign.InputError
	switch {
	case err == nil:
		return OutcomeIssued, ""
	case errors.As(err, &ign):
		return OutcomeIgnored, ign.Reason
	case errors.As(err, &perm):
		return OutcomeDeadLetter, perm.Code
	case errors.Is(err, schema.ErrInvalid):
		return OutcomeDeadLetter, string(schema.CodeOf(err))
	case errors.As(err, &refusal):
		switch refusal.Code {
		case policy.CodeInvalidObjectName:
			return OutcomeDeadLetter, string(schema.CodeInvalidObjectName)
		case policy.CodeDotSegment:
			return OutcomeDeadLetter, string(schema.CodeDotSegment)
		}
		return OutcomeDeadLetter, string(schema.CodePolicyRefused)
	case errors.As(err, &input):
		return OutcomeDeadLetter, string(schema.CodeSignRefused)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return OutcomeRetry, "cancelled"
	case sign.IsRetryable(err):
		return OutcomeRetry, "signer_unavailable"
	}
	return OutcomeRetry, "transient"
}

// panicError is a recovered handler panic.
type panicError struct{ value any }

func (e *panicError) Error() string { return fmt.Sprintf("handler panicked: %v", e.value) }
