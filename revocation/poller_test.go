package revocation

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// flaky fails every call while down is set.
type flaky struct {
	Source
	down atomic.Bool
}

func (f *flaky) Generation(ctx context.Context) (int64, error) {
	if f.down.Load() {
		return 0, errors.New("storage unreachable")
	}
	return f.Source.Generation(ctx)
}

func (f *flaky) Read(ctx context.Context) (*List, int64, error) {
	if f.down.Load() {
		return nil, 0, errors.New("storage unreachable")
	}
	return f.Source.Read(ctx)
}

// The poller fails closed until the list is read and once it is stale,
// and picks up changes on the next poll.
func TestPollerFailsClosed(t *testing.T) {
	gcs := newGCS(t)
	ctx := context.Background()
	store := NewStore(client(t, gcs), listBucket, "revocations.json")
	src := &flaky{Source: store}
	var now atomic.Pointer[time.Time]
	set := func(t time.Time) { now.Store(&t) }
	set(t0)
	p, err := NewPoller(src, PollerOptions{Interval: 10 * time.Second, MaxAge: time.Minute, Now: func() time.Time { return *now.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	const id = "00000000000000000000000000000abc"
	check := func(step, wantReason, wantErr string) {
		t.Helper()
		reason, err := p.Revoked(ctx, id, "media", "a.pdf", t0.Add(-time.Hour))
		ready := p.Ready()
		switch {
		case wantErr != "":
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), wantErr) || !errors.Is(ready, ErrUnavailable) {
				t.Errorf("%s: Revoked %q, %v; Ready %v; want ErrUnavailable containing %q", step, reason, err, ready, wantErr)
			}
		case err != nil || ready != nil || reason != wantReason:
			t.Errorf("%s: Revoked %q, %v; Ready %v; want %q", step, reason, err, ready, wantReason)
		}
	}
	check("before any read", "", "not read yet")
	if err := p.Poll(ctx); !errors.Is(err, ErrNoList) {
		t.Fatalf("Poll of a missing list: %v", err)
	}
	check("missing list", "", "never read")
	if _, err := store.Init(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	check("empty list", "", "")
	if _, _, err := store.Update(ctx, func(l *List) (bool, error) { return l.Apply(Change{TokenID: id}, t0) }); err != nil {
		t.Fatal(err)
	}
	check("before the next poll", "", "")
	set(t0.Add(10 * time.Second))
	if err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	check("after the poll", ReasonToken, "")
	src.down.Store(true)
	set(t0.Add(40 * time.Second))
	if err := p.Poll(ctx); err == nil {
		t.Fatal("Poll with storage down succeeded")
	}
	check("one failed poll within the bound", ReasonToken, "")
	set(t0.Add(71 * time.Second))
	check("stale", "", "last read 1m1s ago (bound 1m0s): storage unreachable")
	src.down.Store(false)
	if err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	check("fresh again", ReasonToken, "")
}

func TestNewPollerRefuses(t *testing.T) {
	tests := []struct {
		name string
		o    PollerOptions
		want string
	}{
		{name: "bound under two intervals", o: PollerOptions{Interval: time.Minute, MaxAge: time.Minute}, want: "under two poll intervals"},
		{name: "tiny interval", o: PollerOptions{Interval: time.Millisecond}, want: "under 10ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewPoller(&flaky{}, tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewPoller: %v, want %q", err, tt.want)
			}
		})
	}
	p, err := NewPoller(&flaky{}, PollerOptions{Interval: 45 * time.Second})
	if err != nil || p.MaxAge() != 90*time.Second {
		t.Errorf("default bound for a 45s interval: %v, %v; want 1m30s", p, err)
	}
}
