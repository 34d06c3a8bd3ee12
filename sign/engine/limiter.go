package engine

import (
	"context"
	"math"
	"sync"
	"time"
)

// Limiter tuning. The rate starts in slow start, doubling every
// slowStartDoubling while it is what holds callers back, until the first
// throttle. Each throttle (at most one per hold-off, about two call
// latencies, and only for calls booked since the last cut) cuts the rate to
// decrease × min(rate, successes per second over the last recentWindow):
// what the server just admitted, which is the quota once its bucket is
// empty. While successes are still climbing (slow start) that estimate lags,
// and the cut is a plain decrease × rate. Between cuts the rate grows
// additively by growthShare of the last estimate per second.
//
// Why these numbers (checked by TestLimiterConvergesInSimulation): cutting
// to 0.9 of what the server admitted, rather than of what was sent, lands
// just under the quota in one or two steps even after a large slow-start
// overshoot; growing 2% per second takes ~5 s to come back, so a cycle
// costs at most ~5% of the quota against a shallow server bucket and almost
// nothing against a deep one, and only the calls of about one round trip
// per cycle are throttled.
const (
	decrease          = 0.9
	growthShare       = 0.02
	slowStartDoubling = 250 * time.Millisecond
	successWindow     = 250 * time.Millisecond
	recentWindow      = 100 * time.Millisecond
	pacingSlack       = 50 * time.Millisecond
	minHoldOff        = 50 * time.Millisecond
	minGrowthBase     = 10 // calls/s: the step never falls below 0.2/s²
)

// limiter is an AIMD token pacer. Callers reserve a send time, report each
// call's outcome, and the rate follows the quota without being told it.
// Every method takes the time explicitly; only wait reads the clock.
type limiter struct {
	mu        sync.Mutex
	rate      float64 // calls per second
	min, max  float64 // bounds; max is the ceiling or +Inf
	slowStart bool
	next      time.Time    // the next free send slot
	epoch     uint64       // incremented at each cut
	lastCut   time.Time    // when the rate was last cut
	latency   float64      // moving average of successful calls' latency, seconds
	refRate   float64      // the rate found at the last cut: sets the additive step
	started   time.Time    // first success
	successes decayCounter // over successWindow
	recent    decayCounter // successes over recentWindow, to tell a steady estimate
	binding   float64      // moving share of reservations that had to wait
	cuts      int
}

func newLimiter(initial, minRate, ceiling float64) *limiter {
	l := &limiter{rate: initial, min: minRate, max: math.Inf(1), slowStart: true}
	l.successes.tau = successWindow
	l.recent.tau = recentWindow
	if ceiling > 0 {
		l.max = ceiling
	}
	return l
}

// reserve books the next send slot at or after now. It returns the slot
// and the epoch it was booked in, to be passed back to throttled.
func (l *limiter) reserve(now time.Time) (time.Time, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// An idle limiter does not bank more than pacingSlack of sends.
	if floor := now.Add(-pacingSlack); l.next.Before(floor) {
		l.next = floor
	}
	at := l.next
	waited := 0.0
	if at.After(now) {
		waited = 1
	} else {
		at = now
	}
	l.binding += 0.05 * (waited - l.binding)
	l.next = l.next.Add(l.interval())
	return at, l.epoch
}

// release returns a reservation made for at that was not used, if nobody
// has booked after it.
func (l *limiter) release(at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.next.Sub(at) <= l.interval() && l.next.After(at) {
		l.next = at
	}
}

// holdOff is how long a cut takes to show: calls already booked drain and
// those at the new rate come back, about two call latencies.
func (l *limiter) holdOff() time.Duration {
	return max(minHoldOff, time.Duration(2*l.latency*float64(time.Second)))
}

func (l *limiter) interval() time.Duration {
	return time.Duration(float64(time.Second) / l.rate)
}

// success records a call that went through at now after taking latency.
func (l *limiter) success(now time.Time, latency time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started.IsZero() {
		l.started = now
		l.latency = latency.Seconds()
	}
	l.latency += 0.05 * (latency.Seconds() - l.latency)
	l.successes.add(now)
	l.recent.add(now)
	// Grow only a rate that holds callers back: if they seldom wait for a
	// slot (few callers, or the concurrency bound binds first), a higher
	// rate would say nothing about the quota.
	if l.binding < 0.5 {
		return
	}
	if l.slowStart {
		l.rate += math.Ln2 / slowStartDoubling.Seconds()
	} else {
		l.rate += growthShare * max(l.refRate, minGrowthBase) / l.rate
	}
	l.rate = min(l.rate, l.max)
}

// throttled records a call booked in epoch and refused for quota at now.
// It cuts the rate at most once per round trip: a call booked before the
// last cut reports on the old rate, which was already cut. It reports
// whether it cut.
func (l *limiter) throttled(now time.Time, epoch uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if epoch != l.epoch || now.Sub(l.lastCut) < l.holdOff() {
		return false
	}
	base := l.rate
	long, short := l.successes.rate(now), l.recent.rate(now)
	warm := !l.started.IsZero() && now.Sub(l.started) >= 2*successWindow
	if warm && short <= 1.1*long {
		// What the server admitted lately is the best estimate of the
		// quota, unless successes are still climbing (in slow start the
		// estimate lags the growing rate and would undershoot).
		base = min(base, short)
	}
	l.rate = min(l.max, max(l.min, decrease*base))
	l.refRate = base
	// A throttle before any estimate exists (say, the first burst against
	// a shallow bucket) says little about the quota: keep doubling.
	l.slowStart = l.slowStart && !warm
	l.epoch++
	l.lastCut = now
	l.cuts++
	return true
}

// wait reserves a slot and sleeps until it, or until ctx is done (then the
// slot is released). It returns the reservation's epoch.
func (l *limiter) wait(ctx context.Context) (uint64, error) {
	now := time.Now()
	at, epoch := l.reserve(now)
	d := at.Sub(now)
	if d <= 0 {
		return epoch, nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return epoch, nil
	case <-ctx.Done():
		l.release(at)
		return epoch, ctx.Err()
	}
}

// Rate is the current rate in calls per second.
func (l *limiter) Rate() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rate
}

// decayCounter is an exponentially decaying event count: rate() is the
// event rate over roughly the last tau.
type decayCounter struct {
	tau time.Duration
	v   float64
	t   time.Time
}

func (c *decayCounter) decay(now time.Time) {
	if c.t.IsZero() {
		c.t = now
		return
	}
	if dt := now.Sub(c.t); dt > 0 {
		c.v *= math.Exp(-dt.Seconds() / c.tau.Seconds())
		c.t = now
	}
}

func (c *decayCounter) add(now time.Time) {
	c.decay(now)
	c.v++
}

func (c *decayCounter) rate(now time.Time) float64 {
	c.decay(now)
	return c.v / c.tau.Seconds()
}
