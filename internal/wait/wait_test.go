package wait

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSleep(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want error
	}{
		{name: "waits the duration", ctx: context.Background(), d: 5 * time.Millisecond},
		{name: "nothing to wait", ctx: context.Background(), d: 0},
		{name: "negative", ctx: context.Background(), d: -time.Second},
		{name: "context already ended", ctx: cancelled, d: time.Hour, want: context.Canceled},
		{name: "context ended, nothing to wait", ctx: cancelled, d: 0, want: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			err := Sleep(tc.ctx, tc.d)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("Sleep = %v, want %v", err, tc.want)
			}
			if took := time.Since(start); tc.want == nil && took < tc.d {
				t.Errorf("returned after %s, before %s", took, tc.d)
			}
		})
	}
}

// TestSleepEndsWithContext: a context that ends mid-wait ends the wait.
func TestSleepEndsWithContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Sleep = %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > time.Minute {
		t.Errorf("returned after %s", took)
	}
}

func TestUntil(t *testing.T) {
	t.Parallel()
	at := time.Now().Add(5 * time.Millisecond)
	if err := Until(context.Background(), at); err != nil {
		t.Fatal(err)
	}
	if time.Now().Before(at) {
		t.Errorf("returned before %s", at)
	}
	if err := Until(context.Background(), time.Now().Add(-time.Hour)); err != nil {
		t.Errorf("Until a past time = %v, want nil at once", err)
	}
}
