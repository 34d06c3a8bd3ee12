package s3store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/linkissuer/linkissuer/gcsstore"
	"github.com/linkissuer/linkissuer/internal/jobstest"
	"github.com/linkissuer/linkissuer/internal/slowtest"
	"github.com/linkissuer/linkissuer/jobs"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/s3store"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/worker"
)

// bulkObjects is how many objects the bulk job signs: one full
// ListObjectsV2 page.
const bulkObjects = 1000

// bulkContent is object i's content: distinct, of varying size.
func bulkContent(i int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("object %04d\n", i)), i%7+1)
}

// seedBulk writes bulkObjects objects under bulk/ with 16 uploads in flight.
func seedBulk(t *testing.T, f *fixture) map[string][]byte {
	t.Helper()
	want := make(map[string][]byte, bulkObjects)
	for i := range bulkObjects {
		want[fmt.Sprintf("bulk/obj %04d.txt", i)] = bulkContent(i)
	}
	g, ctx := errgroup.WithContext(t.Context())
	g.SetLimit(16)
	for name, data := range want {
		g.Go(func() error {
			return f.client.PutObject(ctx, f.bucket, name, bytes.NewReader(data), int64(len(data)), jobs.WriteOptions{ContentType: "text/plain"})
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return want
}

// manifestStore is where a bulk job keeps its manifest: MinIO itself (an
// s3:// URI: the runner writes it through the backend's Store) or GCS
// (fake-gcs-server in process, the runner's Options.Store).
type manifestStore struct {
	scheme string
	store  jobs.Store
	signer *sign.URLSigner
	bucket string
}

func minioManifests(f *fixture) manifestStore {
	return manifestStore{scheme: "s3", store: f.client, signer: f.signer, bucket: f.bucket}
}

func gcsManifests(t *testing.T) manifestStore {
	t.Helper()
	srv, client := jobstest.GCS(t, "exports")
	return manifestStore{scheme: "gs", store: gcsstore.New(client), signer: jobstest.HMACSigner(t, srv), bucket: "exports"}
}

// TestMinIOBulkJob runs a linkissuer.job.v1 job over 1,000 MinIO objects
// through the jobs runner, with the s3store backend as its source, whole
// and split into shards, with the manifest kept on MinIO (composed there
// from shard parts) or on GCS. Every manifest URL must download its
// object's bytes from MinIO, and the completion's manifest URL must serve
// the manifest.
func TestMinIOBulkJob(t *testing.T) {
	slowtest.Require(t)
	f := newFixture(t)
	want := seedBulk(t, f)
	backends, err := s3store.NewBackends([]s3store.Config{f.cfg}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		manifests func(t *testing.T) manifestStore
		split     *jobs.SplitOptions
		format    schema.ManifestFormat
		shards    int
	}{
		{name: "whole, manifest on MinIO", manifests: func(*testing.T) manifestStore { return minioManifests(f) }, format: schema.FormatJSONL, shards: 1},
		{name: "4 shards, manifest composed on MinIO", manifests: func(*testing.T) manifestStore { return minioManifests(f) }, split: &jobs.SplitOptions{Above: 300, ShardSize: 250}, format: schema.FormatCSV, shards: 4},
		{name: "whole, manifest on GCS", manifests: gcsManifests, format: schema.FormatJSONL, shards: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := tc.manifests(t)
			pol, err := policy.New(policy.Config{Allow: []string{f.bucket + "/bulk/**", ms.bucket + "/exports/**"}, MaxExpiry: 24 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			// gs:// locations are GCS's; an s3:// manifest must not go
			// there.
			gcs := gcsManifests(t)
			if ms.scheme == "gs" {
				gcs = ms
			}
			runner, err := jobs.New(jobs.Options{
				Backends:    backends.Func(jobs.Backend{Store: gcs.store, Signer: gcs.signer}),
				Policy:      pol,
				Split:       tc.split,
				Concurrency: 32,
			})
			if err != nil {
				t.Fatal(err)
			}
			manifest := fmt.Sprintf("exports/%d.%s", time.Now().UnixNano(), tc.format)
			job := &schema.Job{
				JobID:     fmt.Sprintf("bulk-%d", time.Now().UnixNano()),
				Source:    schema.JobSource{Store: schema.StoreS3, Endpoint: f.cfg.Endpoint, Region: f.cfg.Region, Bucket: f.bucket, Prefix: "bulk/"},
				Method:    "GET",
				ExpiresIn: "1h",
				Output:    schema.JobOutput{Manifest: &schema.ManifestTarget{URI: ms.scheme + "://" + ms.bucket + "/" + manifest, Format: tc.format}},
			}
			done := runJob(t, runner, job)
			if done.Counts != (schema.JobCounts{Listed: bulkObjects, Signed: bulkObjects}) || done.Shards != tc.shards {
				t.Errorf("completion counts %+v over %d shards, want %d signed over %d", done.Counts, done.Shards, bulkObjects, tc.shards)
			}
			data := readAll(t, ms.store, ms.bucket, manifest)
			rows := jobstest.ManifestRows(t, data, tc.format)
			if len(rows) != bulkObjects {
				t.Errorf("%d manifest rows, want %d", len(rows), bulkObjects)
			}
			checkRows(t, rows, want, f)
			if done.Manifest == nil {
				t.Fatal("completion has no manifest")
			}
			if done.Manifest.URI != job.Output.Manifest.URI {
				t.Errorf("completion names manifest %s, want %s", done.Manifest.URI, job.Output.Manifest.URI)
			}
			if ms.scheme == "s3" {
				if _, err := gcs.store.NewReader(t.Context(), ms.bucket, manifest); !errors.Is(err, jobs.ErrNotFound) {
					t.Errorf("an s3:// manifest reached the GCS store too: %v", err)
				}
			}
			if got := jobstest.Get(t, done.Manifest.URL); !bytes.Equal(got, data) {
				t.Errorf("the completion's manifest URL serves %d bytes, the manifest has %d", len(got), len(data))
			}
		})
	}
}

// runJob delivers job to runner, and its shards if it splits, and returns
// the one completion.
func runJob(t *testing.T, runner *jobs.Runner, job *schema.Job) *schema.JobDone {
	t.Helper()
	data, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	queue := []*worker.Message{{ID: "root", Data: data, Attributes: job.Attributes()}}
	var completions []worker.Output
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		outs, err := runner.Handle(t.Context(), m)
		if err != nil {
			t.Fatalf("message %s: %v", m.ID, err)
		}
		for i, o := range outs {
			if o.Topic == worker.TopicJobs {
				queue = append(queue, &worker.Message{ID: fmt.Sprintf("%s.%d", m.ID, i), Data: o.Data, Attributes: o.Attributes})
			} else {
				completions = append(completions, o)
			}
		}
	}
	if len(completions) != 1 {
		t.Fatalf("%d completions, want 1", len(completions))
	}
	var done schema.JobDone
	if err := json.Unmarshal(completions[0].Data, &done); err != nil {
		t.Fatal(err)
	}
	return &done
}

// readAll reads an object whole through store, failing the test on an
// error.
func readAll(t *testing.T, store jobs.Store, bucket, name string) []byte {
	t.Helper()
	r, err := store.NewReader(t.Context(), bucket, name)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// checkRows downloads every row's URL from MinIO (16 at a time) and
// compares the bytes; each object must appear exactly once.
func checkRows(t *testing.T, rows []*schema.ManifestRow, want map[string][]byte, f *fixture) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range rows {
		seen[r.Object]++
	}
	for name := range want {
		if seen[name] != 1 {
			t.Errorf("%s appears %d times in the manifest, want once", name, seen[name])
		}
	}
	var mu sync.Mutex
	bad := 0
	g, ctx := errgroup.WithContext(t.Context())
	g.SetLimit(16)
	for _, r := range rows {
		g.Go(func() error {
			body, status, err := fetch(ctx, r.URL)
			if err != nil {
				return err
			}
			ok := status == http.StatusOK && bytes.Equal(body, want[r.Object]) && r.Size == int64(len(want[r.Object])) &&
				strings.HasPrefix(r.URL, f.cfg.Endpoint+"/"+f.bucket+"/") && strings.Contains(r.URL, "X-Amz-Algorithm=AWS4-HMAC-SHA256")
			if !ok {
				mu.Lock()
				if bad++; bad <= 5 {
					t.Errorf("%s: status %d, %d bytes (want %d), row size %d", r.Object, status, len(body), len(want[r.Object]), r.Size)
				}
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if bad > 0 {
		t.Errorf("%d of %d manifest URLs did not download their object", bad, len(rows))
	}
}

func fetch(ctx context.Context, url string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return body, resp.StatusCode, err
}
