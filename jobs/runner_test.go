package jobs

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/internal/jobstest"
	"github.com/linkissuer/linkissuer/internal/slowtest"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/worker"
)

const notifyTopic = "projects/linkissuer-test/topics/job-done"

// seedMedia creates the objects most tests use: 30 under public/img/, 10
// under public/doc/ (all allowed by policy) and 5 under private/ (refused).
func seedMedia(f *fixture) (public, private map[string]object) {
	f.seed("public/img/%03d.jpg", 30)
	f.seed("public/doc/%03d.pdf", 10)
	f.seed("private/%03d", 5)
	return f.objects("public/"), f.objects("private/")
}

func manifestJob(id, uri string, format schema.ManifestFormat, src schema.JobSource) *schema.Job {
	return &schema.Job{
		JobID: id, Source: src, Method: "GET", ExpiresIn: "2h",
		Output:      schema.JobOutput{Manifest: &schema.ManifestTarget{URI: uri, Format: format}},
		NotifyTopic: notifyTopic,
	}
}

func pick(all map[string]object, keep func(string) bool) map[string]object {
	out := map[string]object{}
	for n, o := range all {
		if keep(n) {
			out[n] = o
		}
	}
	return out
}

// TestJobs runs whole jobs of each source kind in both formats and checks
// the manifest row by row, the errors file and the completion message.
func TestJobs(t *testing.T) {
	t.Parallel()
	for _, format := range []schema.ManifestFormat{schema.FormatJSONL, schema.FormatCSV} {
		for _, tc := range []struct {
			name   string
			source func(public map[string]object) schema.JobSource
			// want selects the rows expected from the public objects.
			want       func(name string) bool
			wantErrors map[string]schema.ReasonCode
			counts     schema.JobCounts
		}{
			{
				name: "prefix",
				source: func(map[string]object) schema.JobSource {
					return schema.JobSource{Bucket: mediaBucket, Prefix: "public/"}
				},
				want:   func(string) bool { return true },
				counts: schema.JobCounts{Listed: 40, Signed: 40},
			},
			{
				name:   "whole bucket with refusals",
				source: func(map[string]object) schema.JobSource { return schema.JobSource{Bucket: mediaBucket} },
				want:   func(string) bool { return true },
				wantErrors: map[string]schema.ReasonCode{
					"private/000": schema.CodePolicyRefused, "private/001": schema.CodePolicyRefused, "private/002": schema.CodePolicyRefused,
					"private/003": schema.CodePolicyRefused, "private/004": schema.CodePolicyRefused,
				},
				counts: schema.JobCounts{Listed: 45, Signed: 40, Skipped: 5},
			},
			{
				name: "glob",
				source: func(map[string]object) schema.JobSource {
					return schema.JobSource{Bucket: mediaBucket, Match: "**/{img,doc}/00[1-3].*"}
				},
				want: func(n string) bool {
					return slices.Contains([]string{"public/img/001.jpg", "public/img/002.jpg", "public/img/003.jpg",
						"public/doc/001.pdf", "public/doc/002.pdf", "public/doc/003.pdf"}, n)
				},
				counts: schema.JobCounts{Listed: 6, Signed: 6},
			},
			{
				name: "explicit list",
				source: func(public map[string]object) schema.JobSource {
					return schema.JobSource{Bucket: mediaBucket, Objects: []schema.ObjectRef{
						{Name: "public/img/007.jpg"},
						{Name: "public/doc/004.pdf", Generation: public["public/doc/004.pdf"].generation},
						{Name: "private/002"},
						{Name: "public/img/missing.jpg"},
					}}
				},
				want: func(n string) bool { return n == "public/img/007.jpg" || n == "public/doc/004.pdf" },
				wantErrors: map[string]schema.ReasonCode{
					"private/002": schema.CodePolicyRefused, "public/img/missing.jpg": CodeObjectNotFound,
				},
				counts: schema.JobCounts{Listed: 4, Signed: 2, Skipped: 1, Failed: 1},
			},
		} {
			t.Run(string(format)+"/"+tc.name, func(t *testing.T) {
				f := newFixture(t)
				public, _ := seedMedia(f)
				r := f.runner(nil)
				name := "out/" + strings.ReplaceAll(tc.name, " ", "-") + "." + string(format)
				job := manifestJob("job-1", "gs://"+exportsBucket+"/"+name, format, tc.source(public))
				outs, err := r.Handle(context.Background(), jobMessage(t, job))
				if err != nil {
					t.Fatal(err)
				}
				if len(outs) != 1 || outs[0].Topic != notifyTopic {
					t.Fatalf("outputs %+v, want one completion to %s", outs, notifyTopic)
				}
				done := decodeDone(t, outs[0])
				f.checkManifest(exportsBucket, name, format, pick(public, tc.want), 2*time.Hour)
				checkDone(t, f, done, job, tc.counts, 1)
				errName := ErrorsObject(name)
				if tc.wantErrors == nil {
					if done.ErrorsURI != "" || f.read(exportsBucket, errName) != nil {
						t.Errorf("errors file %q written for a job without errors", done.ErrorsURI)
					}
					return
				}
				if done.ErrorsURI != "gs://"+exportsBucket+"/"+errName {
					t.Errorf("errors_uri %q, want gs://%s/%s", done.ErrorsURI, exportsBucket, errName)
				}
				if got := f.errorRows(exportsBucket, errName, format); !maps(got, tc.wantErrors) {
					t.Errorf("error rows %v, want %v", got, tc.wantErrors)
				}
			})
		}
	}
}

