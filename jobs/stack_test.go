package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/linkissuer/linkissuer/internal/pubsubemu"
	"github.com/linkissuer/linkissuer/internal/pubsubtest"
	"github.com/linkissuer/linkissuer/internal/slowtest"
	"github.com/linkissuer/linkissuer/links"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/worker"
)

// The Pub/Sub tests run against Google's real Pub/Sub emulator, started
// once for the package, with fake-gcs-server in process as the store.

const testProject = "linkissuer-test"

var emulatorErr error

func TestMain(m *testing.M) { os.Exit(pubsubemu.RunTests(m, &emulatorErr)) }

// stack is one test's topics: jobs (pulled by the workers), notify
// (completions), results and errors, each with a subscription "ID-sub".
type stack struct {
	*pubsubtest.Stack
	t *testing.T
}

func newStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{Stack: pubsubtest.New(t, testProject, emulatorErr, "jobs", "notify", "results", "errors"), t: t}
	for _, name := range []string{"jobs", "notify", "results", "errors"} {
		s.Subscribe(pubsubemu.Subscription{ID: s.Sub(name), Topic: s.IDs[name], AckDeadline: 10 * time.Second, ExactlyOnce: name == "jobs"})
	}
	return s
}

// notifyTopic is the full name of the stack's completion topic.
func (s *stack) notifyTopic() string { return s.TopicName("notify") }

// startWorker runs a pull worker on the jobs subscription with a Runner
// over f (options changed by edit) as its jobs handler, with its own
// Pub/Sub client as a separate replica has. The returned kill cancels it
// with zero grace, as a crash would, and waits for it to return.
func (s *stack) startWorker(f *fixture, edit func(*Options)) (kill func()) {
	return s.startWorkerWith(f, workerConfig{edit: edit})
}

// workerConfig shapes a test worker: edit changes the Runner's options;
// jobs, if set, wraps the Runner's Handle; maxOutstanding is the pull
// flow control (default 1).
type workerConfig struct {
	edit           func(*Options)
	jobs           func(worker.Handler) worker.Handler
	maxOutstanding int
}

func (s *stack) startWorkerWith(f *fixture, cfg workerConfig) (kill func()) {
	return s.StartWorker(pubsubtest.Worker{
		Subscription: s.Sub("jobs"),
		Topics: map[string]string{
			worker.TopicResults: s.IDs["results"],
			worker.TopicErrors:  s.IDs["errors"],
			worker.TopicJobs:    s.IDs["jobs"],
		},
		Handler: func(pub *worker.NamedTopics) worker.Handler {
			r := f.runner(func(o *Options) {
				o.Publisher, o.TopicChecker = pub, pub
				if cfg.edit != nil {
					cfg.edit(o)
				}
			})
			var jobs worker.Handler = r.Handle
			if cfg.jobs != nil {
				jobs = cfg.jobs(jobs)
			}
			return (&links.Issuer{Jobs: jobs}).Handle
		},
		Pull: worker.PullOptions{
			// The shortest lease step: a killed replica's message is
			// redelivered within about 10s.
			MaxOutstanding: max(1, cfg.maxOutstanding), Streams: 1, HandlerTimeout: time.Minute, LeaseStep: 10 * time.Second,
		},
	})
}

// submit publishes a job to the jobs topic.
func (s *stack) submit(job *schema.Job) {
	s.t.Helper()
	data, err := json.Marshal(job)
	if err != nil {
		s.t.Fatal(err)
	}
	s.Publish(s.IDs["jobs"], &pubsub.Message{Data: data, Attributes: job.Attributes()})
}

// completions receives from the notify topic until the first message
// arrives (or timeout), then for quiet longer, to catch duplicates.
func (s *stack) completions(timeout, quiet time.Duration) []*pubsub.Message {
	s.t.Helper()
	var got []*pubsub.Message
	s.Receive(s.Sub("notify"), timeout, func(m *pubsub.Message, stop func()) {
		if got = append(got, m); len(got) == 1 {
			time.AfterFunc(quiet, stop)
		}
	})
	return got
}

func doneMessage(t *testing.T, m *pubsub.Message) *schema.JobDone {
	t.Helper()
	return decodeDone(t, worker.Output{Data: m.Data, Attributes: m.Attributes})
}

