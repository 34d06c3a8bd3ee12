// Package failure is linkissuer's error taxonomy, and the one place that
// decides what an error means:
//
//   - permanent: redelivery cannot fix it (bad input, a policy refusal, a
//     request the signer refuses). It carries a [Code], the reason_code of
//     dead letters and manifest error rows. The worker dead-letters the
//     message and acks it; a job writes an error row; the sync API answers
//     4xx.
//   - transient: the same work may succeed later. It names the [Component]
//     that failed (signer, storage, publisher, ...). The worker nacks, a job
//     shard is redelivered, the sync API answers 503.
//   - ignored: the message is deliberately not processed (a metadata update,
//     an overwritten generation). The worker acks it and counts the reason.
//
// [Classify] decides, and everything that branches on an error calls it: the
// worker's router (ack or nack), the push server (HTTP status), a job (error
// row or redelivery). An error classifies itself by implementing
// [Classifier] anywhere in its chain; the outermost one wins. Errors that do
// not are transient with [Unknown] as the component: redelivery is the safe
// default, and the subscription's dead-letter policy bounds it.
//
// The package imports only the standard library, so that every layer
// (wire formats, policy, signing, stores, transport) can mark its errors.
package failure

import (
	"context"
	"errors"
)

// Kind is one of the three kinds of failure.
type Kind int

// Kinds. The zero value is "no failure".
const (
	KindNone      Kind = iota // a nil error
	KindPermanent             // redelivery cannot fix it
	KindTransient             // it may succeed later
	KindIgnored               // deliberately not processed
)

func (k Kind) String() string {
	switch k {
	case KindNone:
		return "none"
	case KindPermanent:
		return "permanent"
	case KindTransient:
		return "transient"
	case KindIgnored:
		return "ignored"
	}
	return "unknown"
}

// Component names what failed in a transient failure. The values are log
// fields and, through [Class.Reason], metric labels and the push server's
// retry codes; they never change meaning.
type Component string

// Components.
const (
	// Signer: the signing service (IAM signBlob, a remote key) is
	// unavailable, throttles, or the signing engine ran out of retries.
	Signer Component = "signer"
	// Storage: the object store (GCS, S3) failed to list, read or write:
	// 429, 5xx, a connection that broke.
	Storage Component = "storage"
	// Publisher: publishing a handler's outputs (links, job shards, job
	// completions) to Pub/Sub failed or was not confirmed in time.
	Publisher Component = "publisher"
	// DeadLetter: publishing a dead letter to the errors topic failed.
	DeadLetter Component = "dead_letter"
	// Audit: the audit record of a link could not be written in
	// fail-closed mode, so the link was withheld (audit_unavailable).
	Audit Component = "audit"
	// Canceled: the work was cut short by its context (shutdown, a handler
	// or request timeout); nothing downstream reported a failure.
	Canceled Component = "canceled"
	// Unknown: an error nothing classified (including a handler panic).
	Unknown Component = "unknown"
)

// Class is what Classify decided about an error.
type Class struct {
	Kind Kind
	// Code is why: for KindPermanent the reason code (never empty after
	// Classify), for KindIgnored the reason the message is ignored.
	Code Code
	// Detail is an optional finer code for the caller of a synchronous
	// request, such as the policy rule that refused (bucket_not_allowed)
	// under CodePolicyRefused. Dead letters and error rows use Code only.
	Detail string
	// Component is what failed, for KindTransient (never empty after
	// Classify).
	Component Component
}

// Reason is the stable label of c for logs, metrics and retry answers: the
// code of a permanent or ignored failure, and for a transient one a label
// naming the component (signer_unavailable, storage_unavailable, audit_unavailable,
// publish_failed, dead_letter_publish_failed, cancelled, transient).
func (c Class) Reason() string {
	switch c.Kind {
	case KindPermanent, KindIgnored:
		return string(c.Code)
	case KindTransient:
		switch c.Component {
		case Publisher:
			return "publish_failed"
		case DeadLetter:
			return "dead_letter_publish_failed"
		case Canceled:
			return "cancelled"
		case Unknown, "":
			return "transient"
		}
		return string(c.Component) + "_unavailable"
	}
	return ""
}

// A Classifier is an error that says what kind of failure it is. Domain
// errors implement it (schema's field errors, policy refusals, the
// signer's input and retryable errors); the errors built by [Permanent],
// [Transient] and [Ignore] do too.
type Classifier interface {
	error
	Failure() Class
}

// Classify decides what err is. The outermost [Classifier] in err's chain
// wins; an unclassified context.Canceled or DeadlineExceeded is transient
// with Component Canceled; anything else is transient with Component
// Unknown. A nil err is KindNone.
func Classify(err error) Class {
	if err == nil {
		return Class{}
	}
	var cl Classifier
	if errors.As(err, &cl) {
		return normalize(cl.Failure())
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Class{Kind: KindTransient, Component: Canceled}
	}
	return Class{Kind: KindTransient, Component: Unknown}
}

// normalize fills what a Classifier left empty, so that callers can rely on
// Code and Component.
func normalize(c Class) Class {
	switch c.Kind {
	case KindPermanent:
		if c.Code == "" {
			c.Code = CodeInternal
		}
	case KindTransient:
		if c.Component == "" {
			c.Component = Unknown
		}
	case KindIgnored:
	default:
		// A Classifier that says "no failure" about an error is wrong;
		// redelivery is the safe default.
		return Class{Kind: KindTransient, Component: Unknown}
	}
	return c
}

// IsTransient reports whether err is explicitly marked transient (by
// [Transient] or a Classifier): worth retrying at once, as a signing engine
// does. Unclassified errors are not: Classify treats them as transient
// only so that redelivery, bounded by the subscription, is the default.
func IsTransient(err error) bool {
	var cl Classifier
	return errors.As(err, &cl) && cl.Failure().Kind == KindTransient
}

// PermanentError is a failure that redelivery cannot fix, with its reason
// code.
type PermanentError struct {
	Code Code
	Err  error
}

func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *PermanentError) Unwrap() error { return e.Err }

// Failure implements Classifier.
func (e *PermanentError) Failure() Class { return Class{Kind: KindPermanent, Code: e.Code} }

// Permanent marks err as permanent with a stable reason code.
func Permanent(code Code, err error) error {
	return &PermanentError{Code: code, Err: err}
}

// TransientError is a failure that may go away, with the component that
// failed.
type TransientError struct {
	Component Component
	Err       error
}

func (e *TransientError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *TransientError) Unwrap() error { return e.Err }

// Failure implements Classifier.
func (e *TransientError) Failure() Class { return Class{Kind: KindTransient, Component: e.Component} }

// Transient marks err as a transient failure of component c.
func Transient(c Component, err error) error {
	return &TransientError{Component: c, Err: err}
}

// IgnoredError marks a message that is deliberately not processed (an
// overwritten generation's delete, a metadata update).
type IgnoredError struct {
	Reason string
}

func (e *IgnoredError) Error() string { return "ignored: " + e.Reason }

// Failure implements Classifier.
func (e *IgnoredError) Failure() Class { return Class{Kind: KindIgnored, Code: Code(e.Reason)} }

// Ignore returns an *IgnoredError with a stable reason.
func Ignore(reason string) error { return &IgnoredError{Reason: reason} }
