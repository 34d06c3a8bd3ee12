package durable

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/internal/idtokentest"
	"github.com/linkissuer/linkissuer/schema"
)

// TestMintIsAudited: POST /v1/durable-links writes one record with outcome
// "minted": the verified caller (email, subject, issuer), the token id,
// what the link's clicks sign (bucket, object, generation, method,
// response parameters), the durable link's own expiry, and the SHA-256
// of the token as fingerprint. No record carries the token, the caller's
// ID token or a signature.
func TestMintIsAudited(t *testing.T) {
	gcs := newGCS(t)
	urls, _ := keySigner(t, gcs)
	s := newStack(t, testKeys(t, "k1"), urls, gcs)
	pinned := s.mustMint(t, `{"bucket":"durable-media","object":"reports/q3.pdf","generation":1234,"method":"head","ttl":"30d",`+
		`"response_params":{"response-content-disposition":"attachment"}}`)
	live := s.mustMint(t, `{"bucket":"durable-media","object":"reports/q3.pdf","ttl":"1h"}`)
	status, loc := s.click(t, live.URL)
	if status != http.StatusFound {
		t.Fatalf("click: %d", status)
	}

	minted := s.records(t, schema.OutcomeMinted)
	if len(minted) != 2 {
		t.Fatalf("%d minted records, want 2: %+v", len(minted), minted)
	}
	got := minted[0]
	if got.TokenID != pinned.ID {
		got = minted[1]
	}
	tok := strings.TrimPrefix(pinned.URL, publicURL+PathClick)
	now := s.now.Load().Truncate(time.Second)
	want := schema.AuditRecord{RecordID: got.RecordID, IssuedAt: now.UTC(), Path: audit.PathDurable, Outcome: schema.OutcomeMinted,
		Caller: callerSA, CallerSubject: idtokentest.Subject, CallerIssuer: idtokentest.Issuer, TokenID: pinned.ID,
		Bucket: testBucket, Object: "reports/q3.pdf", Generation: 1234, Method: http.MethodHead,
		ResponseParams: []schema.AuditParam{{Name: "response-content-disposition", Value: "attachment"}},
		ExpiresAt:      pinned.ExpiresAt, SignerIdentity: "linkissuer@test-project.iam.gserviceaccount.com", SignerKind: "rsa",
		Fingerprint: audit.TokenFingerprint(tok)}
	gotData, err := got.Data()
	if err != nil {
		t.Fatal(err)
	}
	wantData, _ := want.Data()
	if string(gotData) != string(wantData) {
		t.Errorf("minted record\n%s\nwant\n%s", gotData, wantData)
	}
	if !pinned.ExpiresAt.Equal(now.Add(30 * 24 * time.Hour)) {
		t.Errorf("durable link expires at %s, want 30 days after %s", pinned.ExpiresAt, now)
	}

	issued := s.records(t, schema.OutcomeIssued)
	if len(issued) != 1 || issued[0].TokenID != live.ID || issued[0].Caller != "durable:"+live.ID || issued[0].CallerSubject != "" {
		t.Errorf("click records %+v, want one for %s", issued, live.ID)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	sig := u.Query().Get("X-Goog-Signature")
	if sig == "" {
		t.Fatalf("redirect %s carries no signature", loc)
	}
	s.sink.NoCredential(t, tok, strings.TrimPrefix(live.URL, publicURL+PathClick), s.idToken, sig, loc)
}

// TestMintFailsClosed: with auditing fail-closed, a durable link whose
// record cannot be written is not released (503 audit_unavailable, no
// URL); a refused click is refused all the same. Fail-open, the link is
// released and the failure counted.
func TestMintFailsClosed(t *testing.T) {
	gcs := newGCS(t)
	urls, _ := keySigner(t, gcs)
	const body = `{"bucket":"durable-media","object":"reports/q3.pdf","ttl":"1h"}`

	closed := newStackWith(t, testKeys(t, "k1"), urls, gcs, stackConfig{failClosed: true})
	revoked := closed.mustMint(t, body)
	closed.revoked.mu.Lock()
	closed.revoked.ids[revoked.ID] = true
	closed.revoked.mu.Unlock()
	closed.sink.Fail(errors.New("audit topic down"))
	status, raw := closed.mintRaw(t, closed.idToken, body)
	if status != http.StatusServiceUnavailable || !strings.Contains(string(raw), `"code":"audit_unavailable"`) ||
		strings.Contains(string(raw), PathClick) {
		t.Errorf("mint with the audit sink down: %d %s, want 503 audit_unavailable and no link", status, raw)
	}
	if status, loc := closed.click(t, revoked.URL); status != http.StatusGone || loc != "" {
		t.Errorf("revoked click with the audit sink down: %d %q, want 410", status, loc)
	}
	closed.sink.Fail(nil)
	m := closed.mustMint(t, body)
	minted := closed.records(t, schema.OutcomeMinted)
	if len(minted) != 2 || minted[0].TokenID != revoked.ID || minted[1].TokenID != m.ID {
		t.Errorf("minted records %+v, want %s and %s only", minted, revoked.ID, m.ID)
	}

	open := newStack(t, testKeys(t, "k1"), urls, gcs)
	open.sink.Fail(errors.New("audit topic down"))
	if status, _ := open.mint(t, open.idToken, body); status != http.StatusOK {
		t.Errorf("fail-open mint with the audit sink down: %d, want 200", status)
	}
	if open.records(t, schema.OutcomeMinted); open.rec.Failures() != 1 {
		t.Errorf("fail-open: %d failures, want 1", open.rec.Failures())
	}
}
