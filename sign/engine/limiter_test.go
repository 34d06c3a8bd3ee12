package engine

import (
	"context"
	"math"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

func TestLimiterPaces(t *testing.T) {
	l := newLimiter(100, 1, 0, 0) // one slot every 10 ms
	// An idle limiter lets pacingSlack's worth of calls through at once
	// (the slot at now included), then spaces them by the interval.
	immediate := int(pacingSlack/ms(10)) + 1
	want := func(i int) time.Duration { return ms(10) * time.Duration(max(0, i-immediate+1)) }
	for _, start := range []time.Time{t0, t0.Add(time.Hour)} { // fresh, then after idling
		for i := range immediate + 3 {
			if at := l.reserve(start).at; at.Sub(start) != want(i) {
				t.Fatalf("slot %d at %v, want %v", i, at.Sub(start), want(i))
			}
		}
	}
	// A slot given back is booked again.
	now := t0.Add(time.Hour)
	at := l.reserve(now).at
	l.release(at)
	if again := l.reserve(now).at; !again.Equal(at) {
		t.Errorf("released slot %v not reused, got %v", at.Sub(now), again.Sub(now))
	}
}

// busy books slots until the limiter binds, as callers waiting on it would.
func busy(l *limiter, now time.Time) {
	for range 40 {
		l.reserve(now)
	}
}

func TestLimiterSlowStartDoublesWhileBinding(t *testing.T) {
	l := newLimiter(100, 1, 0, 0)
	now := t0
	busy(l, now)
	// 100 successes at 100/s take a second: four doublings of 250 ms would
	// be 1600/s; growth per success is linear in count, exponential in time.
	for range 100 {
		now = now.Add(ms(10))
		l.reserve(now)
		l.success(now, ms(50))
	}
	if r := l.Rate(); r < 300 || r > 400 {
		// 100 successes × ln2/0.25 s ≈ +277.
		t.Errorf("rate after 100 successes = %.0f, want about 377", r)
	}
}

func TestLimiterDoesNotGrowWhenNotBinding(t *testing.T) {
	l := newLimiter(100, 1, 0, 0)
	now := t0
	for range 200 {
		now = now.Add(time.Second) // one caller, once a second: never waits
		l.reserve(now)
		l.success(now, ms(50))
	}
	if r := l.Rate(); r != 100 {
		t.Errorf("rate = %.1f, want 100: an idle limiter must not grow", r)
	}
}

func TestLimiterCeilingAndFloor(t *testing.T) {
	l := newLimiter(100, 20, 150, 0)
	now := t0
	busy(l, now)
	for range 1000 {
		now = now.Add(ms(1))
		l.reserve(now)
		l.success(now, ms(50))
	}
	if r := l.Rate(); r != 150 {
		t.Errorf("rate = %.1f, want the ceiling 150", r)
	}
	for range 100 { // a success between throttles: not a dry quota
		l.success(now, ms(50))
		now = now.Add(time.Second)
		l.throttled(now, l.reserve(now))
	}
	if r := l.Rate(); r != 20 {
		t.Errorf("rate = %.1f, want the floor 20", r)
	}
}

func TestLimiterCutsOncePerRoundTrip(t *testing.T) {
	l := newLimiter(1000, 1, 0, 0)
	now := t0
	oldEpoch := l.reserve(now)
	sameEpoch := l.reserve(now)
	if !l.throttled(now.Add(ms(1)), oldEpoch) {
		t.Fatal("first throttle did not cut")
	}
	if r := l.Rate(); math.Abs(r-decrease*1000/coldCut) > 1e-9 {
		// A cold cut: none of this replica's calls got through yet, and a
		// cold cut is at most coldCut-fold.
		t.Errorf("rate = %.1f, want %.1f (0.9 × 1000/%d: nothing admitted yet)", r, decrease*1000/coldCut, coldCut)
	}
	// Booked before the cut: it reports on the old rate.
	if l.throttled(now.Add(ms(2)), sameEpoch) {
		t.Error("a call booked before the cut cut again")
	}
	// Booked after the cut but answered within the hold-off.
	newEpoch := l.reserve(now.Add(ms(2)))
	if l.throttled(now.Add(ms(3)), newEpoch) {
		t.Error("a throttle inside the hold-off cut again")
	}
	if !l.throttled(now.Add(ms(100)), newEpoch) {
		t.Error("a throttle after the hold-off did not cut")
	}
}

func TestLimiterLeavesSlowStartOnlyOnAnInformedCut(t *testing.T) {
	l := newLimiter(100, 1, 0, 0)
	now := t0
	epoch := l.reserve(now)
	l.throttled(now, epoch) // the opening burst hit a shallow bucket
	if !l.slowStart {
		t.Fatal("a throttle before any success left slow start")
	}
	for range 100 { // a second of successes: the estimate is warm
		now = now.Add(ms(10))
		l.success(now, ms(50))
	}
	epoch = l.reserve(now)
	if !l.throttled(now, epoch) || l.slowStart {
		t.Error("a throttle with a warm estimate did not end slow start")
	}
}

func TestLimiterCutsToWhatTheServerAdmitted(t *testing.T) {
	// Successes arrive steadily at 500/s while we pace at 2000/s: the
	// quota is evidently about 500, and one cut must land near 0.9 × 500,
	// not at 0.9 × 2000.
	l := newLimiter(2000, 1, 0, 0)
	now := t0
	for range 1000 { // two seconds of steady successes
		now = now.Add(ms(2))
		l.success(now, ms(50))
	}
	epoch := l.reserve(now)
	l.throttled(now, epoch)
	if r := l.Rate(); r < 430 || r > 470 {
		t.Errorf("rate after the cut = %.0f, want about 450", r)
	}
	// Afterwards the rate grows by fastGrowth (5%) of that estimate per
	// second of successes: 25/s², up to nearShare (97%) of the estimate.
	busy(l, now)
	before := l.Rate()
	for range 450 { // one second at the new rate
		now = now.Add(time.Second / 450)
		l.reserve(now)
		l.success(now, ms(50))
	}
	if g := l.Rate() - before; g < 22 || g > 27 {
		t.Errorf("grew %.1f/s in a second, want about 25", g)
	}
	// Near the estimate it probes slowly: nearGrowth (0.25%) of ~500 per
	// second, 1.25/s².
	for l.Rate() < nearShare*l.refRate {
		now = now.Add(time.Second / 480)
		l.reserve(now)
		l.success(now, ms(50))
	}
	before = l.Rate()
	for range 485 {
		now = now.Add(time.Second / 485)
		l.reserve(now)
		l.success(now, ms(50))
	}
	if g := l.Rate() - before; g < 1 || g > 1.5 {
		t.Errorf("grew %.2f/s in a second near the estimate, want about 1.25", g)
	}
}

func TestLimiterWaitHonoursContext(t *testing.T) {
	l := newLimiter(1, 1, 0, 0) // one slot per second
	l.reserve(time.Now())
	l.reserve(time.Now()) // the next slot is about a second away
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.wait(ctx); err == nil {
		t.Error("wait on a cancelled context returned no error")
	}
}

// TestLimiterConvergesInSimulation runs one limiter against simulated
// token-bucket servers (various depths, latencies, concurrency) on a
// simulated clock. It is deterministic and takes milliseconds.
func TestLimiterConvergesInSimulation(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		quota, burst, ceiling float64
		latency               time.Duration
		inFlight              int
		minShare              float64 // admitted rate / quota
	}{
		{"1000/s, 1 s bucket", 1000, 1000, 0, ms(50), 64, 0.95},
		{"1000/s, 10-call bucket", 1000, 10, 0, ms(50), 64, 0.90},
		{"1000/s, known ceiling", 1000, 100, 1000, ms(50), 64, 0.98},
		{"ceiling above the quota", 1000, 1000, 1500, ms(50), 64, 0.95},
		{"200/s, shallow bucket", 200, 5, 0, ms(50), 64, 0.90},
		{"3000/s, 256 in flight", 3000, 3000, 0, ms(50), 256, 0.90},
		{"slow calls", 1000, 50, 0, ms(200), 256, 0.85},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // pure: each run has its own limiter and clock
			initial := float64(DefaultInitialRate)
			if tc.ceiling > 0 {
				initial = tc.ceiling
			}
			c := fleetConfig{
				quota:    func(time.Time) simQuota { return &simBucket{rate: tc.quota, burst: tc.burst} },
				replicas: 1, inFlight: tc.inFlight, callers: 2 * tc.inFlight,
				latency: tc.latency, jitter: tc.latency / 5, refused: ms(10),
				ceiling: tc.ceiling, initial: initial, duration: 30 * time.Second, seed: 1,
			}
			r := simulateFleet(c)
			t.Logf("%.1f%% of quota, %d calls, %d throttled (%.2f%%), %d cuts, final rate %.0f",
				100*r.share(), r.calls, r.refused, 100*r.refusedShare(), r.cuts, r.rates[0])
			if r.share() < tc.minShare {
				t.Errorf("achieved %.1f%% of the quota, want >= %.0f%%", 100*r.share(), 100*tc.minShare)
			}
			if r.refusedShare() >= 0.02 {
				t.Errorf("%.2f%% of calls throttled, want < 2%%", 100*r.refusedShare())
			}
		})
	}
}

