package links

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/linkissuer/linkissuer/worker"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/internal/pubsubemu"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// auditTopic adds an audit topic and subscription to the stack and returns
// a recorder publishing to it.
func (s *stack) auditRecorder(failClosed bool) *audit.Recorder {
	s.t.Helper()
	ctx := context.Background()
	s.IDs["audit"] = s.IDs["results"] + "-audit"
	if err := pubsubemu.EnsureTopic(ctx, s.Client, s.IDs["audit"]); err != nil {
		s.t.Fatal(err)
	}
	if err := pubsubemu.EnsureSubscription(ctx, s.Client, pubsubemu.Subscription{ID: s.IDs["audit"] + "-sub", Topic: s.IDs["audit"]}); err != nil {
		s.t.Fatal(err)
	}
	pub := s.Client.Publisher(s.IDs["audit"])
	pub.PublishSettings = audit.PublishSettings(2 * time.Millisecond)
	s.t.Cleanup(pub.Stop)
	rec, err := audit.New(audit.PubSubSink{Publisher: pub}, audit.Options{
		Signer:     audit.Signer{Identity: s.key.Credential().Identity, Kind: s.key.Credential().Kind, KeyID: "k1"},
		FailClosed: failClosed,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return rec
}

func TestAuditRecordsMatchLinksOneForOne(t *testing.T) {
	s := newStack(t)
	h := s.handler()
	h.Audit = s.auditRecorder(true)
	s.startWorker(h.Handle, 5*time.Second)
	var names []string
	for i := range 20 {
		names = append(names, fmt.Sprintf("audited/%02d & more.txt", i))
	}
	s.upload(names)
	links := decodeLinks(t, s.collect("results", len(names), 60*time.Second))
	if len(links) != len(names) {
		t.Fatalf("got %d links, want %d", len(links), len(names))
	}
	msgs := s.collect("audit", len(names), 60*time.Second)
	records := map[string]schema.AuditRecord{}
	for _, m := range msgs {
		var r schema.AuditRecord
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatalf("audit record is not JSON: %v: %s", err, m.Data)
		}
		if m.Attributes[schema.AttrSchema] != schema.AuditV1 {
			t.Errorf("schema attribute %q", m.Attributes[schema.AttrSchema])
		}
		if _, dup := records[r.Fingerprint]; dup {
			t.Errorf("two records with fingerprint %s", r.Fingerprint)
		}
		records[r.Fingerprint] = r
		for _, l := range links {
			u, _ := url.Parse(l.URL)
			if sig := u.Query().Get("X-Goog-Signature"); sig == "" || strings.Contains(string(m.Data), sig) {
				t.Errorf("record %s carries a signature: %s", r.RecordID, m.Data)
			}
		}
		if strings.Contains(string(m.Data), "Signature") || strings.Contains(string(m.Data), "://") {
			t.Errorf("record carries a URL or signature: %s", m.Data)
		}
	}
	if len(records) != len(links) {
		t.Errorf("%d records for %d links", len(records), len(links))
	}
	for _, l := range links {
		fp, err := audit.Fingerprint(l.URL)
		if err != nil {
			t.Fatal(err)
		}
		r, ok := records[fp]
		if !ok {
			t.Errorf("no audit record for the link to %q", l.Object)
			continue
		}
		if r.Bucket != l.Bucket || r.Object != l.Object || r.Generation != l.Generation || r.Method != l.Method ||
			!r.ExpiresAt.Equal(l.ExpiresAt) || !r.IssuedAt.Equal(l.IssuedAt) || r.MessageID != l.Source.MessageID ||
			r.Path != audit.PathEvent || r.Subscription == "" || r.SignerIdentity != s.key.Credential().Identity || r.KeyID != "k1" ||
			r.Outcome != schema.OutcomeIssued {
			t.Errorf("record %+v does not describe link %+v", r, l)
		}
	}
}

func TestAuditFailClosedWithholdsLinks(t *testing.T) {
	s := newStack(t)
	h := s.handler()
	// The audit topic does not exist: every record fails to publish.
	pub := s.Client.Publisher("no-such-audit-topic-" + s.IDs["results"])
	t.Cleanup(pub.Stop)
	rec, err := audit.New(audit.PubSubSink{Publisher: pub}, audit.Options{
		Signer: audit.Signer{Identity: s.key.Credential().Identity, Kind: sign.KindRSA}, FailClosed: true})
	if err != nil {
		t.Fatal(err)
	}
	h.Audit = rec
	s.gcs.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: s.bucket, Name: "x.txt", ContentType: "text/plain"}, Content: []byte("x")})
	issuer := &Sync{Links: h, Objects: GCSObjects{Client: s.gcs.Client()}}
	srv := newPushHarness(t, worker.PushOptions{InsecureSkipAuth: true, Links: issuer})
	status, code := srv.post(t, worker.PathLinks, nil, []byte(fmt.Sprintf(`{"bucket":%q,"object":"x.txt"}`, s.bucket)))
	if status != 503 || code != "audit_unavailable" {
		t.Errorf("sync link without audit: %d %q, want 503 audit_unavailable", status, code)
	}

	// Events: the message is nacked, nothing is published.
	s.startWorker(h.Handle, 5*time.Second)
	s.upload([]string{"withheld.txt"})
	if got := s.collectQuiet("results", 3*time.Second); len(got) != 0 {
		t.Errorf("%d links released without an audit record", len(got))
	}

	// Fail-open releases the link and counts the failure.
	open, err := audit.New(audit.PubSubSink{Publisher: pub}, audit.Options{
		Signer: audit.Signer{Identity: s.key.Credential().Identity, Kind: sign.KindRSA}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.New(policy.Config{Allow: []string{s.bucket}})
	if err != nil {
		t.Fatal(err)
	}
	openIssuer := &Sync{Links: &Issuer{Signer: s.signer, Policy: p, Audit: open}, Objects: GCSObjects{Client: s.gcs.Client()}}
	srv = newPushHarness(t, worker.PushOptions{InsecureSkipAuth: true, Links: openIssuer})
	status, _ = srv.post(t, worker.PathLinks, nil, []byte(fmt.Sprintf(`{"bucket":%q,"object":"x.txt"}`, s.bucket)))
	if err := open.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status != 200 || open.Failures() != 1 {
		t.Errorf("fail-open: status %d, %d failures counted; want 200 and 1", status, open.Failures())
	}
}
