package schema

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/sign"
)

func TestParseExpiresIn(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		code ReasonCode
	}{
		{in: "1s", want: time.Second},
		{in: "15m", want: 15 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "3600s", want: time.Hour},
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "168h", want: 7 * 24 * time.Hour},
		{in: "1d", want: 24 * time.Hour},
		{in: "604801s", code: CodeExpiryOutOfRange},
		{in: "8d", code: CodeExpiryOutOfRange},
		{in: "0s", code: CodeExpiryOutOfRange},
		{in: "0d", code: CodeExpiryOutOfRange},
		{in: "-5m", code: CodeExpiryOutOfRange},
		{in: "1500ms", code: CodeInvalidField},
		{in: "3600", code: CodeInvalidField},
		{in: "1w", code: CodeInvalidField},
		{in: "d", code: CodeInvalidField},
		{in: "-1d", code: CodeInvalidField},
		{in: "99999999999999999999d", code: CodeInvalidField},
		{in: "", code: CodeMissingField},
	}
	for _, tt := range tests {
		got, err := ParseExpiresIn(tt.in)
		if CodeOf(err) != tt.code || got != tt.want {
			t.Errorf("ParseExpiresIn(%q) = %v, %v; want %v, %q", tt.in, got, err, tt.want, tt.code)
		}
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "expires_in" {
				t.Errorf("ParseExpiresIn(%q): error %v does not name expires_in", tt.in, err)
			}
		}
	}
}

func TestFormatExpiresIn(t *testing.T) {
	for _, d := range []time.Duration{time.Second, 90 * time.Second, 15 * time.Minute, 12 * time.Hour, 36 * time.Hour, 7 * 24 * time.Hour} {
		s := FormatExpiresIn(d)
		back, err := ParseExpiresIn(s)
		if err != nil || back != d {
			t.Errorf("FormatExpiresIn(%v) = %q, which parses as %v, %v", d, s, back, err)
		}
	}
	if got := FormatExpiresIn(7 * 24 * time.Hour); got != "7d" {
		t.Errorf("FormatExpiresIn(7d) = %q", got)
	}
}

func baseJob() *Job {
	return &Job{
		JobID:     "export-1",
		Source:    JobSource{Bucket: "example-media", Prefix: "photos/"},
		Method:    "GET",
		ExpiresIn: "1h",
		Output:    JobOutput{Manifest: &ManifestTarget{URI: "gs://example-exports/export-1.jsonl", Format: FormatJSONL}},
	}
}

func TestJobValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(j *Job)
		code  ReasonCode
		field string
	}{
		{name: "valid prefix job", edit: func(j *Job) {}},
		{name: "whole bucket", edit: func(j *Job) { j.Source.Prefix = "" }},
		{name: "list", edit: func(j *Job) {
			j.Source = JobSource{Bucket: "example-media", Objects: []ObjectRef{{Name: "a"}, {Name: "a", Generation: 3}}}
		}},
		{name: "topic output", edit: func(j *Job) { j.Output = JobOutput{Topic: "projects/p-1/topics/links"} }},
		{name: "s3", edit: func(j *Job) {
			j.Source = JobSource{Store: StoreS3, Region: "eu-west-1", Endpoint: "https://minio.internal:9000", Bucket: "incoming"}
			j.ResponseParams = map[string]string{"response-cache-control": "no-store"}
		}},
		{name: "missing job_id", edit: func(j *Job) { j.JobID = "" }, code: CodeMissingField, field: "job_id"},
		{name: "job_id with slash", edit: func(j *Job) { j.JobID = "a/b" }, code: CodeInvalidField, field: "job_id"},
		{name: "job_id starting with dot", edit: func(j *Job) { j.JobID = ".hidden" }, code: CodeInvalidField, field: "job_id"},
		{name: "job_id with ..", edit: func(j *Job) { j.JobID = "a..b" }, code: CodeInvalidField, field: "job_id"},
		{name: "root job_id too long", edit: func(j *Job) { j.JobID = strings.Repeat("a", MaxRootJobIDLen+1) }, code: CodeInvalidField, field: "job_id"},
		{name: "missing bucket", edit: func(j *Job) { j.Source.Bucket = "" }, code: CodeMissingField, field: "source.bucket"},
		{name: "bad bucket", edit: func(j *Job) { j.Source.Bucket = "UPPER" }, code: CodeInvalidBucketName, field: "source.bucket"},
		{name: "underscore bucket on s3", edit: func(j *Job) { j.Source = JobSource{Store: StoreS3, Region: "us-east-1", Bucket: "a_b"} }, code: CodeInvalidBucketName, field: "source.bucket"},
		{name: "unknown store", edit: func(j *Job) { j.Source.Store = "azure" }, code: CodeInvalidField, field: "source.store"},
		{name: "region on gcs", edit: func(j *Job) { j.Source.Region = "us" }, code: CodeInvalidField, field: "source.endpoint"},
		{name: "s3 without region", edit: func(j *Job) { j.Source.Store = StoreS3 }, code: CodeMissingField, field: "source.region"},
		{name: "s3 endpoint with path", edit: func(j *Job) {
			j.Source = JobSource{Store: StoreS3, Region: "us-east-1", Bucket: "b-1", Endpoint: "https://h/path"}
		}, code: CodeInvalidField, field: "source.endpoint"},
		{name: "prefix with newline", edit: func(j *Job) { j.Source.Prefix = "a\n" }, code: CodeInvalidObjectName, field: "source.prefix"},
		{name: "bad glob", edit: func(j *Job) { j.Source.Match = "**/*.{jpg" }, code: CodeInvalidField, field: "source.match"},
		{name: "empty class glob", edit: func(j *Job) { j.Source.Match = "a[]" }, code: CodeInvalidField, field: "source.match"},
		{name: "empty list", edit: func(j *Job) { j.Source = JobSource{Bucket: "example-media", Objects: []ObjectRef{}} }, code: CodeInvalidField, field: "source.objects"},
		{name: "list plus match", edit: func(j *Job) { j.Source.Prefix = ""; j.Source.Match = "*"; j.Source.Objects = []ObjectRef{{Name: "a"}} }, code: CodeInvalidField, field: "source"},
		{name: "list plus include_generations", edit: func(j *Job) {
			j.Source = JobSource{Bucket: "example-media", IncludeGenerations: true, Objects: []ObjectRef{{Name: "a"}}}
		}, code: CodeInvalidField, field: "source"},
		{name: "duplicate object", edit: func(j *Job) {
			j.Source = JobSource{Bucket: "example-media", Objects: []ObjectRef{{Name: "a"}, {Name: "a"}}}
		}, code: CodeInvalidField, field: "source.objects[1]"},
		{name: "negative generation", edit: func(j *Job) {
			j.Source = JobSource{Bucket: "example-media", Objects: []ObjectRef{{Name: "a", Generation: -1}}}
		}, code: CodeInvalidField, field: "source.objects[0].generation"},
		{name: "lower-case method", edit: func(j *Job) { j.Method = "get" }, code: CodeInvalidMethod, field: "method"},
		{name: "missing method", edit: func(j *Job) { j.Method = "" }, code: CodeMissingField, field: "method"},
		{name: "expiry too long", edit: func(j *Job) { j.ExpiresIn = "7d1s" }, code: CodeInvalidField, field: "expires_in"},
		{name: "expiry 169h", edit: func(j *Job) { j.ExpiresIn = "169h" }, code: CodeExpiryOutOfRange, field: "expires_in"},
		{name: "gcs response param GCS ignores", edit: func(j *Job) { j.ResponseParams = map[string]string{"response-cache-control": "x"} }, code: CodeInvalidField, field: "response_params.response-cache-control"},
		{name: "response param with newline", edit: func(j *Job) { j.ResponseParams = map[string]string{"response-content-type": "text/plain\r\nX: y"} }, code: CodeInvalidField, field: "response_params.response-content-type"},
		{name: "no output", edit: func(j *Job) { j.Output = JobOutput{} }, code: CodeMissingField, field: "output"},
		{name: "two outputs", edit: func(j *Job) { j.Output.Topic = "projects/p/topics/links" }, code: CodeInvalidField, field: "output"},
		{name: "manifest uri is a folder", edit: func(j *Job) { j.Output.Manifest.URI = "gs://example-exports/dir/" }, code: CodeInvalidField, field: "output.manifest.uri"},
		{name: "manifest uri bad bucket", edit: func(j *Job) { j.Output.Manifest.URI = "gs://ex/x.jsonl" }, code: CodeInvalidBucketName, field: "output.manifest.uri"},
		{name: "manifest format missing", edit: func(j *Job) { j.Output.Manifest.Format = "" }, code: CodeMissingField, field: "output.manifest.format"},
		{name: "short topic", edit: func(j *Job) { j.NotifyTopic = "links" }, code: CodeInvalidField, field: "notify_topic"},
		{name: "goog topic", edit: func(j *Job) { j.NotifyTopic = "projects/p/topics/google-x" }, code: CodeInvalidField, field: "notify_topic"},
		{name: "submitter", edit: func(j *Job) { j.Submitter = "mailer@example-project.iam.gserviceaccount.com" }},
		{name: "submitter with newline", edit: func(j *Job) { j.Submitter = "alice\nlevel=admin" }, code: CodeInvalidField, field: "submitter"},
		{name: "submitter too long", edit: func(j *Job) { j.Submitter = strings.Repeat("a", MaxSubmitterLen+1) }, code: CodeInvalidField, field: "submitter"},
		{name: "topic with space", edit: func(j *Job) { j.NotifyTopic = "projects/p/topics/a b c" }, code: CodeInvalidField, field: "notify_topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := baseJob()
			tt.edit(j)
			before, _ := json.Marshal(j)
			err := j.Validate()
			after, _ := json.Marshal(j)
			if string(before) != string(after) {
				t.Error("Validate modified the job")
			}
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				// What Validate accepts, ParseJob accepts after a round trip.
				if _, err := ParseJob(context.Background(), before); err != nil {
					t.Fatalf("ParseJob(Marshal(job)): %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Code != tt.code || fe.Field != tt.field {
				t.Fatalf("Validate = %v, want %s on %s", err, tt.code, tt.field)
			}
		})
	}
}

