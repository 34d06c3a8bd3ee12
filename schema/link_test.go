package schema

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/sign"
)

func TestDedupeKey(t *testing.T) {
	tests := []struct {
		bucket, object string
		gen            int64
		method, want   string
	}{
		{"media", "cat.jpg", 1700000000000000, "GET", "media/cat.jpg#1700000000000000:GET"},
		{"media", "cat.jpg", 1700000000000000, "PUT", "media/cat.jpg#1700000000000000:PUT"},
		{"media", "a#b:c", 0, "GET", "media/a#b:c#0:GET"},
		// 256 bytes exactly stays plain.
		{"media", strings.Repeat("o", 256-len("media/#1:GET")), 1, "GET", "media/" + strings.Repeat("o", 256-len("media/#1:GET")) + "#1:GET"},
		// One more byte is hashed: sha256 of the plain form.
		{"media", strings.Repeat("o", 257-len("media/#1:GET")), 1, "GET", "sha256:"},
	}
	for _, tt := range tests {
		got := DedupeKey(tt.bucket, tt.object, tt.gen, tt.method)
		if tt.want == "sha256:" {
			if !strings.HasPrefix(got, "sha256:") || len(got) != 71 {
				t.Errorf("long key = %q, want sha256:<64 hex>", got)
			}
			if again := DedupeKey(tt.bucket, tt.object, tt.gen, tt.method); again != got {
				t.Error("hashed key is not stable")
			}
			if other := DedupeKey(tt.bucket, tt.object, tt.gen+1, tt.method); other == got {
				t.Error("hashed key ignores the generation")
			}
			continue
		}
		if got != tt.want {
			t.Errorf("DedupeKey = %q, want %q", got, tt.want)
		}
	}
}

func TestLinkAttributesWithinLimits(t *testing.T) {
	// The largest possible inputs: a 222-byte bucket, a 1024-byte object, a
	// 19-digit generation, a 128-byte job ID.
	bucket := strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63) + "." + strings.Repeat("e", 30)
	if err := sign.ValidateBucket(sign.GOOG4, bucket); err != nil || len(bucket) != 222 {
		t.Fatalf("test bucket: %v (%d bytes)", err, len(bucket))
	}
	l := &Link{Bucket: bucket, Object: strings.Repeat("ø", 512), Generation: 1<<63 - 1, Method: "RESUMABLE",
		Source: LinkSource{JobID: strings.Repeat("j", MaxJobIDLen)}}
	a := l.Attributes()
	if err := ValidateAttributes(a); err != nil {
		t.Fatal(err)
	}
	if _, ok := a[AttrObject]; ok {
		t.Error("a 1024-byte name must not be copied into attributes")
	}
	for k, v := range a {
		if strings.Contains(v, "http") {
			t.Errorf("attribute %s looks like a URL: %q", k, v)
		}
	}
	short := &Link{Bucket: "media", Object: "cat.jpg", Generation: 3, Method: "GET", URL: "https://x", Source: LinkSource{MessageID: "1"}}
	if got := short.Attributes()[AttrObject]; got != "cat.jpg" {
		t.Errorf("object attribute = %q", got)
	}
}

func TestNewLink(t *testing.T) {
	u := goldenSigner(t)
	now := time.Date(2024, 1, 1, 0, 0, 0, 999_000_000, time.UTC)
	req := sign.Request{Method: "get", Bucket: "example-media", Object: "a.txt", Expires: time.Minute, Time: now}
	signed, err := u.Sign(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLink(req, signed, LinkObject{Generation: 9, Size: 1}, LinkSource{MessageID: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if l.Method != "GET" || !l.IssuedAt.Equal(now.Truncate(time.Second)) || !l.ExpiresAt.Equal(now.Truncate(time.Second).Add(time.Minute)) {
		t.Errorf("link = %+v", l)
	}
	if !strings.Contains(l.URL, "X-Goog-Date=20240101T000000Z") || l.URL != signed.URL {
		t.Errorf("URL = %q", l.URL)
	}
	data, err := l.Data()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"url":"https://`)) || bytes.Contains(data, []byte(`\u0026`)) {
		t.Errorf("data must carry the URL with & unescaped: %s", data)
	}
	if got := l.Attributes()[AttrDedupeKey]; got != "example-media/a.txt#9:GET" {
		t.Errorf("dedupe_key = %q", got)
	}

	bad := []struct {
		name   string
		req    sign.Request
		signed *sign.SignedURL
		src    LinkSource
		field  string
	}{
		{name: "no signed URL", req: req, signed: nil, src: LinkSource{MessageID: "m"}, field: "url"},
		{name: "no source", req: req, signed: signed, field: "source"},
		{name: "expired at issue", req: req, signed: &sign.SignedURL{URL: "https://x", Expires: now}, src: LinkSource{JobID: "j"}, field: "expires_at"},
		{name: "bad method", req: sign.Request{Method: "PATCH", Bucket: "example-media", Object: "a", Time: now}, signed: signed, src: LinkSource{JobID: "j"}, field: "method"},
	}
	for _, tt := range bad {
		_, err := NewLink(tt.req, tt.signed, LinkObject{}, tt.src)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%s: err = %v, want a FieldError on %s", tt.name, err, tt.field)
		}
	}
}

func TestDeadLetter(t *testing.T) {
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("X", 3600))
	big := bytes.Repeat([]byte("x"), MaxDeadLetterPayload+10)
	attrs := map[string]string{"eventType": "OBJECT_FINALIZE"}
	d := NewDeadLetter(Original{MessageID: "1", Attributes: attrs, Data: big}, ParseErrForTest(), "", "w", now)
	if !d.OriginalTruncated || len(d.OriginalData) != MaxDeadLetterPayload || d.OriginalSize != len(big) {
		t.Errorf("truncation: truncated=%v len=%d size=%d", d.OriginalTruncated, len(d.OriginalData), d.OriginalSize)
	}
	if d.ReasonCode != CodeMissingAttribute || d.Field != "attributes.objectId" || d.FailedAt.Location() != time.UTC {
		t.Errorf("dead letter = %s %s %v", d.ReasonCode, d.Field, d.FailedAt)
	}
	attrs["eventType"] = "changed"
	if d.OriginalAttributes["eventType"] != "OBJECT_FINALIZE" {
		t.Error("dead letter shares the caller's attribute map")
	}
	data, err := d.Data()
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 10_000_000 {
		t.Errorf("dead letter of a maximal message is %d bytes, over Pub/Sub's limit", len(data))
	}
	if err := d.Validate(); err != nil {
		t.Error(err)
	}

	// An explicit code wins; an error with no code and no override is internal.
	if d := NewDeadLetter(Original{MessageID: "2"}, ParseErrForTest(), CodePolicyRefused, "w", now); d.ReasonCode != CodePolicyRefused {
		t.Errorf("override: %s", d.ReasonCode)
	}
	d = NewDeadLetter(Original{MessageID: "3"}, errors.New("boom"), "", "w", now)
	if d.ReasonCode != CodeInternal || d.Reason != "boom" || d.OriginalData == nil || d.OriginalAttributes == nil {
		t.Errorf("foreign error: %+v", d)
	}
	long := NewDeadLetter(Original{MessageID: "4"}, errors.New(strings.Repeat("é", MaxReasonLen)), "", "w", now)
	if len(long.Reason) > MaxReasonLen || !strings.HasSuffix(long.Reason, "é") {
		t.Errorf("reason cut to %d bytes, mid-character or too long", len(long.Reason))
	}
	if err := (&DeadLetter{}).Validate(); CodeOf(err) != CodeMissingField {
		t.Errorf("empty dead letter: %v", err)
	}
}

