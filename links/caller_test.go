package links

import (
	"net/http"
	"strings"
	"testing"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/internal/audittest"
	"github.com/linkissuer/linkissuer/internal/idtokentest"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/worker"
)

// TestSyncCallerReachesAudit: POST /v1/links with a verified ID token,
// one link and a batch: every record names the caller by the token's
// email, subject and issuer, and none carries the token.
func TestSyncCallerReachesAudit(t *testing.T) {
	p, err := policy.New(policy.Config{Allow: []string{"bench"}})
	if err != nil {
		t.Fatal(err)
	}
	issuer := benchIssuerFor(t, p)
	sink := &audittest.Sink{}
	if issuer.Audit, err = audit.New(sink, audit.Options{Signer: audit.Signer{Identity: "GOOG1EXAMPLEACCESSID", Kind: sign.KindHMAC},
		FailClosed: true}); err != nil {
		t.Fatal(err)
	}
	ids := idtokentest.New(t)
	const aud, caller = "https://links.example.com", "mailer@p.iam.gserviceaccount.com"
	h := newPushHarness(t, worker.PushOptions{Audiences: []string{aud}, AllowedEmails: []string{caller}, Validator: ids.Validator(t),
		Links: &Sync{Links: issuer}})
	tok := ids.Token(t, idtokentest.Claims(aud, caller))
	for _, body := range []string{`{"bucket":"bench","object":"a.pdf"}`, `{"items":[{"bucket":"bench","object":"b.pdf"},{"bucket":"bench","object":"c.pdf"}]}`} {
		if status, code := h.post(t, worker.PathLinks, http.Header{"Authorization": {"Bearer " + tok}}, []byte(body)); status != http.StatusOK {
			t.Fatalf("%s: %d %s", body, status, code)
		}
	}
	recs := sink.Records()
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	for _, r := range recs {
		if r.Path != audit.PathSync || r.Caller != caller || r.CallerSubject != idtokentest.Subject || r.CallerIssuer != idtokentest.Issuer ||
			!strings.HasPrefix(r.MessageID, "sync-") {
			t.Errorf("record %+v, want path sync, caller %s (subject %s, issuer %s)", r, caller, idtokentest.Subject, idtokentest.Issuer)
		}
	}
	sink.NoCredential(t, tok)
}
