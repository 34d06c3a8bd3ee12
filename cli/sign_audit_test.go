package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/schema"
)

// TestSignAudit: `sign --audit-topic` on the Pub/Sub emulator writes one
// record per printed URL, with path cli and the caller; with
// --audit-fail-closed and a topic that does not exist, no URL is printed.
func TestSignAudit(t *testing.T) {
	client := emulatorTopic(t, "proj", "audit")
	env := map[string]string{"LINKISSUER_SUBMITTER": "alice@example.com"}
	for _, mode := range []string{"fail-open", "fail-closed"} {
		args := []string{"--key-file", dummyKey, "--audit-topic", "projects/proj/topics/audit", "gs://b-1/a.txt", "gs://b-1/b c.txt"}
		if mode == "fail-closed" {
			args = append([]string{"--audit-fail-closed"}, args...)
		}
		code, stdout, stderr := runCmd(t, Sign, "", env, args...)
		if code != ExitOK {
			t.Fatalf("%s: exit %d: %s", mode, code, stderr)
		}
		printed := map[string]bool{}
		for _, u := range strings.Fields(stdout) {
			fp, err := audit.Fingerprint(u)
			if err != nil {
				t.Fatal(err)
			}
			printed[fp] = true
		}
		recs := auditRecords(t, client, "audit-sub", len(printed))
		if len(printed) != 2 || len(recs) != 2 {
			t.Fatalf("%s: %d URLs printed, %d records", mode, len(printed), len(recs))
		}
		for _, r := range recs {
			if !printed[r.Fingerprint] || r.Path != audit.PathCLI || r.Caller != "alice@example.com" || r.Bucket != "b-1" {
				t.Errorf("%s: record %+v does not describe a printed URL", mode, r)
			}
		}
	}

	code, stdout, stderr := runCmd(t, Sign, "", env, "--key-file", dummyKey, "--audit-topic", "projects/proj/topics/missing", "--audit-fail-closed", "gs://b-1/a.txt")
	if code != ExitFailure || stdout != "" || !strings.Contains(stderr, "audit") {
		t.Errorf("missing audit topic, fail-closed: exit %d, stdout %q, stderr %q; want %d, nothing printed", code, stdout, stderr, ExitFailure)
	}
}

// auditRecords receives n records from the subscription sub, checking
// that none carries a URL or a signature.
func auditRecords(t *testing.T, client *pubsub.Client, sub string, n int) []schema.AuditRecord {
	t.Helper()
	var recs []schema.AuditRecord
	for _, m := range receive(t, client, sub, n, 30*time.Second) {
		if strings.Contains(string(m.Data), "Signature") || strings.Contains(string(m.Data), "://") {
			t.Errorf("record carries a URL or signature: %s", m.Data)
		}
		var r schema.AuditRecord
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Errorf("record: %v", err)
		}
		recs = append(recs, r)
	}
	return recs
}