// dry runs refusals from now for d, one every 10 ms, each on a fresh
// ticket, until the limiter pauses, and returns the time after.
func dry(l *limiter, now time.Time, d time.Duration) time.Time {
	for end := now.Add(d); now.Before(end) && !l.paused; now = now.Add(ms(10)) {
		l.throttled(now, l.reserve(now))
	}
	return now
}

func TestLimiterPausesWhenTheQuotaRunsDry(t *testing.T) {
	l := newLimiter(1000, 1, 0, 0)
	now := t0
	for range 100 {
		now = now.Add(ms(1))
		l.success(now, ms(50))
	}
	booked := l.reserve(now)
	before := l.Rate()
	now = dry(l, now, exhaustAfter+ms(10))
	if !l.paused {
		t.Fatalf("not paused after %v of refusals", exhaustAfter+ms(10))
	}
	if l.confirm(booked, now) {
		t.Error("a slot booked before the pause may still be sent")
	}
	probe := l.reserve(now)
	other := l.reserve(now)
	if !probe.probe || !l.confirm(probe, probe.at) {
		t.Fatalf("first ticket in a pause = %+v, want a probe that may go", probe)
	}
	if !other.recheck || l.confirm(other, other.at) || !other.at.After(probe.at) {
		t.Errorf("second ticket in a pause = %+v, want ask again after the probe", other)
	}
	// The probe is refused: the next one waits longer.
	l.throttled(probe.at, probe)
	next := l.reserve(probe.at)
	if !next.probe || next.at.Sub(probe.at) < firstProbeGap {
		t.Errorf("probe after a refused probe at +%v, want a probe at least %v later", next.at.Sub(probe.at), firstProbeGap)
	}
	// Admitted soon after: a short blackout, not a window. The cuts made
	// during it stand (each was to what the server admitted), and it is
	// at least one cut from the rate before it.
	during := l.Rate()
	l.success(next.at.Add(ms(50)), ms(50))
	if l.paused || l.windowed {
		t.Errorf("paused=%v windowed=%v after a short blackout, want neither", l.paused, l.windowed)
	}
	if want := min(during, decrease*before); math.Abs(l.Rate()-want) > 1 {
		t.Errorf("rate %.0f after a short blackout, want %.0f (the streak's cuts, at least one from %.0f)", l.Rate(), want, before)
	}
}

