package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/sign/iam"
)

// fakeSigner is a hand-written inner signer: fn decides each call's fate
// (n counts calls from 1).
type fakeSigner struct {
	fn       func(ctx context.Context, n int64, stringToSign []byte) ([]byte, error)
	calls    atomic.Int64
	inFlight atomic.Int64
	peak     atomic.Int64
}

func (f *fakeSigner) Credential() sign.Credential {
	return sign.Credential{Identity: "fake@p.iam.gserviceaccount.com", Kind: sign.KindRSA, Keyless: true}
}

func (f *fakeSigner) Sign(ctx context.Context, _ sign.Scope, sts []byte) ([]byte, error) {
	n := f.calls.Add(1)
	cur := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		p := f.peak.Load()
		if cur <= p || f.peak.CompareAndSwap(p, cur) {
			break
		}
	}
	return f.fn(ctx, n, sts)
}

func signature(sts []byte) []byte { return append([]byte("sig:"), sts...) }

func throttle() error {
	return &sign.RetryableError{Err: &iam.Error{Code: 429, Status: "RESOURCE_EXHAUSTED", Message: "Quota exceeded"}}
}

func unavailable() error {
	return &sign.RetryableError{Err: &iam.Error{Code: 503, Status: "UNAVAILABLE"}}
}

// fast are options for unit tests: no pacing to speak of, tiny backoff.
func fast(o Options) *Options {
	if o.Ceiling == 0 {
		o.Ceiling = 1e6
	}
	if o.BaseBackoff == 0 {
		o.BaseBackoff = time.Millisecond
	}
	return &o
}