func TestNewShard(t *testing.T) {
	root := baseJob()
	root.NotifyTopic = "projects/p/topics/done"
	root.Submitter = "alice@example.com"
	s, err := root.NewShard(3, 8, "photos/m", "photos/p", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.JobID != "export-1.s00003" || s.Shard.ParentJobID != "export-1" || s.Shard.Index != 3 || s.Shard.Count != 8 ||
		s.NotifyTopic != root.NotifyTopic || s.Submitter != root.Submitter || s.Output.Manifest.URI != root.Output.Manifest.URI {
		t.Errorf("shard = %+v / %+v", s, s.Shard)
	}
	if s.Output.Manifest == root.Output.Manifest {
		t.Error("shard shares the parent's manifest target")
	}
	if root.Shard != nil || root.JobID != "export-1" {
		t.Error("NewShard modified the root job")
	}
	if a := s.Attributes(); a[AttrParentJobID] != "export-1" || a[AttrJobID] != s.JobID || a[AttrSchema] != JobV1 {
		t.Errorf("shard attributes = %v", a)
	}
	data, _ := json.Marshal(s)
	if _, err := ParseJob(context.Background(), data); err != nil {
		t.Errorf("shard does not round-trip: %v", err)
	}

	list := baseJob()
	list.Source = JobSource{Bucket: "example-media", Objects: []ObjectRef{{Name: "a"}, {Name: "b"}, {Name: "c"}}}
	ls, err := list.NewShard(1, 2, "", "", list.Source.Objects[2:])
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.Source.Objects) != 1 || ls.Source.Objects[0].Name != "c" || len(list.Source.Objects) != 3 {
		t.Errorf("list shard objects = %v, root %v", ls.Source.Objects, list.Source.Objects)
	}

	bad := []struct {
		name         string
		job          *Job
		index, count int
		start, end   string
		objects      []ObjectRef
		field        string
	}{
		{name: "index out of range", job: root, index: 8, count: 8, field: "shard.index"},
		{name: "count zero", job: root, index: 0, count: 0, field: "shard.count"},
		{name: "too many shards", job: root, index: 0, count: MaxShards + 1, field: "shard.count"},
		{name: "empty range", job: root, index: 0, count: 2, start: "b", end: "a", field: "shard.end_offset"},
		{name: "objects for a prefix job", job: root, index: 0, count: 2, objects: []ObjectRef{{Name: "a"}}, field: "source.objects"},
		{name: "offsets for a list job", job: list, index: 0, count: 2, start: "a", objects: list.Source.Objects[:1], field: "shard.start_offset"},
		{name: "no objects for a list job", job: list, index: 0, count: 2, field: "source.objects"},
		{name: "shard of a shard", job: s, index: 0, count: 2, field: "shard"},
	}
	for _, tt := range bad {
		_, err := tt.job.NewShard(tt.index, tt.count, tt.start, tt.end, tt.objects)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%s: err = %v, want a FieldError on %s", tt.name, err, tt.field)
		}
	}

	// A shard message whose job_id is not the derived one is refused, so
	// two publishers can never create two names for one shard.
	forged := *s
	forged.JobID = "export-1.shard-3"
	if err := forged.Validate(); CodeOf(err) != CodeInvalidField {
		t.Errorf("forged shard id: err = %v", err)
	}
	// The longest root ID still leaves room for the shard suffix.
	long := baseJob()
	long.JobID = strings.Repeat("x", MaxRootJobIDLen)
	if _, err := long.NewShard(MaxShards-1, MaxShards, "", "", nil); err != nil {
		t.Errorf("shard of the longest root id: %v", err)
	}
}

