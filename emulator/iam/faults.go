package iam

import (
	"math/rand/v2"
	"sync"
	"time"
)

// bucket is the quota: a token bucket refilled at rate per second, holding
// at most burst tokens. It is a pure core: callers pass the time.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second; 0 means unlimited
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int, now time.Time) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// take spends one token if there is one at now.
func (b *bucket) take(now time.Time) bool {
	if b.rate <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
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

// window is the quota counted in fixed windows: limit calls per period,
// the count reset at every multiple of period since the Unix epoch (a
// per-minute quota resets on the minute). It is a pure core: callers pass
// the time.
type window struct {
	mu     sync.Mutex
	limit  int64
	period time.Duration
	start  int64 // the current window's index
	used   int64
}

func newWindow(limit int64, period time.Duration) *window {
	return &window{limit: limit, period: period, start: -1}
}

// take counts one call at now if the window has room.
func (w *window) take(now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if k := now.UnixNano() / int64(w.period); k != w.start {
		w.start, w.used = k, 0
	}
	if w.used >= w.limit {
		return false
	}
	w.used++
	return true
}

// fault is what the dice decided for one request.
type fault int

const (
	faultNone   fault = iota
	faultHang         // hold the request
	faultServer       // a 500, 502 or 503
	faultDenied       // the transient 403
)

// dice draws faults and latencies from one seeded source, so that a seed
// fixes the sequence of draws.
type dice struct {
	mu      sync.Mutex
	rng     *rand.Rand
	latency time.Duration
	jitter  time.Duration
	hang    float64
	server  float64
	denied  float64
}

func newDice(o *Options) *dice {
	return &dice{
		rng:     rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		latency: o.Latency,
		jitter:  o.Jitter,
		hang:    o.HangRate,
		server:  o.ErrorRate,
		denied:  o.DeniedRate,
	}
}

// roll decides one request's fate: its fault, its latency (uniform in
// latency ± jitter, never negative) and, for server faults, the status.
func (d *dice) roll() (f fault, latency time.Duration, status int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	latency = d.latency
	if d.jitter > 0 {
		latency += time.Duration((d.rng.Float64()*2 - 1) * float64(d.jitter))
	}
	latency = max(latency, 0)
	u := d.rng.Float64()
	switch {
	case u < d.hang:
		f = faultHang
	case u < d.hang+d.server:
		f = faultServer
		status = []int{500, 502, 503}[d.rng.IntN(3)]
	case u < d.hang+d.server+d.denied:
		f = faultDenied
	}
	return f, latency, status
}
