package fleet_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/fleet"
	"github.com/linkissuer/linkissuer/fleet/fleettest"
)

// Run publishes while the limiter makes calls, reports a store that fails
// once and once more when it recovers, and leaves when ctx ends.
func TestRunReportsChangesAndLeaves(t *testing.T) {
	store := &flakyStore{Memory: &fleettest.Memory{}}
	lim := &countingLimiter{}
	a := fleet.NewAgent(store, "me", lim, 5*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var reports []error
	done := make(chan error)
	if err := a.Join(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	go func() {
		done <- a.Run(ctx, func(err error) { mu.Lock(); reports = append(reports, err); mu.Unlock() })
	}()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	listed := func() int { ms, _ := store.Memory.List(ctx); return len(ms) }
	waitFor("the member object", func() bool { return listed() == 1 })
	store.fail(true)
	waitFor("a report of the failure", func() bool { mu.Lock(); defer mu.Unlock(); return len(reports) == 1 })
	time.Sleep(20 * time.Millisecond) // more failed steps: not reported again
	store.fail(false)
	waitFor("a report of the recovery", func() bool { mu.Lock(); defer mu.Unlock(); return len(reports) == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v, want nil (left)", err)
	}
	if n := listed(); n != 0 {
		t.Errorf("after Run: %d members listed, want 0 (it leaves)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if !errors.Is(reports[0], errDown) || reports[1] != nil {
		t.Errorf("reports = %v, want [%v <nil>]", reports, errDown)
	}
}

var errDown = errors.New("store down")

type flakyStore struct {
	*fleettest.Memory
	mu   sync.Mutex
	down bool
}

func (f *flakyStore) fail(down bool) { f.mu.Lock(); f.down = down; f.mu.Unlock() }

func (f *flakyStore) Put(ctx context.Context, m fleet.Member) (time.Time, error) {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		return time.Time{}, errDown
	}
	return f.Memory.Put(ctx, m)
}

// countingLimiter makes one more call at every Load, so the agent is
// never idle.
type countingLimiter struct {
	mu sync.Mutex
	n  uint64
}

func (l *countingLimiter) Load() fleet.Load {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	return fleet.Load{Admitted: l.n, Rate: 10, Binding: true}
}
func (l *countingLimiter) SetShare(float64) {}

// Replicas that know the limit announce themselves before joining, so
// that replicas starting together split it from their first call; a
// replica that announced after another's Join is taken in at its Peek.
func TestAnnounceSplitsAKnownLimit(t *testing.T) {
	ctx := t.Context()
	store := &fleettest.Memory{}
	limA, limB, limC := &shareLimiter{limit: 1000}, &shareLimiter{limit: 1000}, &shareLimiter{limit: 1000}
	a := fleet.NewAgent(store, "a", limA, time.Second)
	b := fleet.NewAgent(store, "b", limB, time.Second)
	c := fleet.NewAgent(store, "c", limC, time.Second)
	for _, ag := range []*fleet.Agent{a, b} {
		if ok, err := ag.Announce(ctx); err != nil || !ok {
			t.Fatalf("Announce = %v, %v; want true, nil", ok, err)
		}
	}
	now := time.Now()
	for _, ag := range []*fleet.Agent{a, b} {
		if err := ag.Join(ctx, now); err != nil {
			t.Fatal(err)
		}
	}
	want := fleet.KnownShare * 1000 / 2
	if limA.share != want || limB.share != want {
		t.Errorf("after Join: shares %g and %g, want %g each", limA.share, limB.share, want)
	}
	if _, err := c.Announce(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Peek(ctx, now); err != nil {
		t.Fatal(err)
	}
	if want := fleet.KnownShare * 1000 / 3; limA.share != want {
		t.Errorf("after a third announced and a peeked: share %g, want %g", limA.share, want)
	}
	for _, ag := range []*fleet.Agent{a, b, c} {
		if err := ag.Leave(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if ms, _ := store.List(ctx); len(ms) != 0 {
		t.Errorf("after Leave: %d members, want 0", len(ms))
	}

	// Without a known limit there is nothing to split: no write.
	d := fleet.NewAgent(store, "d", &shareLimiter{}, time.Second)
	if ok, err := d.Announce(ctx); err != nil || ok {
		t.Errorf("Announce without a limit = %v, %v; want false, nil", ok, err)
	}
	if ms, _ := store.List(ctx); len(ms) != 0 {
		t.Errorf("after Announce without a limit: %d members, want 0", len(ms))
	}
}

// shareLimiter records the share it is given.
type shareLimiter struct {
	limit, share float64
}

func (l *shareLimiter) Load() fleet.Load   { return fleet.Load{Limit: l.limit, Binding: true} }
func (l *shareLimiter) SetShare(s float64) { l.share = s }
