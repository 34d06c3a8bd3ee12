package s3store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/jobs"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// errorServer answers every request with status and an S3 error document
// carrying code (HEAD responses have no body, as in S3).
func errorServer(t *testing.T, status int, code string) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>`+code+`</Code><Message>test</Message></Error>`)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(Config{Endpoint: srv.URL, Region: "us-east-1", Key: testKey}, &ClientOptions{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestErrorClasses checks how store failures reach the jobs package and the
// worker: sentinels jobs branches on, outages that failure.Classify reports
// as storage outages (storage_unavailable, never signer_unavailable), and
// refusals left unmarked.
func TestErrorClasses(t *testing.T) {
	type class int
	const (
		notFound class = iota
		exists
		retryable
		permanent
	)
	for _, tc := range []struct {
		name   string
		status int
		code   string
		call   func(ctx context.Context, c *Client) error
		want   class
	}{
		{"missing object", 404, "NoSuchKey", readCall, notFound},
		{"missing bucket", 404, "NoSuchBucket", listCall, notFound},
		{"HEAD 404 has no code", 404, "", statCall, notFound},
		{"conditional write", 412, "PreconditionFailed", putIfAbsentCall, exists},
		{"throttled", 503, "SlowDown", readCall, retryable},
		{"internal error", 500, "InternalError", listCall, retryable},
		{"429", 429, "TooManyRequests", readCall, retryable},
		{"access denied", 403, "AccessDenied", readCall, permanent},
		{"bad signature", 403, "SignatureDoesNotMatch", listCall, permanent},
		{"bad request", 400, "InvalidArgument", putIfAbsentCall, permanent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(t.Context(), errorServer(t, tc.status, tc.code))
			got := permanent
			switch {
			case err == nil:
				t.Fatal("no error")
			case errors.Is(err, jobs.ErrNotFound):
				got = notFound
			case errors.Is(err, jobs.ErrExists):
				got = exists
			case failure.IsTransient(err):
				got = retryable
			}
			if got != tc.want {
				t.Errorf("error %v: class %d, want %d", err, got, tc.want)
			}
			if c := failure.Classify(err); tc.want == retryable && (c.Component != failure.Storage || c.Reason() != "storage_unavailable") {
				t.Errorf("error %v: classified %+v (reason %s), want a storage outage", err, c, c.Reason())
			}
			if !strings.Contains(err.Error(), "s3://") {
				t.Errorf("error %q does not name the object", err)
			}
		})
	}
	t.Run("connection refused is retryable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		c, err := NewClient(Config{Endpoint: srv.URL, Region: "us-east-1", Key: testKey}, &ClientOptions{MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := readCall(t.Context(), c); failure.Classify(err).Component != failure.Storage {
			t.Errorf("got %v, want a storage outage", err)
		}
	})
	t.Run("cancelled is not retryable", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := readCall(ctx, errorServer(t, 500, "InternalError"))
		if !errors.Is(err, context.Canceled) || failure.Classify(err).Component != failure.Canceled {
			t.Errorf("got %v, want context.Canceled, classified as cancelled", err)
		}
	})
}

func readCall(ctx context.Context, c *Client) error {
	_, err := c.NewReader(ctx, "b", "k")
	return err
}

func statCall(ctx context.Context, c *Client) error {
	_, err := c.Stat(ctx, "b", "k", 0)
	return err
}

func listCall(ctx context.Context, c *Client) error {
	for _, err := range c.List(ctx, jobs.ListQuery{Bucket: "b"}) {
		return err
	}
	return nil
}

func putIfAbsentCall(ctx context.Context, c *Client) error {
	return c.PutObject(ctx, "b", "k", strings.NewReader("x"), 1, jobs.WriteOptions{IfAbsent: true})
}

func TestBackendsServeOnlyConfiguredStores(t *testing.T) {
	minio := Config{Endpoint: "http://127.0.0.1:9000", Region: "us-east-1", Key: testKey}
	aws := Config{Region: "eu-west-1", Key: HMACKey{AccessID: "AKIAOTHER", Secret: "other"}}
	b, err := NewBackends([]Config{minio, aws}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		src    schema.JobSource
		wantID string // credential identity of the signer; "" means refused
	}{
		{"minio", schema.JobSource{Store: schema.StoreS3, Endpoint: "http://127.0.0.1:9000", Region: "us-east-1"}, testKey.AccessID},
		{"minio, trailing slash", schema.JobSource{Store: schema.StoreS3, Endpoint: "http://127.0.0.1:9000/", Region: "us-east-1"}, testKey.AccessID},
		{"aws", schema.JobSource{Store: schema.StoreS3, Region: "eu-west-1"}, "AKIAOTHER"},
		{"aws, another region", schema.JobSource{Store: schema.StoreS3, Region: "us-west-2"}, ""},
		{"unknown endpoint", schema.JobSource{Store: schema.StoreS3, Endpoint: "http://169.254.169.254", Region: "us-east-1"}, ""},
		{"same host, https", schema.JobSource{Store: schema.StoreS3, Endpoint: "https://127.0.0.1:9000", Region: "us-east-1"}, ""},
		{"gcs source", schema.JobSource{Store: schema.StoreGCS}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.src.Bucket = "media"
			be, err := b.Backend(t.Context(), &tc.src)
			if tc.wantID == "" {
				if c := failure.Classify(err); c.Kind != failure.KindPermanent || c.Code != failure.CodeInvalidField {
					t.Errorf("Backend = %v, want a permanent refusal", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := be.Signer.(*sign.URLSigner).Credential().Identity; got != tc.wantID {
				t.Errorf("signer identity %s, want %s", got, tc.wantID)
			}
			if _, ok := be.Source.(*Client); !ok {
				t.Errorf("source is %T", be.Source)
			}
		})
	}
	t.Run("Func sends gcs elsewhere", func(t *testing.T) {
		gcs := jobs.Backend{Signer: &sign.URLSigner{}}
		be, err := b.Func(gcs)(t.Context(), &schema.JobSource{Bucket: "media"})
		if err != nil || be.Signer != gcs.Signer {
			t.Errorf("gcs source got %+v, %v", be, err)
		}
	})
	t.Run("duplicate store", func(t *testing.T) {
		if _, err := NewBackends([]Config{minio, minio}, nil); err == nil {
			t.Error("NewBackends accepted the same store twice")
		}
	})
}

// TestNewPostRequest checks the form a POST policy upload sends: every
// field, then the file last.
func TestNewPostRequest(t *testing.T) {
	form := &sign.PostForm{URL: "http://127.0.0.1:9000/media/", Fields: map[string]string{
		"key": "a.txt", "policy": "eyJ9", "x-amz-signature": "00", "Content-Type": "text/plain",
	}}
	req, err := NewPostRequest(t.Context(), form, "a.txt", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != http.MethodPost || req.URL.String() != form.URL {
		t.Errorf("%s %s", req.Method, req.URL)
	}
	if err := req.ParseMultipartForm(1 << 20); err != nil {
		t.Fatal(err)
	}
	for k, v := range form.Fields {
		if got := req.MultipartForm.Value[k]; len(got) != 1 || got[0] != v {
			t.Errorf("field %s = %q, want %q", k, got, v)
		}
	}
	// The order: re-read the raw body.
	req2, err := NewPostRequest(t.Context(), form, "a.txt", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	mr, err := req2.MultipartReader()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var file []byte
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, p.FormName())
		if p.FormName() == "file" {
			file, _ = io.ReadAll(p)
		}
	}
	if want := []string{"Content-Type", "key", "policy", "x-amz-signature", "file"}; strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("parts %v, want %v", names, want)
	}
	if !bytes.Equal(file, []byte("hello")) {
		t.Errorf("file part %q", file)
	}
}

func TestBefore(t *testing.T) {
	for _, s := range []string{"b", "a/2", "a/é", "日本", "x😀"} {
		got := before(s)
		if got >= s || !strings.HasPrefix(s, got) || !utf8.ValidString(got) {
			t.Errorf("before(%q) = %q: want a valid UTF-8 proper prefix", s, got)
		}
	}
}
