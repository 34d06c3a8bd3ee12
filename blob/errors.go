package blob

import "errors"

// Error kinds that stores wrap.
var (
	// ErrNotFound: the object or bucket does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a conditional write (IfAbsent, IfGeneration) found the
	// object already there, or changed.
	ErrExists = errors.New("already exists")
)

// MarkNotFound returns err, a store driver's error for a missing object or
// bucket, so that it also matches ErrNotFound with errors.Is; errors.As
// still finds the driver's own error.
func MarkNotFound(err error) error { return &kindError{kind: ErrNotFound, err: err} }

// MarkExists returns err, a store driver's error for a conditional write
// whose condition failed, so that it also matches ErrExists with errors.Is.
func MarkExists(err error) error { return &kindError{kind: ErrExists, err: err} }

// kindError is a store error that also matches one of this package's
// sentinels (ErrNotFound, ErrExists) with errors.Is.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string        { return e.err.Error() }
func (e *kindError) Unwrap() error        { return e.err }
func (e *kindError) Is(target error) bool { return target == e.kind }
