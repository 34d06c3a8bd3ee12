package cli

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/internal/iamtest"
	"github.com/linkissuer/linkissuer/internal/jobstest"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

const exportEmail = "exporter@test-project.iam.gserviceaccount.com"

// exportFixture is fake-gcs-server with a media bucket of n objects under
// photos/, an exports bucket, and a PEM key file.
type exportFixture struct {
	srv     *fakestorage.Server
	env     map[string]string
	keyFile string
}

func newExportFixture(t *testing.T, n int) *exportFixture {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", PublicHost: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	srv.CreateBucket("media")
	srv.CreateBucket("exports")
	for i := range n {
		srv.CreateObject(fakestorage.Object{
			ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "media", Name: fmt.Sprintf("photos/%03d.jpg", i), ContentType: "image/jpeg"},
			Content:     []byte(strings.Repeat("p", i+1)),
		})
	}
	der, err := x509.MarshalPKCS8PrivateKey(iamtest.Key())
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &exportFixture{srv: srv, env: map[string]string{"STORAGE_EMULATOR_HOST": srv.URL()}, keyFile: keyFile}
}

func (f *exportFixture) read(t *testing.T, bucket, name string) []byte {
	t.Helper()
	o, err := f.srv.GetObject(bucket, name)
	if err != nil {
		t.Fatalf("gs://%s/%s: %v", bucket, name, err)
	}
	return o.Content
}

