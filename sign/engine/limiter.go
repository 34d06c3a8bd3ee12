package engine

import (
	"context"
	"math"
	"sync"
	"time"

	fleetview "github.com/linkissuer/linkissuer/fleet"
)

// Limiter tuning. The rate starts in slow start, doubling every
// slowStartDoubling while it is what holds callers back, until the first
// throttle. Each throttle (at most one per hold-off, about two call
// latencies, and only for calls booked since the last cut) cuts the rate to
// decrease × min(rate, the estimate): what the server admitted lately, which
// is the quota once its bucket is empty. The estimate's horizon holds at
// least minSuccesses successes: the last recentWindow at a high rate, longer
// at a low one (a replica admitted 20/s sees two successes per 100 ms, too
// few to estimate from). Before the first minSuccesses successes (a cold
// start, when replicas that do not know of each other may together send
// several times the quota) a throttle cuts to the share of this replica's
// calls admitted so far, at most coldCut-fold. While successes are still
// climbing (slow start) the estimate lags, and the cut is to the estimate
// but at most by half.
//
// Between cuts the rate grows in two speeds: by nearGrowth of the last
// estimate per second from nearShare of it up to it, by fastGrowth below
// and above that: it comes back quickly to where the quota was found, probes
// slowly around it, and speeds up again once past it (the quota is higher
// than the estimate said, or it has grown). A cut made while successes were
// climbing, or on a cold start, found no steady estimate: growth after it
// is fast throughout. A
// fleet's refusals per second are its growth over the cut one refusal
// brings, so slow probing near the quota is what keeps refusals rare with
// many replicas at a few calls per second each.
//
// Why these numbers: TestFleetSharesTheQuota and
// TestLimiterConvergesInSimulation, on a simulated clock; the candidates and
// their figures are in BENCHMARKS.md ("How the limiter was chosen").
const (
	decrease          = 0.9
	fastGrowth        = 0.05
	nearGrowth        = 0.0025
	nearShare         = 0.97
	coldCut           = 4
	minSuccesses      = 16
	slowStartDoubling = 250 * time.Millisecond
	successWindow     = 250 * time.Millisecond
	recentWindow      = 100 * time.Millisecond
	pacingSlack       = 50 * time.Millisecond
	minHoldOff        = 50 * time.Millisecond
	minGrowthBase     = 10 // calls/s: the step never falls below 0.05/s²
	lateTicket        = 100 * time.Millisecond
)

// Window detection. A quota counted in fixed windows (signBlob's is
// "per minute") admits everything until the window's count is spent, then
// refuses everything until the window resets. AIMD reads that as a
// collapsing quota and cuts to the floor, then needs minutes to grow back;
// and once back, it bursts into the next window and meets the wall again.
//
// So: a run of at least exhaustCount refusals with no success for as long
// as exhaustCount successes took lately (at least minExhaust, at most
// exhaustAfter) is an exhausted window: at a high rate the wall is seen
// within tens of milliseconds, before most of the calls behind it are
// refused. The limiter then pauses: it sends one probe at a time, spaced
// from firstProbeGap doubling to maxProbeGap, and holds every other caller
// (they re-ask, costing no call). A probe admitted after the pause lasted
// at least windowEvidence, with probeEvidence probes refused, is a window
// reset: from then on the limiter knows
// the boundary (reset + k·quotaWindow) and paces to spread the window:
// rate = what this replica was admitted in the last window / quotaWindow,
// growing by windowGrowth each window that did not run dry, and falling
// back to what it was admitted each window that did (the pause until the
// boundary, probed from probeLead before it, is the only cost). A token
// bucket refills within milliseconds, so its probes succeed before
// windowEvidence and it never enters window pacing.
const (
	exhaustAfter   = 100 * time.Millisecond
	minExhaust     = 20 * time.Millisecond
	exhaustCount   = 8 // refusals in a row, with exhaustAfter: at a few calls per second, 100 ms says little
	probeEvidence  = 4 // refused probes before a reset counts as a window's
	firstProbeGap  = 50 * time.Millisecond
	maxProbeGap    = 2 * time.Second
	windowEvidence = 2 * time.Second
	quotaWindow    = time.Minute
	windowGrowth   = 0.02
	probeLead      = 200 * time.Millisecond
	probeLeadGap   = 50 * time.Millisecond
	maxProbing     = 2 * quotaWindow
)

