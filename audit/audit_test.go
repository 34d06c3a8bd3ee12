package audit

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

const base = "https://storage.googleapis.com/b/o.txt?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=sa%40p.iam.gserviceaccount.com%2F20260101%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Date=20260101T000000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=host"

func TestFingerprint(t *testing.T) {
	ref, err := Fingerprint(base + "&X-Goog-Signature=abcd")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		url      string
		wantSame bool
		wantErr  bool
	}{
		{name: "another signature", url: base + "&X-Goog-Signature=ef01", wantSame: true},
		{name: "signature elsewhere in the query", url: strings.Replace(base, "X-Goog-Date", "X-Goog-Signature=99&X-Goog-Date", 1), wantSame: true},
		{name: "AWS4 signature", url: base + "&X-Amz-Signature=abcd", wantSame: true},
		{name: "other object", url: strings.Replace(base, "o.txt", "p.txt", 1) + "&X-Goog-Signature=abcd"},
		{name: "other expiry", url: strings.Replace(base, "900", "901", 1) + "&X-Goog-Signature=abcd"},
		{name: "pinned generation", url: base + "&generation=5&X-Goog-Signature=abcd"},
		{name: "no signature", url: base, wantErr: true},
		{name: "not a URL", url: "%zz?X-Goog-Signature=1", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Fingerprint(tc.url)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if (got == ref) != tc.wantSame {
				t.Errorf("fingerprint %s vs %s, want same: %v", got, ref, tc.wantSame)
			}
			if !strings.HasPrefix(got, "sha256:") || len(got) != len("sha256:")+64 {
				t.Errorf("fingerprint %q is not sha256:HEX", got)
			}
		})
	}
}

// memSink keeps records; err fails every write.
type memSink struct {
	recs []*schema.AuditRecord
	err  error
}

func (m *memSink) Write(_ context.Context, r *schema.AuditRecord) error {
	if m.err != nil {
		return m.err
	}
	m.recs = append(m.recs, r)
	return nil
}

func TestRecordCarriesNoCredential(t *testing.T) {
	sink := &memSink{}
	r, err := New(sink, Options{Signer: Signer{Identity: "sa@p.iam.gserviceaccount.com", Kind: sign.KindRSA, KeyID: "kid"}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ctx := WithRequester(context.Background(), Requester{Path: PathSync, Caller: "caller@p.iam.gserviceaccount.com", MessageID: "sync-1"})
	l := Link{
		Request: sign.Request{Method: "GET", Bucket: "b", Object: "o.txt", Time: now,
			Query: []sign.Param{{Name: "response-content-disposition", Value: "attachment"}}},
		Signed:     &sign.SignedURL{URL: base + "&response-content-disposition=attachment&X-Goog-Signature=deadbeefcafe", Method: "GET", Expires: now.Add(15 * time.Minute)},
		Generation: 7,
	}
	if err := r.Record(ctx, l); err != nil {
		t.Fatal(err)
	}
	if len(sink.recs) != 1 {
		t.Fatalf("%d records", len(sink.recs))
	}
	data, err := sink.recs[0].Data()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"deadbeefcafe", "Signature", "https://"} {
		if strings.Contains(string(data), secret) {
			t.Errorf("record contains %q: %s", secret, data)
		}
	}
	var got schema.AuditRecord
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Caller != "caller@p.iam.gserviceaccount.com" || got.Path != PathSync || got.Generation != 7 || got.KeyID != "kid" ||
		got.SignerKind != "rsa" || len(got.ResponseParams) != 1 || got.SignedHeaders[0] != "host" || got.Outcome != schema.OutcomeIssued {
		t.Errorf("record %s", data)
	}

	// Fail-closed: the error is retryable and names the audit.
	sink.err = errors.New("topic gone")
	closed, _ := New(sink, Options{Signer: Signer{Identity: "x", Kind: sign.KindHMAC}, FailClosed: true})
	err = closed.Record(ctx, l)
	if !errors.Is(err, ErrUnavailable) || !sign.IsRetryable(err) {
		t.Errorf("fail-closed error %v: want ErrUnavailable and retryable", err)
	}
	open, _ := New(sink, Options{Signer: Signer{Identity: "x", Kind: sign.KindHMAC}})
	if err := open.Record(ctx, l); err != nil || open.Failures() != 1 {
		t.Errorf("fail-open: %v, %d failures; want nil and 1", err, open.Failures())
	}
}