// checkRows verifies a manifest row by row: the objects in want, once each,
// with URLs that verify with the key and expire after d. It returns the
// rows.
func checkRows(t *testing.T, data []byte, format schema.ManifestFormat, want map[string]int64, d time.Duration) (rows []*schema.ManifestRow) {
	t.Helper()
	seen := map[string]int{}
	rows = jobstest.ManifestRows(t, data, format)
	for _, row := range rows {
		seen[row.Object]++
		if size, ok := want[row.Object]; !ok || row.Size != size || row.ContentType != "image/jpeg" || row.Generation == 0 {
			t.Errorf("row %+v: want size %d, image/jpeg and a generation", row, size)
		}
		p, err := sign.ParseSignedURL(row.URL, "GET", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.VerifyRSA(&iamtest.Key().PublicKey); err != nil || p.Expires != d || !p.ExpiresAt().Equal(row.ExpiresAt) || p.Identity != exportEmail {
			t.Errorf("%s: URL (verify: %v) expires %s after %s by %s; row says %s", row.Object, err, p.Expires, p.Date, p.Identity, row.ExpiresAt)
		}
	}
	for name := range want {
		if seen[name] != 1 {
			t.Errorf("%s appears %d times", name, seen[name])
		}
	}
	return rows
}

func TestExport(t *testing.T) {
	f := newExportFixture(t, 12)
	all := map[string]int64{}
	for i := range 12 {
		all[fmt.Sprintf("photos/%03d.jpg", i)] = int64(i + 1)
	}
	for _, tc := range []struct {
		name     string
		args     []string
		stdin    string
		format   schema.ManifestFormat
		manifest string
		want     map[string]int64
		code     int
		errors   string // expected errors file content, a substring
	}{
		{
			name:     "prefix to CSV by extension",
			args:     []string{"gs://media/photos/", "--manifest", "gs://exports/all.csv", "--duration", "2h"},
			format:   schema.FormatCSV,
			manifest: "all.csv",
			want:     all,
		},
		{
			name:     "glob to JSONL",
			args:     []string{"gs://media", "--match", "photos/00[0-4].jpg", "--manifest", "gs://exports/some", "--format", "jsonl", "--duration", "2h"},
			format:   schema.FormatJSONL,
			manifest: "some",
			want:     map[string]int64{"photos/000.jpg": 1, "photos/001.jpg": 2, "photos/002.jpg": 3, "photos/003.jpg": 4, "photos/004.jpg": 5},
		},
		{
			name:     "explicit list with a missing object",
			args:     []string{"gs://media", "--objects", "-", "--manifest", "gs://exports/list.jsonl", "--duration", "2h"},
			stdin:    "photos/003.jpg\n# a comment\nphotos/nope.jpg\nphotos/011.jpg\n",
			format:   schema.FormatJSONL,
			manifest: "list.jsonl",
			want:     map[string]int64{"photos/003.jpg": 4, "photos/011.jpg": 12},
			code:     ExitFailure,
			errors:   `"object":"photos/nope.jpg","generation":0,"reason":"object not found","reason_code":"object_not_found"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--key-file", f.keyFile, "--email", exportEmail, "--job-id", "t1"}, tc.args...)
			code, stdout, stderr := runCmd(t, Export, tc.stdin, f.env, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			checkRows(t, f.read(t, "exports", tc.manifest), tc.format, tc.want, 2*time.Hour)
			for _, want := range []string{"job       t1", fmt.Sprintf("%d signed", len(tc.want)), "manifest  gs://exports/" + tc.manifest, "url       http://127.0.0.1:"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("summary lacks %q:\n%s", want, stdout)
				}
			}
			if tc.errors != "" {
				if got := string(f.read(t, "exports", "list.errors.jsonl")); !strings.Contains(got, tc.errors) {
					t.Errorf("errors file %q lacks %q", got, tc.errors)
				}
			}
		})
	}
}

func TestExportJSON(t *testing.T) {
	f := newExportFixture(t, 3)
	code, stdout, stderr := runCmd(t, Export, "", f.env, "gs://media/photos", "--manifest", "gs://exports/x.jsonl",
		"--key-file", f.keyFile, "--email", exportEmail, "--json", "--duration", "15m")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var d schema.JobDone
	if err := json.Unmarshal([]byte(stdout), &d); err != nil {
		t.Fatalf("--json output %q: %v", stdout, err)
	}
	if err := d.Validate(); err != nil || d.Counts.Signed != 3 || d.Manifest.URLExpiresAt.Sub(d.FinishedAt) > 15*time.Minute {
		t.Errorf("completion %+v (%v)", d, err)
	}
	if !strings.HasPrefix(d.JobID, "export-") {
		t.Errorf("default job ID %q", d.JobID)
	}
}

func TestExportUsage(t *testing.T) {
	f := newExportFixture(t, 0)
	key := []string{"--key-file", f.keyFile, "--email", exportEmail}
	for _, tc := range []struct {
		name, want string
		args       []string
	}{
		{"no manifest", "--manifest", []string{"gs://media/photos"}},
		{"s3 source", "linkissuer submit s3://", []string{"s3://media/photos", "--manifest", "gs://exports/a.jsonl"}},
		{"not a bucket URI", "gs://BUCKET", []string{"media/photos", "--manifest", "gs://exports/a.jsonl"}},
		{"bad format", "jsonl or csv", []string{"gs://media", "--manifest", "gs://exports/a", "--format", "xml"}},
		{"objects with a prefix", "--objects", []string{"gs://media/photos", "--objects", "-", "--manifest", "gs://exports/a"}},
		{"too long", "duration", []string{"gs://media", "--manifest", "gs://exports/a", "--duration", "8d"}},
		{"no credentials", "no credentials", []string{"gs://media", "--manifest", "gs://exports/a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.name != "no credentials" {
				args = append(append([]string{}, key...), args...)
			}
			code, _, stderr := runCmd(t, Export, "", f.env, args...)
			if code != ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d mentioning %q", code, stderr, ExitUsage, tc.want)
			}
		})
	}
}

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
	want := map[string]int64{}
	for i := range 5 {
		want[fmt.Sprintf("photos/%03d.jpg", i)] = int64(i + 1)
	}
	for _, row := range checkRows(t, f.read(t, "exports", "audited.jsonl"), schema.FormatJSONL, want, time.Hour) {
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
