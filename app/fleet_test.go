package app

import (
	"strings"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/linkissuer/linkissuer/config"
	emulator "github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/fleet"
	"github.com/linkissuer/linkissuer/internal/iamtest"
	"github.com/linkissuer/linkissuer/sign"
)

// A keyless signer with --quota-fleet publishes its member object under
// the prefix while it signs, and deletes it when closed; a prefix that
// cannot be listed stops the start, naming the flag.
func TestKeylessSignerJoinsTheQuotaFleet(t *testing.T) {
	iamSrv := iamtest.Start(t, emulator.Options{Latency: time.Millisecond})
	gcs, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", PublicHost: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gcs.Stop)
	gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "fleet-bucket"})
	keyless := func(url string) *config.Keyless {
		return &config.Keyless{ServiceAccount: iamSrv.Email(), IAMEndpoint: iamSrv.Endpoint(),
			Fleet: config.QuotaFleet{URL: url, EmulatorHost: gcs.URL()}}
	}
	members := func() []string {
		objs, _, err := gcs.ListObjectsWithOptions("fleet-bucket", fakestorage.ListOptions{Prefix: "quota/members/"})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, o := range objs {
			names = append(names, o.Name)
		}
		return names
	}

	t.Run("missing bucket", func(t *testing.T) {
		_, err := NewKeylessSigner(t.Context(), keyless("gs://no-such-bucket/quota"), nil)
		if err == nil || !strings.Contains(err.Error(), "--quota-fleet gs://no-such-bucket/quota") {
			t.Fatalf("NewKeylessSigner = %v, want an error naming --quota-fleet", err)
		}
	})
	t.Run("a known quota: a member before the first call, its share set", func(t *testing.T) {
		k := keyless("gs://fleet-bucket/quota")
		k.Quota = 60000
		s, err := NewKeylessSigner(t.Context(), k, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := members()
		ld := s.Engine.Load()
		s.Close()
		if len(got) != 1 {
			t.Errorf("member objects before any call %q, want one (announced)", got)
		}
		if want := fleet.KnownShare * 1000; ld.Limit != 1000 || ld.Rate != want {
			t.Errorf("engine: limit %g/s, rate %g/s; want 1000/s and its share alone, %g/s", ld.Limit, ld.Rate, want)
		}
		if left := members(); len(left) != 0 {
			t.Errorf("after Close: %q, want none", left)
		}
	})
	t.Run("member while signing, gone when closed", func(t *testing.T) {
		s, err := NewKeylessSigner(t.Context(), keyless("gs://fleet-bucket/quota"), nil)
		if err != nil {
			t.Fatal(err)
		}
		scope := sign.NewScope(sign.GOOG4, time.Now(), "auto")
		for deadline := time.Now().Add(10 * time.Second); len(members()) == 0; {
			if time.Now().After(deadline) {
				s.Close()
				t.Fatal("no member object after 10 s of signing")
			}
			if _, err := s.Sign(t.Context(), scope, []byte(time.Now().String())); err != nil {
				s.Close()
				t.Fatal(err)
			}
		}
		got := members()
		s.Close()
		if len(got) != 1 || !strings.HasPrefix(got[0], "quota/members/") {
			t.Errorf("member objects %q, want one under quota/members/", got)
		}
		if left := members(); len(left) != 0 {
			t.Errorf("after Close: %q, want none", left)
		}
	})
}
