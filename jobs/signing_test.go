package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/internal/iamtest"
	"github.com/linkissuer/linkissuer/internal/jobstest"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/sign/engine"
	"github.com/linkissuer/linkissuer/sign/iam"
	"github.com/linkissuer/linkissuer/worker"
)

// TestSignFailuresAreErrorRows: an object whose request the signer refuses
// as given (an input error) is an error row (sign_refused), counted as
// failed, and every other object is in the manifest.
func TestSignFailuresAreErrorRows(t *testing.T) {
	t.Parallel()
	for _, format := range []schema.ManifestFormat{schema.FormatJSONL, schema.FormatCSV} {
		for _, tc := range []struct {
			name string
			err  error
			code schema.ReasonCode
		}{
			{"refused", &sign.InputError{Field: "object", Reason: "the signer refuses this name"}, schema.CodeSignRefused},
			{"wrapped refusal", fmt.Errorf("sign: %w", &sign.InputError{Field: "query", Reason: "too long"}), schema.CodeSignRefused},
		} {
			t.Run(string(format)+"/"+strings.ReplaceAll(tc.name, " ", "-"), func(t *testing.T) {
				f := newFixture(t)
				public, _ := seedMedia(f)
				bad := pick(public, func(n string) bool {
					return slices.Contains([]string{"public/img/000.jpg", "public/img/005.jpg", "public/img/010.jpg", "public/img/015.jpg",
						"public/img/020.jpg", "public/img/025.jpg", "public/doc/007.pdf"}, n)
				})
				signer := &countingSigner{inner: f.signer, fail: func(r sign.Request) error {
					if _, ok := bad[r.Object]; ok {
						return tc.err
					}
					return nil
				}}
				r := f.runner(func(o *Options) { o.Backends = f.backends(signer, f.signer) })
				name := "failing/" + strings.ReplaceAll(tc.name, " ", "-") + "." + string(format)
				job := manifestJob("fails", "gs://exports/"+name, format, schema.JobSource{Bucket: mediaBucket, Prefix: "public/"})
				outs, err := r.Handle(context.Background(), jobMessage(t, job))
				if err != nil {
					t.Fatal(err)
				}
				if len(outs) != 1 {
					t.Fatalf("%d outputs, want one completion", len(outs))
				}
				done := decodeDone(t, outs[0])
				checkDone(t, f, done, job, schema.JobCounts{Listed: 40, Signed: 33, Failed: 7}, 1)
				f.checkManifest(exportsBucket, name, format, pick(public, func(n string) bool { _, b := bad[n]; return !b }), 2*time.Hour)
				if done.ErrorsURI != "gs://exports/"+ErrorsObject(name) {
					t.Errorf("errors_uri %q", done.ErrorsURI)
				}
				want := map[string]schema.ReasonCode{}
				for n := range bad {
					want[n] = tc.code
				}
				if got := f.errorRows(exportsBucket, ErrorsObject(name), format); !maps(got, want) {
					t.Errorf("error rows %v, want %v", got, want)
				}
				if n := signer.calls.Load(); n != 40 {
					t.Errorf("%d signing calls, want 40 (no retries of a permanent failure)", n)
				}
			})
		}
	}
}

// TestRetryableSignErrorRedelivers: a signing error that is not a refusal
// of the request (the signer is throttled, unavailable, gave up after its
// retries, or its account is denied) is not an error row: the piece fails
// as a transient error, so the worker redelivers the message, and nothing
// is written. The redelivery, with the signer back, writes the whole job.
func TestRetryableSignErrorRedelivers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"retryable", &sign.RetryableError{Err: errors.New("429 quota exceeded")}},
		{"wrapped retryable", fmt.Errorf("keyless: %w", &sign.RetryableError{Err: errors.New("503 backend unavailable")})},
		{"gave up", &engine.GiveUpError{Attempts: 8, Err: &iam.Error{Code: 503, Message: "backend unavailable"}}},
		{"failed", errors.New("signing key disabled")},
		{"wrapped failure", fmt.Errorf("iam: %w", errors.New("permission denied on the key"))},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "-"), func(t *testing.T) {
			f := newFixture(t)
			public, _ := seedMedia(f)
			signer := &countingSigner{inner: f.signer, fail: func(r sign.Request) error {
				if r.Object == "public/img/012.jpg" {
					return tc.err
				}
				return nil
			}}
			r := f.runner(func(o *Options) { o.Backends = f.backends(signer, f.signer) })
			job := manifestJob("throttled", "gs://exports/throttled.csv", schema.FormatCSV, schema.JobSource{Bucket: mediaBucket, Prefix: "public/"})
			outs, err := r.Handle(context.Background(), jobMessage(t, job))
			if c := failure.Classify(err); c.Kind != failure.KindTransient || failure.Classify(err).Component != failure.Signer || len(outs) != 0 {
				t.Fatalf("got %d outputs, %v (%s); want a retryable error and a redelivery", len(outs), err, c.Kind)
			}
			if names := f.names(exportsBucket, ""); len(names) != 0 {
				t.Fatalf("a failed delivery left %v", names)
			}
			signer.fail = nil
			outs, err = r.Handle(context.Background(), jobMessage(t, job))
			if err != nil {
				t.Fatal(err)
			}
			checkDone(t, f, decodeDone(t, outs[0]), job, schema.JobCounts{Listed: 40, Signed: 40}, 1)
			f.checkManifest(exportsBucket, "throttled.csv", schema.FormatCSV, public, 2*time.Hour)
			if f.read(exportsBucket, ErrorsObject("throttled.csv")) != nil {
				t.Error("an errors file for a job whose every object was signed")
			}
		})
	}
}

