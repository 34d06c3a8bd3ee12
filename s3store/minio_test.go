package s3store_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/linkissuer/linkissuer/internal/minio"
	"github.com/linkissuer/linkissuer/s3store"
	"github.com/linkissuer/linkissuer/sign"
)

// The tests in this file and the other minio*_test.go files run against a
// real MinIO server, started for the package on first use (internal/minio)
// and stopped after the last test: it checks signatures, expiry and POST
// policies as S3 does. They skip when no minio binary is installed, unless
// $LINKISSUER_REQUIRE_MINIO is set (.ci/run installs one and sets it).

var (
	serverOnce sync.Once
	server     *minio.Server
	serverErr  error
)

// startServer starts the package's MinIO once; TestMain stops it.
func startServer() (*minio.Server, error) {
	serverOnce.Do(func() {
		var log io.Writer
		if os.Getenv("LINKISSUER_MINIO_LOG") != "" {
			log = os.Stderr
		}
		server, serverErr = minio.Start(context.Background(), &minio.Options{Log: log})
	})
	return server, serverErr
}

func TestMain(m *testing.M) {
	code := m.Run()
	if server != nil {
		server.Stop()
	}
	os.Exit(code)
}

// fixture is one test's view of the server: its own bucket, a Client and a
// URLSigner with the root key.
type fixture struct {
	cfg    s3store.Config
	client *s3store.Client
	calls  *recorder // the client's requests
	signer *sign.URLSigner
	bucket string
}

var bucketSeq atomic.Int64

var bucketUnsafe = regexp.MustCompile(`[^a-z0-9-]+`)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	server, err := startServer()
	minio.Need(t, err)
	f := &fixture{cfg: s3store.Config{
		Endpoint: server.Endpoint,
		Region:   server.Region,
		Key:      s3store.HMACKey{AccessID: server.AccessKey, Secret: server.SecretKey},
	}}
	f.calls = &recorder{next: http.DefaultTransport}
	if f.client, err = s3store.NewClient(f.cfg, &s3store.ClientOptions{HTTPClient: &http.Client{Transport: f.calls}}); err != nil {
		t.Fatal(err)
	}
	if f.signer, err = f.cfg.URLSigner(); err != nil {
		t.Fatal(err)
	}
	name := strings.Trim(bucketUnsafe.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	f.bucket = fmt.Sprintf("%s-%d", strings.Trim(name, "-"), bucketSeq.Add(1))
	if err := f.client.CreateBucket(t.Context(), f.bucket); err != nil {
		t.Fatal(err)
	}
	return f
}

// put writes an object with the SDK client (not through a signed URL).
func (f *fixture) put(t *testing.T, key string, data []byte) {
	t.Helper()
	if err := f.client.PutObject(t.Context(), f.bucket, key, bytes.NewReader(data), int64(len(data)), writeOpts("")); err != nil {
		t.Fatal(err)
	}
}

// s3Error is the XML error document S3 and MinIO answer with.
type s3Error struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// response is what a request got back.
type response struct {
	status int
	header http.Header
	body   []byte
	err    s3Error // parsed when the status is not 2xx
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: body}
	if resp.StatusCode >= 300 {
		if err := xml.Unmarshal(body, &r.err); err != nil && req.Method != http.MethodHead {
			t.Fatalf("%s: status %d with a body that is not an S3 error: %q", req.Method, resp.StatusCode, body)
		}
	}
	return r
}

// request builds a request for a signed URL, with the headers it was
// signed with.
func request(t *testing.T, su *sign.SignedURL, body []byte) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), su.Method, su.URL, rd)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range su.Headers {
		req.Header.Set(h.Name, h.Value)
	}
	return req
}

// now is the signing time of the tests: the server checks it against its
// own clock, so it is the real time.
func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

func headInput(bucket, key string) *s3.HeadObjectInput {
	return &s3.HeadObjectInput{Bucket: &bucket, Key: &key}
}

func listUploadsInput(bucket string) *s3.ListMultipartUploadsInput {
	return &s3.ListMultipartUploadsInput{Bucket: &bucket}
}

// recorder counts a client's S3 calls by kind.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

// RoundTrip implements http.RoundTripper.
func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	q := req.URL.Query()
	kind := req.Method
	switch {
	case req.Header.Get("X-Amz-Copy-Source") != "" && q.Has("partNumber"):
		kind = "UploadPartCopy"
	case q.Has("partNumber"):
		kind = "UploadPart"
	case req.Method == http.MethodPost && q.Has("uploads"):
		kind = "CreateMultipartUpload"
	case req.Method == http.MethodPost && q.Has("uploadId"):
		kind = "CompleteMultipartUpload"
	case req.Method == http.MethodPut:
		kind = "PutObject"
	}
	r.mu.Lock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[kind]++
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

// take returns the counts since the last take and resets them.
func (r *recorder) take() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.n
	r.n = nil
	return n
}
