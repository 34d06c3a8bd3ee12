package sign

import "github.com/linkissuer/linkissuer/failure"

// Failure implements failure.Classifier: an input error is permanent, with
// code sign_refused.
func (e *InputError) Failure() failure.Class {
	return failure.Class{Kind: failure.KindPermanent, Code: failure.CodeSignRefused}
}

// Failure implements failure.Classifier: a retryable error is a transient
// failure of the signer.
func (e *RetryableError) Failure() failure.Class {
	return failure.Class{Kind: failure.KindTransient, Component: failure.Signer}
}
