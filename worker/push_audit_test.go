package worker

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/internal/audittest"
	"github.com/linkissuer/linkissuer/internal/idtokentest"
	"github.com/linkissuer/linkissuer/sign"
)

// TestPushCallerReachesAudit: the service account whose token the push
// endpoint verified is the caller of the audit record of the link the
// pushed event yields: its email, and the token's subject and issuer.
func TestPushCallerReachesAudit(t *testing.T) {
	iss := idtokentest.New(t)
	token := iss.Token(t, idtokentest.Claims(pushAud, pushSA))
	h := newPushHarness(t, PushOptions{Audiences: []string{pushAud}, AllowedEmails: []string{pushSA}, Validator: iss.Validator(t)})
	sink := &audittest.Sink{}
	rec, err := audit.New(sink, audit.Options{Signer: audit.Signer{Identity: "sa@p.iam.gserviceaccount.com", Kind: sign.KindRSA}, FailClosed: true})
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.handle = func(ctx context.Context, m *Message) ([]Output, error) {
		ctx = audit.WithRequester(ctx, audit.Requester{Path: audit.PathEvent, MessageID: m.ID})
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		l := audit.Link{Request: sign.Request{Method: "GET", Bucket: "b", Object: "o", Time: now},
			Signed: &sign.SignedURL{URL: "https://storage.googleapis.com/b/o?X-Goog-Date=20260101T000000Z&X-Goog-Signature=00", Expires: now.Add(time.Hour)}}
		return nil, rec.Record(ctx, l)
	}
	h.mu.Unlock()
	if status, code := h.post(t, PathPush, http.Header{"Authorization": {"Bearer " + token}}, envelope(t, nil, nil, nil)); status != 204 {
		t.Fatalf("push: %d %q", status, code)
	}
	recs := sink.Records()
	if len(recs) != 1 || recs[0].Path != audit.PathEvent || recs[0].Caller != pushSA ||
		recs[0].CallerSubject != idtokentest.Subject || recs[0].CallerIssuer != idtokentest.Issuer {
		t.Errorf("records %+v, want one event record with caller %s, subject %s, issuer %s", recs, pushSA, idtokentest.Subject, idtokentest.Issuer)
	}
	sink.NoCredential(t, token)
}
