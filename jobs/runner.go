package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/blob"
	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/worker"
)

// Defaults for Options.
const (
	DefaultConcurrency = 128
	DefaultShardSize   = 10000
	DefaultSplitAbove  = 20000
	// DefaultLinkBatch is how many link messages a topic-output job
	// publishes, and waits for, at a time.
	DefaultLinkBatch = 500
	// DefaultSignAttempts and DefaultSignPause: see Options.SignAttempts.
	DefaultSignAttempts = 3
	DefaultSignPause    = time.Second
)

// URLSigner signs one request: *sign.URLSigner, on a key or on the keyless
// engine.
type URLSigner interface {
	Sign(ctx context.Context, r sign.Request) (*sign.SignedURL, error)
}

// Auditor begins the audit record of a signed link; wait reports whether
// it was written (an error withholds the link). *audit.Recorder is one.
type Auditor interface {
	Begin(ctx context.Context, l audit.Link) (wait func(context.Context) error, err error)
}

// Backend is one store as jobs see it: where objects are listed and
// stat'ed, who signs their URLs, and where manifests may be written.
type Backend struct {
	Source Source
	// Signer signs URLs of objects in Source; they point at this store.
	Signer URLSigner
	// Store, if set, holds the manifests, parts and markers of jobs whose
	// manifest (or state location) is in this store; a job naming a
	// manifest in a store without one is refused.
	Store Store
	// ManifestSigner signs the URL of a manifest in Store; nil means
	// Signer.
	ManifestSigner URLSigner
}

// BackendFunc picks the backend of a store: the job's source (its store,
// endpoint and region), and for a manifest or state location at gs:// in a
// job whose source is not GCS, a JobSource with Store schema.StoreGCS and
// that location's bucket. A manifest at s3:// is written to the source's
// own backend. Errors that wrap schema.ErrInvalid or are permanent
// (failure.Classify) dead-letter the job.
type BackendFunc func(ctx context.Context, src *schema.JobSource) (Backend, error)

// GCSOnly serves every gcs source and location from b and refuses jobs on
// any other store (permanently).
func GCSOnly(b Backend) BackendFunc {
	return func(_ context.Context, src *schema.JobSource) (Backend, error) {
		if src.Dialect() != sign.GOOG4 {
			return Backend{}, failure.Permanent(schema.CodeInvalidField, fmt.Errorf("store %s is not served by this worker", src.Store))
		}
		return b, nil
	}
}

// SplitOptions enable splitting large jobs into shards.
type SplitOptions struct {
	// Above is the object count above which a job is split (default
	// DefaultSplitAbove).
	Above int
	// ShardSize is the target number of objects per shard (default
	// DefaultShardSize); it grows if a job would need more than
	// schema.MaxShards shards.
	ShardSize int
}

// Options configure a Runner. Zero fields take the defaults.
type Options struct {
	// Backends gives every job its source, signer and manifest store;
	// required. GCSOnly(Backend{...}) serves GCS alone; s3store.Backends
	// adds S3-compatible stores.
	Backends BackendFunc
	// Policy decides every object; required.
	Policy *policy.Policy
	// ManifestPolicy decides where manifests may be written and signed
	// (GET); nil means Policy.
	ManifestPolicy *policy.Policy
	// Publisher sends links of topic-output jobs (full topic names) and is
	// required for them; see worker.NamedTopics.
	Publisher worker.Publisher
	// Topics is the allow-list of full topic names that jobs may name as
	// notify_topic or output.topic; nil allows none (jobs naming one are
	// dead-lettered with CodeTopicNotAllowed).
	Topics *TopicAllow
	// TopicChecker, if set, is asked once per root job, before anything
	// is signed, whether its topics exist (jobs naming a missing one are
	// dead-lettered with CodeTopicNotFound). *worker.NamedTopics is one.
	TopicChecker TopicChecker
	// StateURI (gs://BUCKET/PREFIX) holds markers and error rows of
	// topic-output jobs, which have no manifest to keep them beside; such
	// jobs are refused without it.
	StateURI string
	// Split, if set, splits large jobs into shards published as Outputs to
	// worker.TopicJobs; nil runs every job whole.
	Split *SplitOptions
	// Concurrency bounds objects in flight (stat and sign) per job
	// (default DefaultConcurrency; use 2 x the engine's MaxInFlight when
	// keyless).
	Concurrency int
	// ChunkSize is the manifest upload chunk (default blob.DefaultChunkSize).
	ChunkSize int
	// LinkBatch is how many links a topic-output job publishes at a time.
	LinkBatch int
	// SignAttempts is how many times one object is signed within a
	// delivery while the signer fails transiently (the keyless engine
	// retries each of them itself); then the piece fails and is redelivered
	// (default DefaultSignAttempts).
	SignAttempts int
	// SignPause is the pause before the second attempt, growing linearly
	// (default DefaultSignPause).
	SignPause time.Duration
	// FinishLease is how long the finish lock of a sharded job is held
	// before another delivery may take it over (default
	// DefaultFinishLease); see acquireFinish.
	FinishLease time.Duration
	// Audit, if set, records every row a job signs and the manifest's own
	// URL, with the job's ID and submitter (audit.PathJob). Each row's
	// record is begun as the row is signed and awaited before the row is
	// released (its part or manifest committed, its link published); a
	// record not written fails the piece, which is redone (transient,
	// audit_unavailable). *audit.Recorder is one.
	Audit Auditor
	// OnObject, if set, is called once per accounted object: ok for a
	// signed one, !ok for an error row. Calls never overlap.
	OnObject func(ok bool)
	// Now is the clock (signing time, timings); nil means time.Now.
	Now func() time.Time
	// Logger receives one line per job and shard; nil means none.
	Logger *zap.Logger
}