// limiter is an AIMD token pacer. Callers reserve a send time, report each
// call's outcome, and the rate follows the quota without being told it.
// Every method takes the time explicitly; only wait reads the clock.
type limiter struct {
	mu        sync.Mutex
	rate      float64 // calls per second
	min, max  float64 // bounds; max is the ceiling or +Inf, and at most KnownShare of a known quota
	quota     float64 // the project's quota when known (Options.Quota), else 0
	slowStart bool
	next      time.Time    // the next free send slot
	epoch     uint64       // incremented at each cut
	lastCut   time.Time    // when the rate was last cut
	latency   float64      // moving average of successful calls' latency, seconds
	refRate   float64      // the rate found at the last cut: sets the additive step
	refSure   bool         // refRate is what the server admitted at a steady rate
	started   time.Time    // first success
	successes decayCounter // over successWindow
	recent    decayCounter // successes over recentWindow, to tell a steady estimate
	binding   float64      // moving share of reservations that had to wait
	cuts      int
	wins      [minSuccesses]time.Time // the last successes, a ring
	nwins     int                     // successes in wins, up to minSuccesses
	winAt     int                     // the ring's next slot
	firstSend time.Time
	coldLost  int // refusals before the first minSuccesses successes

	// Window detection and pacing (see exhaustAfter).
	lastSuccess  time.Time
	streakStart  time.Time     // first refusal since the last success, or zero
	streakRate   float64       // the rate before the streak's cuts
	streakLen    int           // refusals in the streak
	streakNeed   time.Duration // how long a streak must last to be a dry quota
	probesFailed int           // refused probes in this pause
	paused       bool          // a window ran dry: probing
	pauses       uint64        // incremented at each pause: older tickets re-ask
	pausedAt     time.Time
	probeAt      time.Time // when the next probe may go
	probeGap     time.Duration
	probeDue     time.Time // a probe is out until then (zero: none)
	windowed     bool      // a window reset was seen: pacing per window
	boundary     time.Time // the current window's start
	windowCount  int       // successes since boundary
	windowFull   bool      // the current window started at an observed or predicted boundary
	windowDry    bool      // the current window ran dry
	sinceStart   int       // successes before the first reset
	windowPauses int

	// The fleet's set-point (see setShare) and the counters it reads.
	share             float64       // calls per second; 0: none, the limiter works alone
	cutShare          float64       // the share when the rate was last cut
	wake              chan struct{} // closed when a new share re-books the slots
	admitted, refused uint64        // calls admitted and refused (429) so far
}

// ticket is a reservation: send at at, or, if recheck, ask again at at
// (the limiter is paused and another caller holds the probe).
type ticket struct {
	at      time.Time
	epoch   uint64
	pauses  uint64
	probe   bool
	recheck bool
}

func newLimiter(initial, minRate, ceiling, quota float64) *limiter {
	// A known quota starts at its share (top): nothing to find.
	l := &limiter{rate: initial, min: minRate, max: math.Inf(1), quota: quota, slowStart: quota == 0}
	l.successes.tau = successWindow
	l.recent.tau = recentWindow
	if ceiling > 0 {
		l.max = ceiling
	}
	if quota > 0 {
		l.max = min(l.max, max(minRate, fleetview.KnownShare*quota))
	}
	l.rate = min(l.rate, l.max)
	return l
}

// reserve books the next send slot at or after now: the ticket's at. If
// the ticket says recheck, the caller sends nothing and asks again at at.
func (l *limiter) reserve(now time.Time) ticket {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.paused {
		return l.reservePaused(now)
	}
	// An idle limiter does not bank more than pacingSlack of sends.
	if floor := now.Add(-pacingSlack); l.next.Before(floor) {
		l.next = floor
	}
	at := l.next
	if l.firstSend.IsZero() {
		l.firstSend = now
	}
	waited := 0.0
	if at.After(now) {
		waited = 1
	} else {
		at = now
	}
	l.binding += 0.05 * (waited - l.binding)
	l.next = l.next.Add(l.interval())
	return ticket{at: at, epoch: l.epoch, pauses: l.pauses}
}

