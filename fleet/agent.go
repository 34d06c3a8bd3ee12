package fleet

import (
	"context"
	"time"
)

// Limiter is the rate limiter an Agent reads and steers (an engine.Engine).
type Limiter interface {
	// Load reports what the agent publishes.
	Load() Load
	// SetShare sets the rate's set-point in calls per second; 0 removes
	// it (the limiter finds the quota alone).
	SetShare(perSecond float64)
}

// Load is what a limiter reports to its agent.
type Load struct {
	Admitted, Refused uint64  // calls admitted and refused so far (counters that only grow)
	Rate              float64 // calls per second
	Estimate          float64 // what the quota admitted lately, per second (0: not known)
	Binding           bool    // callers wait for the rate
	Windowed          bool    // it paces a per-minute window
	Limit             float64 // the quota, calls per second, when it is known (0: not known)
}

// Agent publishes one replica's numbers and steers its limiter to its
// share. Step is one interval; Run calls it every interval until ctx ends,
// then deletes the member object. Not safe for concurrent use.
type Agent struct {
	store    Store
	id       string
	lim      Limiter
	interval time.Duration

	lastAdmitted, lastRefused uint64
	lastAt                    time.Time // local monotonic time of the last sample
	written                   bool
	announced                 bool // Announce wrote the member object (a known limit)
	quota                     float64
	quotaAt                   time.Time // the store's time of the listing quota came from
	failures                  int
}

// NewAgent returns an agent for the replica id (unique in the fleet: a
// host name and process id, say). interval 0 means DefaultInterval.
func NewAgent(store Store, id string, lim Limiter, interval time.Duration) *Agent {
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Agent{store: store, id: id, lim: lim, interval: interval}
}

// Interval is how often Step should run.
func (a *Agent) Interval() time.Duration { return a.interval }

// Announce writes this replica's member object before its first call
// when its limiter knows the quota (Load.Limit), and reports whether it
// did: replicas that start together then see each other and split the
// limit from their first call. The caller waits JoinSettle (for the
// others' objects) before Join; Run then lists the prefix JoinPeeks
// times in its first interval (Peek) to take in those that came later.
// Without a known limit there is nothing to split yet: it writes nothing.
func (a *Agent) Announce(ctx context.Context) (bool, error) {
	ld := a.lim.Load()
	if ld.Limit <= 0 {
		return false, nil
	}
	a.written, a.announced = true, true // a Put that fails may still have written: Leave deletes
	_, err := a.store.Put(ctx, Member{ID: a.id, Rate: ld.Rate, Binding: true})
	return true, err
}

// JoinSettle is how long a replica that announced itself waits before
// Join: the others starting with it write their objects meanwhile.
const JoinSettle = 100 * time.Millisecond

// Join reads the fleet once, before the first call: a replica joining a
// busy fleet starts at its share of the fleet's estimate (as a binding
// member) instead of finding the quota with refusals, and one that knows
// the limit at its share of the limit.
func (a *Agent) Join(ctx context.Context, now time.Time) error {
	a.lastAt = now
	ld := a.lim.Load()
	a.lastAdmitted, a.lastRefused = ld.Admitted, ld.Refused
	return a.plan(ctx, Member{ID: a.id, Rate: ld.Rate, Binding: true}, ld.Limit)
}

// JoinPeeks is how many times Run lists the fleet in the first interval
// after a Join that wrote the member object, evenly spaced.
const JoinPeeks = 3

// Announced reports whether Announce wrote the member object: Run then
// peeks (JoinPeeks) before its first step.
func (a *Agent) Announced() bool { return a.announced }

// Peek lists the fleet without writing and sets the share from the
// listing, as Step does after its write.
func (a *Agent) Peek(ctx context.Context, _ time.Time) error {
	ld := a.lim.Load()
	return a.plan(ctx, Member{ID: a.id, Rate: ld.Rate, Binding: true}, ld.Limit)
}

// plan lists the fleet and sets the limiter's share from it; self stands
// in for this replica's object if the listing does not show it (yet, or
// not at all: it has not written one).
func (a *Agent) plan(ctx context.Context, self Member, limit float64) error {
	members, err := a.store.List(ctx)
	if err != nil {
		return err
	}
	if len(members) == 0 && limit <= 0 {
		return nil
	}
	newest := newestOf(members, self.Updated)
	s := Plan(withSelf(members, self, newest), a.id, newest, staleIntervals*a.interval, limit)
	a.quota, a.quotaAt = s.Quota, newest
	a.lim.SetShare(s.Share)
	return nil
}

