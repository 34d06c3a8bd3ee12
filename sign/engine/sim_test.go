package engine

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	fleetview "github.com/linkissuer/linkissuer/fleet"
)

// simQuota is the server side of a simulation: it admits or refuses one
// call at a time. Both shapes below are pure: the simulation passes the
// time.
type simQuota interface {
	take(now time.Time) bool
	// capacity is the most it could admit in [from, to).
	capacity(from, to time.Time) float64
}

// simBucket is a strict token bucket: rate per second, burst deep.
type simBucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func (b *simBucket) take(now time.Time) bool {
	if b.last.IsZero() {
		b.tokens, b.last = b.burst, now
	}
	if now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (b *simBucket) capacity(from, to time.Time) float64 {
	return to.Sub(from).Seconds() * b.rate
}

// simWindow is a fixed window: limit calls per period, the count reset at
// phase + k·period.
type simWindow struct {
	limit  int
	period time.Duration
	phase  time.Time
	start  time.Time // the current window's start
	used   int
}

func (w *simWindow) take(now time.Time) bool {
	k := now.Sub(w.phase) / w.period
	if now.Sub(w.phase) < 0 {
		k--
	}
	if s := w.phase.Add(k * w.period); !s.Equal(w.start) {
		w.start, w.used = s, 0
	}
	if w.used >= w.limit {
		return false
	}
	w.used++
	return true
}

func (w *simWindow) capacity(from, to time.Time) float64 {
	first := from.Sub(w.phase) / w.period
	last := (to.Add(-1).Sub(w.phase)) / w.period
	return float64(int(last-first+1) * w.limit)
}

// fleetConfig describes replicas sharing one quota, each running its own
// limiter with the engine's defaults and knowing nothing of the others,
// each with an endless backlog.
type fleetConfig struct {
	quota    func(start time.Time) simQuota
	replicas int
	inFlight int           // concurrency slots per replica (MaxInFlight)
	callers  int           // requests in progress per replica (SignAll: 2×inFlight)
	latency  time.Duration // mean latency of an admitted call
	jitter   time.Duration // uniform ± spread of latency
	refused  time.Duration // how long a 429 takes to come back
	ceiling  float64       // each limiter's ceiling, 0 for none
	// quotaKnown is the quota each limiter is told (Options.Quota), calls
	// per second; 0: not known.
	quotaKnown float64
	initial    float64       // each limiter's initial rate
	stagger    time.Duration // replica i starts at i·stagger
	duration   time.Duration
	seed       uint64
	// work is the requests of the whole run, split equally between the
	// replicas (each stops when its part is done, as processes with a
	// fixed part of a job do); 0: an endless backlog each.
	work int
	// fleet, if set, runs a fleetview.Agent per replica over a simulated
	// store: the replicas see each other.
	fleet *simFleet
	// stalls, if set, starve each replica of CPU now and then.
	stalls *simStalls
	// freeze, if set, deschedules one replica once, for a while.
	freeze *simFreeze
}

// simFreeze deschedules replica from at (after the start) for d: what it
// would have done meanwhile waits, as with simStalls.
type simFreeze struct {
	replica int
	at, d   time.Duration
}

// simStalls model replicas on a busy machine (the real-process loadtest
// on two cores): each replica is descheduled at random, on average every
// every, for up to most (uniform); what it would have done meanwhile (a
// send, taking an answer, a fleet step) waits until it runs again, so
// sends leave in bursts.
type simStalls struct {
	every, most time.Duration
}

// simFleet is the fleet view in a simulation: every interval (from a
// phase of up to 50 ms after its start) each replica's agent writes its
// member object and lists the prefix, in the simulated store's time.
type simFleet struct {
	interval time.Duration
}

// fleetResult is what a run did, counted over the run's duration.
type fleetResult struct {
	admitted, calls, refused int
	capacity                 float64
	perReplica               []int
	perSecond                [][]int // [replica][second] admitted
	refusedPerSecond         []int   // [second] refused, all replicas
	cuts                     int
	rates                    []float64       // final rates
	wall                     time.Duration   // fixed work: when the last replica finished
	finished                 []time.Duration // fixed work: when each replica finished
}

// workShare is, for a fixed amount of work, what was admitted per second
// of the whole run over the quota's rate (as the real-process loadtest
// measures it).
func (r fleetResult) workShare(rate float64) float64 {
	return float64(r.admitted) / r.wall.Seconds() / rate
}

// slowFast is the slowest replica's finish over the fastest's.
func (r fleetResult) slowFast() string {
	if len(r.finished) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f s / %.1f s", slices.Max(r.finished).Seconds(), slices.Min(r.finished).Seconds())
}

// simStore is a fleet.Store in simulated time: an update's time is the
// simulation's now when it is written.
type simStore struct {
	now     time.Time
	members map[string]fleetview.Member
}

func (s *simStore) Put(_ context.Context, m fleetview.Member) (time.Time, error) {
	m.Updated = s.now
	s.members[m.ID] = m
	return s.now, nil
}

func (s *simStore) List(context.Context) ([]fleetview.Member, error) {
	var ms []fleetview.Member
	for _, m := range s.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b fleetview.Member) int { return a.Updated.Compare(b.Updated) })
	return ms, nil
}