// TestWorkerRunsJob: a job published to the jobs topic is run by a pull
// worker, and its completion reaches the job's notify topic.
func TestWorkerRunsJob(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	f := newFixture(t)
	public, private := seedMedia(f)
	s.startWorker(f, nil)
	job := manifestJob("pubsub-1", "gs://exports/pubsub/links.csv", schema.FormatCSV, schema.JobSource{Bucket: mediaBucket})
	job.NotifyTopic = s.notifyTopic()
	s.submit(job)
	got := s.completions(60*time.Second, time.Second)
	if len(got) != 1 {
		t.Fatalf("%d completions, want 1", len(got))
	}
	done := doneMessage(t, got[0])
	f.checkManifest(exportsBucket, "pubsub/links.csv", schema.FormatCSV, public, 2*time.Hour)
	checkDone(t, f, done, job, schema.JobCounts{Listed: 45, Signed: 40, Skipped: 5}, 1)
	if rows := f.errorRows(exportsBucket, "pubsub/links.errors.csv", schema.FormatCSV); len(rows) != len(private) {
		t.Errorf("%d error rows, want %d", len(rows), len(private))
	}
	if got[0].Attributes[schema.AttrJobID] != "pubsub-1" {
		t.Errorf("completion attributes %v", got[0].Attributes)
	}
}

// TestTopicOutputJob: a job with a results topic instead of a manifest
// publishes one linkissuer.link.v1 per object there, keeps its state and
// error rows under the worker's state location, and announces the topic.
func TestTopicOutputJob(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	f := newFixture(t)
	public, private := seedMedia(f)
	s.startWorker(f, func(o *Options) {
		o.StateURI = "gs://exports/state"
		o.LinkBatch = 7
		o.Split = &SplitOptions{Above: 20, ShardSize: 15}
	})
	results := s.TopicName("results")
	job := &schema.Job{
		JobID: "to-topic", Source: schema.JobSource{Bucket: mediaBucket}, Method: "GET", ExpiresIn: "10m",
		Output: schema.JobOutput{Topic: results}, NotifyTopic: s.notifyTopic(),
	}
	s.submit(job)
	got := s.completions(60*time.Second, time.Second)
	if len(got) != 1 {
		t.Fatalf("%d completions, want 1", len(got))
	}
	done := doneMessage(t, got[0])
	if done.ResultsTopic != results || done.Manifest != nil || done.Shards != 3 ||
		done.Counts != (schema.JobCounts{Listed: 45, Signed: 40, Skipped: 5}) {
		t.Errorf("completion %+v", done)
	}
	if done.ErrorsURI != "gs://exports/state/to-topic/errors.jsonl" {
		t.Errorf("errors_uri %q", done.ErrorsURI)
	}
	if rows := f.errorRows(exportsBucket, "state/to-topic/errors.jsonl", schema.FormatJSONL); len(rows) != len(private) {
		t.Errorf("%d error rows, want %d", len(rows), len(private))
	}
	// At least once: every object arrives, perhaps more than once.
	seen := map[string]bool{}
	s.Receive(s.Sub("results"), 30*time.Second, func(m *pubsub.Message, stop func()) {
		var l schema.Link
		if err := json.Unmarshal(m.Data, &l); err != nil {
			t.Errorf("link: %v", err)
			return
		}
		if l.Source.JobID != "to-topic" || m.Attributes[schema.AttrDedupeKey] != l.DedupeKey() || public[l.Object].generation != l.Generation {
			t.Errorf("link %+v with attributes %v", l, m.Attributes)
		}
		if seen[l.Object] = true; len(seen) == len(public) {
			stop()
		}
	})
	if len(seen) != len(public) {
		t.Errorf("links for %d objects, want %d", len(seen), len(public))
	}
}

// shardedSetup seeds n objects and returns a job that splits into shards
// of size objects.
func shardedSetup(t *testing.T, s *stack, f *fixture, id string, n int) (*schema.Job, map[string]object) {
	t.Helper()
	all := f.seed("public/bulk/%05d.bin", n)
	job := manifestJob(id, "gs://exports/bulk/"+id+".jsonl", schema.FormatJSONL, schema.JobSource{Bucket: mediaBucket, Prefix: "public/bulk/"})
	job.NotifyTopic = s.notifyTopic()
	return job, all
}

