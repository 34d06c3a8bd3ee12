package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/linkissuer/linkissuer/gcsstore"
	"github.com/linkissuer/linkissuer/internal/iamtest"
	"github.com/linkissuer/linkissuer/internal/jobstest"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/worker"
)

// Fixtures shared by the tests: fake-gcs-server in process (one per test),
// a key signer whose URLs point at it, and a policy that allows media/public
// and the exports bucket.

const (
	mediaBucket   = "media"
	exportsBucket = "exports"
	testEmail     = "linkissuer@test-project.iam.gserviceaccount.com"
)

// fixture is one test's storage, signer and policy.
type fixture struct {
	t      *testing.T
	gcs    *fakestorage.Server
	client *storage.Client
	store  *gcsstore.Client
	signer *sign.URLSigner
	policy *policy.Policy
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv, client := jobstest.GCS(t, mediaBucket, exportsBucket)
	key, err := sign.NewKeySigner(testEmail, iamtest.Key())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := sign.New(key, &sign.Options{Endpoint: sign.Endpoint{EmulatorHost: srv.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.New(policy.Config{
		Allow:     []string{mediaBucket + "/public/**", exportsBucket},
		MaxExpiry: 24 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, gcs: srv, client: client, store: gcsstore.New(client), signer: signer, policy: pol}
}

// options returns runner options over the fixture; edit may change them.
func (f *fixture) options(edit func(*Options)) Options {
	topics, err := NewTopicAllow([]string{"linkissuer-test"})
	if err != nil {
		f.t.Fatal(err)
	}
	o := Options{Backends: f.backends(f.signer, nil), Policy: f.policy, Concurrency: 8, SignPause: time.Millisecond, Topics: topics}
	if edit != nil {
		edit(&o)
	}
	return o
}

// backends serves the fixture's GCS: objects signed by signer, manifest URLs
// by manifestSigner (nil: signer).
func (f *fixture) backends(signer, manifestSigner URLSigner) BackendFunc {
	return f.storeBackends(f.store, signer, manifestSigner)
}

// storeBackends is backends with store in place of the fixture's for
// manifests, parts and markers.
func (f *fixture) storeBackends(store Store, signer, manifestSigner URLSigner) BackendFunc {
	return GCSOnly(Backend{Source: f.store, Signer: signer, Store: store, ManifestSigner: manifestSigner})
}

func (f *fixture) runner(edit func(*Options)) *Runner {
	f.t.Helper()
	r, err := New(f.options(edit))
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// object is what the test expects a manifest row to say.
type object struct {
	generation  int64
	size        int64
	contentType string
}

// seed creates count objects named fmt.Sprintf(pattern, i) in media and
// returns them as the server describes them.
func (f *fixture) seed(pattern string, count int) map[string]object {
	f.t.Helper()
	for i := range count {
		name := fmt.Sprintf(pattern, i)
		ct := "image/jpeg"
		if i%3 == 0 {
			ct = "application/pdf"
		}
		f.gcs.CreateObject(fakestorage.Object{
			ObjectAttrs: fakestorage.ObjectAttrs{BucketName: mediaBucket, Name: name, ContentType: ct},
			Content:     []byte(strings.Repeat("x", i%17+1)),
		})
	}
	return f.objects(strings.SplitN(pattern, "%", 2)[0])
}

// objects describes every media object under prefix.
func (f *fixture) objects(prefix string) map[string]object {
	f.t.Helper()
	attrs, _, err := f.gcs.ListObjectsWithOptions(mediaBucket, fakestorage.ListOptions{Prefix: prefix})
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]object{}
	for _, a := range attrs {
		out[a.Name] = object{generation: a.Generation, size: a.Size, contentType: a.ContentType}
	}
	return out
}

// read returns an object's content, or nil if it does not exist.
func (f *fixture) read(bucket, name string) []byte {
	f.t.Helper()
	r, err := f.client.Bucket(bucket).Object(name).NewReader(context.Background())
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		f.t.Fatal(err)
	}
	return data
}

// names lists the object names in bucket under prefix.
func (f *fixture) names(bucket, prefix string) []string {
	f.t.Helper()
	attrs, _, err := f.gcs.ListObjectsWithOptions(bucket, fakestorage.ListOptions{Prefix: prefix})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, a := range attrs {
		out = append(out, a.Name)
	}
	return out
}

// checkManifest reads a manifest and checks it row by row against want:
// every object exactly once, with its generation, size and content type,
// and a URL that verifies with the test key, names the object and expires
// when the row says.
func (f *fixture) checkManifest(bucket, name string, format schema.ManifestFormat, want map[string]object, expires time.Duration) {
	f.t.Helper()
	data := f.read(bucket, name)
	if data == nil {
		f.t.Fatalf("manifest gs://%s/%s does not exist", bucket, name)
	}
	seen := map[string]int{}
	for _, row := range jobstest.ManifestRows(f.t, data, format) {
		seen[row.Object]++
		w, ok := want[row.Object]
		if !ok {
			f.t.Errorf("unexpected row for %q", row.Object)
			continue
		}
		if row.Generation != w.generation || row.Size != w.size || row.ContentType != w.contentType {
			f.t.Errorf("%s: row says generation %d, size %d, type %q; want %d, %d, %q", row.Object,
				row.Generation, row.Size, row.ContentType, w.generation, w.size, w.contentType)
		}
		p, err := sign.ParseSignedURL(row.URL, "GET", nil)
		if err != nil {
			f.t.Errorf("%s: %v", row.Object, err)
			continue
		}
		if err := p.VerifyRSA(&iamtest.Key().PublicKey); err != nil {
			f.t.Errorf("%s: URL does not verify: %v", row.Object, err)
		}
		if p.Object != mediaBucket+"/"+row.Object {
			f.t.Errorf("%s: URL is for %q", row.Object, p.Object)
		}
		if !p.ExpiresAt().Equal(row.ExpiresAt) || p.Expires != expires {
			f.t.Errorf("%s: URL expires %s after %s, row says %s, want a lifetime of %s", row.Object, p.Expires, p.Date, row.ExpiresAt, expires)
		}
		if p.Identity != testEmail {
			f.t.Errorf("%s: signed by %s", row.Object, p.Identity)
		}
	}
	for n := range want {
		if seen[n] != 1 {
			f.t.Errorf("%s appears %d times in the manifest, want once", n, seen[n])
		}
	}
}

// errorRows reads an errors file into object -> reason code.
func (f *fixture) errorRows(bucket, name string, format schema.ManifestFormat) map[string]schema.ReasonCode {
	f.t.Helper()
	data := f.read(bucket, name)
	if data == nil {
		f.t.Fatalf("errors file gs://%s/%s does not exist", bucket, name)
	}
	rr, err := schema.NewRowReader(strings.NewReader(string(data)), format, schema.ErrorCSVHeader)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]schema.ReasonCode{}
	for {
		row, err := rr.ReadError()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			f.t.Fatal(err)
		}
		if _, dup := out[row.Object]; dup {
			f.t.Errorf("%s has two error rows", row.Object)
		}
		if row.Reason == "" {
			f.t.Errorf("%s: error row without a reason", row.Object)
		}
		out[row.Object] = row.ReasonCode
	}
}

// jobMessage encodes job as a delivery.
func jobMessage(t *testing.T, job *schema.Job) *worker.Message {
	t.Helper()
	data, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	return &worker.Message{ID: "m-" + job.JobID, Data: data, Attributes: job.Attributes()}
}

// decodeDone decodes a completion Output.
func decodeDone(t *testing.T, out worker.Output) *schema.JobDone {
	t.Helper()
	if out.Attributes[schema.AttrSchema] != schema.JobDoneV1 {
		t.Fatalf("output schema %q, want %s", out.Attributes[schema.AttrSchema], schema.JobDoneV1)
	}
	var d schema.JobDone
	if err := json.Unmarshal(out.Data, &d); err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("completion does not validate: %v", err)
	}
	return &d
}

// countingSigner counts signatures and can run a hook before each, and
// fail chosen requests (fail returns the error to fail r with, or nil).
type countingSigner struct {
	inner URLSigner
	calls atomic.Int64
	hook  func(ctx context.Context, n int64) error
	fail  func(r sign.Request) error
}

func (c *countingSigner) Sign(ctx context.Context, r sign.Request) (*sign.SignedURL, error) {
	n := c.calls.Add(1)
	if c.hook != nil {
		if err := c.hook(ctx, n); err != nil {
			return nil, err
		}
	}
	if c.fail != nil {
		if err := c.fail(r); err != nil {
			return nil, err
		}
	}
	return c.inner.Sign(ctx, r)
}