func (s *simStore) Delete(_ context.Context, id string) error {
	delete(s.members, id)
	return nil
}

// simLimiter adapts the limiter to fleet.Limiter in simulated time: a
// share that re-books the slots wakes the replica's waiting callers.
type simLimiter struct {
	l     *limiter
	now   *time.Time
	woken *bool
}

func (s simLimiter) Load() fleetview.Load { return s.l.load(*s.now) }
func (s simLimiter) SetShare(v float64) {
	if s.l.setShare(*s.now, v) {
		*s.woken = true
	}
}

// share is what was admitted over what the quota could have admitted.
func (r fleetResult) share() float64 { return float64(r.admitted) / r.capacity }

// refusedShare is the fraction of calls answered 429.
func (r fleetResult) refusedShare() float64 {
	if r.calls == 0 {
		return 0
	}
	return float64(r.refused) / float64(r.calls)
}

// fairness is the smallest replica's admitted count over the largest's.
func (r fleetResult) fairness() float64 {
	lo, hi := math.Inf(1), 0.0
	for _, n := range r.perReplica {
		lo, hi = min(lo, float64(n)), max(hi, float64(n))
	}
	if hi == 0 {
		return 0
	}
	return lo / hi
}

type simEvent struct {
	at      time.Time
	kind    int
	replica int
	caller  int
	ok      bool
	ticket  ticket
	lat     time.Duration
	seq     int
	gen     int // simSend: the caller's send generation (see replica.sends)
}

const (
	simWant = iota // a caller wants a concurrency slot for its next attempt
	simSend        // a caller's paced send slot has come
	simDone        // a call's answer arrives
	simStep        // a fleet agent's interval
	simPeek        // a fleet agent's listing in its first interval (fleet.JoinPeeks)
	simJoin        // a fleet agent's Join, fleet.JoinSettle after it announced itself
)

type simQueue []simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if q[i].at.Equal(q[j].at) {
		return q[i].seq < q[j].seq
	}
	return q[i].at.Before(q[j].at)
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *simQueue) Pop() any     { old := *q; e := old[len(old)-1]; *q = old[:len(old)-1]; return e }