func maps[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// checkDone checks a completion message against its job, and that its
// manifest URL verifies and downloads the manifest.
func checkDone(t *testing.T, f *fixture, d *schema.JobDone, job *schema.Job, counts schema.JobCounts, shards int) {
	t.Helper()
	m := job.Output.Manifest
	if d.JobID != job.JobID || d.Counts != counts || d.Shards != shards {
		t.Errorf("completion: job %s, counts %+v, shards %d; want %s, %+v, %d", d.JobID, d.Counts, d.Shards, job.JobID, counts, shards)
	}
	if d.Manifest == nil || d.Manifest.URI != m.URI || d.Manifest.Format != m.Format {
		t.Fatalf("completion manifest %+v, want %s (%s)", d.Manifest, m.URI, m.Format)
	}
	if got := d.Manifest.URLExpiresAt.Sub(d.FinishedAt.Truncate(time.Second)); got != 2*time.Hour {
		t.Errorf("manifest URL lives %s after finished_at, want 2h", got)
	}
	if d.DurationMS < 0 || d.FinishedAt.Before(d.StartedAt) {
		t.Errorf("timings: %s .. %s (%d ms)", d.StartedAt, d.FinishedAt, d.DurationMS)
	}
	_, object, _ := strings.Cut(strings.TrimPrefix(m.URI, "gs://"), "/")
	want := f.read(exportsBucket, object)
	if got := jobstest.Get(t, d.Manifest.URL); !bytes.Equal(got, want) {
		t.Errorf("the manifest URL serves %d bytes, the manifest has %d", len(got), len(want))
	}
}

// TestRedeliveredJobIsNotRedone: a second delivery of a finished job signs
// nothing, leaves the manifest as it was, and announces the same
// completion (at-least-once).
func TestRedeliveredJobIsNotRedone(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedMedia(f)
	signer := &countingSigner{inner: f.signer}
	r := f.runner(func(o *Options) { o.Backends = f.backends(signer, nil) })
	job := manifestJob("again", "gs://exports/again.jsonl", schema.FormatJSONL, schema.JobSource{Bucket: mediaBucket, Prefix: "public/"})
	first, err := r.Handle(context.Background(), jobMessage(t, job))
	if err != nil {
		t.Fatal(err)
	}
	manifest, calls := f.read(exportsBucket, "again.jsonl"), signer.calls.Load()
	second, err := r.Handle(context.Background(), jobMessage(t, job))
	if err != nil {
		t.Fatal(err)
	}
	if signer.calls.Load() != calls {
		t.Errorf("the redelivery signed %d more URLs", signer.calls.Load()-calls)
	}
	if !bytes.Equal(f.read(exportsBucket, "again.jsonl"), manifest) {
		t.Error("the redelivery rewrote the manifest")
	}
	if len(second) != 1 || !bytes.Equal(second[0].Data, first[0].Data) {
		t.Errorf("the redelivery announced %v, want the first completion again", second)
	}
}

// TestShardedJob splits a job, runs its shards in random order (one twice)
// and checks that exactly one shard finishes it, that redeliveries are
// no-ops, and that the composed manifest and errors file are exact.
func TestShardedJob(t *testing.T) {
	t.Parallel()
	for _, format := range []schema.ManifestFormat{schema.FormatJSONL, schema.FormatCSV} {
		for _, tc := range []struct {
			name   string
			source func(public, private map[string]object) schema.JobSource
			shards int
		}{
			{
				name:   "prefix",
				source: func(_, _ map[string]object) schema.JobSource { return schema.JobSource{Bucket: mediaBucket} },
				shards: 6, // 45 objects, 8 per shard
			},
			{
				name: "list",
				source: func(public, private map[string]object) schema.JobSource {
					var refs []schema.ObjectRef
					for _, n := range slices.Sorted(keys(public, private)) {
						refs = append(refs, schema.ObjectRef{Name: n})
					}
					return schema.JobSource{Bucket: mediaBucket, Objects: refs}
				},
				shards: 6,
			},
		} {
			t.Run(string(format)+"/"+tc.name, func(t *testing.T) {
				f := newFixture(t)
				public, private := seedMedia(f)
				signer := &countingSigner{inner: f.signer}
				r := f.runner(func(o *Options) {
					o.Backends = f.backends(signer, nil)
					o.Split = &SplitOptions{Above: 10, ShardSize: 8}
				})
				name := "sharded/" + tc.name + "." + string(format)
				job := manifestJob("big-7", "gs://exports/"+name, format, tc.source(public, private))
				root := jobMessage(t, job)
				shards, err := r.Handle(context.Background(), root)
				if err != nil {
					t.Fatal(err)
				}
				if len(shards) != tc.shards {
					t.Fatalf("%d shard outputs, want %d", len(shards), tc.shards)
				}
				again, err := r.Handle(context.Background(), root)
				if err != nil {
					t.Fatal(err)
				}
				for i := range shards {
					if shards[i].Topic != worker.TopicJobs || !bytes.Equal(again[i].Data, shards[i].Data) {
						t.Fatalf("shard %d: a redelivered root job republished a different shard", i)
					}
				}
				order := rand.Perm(len(shards))
				order = append(order, order[0]) // a duplicate delivery
				var completions []worker.Output
				ran := map[int]bool{}
				for _, i := range order {
					calls := signer.calls.Load()
					outs, err := r.Handle(context.Background(), &worker.Message{ID: "s", Data: shards[i].Data, Attributes: shards[i].Attributes})
					if err != nil {
						t.Fatalf("shard %d: %v", i, err)
					}
					if ran[i] && signer.calls.Load() != calls {
						t.Errorf("shard %d redelivered: signed again", i)
					}
					ran[i] = true
					completions = append(completions, outs...)
				}
				if len(completions) != 1 {
					t.Fatalf("%d completions, want 1", len(completions))
				}
				done := decodeDone(t, completions[0])
				f.checkManifest(exportsBucket, name, format, public, 2*time.Hour)
				checkDone(t, f, done, job, schema.JobCounts{Listed: 45, Signed: 40, Skipped: 5}, tc.shards)
				if got := f.errorRows(exportsBucket, ErrorsObject(name), format); len(got) != len(private) {
					t.Errorf("%d error rows, want %d", len(got), len(private))
				}
				// Parts and temporary objects are gone; the state stays.
				var left []string
				for _, n := range f.names(exportsBucket, name+".parts/") {
					rest := strings.TrimPrefix(n, name+".parts/big-7/")
					if !strings.HasPrefix(rest, "done/") && rest != "plan.json" && rest != "finish.lock" && rest != "complete.json" {
						left = append(left, rest)
					}
				}
				if len(left) > 0 {
					t.Errorf("temporary objects left: %v", left)
				}
			})
		}
	}
}

func keys(ms ...map[string]object) func(func(string) bool) {
	return func(yield func(string) bool) {
		for _, m := range ms {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		}
	}
}

// TestKilledJobLeavesNoManifest cancels a job after more than an upload
// chunk of rows went out: the manifest must not exist, the error must ask
// for redelivery, and the redelivery writes it whole.
func TestKilledJobLeavesNoManifest(t *testing.T) {
	t.Parallel()
	slowtest.Require(t)
	f := newFixture(t)
	all := f.seed("public/many/%04d", 700)
	ctx, kill := context.WithCancel(context.Background())
	defer kill()
	signer := &countingSigner{inner: f.signer, hook: func(ctx context.Context, n int64) error {
		if n == 650 {
			kill()
		}
		return ctx.Err()
	}}
	r := f.runner(func(o *Options) {
		o.Backends = f.backends(signer, nil)
		o.ChunkSize = 256 << 10 // GCS's minimum: 650 rows are over two chunks
	})
	job := manifestJob("killed", "gs://exports/killed.jsonl", schema.FormatJSONL, schema.JobSource{Bucket: mediaBucket, Prefix: "public/"})
	_, err := r.Handle(ctx, jobMessage(t, job))
	if c := failure.Classify(err); c.Kind != failure.KindTransient {
		t.Fatalf("killed job: %v (%s), want a retry", err, c.Kind)
	}
	if f.read(exportsBucket, "killed.jsonl") != nil {
		t.Fatal("a killed job left a manifest behind")
	}
	signer.hook = nil
	outs, err := r.Handle(context.Background(), jobMessage(t, job))
	if err != nil {
		t.Fatal(err)
	}
	f.checkManifest(exportsBucket, "killed.jsonl", schema.FormatJSONL, all, 2*time.Hour)
	checkDone(t, f, decodeDone(t, outs[0]), job, schema.JobCounts{Listed: 700, Signed: 700}, 1)
}

// TestRefusedJobs: what applies to the whole job is refused once, as a
// permanent error, before anything is signed.
func TestRefusedJobs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedMedia(f)
	for _, tc := range []struct {
		name string
		edit func(*schema.Job)
		code string
	}{
		{"bucket not allowed", func(j *schema.Job) { j.Source.Bucket = "secrets" }, string(schema.CodePolicyRefused)},
		{"method not allowed", func(j *schema.Job) { j.Method = "DELETE" }, string(schema.CodePolicyRefused)},
		{"expiry above policy", func(j *schema.Job) { j.ExpiresIn = "2d" }, string(schema.CodePolicyRefused)},
		{"manifest outside policy", func(j *schema.Job) { j.Output.Manifest.URI = "gs://media/private/x.jsonl" }, string(schema.CodePolicyRefused)},
		{"topic output without state", func(j *schema.Job) {
			j.Output = schema.JobOutput{Topic: "projects/linkissuer-test/topics/links"}
		}, string(schema.CodeInvalidField)},
		{"output topic of another project", func(j *schema.Job) {
			j.Output = schema.JobOutput{Topic: "projects/p/topics/links"}
		}, string(CodeTopicNotAllowed)},
		{"notify topic of another project", func(j *schema.Job) { j.NotifyTopic = "projects/p/topics/done" }, string(CodeTopicNotAllowed)},
		{"s3 source on a GCS worker", func(j *schema.Job) {
			j.Source.Store, j.Source.Region = schema.StoreS3, "us-east-1"
		}, string(schema.CodeInvalidField)},
		{"invalid message", func(j *schema.Job) { j.JobID = "" }, string(schema.CodeMissingField)},
		{"s3 manifest for a gcs source", func(j *schema.Job) { j.Output.Manifest.URI = "s3://exports/refused.jsonl" }, string(schema.CodeInvalidField)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			signer := &countingSigner{inner: f.signer}
			r := f.runner(func(o *Options) { o.Backends = f.backends(signer, nil) })
			job := manifestJob("refused", "gs://exports/refused.jsonl", schema.FormatJSONL, schema.JobSource{Bucket: mediaBucket, Prefix: "public/"})
			tc.edit(job)
			_, err := r.Handle(context.Background(), jobMessage(t, job))
			c := failure.Classify(err)
			if c.Kind != failure.KindPermanent || c.Reason() != tc.code {
				t.Errorf("got %s (%s): %v; want dead_letter (%s)", c.Kind, c.Reason(), err, tc.code)
			}
			if signer.calls.Load() != 0 {
				t.Errorf("signed %d URLs for a refused job", signer.calls.Load())
			}
		})
	}
}

