package gcsfleet

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"

	"github.com/linkissuer/linkissuer/fleet"
	"github.com/linkissuer/linkissuer/fleet/fleettest"
)

const bucket = "linkissuer-fleet"

// newGCS is fake-gcs-server in-process with one bucket, and a JSON-API
// client of it, as STORAGE_EMULATOR_HOST makes one.
func newGCS(t *testing.T) (*fakestorage.Server, *storage.Client) {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", PublicHost: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: bucket})
	c, err := storage.NewClient(context.Background(), option.WithEndpoint(srv.URL()+"/storage/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return srv, c
}

func TestConformance(t *testing.T) {
	_, c := newGCS(t)
	var n atomic.Int64
	fleettest.Conformance(t, func(*testing.T) fleet.Store {
		return New(c, bucket, fmt.Sprintf("quota/run-%d", n.Add(1)))
	})
}

// Objects under the prefix that are not members (no numbers, or deeper
// than members/ID) are not listed; other prefixes are apart.
func TestListSkipsWhatIsNotAMember(t *testing.T) {
	srv, c := newGCS(t)
	ctx := context.Background()
	for _, name := range []string{"quota/members/stray", "quota/members/deeper/x", "quota/notes.txt"} {
		srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: name}, Content: []byte("x")})
	}
	srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: "quota/members/bad",
		Metadata: map[string]string{"admitted": "-1", "refused": "0", "rate": "1", "estimate": "0", "quota": "0", "binding": "true", "windowed": "false"}}})
	s := New(c, bucket, "quota")
	other := New(c, bucket, "quota-b/")
	if _, err := s.Put(ctx, fleet.Member{ID: "a", Admitted: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Put(ctx, fleet.Member{ID: "b", Admitted: 1}); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "a" {
		t.Fatalf("List = %+v, want member a alone", got)
	}
}

func TestMemberIDs(t *testing.T) {
	_, c := newGCS(t)
	s := New(c, bucket, "")
	for _, id := range []string{"", "a/b", "a\nb", strings.Repeat("x", 257)} {
		if _, err := s.Put(context.Background(), fleet.Member{ID: id}); err == nil {
			t.Errorf("Put(%q) succeeded", id)
		}
	}
	if got := s.String(); got != "gs://linkissuer-fleet/members/" {
		t.Errorf("String() = %q", got)
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		in, bucket, prefix string
		ok                 bool
	}{
		{in: "gs://my-bucket/linkissuer/quota", bucket: "my-bucket", prefix: "linkissuer/quota/", ok: true},
		{in: "gs://my-bucket/quota/", bucket: "my-bucket", prefix: "quota/", ok: true},
		{in: "gs://my-bucket", bucket: "my-bucket", prefix: "", ok: true},
		{in: "gs://my-bucket/", bucket: "my-bucket", prefix: "", ok: true},
		{in: "gs://example.com.bucket/q", bucket: "example.com.bucket", prefix: "q/", ok: true},
		{in: "my-bucket/quota"},
		{in: "s3://my-bucket/quota"},
		{in: "gs://"},
		{in: "gs://My-Bucket/q"},
		{in: "gs://-bucket/q"},
		{in: "gs://ab/q"},
		{in: "gs://b_ok/a//b"},
		{in: "gs://b_ok/a*"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			b, p, err := ParseURL(tt.in)
			if (err == nil) != tt.ok || b != tt.bucket || p != tt.prefix {
				t.Errorf("ParseURL(%q) = %q, %q, %v; want %q, %q, ok %v", tt.in, b, p, err, tt.bucket, tt.prefix, tt.ok)
			}
		})
	}
}

// An agent over the GCS store: two replicas publish, list, and each is
// steered to half of the quota their refusals revealed; one that leaves
// is gone from the listing.
func TestAgentsOverGCS(t *testing.T) {
	_, c := newGCS(t)
	ctx := context.Background()
	s := New(c, bucket, "fleet")
	la := &limiter{load: fleet.Load{Rate: 150, Binding: true}}
	lb := &limiter{load: fleet.Load{Rate: 150, Binding: true}}
	a := fleet.NewAgent(s, "a", la, time.Second)
	b := fleet.NewAgent(s, "b", lb, time.Second)
	t0 := time.Now()
	for _, ag := range []*fleet.Agent{a, b} {
		if err := ag.Join(ctx, t0); err != nil {
			t.Fatal(err)
		}
	}
	la.load.Admitted, la.load.Refused = 100, 5
	lb.load.Admitted, lb.load.Refused = 100, 5
	for _, ag := range []*fleet.Agent{a, b, a} { // a steps again to see b's write
		if err := ag.Step(ctx, t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	// a's second step: no new calls since its first, so it is idle and
	// leaves; b's share was set from the listing with both.
	if lb.share != 100 {
		t.Errorf("b's share = %g, want 100 (the 200/s both were admitted, split in two)", lb.share)
	}
	ms, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].ID != "b" {
		t.Errorf("after a went idle the store lists %+v, want b alone", ms)
	}
}

type limiter struct {
	load  fleet.Load
	share float64
}

func (l *limiter) Load() fleet.Load        { return l.load }
func (l *limiter) SetShare(perSec float64) { l.share = perSec }

// Probe writes, lists and deletes a member object; it leaves none behind,
// also when the listing fails after the write.
func TestProbe(t *testing.T) {
	srv, c := newGCS(t)
	// A prefix with more objects than a listing takes: the write
	// succeeds, the listing fails.
	for i := range MaxMembers + 1 {
		srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: fmt.Sprintf("crowded/members/m%d", i)}})
	}
	tests := []struct {
		name    string
		bucket  string
		prefix  string
		id      string
		wantErr string // substring of the error; "" for none
	}{
		{name: "ok", bucket: bucket, prefix: "quota", id: "doctor-host-1"},
		{name: "no such bucket", bucket: "no-such-bucket", prefix: "quota", id: "doctor-host-1", wantErr: "write gs://no-such-bucket/quota/members/doctor-host-1"},
		{name: "listing fails", bucket: bucket, prefix: "crowded", id: "doctor-host-1", wantErr: "more than 1000 objects"},
		{name: "bad id", bucket: bucket, prefix: "quota", id: "a/b", wantErr: "not a member ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := New(c, tt.bucket, tt.prefix).Probe(context.Background(), tt.id)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Probe = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Probe = %v, want an error with %q", err, tt.wantErr)
			}
			if _, err := srv.GetObject(bucket, normalizePrefix(tt.prefix)+"members/"+tt.id); err == nil {
				t.Errorf("the probe object is left under gs://%s/%s", bucket, tt.prefix)
			}
		})
	}
}
