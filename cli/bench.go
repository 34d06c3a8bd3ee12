package cli

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/linkissuer/linkissuer/internal/wait"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/sign/iam"
)

const benchUsage = `Usage: linkissuer bench --service-account EMAIL --yes [flags]

Measures what IAM signBlob gives this project, and prints the settings that
fit it: the call latency (sequential calls), then the 429 point (the rate
is raised step by step until more than 1% of a step's calls are refused).
It spends quota: real signBlob calls, bounded by --max-calls and
--max-time, and it refuses to run without --yes. Run it when the project
is otherwise quiet: other users of the quota lower the point it finds.

Flags:
`

// benchFlags bound a bench run.
type benchFlags struct {
	keyless  keylessFlags
	yes      bool
	maxCalls int
	maxTime  time.Duration
	start    float64
}

// Bench implements `linkissuer bench`.
func Bench(ctx context.Context, env Env, args []string) int {
	var f benchFlags
	fs := newFlagSet(env, "bench", benchUsage)
	f.keyless.register(fs, env)
	fs.BoolVar(&f.yes, "yes", false, "spend signBlob quota: required")
	fs.IntVar(&f.maxCalls, "max-calls", 20000, "most signBlob calls to make")
	fs.DurationVar(&f.maxTime, "max-time", time.Minute, "longest run")
	fs.Float64Var(&f.start, "start-rate", 50, "first step's rate, calls per second (doubles each step)")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if !f.yes {
		fmt.Fprintln(env.Stderr, "linkissuer bench: it spends signBlob quota (up to --max-calls calls); give --yes to run it")
		return ExitUsage
	}
	switch {
	case f.maxCalls < 20:
		fmt.Fprintln(env.Stderr, "linkissuer bench: --max-calls must be at least 20")
		return ExitUsage
	case f.maxTime <= 0 || f.start <= 0:
		fmt.Fprintln(env.Stderr, "linkissuer bench: --max-time and --start-rate must be positive")
		return ExitUsage
	case !f.keyless.requested():
		fmt.Fprintln(env.Stderr, "linkissuer bench: give --service-account (or --keyless) to measure IAM signBlob")
		return ExitUsage
	}
	blob, err := iam.NewSigner(ctx, iam.Options{Email: f.keyless.ServiceAccount, Delegates: f.keyless.Delegates, Endpoint: f.keyless.IAMEndpoint,
		CredentialsFile: f.keyless.CredentialsFile, GcloudConfigDir: f.keyless.GcloudConfigDir})
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer bench: %v\n", err)
		return ExitFailure
	}
	ctx, cancel := context.WithTimeout(ctx, f.maxTime)
	defer cancel()
	r, err := runBench(ctx, blob, f.maxCalls, f.start, func(s benchStep) {
		fmt.Fprintf(env.Stderr, "  step %5.0f/s: %5d calls, %5d ok, %4d refused (429), %3d other errors\n", s.rate, s.calls, s.ok, s.refused, s.failed)
	})
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer bench: %v\n", err)
		return ExitFailure
	}
	printBench(env, r)
	return ExitOK
}

// benchStep is one rate step's outcome.
type benchStep struct {
	rate                       float64
	calls, ok, refused, failed int
	admitted                   float64 // successes per second over the step
}

// benchResult is what a run measured.
type benchResult struct {
	latency    []time.Duration // sorted, of successful calls
	steps      []benchStep
	limit      float64 // the 429 point, admitted calls per second; 0 if not reached
	maxTried   float64
	calls      int
	outOfCalls bool
}

