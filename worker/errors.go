package worker

import (
	"fmt"

	"github.com/linkissuer/linkissuer/failure"
)

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

// panicError is a recovered handler panic: transient, with no component to
// blame (failure.Unknown).
type panicError struct{ value any }

func (e *panicError) Error() string { return fmt.Sprintf("handler panicked: %v", e.value) }
