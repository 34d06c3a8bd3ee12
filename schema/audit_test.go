package schema

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// Audit records, as the audit package writes them (a link issued to a
// verified caller, a durable link minted), validate against
// linkissuer.audit.v1's JSON Schema; one with a URL field does not.
func TestAuditRecordMatchesSchema(t *testing.T) {
	set := loadSchemaSet(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	issued := &AuditRecord{
		RecordID: "0123456789abcdef0123456789abcdef", IssuedAt: now, Path: "sync", Outcome: OutcomeIssued,
		Caller: "caller@p.iam.gserviceaccount.com", CallerSubject: "112233445566778899000", CallerIssuer: "https://accounts.google.com",
		MessageID: "sync-1", JobID: "campaign-7", Submitter: "alice@example.com", Bucket: "b", Object: "o & p.txt", Generation: 7,
		Method: "GET", SignedHeaders: []string{"host"}, ResponseParams: []AuditParam{{Name: "generation", Value: "7"}},
		ExpiresAt: now.Add(time.Hour), SignerIdentity: "sa@p.iam.gserviceaccount.com", SignerKind: "rsa",
		Fingerprint: "sha256:" + "ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01ab01",
	}
	minted := *issued
	minted.Path, minted.Outcome, minted.TokenID, minted.SignedHeaders = "durable", OutcomeMinted, "0123456789abcdef0123456789abcdef", nil
	minted.ExpiresAt = now.Add(90 * 24 * time.Hour)
	for _, r := range []*AuditRecord{issued, &minted} {
		data, err := r.Data()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range set.validate(schemaID(AuditV1), mustDecode(t, data)) {
			t.Errorf("record %s: %s", data, e)
		}
	}
	data, _ := issued.Data()
	bad := mustDecode(t, data).(map[string]any)
	bad["url"] = "https://storage.googleapis.com/b/o?X-Goog-Signature=00"
	if errs := set.validate(schemaID(AuditV1), bad); len(errs) == 0 {
		t.Error("a record with a url validates")
	}
}

// AuditRecord's fields are the JSON Schema's properties, and a field is
// required there exactly when the Go record always writes it (no
// omitempty): a field added to one and not the other fails here (and
// deploy's TestAuditTableMatchesSchema holds the BigQuery table to the
// JSON Schema).
func TestAuditRecordFieldsMatchSchema(t *testing.T) {
	raw, err := JSONSchema(AuditV1)
	if err != nil {
		t.Fatal(err)
	}
	var sch struct {
		Required   []string                   `json:"required"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(raw, &sch); err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeFor[AuditRecord]()
	seen := map[string]bool{}
	for f := range typ.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			t.Errorf("field %s has no JSON name", f.Name)
			continue
		}
		seen[name] = true
		if _, ok := sch.Properties[name]; !ok {
			t.Errorf("field %s (%q) is not a property of %s.json", f.Name, name, AuditV1)
		}
		if required, omit := slices.Contains(sch.Required, name), strings.Contains(opts, "omitempty"); required == omit {
			t.Errorf("field %q: required in the JSON Schema %v, omitempty in Go %v", name, required, omit)
		}
	}
	for name := range sch.Properties {
		if !seen[name] {
			t.Errorf("property %q of %s.json is not a field of AuditRecord", name, AuditV1)
		}
	}
}
