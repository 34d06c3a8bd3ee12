// Package wait is how linkissuer pauses: for a duration or until a time,
// ending early when the context ends. The timer is stopped on either path,
// so an early return leaves nothing running until it would have fired (as
// time.After would).
package wait

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx ends. It returns ctx's error if ctx ended
// first, or had already ended (also when d <= 0), and nil otherwise.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Until waits until at, or until ctx ends; it returns as Sleep does.
func Until(ctx context.Context, at time.Time) error {
	return Sleep(ctx, time.Until(at))
}