// TestResponseParams: a job's response_params are signed into every URL
// (the URL verifies, carries the value, and the server honours it), and a
// parameter the policy sets wins over the job's.
func TestResponseParams(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		policy []sign.Param
		job    map[string]string
		want   map[string]string
	}{
		{
			name: "job",
			job:  map[string]string{"response-content-disposition": `attachment; filename="export.bin"`, "response-content-type": "application/octet-stream"},
			want: map[string]string{"response-content-disposition": `attachment; filename="export.bin"`, "response-content-type": "application/octet-stream"},
		},
		{
			name:   "policy wins",
			policy: []sign.Param{{Name: "response-content-disposition", Value: "inline"}},
			job:    map[string]string{"response-content-disposition": "attachment", "response-content-type": "text/plain"},
			want:   map[string]string{"response-content-disposition": "inline", "response-content-type": "text/plain"},
		},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "-"), func(t *testing.T) {
			f := newFixture(t)
			public, _ := seedMedia(f)
			pol, err := policy.New(policy.Config{Allow: []string{mediaBucket + "/public/**", exportsBucket}, MaxExpiry: 24 * time.Hour, ResponseParams: tc.policy})
			if err != nil {
				t.Fatal(err)
			}
			r := f.runner(func(o *Options) { o.Policy = pol })
			job := manifestJob("params", "gs://exports/params.jsonl", schema.FormatJSONL, schema.JobSource{Bucket: mediaBucket, Prefix: "public/"})
			job.ResponseParams = tc.job
			outs, err := r.Handle(context.Background(), jobMessage(t, job))
			if err != nil {
				t.Fatal(err)
			}
			checkDone(t, f, decodeDone(t, outs[0]), job, schema.JobCounts{Listed: 40, Signed: 40}, 1)
			// Every URL verifies with its parameters (they are signed).
			f.checkManifest(exportsBucket, "params.jsonl", schema.FormatJSONL, public, 2*time.Hour)
			rows := jobstest.ManifestRows(t, f.read(exportsBucket, "params.jsonl"), schema.FormatJSONL)
			for _, row := range rows {
				u, err := url.Parse(row.URL)
				if err != nil {
					t.Fatal(err)
				}
				q := u.Query()
				for k, v := range tc.want {
					if got := q[k]; len(got) != 1 || got[0] != v {
						t.Errorf("%s: %s = %q, want %q once", row.Object, k, got, v)
					}
				}
				if !strings.Contains(q.Get("X-Goog-SignedHeaders"), "host") || q.Get("X-Goog-Signature") == "" {
					t.Errorf("%s: not a signed URL: %s", row.Object, row.URL)
				}
			}
			// The server honours the signed disposition.
			resp := get(t, rows[0].URL)
			if got := resp.Header.Get("Content-Disposition"); got != tc.want["response-content-disposition"] {
				t.Errorf("GET: Content-Disposition %q, want %q", got, tc.want["response-content-disposition"])
			}
		})
	}
}

