package engine

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/sign"
)

var signTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// requests yields n GET requests for distinct objects; every bad-th one
// (if bad > 0) has an invalid bucket name.
func requests(n, bad int) iter.Seq[sign.Request] {
	return func(yield func(sign.Request) bool) {
		for i := range n {
			r := sign.Request{Method: "GET", Bucket: "bucket", Object: fmt.Sprintf("obj/%05d", i), Expires: time.Hour, Time: signTime}
			if bad > 0 && i%bad == 0 {
				r.Bucket = "NO"
			}
			if !yield(r) {
				return
			}
		}
	}
}

func TestSignAllEmitsEveryRequestOnce(t *testing.T) {
	f := &fakeSigner{fn: func(_ context.Context, _ int64, sts []byte) ([]byte, error) { return signature(sts)[:8], nil }}
	e := newEngine(t, f, fast(Options{MaxInFlight: 8}))
	u, err := sign.New(e, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	seen := make([]int, n)
	var inEmit, overlaps atomic.Int32
	err = e.SignAll(context.Background(), u, requests(n, 100), func(i int, url *sign.SignedURL, err error) {
		if inEmit.Add(1) > 1 {
			overlaps.Add(1)
		}
		defer inEmit.Add(-1)
		seen[i]++
		if i%100 == 0 {
			if !sign.IsInputError(err) {
				t.Errorf("request %d: err = %v, want an InputError", i, err)
			}
			return
		}
		if err != nil || url == nil {
			t.Errorf("request %d: %v", i, err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range seen {
		if c != 1 {
			t.Fatalf("request %d emitted %d times", i, c)
		}
	}
	if overlaps.Load() != 0 {
		t.Error("emit calls overlapped")
	}
	if c := f.calls.Load(); c != n-n/100 {
		t.Errorf("inner calls = %d, want %d (invalid requests never reach the signer)", c, n-n/100)
	}
}

func TestSignAllStopsOnCancel(t *testing.T) {
	f := &fakeSigner{fn: func(ctx context.Context, _ int64, sts []byte) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	e := newEngine(t, f, fast(Options{MaxInFlight: 4}))
	u, err := sign.New(e, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for f.calls.Load() < 4 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	emitted := 0
	err = e.SignAll(ctx, u, requests(1_000_000, 0), func(i int, _ *sign.SignedURL, err error) {
		emitted++
		if !errors.Is(err, context.Canceled) {
			t.Errorf("request %d: err = %v, want context.Canceled", i, err)
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("SignAll = %v, want context.Canceled", err)
	}
	// Only what was in progress (at most 2×MaxInFlight, plus one read
	// before the cancellation was seen) was read and emitted.
	if emitted == 0 || emitted > 2*4+1 {
		t.Errorf("emitted %d requests, want 1..9", emitted)
	}
}