// withSelf is members with self's write (at updated) if the listing does
// not show it yet.
func withSelf(members []Member, self Member, updated time.Time) []Member {
	for _, m := range members {
		if m.ID == self.ID {
			return members
		}
	}
	self.Updated = updated
	return append(members, self)
}

// newestOf is the newest update in members, or updated if newer: the
// store's time of a listing.
func newestOf(members []Member, updated time.Time) time.Time {
	for _, m := range members {
		if m.Updated.After(updated) {
			updated = m.Updated
		}
	}
	return updated
}

// Step publishes this replica's last interval (now is the local clock,
// used only to measure the interval) and sets the limiter's share from
// the listing that follows. A replica that made no call in the interval
// is idle: its object is deleted and nothing else is done. After
// staleIntervals failed steps in a row the set-point is removed.
func (a *Agent) Step(ctx context.Context, now time.Time) error {
	err := a.step(ctx, now)
	if err == nil {
		a.failures = 0
		return nil
	}
	if a.failures++; a.failures >= staleIntervals {
		a.lim.SetShare(0)
	}
	return err
}

func (a *Agent) step(ctx context.Context, now time.Time) error {
	ld := a.lim.Load()
	admitted, refused := ld.Admitted, ld.Refused
	dt := now.Sub(a.lastAt).Seconds()
	if a.lastAt.IsZero() || dt <= 0 {
		dt = a.interval.Seconds()
	}
	da, dr := admitted-a.lastAdmitted, refused-a.lastRefused
	a.lastAdmitted, a.lastRefused, a.lastAt = admitted, refused, now
	if da+dr == 0 {
		return a.Leave(ctx)
	}
	m := Member{
		ID: a.id, Admitted: float64(da) / dt, Refused: float64(dr) / dt,
		Rate: ld.Rate, Estimate: ld.Estimate, Quota: a.quota, QuotaAt: a.quotaAt, Binding: ld.Binding, Windowed: ld.Windowed,
	}
	a.written = true // a Put that fails may still have written: Leave deletes
	var err error
	if m.Updated, err = a.store.Put(ctx, m); err != nil {
		return err
	}
	return a.plan(ctx, m, ld.Limit)
}

// Leave deletes this replica's member object, if one was written (or a
// write was tried): its share goes to the others at their next step.
func (a *Agent) Leave(ctx context.Context) error {
	if !a.written {
		return nil
	}
	a.written = false
	return a.store.Delete(ctx, a.id)
}

// Run steps every interval until ctx ends, then leaves (with its own
// short deadline, ctx being done); Join comes first, and if it wrote the
// member object Run peeks JoinPeeks times before the first step. Each
// step runs under a deadline of two intervals. Store errors do not stop
// it: each step tries again, and Step removes the set-point after
// repeated failures (the replica then finds the quota alone). report, if
// not nil, is told of changes only: the first error after a success and
// nil at the first success after errors, so that a store that is down is
// reported once. Run returns when ctx ends, with the error of leaving
// (nil when the member object is deleted or was never written).
func (a *Agent) Run(ctx context.Context, report func(error)) error {
	failing := false
	do := func(now time.Time, f func(context.Context, time.Time) error) {
		sctx, cancel := context.WithTimeout(ctx, 2*a.interval)
		err := f(sctx, now)
		cancel()
		if ctx.Err() != nil { // stopping: a step cut short is no failure
			return
		}
		if report != nil && (err != nil) != failing {
			report(err)
		}
		failing = err != nil
	}
	leave := func() error {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return a.Leave(lctx)
	}
	t := time.NewTicker(a.interval)
	defer t.Stop()
	if a.announced {
		peek := time.NewTicker(a.interval / (JoinPeeks + 1))
		for range JoinPeeks {
			select {
			case <-ctx.Done():
				peek.Stop()
				return leave()
			case now := <-peek.C:
				do(now, a.Peek)
			}
		}
		peek.Stop()
	}
	for {
		select {
		case <-ctx.Done():
			return leave()
		case now := <-t.C:
			do(now, a.Step)
		}
	}
}