// TestThreeWorkersShareAJob: three replicas pull from one subscription; the
// job is split, the replicas share its shards, one composes, and one
// completion is published.
//
// The emulator needs two aids for the sharing to be certain rather than
// likely. (1) It ignores flow control: every stream polls the backlog each
// 50ms and takes every waiting message (up to 100), so one replica, busy
// or not, may receive all eight shards at once (the library then holds
// them, extending their leases, until its one handler slot frees), and
// another replica never sees one. So each worker here runs its handlers
// concurrently and nacks a job message that arrives while it is already
// running one: the delivery real Pub/Sub would not have made to a replica
// with MaxOutstanding 1. The nacked message goes back to the backlog for
// the next poller. (2) A short shard can still end before another stream
// polls, leaving the same replica idle to take the next one. So the first
// replica to sign waits, mid-shard, until another replica has signed a
// URL. Neither aid is a timing threshold: the test asserts the outcome
// (two or more replicas signed; 1200 signatures in all, so no shard ran
// twice), and would time out, not pass, if the shards did not spread.
func TestThreeWorkersShareAJob(t *testing.T) {
	t.Parallel()
	slowtest.Require(t)
	s := newStack(t)
	f := newFixture(t)
	job, all := shardedSetup(t, s, f, "three", 1200)
	split := &SplitOptions{Above: 200, ShardSize: 150}
	var (
		mu     sync.Mutex
		leader = -1 // the first replica to sign
		spread = make(chan struct{})
		once   sync.Once
	)
	var signers []*countingSigner
	for i := range 3 {
		c := &countingSigner{inner: f.signer, hook: func(ctx context.Context, _ int64) error {
			mu.Lock()
			if leader < 0 {
				leader = i
			}
			first := leader == i
			mu.Unlock()
			if !first {
				once.Do(func() { close(spread) })
				return nil
			}
			select {
			case <-spread:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}}
		signers = append(signers, c)
		s.startWorkerWith(f, workerConfig{
			edit:           func(o *Options) { o.Backends, o.Split = f.backends(c, f.signer), split },
			jobs:           oneAtATime,
			maxOutstanding: 16,
		})
	}
	s.submit(job)
	got := s.completions(90*time.Second, 3*time.Second)
	if len(got) != 1 {
		t.Fatalf("%d completions, want exactly 1", len(got))
	}
	f.checkManifest(exportsBucket, "bulk/three.jsonl", schema.FormatJSONL, all, 2*time.Hour)
	checkDone(t, f, doneMessage(t, got[0]), job, schema.JobCounts{Listed: 1200, Signed: 1200}, 8)
	var total int64
	busy := 0
	for i, c := range signers {
		n := c.calls.Load()
		t.Logf("worker %d signed %d URLs", i, n)
		total += n
		if n > 0 {
			busy++
		}
	}
	if total != 1200 {
		t.Errorf("the workers signed %d URLs for 1200 objects: some shard ran twice", total)
	}
	if busy < 2 {
		t.Errorf("%d worker(s) signed URLs, want the shards shared by at least 2", busy)
	}
}

// errBusy nacks a message delivered to a replica already running one.
var errBusy = errors.New("test worker: busy with another job message; nacked for another replica")

// oneAtATime runs one job message at a time and fails (nacks, for
// redelivery) any that arrives meanwhile: server-side flow control of
// MaxOutstanding 1, which the emulator does not do.
func oneAtATime(h worker.Handler) worker.Handler {
	var busy atomic.Bool
	return func(ctx context.Context, m *worker.Message) ([]worker.Output, error) {
		if !busy.CompareAndSwap(false, true) {
			return nil, errBusy
		}
		defer busy.Store(false)
		return h(ctx, m)
	}
}

// TestKilledWorkerMidShard: one replica dies with zero grace in the middle
// of a shard; its shard is redelivered to another, redone from its start,
// and the job completes with every object exactly once. The victim starts
// alone, so that it is sure to hold shards (the emulator may stream every
// message to one replica), and the others join before it dies.
func TestKilledWorkerMidShard(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	f := newFixture(t)
	job, all := shardedSetup(t, s, f, "killed", 1200)
	split := &SplitOptions{Above: 200, ShardSize: 150}
	holding := make(chan struct{})
	var once sync.Once
	victim := &countingSigner{inner: f.signer, hook: func(ctx context.Context, n int64) error {
		if n >= 40 {
			once.Do(func() { close(holding) })
			<-ctx.Done() // stuck mid-shard until killed
			return ctx.Err()
		}
		return nil
	}}
	kill := s.startWorker(f, func(o *Options) { o.Backends, o.Split, o.Concurrency = f.backends(victim, nil), split, 4 })
	start := time.Now()
	s.submit(job)
	select {
	case <-holding:
	case <-time.After(60 * time.Second):
		t.Fatal("the victim never took a shard")
	}
	for range 2 {
		s.startWorker(f, func(o *Options) { o.Split = split })
	}
	kill()
	t.Logf("victim killed %s after the job was submitted", time.Since(start).Round(time.Millisecond))
	got := s.completions(90*time.Second, 3*time.Second)
	t.Logf("completed %s after the job was submitted", time.Since(start).Round(time.Millisecond))
	if len(got) != 1 {
		t.Fatalf("%d completions, want exactly 1", len(got))
	}
	f.checkManifest(exportsBucket, "bulk/killed.jsonl", schema.FormatJSONL, all, 2*time.Hour)
	checkDone(t, f, doneMessage(t, got[0]), job, schema.JobCounts{Listed: 1200, Signed: 1200}, 8)
	if n := f.names(exportsBucket, "bulk/killed.jsonl.parts/killed/s"); len(n) != 0 {
		t.Errorf("parts left behind: %v", n)
	}
}
