package engine

import (
	"cmp"
	"fmt"
	fleetview "github.com/linkissuer/linkissuer/fleet"
	"testing"
	"time"
)

// fixedWork is the real-process measurement in simulation: the replicas
// split work requests equally, each stops when its part is done, and the
// slowest sets the wall time.
func fixedWork(c fleetConfig, work int, withFleet bool) fleetConfig {
	c.work = work
	c.duration = 20 * time.Minute
	if withFleet {
		c.fleet = &simFleet{interval: time.Second}
	}
	return c
}

type workShape struct {
	name  string
	quota func(start time.Time) simQuota
	work  int
}

// workShapesAt are the two quota shapes for a fixed amount of work: 30 s
// of the bucket's rate, or 2.5 windows' count of a per-minute window
// that starts with the run (so that work / wall / rate cannot pass 1 by
// spending a window's count early).
func workShapesAt(rate float64) []workShape {
	return []workShape{
		{fmt.Sprintf("token bucket %g/s 0.1 s deep", rate), func(time.Time) simQuota { return &simBucket{rate: rate, burst: rate / 10} }, int(30 * rate)},
		{fmt.Sprintf("fixed window %g/min", 60*rate), func(start time.Time) simQuota {
			return &simWindow{limit: int(60 * rate), period: time.Minute, phase: start}
		}, int(150 * rate)},
	}
}

// TestFleetViewFixedWork compares row D alone with D steered by a fleet
// view (package fleet over a simulated store, 1 s interval) on fixed work:
// the replicas split 30 s of the bucket's rate (or 2.5 windows' count)
// equally, and the slowest sets the wall time, as in the real-process
// loadtest. Share = work admitted / wall / quota rate. With the fleet every
// bucket cell reaches 0.95; what it does not reach is asserted as reached
// (maxRefused): ten replicas at 200/s refuse 2.8% (the first second, before
// the first step, runs ten replicas at the initial 100/s), and the window
// rows refuse what they refuse without a fleet (the first spent window).
func TestFleetViewFixedWork(t *testing.T) {
	if raceEnabled {
		t.Skip("a single-goroutine simulation; run without -race")
	}
	maxRefused := map[string]float64{
		"token bucket 200/s 0.1 s deep/10": 0.03,
		"fixed window 12000/min/3":         0.015, "fixed window 12000/min/10": 0.045,
	}
	for _, rate := range []float64{200, 1000} {
		for _, sh := range workShapesAt(rate) {
			for _, n := range []int{1, 3, 10} {
				key := fmt.Sprintf("%s/%d", sh.name, n)
				t.Run(fmt.Sprintf("%s/%d replicas", sh.name, n), func(t *testing.T) {
					t.Parallel()
					off := simulateFleet(fixedWork(fleet(n, sh.quota, 0, 1), sh.work, false))
					on := simulateFleet(fixedWork(fleet(n, sh.quota, 0, 1), sh.work, true))
					t.Logf("%s: D: share %.3f, %.2f%% refused, slowest/fastest %s; D+fleet: share %.3f, %.2f%% refused, slowest/fastest %s",
						key, off.workShare(rate), 100*off.refusedShare(), off.slowFast(), on.workShare(rate), 100*on.refusedShare(), on.slowFast())
					if on.workShare(rate) < 0.95 {
						t.Errorf("with the fleet: share %.3f, want >= 0.95", on.workShare(rate))
					}
					if lim := cmp.Or(maxRefused[key], 0.01); on.refusedShare() >= lim {
						t.Errorf("with the fleet: %.2f%% refused, want < %.1f%%", 100*on.refusedShare(), 100*lim)
					}
				})
			}
		}
	}
}

// TestFleetViewStalls is TestFleetViewFixedWork's bucket rows on a busy
// machine: each replica is descheduled on average every 200 ms for up to
// 60 ms (simStalls), so its sends leave in bursts and a 0.1 s deep bucket
// refuses some of them below the quota, as in the real-process loadtest
// on two cores. Replicas with the fleet view still reach 0.95 together;
// ten at 200/s refuse what they refuse without stalls (the cold start).
func TestFleetViewStalls(t *testing.T) {
	if raceEnabled {
		t.Skip("a single-goroutine simulation; run without -race")
	}
	for _, rate := range []float64{200, 1000} {
		sh := workShapesAt(rate)[0]
		for _, n := range []int{1, 3, 10} {
			t.Run(fmt.Sprintf("%s/%d replicas", sh.name, n), func(t *testing.T) {
				t.Parallel()
				stalled := func(withFleet bool) fleetResult {
					c := fixedWork(fleet(n, sh.quota, 0, 1), sh.work, withFleet)
					c.stalls = &simStalls{every: 200 * time.Millisecond, most: 60 * time.Millisecond}
					return simulateFleet(c)
				}
				off, on := stalled(false), stalled(true)
				t.Logf("%s/%d, stalls: D: share %.3f, %.2f%% refused, slowest/fastest %s; D+fleet: share %.3f, %.2f%% refused, slowest/fastest %s",
					sh.name, n, off.workShare(rate), 100*off.refusedShare(), off.slowFast(), on.workShare(rate), 100*on.refusedShare(), on.slowFast())
				if n == 1 {
					return // nothing to share
				}
				if on.workShare(rate) < 0.95 {
					t.Errorf("with the fleet: share %.3f, want >= 0.95", on.workShare(rate))
				}
				if lim := map[bool]float64{true: 0.03, false: 0.01}[rate == 200 && n == 10]; on.refusedShare() >= lim {
					t.Errorf("with the fleet: %.2f%% refused, want < %.0f%%", 100*on.refusedShare(), 100*lim)
				}
			})
		}
	}
}

