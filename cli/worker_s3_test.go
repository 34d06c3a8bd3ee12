package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/app"
	"github.com/linkissuer/linkissuer/config"
	"github.com/linkissuer/linkissuer/gcsstore"
	"github.com/linkissuer/linkissuer/internal/jobstest"
	"github.com/linkissuer/linkissuer/internal/minio"
	"github.com/linkissuer/linkissuer/jobs"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/s3store"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/worker"
)

// The worker's own wiring (app.JobsRunner, configured by $LINKISSUER_S3_*
// through config.Worker) serves a job whose source is a real S3 server
// (MinIO) and writes its manifest to that store (s3:// URI) or to Cloud
// Storage (gs://, here fake-gcs-server). Every manifest URL must download
// its object's bytes.
func TestWorkerJobsFromS3Source(t *testing.T) {
	srv, err := minio.Start(t.Context(), nil)
	minio.Need(t, err)
	t.Cleanup(srv.Stop)
	env := map[string]string{
		"LINKISSUER_S3_REGION":    srv.Region,
		"LINKISSUER_S3_ENDPOINT":  srv.Endpoint,
		"LINKISSUER_S3_ACCESS_ID": srv.AccessKey,
		"LINKISSUER_S3_SECRET":    srv.SecretKey,
	}
	var c config.Worker
	c.Register(flag.NewFlagSet("worker", flag.ContinueOnError), func(k string) string { return env[k] })
	cfg, err := app.S3Config(&c.S3)
	if err != nil {
		t.Fatal(err)
	}
	s3, err := s3store.NewClient(*cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, b := range []string{"media", "exports"} {
		if err := s3.CreateBucket(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][]byte{}
	for i := range 40 {
		key := fmt.Sprintf("in/%02d file.txt", i)
		want[key] = []byte(strings.Repeat(fmt.Sprint(i%10), i+1))
		if err := s3.PutObject(ctx, "media", key, bytes.NewReader(want[key]), int64(len(want[key])), jobs.WriteOptions{ContentType: "text/plain"}); err != nil {
			t.Fatal(err)
		}
	}

	gcsSrv, gcs := jobstest.GCS(t, "exports")
	urls := jobstest.HMACSigner(t, gcsSrv)
	pol, err := policy.New(policy.Config{Allow: []string{"media/in/**", "exports"}, MaxExpiry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := app.JobsRunner(&c.Service, gcs, urls, pol, nil, nil, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}

	for _, scheme := range []string{"s3", "gs"} {
		t.Run(scheme, func(t *testing.T) {
			uri := scheme + "://exports/media-" + scheme + ".jsonl"
			job := &schema.Job{
				JobID:     "s3-source-" + scheme,
				Source:    schema.JobSource{Store: schema.StoreS3, Endpoint: srv.Endpoint, Region: srv.Region, Bucket: "media", Prefix: "in/"},
				Method:    "GET",
				ExpiresIn: "10m",
				Output:    schema.JobOutput{Manifest: &schema.ManifestTarget{URI: uri, Format: schema.FormatJSONL}},
			}
			data, err := json.Marshal(job)
			if err != nil {
				t.Fatal(err)
			}
			outs, err := runner.Handle(ctx, &worker.Message{ID: "m-" + scheme, Data: data, Attributes: job.Attributes()})
			if err != nil {
				t.Fatal(err)
			}
			if len(outs) != 1 {
				t.Fatalf("%d outputs, want the completion", len(outs))
			}
			var done schema.JobDone
			if err := json.Unmarshal(outs[0].Data, &done); err != nil {
				t.Fatal(err)
			}
			if done.Counts.Signed != int64(len(want)) || done.Manifest == nil || done.Manifest.URI != uri {
				t.Fatalf("completion %+v, want %d signed into %s", done, len(want), uri)
			}
			// The manifest is where its URI says, and its URL serves it.
			var stored []byte
			var store jobs.Store = s3
			if scheme == "gs" {
				store = gcsstore.New(gcs)
			}
			rc, err := store.NewReader(ctx, "exports", "media-"+scheme+".jsonl")
			if err != nil {
				t.Fatalf("manifest not in the %s store: %v", scheme, err)
			}
			stored, err = io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			if got := jobstest.Get(t, done.Manifest.URL); !bytes.Equal(got, stored) {
				t.Errorf("manifest URL serves %d bytes, the stored manifest has %d", len(got), len(stored))
			}
			seen := 0
			for _, row := range jobstest.ManifestRows(t, stored, schema.FormatJSONL) {
				if !strings.HasPrefix(row.URL, srv.Endpoint+"/media/") {
					t.Errorf("%s: URL %s does not point at the S3 store", row.Object, strings.Split(row.URL, "?")[0])
				}
				if got := jobstest.Get(t, row.URL); !bytes.Equal(got, want[row.Object]) {
					t.Errorf("%s: URL serves %q, want %q", row.Object, got, want[row.Object])
				}
				seen++
			}
			if seen != len(want) {
				t.Errorf("%d manifest rows, want %d", seen, len(want))
			}
		})
	}
}
