package engine

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of an Engine's counters, meant to be exported as
// metrics. Counters only grow.
type Stats struct {
	// Per Sign call (one signature asked for).
	Successes    uint64 // returned a signature
	Failures     uint64 // returned an error (GaveUp and Canceled included)
	GaveUp       uint64 // failed with a *GiveUpError
	Canceled     uint64 // the caller's context ended first
	Deduplicated uint64 // answered by an identical request already in flight

	// Per call to the inner signer.
	Calls     uint64 // calls made
	Retries   uint64 // calls after the first for the same signature
	Throttled uint64 // answered 429 / RESOURCE_EXHAUSTED
	Timeouts  uint64 // cut by CallTimeout
	InFlight  int64  // calls running now

	// Pacing.
	Rate     float64 // current rate, calls per second
	Ceiling  float64 // configured cap, 0 for none
	RateCuts uint64  // times a throttle cut the rate

	// CallLatency is the time of each call to the inner signer.
	CallLatency Histogram
	// SignLatency is the time of each Sign, from entry to return: waits
	// for a slot, pacing, backoff and retries included.
	SignLatency Histogram
}

// Stats returns a snapshot of the counters.
func (e *Engine) Stats() Stats {
	c := &e.stats
	return Stats{
		Successes: c.successes.Load(), Failures: c.failures.Load(), GaveUp: c.gaveUp.Load(),
		Canceled: c.canceled.Load(), Deduplicated: c.deduplicated.Load(),
		Calls: c.calls.Load(), Retries: c.retries.Load(), Throttled: c.throttled.Load(),
		Timeouts: c.timeouts.Load(), InFlight: c.inFlight.Load(),
		Rate: e.limiter.Rate(), Ceiling: e.opts.Ceiling, RateCuts: c.cuts.Load(),
		CallLatency: c.callLatency.snapshot(), SignLatency: c.signLatency.snapshot(),
	}
}

type counters struct {
	successes, failures, gaveUp, canceled, deduplicated atomic.Uint64
	calls, retries, throttled, timeouts, cuts           atomic.Uint64
	inFlight                                            atomic.Int64
	callLatency, signLatency                            histogram
}

func (c *counters) init() {
	c.callLatency.init()
	c.signLatency.init()
}

// finish records the end of one Sign.
func (c *counters) finish(d time.Duration, err error) {
	c.signLatency.observe(d)
	if err == nil {
		c.successes.Add(1)
		return
	}
	c.failures.Add(1)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		var g *GiveUpError
		if !errors.As(err, &g) {
			c.canceled.Add(1)
		}
	}
}

// Histogram buckets are log-spaced, eight per doubling (each about 9%
// wide), from 50µs to about 107 s; one more bucket holds the rest.
const (
	histMin       = 50 * time.Microsecond
	histPerDouble = 8
	histBuckets   = 21 * histPerDouble
)

// histBounds are the buckets' upper bounds.
var histBounds = func() []time.Duration {
	b := make([]time.Duration, histBuckets)
	for i := range b {
		b[i] = time.Duration(float64(histMin) * math.Exp2(float64(i)/histPerDouble))
	}
	return b
}()

// histogram is a lock-free latency histogram.
type histogram struct {
	counts []atomic.Uint64 // len(histBounds)+1
	count  atomic.Uint64
	sum    atomic.Int64
	max    atomic.Int64
}

func (h *histogram) init() { h.counts = make([]atomic.Uint64, len(histBounds)+1) }

func (h *histogram) observe(d time.Duration) {
	i := 0
	if d > histMin {
		i = int(math.Ceil(math.Log2(float64(d)/float64(histMin)) * histPerDouble))
		i = min(max(i, 0), len(histBounds))
		// Guard the float rounding at bucket edges.
		for i > 0 && d <= histBounds[i-1] {
			i--
		}
		for i < len(histBounds) && d > histBounds[i] {
			i++
		}
	}
	h.counts[i].Add(1)
	h.count.Add(1)
	h.sum.Add(int64(d))
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			break
		}
	}
}

func (h *histogram) snapshot() Histogram {
	s := Histogram{
		Count:  h.count.Load(),
		Sum:    time.Duration(h.sum.Load()),
		Max:    time.Duration(h.max.Load()),
		Bounds: histBounds,
		Counts: make([]uint64, len(h.counts)),
	}
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	return s
}

// Histogram is a latency distribution. Counts[i] holds observations in
// (Bounds[i-1], Bounds[i]]; the last count, beyond Bounds, holds the rest.
// Bounds is shared and must not be modified.
type Histogram struct {
	Count  uint64
	Sum    time.Duration
	Max    time.Duration
	Bounds []time.Duration
	Counts []uint64
}

// Quantile estimates the q-quantile (0 < q <= 1) by interpolating inside
// its bucket; the error is below one bucket's width (~9%). It is 0 for an
// empty histogram.
func (h Histogram) Quantile(q float64) time.Duration {
	var total uint64
	for _, c := range h.Counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var seen float64
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		if seen+float64(c) >= rank {
			lo := time.Duration(0)
			if i > 0 {
				lo = h.Bounds[i-1]
			}
			hi := h.Max
			if i < len(h.Bounds) {
				hi = min(h.Bounds[i], max(h.Max, lo))
			}
			frac := (rank - seen) / float64(c)
			return lo + time.Duration(frac*float64(hi-lo))
		}
		seen += float64(c)
	}
	return h.Max
}

// Mean is the average observation.
func (h Histogram) Mean() time.Duration {
	if h.Count == 0 {
		return 0
	}
	return h.Sum / time.Duration(h.Count)
}
