package schema

import (
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/linkissuer/linkissuer/sign"
)

// JobV1 is the schema attribute value of a bulk export job message.
const JobV1 = "linkissuer.job.v1"

// Limits of a job message.
const (
	// MaxJobIDLen bounds job_id so that it is safe in object names,
	// attribute values and log lines.
	MaxJobIDLen = 128
	// MaxRootJobIDLen bounds the job_id of a job that is not a shard, leaving
	// room for the suffix ShardJobID appends.
	MaxRootJobIDLen = MaxJobIDLen - len(".s00000")
	// MaxShards bounds shard.count.
	MaxShards = 10000
	// MaxJobObjects bounds an explicit objects list (Pub/Sub's 10 MB limit
	// would stop a longer one anyway).
	MaxJobObjects = 100000
	// MaxSubmitterLen bounds submitter.
	MaxSubmitterLen = 256
)

// Store says which object store a job lists and signs for.
type Store string

// Stores. The empty Store means StoreGCS.
const (
	StoreGCS Store = "gcs"
	StoreS3  Store = "s3"
)

// ManifestFormat is a manifest's encoding.
type ManifestFormat string

// Manifest formats. A new format is added here, in manifestFormats, and in
// RowWriter and RowReader (manifest.go); nothing outside schema branches on
// a format.
const (
	FormatJSONL ManifestFormat = "jsonl"
	FormatCSV   ManifestFormat = "csv"
)

var manifestFormats = []ManifestFormat{FormatJSONL, FormatCSV}

// Known reports whether f is a format this version writes and reads.
func (f ManifestFormat) Known() bool { return slices.Contains(manifestFormats, f) }

// HasHeader reports whether a file in f starts with a header record (CSV):
// a manifest composed of parts carries it once, before the first part.
func (f ManifestFormat) HasHeader() bool { return f == FormatCSV }

// ContentType is the Content-Type of a file in f.
func (f ManifestFormat) ContentType() string {
	if f == FormatCSV {
		return "text/csv; charset=utf-8"
	}
	return "application/x-ndjson"
}

// FormatForName is the format a manifest named name is written in when the
// job does not say: its extension's (".csv" in any case: CSV), else JSONL.
func FormatForName(name string) ManifestFormat {
	for _, f := range manifestFormats {
		if strings.EqualFold(path.Ext(name), "."+string(f)) {
			return f
		}
	}
	return FormatJSONL
}

// formatChoices is "jsonl or csv", for error messages.
func formatChoices() string {
	names := make([]string, len(manifestFormats))
	for i, f := range manifestFormats {
		names[i] = string(f)
	}
	return strings.Join(names, " or ")
}

// Job is a linkissuer.job.v1 message: sign every object of a source and write
// the links to a manifest or publish them to a topic. Decoding is strict:
// unknown fields are refused, because a misspelt optional field would
// otherwise be silently ignored.
type Job struct {
	// JobID identifies the job: 1-128 characters of [A-Za-z0-9._-], starting
	// with a letter or digit, without "..". It names the manifest parts, so a
	// redelivered job finds its own work. A job that is not a shard is
	// limited to MaxRootJobIDLen.
	JobID  string    `json:"job_id"`
	Source JobSource `json:"source"`
	// Method is GET, HEAD, PUT, POST, DELETE or RESUMABLE (upper case).
	Method string `json:"method"`
	// ExpiresIn is the lifetime of every link, from 1s to 7d, written as
	// a whole number of days ("7d") or a Go duration of whole seconds ("15m",
	// "1h30m", "3600s"). A JSON number is refused: the unit would be a
	// guess. See ParseExpiresIn.
	ExpiresIn string `json:"expires_in"`
	// ResponseParams are response-* query parameters signed into every URL
	// (e.g. "response-content-disposition": "attachment"). GCS honours
	// response-content-disposition and response-content-type; S3 also
	// response-cache-control, -content-encoding, -content-language and
	// -expires.
	ResponseParams map[string]string `json:"response_params,omitempty"`
	Output         JobOutput         `json:"output"`
	// NotifyTopic, if set, receives one linkissuer.job_done.v1 message when
	// the whole job (all shards) is complete. Full name:
	// projects/PROJECT/topics/TOPIC.
	NotifyTopic string `json:"notify_topic,omitempty"`
	// Submitter says who submitted the job (an account email or a name, at
	// most MaxSubmitterLen bytes of text without control characters). It
	// is copied into the audit record of every row the job signs. It is
	// what the publisher of the message claims: the right to publish to
	// the jobs topic is what is verified (by IAM), not this value.
	Submitter string `json:"submitter,omitempty"`
	// Shard is set on the messages a large job is split into; see Shard.
	Shard *Shard `json:"shard,omitempty"`
}

