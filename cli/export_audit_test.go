package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"strings"
	"testing"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/schema"
)

// TestExportAudit: `export --audit-topic` on the Pub/Sub emulator writes
// one record per manifest row and one for the manifest's own URL, as the
// worker records a job's (path job, the job ID, the submitter: here
// $LINKISSUER_SUBMITTER); no record carries a URL or a signature. With
// --audit-fail-closed and a topic that does not exist, the export fails:
// no manifest is written and no URL printed.
func TestExportAudit(t *testing.T) {
	client := emulatorTopic(t, "proj", "audit")
	f := newExportFixture(t, 5)
	env := maps.Clone(f.env)
	env["LINKISSUER_SUBMITTER"] = "alice@example.com"
	key := []string{"--key-file", f.keyFile, "--email", exportEmail}
	args := append([]string{"gs://media/photos", "--manifest", "gs://exports/audited.jsonl", "--job-id", "audited-1", "--json",
		"--audit-topic", "projects/proj/topics/audit", "--audit-fail-closed"}, key...)
	code, stdout, stderr := runCmd(t, Export, "", env, args...)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var done schema.JobDone
	if err := json.Unmarshal([]byte(stdout), &done); err != nil {
		t.Fatal(err)
	}
	released := map[string]string{} // fingerprint -> object
	addURL := func(object, u string) {
		fp, err := audit.Fingerprint(u)
		if err != nil {
			t.Fatal(err)
		}
		released[fp] = object
	}
	addURL("audited.jsonl", done.Manifest.URL)
	rr, err := schema.NewRowReader(bytes.NewReader(f.read(t, "exports", "audited.jsonl")), schema.FormatJSONL, schema.ManifestCSVHeader)
	if err != nil {
		t.Fatal(err)
	}
	for {
		row, err := rr.ReadRow()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		addURL(row.Object, row.URL)
	}
	if len(released) != 6 {
		t.Fatalf("%d URLs released, want 5 rows and the manifest's", len(released))
	}
	recs := auditRecords(t, client, "audit-sub", len(released))
	if len(recs) != len(released) {
		t.Fatalf("%d records for %d URLs", len(recs), len(released))
	}
	for _, r := range recs {
		object, ok := released[r.Fingerprint]
		if !ok || r.Object != object || r.Path != audit.PathJob || r.JobID != "audited-1" || r.Submitter != "alice@example.com" ||
			r.Outcome != schema.OutcomeIssued || r.SignerIdentity != exportEmail {
			t.Errorf("record %+v does not describe a released URL", r)
		}
		delete(released, r.Fingerprint)
	}

	args = append([]string{"gs://media/photos", "--manifest", "gs://exports/withheld.jsonl",
		"--audit-topic", "projects/proj/topics/missing", "--audit-fail-closed"}, key...)
	code, stdout, stderr = runCmd(t, Export, "", env, args...)
	if code != ExitFailure || strings.Contains(stdout, "http") || !strings.Contains(stderr, "link withheld") {
		t.Errorf("missing audit topic, fail-closed: exit %d, stdout %q, stderr %q; want %d and no URL", code, stdout, stderr, ExitFailure)
	}
	if _, err := f.srv.GetObject("exports", "withheld.jsonl"); err == nil {
		t.Error("a manifest was written though its rows' records were not")
	}
}

// An audited export names its submitter as submit does; one that cannot
// be named in a job is refused before anything is signed.
func TestExportSubmitter(t *testing.T) {
	job := &schema.Job{JobID: "j", Source: schema.JobSource{Bucket: "media"}, Method: "GET", ExpiresIn: "1h",
		Output: schema.JobOutput{Manifest: &schema.ManifestTarget{URI: "gs://exports/m.jsonl", Format: schema.FormatJSONL}}}
	env, _, _ := emulateEnv(map[string]string{"LINKISSUER_SUBMITTER": "bob@example.com"})
	if err := exportSubmitter(env, job); err != nil || job.Submitter != "bob@example.com" {
		t.Errorf("submitter %q (%v)", job.Submitter, err)
	}
	job.Submitter = ""
	env, _, _ = emulateEnv(map[string]string{"LINKISSUER_SUBMITTER": "bob\nmallory"})
	if err := exportSubmitter(env, job); err == nil || !strings.Contains(err.Error(), "submitter") {
		t.Errorf("a submitter with a line break: %v", err)
	}
}