// Validate reports missing or impossible options. It does not modify o.
func (o *Options) Validate() error {
	switch {
	case o == nil:
		return errors.New("jobs: no options")
	case o.Policy == nil:
		return errors.New("jobs: Options.Policy is required")
	case o.Backends == nil:
		return errors.New("jobs: Options.Backends is required")
	case o.Concurrency < 0, o.ChunkSize < 0, o.LinkBatch < 0, o.SignAttempts < 0, o.SignPause < 0, o.FinishLease < 0:
		return errors.New("jobs: Concurrency, ChunkSize, LinkBatch, SignAttempts, SignPause and FinishLease must not be negative")
	case o.Split != nil && (o.Split.Above < 0 || o.Split.ShardSize < 0):
		return errors.New("jobs: Split.Above and Split.ShardSize must not be negative")
	}
	if o.StateURI != "" {
		if _, _, err := splitStateURI(o.StateURI); err != nil {
			return err
		}
	}
	return nil
}

// Runner runs jobs. It is safe for concurrent use: each message is handled
// on its caller's goroutine, and every goroutine a job starts ends before
// Handle or Run returns.
type Runner struct {
	o Options
}

// New returns a Runner.
func New(o Options) (*Runner, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.ManifestPolicy == nil {
		o.ManifestPolicy = o.Policy
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = blob.DefaultChunkSize
	}
	if o.LinkBatch == 0 {
		o.LinkBatch = DefaultLinkBatch
	}
	if o.SignAttempts == 0 {
		o.SignAttempts = DefaultSignAttempts
	}
	if o.SignPause == 0 {
		o.SignPause = DefaultSignPause
	}
	if o.FinishLease == 0 {
		o.FinishLease = DefaultFinishLease
	}
	if o.Split != nil {
		s := *o.Split
		if s.Above == 0 {
			s.Above = DefaultSplitAbove
		}
		if s.ShardSize == 0 {
			s.ShardSize = DefaultShardSize
		}
		o.Split = &s
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return &Runner{o: o}, nil
}

// Handle implements worker.Handler for linkissuer.job.v1 messages: a root
// job is run whole or split into shard Outputs (to worker.TopicJobs); a
// shard is run, and the shard that completes its job composes the manifest
// and returns the completion Output (to the job's notify_topic, or
// worker.TopicResults).
func (r *Runner) Handle(ctx context.Context, m *worker.Message) ([]worker.Output, error) {
	job, err := schema.ParseJob(ctx, m.Data)
	if err != nil {
		return nil, err
	}
	t, err := r.prepare(ctx, job)
	if err != nil {
		return nil, err
	}
	log := r.o.Logger.With(zap.String("job_id", job.JobID), zap.String("message_id", m.ID))
	if job.Shard != nil {
		return r.runShard(ctx, t, log)
	}
	return r.runRoot(ctx, t, log)
}

// task is a job with everything resolved that its pieces need.
type task struct {
	job     *schema.Job
	rootID  string
	backend Backend
	glob    Glob
	expires time.Duration
	lay     layout
	// query holds the job's response parameters (the policy's are added
	// per object).
	query []sign.Param
	// manifestExpiry is the lifetime of the manifest's own URL.
	manifestExpiry time.Duration
	// store holds lay's objects, and manifestSigner signs the manifest's
	// URL: those of the backend of lay's location.
	store          Store
	manifestSigner URLSigner
}

// prepare checks what can be checked once per job: the policy for the
// whole job (bucket, method, expiry), the manifest location, the glob, the
// backend. Every error is permanent.
func (r *Runner) prepare(ctx context.Context, job *schema.Job) (*task, error) {
	t := &task{job: job, rootID: job.JobID}
	if job.Shard != nil {
		t.rootID = job.Shard.ParentJobID
	}
	var err error
	if t.expires, err = job.Expiry(); err != nil {
		return nil, err
	}
	// Shards were checked as their root job; the allow-list again (it is
	// free), the existence not.
	if err := r.checkTopics(ctx, job, job.Shard == nil); err != nil {
		return nil, err
	}
	if t.glob, err = CompileGlob(job.Source.Match); err != nil {
		return nil, failure.Permanent(schema.CodeInvalidField, err)
	}
	// A probe with no object name: a refusal of the bucket, method or
	// expiry refuses the whole job. (Object rules are checked per object,
	// and so, when an object rule refuses the probe, are method and
	// expiry: see jobRefusal.)
	if _, err := r.o.Policy.Check(policy.Request{Bucket: job.Source.Bucket, Method: job.Method, Expires: t.expires}); jobRefusal(err) {
		return nil, fmt.Errorf("job %s: %w", job.JobID, err)
	}
	t.query = job.ResponseQuery()
	if t.lay, err = newLayout(job, t.rootID, r.o.StateURI); err != nil {
		return nil, err
	}
	if m := job.Output.Manifest; m != nil {
		t.manifestExpiry = t.expires
		if _, err := r.o.ManifestPolicy.Check(policy.Request{Bucket: t.lay.bucket, Object: t.lay.manifest, Method: "GET", Expires: t.manifestExpiry}); err != nil {
			return nil, fmt.Errorf("job %s: manifest %s: %w", job.JobID, m.URI, err)
		}
	} else {
		if !t.lay.ok() {
			return nil, failure.Permanent(schema.CodeInvalidField, fmt.Errorf("job %s: topic output needs a state location for its markers and error rows, and this worker has none", job.JobID))
		}
		if r.o.Publisher == nil {
			return nil, failure.Permanent(schema.CodeInvalidField, fmt.Errorf("job %s: this worker cannot publish links to a topic", job.JobID))
		}
	}
	if t.backend, err = r.o.Backends(ctx, &job.Source); err != nil {
		return nil, err
	}
	// The backend of lay's location: the source's own for s3:// (only an
	// s3 source's), GCS's for gs://.
	out := t.backend
	switch s3Source := job.Source.Dialect() == sign.AWS4; {
	case t.lay.scheme == "s3" && !s3Source:
		out = Backend{}
	case t.lay.scheme != "s3" && s3Source:
		if out, err = r.o.Backends(ctx, &schema.JobSource{Store: schema.StoreGCS, Bucket: t.lay.bucket}); err != nil {
			return nil, err
		}
	}
	if out.Store == nil {
		return nil, failure.Permanent(schema.CodeInvalidField, fmt.Errorf("job %s: this worker cannot write manifests to %s", job.JobID, t.lay.uri("")))
	}
	t.store, t.manifestSigner = out.Store, out.ManifestSigner
	if t.manifestSigner == nil {
		t.manifestSigner = out.Signer
	}
	return t, nil
}

// jobRefusal reports a policy refusal that applies to every object of a
// job alike: the job is refused, not each object.
func jobRefusal(err error) bool {
	var ref *policy.Refusal
	if !errors.As(err, &ref) {
		return false
	}
	switch ref.Code {
	case policy.CodeBucketNotAllowed, policy.CodeMethodNotAllowed, policy.CodeExpiryOutOfRange:
		return true
	}
	return false
}

// mergeQuery returns the policy's parameters followed by the job's, except
// those the policy already sets: policy wins.
func mergeQuery(pol, job []sign.Param) []sign.Param {
	out := append([]sign.Param(nil), pol...)
	for _, p := range job {
		dup := false
		for _, q := range pol {
			dup = dup || q.Name == p.Name
		}
		if !dup {
			out = append(out, p)
		}
	}
	return out
}
