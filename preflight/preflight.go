// Package preflight checks, before a process takes work, that what it
// depends on is there and usable: the subscription and topics exist and the
// runtime account may use them, the signer signs, the storage client exists.
// `linkissuer worker` and `serve` run the checks at start-up and exit
// non-zero on the first failed run; `linkissuer doctor` runs them (and a few
// deployment-only ones) by hand and prints one line per check.
//
// Each check owns the small interface it needs (TopicLookup, Signer, ...);
// adapters for the Google clients live beside them (PubSub, Buckets). A
// failed check says what to fix: its error is a *Problem whose Fix names
// the missing resource or role.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Status is a check's outcome.
type Status string

// Outcomes.
const (
	OK   Status = "ok"
	Fail Status = "FAIL"
	Skip Status = "skip"
)

// Check is one named check. Run returns nil when it passes, a *Problem (or
// any error) when it fails, and a Skipped error when it does not apply.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Problem is a failed check: what is wrong, and what to do about it.
type Problem struct {
	Err error
	Fix string
}

func (p *Problem) Error() string {
	if p.Fix == "" {
		return p.Err.Error()
	}
	return p.Err.Error() + "; fix: " + p.Fix
}

func (p *Problem) Unwrap() error { return p.Err }

// Fixf returns err as a *Problem with a fix.
func Fixf(err error, format string, args ...any) error {
	return &Problem{Err: err, Fix: fmt.Sprintf(format, args...)}
}

// Skipped is a check that does not apply here, and why.
type Skipped struct{ Reason string }

func (s *Skipped) Error() string { return "skipped: " + s.Reason }

// Skipf returns a Skipped error.
func Skipf(format string, args ...any) error {
	return &Skipped{Reason: fmt.Sprintf(format, args...)}
}

// Result is one check's outcome.
type Result struct {
	Name   string
	Status Status
	// Err is the failure (or the reason for a skip); nil when OK.
	Err error
	// Fix is what to do about a failure, when known.
	Fix string
}

// Run runs the checks in order, each under ctx bounded by timeout (0: no
// bound), and returns one Result per check.
func Run(ctx context.Context, timeout time.Duration, checks ...Check) []Result {
	out := make([]Result, 0, len(checks))
	for _, c := range checks {
		cctx, cancel := ctx, context.CancelFunc(func() {})
		if timeout > 0 {
			cctx, cancel = context.WithTimeout(ctx, timeout)
		}
		err := c.Run(cctx)
		cancel()
		out = append(out, result(c.Name, err))
	}
	return out
}

func result(name string, err error) Result {
	r := Result{Name: name, Status: OK, Err: err}
	var skip *Skipped
	var p *Problem
	switch {
	case err == nil:
	case errors.As(err, &skip):
		r.Status = Skip
		r.Err = errors.New(skip.Reason)
	case errors.As(err, &p):
		r.Status, r.Err, r.Fix = Fail, p.Err, p.Fix
	default:
		r.Status = Fail
	}
	return r
}

// Err returns the failures of results as one error, nil when none failed.
func Err(results []Result) error {
	var errs []error
	for _, r := range results {
		if r.Status == Fail {
			errs = append(errs, &CheckError{Result: r})
		}
	}
	return errors.Join(errs...)
}

// CheckError is a failed check, as Err returns it.
type CheckError struct{ Result Result }

func (e *CheckError) Error() string {
	s := e.Result.Name + ": " + e.Result.Err.Error()
	if e.Result.Fix != "" {
		s += "; fix: " + e.Result.Fix
	}
	return s
}

func (e *CheckError) Unwrap() error { return e.Result.Err }

// Write prints one line per result ("ok   NAME", "FAIL NAME: error",
// "skip NAME: reason"), each failure followed by an indented "fix:" line.
func Write(w io.Writer, results []Result) error {
	var b strings.Builder
	for _, r := range results {
		fmt.Fprintf(&b, "%-4s %s", r.Status, r.Name)
		if r.Err != nil {
			fmt.Fprintf(&b, ": %v", r.Err)
		}
		b.WriteByte('\n')
		if r.Status == Fail && r.Fix != "" {
			fmt.Fprintf(&b, "     fix: %s\n", r.Fix)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Static is a check whose outcome is already known (a listener that could
// not bind, a client that could not be built).
func Static(name string, err error) Check {
	return Check{Name: name, Run: func(context.Context) error { return err }}
}
