package engine

import "github.com/linkissuer/linkissuer/failure"

// Failure implements failure.Classifier: the engine will not retry a
// signature it gave up on, but the signer may come back, so the message or
// job that needed it is a transient failure of the signer (redelivered,
// never dead-lettered or written as an error row).
func (e *GiveUpError) Failure() failure.Class {
	return failure.Class{Kind: failure.KindTransient, Component: failure.Signer}
}