// reservePaused hands out the one probe, or a time to ask again.
func (l *limiter) reservePaused(now time.Time) ticket {
	if l.probeDue.IsZero() || now.After(l.probeDue) { // no probe out (or it was lost)
		at := maxTime(now, l.probeAt)
		l.probeDue = at.Add(l.holdOff() + maxProbeGap)
		return ticket{at: at, epoch: l.epoch, pauses: l.pauses, probe: true}
	}
	return ticket{at: maxTime(now, l.probeAt).Add(l.holdOff()), pauses: l.pauses, recheck: true}
}

// confirm reports whether a ticket booked earlier may still be sent at
// now: not if the limiter paused since it was booked (unless it is the
// probe), and not if its time passed more than lateTicket ago. A process
// descheduled for a while (a second of CPU starvation, say) would
// otherwise send every slot it slept through at once: a shallow bucket
// refuses most of such a burst, and the cut that follows (to what was
// admitted over a span that holds the pause) held a lone replica at a
// quarter of a 200/s quota for a minute and more (TestFleetViewFreeze).
// A caller told no reserves again.
func (l *limiter) confirm(t ticket, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !t.recheck && (t.probe || (!l.paused && t.pauses == l.pauses && t.epoch == l.epoch && now.Sub(t.at) <= lateTicket))
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

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
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
	l.admitted++
	l.successes.add(now)
	l.recent.add(now)
	l.wins[l.winAt] = now
	l.winAt = (l.winAt + 1) % minSuccesses
	l.nwins = min(l.nwins+1, minSuccesses)
	l.lastSuccess = now
	l.streakStart, l.streakLen = time.Time{}, 0
	if l.paused {
		l.resume(now, now.Add(-latency))
	}
	if l.windowed {
		l.roll(now)
		l.windowCount++
		return // paced per window, not by AIMD
	}
	l.windowCount++
	// Grow only a rate that holds callers back: if they seldom wait for a
	// slot (few callers, or the concurrency bound binds first), a higher
	// rate would say nothing about the quota.
	if l.binding < 0.5 {
		return
	}
	if l.share > 0 {
		// A fleet's set-point: the fleet probes above its estimate, not
		// each replica; after a local cut the rate comes back to the
		// share quickly.
		l.rate = min(l.top(), l.rate+fastGrowth*l.share/l.rate)
		return
	}
	if l.slowStart {
		l.rate += math.Ln2 / slowStartDoubling.Seconds()
	} else {
		step := fastGrowth
		if l.refSure && l.rate >= nearShare*l.refRate && l.rate <= (2-nearShare)*l.refRate {
			step = nearGrowth // near where the last cut found the quota
		}
		l.rate += step * max(l.refRate, minGrowthBase) / l.rate
	}
	l.rate = min(l.rate, l.top())
}