func TestLimiterLearnsAFixedWindow(t *testing.T) {
	l := newLimiter(2000, 1, 0, 0)
	now := t0
	// A cold start: 20 s at 1500/s spend the window, then it is dry until
	// the reset at 60 s.
	for range 30000 {
		now = now.Add(time.Second / 1500)
		l.success(now, ms(50))
	}
	reset := t0.Add(time.Minute)
	for now = dry(l, now, exhaustAfter+ms(10)); now.Before(reset); {
		p := l.reserve(now)
		if !p.probe {
			now = p.at
			continue
		}
		if p.at.Before(reset) {
			l.throttled(p.at.Add(ms(10)), p)
			now = p.at.Add(ms(10))
			continue
		}
		l.success(p.at.Add(ms(50)), ms(50))
		now = p.at.Add(ms(50))
	}
	if !l.windowed {
		t.Fatal("a long dry spell ended by a reset did not set window pacing")
	}
	// What the partial window admitted per second of it.
	if r := l.Rate(); r < 30000/62.0 || r > 30000/59.0 {
		t.Errorf("rate after the first reset = %.0f, want about %.0f", r, 30000/60.0)
	}
	// A whole window admits 42,000 to this replica before running dry:
	// the next window is paced at 42,000/60 s.
	for range 42000 {
		now = now.Add(time.Second / 1000)
		l.success(now, ms(50))
	}
	now = dry(l, now, exhaustAfter+ms(10))
	p := l.reserve(now)
	next := l.boundary.Add(quotaWindow)
	if !p.probe || p.at.Before(next.Add(-probeLead)) || p.at.After(next) {
		t.Fatalf("probe at %v, want just before the next boundary %v", p.at.Sub(t0), next.Sub(t0))
	}
	l.success(next.Add(ms(60)), ms(50))
	if r := l.Rate(); math.Abs(r-700) > 1 {
		t.Errorf("rate in the next window = %.1f, want 700 (42,000 per minute)", r)
	}
	// A window that does not run dry grows the rate by windowGrowth.
	for now = next.Add(ms(60)); now.Before(next.Add(quotaWindow + ms(100))); now = now.Add(time.Second / 700) {
		l.success(now, ms(50))
	}
	if r := l.Rate(); math.Abs(r-700*(1+windowGrowth)) > 1 {
		t.Errorf("rate after a window with room = %.1f, want %.1f", r, 700*(1+windowGrowth))
	}
}
