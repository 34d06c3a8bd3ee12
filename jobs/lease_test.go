package jobs

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/gcsstore"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/worker"
)

// faultyStore is the fixture's store with compose calls that fail (as a
// 503 would) while failing is set.
type faultyStore struct {
	*gcsstore.Client
	failing  atomic.Bool
	composes atomic.Int64
}

func (s *faultyStore) Compose(ctx context.Context, bucket, dst string, srcs []string, o WriteOptions) error {
	s.composes.Add(1)
	if s.failing.Load() {
		return &sign.RetryableError{Err: errors.New("compose: 503 backend error (injected)")}
	}
	return s.Client.Compose(ctx, bucket, dst, srcs, o)
}

// clock is a test clock that moves only when told to.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }
func shardMessage(o worker.Output) *worker.Message {
	return &worker.Message{ID: "s", Data: o.Data, Attributes: o.Attributes}
}

// TestFinishLeaseIsTakenOver: the shard that completes a job takes the
// finish lock, and its compose keeps failing until the message is
// dead-lettered (five deliveries). Storage recovers. Another delivery of
// the job (here another shard, redelivered, and the root job resubmitted)
// waits while the dead holder's lease is live, and once it has expired
// takes it over and finishes the job: one completion, a complete manifest.
// (Before leases the lock was held for good and the job never finished.)
func TestFinishLeaseIsTakenOver(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	public, _ := seedMedia(f)
	store := &faultyStore{Client: f.store}
	var clk clock
	r := f.runner(func(o *Options) {
		o.Backends = f.storeBackends(store, f.signer, nil)
		o.Split = &SplitOptions{Above: 10, ShardSize: 8}
		o.Now = clk.now
		o.FinishLease = time.Hour
	})
	job := manifestJob("lease-1", "gs://exports/lease.jsonl", schema.FormatJSONL, schema.JobSource{Bucket: mediaBucket})
	shards, err := r.Handle(context.Background(), jobMessage(t, job))
	if err != nil || len(shards) != 6 {
		t.Fatalf("%d shards, %v", len(shards), err)
	}
	for i := range 5 {
		if outs, err := r.Handle(context.Background(), shardMessage(shards[i])); err != nil || len(outs) != 0 {
			t.Fatalf("shard %d: %d outputs, %v", i, len(outs), err)
		}
	}
	store.failing.Store(true)
	for attempt := 1; attempt <= 5; attempt++ {
		outs, err := r.Handle(context.Background(), shardMessage(shards[5]))
		if c := failure.Classify(err); c.Kind != failure.KindTransient || len(outs) != 0 {
			t.Fatalf("holder, delivery %d with compose failing: %d outputs, %v (%s), want a redelivery", attempt, len(outs), err, c.Kind)
		}
	}
	if store.composes.Load() == 0 {
		t.Fatal("the holder never composed")
	}
	// The holder is dead-lettered; storage recovers.
	store.failing.Store(false)

	// While the lease is live another delivery waits, and gives the
	// message back when its own time runs out.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	outs, err := r.Handle(ctx, shardMessage(shards[2]))
	cancel()
	if c := failure.Classify(err); c.Kind != failure.KindTransient || len(outs) != 0 {
		t.Fatalf("with the lease live: %d outputs, %v (%s); want a redelivery", len(outs), err, c.Kind)
	}

	// The lease expires: the resubmitted root job republishes the shards,
	// and the first of them to arrive finishes the job.
	clk.advance(time.Hour + time.Minute)
	again, err := r.Handle(context.Background(), jobMessage(t, job))
	if err != nil || len(again) != 6 {
		t.Fatalf("resubmitted root: %d shards, %v", len(again), err)
	}
	var completions []worker.Output
	for _, i := range []int{0, 3, 5} {
		outs, err := r.Handle(context.Background(), shardMessage(again[i]))
		if err != nil {
			t.Fatalf("shard %d after recovery: %v", i, err)
		}
		completions = append(completions, outs...)
	}
	if len(completions) != 1 {
		t.Fatalf("%d completions after recovery, want 1", len(completions))
	}
	checkDone(t, f, decodeDone(t, completions[0]), job, schema.JobCounts{Listed: 45, Signed: 40, Skipped: 5}, 6)
	f.checkManifest(exportsBucket, "lease.jsonl", schema.FormatJSONL, public, 2*time.Hour)
	held := parseLease(f.read(exportsBucket, "lease.jsonl.parts/lease-1/finish.lock"))
	if held.Owner != "lease-1.s00000" {
		t.Errorf("the lock is held by %q, want the shard that took it over (lease-1.s00000)", held.Owner)
	}
}