// throttled records a call sent on t and refused for quota at now. Outside
// a pause it cuts the rate at most once per round trip (a call booked
// before the last cut reports on the old rate, which was already cut) and
// reports whether it cut; a run of refusals longer than exhaustAfter
// pauses the limiter instead (see exhaustAfter).
func (l *limiter) throttled(now time.Time, t ticket) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refused++
	if l.paused {
		if t.probe && t.pauses == l.pauses { // the probe found the quota still dry
			l.probeDue = time.Time{}
			l.probeAt = now.Add(l.probeGap)
			l.probeGap = min(2*l.probeGap, maxProbeGap)
			l.probesFailed++
		}
		return false
	}
	if l.nwins < minSuccesses {
		l.coldLost++
	}
	if l.streakStart.IsZero() {
		l.streakStart, l.streakRate = now, l.rate
		l.streakNeed = exhaustAfter
		if est, _ := l.estimate(now); est > 0 {
			l.streakNeed = min(exhaustAfter, max(minExhaust, time.Duration(exhaustCount/est*float64(time.Second))))
		}
	}
	l.streakLen++
	if now.Sub(l.streakStart) >= l.streakNeed && l.streakLen >= exhaustCount {
		l.pause(now)
		return false
	}
	if l.windowed || t.epoch != l.epoch || now.Sub(l.lastCut) < l.holdOff() {
		return false
	}
	base := l.rate
	est, sure := l.estimate(now)
	l.refSure = false
	switch {
	case !sure:
		// A cold start: what share of this replica's calls got through.
		admitted := float64(l.nwins) / float64(l.nwins+l.coldLost)
		base = max(base*admitted, base/coldCut)
	case now.Sub(l.oldestWin()) > recentWindow || l.recent.rate(now) <= 1.1*l.successes.rate(now):
		// What the server admitted lately is the best estimate of the
		// quota.
		base = min(base, est)
		l.refSure = true
	default:
		// Successes are still climbing (slow start): the estimate lags
		// the growing rate and may undershoot.
		base = max(min(base, est), base/2)
	}
	l.rate = min(l.top(), max(l.min, decrease*base))
	l.refRate = base
	// A throttle before any estimate exists (say, the first burst against
	// a shallow bucket) says little about the quota: keep doubling.
	l.slowStart = l.slowStart && !sure
	l.epoch++ // slots booked at the old rate are booked again at the new
	l.next = now
	l.lastCut = now
	l.cutShare = l.share
	l.cuts++
	return true
}

// oldestWin is the oldest success in the ring.
func (l *limiter) oldestWin() time.Time {
	if l.nwins < minSuccesses {
		return l.wins[0]
	}
	return l.wins[l.winAt]
}

// estimate is what the server admitted lately, per second: over the last
// recentWindow if that holds minSuccesses successes, else over the span of
// the last minSuccesses. sure is false while fewer than minSuccesses
// calls have succeeded: the estimate is then the successes since the first
// call over the time since it (at least recentWindow).
func (l *limiter) estimate(now time.Time) (est float64, sure bool) {
	if l.nwins < minSuccesses {
		if l.firstSend.IsZero() {
			return 0, false
		}
		return float64(l.nwins) / max(now.Sub(l.firstSend), recentWindow).Seconds(), false
	}
	span := now.Sub(l.oldestWin())
	if span <= recentWindow {
		return l.recent.rate(now), true
	}
	return minSuccesses / span.Seconds(), true
}

// pause stops sending but for one probe at a time: the quota ran dry.
func (l *limiter) pause(now time.Time) {
	l.paused = true
	l.pauses++
	l.pausedAt = l.streakStart
	l.probesFailed = 0
	l.probeDue = time.Time{}
	l.probeGap = firstProbeGap
	l.probeAt = now.Add(l.probeGap)
	if !l.windowed {
		return
	}
	l.windowDry = true
	// Probe from just before the next boundary.
	next := l.boundary.Add(quotaWindow)
	for !next.After(now) {
		next = next.Add(quotaWindow)
	}
	l.probeAt = maxTime(l.probeAt, next.Add(-probeLead))
	l.probeGap = probeLeadGap
}

// resume ends a pause: a probe sent at sent was admitted at now. After a
// pause of windowEvidence or more, that was a window reset.
func (l *limiter) resume(now, sent time.Time) {
	l.paused = false
	l.probeDue = time.Time{}
	l.next = now
	if now.Sub(l.pausedAt) < windowEvidence || (!l.windowed && l.probesFailed < probeEvidence) {
		// A short blackout, not a window: one congestion event (say, a
		// cold start of several replicas against a token bucket). The
		// cuts made during it stand: each was to what the server admitted
		// over a horizon of minSuccesses successes, and restoring the rate
		// from before the streak would overshoot again.
		l.rate = min(l.top(), max(l.min, min(l.rate, decrease*l.streakRate)))
		l.slowStart = false
		return
	}
	span := quotaWindow
	if !l.windowed || !l.windowFull {
		// The window that just ended was not seen whole (a cold start, or
		// the first reset): what it admitted per second of it.
		from := l.started
		if l.windowed {
			from = l.boundary
		}
		span = max(sent.Sub(from), time.Second)
	}
	l.rate = min(l.max, max(l.min, float64(l.windowCount)/span.Seconds()))
	l.windowFull = l.windowed
	l.windowed, l.windowDry = true, false
	l.boundary = sent
	l.windowCount = 0
	l.slowStart = false
	l.windowPauses++
}

