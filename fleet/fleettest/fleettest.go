// Package fleettest is the contract every fleet.Store keeps, as a test
// suite a driver runs against itself (go-cloud's drivertest), and a store
// in memory that keeps it.
package fleettest

import (
	"context"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/fleet"
)

// Conformance checks the fleet.Store contract on stores made by newStore,
// each empty and apart from the others:
//   - Put returns the store's update time, and List shows the member with
//     that time and its numbers (within 1e-5 relative: a driver may keep
//     six significant digits);
//   - a later Put of the same ID replaces the member, at an update time not
//     before the first;
//   - List shows every member once; Delete removes one, and deleting a
//     missing member is no error.
func Conformance(t *testing.T, newStore func(t *testing.T) fleet.Store) {
	ctx := context.Background()
	a := fleet.Member{ID: "host-a-1234", Admitted: 123.456789, Refused: 0.5, Rate: 130, Estimate: 121.5, Quota: 200,
		QuotaAt: time.Date(2026, 12, 2, 12, 0, 0, 123456789, time.UTC), Binding: true}
	b := fleet.Member{ID: "host-b-99", Admitted: 7, Rate: 9.25, Windowed: true}

	t.Run("put then list", func(t *testing.T) {
		s := newStore(t)
		at, err := s.Put(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if at.IsZero() {
			t.Fatal("Put returned no update time")
		}
		got := list(t, s)
		if len(got) != 1 {
			t.Fatalf("List = %d members, want 1: %+v", len(got), got)
		}
		if !got[0].Updated.Equal(at) {
			t.Errorf("listed update time %s, Put returned %s", got[0].Updated, at)
		}
		same(t, got[0], a)
	})
	t.Run("replace, two members, delete", func(t *testing.T) {
		s := newStore(t)
		first, err := s.Put(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
		a2 := a
		a2.Admitted, a2.Binding = 50, false
		second, err := s.Put(ctx, a2)
		if err != nil {
			t.Fatal(err)
		}
		if second.Before(first) {
			t.Errorf("the second Put's update time %s is before the first's %s", second, first)
		}
		got := list(t, s)
		if len(got) != 2 {
			t.Fatalf("List = %d members, want 2: %+v", len(got), got)
		}
		same(t, got[0], a2)
		same(t, got[1], b)
		if err := s.Delete(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		if got := list(t, s); len(got) != 1 || got[0].ID != b.ID {
			t.Fatalf("after Delete(%s): %+v", a.ID, got)
		}
		if err := s.Delete(ctx, a.ID); err != nil {
			t.Errorf("deleting a missing member: %v", err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		if got := list(t, newStore(t)); len(got) != 0 {
			t.Fatalf("a new store lists %+v", got)
		}
	})
}

// list is s.List sorted by ID.
func list(t *testing.T, s fleet.Store) []fleet.Member {
	t.Helper()
	ms, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(ms, func(x, y fleet.Member) int { return strings.Compare(x.ID, y.ID) })
	return ms
}

// same reports got's numbers that differ from want's.
func same(t *testing.T, got, want fleet.Member) {
	t.Helper()
	near := func(x, y float64) bool { return math.Abs(x-y) <= 1e-5*math.Max(math.Abs(x), math.Abs(y)) }
	if got.ID != want.ID || !near(got.Admitted, want.Admitted) || !near(got.Refused, want.Refused) ||
		!near(got.Rate, want.Rate) || !near(got.Estimate, want.Estimate) || !near(got.Quota, want.Quota) ||
		got.Binding != want.Binding || got.Windowed != want.Windowed || !got.QuotaAt.Equal(want.QuotaAt) {
		t.Errorf("listed %+v, want the numbers of %+v", got, want)
	}
}

// Memory is a fleet.Store in memory; its update times come from Now
// (time.Now if nil), never earlier than the last one it gave.
type Memory struct {
	Now func() time.Time

	mu      sync.Mutex
	last    time.Time
	members map[string]fleet.Member
}

// Put implements fleet.Store.
func (m *Memory) Put(_ context.Context, mb fleet.Member) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if m.Now != nil {
		now = m.Now()
	}
	if now.Before(m.last) {
		now = m.last
	}
	m.last = now
	mb.Updated = now
	if m.members == nil {
		m.members = map[string]fleet.Member{}
	}
	m.members[mb.ID] = mb
	return now, nil
}

// List implements fleet.Store.
func (m *Memory) List(context.Context) ([]fleet.Member, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ms := make([]fleet.Member, 0, len(m.members))
	for _, mb := range m.members {
		ms = append(ms, mb)
	}
	return ms, nil
}

// Delete implements fleet.Store.
func (m *Memory) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.members, id)
	return nil
}
