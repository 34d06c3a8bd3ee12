package localstack

import (
	"context"
	"errors"
	"net/http"
	"os"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/storage"

	iamemu "github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/internal/pubsubemu"
)

// An upload to the stack's bucket arrives as an OBJECT_FINALIZE
// notification on the worker subscription, through a storage client that
// found the stack only through STORAGE_EMULATOR_HOST; Close restores the
// environment.
func TestUploadIsNotified(t *testing.T) {
	tests := []struct {
		name string
		real bool
	}{
		{name: "pstest"},
		{name: "real emulator", real: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvPubSub, "before")
			t.Setenv(EnvStorage, "before")
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			s, err := Start(ctx, &Options{RealPubSub: tc.real, Project: "p-test", Bucket: "b-test"})
			if errors.Is(err, pubsubemu.ErrNotInstalled) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := os.Getenv(EnvPubSub); got != s.PubSubHost {
				t.Errorf("%s = %q, want %q", EnvPubSub, got, s.PubSubHost)
			}
			// Starting twice against the same Pub/Sub finds the topology in place.
			if err := s.createTopology(ctx, tc.real); err != nil {
				t.Errorf("topology is not idempotent: %v", err)
			}
			if err := s.createBucket(ctx); err != nil {
				t.Errorf("bucket is not idempotent: %v", err)
			}

			gcs, err := storage.NewClient(ctx)
			if err != nil {
				t.Fatal(err)
			}
			w := gcs.Bucket(s.Bucket).Object("dir/a b+ü.txt").NewWriter(ctx)
			w.Write([]byte("hello"))
			if err := w.Close(); err != nil {
				t.Fatalf("upload through %s: %v", EnvStorage, err)
			}
			gcs.Close()

			var got *pubsub.Message
			rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
			err = s.PubSub.Subscriber(s.Topology.WorkerSubscription).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
				m.Ack()
				got = m
				rcancel()
			})
			rcancel()
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatal("no notification within 30s")
			}
			if got.Attributes["eventType"] != "OBJECT_FINALIZE" || got.Attributes["objectId"] != "dir/a b+ü.txt" || got.Attributes["bucketId"] != "b-test" {
				t.Errorf("notification attributes %v", got.Attributes)
			}

			resp, err := http.Get(s.IAM.URL() + "/service_accounts/v1/metadata/x509/" + s.IAM.Email())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("IAM emulator x509 endpoint: %d", resp.StatusCode)
			}

			if err := s.Close(context.Background()); err != nil {
				t.Errorf("close: %v", err)
			}
			if err := s.Close(context.Background()); err != nil {
				t.Errorf("second close: %v", err)
			}
			if got := os.Getenv(EnvPubSub); got != "before" {
				t.Errorf("%s not restored: %q", EnvPubSub, got)
			}
			if got := os.Getenv(EnvStorage); got != "before" {
				t.Errorf("%s not restored: %q", EnvStorage, got)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    *Options
		ok   bool
	}{
		{name: "nil", o: nil, ok: true},
		{name: "fixed ports", o: &Options{PubSubAddr: "127.0.0.1:8681", StorageAddr: "127.0.0.1:4443", IAMAddr: "127.0.0.1:8085"}, ok: true},
		{name: "no port", o: &Options{StorageAddr: "127.0.0.1"}},
		{name: "bad port", o: &Options{IAMAddr: "127.0.0.1:http"}},
		{name: "project with slash", o: &Options{Project: "a/b"}},
		{name: "bucket with space", o: &Options{Bucket: "a b"}},
		{name: "bad IAM options", o: &Options{IAM: &iamemu.Options{ErrorRate: 2}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.o.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// A port already taken fails Start cleanly (pstest would panic) and
// leaves the environment alone.
func TestStartPortTaken(t *testing.T) {
	t.Setenv(EnvPubSub, "before")
	s, err := Start(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	_, err = Start(context.Background(), &Options{PubSubAddr: s.PubSubHost})
	if err == nil {
		t.Fatal("second stack on the same Pub/Sub port started")
	}
	if got := os.Getenv(EnvPubSub); got != s.PubSubHost {
		t.Errorf("failed start changed %s to %q", EnvPubSub, got)
	}
}