// An s3:// manifest goes to the source backend's Store; a backend without
// one refuses the job before anything is signed or written.
func TestS3ManifestNeedsABackendStore(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedMedia(f)
	signer := &countingSigner{inner: f.signer}
	r := f.runner(func(o *Options) {
		o.Backends = func(context.Context, *schema.JobSource) (Backend, error) {
			return Backend{Source: f.store, Signer: signer}, nil // no Store
		}
	})
	job := manifestJob("s3-nostore", "s3://exports/x.jsonl", schema.FormatJSONL,
		schema.JobSource{Store: schema.StoreS3, Region: "us-east-1", Bucket: mediaBucket, Prefix: "public/"})
	_, err := r.Handle(context.Background(), jobMessage(t, job))
	if c := failure.Classify(err); c.Kind != failure.KindPermanent || c.Reason() != string(schema.CodeInvalidField) {
		t.Errorf("got %s (%s): %v; want dead_letter (invalid_field)", c.Kind, c.Reason(), err)
	}
	if signer.calls.Load() != 0 {
		t.Errorf("signed %d URLs for a refused job", signer.calls.Load())
	}
	if names := f.names(exportsBucket, ""); len(names) != 0 {
		t.Errorf("a refused job wrote %v", names)
	}
}

// TestMissingBucketIsPermanent: listing a bucket that does not exist is
// not worth redelivering.
func TestMissingBucketIsPermanent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pol, err := policy.New(policy.Config{Allow: []string{"media-gone", exportsBucket}})
	if err != nil {
		t.Fatal(err)
	}
	r := f.runner(func(o *Options) { o.Policy = pol })
	job := manifestJob("nobucket", "gs://exports/x.jsonl", schema.FormatJSONL, schema.JobSource{Bucket: "media-gone"})
	job.ExpiresIn = "15m"
	_, err = r.Handle(context.Background(), jobMessage(t, job))
	if c := failure.Classify(err); c.Kind != failure.KindPermanent || !errors.Is(err, ErrNotFound) {
		t.Errorf("missing bucket: %v (%s), want a dead letter wrapping ErrNotFound", err, c.Kind)
	}
}
