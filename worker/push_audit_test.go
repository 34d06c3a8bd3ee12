package worker

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// TestPushCallerReachesAudit: the service account whose token the push
// endpoint verified is the caller of the audit record of the link the
// pushed event yields.
func TestPushCallerReachesAudit(t *testing.T) {
	iss := newTokenIssuer(t)
	now := time.Now()
	token := iss.sign(t, iss.key, "k1", map[string]any{
		"iss": "https://accounts.google.com", "aud": pushAud, "sub": "1234",
		"email": pushSA, "email_verified": true,
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	h := newPushHarness(t, PushOptions{Audiences: []string{pushAud}, AllowedEmails: []string{pushSA}, Validator: iss.validator(t)})
	sink := &recordSink{}
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
	if len(sink.recs) != 1 || sink.recs[0].Caller != pushSA || sink.recs[0].Path != audit.PathEvent {
		t.Errorf("records %+v, want one event record with caller %s", sink.recs, pushSA)
	}
}

// recordSink keeps records.
type recordSink struct {
	mu   sync.Mutex
	recs []*schema.AuditRecord
}

func (s *recordSink) Write(_ context.Context, r *schema.AuditRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, r)
	return nil
}