// roll moves the window on when now has passed its end. A window that
// never ran dry had room: the rate grows by windowGrowth.
func (l *limiter) roll(now time.Time) {
	for !now.Before(l.boundary.Add(quotaWindow)) {
		l.boundary = l.boundary.Add(quotaWindow)
		l.windowCount = 0
		l.windowFull = true
		if !l.windowDry {
			l.rate = min(l.max, l.rate*(1+windowGrowth))
		}
		l.windowDry = false
	}
}

// wait reserves a slot and sleeps until it, or until ctx is done (then the
// slot is released). It returns the ticket the call goes on.
func (l *limiter) wait(ctx context.Context) (ticket, error) {
	for {
		var woken <-chan struct{}
		if l.fleet() {
			woken = l.woken()
		}
		t := l.reserve(time.Now())
		if d := time.Until(t.at); d > 0 {
			timer := time.NewTimer(d)
			select {
			case <-woken: // a new share re-booked the slots: reserve again
				timer.Stop()
				continue
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				if !t.recheck && !t.probe {
					l.release(t.at)
				}
				return t, ctx.Err()
			}
		}
		if l.confirm(t, time.Now()) {
			return t, nil
		}
	}
}

// probing reports whether the limiter is paused and has been for less
// than maxProbing: its refused probes are not a signature's failures
// (a per-minute window can be dry for most of a minute), but a quota dry
// for longer than two windows is.
func (l *limiter) probing(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.paused && now.Sub(l.pausedAt) < maxProbing
}

// top is the highest the rate may go: the ceiling, and the fleet's
// share if one is set.
func (l *limiter) top() float64 {
	if l.share > 0 {
		return min(l.max, max(l.min, l.share))
	}
	return l.max
}

// setShare sets the fleet's set-point: this replica's share of the quota
// as the fleet sees it (package fleet), 0 for none. The rate goes to the
// share at once when it was at the old one (or above the new), and
// otherwise (after a local cut) grows back to it; it never grows past it.
// On a per-minute window the share replaces the window's pace (the fleet
// only evens the paces out); a paused limiter keeps it for when it
// resumes. Local refusals still cut at once.
//
// A rate raised by more than a tenth re-books every slot booked at the
// old one (callers waiting for a slot far ahead are woken: see wait) and
// reports true.
func (l *limiter) setShare(now time.Time, s float64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.share = max(0, s)
	if l.share == 0 {
		return false
	}
	l.slowStart = false
	old := l.rate
	switch {
	case l.paused:
	case l.windowed, now.Sub(l.lastCut) >= time.Second:
		l.rate = l.top()
	case l.quota > 0 && l.share < decrease*l.cutShare:
		// A known quota, and the cut answered a share the fleet has since
		// lowered (replicas that started together, each seeing fewer
		// of the others than there are): the lower share is the answer.
		l.rate = l.top()
	default: // cut lately: grow back from the cut
		l.rate = min(l.rate, l.top())
	}
	if l.rate <= 1.1*old {
		return false
	}
	l.epoch++
	l.next = now
	if l.wake != nil {
		close(l.wake)
		l.wake = nil
	}
	return true
}

// fleet reports whether a share is set.
func (l *limiter) fleet() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.share > 0
}

// woken returns a channel closed when setShare re-books the slots.
func (l *limiter) woken() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wake == nil {
		l.wake = make(chan struct{})
	}
	return l.wake
}

// load reports what a fleet agent publishes: calls admitted and refused
// so far, the rate, whether it binds and whether it paces a window.
func (l *limiter) load(now time.Time) fleetview.Load {
	l.mu.Lock()
	defer l.mu.Unlock()
	est, _ := l.estimate(now)
	return fleetview.Load{Admitted: l.admitted, Refused: l.refused, Rate: l.rate, Estimate: est,
		Binding: l.binding >= 0.5, Windowed: l.windowed, Limit: l.quota}
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