func TestJobHelpers(t *testing.T) {
	j := baseJob()
	j.ResponseParams = map[string]string{"response-content-type": "text/csv", "response-content-disposition": "attachment"}
	q := j.ResponseQuery()
	want := []sign.Param{{Name: "response-content-disposition", Value: "attachment"}, {Name: "response-content-type", Value: "text/csv"}}
	if fmt.Sprint(q) != fmt.Sprint(want) {
		t.Errorf("ResponseQuery = %v, want %v", q, want)
	}
	if d, err := j.Expiry(); err != nil || d != time.Hour {
		t.Errorf("Expiry = %v, %v", d, err)
	}
	if j.Source.Kind() != SourcePrefix || j.Source.Dialect() != sign.GOOG4 {
		t.Error("prefix source on gcs expected")
	}
	s3 := JobSource{Store: StoreS3, Objects: []ObjectRef{{Name: "a"}}}
	if s3.Kind() != SourceList || s3.Dialect() != sign.AWS4 {
		t.Error("list source on s3 expected")
	}
	b, o, err := ParseGCSURI("uri", "gs://example-exports/a/b c.jsonl")
	if err != nil || b != "example-exports" || o != "a/b c.jsonl" {
		t.Errorf("ParseGCSURI = %q, %q, %v", b, o, err)
	}
	if err := ValidateAttributes(j.Attributes()); err != nil {
		t.Error(err)
	}
}

func TestManifestFormats(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		file        string
		want        ManifestFormat
		header      bool
		contentType string
	}{
		{name: "jsonl", file: "exports/a.jsonl", want: FormatJSONL, contentType: "application/x-ndjson"},
		{name: "csv", file: "exports/a.csv", want: FormatCSV, header: true, contentType: "text/csv; charset=utf-8"},
		{name: "CSV in upper case", file: "exports/A.CSV", want: FormatCSV, header: true, contentType: "text/csv; charset=utf-8"},
		{name: "no extension", file: "exports/a", want: FormatJSONL, contentType: "application/x-ndjson"},
		{name: "other extension", file: "exports/a.json", want: FormatJSONL, contentType: "application/x-ndjson"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := FormatForName(tc.file)
			if f != tc.want || !f.Known() || f.HasHeader() != tc.header || f.ContentType() != tc.contentType {
				t.Errorf("FormatForName(%q) = %q (known %v, header %v, %q), want %q (header %v, %q)",
					tc.file, f, f.Known(), f.HasHeader(), f.ContentType(), tc.want, tc.header, tc.contentType)
			}
		})
	}
	if ManifestFormat("xml").Known() || ManifestFormat("").Known() {
		t.Error("unknown formats reported known")
	}
}
