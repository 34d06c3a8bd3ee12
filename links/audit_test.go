package links

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/linkissuer/linkissuer/worker"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/failure"
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

// fakeMinter hands out a fixed durable link and keeps what it was asked
// for, with the requester its context carried.
type fakeMinter struct {
	mu   sync.Mutex
	err  error
	got  []schema.Link
	with []audit.Requester
}

func (f *fakeMinter) MintFor(ctx context.Context, l *schema.Link) (*schema.DurableLink, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	who, _ := audit.RequesterFrom(ctx)
	f.got, f.with = append(f.got, *l), append(f.with, who)
	if f.err != nil {
		return nil, f.err
	}
	return &schema.DurableLink{URL: "https://links.example.com/l/TOKEN-" + l.Object, ID: "0123456789abcdef0123456789abcdef",
		ExpiresAt: l.IssuedAt.Add(90 * 24 * time.Hour)}, nil
}

// TestEventLinkCarriesDurableLink: with a DurableMinter, an event's link
// carries the durable link minted for its object (asked for with the
// event's subscription and message id, after the link was signed), in the
// data only; a minting that fails (an audit record not written) withholds
// the link and is transient, so the event is redelivered. The sync API
// mints none.
func TestEventLinkCarriesDurableLink(t *testing.T) {
	t.Parallel()
	h := mediaIssuer(t)
	m := &fakeMinter{}
	h.Durable = m
	event := &worker.Message{ID: "42", Subscription: "projects/p/subscriptions/objects",
		Data: notificationData("media", "a b.txt", "7", nil), Attributes: notificationAttrs("media", "a b.txt", "7", nil)}

	outs, err := h.Handle(t.Context(), event)
	if err != nil || len(outs) != 1 {
		t.Fatalf("Handle: %d outputs, %v", len(outs), err)
	}
	var l schema.Link
	if err := json.Unmarshal(outs[0].Data, &l); err != nil {
		t.Fatal(err)
	}
	if l.Durable == nil || l.Durable.URL != "https://links.example.com/l/TOKEN-a b.txt" || l.URL == "" {
		t.Fatalf("link %+v, want the signed URL and the durable link", l)
	}
	for k, v := range outs[0].Attributes {
		if strings.Contains(v, "/l/") {
			t.Errorf("attribute %s carries the durable link", k)
		}
	}
	if len(m.got) != 1 || m.got[0].Object != "a b.txt" || m.got[0].Generation != 7 || m.got[0].Method != "GET" || m.got[0].URL == "" {
		t.Errorf("minted for %+v, want the signed link to a b.txt#7", m.got)
	}
	want := audit.Requester{Path: audit.PathEvent, Subscription: "projects/p/subscriptions/objects", MessageID: "42"}
	if len(m.with) != 1 || m.with[0] != want {
		t.Errorf("minted with requester %+v, want %+v", m.with, want)
	}

	m.err = failure.Transient(failure.Audit, audit.ErrUnavailable)
	outs, err = h.Handle(t.Context(), event)
	if len(outs) != 0 || !errors.Is(err, audit.ErrUnavailable) || !failure.IsTransient(err) {
		t.Errorf("minting not recorded: %d outputs, %v; want none and a transient error", len(outs), err)
	}

	m.err = nil
	sl, err := (&Sync{Links: h}).IssueLink(t.Context(), worker.LinkRequest{Bucket: "media", Object: "a b.txt"})
	if err != nil || sl.Durable != nil || len(m.got) != 2 {
		t.Errorf("sync link %+v (%v), %d mintings; want no durable link", sl, err, len(m.got))
	}
}
