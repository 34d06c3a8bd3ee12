package revocation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"
)

const listBucket = "linkissuer-config"

func newGCS(t testing.TB) *fakestorage.Server {
	t.Helper()
	gcs, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", PublicHost: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gcs.Stop)
	gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: listBucket})
	return gcs
}

// client is a JSON-API client of gcs, as STORAGE_EMULATOR_HOST makes one.
func client(t testing.TB, gcs *fakestorage.Server) *storage.Client {
	t.Helper()
	c, err := storage.NewClient(context.Background(), option.WithEndpoint(gcs.URL()+"/storage/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		in, bucket, object string
		ok                 bool
	}{
		{in: "gs://b/revocations.json", bucket: "b", object: "revocations.json", ok: true},
		{in: "gs://b/dir/r.json", bucket: "b", object: "dir/r.json", ok: true},
		{in: "gs://b/", ok: false},
		{in: "gs://b", ok: false},
		{in: "s3://b/o", ok: false},
		{in: "b/o", ok: false},
	}
	for _, tt := range tests {
		b, o, err := ParseURL(tt.in)
		if (err == nil) != tt.ok || b != tt.bucket || o != tt.object {
			t.Errorf("ParseURL(%q) = %q, %q, %v", tt.in, b, o, err)
		}
	}
}

// Init creates the list once; Update on a missing list names ErrNoList.
func TestStoreInit(t *testing.T) {
	gcs := newGCS(t)
	ctx := context.Background()
	s := NewStore(client(t, gcs), listBucket, "revocations.json")
	if _, _, err := s.Update(ctx, func(l *List) (bool, error) { return l.Apply(Change{Before: t0}, t0) }); !errors.Is(err, ErrNoList) {
		t.Fatalf("Update before Init: %v, want ErrNoList", err)
	}
	for i, want := range []bool{true, false} {
		created, err := s.Init(ctx, t0)
		if err != nil || created != want {
			t.Fatalf("Init #%d: created %v, %v; want %v", i, created, err, want)
		}
	}
	l, gen, err := s.Read(ctx)
	if err != nil || l.Len() != 0 || gen == 0 {
		t.Fatalf("Read: %+v, %d, %v", l, gen, err)
	}
	if _, ngen, err := s.Update(ctx, func(l *List) (bool, error) { return l.Apply(Change{Before: t0}, t0) }); err != nil || ngen == gen {
		t.Fatalf("Update: generation %d (was %d), %v", ngen, gen, err)
	}
	// The same change again writes nothing.
	if _, again, err := s.Update(ctx, func(l *List) (bool, error) { return l.Apply(Change{Before: t0}, t0) }); err != nil {
		t.Fatal(err)
	} else if g, _ := s.Generation(ctx); g != again {
		t.Errorf("idempotent update wrote: generation %d, object at %d", again, g)
	}
}

// Concurrent writers, each with its own client, all land: the
// generation-checked write makes losers re-read and retry.
func TestConcurrentWritersAllSurvive(t *testing.T) {
	gcs := newGCS(t)
	ctx := context.Background()
	if _, err := NewStore(client(t, gcs), listBucket, "revocations.json").Init(ctx, t0); err != nil {
		t.Fatal(err)
	}
	const writers = 8
	ids := make([]string, writers)
	var start, done sync.WaitGroup
	start.Add(1)
	errs := make([]error, writers)
	var conflicts sync.Map
	for i := range writers {
		ids[i] = fmt.Sprintf("%032x", i+1)
		done.Add(1)
		go func() {
			defer done.Done()
			s := NewStore(client(t, gcs), listBucket, "revocations.json")
			start.Wait()
			rounds := 0
			_, _, errs[i] = s.Update(ctx, func(l *List) (bool, error) {
				rounds++
				return l.Apply(Change{TokenID: ids[i]}, time.Now())
			})
			conflicts.Store(i, rounds-1)
		}()
	}
	start.Done()
	done.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	l, _, err := NewStore(client(t, gcs), listBucket, "revocations.json").Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	set := Compile(l)
	for _, id := range ids {
		if set.Revoked(id, "b", "o", t0) != ReasonToken {
			t.Errorf("token %s lost", id)
		}
	}
	if len(l.Tokens) != writers {
		t.Errorf("%d tokens, want %d", len(l.Tokens), writers)
	}
	retried := 0
	conflicts.Range(func(_, v any) bool { retried += v.(int); return true })
	t.Logf("%d writers, %d lost races retried", writers, retried)
}
