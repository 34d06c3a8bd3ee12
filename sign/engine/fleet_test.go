package engine

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// fleetShapes are the two quota shapes replicas meet: a strict token
// bucket 0.1 s deep at 1000/s, and a fixed window of 60,000 per minute
// whose boundary the replicas do not know (the run starts 17 s into a
// window and ends on a boundary, so the capacity is five windows).
var fleetShapes = []struct {
	name     string
	quota    func(start time.Time) simQuota
	duration time.Duration
}{
	{"token bucket 1000/s 0.1 s deep", func(time.Time) simQuota { return &simBucket{rate: 1000, burst: 100} }, 60 * time.Second},
	{"fixed window 60000/min", func(start time.Time) simQuota {
		return &simWindow{limit: 60000, period: time.Minute, phase: start.Add(-17 * time.Second)}
	}, 283 * time.Second},
}

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
// 1, 3 and 10 replicas; and one process reaches 95% in 30 s.
func TestFleetSharesTheQuota(t *testing.T) {
	if raceEnabled {
		// The simulation runs on one goroutine: the race detector has
		// nothing to find in it and would make minutes of it.
		t.Skip("a single-goroutine simulation; run without -race")
	}
	type scenario struct {
		name     string
		cfg      fleetConfig
		minShare float64
	}
	var scenarios []scenario
	for _, sh := range fleetShapes {
		for _, n := range []int{1, 3, 10} {
			for _, seed := range []uint64{1, 2} {
				scenarios = append(scenarios, scenario{
					name: fmt.Sprintf("%s/%d replicas/seed %d", sh.name, n, seed),
					cfg:  fleet(n, sh.quota, sh.duration, seed), minShare: 0.95,
				})
			}
		}
	}
	scenarios = append(scenarios, scenario{
		name: "one process, 30 s", cfg: fleet(1, fleetShapes[0].quota, 30*time.Second, 3), minShare: 0.95,
	})
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel() // pure: each run has its own limiters and clock
			r := simulateFleet(sc.cfg)
			t.Logf("share %.3f, %d calls, %.2f%% refused, fairness %.2f, %d cuts",
				r.share(), r.calls, 100*r.refusedShare(), r.fairness(), r.cuts)
			if r.share() < sc.minShare {
				t.Errorf("together admitted %.1f%% of the quota, want >= %.0f%%", 100*r.share(), 100*sc.minShare)
			}
			if r.refusedShare() >= 0.01 {
				t.Errorf("%.2f%% of calls refused, want < 1%%", 100*r.refusedShare())
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
