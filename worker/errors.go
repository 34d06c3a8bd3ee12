package worker

import (
	"fmt"

	"github.com/linkissuer/linkissuer/failure"
)

// PermanentError is a failure that redelivery cannot fix.
//
// Deprecated: use failure.PermanentError.
type PermanentError = failure.PermanentError

// Permanent marks err as permanent with a stable reason code.
//
// Deprecated: use failure.Permanent.
func Permanent(code string, err error) error { return failure.Permanent(failure.Code(code), err) }

// IgnoredError marks a message that is deliberately not processed.
//
// Deprecated: use failure.IgnoredError.
type IgnoredError = failure.IgnoredError

// Ignore returns an *IgnoredError.
//
// Deprecated: use failure.Ignore.
func Ignore(reason string) error { return failure.Ignore(reason) }

// Outcome is what became of a message.
type Outcome string

// Outcomes, used as metric labels.
const (
	OutcomeIssued     Outcome = "issued"      // outputs published, acked
	OutcomeIgnored    Outcome = "ignored"     // acked without output
	OutcomeDeadLetter Outcome = "dead_letter" // error message published, acked
	OutcomeRetry      Outcome = "retry"       // nacked for redelivery
)

// outcomeOf is what the Router does with a message whose handler failed as
// c says: a permanent failure is dead-lettered, an ignored message acked,
// a transient failure nacked.
func outcomeOf(c failure.Class) Outcome {
	switch c.Kind {
	case failure.KindNone:
		return OutcomeIssued
	case failure.KindIgnored:
		return OutcomeIgnored
	case failure.KindPermanent:
		return OutcomeDeadLetter
	}
	return OutcomeRetry
}

// Classify maps a handler error to the Router's outcome and reason.
//
// Deprecated: use failure.Classify; the Router's outcome follows from its
// Kind.
func Classify(err error) (Outcome, string) {
	c := failure.Classify(err)
	return outcomeOf(c), c.Reason()
}

// panicError is a recovered handler panic: transient, with no component to
// blame (failure.Unknown).
type panicError struct{ value any }

func (e *panicError) Error() string { return fmt.Sprintf("handler panicked: %v", e.value) }
