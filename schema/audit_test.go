package schema

import (
	"testing"
	"time"
)

// An audit record, as the audit package writes it, validates against
// linkissuer.audit.v1's JSON Schema; one with a URL field does not.
func TestAuditRecordMatchesSchema(t *testing.T) {
	set := loadSchemaSet(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &AuditRecord{
		RecordID: "0123456789abcdef0123456789abcdef", IssuedAt: now, Path: "sync", Outcome: OutcomeIssued,
		Caller: "caller@p.iam.gserviceaccount.com", MessageID: "sync-1", JobID: "campaign-7", Submitter: "alice@example.com", Bucket: "b", Object: "o & p.txt", Generation: 7,
		Method: "GET", SignedHeaders: []string{"host"}, ResponseParams: []AuditParam{{Name: "generation", Value: "7"}},
		ExpiresAt: now.Add(time.Hour), SignerIdentity: "sa@p.iam.gserviceaccount.com", SignerKind: "rsa",
		Fingerprint: "sha256:" + "ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01",
	}
	data, err := r.Data()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range set.validate(schemaID(AuditV1), mustDecode(t, data)) {
		t.Errorf("record %s: %s", data, e)
	}
	bad := mustDecode(t, data).(map[string]any)
	bad["url"] = "https://storage.googleapis.com/b/o?X-Goog-Signature=00"
	if errs := set.validate(schemaID(AuditV1), bad); len(errs) == 0 {
		t.Error("a record with a url validates")
	}
}
