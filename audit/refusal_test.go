package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// A refused click is recorded with outcome "refused", its reason, the
// token's id and the SHA-256 of the token, never the token itself.
func TestRefuse(t *testing.T) {
	const token = "eyJ2IjoxLCJrIjoiazEifQ-secret-part"
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sink := &memSink{}
	r, err := New(sink, Options{Signer: Signer{Identity: "sa@p.iam.gserviceaccount.com", Kind: sign.KindRSA}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithRequester(context.Background(), Requester{Path: PathDurable, Caller: "durable:abc", TokenID: "abc"})
	if err := r.Refuse(ctx, Refusal{At: at, Bucket: "b", Object: "o.pdf", Method: "get", ExpiresAt: at.Add(time.Hour),
		Reason: "revoked: prefix", Token: token}); err != nil {
		t.Fatal(err)
	}
	if len(sink.recs) != 1 {
		t.Fatalf("%d records", len(sink.recs))
	}
	rec := sink.recs[0]
	sum := sha256.Sum256([]byte(token))
	want := schema.AuditRecord{RecordID: rec.RecordID, IssuedAt: at, Path: PathDurable, Outcome: schema.OutcomeRefused,
		Reason: "revoked: prefix", Caller: "durable:abc", TokenID: "abc", Bucket: "b", Object: "o.pdf", Method: "GET",
		ExpiresAt: at.Add(time.Hour), SignerIdentity: "sa@p.iam.gserviceaccount.com", SignerKind: "rsa",
		Fingerprint: "sha256:" + hex.EncodeToString(sum[:])}
	if got := *rec; got.RecordID == "" || !equalRecords(got, want) {
		t.Errorf("record\n%+v\nwant\n%+v", got, want)
	}
	data, err := rec.Data()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "secret-part") {
		t.Errorf("the record carries the token: %s", data)
	}

	closed, err := New(&memSink{err: errors.New("topic down")}, Options{Signer: Signer{Identity: "sa@p", Kind: sign.KindRSA}, FailClosed: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := closed.Refuse(ctx, Refusal{At: at, Bucket: "b", Object: "o", Reason: "expired", Token: token}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("fail-closed sink failure: %v, want ErrUnavailable", err)
	}
	if err := r.Refuse(ctx, Refusal{At: at, Bucket: "b", Object: "o", Token: token}); err == nil {
		t.Error("a refusal without a reason was recorded")
	}
}

func equalRecords(a, b schema.AuditRecord) bool {
	da, _ := a.Data()
	db, _ := b.Data()
	return string(da) == string(db)
}
