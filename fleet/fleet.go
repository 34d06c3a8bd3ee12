// Package fleet lets replicas that share one signBlob quota see each other
// through a small storage prefix, and gives each its max-min fair share of
// the quota as a rate set-point.
//
// Each active replica writes one member object (PREFIX/members/ID) at most
// once per Interval with its last interval's numbers (calls admitted and
// refused per second, whether it is binding: it has more work than its
// rate lets through, its rate, its estimate of the fleet's quota), lists
// the prefix, and drops members not updated for Stale. Replicas that
// know the quota (--sign-quota) write their object before their first
// call and split KnownShare of it from the start (Announce, Plan). From one listing
// every replica computes the same plan (Plan): the fleet's quota estimate
// and each member's share. Times are the store's (the objects' update
// times), never a writer's clock, so skew between replicas does not
// matter. A replica that stops deletes its object (its share is freed at
// once); one that dies is dropped after Stale.
//
// The limiter stays the one place for rate decisions: an Agent only
// passes the share to it (Limiter.SetShare), and a local 429 still cuts
// the rate at once. Without a fleet nothing here runs and a replica works
// alone. An idle replica (no calls in an interval) deletes its object and
// stops writing and listing: the cost is one write and one list per
// second per replica that is signing. fleet/gcsfleet is the store on a
// GCS prefix (--quota-fleet); fleet/fleettest holds the store contract.
package fleet

import (
	"context"
	"math"
	"sort"
	"time"
)

// Defaults.
const (
	DefaultInterval = time.Second // GCS allows about one mutation per second per object
	staleIntervals  = 3
	// growth is how fast the fleet probes above its estimate per second
	// while nobody is refused and every member is binding; after a
	// refusal the estimate is what was admitted.
	growth = 0.01
	// KnownShare is how much of a known limit the fleet plans for: the
	// rest absorbs pacing jitter and a replica descheduled for a moment.
	KnownShare = 0.97
	// knownNoise is the refusals, as a share of calls admitted, that a
	// known limit ignores: a cold start's overlap or a burst after a
	// stall. More is someone else spending the project's quota: the
	// fleet then finds what is left, as without a known limit.
	knownNoise = 0.01
)

// Member is one replica's published numbers.
type Member struct {
	ID       string
	Updated  time.Time // set by the store
	Admitted float64   // calls admitted per second over the member's last interval
	Refused  float64   // calls refused (429) per second over it
	Rate     float64   // the member's rate
	Estimate float64   // what the quota admitted the member lately, per second (its limiter's estimate)
	Quota    float64   // the member's estimate of the fleet's quota, 0 if none
	QuotaAt  time.Time // the store's time of the listing Quota came from (zero: Updated)
	Binding  bool      // it had more work than its rate let through
	Windowed bool      // its limiter paces a per-minute window (or is paused on one)
}

// Store is where members are published. Put returns the update time the
// store gave the object; List returns every member with its update time.
type Store interface {
	Put(ctx context.Context, m Member) (time.Time, error)
	List(ctx context.Context) ([]Member, error)
	Delete(ctx context.Context, id string) error
}

// Share is a plan's answer for one member.
type Share struct {
	Quota   float64 // the fleet's quota estimate, calls per second; 0: unknown
	Share   float64 // this member's share of it; 0: no set-point
	Members int     // live members, this one included
}

// Plan computes, from one listing, the fleet's quota estimate and self's
// max-min fair share of it. now is the store's time of the listing (the
// newest update in it, or self's own write); members not updated within
// stale of it are dropped. self must be in members for a share. limit is
// the quota when it is known (--sign-quota), calls per second; 0: not
// known.
//
// A known limit: the estimate is KnownShare of it while the fleet's
// refusals stay under knownNoise of what it admitted (no probing, and
// replicas that start together split it from their first call);
// otherwise it is found as below, and never planned above KnownShare of
// the limit.
//
// The estimate: on a per-minute window (any member windowed) the sum of
// the members' rates, which their limiters pace per window: the fleet
// only evens the shares. Otherwise, when any member was refused, the
// fleet's admitted total over the members' last intervals, or the sum
// of their limiters' estimates (what the quota admitted them over their
// last few dozen calls) if higher: the interval may have started below
// the quota; when nobody was refused and every member is binding, the
// largest published estimate grown by growth per second since it was
// computed (the store's time of the listing it came from: measured from
// its publication, a member's own estimate, published a second after it
// was computed, would never grow); else the largest published estimate (nobody is pushing at
// it). No estimate yet (nobody published one, nobody refused): no
// set-point, and each limiter finds the quota on its own.
//
// The share: members that are not binding keep what they use (a tenth
// more, to let them grow); the rest split the remainder equally.
func Plan(members []Member, self string, now time.Time, stale time.Duration, limit float64) Share {
	var live []Member
	for _, m := range members {
		if !m.Updated.Before(now.Add(-stale)) {
			live = append(live, m)
		}
	}
	var admitted, refused, rates, est, prev float64
	var prevAt time.Time
	windowed, binding, found := false, true, false
	for _, m := range live {
		admitted += m.Admitted
		refused += m.Refused
		rates += m.Rate
		est += m.Estimate
		windowed = windowed || m.Windowed
		binding = binding && m.Binding
		found = found || m.ID == self
		if m.Quota > prev {
			prev, prevAt = m.Quota, m.QuotaAt
			if prevAt.IsZero() {
				prevAt = m.Updated
			}
		}
	}
	s := Share{Members: len(live)}
	known := KnownShare * limit
	switch {
	case known > 0 && refused <= knownNoise*admitted:
		s.Quota = known
	case windowed:
		s.Quota = rates
	case refused > 0:
		s.Quota = max(admitted, est)
	case prev > 0 && binding:
		s.Quota = max(prev, admitted) * (1 + growth*max(0, now.Sub(prevAt).Seconds()))
	default:
		s.Quota = prev
	}
	if known > 0 {
		s.Quota = min(s.Quota, known)
	}
	if s.Quota <= 0 || !found {
		return s
	}
	s.Share = fairShare(live, self, s.Quota)
	return s
}

// fairShare is self's max-min fair share of quota: non-binding members
// ask for 1.1 × what they admitted, binding ones for everything. What no
// member asks for (every member is not binding) is split evenly on top:
// a member that stopped binding for a moment (a process descheduled for a
// second finds its slots free when it runs again) keeps its share rather
// than being held to what it used in that interval.
func fairShare(live []Member, self string, quota float64) float64 {
	type ask struct {
		id   string
		want float64
	}
	asks := make([]ask, len(live))
	for i, m := range live {
		asks[i] = ask{m.ID, math.Inf(1)}
		if !m.Binding && !m.Windowed {
			asks[i].want = 1.1*m.Admitted + 1
		}
	}
	sort.Slice(asks, func(i, j int) bool { return asks[i].want < asks[j].want })
	left, mine, found := quota, 0.0, false
	for i, a := range asks {
		even := left / float64(len(asks)-i)
		give := min(a.want, even)
		if a.id == self {
			mine, found = give, true
		}
		left -= give
	}
	if !found {
		return 0
	}
	return mine + max(0, left)/float64(len(asks))
}
