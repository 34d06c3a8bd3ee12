package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/internal/audittest"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

const testToken = "eyJ2IjoxLCJrIjoiazEifQ-secret-part"

var (
	tokenAt  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	minter   = Identity{Email: "mailer@p.iam.gserviceaccount.com", Subject: "1122", Issuer: "https://accounts.google.com"}
	tokenSum = sha256.Sum256([]byte(testToken))
)

func testSigner() Signer {
	return Signer{Identity: "sa@p.iam.gserviceaccount.com", Kind: sign.KindRSA, KeyID: "kid"}
}

// A minted durable link is recorded with outcome "minted": who asked
// (email, subject, issuer), the token id, what its clicks will sign, the
// durable link's own expiry and the SHA-256 of the token, never the token.
func TestMint(t *testing.T) {
	sink := &audittest.Sink{}
	r, err := New(sink, Options{Signer: testSigner()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithRequester(context.Background(), Requester{Path: PathDurable, Caller: minter, TokenID: "abc"})
	m := Minting{At: tokenAt, Bucket: "b", Object: "reports/q3.pdf", Generation: 7, Method: "get",
		ResponseParams: []sign.Param{{Name: "response-content-disposition", Value: "attachment"}},
		ExpiresAt:      tokenAt.Add(30 * 24 * time.Hour), Token: testToken}
	if err := r.Mint(ctx, m); err != nil {
		t.Fatal(err)
	}
	rec := onlyRecord(t, r, sink)
	want := schema.AuditRecord{RecordID: rec.RecordID, IssuedAt: tokenAt, Path: PathDurable, Outcome: schema.OutcomeMinted,
		Caller: minter.Email, CallerSubject: minter.Subject, CallerIssuer: minter.Issuer, TokenID: "abc",
		Bucket: "b", Object: "reports/q3.pdf", Generation: 7, Method: "GET",
		ResponseParams: []schema.AuditParam{{Name: "response-content-disposition", Value: "attachment"}},
		ExpiresAt:      tokenAt.Add(30 * 24 * time.Hour), SignerIdentity: "sa@p.iam.gserviceaccount.com", SignerKind: "rsa", KeyID: "kid",
		Fingerprint: "sha256:" + hex.EncodeToString(tokenSum[:])}
	if got := *rec; got.RecordID == "" || !equalRecords(got, want) {
		t.Errorf("record\n%+v\nwant\n%+v", got, want)
	}
	if got := TokenFingerprint(testToken); got != want.Fingerprint {
		t.Errorf("TokenFingerprint = %s, want %s", got, want.Fingerprint)
	}
	sink.NoCredential(t, testToken, "secret-part")
	if err := r.Mint(ctx, Minting{At: tokenAt, Bucket: "b", Object: "o"}); err == nil {
		t.Error("a minting without its token was recorded")
	}
}

// A refused click is recorded with outcome "refused", its reason, the
// token's id and the SHA-256 of the token, never the token itself.
func TestRefuse(t *testing.T) {
	sink := &audittest.Sink{}
	r, err := New(sink, Options{Signer: Signer{Identity: "sa@p.iam.gserviceaccount.com", Kind: sign.KindRSA}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithRequester(context.Background(), Requester{Path: PathDurable, Caller: Identity{Email: "durable:abc"}, TokenID: "abc"})
	if err := r.Refuse(ctx, Refusal{At: tokenAt, Bucket: "b", Object: "o.pdf", Method: "get", ExpiresAt: tokenAt.Add(time.Hour),
		Reason: "revoked: prefix", Token: testToken}); err != nil {
		t.Fatal(err)
	}
	rec := onlyRecord(t, r, sink)
	want := schema.AuditRecord{RecordID: rec.RecordID, IssuedAt: tokenAt, Path: PathDurable, Outcome: schema.OutcomeRefused,
		Reason: "revoked: prefix", Caller: "durable:abc", TokenID: "abc", Bucket: "b", Object: "o.pdf", Method: "GET",
		ExpiresAt: tokenAt.Add(time.Hour), SignerIdentity: "sa@p.iam.gserviceaccount.com", SignerKind: "rsa",
		Fingerprint: "sha256:" + hex.EncodeToString(tokenSum[:])}
	if got := *rec; got.RecordID == "" || !equalRecords(got, want) {
		t.Errorf("record\n%+v\nwant\n%+v", got, want)
	}
	sink.NoCredential(t, testToken, "secret-part")
	if err := r.Refuse(ctx, Refusal{At: tokenAt, Bucket: "b", Object: "o", Token: testToken}); err == nil {
		t.Error("a refusal without a reason was recorded")
	}
}

// Records of tokens (mintings, refusals) take the path of links' records:
// fail-open they join the bounded queue without waiting and are dropped
// and counted beyond it; fail-closed they wait for the sink, and a sink
// failure or a cut wait is ErrUnavailable, transient, audit_unavailable.
func TestTokenRecordsFailOpenOrClosed(t *testing.T) {
	ctx := WithRequester(context.Background(), Requester{Path: PathDurable, Caller: minter, TokenID: "abc"})
	mint := func(r *Recorder, ctx context.Context) error {
		return r.Mint(ctx, Minting{At: tokenAt, Bucket: "b", Object: "o", Method: "GET", ExpiresAt: tokenAt.Add(time.Hour), Token: testToken})
	}
	refuse := func(r *Recorder, ctx context.Context) error {
		return r.Refuse(ctx, Refusal{At: tokenAt, Bucket: "b", Object: "o", Reason: "expired", Token: testToken})
	}
	t.Run("fail-open", func(t *testing.T) {
		sink := &audittest.Sink{Gate: make(chan struct{})}
		r, err := New(sink, Options{Signer: testSigner(), QueueSize: 2})
		if err != nil {
			t.Fatal(err)
		}
		// The sink holds every write: none of these waits for it.
		for i, write := range []func(*Recorder, context.Context) error{mint, refuse, refuse} {
			if err := write(r, ctx); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
		if r.Queued() != 2 || r.Dropped() != 1 || r.Failures() != 1 {
			t.Errorf("queued %d, dropped %d, failures %d; want 2, 1, 1", r.Queued(), r.Dropped(), r.Failures())
		}
		close(sink.Gate)
		if err := r.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if m, f := sink.Outcome(schema.OutcomeMinted), sink.Outcome(schema.OutcomeRefused); len(m) != 1 || len(f) != 1 {
			t.Errorf("written: %d minted, %d refused; want 1 and 1", len(m), len(f))
		}
		sink.Fail(errors.New("topic down"))
		if err := mint(r, ctx); err != nil {
			t.Errorf("fail-open mint with the sink down: %v, want nil", err)
		}
		if err := r.Flush(context.Background()); err != nil || r.Failures() != 2 {
			t.Errorf("flush %v, %d failures; want 2", err, r.Failures())
		}
	})
	t.Run("fail-closed", func(t *testing.T) {
		sink := &audittest.Sink{}
		sink.Fail(errors.New("topic down"))
		r, err := New(sink, Options{Signer: testSigner(), FailClosed: true})
		if err != nil {
			t.Fatal(err)
		}
		for name, write := range map[string]func(*Recorder, context.Context) error{"mint": mint, "refuse": refuse} {
			err := write(r, ctx)
			if c := failure.Classify(err); !errors.Is(err, ErrUnavailable) || c.Kind != failure.KindTransient || c.Reason() != "audit_unavailable" {
				t.Errorf("%s with the sink down: %v (%+v), want ErrUnavailable, transient, audit_unavailable", name, err, c)
			}
		}
		held := &audittest.Sink{Gate: make(chan struct{})}
		r, err = New(held, Options{Signer: testSigner(), FailClosed: true})
		if err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if err := mint(r, short); !errors.Is(err, ErrUnavailable) {
			t.Errorf("mint while the sink holds the record: %v, want ErrUnavailable once the request ends", err)
		}
		close(held.Gate)
		if err := mint(r, ctx); err != nil || len(held.Outcome(schema.OutcomeMinted)) != 1 {
			t.Errorf("mint with the sink back: %v, %d records; want nil and 1", err, len(held.Records()))
		}
	})
}

func equalRecords(a, b schema.AuditRecord) bool {
	da, _ := a.Data()
	db, _ := b.Data()
	return string(da) == string(db)
}