// JobSource says what to sign: a listing (bucket plus prefix, optionally
// filtered by a glob) or an explicit list of objects. Objects != nil selects
// the list kind, and then the listing fields must be empty.
type JobSource struct {
	// Store is "gcs" (the default, also when empty) or "s3".
	Store Store `json:"store,omitempty"`
	// Endpoint is an S3-compatible endpoint, http(s)://host[:port]; empty for
	// AWS itself. Only with store s3.
	Endpoint string `json:"endpoint,omitempty"`
	// Region is the S3 region; required with store s3, refused with gcs.
	Region string `json:"region,omitempty"`
	Bucket string `json:"bucket"`
	// Prefix limits a listing to names starting with it; empty lists the
	// whole bucket (subject to policy).
	Prefix string `json:"prefix,omitempty"`
	// Match is a glob in GCS matchGlob syntax (*, **, ?, [...], {a,b}),
	// matched against the full object name.
	Match string `json:"match,omitempty"`
	// IncludeGenerations lists every generation (version), not only live
	// objects, and signs each for its generation.
	IncludeGenerations bool `json:"include_generations,omitempty"`
	// Objects is an explicit list, 1 to MaxJobObjects entries, each name and
	// generation pair at most once.
	Objects []ObjectRef `json:"objects,omitempty"`
}

// ObjectRef names one object of an explicit list.
type ObjectRef struct {
	Name string `json:"name"`
	// Generation pins a generation; 0 (or absent) means the live one.
	Generation int64 `json:"generation,omitempty"`
}

// SourceKind distinguishes the two kinds of job source.
type SourceKind int

// Source kinds.
const (
	SourcePrefix SourceKind = iota
	SourceList
)

// Kind says which kind of source s is.
func (s *JobSource) Kind() SourceKind {
	if s.Objects != nil {
		return SourceList
	}
	return SourcePrefix
}

// Dialect is the signing dialect for s's store.
func (s *JobSource) Dialect() sign.Dialect {
	if s.Store == StoreS3 {
		return sign.AWS4
	}
	return sign.GOOG4
}

// JobOutput says where links go: exactly one of Manifest and Topic.
type JobOutput struct {
	Manifest *ManifestTarget `json:"manifest,omitempty"`
	// Topic receives one linkissuer.link.v1 message per object.
	Topic string `json:"topic,omitempty"`
}

// ManifestTarget is the final manifest object and its format.
type ManifestTarget struct {
	// URI is gs://BUCKET/PATH (Cloud Storage) or s3://BUCKET/KEY (only for
	// an s3 source: the manifest goes to the source's store); the object
	// name is valid and does not end in /.
	URI    string         `json:"uri"`
	Format ManifestFormat `json:"format"`
}

// Shard marks a job message as one part of a larger job. The jobs package
// splits a root job into Count shards, each published back to the jobs topic
// as a full job message with:
//   - job_id = ShardJobID(parent_job_id, index), so a republished shard is the
//     same shard (idempotent by name);
//   - for a prefix source, the key range [start_offset, end_offset) of the
//     listing (empty start: from the first name; empty end: to the last);
//   - for a list source, its own slice of the objects and no offsets;
//   - everything else (method, expiry, output, notify_topic) copied from the
//     parent, so any replica can run it and find the final manifest.
type Shard struct {
	ParentJobID string `json:"parent_job_id"`
	Index       int    `json:"index"`
	Count       int    `json:"count"`
	StartOffset string `json:"start_offset,omitempty"`
	EndOffset   string `json:"end_offset,omitempty"`
}

// ShardJobID is the job_id of shard index of parent: parent + ".s" + the
// index in five digits ("export-7.s00003").
func ShardJobID(parent string, index int) string {
	return fmt.Sprintf("%s.s%05d", parent, index)
}

// jobNamePaths are the fields of a job that hold object names.
var jobNamePaths = []string{"source.objects.name", "source.prefix", "shard.start_offset", "shard.end_offset"}