func newEngine(t *testing.T, f *fakeSigner, o *Options) *Engine {
	t.Helper()
	e, err := New(f, o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEngineRetriesPermanentErrorsAndGivingUp(t *testing.T) {
	permanent := &sign.InputError{Field: "object", Reason: "bad"}
	for _, tc := range []struct {
		name      string
		fn        func(n int64) error
		wantCalls int64
		check     func(t *testing.T, err error, st Stats)
	}{
		{
			name: "throttled twice then signed",
			fn: func(n int64) error {
				if n <= 2 {
					return throttle()
				}
				return nil
			},
			wantCalls: 3,
			check: func(t *testing.T, err error, st Stats) {
				if err != nil {
					t.Fatal(err)
				}
				if st.Retries != 2 || st.Throttled != 2 || st.Successes != 1 || st.Failures != 0 {
					t.Errorf("stats = %+v", st)
				}
			},
		},
		{
			name:      "permanent error returned at once, unchanged",
			fn:        func(int64) error { return permanent },
			wantCalls: 1,
			check: func(t *testing.T, err error, st Stats) {
				if !errors.Is(err, permanent) {
					t.Errorf("err = %v, want the signer's own error", err)
				}
				if st.Failures != 1 || st.Retries != 0 {
					t.Errorf("stats = %+v", st)
				}
			},
		},
		{
			name:      "retryable until MaxAttempts, then a permanent GiveUpError",
			fn:        func(int64) error { return unavailable() },
			wantCalls: 4,
			check: func(t *testing.T, err error, st Stats) {
				var g *GiveUpError
				if !errors.As(err, &g) || g.Attempts != 4 {
					t.Fatalf("err = %v, want a GiveUpError after 4 attempts", err)
				}
				if sign.IsRetryable(err) {
					t.Error("a GiveUpError must not be retryable")
				}
				var ie *iam.Error
				if !errors.As(err, &ie) || ie.Code != 503 {
					t.Errorf("the last cause is lost: %v", err)
				}
				if st.GaveUp != 1 || st.Failures != 1 || st.Retries != 3 {
					t.Errorf("stats = %+v", st)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSigner{fn: func(_ context.Context, n int64, sts []byte) ([]byte, error) {
				if err := tc.fn(n); err != nil {
					return nil, err
				}
				return signature(sts), nil
			}}
			e := newEngine(t, f, fast(Options{MaxAttempts: 4}))
			sig, err := e.Sign(context.Background(), sign.Scope{}, []byte("x"))
			if err == nil && string(sig) != "sig:x" {
				t.Errorf("signature = %q", sig)
			}
			if got := f.calls.Load(); got != tc.wantCalls {
				t.Errorf("inner calls = %d, want %d", got, tc.wantCalls)
			}
			tc.check(t, err, e.Stats())
		})
	}
}

func TestEngineRetriesACallThatTimesOut(t *testing.T) {
	f := &fakeSigner{fn: func(ctx context.Context, n int64, sts []byte) ([]byte, error) {
		if n == 1 {
			<-ctx.Done() // hang until the engine's per-call deadline
			return nil, ctx.Err()
		}
		return signature(sts), nil
	}}
	e := newEngine(t, f, fast(Options{CallTimeout: 20 * time.Millisecond}))
	if _, err := e.Sign(context.Background(), sign.Scope{}, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.Timeouts != 1 || st.Calls != 2 {
		t.Errorf("stats = %+v, want one timeout and two calls", st)
	}
}

func TestEngineBoundsConcurrency(t *testing.T) {
	f := &fakeSigner{fn: func(_ context.Context, _ int64, sts []byte) ([]byte, error) {
		time.Sleep(2 * time.Millisecond)
		return signature(sts), nil
	}}
	e := newEngine(t, f, fast(Options{MaxInFlight: 4}))
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			if _, err := e.Sign(context.Background(), sign.Scope{}, fmt.Appendf(nil, "p%d", i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p := f.peak.Load(); p > 4 || p < 2 {
		t.Errorf("peak concurrency %d, want 2..4 (bounded at 4, and actually concurrent)", p)
	}
	if st := e.Stats(); st.InFlight != 0 || st.Successes != 60 || st.CallLatency.Count != 60 || st.SignLatency.Count != 60 {
		t.Errorf("stats = %+v", st)
	}
}

// watchedCtx reports when a caller has started waiting on it: the engine
// reads Done only after a Sign has joined (or started) its shared call.
type watchedCtx struct {
	context.Context
	once    sync.Once
	waiting chan struct{}
}

func watch(ctx context.Context) *watchedCtx {
	return &watchedCtx{Context: ctx, waiting: make(chan struct{})}
}

func (w *watchedCtx) Done() <-chan struct{} {
	w.once.Do(func() { close(w.waiting) })
	return w.Context.Done()
}

func TestEngineSignsIdenticalRequestsOnce(t *testing.T) {
	release := make(chan struct{})
	f := &fakeSigner{fn: func(_ context.Context, _ int64, sts []byte) ([]byte, error) {
		<-release
		return signature(sts), nil
	}}
	e := newEngine(t, f, fast(Options{}))
	const n = 10
	sigs := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		ctx := watch(context.Background())
		wg.Go(func() {
			var err error
			if sigs[i], err = e.Sign(ctx, sign.Scope{}, []byte("same")); err != nil {
				t.Error(err)
			}
		})
		<-ctx.waiting
	}
	close(release)
	wg.Wait()
	if c := f.calls.Load(); c != 1 {
		t.Errorf("inner calls = %d, want 1 for %d identical requests in flight", c, n)
	}
	for i, s := range sigs {
		if string(s) != "sig:same" {
			t.Errorf("caller %d got %q", i, s)
		}
	}
	sigs[0][0] = 'X' // callers own their copies
	if string(sigs[1]) != "sig:same" {
		t.Error("callers share one signature slice")
	}
	if st := e.Stats(); st.Deduplicated != n-1 || st.Successes != n {
		t.Errorf("stats = %+v", st)
	}
}

func TestEngineFollowerOutlivesTheCallerItWaitedOn(t *testing.T) {
	f := &fakeSigner{fn: func(ctx context.Context, n int64, sts []byte) ([]byte, error) {
		if n == 1 {
			<-ctx.Done() // the first caller's call runs until it gives up
			return nil, ctx.Err()
		}
		return signature(sts), nil
	}}
	e := newEngine(t, f, fast(Options{}))
	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leader, follower := watch(leaderCtx), watch(context.Background())
	leaderErr, followerRes := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := e.Sign(leader, sign.Scope{}, []byte("same"))
		leaderErr <- err
	}()
	<-leader.waiting
	for f.calls.Load() == 0 { // the leader's call is under way
		time.Sleep(time.Millisecond)
	}
	go func() {
		sig, err := e.Sign(follower, sign.Scope{}, []byte("same"))
		if err == nil && string(sig) != "sig:same" {
			err = fmt.Errorf("signature %q", sig)
		}
		followerRes <- err
	}()
	<-follower.waiting
	cancelLeader()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Errorf("leader: %v, want context.Canceled", err)
	}
	if err := <-followerRes; err != nil {
		t.Errorf("follower: %v, want a signature", err)
	}
}

func TestEngineCancellationStopsEveryWait(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		fn   func(ctx context.Context) error
	}{
		{"in the call", Options{MaxInFlight: 1}, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
		{"in backoff", Options{BaseBackoff: time.Hour, MaxBackoff: time.Hour}, func(context.Context) error { return unavailable() }},
		{"in pacing", Options{Ceiling: 0.001, MinRate: 0.001, InitialRate: 0.001}, func(context.Context) error { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			started := make(chan struct{}, 100)
			f := &fakeSigner{fn: func(ctx context.Context, _ int64, sts []byte) ([]byte, error) {
				started <- struct{}{}
				if err := tc.fn(ctx); err != nil {
					return nil, err
				}
				return signature(sts), nil
			}}
			o := tc.opts
			if o.BaseBackoff == 0 {
				o.BaseBackoff = time.Millisecond
			}
			if o.Ceiling == 0 {
				o.Ceiling = 1e6
			}
			e := newEngine(t, f, &o)
			ctx, cancel := context.WithCancel(context.Background())
			errs := make(chan error, 5)
			for i := range 5 {
				go func() {
					_, err := e.Sign(ctx, sign.Scope{}, fmt.Appendf(nil, "p%d", i))
					errs <- err
				}()
			}
			<-started // at least one call reached the signer; others wait
			cancel()
			for range 5 {
				select {
				case err := <-errs:
					// In pacing, the one call let through at once may finish.
					if err != nil && !errors.Is(err, context.Canceled) {
						t.Errorf("err = %v, want context.Canceled", err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("a Sign did not return after cancellation")
				}
			}
		})
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    *Options
		ok   bool
		want Options // defaults resolved, when ok
	}{
		{"nil means defaults", nil, true, Options{MaxInFlight: 64, InitialRate: 100, MinRate: 1, MaxAttempts: 8,
			BaseBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second, CallTimeout: 10 * time.Second}},
		{"a ceiling is the starting rate", &Options{Ceiling: 1000}, true, Options{MaxInFlight: 64, Ceiling: 1000, InitialRate: 1000, MinRate: 1,
			MaxAttempts: 8, BaseBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second, CallTimeout: 10 * time.Second}},
		{"a known quota starts at its share", &Options{Quota: 1000}, true, Options{MaxInFlight: 64, Quota: 1000, InitialRate: 970, MinRate: 1,
			MaxAttempts: 8, BaseBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second, CallTimeout: 10 * time.Second}},
		{"a ceiling under a known quota is the starting rate", &Options{Ceiling: 500, Quota: 1000}, true, Options{MaxInFlight: 64, Ceiling: 500, Quota: 1000, InitialRate: 500, MinRate: 1,
			MaxAttempts: 8, BaseBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second, CallTimeout: 10 * time.Second}},
		{"negative quota", &Options{Quota: -1}, false, Options{}},
		{"negative in flight", &Options{MaxInFlight: -1}, false, Options{}},
		{"negative rate", &Options{Ceiling: -1}, false, Options{}},
		{"floor above ceiling", &Options{Ceiling: 5, MinRate: 10}, false, Options{}},
		{"negative timeout", &Options{CallTimeout: -time.Second}, false, Options{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before Options
			if tc.o != nil {
				before = *tc.o
			}
			e, err := New(&fakeSigner{}, tc.o)
			if (err == nil) != tc.ok {
				t.Fatalf("New: %v, want ok=%v", err, tc.ok)
			}
			if tc.o != nil && *tc.o != before {
				t.Error("New modified its options")
			}
			if err == nil && e.Options() != tc.want {
				t.Errorf("options = %+v, want %+v", e.Options(), tc.want)
			}
		})
	}
	if _, err := New(nil, nil); err == nil {
		t.Error("New(nil) succeeded")
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	h.init()
	for i := 1; i <= 1000; i++ {
		h.observe(time.Duration(i) * time.Millisecond) // uniform 1..1000 ms
	}
	s := h.snapshot()
	for _, q := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.9, 900 * time.Millisecond}, {0.99, 990 * time.Millisecond}} {
		got := s.Quantile(q.q)
		if d := got - q.want; d < -q.want/10 || d > q.want/10 {
			t.Errorf("p%.0f = %v, want %v ± 10%%", 100*q.q, got, q.want)
		}
	}
	if s.Count != 1000 || s.Max != time.Second || s.Mean() != 500500*time.Microsecond {
		t.Errorf("count %d max %v mean %v", s.Count, s.Max, s.Mean())
	}
	// Every bucket bound holds what it should.
	for i, b := range histBounds {
		var one histogram
		one.init()
		one.observe(b)
		if got := slices.Index(one.snapshot().Counts, 1); got != i {
			t.Fatalf("observation at bound %d (%v) landed in bucket %d", i, b, got)
		}
	}
	if (Histogram{}).Quantile(0.5) != 0 {
		t.Error("empty histogram quantile != 0")
	}
}
