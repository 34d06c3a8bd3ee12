package durable

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/internal/audittest"
	"github.com/linkissuer/linkissuer/links"
	"github.com/linkissuer/linkissuer/logging"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/worker"
)

// memPublisher keeps the outputs the router publishes.
type memPublisher struct {
	mu   sync.Mutex
	outs []worker.Output
}

func (p *memPublisher) Publish(_ context.Context, outs ...worker.Output) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.outs = append(p.outs, outs...)
	return nil
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// eventWorker is the worker's event path in process: a router over a
// links.Issuer that signs with the stack's signer, records with its
// recorder and mints durable links with m, logging at debug level to log.
func (s *stack) eventWorker(t *testing.T, m *Minter, log *syncBuffer) (*worker.Router, *memPublisher) {
	t.Helper()
	p, err := policy.New(policy.Config{Allow: []string{testBucket}})
	if err != nil {
		t.Fatal(err)
	}
	logger, err := logging.New(log, "debug")
	if err != nil {
		t.Fatal(err)
	}
	h := &links.Issuer{Signer: s.signer, Policy: p, Audit: s.rec, Durable: m}
	pub := &memPublisher{}
	r, err := worker.NewRouter(h.Handle, pub, worker.RouterOptions{DeadLetter: worker.DeadLetters("test", nil), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	return r, pub
}

// finalize is the OBJECT_FINALIZE notification of gs://testBucket/object
// at generation gen.
func finalize(id, object string, gen int64) *worker.Message {
	g := strconv.FormatInt(gen, 10)
	data, _ := json.Marshal(map[string]any{"kind": "storage#object", "bucket": testBucket, "name": object, "generation": g,
		"size": "9", "contentType": "application/pdf"})
	return &worker.Message{ID: id, Subscription: "projects/p/subscriptions/objects", Data: data, Attributes: map[string]string{
		"eventType": "OBJECT_FINALIZE", "payloadFormat": "JSON_API_V1", "bucketId": testBucket, "objectId": object,
		"objectGeneration": g, "eventTime": "2026-03-01T10:00:00Z"}}
}

// TestWorkerLinksCarryDurableLinks: the worker's event path with a
// Minter publishes links that carry a durable link to the event's object
// and generation, under the configured lifetime; its token verifies with
// the keys, and the durable-link server built with the same keys
// redirects it to a signed URL of the same object, which verifies and
// downloads. Each message gets one "minted" record (path event, the
// subscription and message id, the token id, the token's fingerprint);
// neither the records nor the logs carry the token.
func TestWorkerLinksCarryDurableLinks(t *testing.T) {
	gcs := newGCS(t)
	urls, pk := keySigner(t, gcs)
	keys := testKeys(t, "k1")
	s := newStack(t, keys, urls, gcs)
	attrs, err := gcs.Client().Bucket(testBucket).Object("reports/q3.pdf").Attrs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	logger, err := logging.New(&log, "debug")
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMinter(MinterOptions{Ring: NewKeyRing(keys), PublicURL: publicURL + "/", TTL: 30 * 24 * time.Hour,
		Tokens: s.rec, Logger: logger, Now: func() time.Time { return *s.now.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	r, pub := s.eventWorker(t, m, &log)
	for _, id := range []string{"101", "102"} {
		if d := r.Process(t.Context(), finalize(id, "reports/q3.pdf", attrs.Generation)); !d.Ack || d.Outcome != worker.OutcomeIssued {
			t.Fatalf("message %s: %+v", id, d)
		}
	}
	if len(pub.outs) != 2 {
		t.Fatalf("%d outputs, want 2 links", len(pub.outs))
	}
	now := s.now.Load().Truncate(time.Second)
	var tokens []string
	for i, out := range pub.outs {
		var l schema.Link
		if err := json.Unmarshal(out.Data, &l); err != nil {
			t.Fatal(err)
		}
		if l.Durable == nil || !strings.HasPrefix(l.Durable.URL, publicURL+PathClick) {
			t.Fatalf("link %d carries no durable link: %s", i, out.Data)
		}
		tok := strings.TrimPrefix(l.Durable.URL, publicURL+PathClick)
		tokens = append(tokens, tok, l.Durable.URL)
		c, err := keys.Parse(tok, now)
		if err != nil {
			t.Fatalf("durable token does not verify: %v", err)
		}
		if c.ID != l.Durable.ID || c.Bucket != testBucket || c.Object != "reports/q3.pdf" || c.Generation != attrs.Generation ||
			c.Method != http.MethodGet || c.ExpiresAt != now.Add(30*24*time.Hour).Unix() || !l.Durable.ExpiresAt.Equal(time.Unix(c.ExpiresAt, 0)) {
			t.Errorf("claims %+v of link %+v", c, l.Durable)
		}
		status, loc := s.click(t, l.Durable.URL)
		if status != http.StatusFound {
			t.Fatalf("click: %d", status)
		}
		p, err := sign.ParseSignedURL(loc, http.MethodGet, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.VerifyRSA(&pk.PublicKey); err != nil {
			t.Fatalf("redirect target does not verify: %v", err)
		}
		if u, _ := url.Parse(loc); u.Path != "/"+testBucket+"/reports/q3.pdf" || u.Query().Get("generation") != strconv.FormatInt(attrs.Generation, 10) {
			t.Errorf("redirect to %s, want the event's object and generation", u.Path)
		}
		resp, err := http.Get(loc)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "quarterly" {
			t.Errorf("download: %d %q", resp.StatusCode, body)
		}
	}

	minted := s.records(t, schema.OutcomeMinted)
	if len(minted) != 2 {
		t.Fatalf("%d minted records, want one per message", len(minted))
	}
	for i, rec := range minted {
		tok := tokens[2*i]
		c, _ := keys.Parse(tok, now)
		if rec.Path != audit.PathEvent || rec.Subscription != "projects/p/subscriptions/objects" || rec.MessageID != []string{"101", "102"}[i] ||
			rec.TokenID != c.ID || rec.Fingerprint != audit.TokenFingerprint(tok) || rec.Generation != attrs.Generation ||
			!rec.ExpiresAt.Equal(time.Unix(c.ExpiresAt, 0)) || rec.Caller != "" {
			t.Errorf("minted record %+v does not describe token %s of message %d", rec, c.ID, i)
		}
	}
	if issued := s.records(t, schema.OutcomeIssued); len(issued) != 4 {
		t.Errorf("%d issued records, want 2 event links and 2 clicks", len(issued))
	}
	s.sink.NoCredential(t, tokens...)
	for _, tok := range tokens {
		if strings.Contains(log.String(), tok) {
			t.Errorf("the log carries a durable token:\n%s", log.String())
		}
	}
	if !strings.Contains(log.String(), "durable link minted") {
		t.Errorf("the log does not say a durable link was minted:\n%s", log.String())
	}
}

// TestWorkerDurableLinkFailsClosed: when a minting cannot be recorded
// (fail-closed), the message is nacked and nothing is published, though
// the link itself was recorded; once the sink is back, the redelivery
// gets its link and its record.
func TestWorkerDurableLinkFailsClosed(t *testing.T) {
	gcs := newGCS(t)
	urls, _ := keySigner(t, gcs)
	keys := testKeys(t, "k1")
	s := newStack(t, keys, urls, gcs)
	sink := &audittest.Sink{}
	tokens, err := audit.New(sink, audit.Options{Signer: audit.Signer{Identity: "linkissuer@test-project.iam.gserviceaccount.com", Kind: sign.KindRSA},
		FailClosed: true})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMinter(MinterOptions{Ring: NewKeyRing(keys), PublicURL: publicURL, Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	r, pub := s.eventWorker(t, m, &log)
	sink.Fail(errors.New("audit topic down"))
	d := r.Process(t.Context(), finalize("201", "reports/q3.pdf", 1))
	if d.Ack || !errors.Is(d.Err, audit.ErrUnavailable) || d.Class.Component != failure.Audit || len(pub.outs) != 0 {
		t.Fatalf("audit down: %+v, %d outputs; want a nack and nothing published", d, len(pub.outs))
	}
	sink.Fail(nil)
	if d := r.Process(t.Context(), finalize("201", "reports/q3.pdf", 1)); !d.Ack || len(pub.outs) != 1 {
		t.Fatalf("redelivery: %+v, %d outputs", d, len(pub.outs))
	}
	if minted := sink.Outcome(schema.OutcomeMinted); len(minted) != 1 || minted[0].MessageID != "201" {
		t.Errorf("minted records %+v, want the redelivery's", minted)
	}
	if issued := s.records(t, schema.OutcomeIssued); len(issued) != 2 {
		t.Errorf("%d issued records, want both deliveries' links", len(issued))
	}
}

func TestNewMinter(t *testing.T) {
	ring := NewKeyRing(testKeys(t, "k1"))
	tests := []struct {
		name    string
		o       MinterOptions
		wantTTL time.Duration
		wantErr string
	}{
		{name: "lifetime defaults to the cap", o: MinterOptions{Ring: ring, PublicURL: publicURL, MaxTTL: 30 * 24 * time.Hour}, wantTTL: 30 * 24 * time.Hour},
		{name: "default cap", o: MinterOptions{Ring: ring, PublicURL: publicURL}, wantTTL: DefaultMaxTTL},
		{name: "lifetime over the cap", o: MinterOptions{Ring: ring, PublicURL: publicURL, TTL: 91 * 24 * time.Hour}, wantErr: "outside 1m..2160h0m0s"},
		{name: "lifetime under a minute", o: MinterOptions{Ring: ring, PublicURL: publicURL, TTL: time.Second}, wantErr: "outside 1m"},
		{name: "public URL with a path", o: MinterOptions{Ring: ring, PublicURL: publicURL + "/links"}, wantErr: "is not scheme://host"},
		{name: "no keys", o: MinterOptions{PublicURL: publicURL}, wantErr: "needs keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMinter(tt.o)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || m.ttl != tt.wantTTL {
				t.Fatalf("ttl %s (%v), want %s", m.ttl, err, tt.wantTTL)
			}
		})
	}
}

// A durable link is for GET or HEAD only: a link of another method is a
// permanent failure, and so is an object whose token would be too long.
func TestMintForRefuses(t *testing.T) {
	m, err := NewMinter(MinterOptions{Ring: NewKeyRing(testKeys(t, "k1")), PublicURL: publicURL})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []*schema.Link{
		{Bucket: testBucket, Object: "a.txt", Method: http.MethodPut},
		{Bucket: testBucket, Object: strings.Repeat("&", 1024), Method: http.MethodGet},
	} {
		if _, err := m.MintFor(t.Context(), l); failure.Classify(err).Kind != failure.KindPermanent {
			t.Errorf("%s %.16s: %v, want a permanent failure", l.Method, l.Object, err)
		}
	}
}
