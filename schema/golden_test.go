package schema

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/sign"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// Fixed inputs for golden outputs. The HMAC secret is a made-up test value;
// signatures in the golden files are therefore fake and harmless.
var (
	goldenNow = time.Date(2023, 11, 14, 22, 13, 21, 500_000_000, time.UTC)
	goldenGen = int64(1700000000000000)
)

func goldenSigner(t *testing.T) *sign.URLSigner {
	t.Helper()
	hs, err := sign.NewHMACSigner("GOOG1EEXAMPLEACCESSIDFORTESTSONLY", "test-secret-not-a-real-key")
	if err != nil {
		t.Fatal(err)
	}
	u, err := sign.New(hs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// goldenFile compares got with testdata/golden/name, or rewrites it under
// -update.
func goldenFile(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./schema -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test ./schema -update if the change is intended)\n got: %s\nwant: %s", name, got, want)
	}
}

// goldenJSON compares the wire form of v (its Data() for output messages,
// json.Marshal for attribute maps), indented for review, with the golden
// file. json.Indent only adds whitespace, so string escapes in the file are
// exactly the wire's.
func goldenJSON(t *testing.T, name string, v any) {
	t.Helper()
	var wire []byte
	var err error
	if d, ok := v.(interface{ Data() ([]byte, error) }); ok {
		wire, err = d.Data()
	} else {
		wire, err = json.Marshal(v)
	}
	if err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsAny(wire, "\n") {
		t.Errorf("%s: wire form is not compact", name)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, wire, "", "  "); err != nil {
		t.Fatal(err)
	}
	buf.WriteByte('\n')
	goldenFile(t, name, buf.Bytes())
}