// TestFleetViewFreeze is TestFleetViewFixedWork's bucket rows with one
// replica descheduled for a second, 7 s in (seen in a real-process run on
// a busy machine): its callers' booked sends leave at once when it runs
// again, the bucket refuses most of them, and that interval admitted
// little. The fleet's estimate must come back: the view must not leave
// the fleet (or a lone replica) below what it reaches without it.
func TestFleetViewFreeze(t *testing.T) {
	if raceEnabled {
		t.Skip("a single-goroutine simulation; run without -race")
	}
	for _, rate := range []float64{200, 1000} {
		sh := workShapesAt(rate)[0]
		for _, n := range []int{1, 3, 10} {
			t.Run(fmt.Sprintf("%s/%d replicas", sh.name, n), func(t *testing.T) {
				t.Parallel()
				frozen := func(withFleet bool) fleetResult {
					c := fixedWork(fleet(n, sh.quota, 0, 1), sh.work, withFleet)
					c.freeze = &simFreeze{replica: 0, at: 7 * time.Second, d: time.Second}
					return simulateFleet(c)
				}
				off, on := frozen(false), frozen(true)
				t.Logf("%s/%d, a 1 s freeze: D: share %.3f, %.2f%% refused, slowest/fastest %s; D+fleet: share %.3f, %.2f%% refused, slowest/fastest %s",
					sh.name, n, off.workShare(rate), 100*off.refusedShare(), off.slowFast(), on.workShare(rate), 100*on.refusedShare(), on.slowFast())
				if want := min(0.95, off.workShare(rate)-0.01); on.workShare(rate) < want {
					t.Errorf("with the fleet: share %.3f, want >= %.3f", on.workShare(rate), want)
				}
			})
		}
	}
}

// TestFleetKnownQuota is TestFleetViewFixedWork's rows with the quota
// known (Options.Quota, --sign-quota) and the fleet view: the replicas
// announce themselves before their first call and split KnownShare of the
// limit, so nobody probes and no window runs dry. Every cell, both
// shapes and both rates, reaches 0.95 with under 1% refused; so does a
// lone replica without a fleet, and the rows with stalls (simStalls).
func TestFleetKnownQuota(t *testing.T) {
	if raceEnabled {
		t.Skip("a single-goroutine simulation; run without -race")
	}
	for _, rate := range []float64{200, 1000} {
		for _, sh := range workShapesAt(rate) {
			for _, n := range []int{1, 3, 10} {
				for _, stalls := range []bool{false, true} {
					name := fmt.Sprintf("%s/%d replicas", sh.name, n)
					if stalls {
						name += "/stalls"
					}
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						run := func(withFleet bool) fleetResult {
							c := fixedWork(fleet(n, sh.quota, 0, 1), sh.work, withFleet)
							c.quotaKnown = rate
							c.initial = fleetview.KnownShare * rate
							if stalls {
								c.stalls = &simStalls{every: 200 * time.Millisecond, most: 60 * time.Millisecond}
							}
							return simulateFleet(c)
						}
						alone, on := run(false), run(true)
						t.Logf("%s: known quota: share %.3f, %.2f%% refused, slowest/fastest %s; +fleet: share %.3f, %.2f%% refused, slowest/fastest %s",
							name, alone.workShare(rate), 100*alone.refusedShare(), alone.slowFast(), on.workShare(rate), 100*on.refusedShare(), on.slowFast())
						check := func(what string, r fleetResult) {
							if r.workShare(rate) < 0.95 {
								t.Errorf("%s: share %.3f, want >= 0.95", what, r.workShare(rate))
							}
							if r.refusedShare() >= 0.01 {
								t.Errorf("%s: %.2f%% refused, want < 1%%", what, 100*r.refusedShare())
							}
						}
						check("with the fleet", on)
						if n == 1 {
							check("alone", alone)
						}
					})
				}
			}
		}
	}
}
