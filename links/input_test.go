package links

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"github.com/linkissuer/linkissuer/worker"
	"strings"
	"testing"

	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// TestLinkFedBackIsDeadLetteredWithoutSignature: a subscription wired to
// our own results topic feeds a linkissuer.link.v1 message back; it is
// dead-lettered (unknown_schema) and the dead letter holds no signature.
func TestLinkFedBackIsDeadLetteredWithoutSignature(t *testing.T) {
	const sig = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0"
	url := "https://storage.googleapis.com/media/a.jpg?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Expires=900&X-Goog-Signature=" + sig
	data, err := json.Marshal(map[string]any{"url": url, "bucket": "media", "object": "a.jpg", "method": "GET"})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.New(policy.Config{Allow: []string{"media"}})
	if err != nil {
		t.Fatal(err)
	}
	lh := &Issuer{Policy: pol}
	pub := &fakePublisher{}
	r, err := worker.NewRouter(lh.Handle, pub, worker.RouterOptions{DeadLetter: worker.DeadLetters("w", nil)})
	if err != nil {
		t.Fatal(err)
	}
	d := r.Process(context.Background(), &worker.Message{ID: "1", Data: data, Attributes: map[string]string{schema.AttrSchema: schema.LinkV1}})
	if d.Outcome != worker.OutcomeDeadLetter || d.Reason != string(schema.CodeUnknownSchema) || len(pub.got) != 1 {
		t.Fatalf("decision %+v, published %d; want one unknown_schema dead letter", d, len(pub.got))
	}
	if strings.Contains(string(pub.got[0].Data), sig) {
		t.Errorf("dead letter carries the signature: %s", pub.got[0].Data)
	}
	var dl schema.DeadLetter
	if err := json.Unmarshal(pub.got[0].Data, &dl); err != nil || strings.Contains(string(dl.OriginalData), sig) ||
		!strings.Contains(string(dl.OriginalData), "X-Goog-Signature="+schema.Redacted) {
		t.Errorf("original_data %s (%v), want the link with its signature redacted", dl.OriginalData, err)
	}
}

// TestDotSegmentsRefused: object names with . or .. segments, literal or
// percent-encoded (also in a CloudEvent subject over HTTP), are
// dead-lettered with dot_segment instead of being signed under a prefix
// rule; AllowDotSegments lets them through.
func TestDotSegmentsRefused(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	key, err := sign.NewKeySigner("linkissuer@test-project.iam.gserviceaccount.com", rk)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := sign.New(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.New(policy.Config{Allow: []string{"media/public/**"}})
	if err != nil {
		t.Fatal(err)
	}
	lh := &Issuer{Policy: pol, Signer: signer}
	notification := func(name string) *worker.Message {
		obj, _ := json.Marshal(map[string]any{"kind": "storage#object", "bucket": "media", "name": name, "generation": "7"})
		return &worker.Message{ID: "n", Data: obj, Attributes: map[string]string{
			"eventType": "OBJECT_FINALIZE", "payloadFormat": "JSON_API_V1", "bucketId": "media", "objectId": name,
			"objectGeneration": "7", "eventTime": "2026-03-01T10:00:00Z",
		}}
	}
	event := func(subject, name string) *worker.Message {
		obj, _ := json.Marshal(map[string]any{"kind": "storage#object", "bucket": "media", "name": name, "generation": "7"})
		h := map[string][]string{
			"Content-Type": {"application/json"}, "Ce-Id": {"e"}, "Ce-Specversion": {"1.0"},
			"Ce-Type": {schema.CloudEventFinalized}, "Ce-Source": {"//storage.googleapis.com/projects/_/buckets/media"},
			"Ce-Subject": {subject}, "Ce-Time": {"2026-03-01T10:00:00Z"},
		}
		// As the push server reads a CloudEvent over HTTP.
		attrs, data, err := schema.CloudEventHTTP(context.Background(), h, obj)
		if err != nil {
			t.Fatal(err)
		}
		return &worker.Message{ID: attrs["ce-id"], Data: data, Attributes: attrs}
	}
	tests := []struct {
		name string
		m    *worker.Message
		want string // dead-letter reason; "" means issued
	}{
		{name: "dot-dot", m: notification("public/../private/secret"), want: string(schema.CodeDotSegment)},
		{name: "dot", m: notification("public/./x"), want: string(schema.CodeDotSegment)},
		{name: "percent-encoded in the name", m: notification("public/%2e%2E/private/secret"), want: string(schema.CodeDotSegment)},
		{name: "percent-encoded in a CloudEvent subject", m: event("objects/public/%2E%2E/private/secret", "public/../private/secret"), want: string(schema.CodeDotSegment)},
		{name: "dots inside a segment are fine", m: notification("public/a..b/.hidden"), want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub := &fakePublisher{}
			r, err := worker.NewRouter(lh.Handle, pub, worker.RouterOptions{DeadLetter: worker.DeadLetters("w", nil)})
			if err != nil {
				t.Fatal(err)
			}
			d := r.Process(context.Background(), tc.m)
			if tc.want == "" {
				if d.Outcome != worker.OutcomeIssued {
					t.Fatalf("decision %+v, want issued", d)
				}
				return
			}
			if d.Outcome != worker.OutcomeDeadLetter || d.Reason != tc.want {
				t.Fatalf("decision %+v, want dead letter %s", d, tc.want)
			}
		})
	}
	allowing, err := policy.New(policy.Config{Allow: []string{"media/public/**"}, AllowDotSegments: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := allowing.Check(policy.Request{Bucket: "media", Object: "public/../x"}); err != nil {
		t.Errorf("AllowDotSegments: %v", err)
	}
}
