package engine

import (
	"container/heap"
	"math/rand/v2"
	"time"
)

// simConfig describes one simulated run of the limiter against a quota.
type simConfig struct {
	quota    float64       // server admits this many calls per second
	burst    float64       // server bucket depth
	latency  time.Duration // mean call latency
	jitter   time.Duration // latency spread (uniform ±)
	inFlight int           // callers
	requests int           // signatures to issue
	ceiling  float64       // limiter ceiling; 0 for none
	initial  float64       // limiter initial rate
	backoff  time.Duration // retry backoff base (full jitter, doubling)
	seed     uint64
}

type simResult struct {
	elapsed   time.Duration
	calls     int
	throttled int
	cuts      int
	finalRate float64
}

type simEvent struct {
	at     time.Time
	kind   int // simWake or simDone
	worker int
	ok     bool
	epoch  uint64
	lat    time.Duration
	seq    int
}

const (
	simWake = iota // a caller is free to pick work
	simDone        // a call's answer arrives
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

// simulate runs a discrete-event simulation: inFlight callers each reserve
// a send slot from the limiter, the server's token bucket admits or
// throttles at the send time, and throttled requests come back after a
// full-jitter backoff. It is deterministic for a seed and takes no real time.
func simulate(c simConfig) simResult {
	rng := rand.New(rand.NewPCG(c.seed, 7))
	start := time.Unix(1_700_000_000, 0)
	l := newLimiter(c.initial, 1, c.ceiling)
	tokens, last := c.burst, start
	take := func(now time.Time) bool {
		tokens = min(c.burst, tokens+now.Sub(last).Seconds()*c.quota)
		last = now
		if tokens < 1 {
			return false
		}
		tokens--
		return true
	}
	type retry struct {
		ready    time.Time
		attempts int
	}
	var retries []retry // requests waiting to be retried
	fresh := c.requests
	done := 0
	attempts := make([]int, c.inFlight) // attempts of the request each worker holds
	var q simQueue
	seq := 0
	push := func(e simEvent) { seq++; e.seq = seq; heap.Push(&q, e) }
	for w := 0; w < c.inFlight; w++ {
		push(simEvent{at: start, kind: simWake, worker: w})
	}
	var res simResult
	now := start
	for q.Len() > 0 && done < c.requests {
		e := heap.Pop(&q).(simEvent)
		now = e.at
		switch e.kind {
		case simWake: // a free caller picks work: a due retry first, else a fresh request
			picked := -1
			for i, r := range retries {
				if !r.ready.After(now) {
					picked = i
					break
				}
			}
			switch {
			case picked >= 0:
				attempts[e.worker] = retries[picked].attempts
				retries = append(retries[:picked], retries[picked+1:]...)
			case fresh > 0:
				fresh--
				attempts[e.worker] = 0
			case len(retries) > 0:
				earliest := retries[0].ready
				for _, r := range retries {
					if r.ready.Before(earliest) {
						earliest = r.ready
					}
				}
				push(simEvent{at: earliest, kind: simWake, worker: e.worker})
				continue
			default:
				continue // nothing left for this caller
			}
			sent, epoch := l.reserve(now)
			res.calls++
			attempts[e.worker]++
			if take(sent) {
				lat := c.latency + time.Duration((rng.Float64()*2-1)*float64(c.jitter))
				push(simEvent{at: sent.Add(lat), kind: simDone, worker: e.worker, ok: true, epoch: epoch, lat: lat})
			} else {
				push(simEvent{at: sent.Add(300 * time.Microsecond), kind: simDone, worker: e.worker, epoch: epoch})
			}
		case simDone:
			if e.ok {
				l.success(now, e.lat)
				done++
			} else {
				res.throttled++
				l.throttled(now, e.epoch)
				n := attempts[e.worker]
				capped := c.backoff << min(n-1, 6)
				retries = append(retries, retry{ready: now.Add(time.Duration(rng.Float64() * float64(capped))), attempts: n})
			}
			push(simEvent{at: now, kind: simWake, worker: e.worker})
		}
	}
	res.elapsed = now.Sub(start)
	res.cuts = l.cuts
	res.finalRate = l.Rate()
	return res
}