// simulateFleet runs a discrete-event simulation of the engine's call path
// (a concurrency slot, a paced send slot from the limiter, the call, a
// full-jitter backoff after a 429) for every replica against one quota. It
// drives the real limiter, is deterministic for a seed and takes no real
// time.
func simulateFleet(c fleetConfig) fleetResult {
	rng := rand.New(rand.NewPCG(c.seed, 7))
	start := time.Unix(1_700_000_000, 0)
	end := start.Add(c.duration)
	quota := c.quota(start)
	type replica struct {
		l        *limiter
		free     int    // concurrency slots free
		queue    []int  // callers waiting for a slot, FIFO
		attempts []int  // attempts of the request each caller holds
		left     int    // fixed work: requests not yet started
		holds    []bool // fixed work: the caller holds a request
		callers  int    // fixed work: callers still working
		agent    *fleetview.Agent
		done     bool
		sends    []int // per caller: the generation of its pending send, to drop stale ones
		woken    bool
		gen      int
		// stalled until stallEnd from stallStart (see simStalls)
		stallStart, stallEnd time.Time
	}
	ctx := context.Background()
	store := &simStore{members: map[string]fleetview.Member{}}
	running := c.replicas
	rs := make([]*replica, c.replicas)
	res := fleetResult{perReplica: make([]int, c.replicas), perSecond: make([][]int, c.replicas),
		refusedPerSecond: make([]int, int(math.Ceil(c.duration.Seconds())))}
	var q simQueue
	seq := 0
	push := func(e simEvent) { seq++; e.seq = seq; heap.Push(&q, e) }
	for i := range rs {
		r := &replica{l: newLimiter(c.initial, DefaultMinRate, c.ceiling, c.quotaKnown), free: c.inFlight, attempts: make([]int, c.callers), callers: c.callers, holds: make([]bool, c.callers), sends: make([]int, c.callers)}
		rs[i] = r
		if c.work > 0 {
			r.left = c.work / c.replicas
			if i < c.work%c.replicas {
				r.left++
			}
			res.finished = make([]time.Duration, c.replicas)
		}
		res.perSecond[i] = make([]int, int(math.Ceil(c.duration.Seconds())))
		at := start.Add(time.Duration(i) * c.stagger)
		if c.fleet != nil {
			r.agent = fleetview.NewAgent(store, fmt.Sprint(i), simLimiter{r.l, &store.now, &r.woken}, c.fleet.interval)
			store.now = at
			announced, err := r.agent.Announce(ctx)
			if err != nil {
				panic(err)
			}
			if announced { // join after the settle, then start
				at = at.Add(fleetview.JoinSettle)
				push(simEvent{at: at, kind: simJoin, replica: i})
			} else if err := r.agent.Join(ctx, at); err != nil {
				panic(err)
			}
			phase := time.Duration(rng.Float64() * float64(50*time.Millisecond))
			push(simEvent{at: at.Add(c.fleet.interval + phase), kind: simStep, replica: i})
			if r.agent.Announced() {
				for k := 1; k <= fleetview.JoinPeeks; k++ {
					gap := c.fleet.interval / (fleetview.JoinPeeks + 1)
					push(simEvent{at: at.Add(time.Duration(k)*gap + phase), kind: simPeek, replica: i})
				}
			}
		}
		for k := range c.callers {
			push(simEvent{at: at, kind: simWant, replica: i, caller: k})
		}
	}
	stallRng := rand.New(rand.NewPCG(c.seed, 11)) // apart, so that stalls do not move the other draws
	nextStall := func(from time.Time) (time.Time, time.Time) {
		at := from.Add(time.Duration(stallRng.ExpFloat64() * float64(c.stalls.every)))
		return at, at.Add(time.Duration(stallRng.Float64() * float64(c.stalls.most)))
	}
	if c.stalls != nil {
		for _, r := range rs {
			r.stallStart, r.stallEnd = nextStall(start)
		}
	}
	// rebook: callers waiting for a send slot reserve again (a new share
	// woke them: see limiter.wait).
	rebook := func(i int, now time.Time) {
		r := rs[i]
		for k := range r.sends {
			if r.sends[k] > 0 {
				r.gen++
				r.sends[k] = r.gen
				t := r.l.reserve(now)
				push(simEvent{at: t.at, kind: simSend, replica: i, caller: k, ticket: t, gen: r.gen})
			}
		}
	}
	end0 := end
	for q.Len() > 0 {
		e := heap.Pop(&q).(simEvent)
		now := e.at
		if !now.Before(end) {
			break
		}
		r := rs[e.replica]
		if f := c.freeze; f != nil && e.replica == f.replica {
			if from := start.Add(f.at); !now.Before(from) && now.Before(from.Add(f.d)) {
				e.at = from.Add(f.d)
				push(e)
				continue
			}
		}
		if c.stalls != nil {
			for !now.Before(r.stallEnd) {
				r.stallStart, r.stallEnd = nextStall(r.stallEnd)
			}
			if !now.Before(r.stallStart) { // descheduled: runs at the stall's end
				e.at = r.stallEnd
				push(e)
				continue
			}
		}
		switch e.kind {
		case simJoin:
			store.now = now
			if err := r.agent.Join(ctx, now); err != nil {
				panic(err)
			}
		case simPeek:
			if r.done {
				continue
			}
			store.now = now
			if err := r.agent.Peek(ctx, now); err != nil {
				panic(err)
			}
			if r.woken {
				r.woken = false
				rebook(e.replica, now)
			}
		case simStep:
			if r.done {
				continue
			}
			store.now = now
			if err := r.agent.Step(ctx, now); err != nil {
				panic(err)
			}
			if r.woken {
				r.woken = false
				rebook(e.replica, now)
			}
			push(simEvent{at: now.Add(c.fleet.interval), kind: simStep, replica: e.replica})
		case simWant:
			if c.work > 0 && !r.holds[e.caller] { // a new request
				if r.left == 0 {
					if r.callers--; r.callers == 0 {
						r.done = true
						res.finished[e.replica] = now.Sub(start)
						res.wall = now.Sub(start)
						if r.agent != nil {
							store.now = now
							_ = r.agent.Leave(ctx) // the simulated store does not fail
						}
						if running--; running == 0 {
							end = now
						}
					}
					continue
				}
				r.left--
				r.holds[e.caller] = true
			}
			if r.free == 0 {
				r.queue = append(r.queue, e.caller)
				continue
			}
			r.free--
			t := r.l.reserve(now)
			r.gen++
			r.sends[e.caller] = r.gen
			push(simEvent{at: t.at, kind: simSend, replica: e.replica, caller: e.caller, ticket: t, gen: r.gen})
		case simSend:
			if e.gen != r.sends[e.caller] {
				continue // re-booked since
			}
			if !r.l.confirm(e.ticket, now) { // paused since booking, told to ask again, or late
				t := r.l.reserve(now)
				push(simEvent{at: t.at, kind: simSend, replica: e.replica, caller: e.caller, ticket: t, gen: e.gen})
				continue
			}
			r.sends[e.caller] = 0
			res.calls++
			r.attempts[e.caller]++
			if quota.take(now) {
				lat := c.latency + time.Duration((rng.Float64()*2-1)*float64(c.jitter))
				push(simEvent{at: now.Add(lat), kind: simDone, replica: e.replica, caller: e.caller, ok: true, ticket: e.ticket, lat: lat})
			} else {
				push(simEvent{at: now.Add(c.refused), kind: simDone, replica: e.replica, caller: e.caller, ticket: e.ticket})
			}
		case simDone:
			// The slot goes to the next caller waiting for one.
			if len(r.queue) > 0 {
				next := r.queue[0]
				r.queue = r.queue[1:]
				r.free++
				push(simEvent{at: now, kind: simWant, replica: e.replica, caller: next})
			} else {
				r.free++
			}
			var wait time.Duration
			if e.ok {
				r.l.success(now, e.lat)
				res.admitted++
				res.perReplica[e.replica]++
				res.perSecond[e.replica][int(now.Sub(start)/time.Second)]++
				r.attempts[e.caller] = 0
				r.holds[e.caller] = false
			} else {
				res.refused++
				res.refusedPerSecond[int(now.Sub(start)/time.Second)]++
				if r.l.throttled(now, e.ticket) {
					res.cuts++
				}
				n := r.attempts[e.caller]
				if n >= DefaultMaxAttempts {
					r.attempts[e.caller] = 0 // gave up; the caller takes the next request
					r.holds[e.caller] = false
				} else {
					limit := min(DefaultMaxBackoff, DefaultBaseBackoff<<(n-1))
					wait = time.Duration(rng.Float64() * float64(limit))
				}
			}
			push(simEvent{at: now.Add(wait), kind: simWant, replica: e.replica, caller: e.caller})
		}
	}
	for _, r := range rs {
		res.rates = append(res.rates, r.l.Rate())
	}
	res.capacity = quota.capacity(start, end)
	if c.work > 0 && running > 0 { // cut by the duration
		res.wall = end0.Sub(start)
		for i, r := range rs {
			if !r.done {
				res.finished[i] = res.wall
			}
		}
	}
	return res
}