func goldenLinks(t *testing.T) (eventLink, jobLink, longLink *Link) {
	t.Helper()
	u := goldenSigner(t)
	ctx := t.Context()
	req := sign.Request{
		Method: "GET", Bucket: "example-media", Object: "photos/2023/cat.jpg",
		Query:   []sign.Param{{Name: "response-content-disposition", Value: "attachment"}},
		Expires: 15 * time.Minute, Time: goldenNow,
	}
	signed, err := u.Sign(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	eventLink, err = NewLink(req, signed, LinkObject{Generation: goldenGen, Size: 1884, ContentType: "image/jpeg"},
		LinkSource{MessageID: "9876543210123", EventType: string(ObjectFinalize)})
	if err != nil {
		t.Fatal(err)
	}

	req = sign.Request{Method: "RESUMABLE", Bucket: "example-media", Object: "uploads/incoming/video.mp4",
		Headers: []sign.Header{{Name: "x-goog-content-length-range", Value: "0,1073741824"}},
		Expires: time.Hour, Time: goldenNow}
	if signed, err = u.Sign(ctx, req); err != nil {
		t.Fatal(err)
	}
	jobLink, err = NewLink(req, signed, LinkObject{Size: -1}, LinkSource{MessageID: "1234", JobID: "uploads-2023-11"})
	if err != nil {
		t.Fatal(err)
	}

	req = sign.Request{Method: "GET", Bucket: "example-media", Object: "deep/" + string(bytes.Repeat([]byte("directory/"), 40)) + "file.bin",
		Expires: time.Minute, Time: goldenNow}
	if signed, err = u.Sign(ctx, req); err != nil {
		t.Fatal(err)
	}
	longLink, err = NewLink(req, signed, LinkObject{Generation: goldenGen, Size: 10}, LinkSource{MessageID: "55"})
	if err != nil {
		t.Fatal(err)
	}
	return eventLink, jobLink, longLink
}

func TestGoldenLink(t *testing.T) {
	ev, job, long := goldenLinks(t)
	goldenJSON(t, "link.v1.json", ev)
	goldenJSON(t, "link.v1.attributes.json", ev.Attributes())
	goldenJSON(t, "link_resumable.v1.json", job)
	goldenJSON(t, "link_resumable.v1.attributes.json", job.Attributes())
	goldenJSON(t, "link_long_name.v1.attributes.json", long.Attributes())
}

// TestGoldenLinkPassThrough: a link carrying allowed object metadata and
// notification attributes.
func TestGoldenLinkPassThrough(t *testing.T) {
	u := goldenSigner(t)
	req := sign.Request{Method: "GET", Bucket: "example-media", Object: "campaigns/2023/report.pdf", Expires: 15 * time.Minute, Time: goldenNow}
	signed, err := u.Sign(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLink(req, signed, LinkObject{Generation: goldenGen, Size: 52341, ContentType: "application/pdf",
		Metadata:        map[string]string{"recipient": "ada@example.com", "tenant": "acme"},
		EventAttributes: map[string]string{"campaign": "spring-2023"}},
		LinkSource{MessageID: "9876543210124", EventType: string(ObjectFinalize)})
	if err != nil {
		t.Fatal(err)
	}
	goldenJSON(t, "link_metadata.v1.json", l)
}

// TestGoldenLinkDurable: an event's link carrying the durable link the
// worker minted for its object (worker --durable-links).
func TestGoldenLinkDurable(t *testing.T) {
	ev, _, _ := goldenLinks(t)
	ev.Durable = &DurableLink{URL: "https://links.example.com/l/eyJ2IjoxLCJrIjoiMjAyMy0xMSJ9AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		ID: "3f9c2a7e5b1d4c8f9a0b6e2d7c1f4a3b", ExpiresAt: goldenNow.Add(90 * 24 * time.Hour).Truncate(time.Second)}
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
	goldenJSON(t, "link_durable.v1.json", ev)
	goldenJSON(t, "link_durable.v1.attributes.json", ev.Attributes())
}

func goldenJobDone(t *testing.T) *JobDone {
	t.Helper()
	u := goldenSigner(t)
	finished := goldenNow.Add(83*time.Second + 250*time.Millisecond)
	signed, err := u.Sign(t.Context(), sign.Request{Method: "GET", Bucket: "example-exports",
		Object: "campaign-2024-04/manifest.jsonl", Expires: 7 * 24 * time.Hour, Time: finished})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewJobDone(JobDone{
		JobID:     "campaign-2024-04",
		Manifest:  &ManifestResult{URI: "gs://example-exports/campaign-2024-04/manifest.jsonl", Format: FormatJSONL, URL: signed.URL, URLExpiresAt: signed.Expires},
		ErrorsURI: "gs://example-exports/campaign-2024-04/manifest.errors.jsonl",
		Counts:    JobCounts{Listed: 100000, Signed: 99990, Skipped: 7, Failed: 3},
		Shards:    8,
		StartedAt: goldenNow, FinishedAt: finished,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestGoldenJobDone(t *testing.T) {
	d := goldenJobDone(t)
	if d.DurationMS != 83250 {
		t.Errorf("DurationMS = %d, want 83250", d.DurationMS)
	}
	goldenJSON(t, "job_done.v1.json", d)
	goldenJSON(t, "job_done.v1.attributes.json", d.Attributes())
}

func goldenDeadLetters(t *testing.T) (parse, policy *DeadLetter) {
	t.Helper()
	var c *corpusCase
	for _, cc := range loadCorpus(t, filepath.Join("testdata", "bad")) {
		if cc.File == "gcs_generation_object.json" {
			c = cc
		}
	}
	if c == nil {
		t.Fatal("corpus case gcs_generation_object.json not found")
	}
	_, err := Parse(context.Background(), c.Attributes, c.Data)
	if err == nil {
		t.Fatal("corpus case parsed")
	}
	orig := Original{MessageID: "4444444444", Attributes: c.Attributes, Data: c.Data, Subscription: "projects/example-project/subscriptions/linkissuer-events"}
	parse = NewDeadLetter(orig, err, "", "linkissuer-worker-7f9c4-0", goldenNow)

	orig = Original{MessageID: "5555555555", Attributes: map[string]string{"eventType": "OBJECT_FINALIZE", "bucketId": "not-allowed-bucket"}, Data: []byte("{}")}
	policy = NewDeadLetter(orig, &FieldError{Field: "bucket", Reason: "bucket not-allowed-bucket is not in the allow list", Code: CodePolicyRefused},
		"", "linkissuer-worker-7f9c4-0", goldenNow)
	return parse, policy
}

func TestGoldenDeadLetter(t *testing.T) {
	parse, policy := goldenDeadLetters(t)
	for _, d := range []*DeadLetter{parse, policy} {
		if err := d.Validate(); err != nil {
			t.Fatal(err)
		}
		if err := ValidateAttributes(d.Attributes()); err != nil {
			t.Fatal(err)
		}
	}
	if parse.ReasonCode != CodeInvalidField || parse.Field != "data.generation" {
		t.Errorf("dead letter = %s on %s", parse.ReasonCode, parse.Field)
	}
	goldenJSON(t, "deadletter.v1.json", parse)
	goldenJSON(t, "deadletter.v1.attributes.json", parse.Attributes())
	goldenJSON(t, "deadletter_policy.v1.json", policy)
}

func goldenRows() ([]ManifestRow, []ErrorRow) {
	exp := goldenNow.Add(7 * 24 * time.Hour).Truncate(time.Second)
	rows := []ManifestRow{
		{Object: "photos/2023/cat.jpg", Generation: goldenGen, Size: 1884, ContentType: "image/jpeg",
			URL: "https://storage.googleapis.com/example-media/photos/2023/cat.jpg?X-Goog-Algorithm=GOOG4-HMAC-SHA256&X-Goog-Signature=00ff", ExpiresAt: exp},
		{Object: `reports/q3, "final".pdf`, Generation: goldenGen + 1, Size: 0, ContentType: `application/pdf; name="q3, final"`,
			URL: "https://storage.googleapis.com/example-media/reports/q3%2C%20%22final%22.pdf?X-Goog-Signature=01", ExpiresAt: exp},
		{Object: "unicode/café ☕ <b>&amp;</b>.txt", Size: -1,
			URL: "https://storage.googleapis.com/example-media/unicode/caf%C3%A9?X-Goog-Signature=02", ExpiresAt: exp},
		{Object: "=HYPERLINK(\"x\").csv", Generation: 7, Size: 3, ContentType: "text/csv",
			URL: "https://storage.googleapis.com/example-media/%3DHYPERLINK?X-Goog-Signature=03", ExpiresAt: exp},
	}
	errs := []ErrorRow{
		{Object: "photos/bad\x01name.jpg", Generation: goldenGen, Reason: "invalid message: object: name contains control character U+0001 at byte 10 (invalid_object_name)", ReasonCode: CodeInvalidObjectName},
		{Object: "private/salaries.xlsx", Reason: "prefix private/ is not allowed", ReasonCode: CodePolicyRefused},
	}
	return rows, errs
}

func encodeRows(t *testing.T, format ManifestFormat, rows []ManifestRow, errs []ErrorRow) (manifest, errors []byte) {
	t.Helper()
	var mb, eb bytes.Buffer
	mw, err := NewRowWriter(&mb, format, ManifestCSVHeader)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		if err := mw.WriteRow(&rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	ew, err := NewRowWriter(&eb, format, ErrorCSVHeader)
	if err != nil {
		t.Fatal(err)
	}
	for i := range errs {
		if err := ew.WriteError(&errs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := ew.Flush(); err != nil {
		t.Fatal(err)
	}
	return mb.Bytes(), eb.Bytes()
}

func TestGoldenManifest(t *testing.T) {
	rows, errs := goldenRows()
	for _, format := range []ManifestFormat{FormatJSONL, FormatCSV} {
		m, e := encodeRows(t, format, rows, errs)
		goldenFile(t, "manifest."+string(format), m)
		goldenFile(t, "manifest.errors."+string(format), e)
	}
}