// runBench makes ten sequential calls for the latency (at most start a
// second), then steps of one second at start, 2·start, ... calls per second
// until a step has more than 1% of its calls refused, the call budget or
// ctx runs out.
func runBench(ctx context.Context, s sign.Signer, maxCalls int, start float64, progress func(benchStep)) (benchResult, error) {
	var (
		r  benchResult
		mu sync.Mutex
	)
	payload := []byte("linkissuer bench")
	call := func() (time.Duration, error) {
		t := time.Now()
		_, err := s.Sign(ctx, sign.Scope{}, payload)
		return time.Since(t), err
	}
	// The latency: ten sequential calls, paced at the first step's rate so
	// that a small quota does not refuse them (quota is not at stake yet).
	begin := time.Now()
	for i := range 10 {
		if err := wait.Until(ctx, begin.Add(time.Duration(float64(i)/start*float64(time.Second)))); err != nil {
			return r, fmt.Errorf("stopped while measuring latency: %w", err)
		}
		d, err := call()
		r.calls++
		// A 429 here is other users of the quota: wait a second and go on,
		// three times at most.
		for throttled := 0; err != nil && sign.IsThrottled(err) && throttled < 3 && r.calls < maxCalls; throttled++ {
			if err := wait.Until(ctx, time.Now().Add(time.Second)); err != nil {
				return r, fmt.Errorf("stopped while measuring latency: %w", err)
			}
			d, err = call()
			r.calls++
		}
		if err != nil {
			if ctx.Err() != nil {
				return r, fmt.Errorf("stopped while measuring latency: %w", ctx.Err())
			}
			return r, fmt.Errorf("signBlob fails before any load: %w", err)
		}
		r.latency = append(r.latency, d)
	}
	for rate := start; ctx.Err() == nil; rate *= 2 {
		n := int(math.Ceil(rate))
		if r.calls+n > maxCalls {
			r.outOfCalls = true
			break
		}
		step := benchStep{rate: rate}
		var wg sync.WaitGroup
		begin := time.Now()
		for i := range n {
			at := begin.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if err := wait.Until(ctx, at); err != nil {
				break
			}
			wg.Go(func() {
				d, err := call()
				mu.Lock()
				defer mu.Unlock()
				step.calls++
				switch {
				case err == nil:
					step.ok++
					r.latency = append(r.latency, d)
				case sign.IsThrottled(err):
					step.refused++
				default:
					step.failed++
				}
			})
		}
		wg.Wait()
		step.admitted = float64(step.ok) / max(time.Since(begin).Seconds(), 1)
		r.calls += step.calls
		r.steps = append(r.steps, step)
		r.maxTried = rate
		if progress != nil {
			progress(step)
		}
		if step.calls > 0 && float64(step.refused) > 0.01*float64(step.calls) {
			r.limit = step.admitted
			break
		}
		// Let a token bucket refill between steps.
		if err := wait.Until(ctx, time.Now().Add(time.Second)); err != nil {
			break
		}
	}
	slices.Sort(r.latency)
	return r, nil
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// benchAdvice turns a measurement into settings: the ceiling just under
// the 429 point, enough calls in flight to reach it at the p99 latency
// (Little's law, with room), replicas of the default 64 in flight, and
// the quota per minute a fleet may split (--sign-quota): the ceiling's.
type benchAdvice struct {
	ceiling  float64 // 0: no 429 point found, leave the rate adaptive
	quota    float64 // calls per minute; 0 with no ceiling
	inFlight int
	replicas int
}

func advise(r benchResult) benchAdvice {
	target := r.limit
	if target == 0 {
		target = r.maxTried
	}
	p99 := quantile(r.latency, 0.99).Seconds()
	a := benchAdvice{inFlight: max(1, int(math.Ceil(1.5*target*p99)))}
	if r.limit > 0 {
		a.ceiling = math.Floor(0.9 * r.limit) // the refused step also drained the bucket's burst
		a.quota = 60 * a.ceiling
	}
	a.replicas = max(1, (a.inFlight+63)/64)
	return a
}

func printBench(env Env, r benchResult) {
	a := advise(r)
	w := env.Stdout
	fmt.Fprintf(w, "signBlob latency: p50 %s, p90 %s, p99 %s (%d calls)\n",
		quantile(r.latency, 0.5).Round(time.Millisecond), quantile(r.latency, 0.9).Round(time.Millisecond),
		quantile(r.latency, 0.99).Round(time.Millisecond), len(r.latency))
	if r.limit > 0 {
		fmt.Fprintf(w, "429 point: about %.0f calls/s admitted (more than 1%% refused at a %.0f/s step)\n", r.limit, r.maxTried)
	} else {
		why := "the time ran out"
		if r.outOfCalls {
			why = "--max-calls ran out"
		}
		fmt.Fprintf(w, "429 point: not reached up to %.0f calls/s (%s); the quota is at least that\n", r.maxTried, why)
	}
	fmt.Fprintf(w, "calls spent: %d\n\nsettings that fit:\n", r.calls)
	fmt.Fprintf(w, "  LINKISSUER_SIGN_IN_FLIGHT=%d   (calls in flight to reach that rate at the p99 latency, with half again of room)\n", a.inFlight)
	if a.ceiling > 0 {
		fmt.Fprintf(w, "  LINKISSUER_SIGN_RATE_CEILING=%.0f   (for one replica; N replicas sharing the quota: this / N each, or unset: they find their shares)\n", a.ceiling)
		fmt.Fprintf(w, "  LINKISSUER_SIGN_QUOTA=%.0f   (per minute, the ceiling's, in place of it: replicas with LINKISSUER_QUOTA_FLEET split 97%% of it from their first call; the project's exact quota is on the console's IAM Service Account Credentials API quotas page)\n", a.quota)
	} else {
		fmt.Fprintln(w, "  LINKISSUER_SIGN_RATE_CEILING unset   (the rate adapts to the quota)")
	}
	fmt.Fprintf(w, "  replicas: %d at the default 64 in flight reach the point; more add no signing throughput (the quota is the project's)\n", a.replicas)
}
