package links

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"github.com/linkissuer/linkissuer/worker"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/sign"
)

// syncStack is the sync API on real components: fake-gcs-server (versioned
// bucket) for lookups and downloads, a real RSA key signer.
type syncStack struct {
	gcs    *fakestorage.Server
	key    *rsa.PrivateKey
	bucket string
	srv    *pushHarness
}

func newSyncStack(t *testing.T, pc policy.Config) *syncStack {
	t.Helper()
	gcs, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", PublicHost: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gcs.Stop)
	s := &syncStack{gcs: gcs, bucket: "sync-media"}
	gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: s.bucket, VersioningEnabled: true})
	if s.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	key, err := sign.NewKeySigner("linkissuer@test-project.iam.gserviceaccount.com", s.key)
	if err != nil {
		t.Fatal(err)
	}
	urls, err := sign.New(key, &sign.Options{Endpoint: sign.Endpoint{EmulatorHost: gcs.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	pc.Allow = []string{s.bucket}
	p, err := policy.New(pc)
	if err != nil {
		t.Fatal(err)
	}
	issuer := &Sync{Links: &Issuer{Signer: urls, Policy: p}, Objects: GCSObjects{Client: gcs.Client()}}
	s.srv = newPushHarness(t, worker.PushOptions{InsecureSkipAuth: true, Links: issuer})
	return s
}

// put writes an object and returns its generation.
func (s *syncStack) put(t *testing.T, name, contentType, content string) int64 {
	t.Helper()
	w := s.gcs.Client().Bucket(s.bucket).Object(name).NewWriter(context.Background())
	w.ContentType = contentType
	if _, err := io.WriteString(w, content); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.Attrs().Generation
}

// post sends body to POST /v1/links and returns the status and raw body.
func (s *syncStack) post(t *testing.T, body string) (int, []byte) {
	t.Helper()
	resp, err := s.srv.srv.Client().Post(s.srv.srv.URL+worker.PathLinks, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// fetch downloads a link and checks its signature with the stack's key.
func (s *syncStack) fetch(t *testing.T, link string) string {
	t.Helper()
	p, err := sign.ParseSignedURL(link, http.MethodGet, nil)
	if err != nil {
		t.Fatalf("parse %s: %v", link, err)
	}
	if err := p.VerifyRSA(&s.key.PublicKey); err != nil {
		t.Errorf("link does not verify: %v", err)
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET link: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

func TestSyncLinkPinsGeneration(t *testing.T) {
	s := newSyncStack(t, policy.Config{})
	old := s.put(t, "report.pdf", "application/pdf", "first")
	live := s.put(t, "report.pdf", "application/pdf", "second!")
	status, raw := s.post(t, fmt.Sprintf(`{"bucket":%q,"object":"report.pdf","generation":%d}`, s.bucket, old))
	if status != 200 {
		t.Fatalf("status %d: %s", status, raw)
	}
	if bytes.Contains(raw, []byte(`\u0026`)) {
		t.Errorf("the response escapes & as \\u0026: %s", raw)
	}
	var l struct {
		URL         string `json:"url"`
		Generation  int64  `json:"generation"`
		Size        int64  `json:"size"`
		ContentType string `json:"content_type"`
	}
	if err := json.Unmarshal(raw, &l); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(l.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Query().Get("generation"); got != fmt.Sprint(old) {
		t.Errorf("URL generation=%q, want %d (live is %d): %s", got, old, live, l.URL)
	}
	if l.Generation != old || l.Size != int64(len("first")) || l.ContentType != "application/pdf" {
		t.Errorf("link generation %d size %d type %q, want %d %d application/pdf", l.Generation, l.Size, l.ContentType, old, len("first"))
	}
	if got := s.fetch(t, l.URL); got != "first" {
		t.Errorf("the pinned link serves %q, want the old generation's %q", got, "first")
	}

	// Without a generation the link serves the live object and names it.
	status, raw = s.post(t, fmt.Sprintf(`{"bucket":%q,"object":"report.pdf"}`, s.bucket))
	if status != 200 {
		t.Fatalf("status %d: %s", status, raw)
	}
	if err := json.Unmarshal(raw, &l); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(l.URL, "generation=") || l.Generation != live || l.Size != int64(len("second!")) {
		t.Errorf("unpinned link: generation %d size %d url %s, want live %d, size %d, no generation=", l.Generation, l.Size, l.URL, live, len("second!"))
	}
}

func TestSyncLinkContentTypePolicy(t *testing.T) {
	s := newSyncStack(t, policy.Config{ContentTypes: []string{"image/*"}})
	s.put(t, "cat.jpg", "image/jpeg", "meow")
	s.put(t, "notes.txt", "text/plain", "hi")
	tests := []struct {
		name       string
		object     string
		wantStatus int
		wantCode   string
	}{
		{name: "allowed type", object: "cat.jpg", wantStatus: 200},
		{name: "refused type", object: "notes.txt", wantStatus: 403, wantCode: policy.CodeContentType},
		{name: "missing object", object: "nothing.jpg", wantStatus: 404, wantCode: "object_not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := s.post(t, fmt.Sprintf(`{"bucket":%q,"object":%q}`, s.bucket, tc.object))
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tc.wantStatus, raw)
			}
			if tc.wantStatus == 200 {
				var l struct{ URL string }
				if err := json.Unmarshal(raw, &l); err != nil {
					t.Fatal(err)
				}
				if got := s.fetch(t, l.URL); got != "meow" {
					t.Errorf("link serves %q", got)
				}
				return
			}
			var eb errorBody
			if err := json.Unmarshal(raw, &eb); err != nil || eb.Error.Code != tc.wantCode {
				t.Errorf("body %s, want code %q", raw, tc.wantCode)
			}
		})
	}
}

func TestSyncLinkBatch(t *testing.T) {
	s := newSyncStack(t, policy.Config{})
	gen := s.put(t, "a.txt", "text/plain", "A")
	s.put(t, "b.txt", "text/plain", "B")
	body := fmt.Sprintf(`{"items":[
		{"bucket":%[1]q,"object":"a.txt","generation":%[2]d},
		{"bucket":"other-bucket","object":"a.txt"},
		{"bucket":%[1]q,"object":"missing.txt"},
		{"bucket":%[1]q,"object":"b.txt","expires_in":"1 week"},
		{"bucket":%[1]q,"object":"b.txt"}]}`, s.bucket, gen)
	status, raw := s.post(t, body)
	if status != 200 {
		t.Fatalf("status %d: %s", status, raw)
	}
	var resp worker.LinkBatchResponse
	if err := json.Unmarshal(raw, &resp); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		content string
		status  int
		code    string
	}{
		{content: "A"},
		{status: 403, code: policy.CodeBucketNotAllowed},
		{status: 404, code: "object_not_found"},
		{status: 400, code: "invalid_field"},
		{content: "B"},
	}
	if len(resp.Items) != len(want) {
		t.Fatalf("%d results, want %d: %s", len(resp.Items), len(want), raw)
	}
	for i, w := range want {
		got := resp.Items[i]
		if w.content != "" {
			if got.Link == nil || got.Error != nil {
				t.Errorf("item %d: %+v, want a link", i, got)
				continue
			}
			if c := s.fetch(t, got.Link.URL); c != w.content {
				t.Errorf("item %d serves %q, want %q", i, c, w.content)
			}
			continue
		}
		if got.Link != nil || got.Error == nil || got.Error.Status != w.status || got.Error.Code != w.code {
			t.Errorf("item %d: link %v error %+v, want %d %s", i, got.Link != nil, got.Error, w.status, w.code)
		}
	}
}