// ParseErrForTest returns a real parse error: a notification without objectId.
func ParseErrForTest() error {
	a := finalizeAttrs()
	delete(a, "objectId")
	_, err := ParseGCSNotification(context.Background(), a, []byte(finalizePayload))
	return err
}

func TestJobDoneValidate(t *testing.T) {
	base := func() JobDone {
		start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		return JobDone{JobID: "j-1", ResultsTopic: "projects/p/topics/links", Counts: JobCounts{Listed: 3, Signed: 2, Failed: 1},
			Shards: 1, StartedAt: start, FinishedAt: start.Add(time.Second)}
	}
	if _, err := NewJobDone(base()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		edit  func(d *JobDone)
		field string
	}{
		{"counts do not add up", func(d *JobDone) { d.Counts.Skipped = 1 }, "counts"},
		{"negative count", func(d *JobDone) { d.Counts = JobCounts{Listed: -1, Signed: -1} }, "counts"},
		{"no output", func(d *JobDone) { d.ResultsTopic = "" }, "manifest"},
		{"both outputs", func(d *JobDone) { d.Manifest = &ManifestResult{} }, "manifest"},
		{"manifest without url", func(d *JobDone) {
			d.ResultsTopic = ""
			d.Manifest = &ManifestResult{URI: "gs://out-bucket/m.csv", Format: FormatCSV}
		}, "manifest.url"},
		{"manifest url already expired", func(d *JobDone) {
			d.ResultsTopic = ""
			d.Manifest = &ManifestResult{URI: "gs://out-bucket/m.csv", Format: FormatCSV, URL: "https://x", URLExpiresAt: d.FinishedAt}
		}, "manifest.url_expires_at"},
		{"bad errors uri", func(d *JobDone) { d.ErrorsURI = "/tmp/errors" }, "errors_uri"},
		{"no shards", func(d *JobDone) { d.Shards = 0 }, "shards"},
		{"finished before started", func(d *JobDone) { d.FinishedAt = d.StartedAt.Add(-time.Second) }, "finished_at"},
		{"shard job id", func(d *JobDone) { d.JobID = strings.Repeat("a", MaxRootJobIDLen+1) }, "job_id"},
	}
	for _, tt := range tests {
		d := base()
		tt.edit(&d)
		_, err := NewJobDone(d)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%s: err = %v, want a FieldError on %s", tt.name, err, tt.field)
		}
	}
	d := base()
	d.DurationMS = 5
	if err := d.Validate(); err == nil {
		t.Error("Validate accepted a duration_ms that contradicts the times")
	}
}

// A link's durable link must be whole and outlive the signing time.
func TestLinkDurableValidate(t *testing.T) {
	ev, _, _ := goldenLinks(t)
	good := DurableLink{URL: "https://links.example.com/l/TOKEN", ID: "0123456789abcdef0123456789abcdef", ExpiresAt: ev.IssuedAt.Add(time.Hour)}
	for _, tt := range []struct {
		name  string
		edit  func(d *DurableLink)
		field string
	}{
		{name: "whole", edit: func(*DurableLink) {}},
		{name: "not a URL", edit: func(d *DurableLink) { d.URL = "links.example.com/l/TOKEN" }, field: "durable.url"},
		{name: "no id", edit: func(d *DurableLink) { d.ID = "" }, field: "durable.id"},
		{name: "expired at issue", edit: func(d *DurableLink) { d.ExpiresAt = ev.IssuedAt }, field: "durable.expires_at"},
	} {
		d := good
		tt.edit(&d)
		l := *ev
		l.Durable = &d
		err := l.Validate()
		var fe *FieldError
		if tt.field == "" && err != nil || tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field) {
			t.Errorf("%s: %v, want a FieldError on %q", tt.name, err, tt.field)
		}
	}
}