// TestManifestIsNeverReplaced: a job whose manifest URI holds another
// job's announced manifest is dead-lettered with manifest_exists before
// it signs anything, whole or split, and the first manifest is unchanged.
// A redelivery of the first job (its manifest written, its completion
// lost) still rewrites its own manifest.
func TestManifestIsNeverReplaced(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedMedia(f)
	r := f.runner(nil)
	first := manifestJob("first", "gs://exports/shared.jsonl", schema.FormatJSONL, schema.JobSource{Bucket: mediaBucket, Prefix: "public/img/"})
	if _, err := r.Handle(context.Background(), jobMessage(t, first)); err != nil {
		t.Fatal(err)
	}
	announced := f.read(exportsBucket, "shared.jsonl")
	for _, tc := range []struct {
		name  string
		split *SplitOptions
	}{
		{name: "whole"},
		{name: "split", split: &SplitOptions{Above: 10, ShardSize: 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			signer := &countingSigner{inner: f.signer}
			r := f.runner(func(o *Options) { o.Backends, o.Split = f.backends(signer, nil), tc.split })
			second := manifestJob("second-"+tc.name, "gs://exports/shared.jsonl", schema.FormatJSONL, schema.JobSource{Bucket: mediaBucket, Prefix: "public/"})
			outs, err := r.Handle(context.Background(), jobMessage(t, second))
			if c := failure.Classify(err); c.Kind != failure.KindPermanent || c.Reason() != string(CodeManifestExists) || len(outs) != 0 {
				t.Fatalf("second job: %d outputs, %v (%s, %s); want dead-lettered with %s", len(outs), err, c.Kind, c.Reason(), CodeManifestExists)
			}
			if n := signer.calls.Load(); n != 0 {
				t.Errorf("the refused job signed %d URLs", n)
			}
			if !bytes.Equal(f.read(exportsBucket, "shared.jsonl"), announced) {
				t.Error("the announced manifest was replaced")
			}
		})
	}

	// The first job's completion record is lost (written by a delivery
	// that died): its redelivery replaces its own manifest.
	if err := f.client.Bucket(exportsBucket).Object("shared.jsonl.parts/first/complete.json").Delete(context.Background()); err != nil {
		t.Fatal(err)
	}
	outs, err := r.Handle(context.Background(), jobMessage(t, first))
	if err != nil || len(outs) != 1 {
		t.Fatalf("redelivery of the manifest's own job: %d outputs, %v", len(outs), err)
	}
}

// TestShardedJobLogsJobDone: the shard that finishes a job logs "job done"
// with the job's ID after "finishing job", as a whole job does.
func TestShardedJobLogsJobDone(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedMedia(f)
	core, logs := observer.New(zap.InfoLevel)
	r := f.runner(func(o *Options) {
		o.Split = &SplitOptions{Above: 10, ShardSize: 8}
		o.Logger = zap.New(core)
	})
	job := manifestJob("logged", "gs://exports/logged.jsonl", schema.FormatJSONL, schema.JobSource{Bucket: mediaBucket})
	shards, err := r.Handle(context.Background(), jobMessage(t, job))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range shards {
		if _, err := r.Handle(context.Background(), shardMessage(s)); err != nil {
			t.Fatal(err)
		}
	}
	finishing, done := logs.FilterMessage("finishing job").All(), logs.FilterMessage("job done").All()
	if len(finishing) != 1 || len(done) != 1 {
		t.Fatalf("%d \"finishing job\" and %d \"job done\" lines, want one each", len(finishing), len(done))
	}
	if m := done[0].ContextMap(); m["job_id"] != "logged.s00005" || m["root_job_id"] != "logged" {
		t.Errorf("job done logged with %v, want job_id logged.s00005 (the last shard) and root_job_id logged", m)
	}
}