// TestIncludeGenerations: over a versioned bucket, include_generations
// yields one row per generation, each URL pinned with generation=N (and
// serving that generation's bytes); without it, one row per live object
// and no pin.
func TestIncludeGenerations(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.client.Bucket(mediaBucket).Update(ctx, storage.BucketAttrsToUpdate{VersioningEnabled: true}); err != nil {
		t.Fatal(err)
	}
	// generation -> content, for a.txt (3 generations), b.txt (2), c.txt (1).
	contents := map[string]map[int64]string{}
	for name, versions := range map[string]int{"public/ver/a.txt": 3, "public/ver/b.txt": 2, "public/ver/c.txt": 1} {
		contents[name] = map[int64]string{}
		for v := range versions {
			w := f.client.Bucket(mediaBucket).Object(name).NewWriter(ctx)
			w.ContentType = "text/plain"
			body := fmt.Sprintf("%s version %d%s", name, v+1, strings.Repeat("!", v))
			if _, err := io.WriteString(w, body); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			contents[name][w.Attrs().Generation] = body
		}
	}
	live := map[string]int64{}
	for name := range contents {
		a, err := f.client.Bucket(mediaBucket).Object(name).Attrs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		live[name] = a.Generation
	}

	for _, tc := range []struct {
		name     string
		versions bool
		// shards > 0 splits the job into one shard per name: a shard
		// boundary never falls between two generations of a name.
		shards int
		rows   int
	}{
		{name: "live only", rows: 3},
		{name: "every generation", versions: true, rows: 6},
		{name: "every generation sharded", versions: true, shards: 3, rows: 6},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "-"), func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "-")
			manifest := "versions/" + id + ".jsonl"
			job := manifestJob(id, "gs://exports/"+manifest, schema.FormatJSONL,
				schema.JobSource{Bucket: mediaBucket, Prefix: "public/ver/", IncludeGenerations: tc.versions})
			r := f.runner(func(o *Options) {
				if tc.shards > 0 {
					o.Split = &SplitOptions{Above: 1, ShardSize: 1}
				}
			})
			outs, err := r.Handle(ctx, jobMessage(t, job))
			if err != nil {
				t.Fatal(err)
			}
			if tc.shards > 0 {
				if len(outs) != tc.shards {
					t.Fatalf("%d shards, want %d", len(outs), tc.shards)
				}
				var done []worker.Output
				for _, s := range outs {
					o, err := r.Handle(ctx, &worker.Message{ID: "s", Data: s.Data, Attributes: s.Attributes})
					if err != nil {
						t.Fatal(err)
					}
					done = append(done, o...)
				}
				outs = done
			}
			if len(outs) != 1 {
				t.Fatalf("%d completions, want 1", len(outs))
			}
			checkDone(t, f, decodeDone(t, outs[0]), job, schema.JobCounts{Listed: int64(tc.rows), Signed: int64(tc.rows)}, max(1, tc.shards))
			rows := jobstest.ManifestRows(t, f.read(exportsBucket, manifest), schema.FormatJSONL)
			if len(rows) != tc.rows {
				t.Fatalf("%d rows, want %d", len(rows), tc.rows)
			}
			seen := map[string]bool{}
			for _, row := range rows {
				key := fmt.Sprintf("%s#%d", row.Object, row.Generation)
				if seen[key] {
					t.Errorf("%s twice", key)
				}
				seen[key] = true
				body, ok := contents[row.Object][row.Generation]
				if !ok || (!tc.versions && row.Generation != live[row.Object]) {
					t.Errorf("row for %s, which is not a generation the job should list", key)
					continue
				}
				if row.Size != int64(len(body)) {
					t.Errorf("%s: size %d, want %d", key, row.Size, len(body))
				}
				p, err := sign.ParseSignedURL(row.URL, "GET", nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := p.VerifyRSA(&iamtest.Key().PublicKey); err != nil {
					t.Errorf("%s: URL does not verify: %v", key, err)
				}
				u, err := url.Parse(row.URL)
				if err != nil {
					t.Fatal(err)
				}
				pin := u.Query()["generation"]
				switch {
				case tc.versions && (len(pin) != 1 || pin[0] != strconv.FormatInt(row.Generation, 10)):
					t.Errorf("%s: URL pins generation %q", key, pin)
				case !tc.versions && len(pin) != 0:
					t.Errorf("%s: URL of a live-object job pins generation %q", key, pin)
				}
				if got := jobstest.Get(t, row.URL); string(got) != body {
					t.Errorf("%s: URL serves %q, want %q", key, got, body)
				}
			}
		})
	}
}

// get GETs url and returns the response (body read and closed); it fails
// the test unless the status is 200.
func get(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	return resp
}
