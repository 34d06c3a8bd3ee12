package engine

import (
	"cmp"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

type fleetShape struct {
	name     string
	quota    func(start time.Time) simQuota
	duration time.Duration
}

// shapesAt are the two quota shapes replicas meet, at rate calls per
// second: a strict token bucket 0.1 s deep, and a fixed window of 60×rate
// per minute whose boundary the replicas do not know (the run starts 17 s
// into a window and ends on a boundary, so the capacity is five windows).
func shapesAt(rate float64) []fleetShape {
	return []fleetShape{
		{fmt.Sprintf("token bucket %g/s 0.1 s deep", rate), func(time.Time) simQuota { return &simBucket{rate: rate, burst: rate / 10} }, 60 * time.Second},
		{fmt.Sprintf("fixed window %g/min", 60*rate), func(start time.Time) simQuota {
			return &simWindow{limit: int(60 * rate), period: time.Minute, phase: start.Add(-17 * time.Second)}
		}, 283 * time.Second},
	}
}

// fleetShapes are the shapes at signBlob's default quota, 60,000 per minute.
var fleetShapes = shapesAt(1000)

// fleet is replicas with the engine's defaults and an endless backlog each
// (SignAll keeps 2×MaxInFlight requests going), 50 ms calls, all starting
// cold at once.
func fleet(replicas int, quota func(time.Time) simQuota, d time.Duration, seed uint64) fleetConfig {
	return fleetConfig{
		quota: quota, replicas: replicas, inFlight: DefaultMaxInFlight, callers: 2 * DefaultMaxInFlight,
		latency: ms(50), jitter: ms(10), refused: ms(10), initial: DefaultInitialRate,
		duration: d, seed: seed,
	}
}

// TestFleetSharesTheQuota is the limiter's contract with replicas that
// know nothing of each other: together they reach 95% of the quota with
// under 1% of calls refused, from a cold start, on both quota shapes, for
// 1, 3 and 10 replicas; and one process reaches 95% in 30 s. At signBlob's
// default quota (1000/s) and at 200/s, where ten replicas get 20 calls/s
// each. Two rows do not meet the 1% goal and assert what they reach
// instead (see maxRefused): ten replicas at 200/s. Fairness (the smallest
// replica's admitted count over the largest's) is logged, and held where
// the limiter reaches it.
func TestFleetSharesTheQuota(t *testing.T) {
	if raceEnabled {
		// The simulation runs on one goroutine: the race detector has
		// nothing to find in it and would make minutes of it.
		t.Skip("a single-goroutine simulation; run without -race")
	}
	type scenario struct {
		name        string
		cfg         fleetConfig
		minShare    float64
		maxRefused  float64
		minFairness float64
	}
	// Where the goal (< 1% refused) is not met: ten replicas at 200/s. On
	// the bucket (1.5-1.7%), the cold start (ten replicas at the initial
	// 100/s each, five times the quota) costs ~0.9% and the probing of
	// ten 20/s replicas past the quota the rest. On the window, the calls in flight when the first
	// window runs dry (ten replicas ramped up on a quota that admitted
	// everything, 64 in flight each) are refused: ~1% of the five
	// windows' calls on their own (2.2% in all).
	maxRefused := map[string]float64{"token bucket 200/s 0.1 s deep/10": 0.02, "fixed window 12000/min/10": 0.025}
	// Fairness where it is reached: at 20 calls/s per replica the bucket's
	// shares stay as unequal as the cold start left them.
	minFairness := map[string]float64{
		"token bucket 1000/s 0.1 s deep/3": 0.9, "token bucket 1000/s 0.1 s deep/10": 0.6,
		"token bucket 200/s 0.1 s deep/3": 0.3,
		"fixed window 60000/min/3":        0.95, "fixed window 60000/min/10": 0.95,
		"fixed window 12000/min/3": 0.95, "fixed window 12000/min/10": 0.95,
	}
	var scenarios []scenario
	for _, rate := range []float64{1000, 200} {
		for _, sh := range shapesAt(rate) {
			for _, n := range []int{1, 3, 10} {
				key := fmt.Sprintf("%s/%d", sh.name, n)
				for _, seed := range []uint64{1, 2} {
					scenarios = append(scenarios, scenario{
						name: fmt.Sprintf("%s/%d replicas/seed %d", sh.name, n, seed),
						cfg:  fleet(n, sh.quota, sh.duration, seed), minShare: 0.95,
						maxRefused: cmp.Or(maxRefused[key], 0.01), minFairness: minFairness[key],
					})
				}
			}
		}
		scenarios = append(scenarios, scenario{
			name: fmt.Sprintf("one process, 30 s, %g/s", rate), cfg: fleet(1, shapesAt(rate)[0].quota, 30*time.Second, 3),
			minShare: 0.95, maxRefused: 0.01,
		})
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel() // pure: each run has its own limiters and clock
			r := simulateFleet(sc.cfg)
			t.Logf("share %.3f, %d calls, %.2f%% refused, fairness %.2f, %d cuts",
				r.share(), r.calls, 100*r.refusedShare(), r.fairness(), r.cuts)
			if r.share() < sc.minShare {
				t.Errorf("together admitted %.1f%% of the quota, want >= %.0f%%", 100*r.share(), 100*sc.minShare)
			}
			if r.refusedShare() >= sc.maxRefused {
				t.Errorf("%.2f%% of calls refused, want < %.1f%%", 100*r.refusedShare(), 100*sc.maxRefused)
			}
			if r.fairness() < sc.minFairness {
				t.Errorf("fairness %.2f, want >= %.2f", r.fairness(), sc.minFairness)
			}
		})
	}
}

var fleetTrace = flag.String("fleet.trace", "", "write the admitted calls per second per replica of 1, 3 and 10 replicas on both shapes to this CSV (loadtest/plot draws it)")

// TestFleetTrace writes the simulation's time series for the picture in
// BENCHMARKS.md; it runs only with -fleet.trace.
func TestFleetTrace(t *testing.T) {
	if *fleetTrace == "" {
		t.Skip("no -fleet.trace file")
	}
	var b strings.Builder
	b.WriteString("build,shape,processes,process,second,issued\n")
	for _, sh := range fleetShapes {
		for _, n := range []int{1, 3, 10} {
			r := simulateFleet(fleet(n, sh.quota, sh.duration, 1))
			for p, secs := range r.perSecond {
				for s, k := range secs {
					fmt.Fprintf(&b, "simulation,%s,%d,%d,%d,%d\n", sh.name, n, p, s, k)
				}
			}
		}
	}
	if err := os.WriteFile(*fleetTrace, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
