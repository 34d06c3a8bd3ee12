package fleet

import (
	"math"
	"testing"
	"time"
)

func TestPlan(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name      string
		members   []Member
		limit     float64 // known, calls per second
		wantQuota float64
		wantShare float64
	}{
		{
			name: "refusals: the admitted total, split equally between binding members",
			members: []Member{
				{ID: "a", Updated: t0, Admitted: 120, Refused: 3, Binding: true},
				{ID: "b", Updated: t0, Admitted: 60, Binding: true},
				{ID: "c", Updated: t0, Admitted: 30, Binding: true},
			},
			wantQuota: 210, wantShare: 70,
		},
		{
			name: "an idle member keeps what it uses, a tenth more",
			members: []Member{
				{ID: "a", Updated: t0, Admitted: 150, Refused: 1, Binding: true},
				{ID: "b", Updated: t0, Admitted: 9},
			},
			wantQuota: 159, wantShare: 159 - (1.1*9 + 1),
		},
		{
			name: "a stale member is dropped",
			members: []Member{
				{ID: "a", Updated: t0, Admitted: 100, Refused: 1, Binding: true},
				{ID: "b", Updated: t0.Add(-4 * time.Second), Admitted: 100, Binding: true},
				{ID: "c", Updated: t0, Admitted: 50, Binding: true},
			},
			wantQuota: 150, wantShare: 75,
		},
		{
			name: "growth counts from when the estimate was computed, not published",
			members: []Member{
				{ID: "a", Updated: t0, Admitted: 100, Quota: 200, QuotaAt: t0.Add(-time.Second), Binding: true},
				{ID: "b", Updated: t0, Admitted: 100, Binding: true},
			},
			wantQuota: 202, wantShare: 101,
		},
		{
			name: "nobody refused, all binding: the estimate grows 1%/s since it was published",
			members: []Member{
				{ID: "a", Updated: t0, Admitted: 100, Quota: 190, Binding: true},
				{ID: "b", Updated: t0.Add(-time.Second), Admitted: 100, Quota: 200, Binding: true},
			},
			wantQuota: 202, wantShare: 101,
		},
		{
			name: "what no member asks for is split on top: a lone member that paused keeps its share",
			members: []Member{
				{ID: "a", Updated: t0, Admitted: 500, Quota: 1000},
			},
			wantQuota: 1000, wantShare: 1000,
		},
		{
			name: "and between members that do not bind",
			members: []Member{
				{ID: "a", Updated: t0, Admitted: 100, Quota: 1000},
				{ID: "b", Updated: t0, Admitted: 300, Quota: 1000},
			},
			wantQuota: 1000, wantShare: 111 + (1000-111-331)/2.0,
		},
		{
			name:      "a known limit: KnownShare of it, split from the first listing",
			members:   []Member{{ID: "a", Updated: t0, Binding: true}, {ID: "b", Updated: t0, Binding: true}},
			limit:     1000,
			wantQuota: 970, wantShare: 485,
		},
		{
			name: "a known limit: refusals in the noise change nothing",
			members: []Member{
				{ID: "a", Updated: t0, Admitted: 480, Refused: 4, Quota: 970, Binding: true},
				{ID: "b", Updated: t0, Admitted: 480, Quota: 970, Binding: true},
			},
			limit:     1000,
			wantQuota: 970, wantShare: 485,
		},
		{
			name: "a known limit: more refusals (someone else spends the quota) are read as without it",
			members: []Member{
				{ID: "a", Updated: t0, Admitted: 300, Refused: 30, Quota: 970, Binding: true},
				{ID: "b", Updated: t0, Admitted: 300, Quota: 970, Binding: true},
			},
			limit:     1000,
			wantQuota: 600, wantShare: 300,
		},
		{
			name: "a known limit caps what refusals say",
			members: []Member{
				{ID: "a", Updated: t0, Admitted: 1200, Refused: 100, Binding: true},
			},
			limit:     1000,
			wantQuota: 970, wantShare: 970,
		},
		{
			name:      "no estimate and no refusal: no set-point",
			members:   []Member{{ID: "a", Updated: t0, Admitted: 100, Binding: true}},
			wantQuota: 0, wantShare: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Plan(tt.members, "a", t0, 3*time.Second, tt.limit)
			if math.Abs(s.Quota-tt.wantQuota) > 1e-9 || math.Abs(s.Share-tt.wantShare) > 1e-9 {
				t.Errorf("Plan = quota %g, share %g; want %g, %g", s.Quota, s.Share, tt.wantQuota, tt.wantShare)
			}
		})
	}
}
