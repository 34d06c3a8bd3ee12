package jobs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/internal/pubsubemu"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// auditRecorder returns a recorder publishing to topic on the emulator
// (which need not exist).
func (s *stack) auditRecorder(topic string, failClosed bool) *audit.Recorder {
	s.t.Helper()
	pub := s.Client.Publisher(topic)
	pub.PublishSettings = audit.PublishSettings(2 * time.Millisecond)
	s.t.Cleanup(pub.Stop)
	rec, err := audit.New(audit.PubSubSink{Publisher: pub}, audit.Options{
		Signer: audit.Signer{Identity: testEmail, Kind: sign.KindRSA}, FailClosed: failClosed})
	if err != nil {
		s.t.Fatal(err)
	}
	return rec
}

// TestJobRowsAuditedOneForOne: a sharded job run by a pull worker with
// fail-closed auditing on the emulator writes one linkissuer.audit.v1
// record per manifest row, and one for the manifest's own URL, each with
// the job's ID and submitter; no record holds a URL or a signature.
func TestJobRowsAuditedOneForOne(t *testing.T) {
	s := newStack(t)
	f := newFixture(t)
	public, _ := seedMedia(f)
	auditTopic := s.IDs["results"] + "-audit"
	ctx := context.Background()
	if err := pubsubemu.EnsureTopic(ctx, s.Client, auditTopic); err != nil {
		t.Fatal(err)
	}
	if err := pubsubemu.EnsureSubscription(ctx, s.Client, pubsubemu.Subscription{ID: auditTopic + "-sub", Topic: auditTopic}); err != nil {
		t.Fatal(err)
	}
	rec := s.auditRecorder(auditTopic, true)
	s.startWorker(f, func(o *Options) {
		o.Audit = rec
		o.Split = &SplitOptions{Above: 20, ShardSize: 15}
	})
	job := manifestJob("audited-1", "gs://exports/audited/links.jsonl", schema.FormatJSONL, schema.JobSource{Bucket: mediaBucket})
	job.NotifyTopic = s.notifyTopic()
	job.Submitter = "mailer@example-project.iam.gserviceaccount.com"
	s.submit(job)
	got := s.completions(60*time.Second, time.Second)
	if len(got) != 1 {
		t.Fatalf("%d completions, want 1", len(got))
	}
	done := doneMessage(t, got[0])

	// The released links: the manifest's rows and the manifest's URL.
	urls := map[string]string{} // fingerprint -> object
	sc := bufio.NewScanner(bytes.NewReader(f.read(exportsBucket, "audited/links.jsonl")))
	for sc.Scan() {
		var row schema.ManifestRow
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatal(err)
		}
		fp, err := audit.Fingerprint(row.URL)
		if err != nil {
			t.Fatal(err)
		}
		urls[fp] = row.Object
	}
	if len(urls) != len(public) {
		t.Fatalf("%d manifest rows, want %d", len(urls), len(public))
	}
	manifestFP, err := audit.Fingerprint(done.Manifest.URL)
	if err != nil {
		t.Fatal(err)
	}
	urls[manifestFP] = "audited/links.jsonl"

	msgs := s.Collect(auditTopic+"-sub", len(urls), 60*time.Second)
	records := map[string]schema.AuditRecord{}
	for _, m := range msgs {
		if strings.Contains(string(m.Data), "Signature") || strings.Contains(string(m.Data), "://") {
			t.Errorf("record carries a URL or signature: %s", m.Data)
		}
		var r schema.AuditRecord
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatalf("record is not JSON: %v: %s", err, m.Data)
		}
		if _, dup := records[r.Fingerprint]; dup {
			t.Errorf("two records with fingerprint %s", r.Fingerprint)
		}
		records[r.Fingerprint] = r
	}
	if len(records) != len(urls) {
		t.Errorf("%d records for %d released links", len(records), len(urls))
	}
	for fp, object := range urls {
		r, ok := records[fp]
		switch {
		case !ok:
			t.Errorf("no record for the link to %s", object)
		case r.Path != audit.PathJob || r.JobID != "audited-1" || r.Submitter != job.Submitter || r.Object != object ||
			r.Method != "GET" || r.SignerIdentity != testEmail || r.Outcome != schema.OutcomeIssued:
			t.Errorf("record %+v does not describe the job's link to %s", r, object)
		case object != "audited/links.jsonl" && (r.Bucket != mediaBucket || r.Generation != public[object].generation):
			t.Errorf("record %+v: want bucket %s generation %d", r, mediaBucket, public[object].generation)
		}
	}
}

// TestJobAuditFailClosed: when records cannot be written, no row is
// released: the piece fails (transient, audit_unavailable) and leaves no
// manifest behind; fail-open releases the rows and counts the failures.
func TestJobAuditFailClosed(t *testing.T) {
	s := newStack(t)
	f := newFixture(t)
	public, _ := seedMedia(f)
	missing := "no-such-audit-topic-" + s.IDs["results"]
	tests := []struct {
		name       string
		failClosed bool
	}{
		{name: "fail-closed", failClosed: true},
		{name: "fail-open"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := s.auditRecorder(missing, tc.failClosed)
			r := f.runner(func(o *Options) { o.Audit = rec })
			uri := "gs://exports/" + tc.name + "/links.jsonl"
			job := manifestJob(tc.name, uri, schema.FormatJSONL, schema.JobSource{Bucket: mediaBucket})
			job.NotifyTopic = ""
			_, err := r.Handle(context.Background(), jobMessage(t, job))
			manifest := f.names(exportsBucket, tc.name+"/")
			if !tc.failClosed {
				if err != nil {
					t.Fatalf("fail-open job: %v", err)
				}
				if err := rec.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
				// One failure per row and one for the manifest URL.
				if rec.Failures() != int64(len(public))+1 {
					t.Errorf("%d failures counted, want %d", rec.Failures(), len(public)+1)
				}
				return
			}
			if c := failure.Classify(err); !errors.Is(err, audit.ErrUnavailable) || c.Kind != failure.KindTransient || c.Reason() != "audit_unavailable" {
				t.Errorf("job error %v (%+v): want transient audit_unavailable", err, c)
			}
			for _, n := range manifest {
				if strings.HasSuffix(n, "links.jsonl") {
					t.Errorf("manifest %s released without audit records", n)
				}
			}
		})
	}
}
