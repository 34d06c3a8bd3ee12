package links

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/worker"
)

// BenchmarkHandleNotification is the issuance hot path without I/O: one
// GCS OBJECT_FINALIZE notification (its payload carrying object metadata)
// routed, parsed, checked against the policy, signed with an HMAC key and
// encoded as a linkissuer.link.v1 output.
//
//	go test -run '^$' -bench HandleNotification -benchmem ./links
func BenchmarkHandleNotification(b *testing.B) {
	h := benchIssuer(b)
	m := benchNotification(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		outs, err := h.Handle(ctx, m)
		if err != nil || len(outs) != 1 {
			b.Fatal(outs, err)
		}
	}
}

func benchIssuer(b *testing.B) *Issuer {
	b.Helper()
	p, err := policy.New(policy.Config{Allow: []string{"bench"}})
	if err != nil {
		b.Fatal(err)
	}
	return benchIssuerFor(b, p)
}

// benchIssuerFor is an Issuer signing with an HMAC key under p.
func benchIssuerFor(b testing.TB, p *policy.Policy) *Issuer {
	b.Helper()
	hmac, err := sign.NewHMACSigner("GOOG1EXAMPLEACCESSID", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0")
	if err != nil {
		b.Fatal(err)
	}
	urls, err := sign.New(hmac, nil)
	if err != nil {
		b.Fatal(err)
	}
	return &Issuer{Signer: urls, Policy: p}
}

// mediaIssuer is an Issuer allowing bucket media, signing with an HMAC
// key.
func mediaIssuer(t testing.TB) *Issuer {
	t.Helper()
	pol, err := policy.New(policy.Config{Allow: []string{"media"}})
	if err != nil {
		t.Fatal(err)
	}
	return benchIssuerFor(t, pol)
}

func benchNotification(b *testing.B) *worker.Message {
	b.Helper()
	data, err := json.Marshal(map[string]any{
		"kind": "storage#object", "bucket": "bench", "name": "campaigns/2026/report.pdf", "generation": "1700000000000000",
		"size": "52341", "contentType": "application/pdf",
		"metadata": map[string]string{"recipient": "ada@example.com", "tenant": "acme", "campaign": "spring"},
	})
	if err != nil {
		b.Fatal(err)
	}
	return &worker.Message{ID: "1", Data: data, Attributes: map[string]string{
		schema.AttrEventType: "OBJECT_FINALIZE", schema.AttrPayloadFormat: "JSON_API_V1", schema.AttrBucketID: "bench",
		schema.AttrObjectID: "campaigns/2026/report.pdf", schema.AttrObjectGeneration: "1700000000000000",
		schema.AttrEventTime: "2026-03-01T10:00:00Z", "tenant": "acme", "campaign": "spring",
	}}
}

// BenchmarkHandleNotificationPassThrough is BenchmarkHandleNotification
// with two metadata keys and one attribute allow-listed and copied.
func BenchmarkHandleNotificationPassThrough(b *testing.B) {
	h := benchIssuer(b)
	var err error
	if h.Pass, err = NewPassThrough([]string{"recipient", "tenant"}, []string{"campaign"}); err != nil {
		b.Fatal(err)
	}
	m := benchNotification(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		outs, err := h.Handle(ctx, m)
		if err != nil || len(outs) != 1 {
			b.Fatal(outs, err)
		}
	}
}