// ParseJob decodes and validates a linkissuer.job.v1 message body.
func ParseJob(ctx context.Context, data []byte) (*Job, error) {
	if len(data) > MaxMessageBytes {
		return nil, fieldErr(CodeTooLarge, "data", "%d bytes, the limit is %d", len(data), MaxMessageBytes)
	}
	var j Job
	if err := decodeStrict(ctx, data, &j, "", true, jobNamePaths); err != nil {
		return nil, err
	}
	if err := j.Validate(); err != nil {
		return nil, err
	}
	return &j, nil
}

// Attributes are the Pub/Sub attributes of a job message: schema, job_id and,
// for a shard, parent_job_id.
func (j *Job) Attributes() map[string]string {
	a := map[string]string{AttrSchema: JobV1, AttrJobID: j.JobID}
	if j.Shard != nil {
		a[AttrParentJobID] = j.Shard.ParentJobID
	}
	return a
}

// Expiry parses ExpiresIn.
func (j *Job) Expiry() (time.Duration, error) { return ParseExpiresIn(j.ExpiresIn) }

// ResponseQuery returns ResponseParams as query parameters sorted by name.
func (j *Job) ResponseQuery() []sign.Param {
	out := make([]sign.Param, 0, len(j.ResponseParams))
	for _, k := range slices.Sorted(maps.Keys(j.ResponseParams)) {
		out = append(out, sign.Param{Name: k, Value: j.ResponseParams[k]})
	}
	return out
}

// NewShard returns shard index of count of the root job j. For a prefix
// source, start and end bound the key range and objects must be nil; for a
// list source, objects is the shard's slice and start and end must be empty.
// The result is validated; j is not modified.
func (j *Job) NewShard(index, count int, start, end string, objects []ObjectRef) (*Job, error) {
	if j.Shard != nil {
		return nil, fieldErr(CodeInvalidField, "shard", "%s is already a shard; split the root job", j.JobID)
	}
	s := *j
	s.JobID = ShardJobID(j.JobID, index)
	s.ResponseParams = maps.Clone(j.ResponseParams)
	if j.Output.Manifest != nil {
		m := *j.Output.Manifest
		s.Output.Manifest = &m
	}
	s.Shard = &Shard{ParentJobID: j.JobID, Index: index, Count: count, StartOffset: start, EndOffset: end}
	if j.Source.Kind() == SourceList {
		if objects == nil {
			return nil, fieldErr(CodeInvalidField, "source.objects", "a list shard needs its objects")
		}
		s.Source.Objects = slices.Clone(objects)
	} else if objects != nil {
		return nil, fieldErr(CodeInvalidField, "source.objects", "a prefix job's shards take key ranges, not objects")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// ParseExpiresIn parses a job's expires_in: "Nd" (whole days) or a Go
// duration ("15m", "1h30m", "90s") of whole seconds, from 1s to 7d. Errors
// are *FieldError for field expires_in: invalid_field for the syntax,
// expiry_out_of_range for the range.
func ParseExpiresIn(s string) (time.Duration, error) {
	const field = "expires_in"
	if s == "" {
		return 0, fieldErr(CodeMissingField, field, "missing")
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n < 0 || n > 1<<20 {
			return 0, fieldErr(CodeInvalidField, field, "expected N days (7d) or a Go duration (15m, 1h30m), got %s", quoteShort(s))
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fieldErr(CodeInvalidField, field, "expected N days (7d) or a Go duration (15m, 1h30m), got %s", quoteShort(s))
		}
	}
	if d%time.Second != 0 {
		return 0, fieldErr(CodeInvalidField, field, "%s is not a whole number of seconds", quoteShort(s))
	}
	if d < sign.MinExpiry || d > sign.MaxExpiry {
		return 0, fieldErr(CodeExpiryOutOfRange, field, "%s is outside 1s..7d", quoteShort(s))
	}
	return d, nil
}

// FormatExpiresIn writes d in the shortest form ParseExpiresIn reads back:
// "7d", "12h", "15m" or "90s".
func FormatExpiresIn(d time.Duration) string {
	day := 24 * time.Hour
	switch {
	case d > 0 && d%day == 0:
		return strconv.FormatInt(int64(d/day), 10) + "d"
	case d > 0 && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d > 0 && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}
