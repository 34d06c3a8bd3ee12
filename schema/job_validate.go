package schema

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/linkissuer/linkissuer/sign"
)

// Validate checks j without modifying it. Every failure is a *FieldError
// naming the JSON path of the field ("source.objects[2].name").
func (j *Job) Validate() error {
	maxID := MaxRootJobIDLen
	if j.Shard != nil {
		maxID = MaxJobIDLen
	}
	if err := validateJobID("job_id", j.JobID, maxID); err != nil {
		return err
	}
	if err := j.Source.validate(); err != nil {
		return err
	}
	if err := ValidateMethod("method", j.Method); err != nil {
		return err
	}
	if _, err := ParseExpiresIn(j.ExpiresIn); err != nil {
		return err
	}
	if err := validateResponseParams(j.Source.Store, j.ResponseParams); err != nil {
		return err
	}
	if err := j.Output.validate(); err != nil {
		return err
	}
	if m := j.Output.Manifest; m != nil && strings.HasPrefix(m.URI, "s3://") && j.Source.Store != StoreS3 {
		return fieldErr(CodeInvalidField, "output.manifest.uri", "an s3:// manifest goes to the job's S3-compatible store, and this job's source is gcs")
	}
	if j.NotifyTopic != "" {
		if err := ValidateTopic("notify_topic", j.NotifyTopic); err != nil {
			return err
		}
	}
	if err := checkText("submitter", j.Submitter, MaxSubmitterLen); err != nil {
		return err
	}
	if j.Shard != nil {
		return j.validateShard()
	}
	return nil
}

func validateJobID(field, id string, max int) error {
	if id == "" {
		return fieldErr(CodeMissingField, field, "missing")
	}
	if len(id) > max {
		return fieldErr(CodeInvalidField, field, "longer than %d characters", max)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(alnumAny(c) || (i > 0 && (c == '.' || c == '_' || c == '-'))) {
			return fieldErr(CodeInvalidField, field, "%s: use letters, digits, '.', '_' and '-', starting with a letter or digit", quoteShort(id))
		}
	}
	if strings.Contains(id, "..") {
		return fieldErr(CodeInvalidField, field, "%s must not contain ..", quoteShort(id))
	}
	return nil
}

func alnumAny(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// ValidateMethod checks that m is one of the methods sign.Request accepts,
// written in upper case, and reports a failure with code invalid_method.
func ValidateMethod(field, m string) error {
	switch {
	case sign.ValidMethod(m):
		return nil
	case m == "":
		return fieldErr(CodeMissingField, field, "missing")
	}
	return fieldErr(CodeInvalidMethod, field, "%s is not one of %s", quoteShort(m), sign.MethodList)
}

func (s *JobSource) validate() error {
	switch s.Store {
	case "", StoreGCS:
		if s.Endpoint != "" || s.Region != "" {
			return fieldErr(CodeInvalidField, "source.endpoint", "endpoint and region are for store s3 only")
		}
	case StoreS3:
		if s.Region == "" {
			return fieldErr(CodeMissingField, "source.region", "store s3 needs a region")
		}
		if err := checkText("source.region", s.Region, 64); err != nil {
			return err
		}
		if strings.ContainsAny(s.Region, "/ ") {
			return fieldErr(CodeInvalidField, "source.region", "must not contain '/' or spaces")
		}
		if s.Endpoint != "" {
			if err := validateEndpoint(s.Endpoint); err != nil {
				return err
			}
		}
	default:
		return fieldErr(CodeInvalidField, "source.store", "%s is not gcs or s3", quoteShort(string(s.Store)))
	}
	if s.Bucket == "" {
		return fieldErr(CodeMissingField, "source.bucket", "missing")
	}
	if err := ValidateBucketName(s.Dialect(), "source.bucket", s.Bucket); err != nil {
		return err
	}
	if s.Kind() == SourceList {
		return s.validateList()
	}
	if s.Prefix != "" {
		if err := ValidateObjectName("source.prefix", s.Prefix); err != nil {
			return err
		}
	}
	if s.Match != "" {
		return validateGlob("source.match", s.Match)
	}
	return nil
}

func (s *JobSource) validateList() error {
	if s.Prefix != "" || s.Match != "" || s.IncludeGenerations {
		return fieldErr(CodeInvalidField, "source", "give either objects or prefix/match/include_generations, not both")
	}
	switch {
	case len(s.Objects) == 0:
		return fieldErr(CodeInvalidField, "source.objects", "empty list")
	case len(s.Objects) > MaxJobObjects:
		return fieldErr(CodeInvalidField, "source.objects", "%d objects, at most %d per message: split the job", len(s.Objects), MaxJobObjects)
	}
	seen := make(map[ObjectRef]struct{}, len(s.Objects))
	for i, o := range s.Objects {
		field := fmt.Sprintf("source.objects[%d]", i)
		if err := ValidateObjectName(field+".name", o.Name); err != nil {
			return err
		}
		if o.Generation < 0 {
			return fieldErr(CodeInvalidField, field+".generation", "negative generation")
		}
		if _, dup := seen[o]; dup {
			return fieldErr(CodeInvalidField, field, "%s listed twice", quoteShort(o.Name))
		}
		seen[o] = struct{}{}
	}
	return nil
}

func validateEndpoint(e string) error {
	const field = "source.endpoint"
	u, err := url.Parse(e)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fieldErr(CodeInvalidField, field, "expected http(s)://host[:port], got %s", quoteShort(e))
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fieldErr(CodeInvalidField, field, "only scheme, host and port are allowed, got %s", quoteShort(e))
	}
	return nil
}

// validateGlob checks the syntax GCS matchGlob accepts: balanced [...] and
// non-nested {a,b}; no CR/LF; at most 1024 bytes.
func validateGlob(field, g string) error {
	if err := checkText(field, g, 1024); err != nil {
		return err
	}
	inClass, inAlt := false, false
	for i := 0; i < len(g); i++ {
		switch c := g[i]; {
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
			if i+1 < len(g) && (g[i+1] == ']' || (g[i+1] == '!' && i+2 < len(g) && g[i+2] == ']')) {
				return fieldErr(CodeInvalidField, field, "empty character class at byte %d", i)
			}
		case c == '{':
			if inAlt {
				return fieldErr(CodeInvalidField, field, "nested { at byte %d", i)
			}
			inAlt = true
		case c == '}':
			if !inAlt {
				return fieldErr(CodeInvalidField, field, "unbalanced } at byte %d", i)
			}
			inAlt = false
		}
	}
	if inClass || inAlt {
		return fieldErr(CodeInvalidField, field, "unterminated [ or {")
	}
	return nil
}

// Response parameters each store honours.
var responseParams = map[Store][]string{
	StoreGCS: {"response-content-disposition", "response-content-type"},
	StoreS3: {"response-cache-control", "response-content-disposition", "response-content-encoding",
		"response-content-language", "response-content-type", "response-expires"},
}

func validateResponseParams(store Store, params map[string]string) error {
	if store == "" {
		store = StoreGCS
	}
	allowed := responseParams[store]
	for k, v := range params {
		field := "response_params." + k
		ok := false
		for _, a := range allowed {
			ok = ok || a == k
		}
		if !ok {
			return fieldErr(CodeInvalidField, field, "store %s honours only %s", store, strings.Join(allowed, ", "))
		}
		if v == "" {
			return fieldErr(CodeInvalidField, field, "empty value")
		}
		if err := checkText(field, v, 1024); err != nil {
			return err
		}
	}
	return nil
}

func (o *JobOutput) validate() error {
	switch {
	case o.Manifest == nil && o.Topic == "":
		return fieldErr(CodeMissingField, "output", "give manifest or topic")
	case o.Manifest != nil && o.Topic != "":
		return fieldErr(CodeInvalidField, "output", "give manifest or topic, not both")
	case o.Topic != "":
		return ValidateTopic("output.topic", o.Topic)
	}
	if _, _, _, err := ParseManifestURI("output.manifest.uri", o.Manifest.URI); err != nil {
		return err
	}
	switch f := o.Manifest.Format; {
	case f.Known():
		return nil
	case f == "":
		return fieldErr(CodeMissingField, "output.manifest.format", "missing (%s)", formatChoices())
	}
	return fieldErr(CodeInvalidField, "output.manifest.format", "%s is not %s", quoteShort(string(o.Manifest.Format)), formatChoices())
}

// ParseGCSURI splits gs://BUCKET/OBJECT, validating both names; field names
// the URI in errors.
func ParseGCSURI(field, uri string) (bucket, object string, err error) {
	if uri == "" {
		return "", "", fieldErr(CodeMissingField, field, "missing")
	}
	rest, ok := strings.CutPrefix(uri, "gs://")
	bucket, object, _ = strings.Cut(rest, "/")
	if !ok || bucket == "" || object == "" || strings.HasSuffix(object, "/") {
		return "", "", fieldErr(CodeInvalidField, field, "expected gs://BUCKET/PATH naming an object, got %s", quoteShort(uri))
	}
	if err := ValidateBucketName(gcs, field, bucket); err != nil {
		return "", "", err
	}
	if err := ValidateObjectName(field, object); err != nil {
		return "", "", err
	}
	return bucket, object, nil
}

// ParseManifestURI splits a manifest location, gs://BUCKET/OBJECT (Cloud
// Storage) or s3://BUCKET/KEY (the job's S3-compatible store), validating
// both names; field names the URI in errors.
func ParseManifestURI(field, uri string) (store Store, bucket, object string, err error) {
	if rest, ok := strings.CutPrefix(uri, "s3://"); ok {
		bucket, object, _ = strings.Cut(rest, "/")
		if bucket == "" || object == "" || strings.HasSuffix(object, "/") {
			return "", "", "", fieldErr(CodeInvalidField, field, "expected s3://BUCKET/KEY naming an object, got %s", quoteShort(uri))
		}
		if err := ValidateBucketName(sign.AWS4, field, bucket); err != nil {
			return "", "", "", err
		}
		if err := ValidateObjectName(field, object); err != nil {
			return "", "", "", err
		}
		return StoreS3, bucket, object, nil
	}
	bucket, object, err = ParseGCSURI(field, uri)
	if err != nil {
		if uri != "" && !strings.HasPrefix(uri, "gs://") {
			err = fieldErr(CodeInvalidField, field, "expected gs://BUCKET/PATH or s3://BUCKET/KEY naming an object, got %s", quoteShort(uri))
		}
		return "", "", "", err
	}
	return StoreGCS, bucket, object, nil
}

// ValidateTopic checks a full Pub/Sub topic name,
// projects/PROJECT/topics/TOPIC: a project ID without '/', and a topic ID of
// 3-255 characters of [A-Za-z0-9-_.~+%] starting with a letter and not with
// "goog".
func ValidateTopic(field, name string) error {
	bad := func(why string) error {
		return fieldErr(CodeInvalidField, field, "%s: %s", quoteShort(name), why)
	}
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[0] != "projects" || parts[2] != "topics" || parts[1] == "" {
		return bad("expected projects/PROJECT/topics/TOPIC")
	}
	if err := checkText(field, parts[1], 100); err != nil {
		return err
	}
	t := parts[3]
	if len(t) < 3 || len(t) > 255 {
		return bad("topic ID must be 3 to 255 characters")
	}
	if !('a' <= t[0] && t[0] <= 'z' || 'A' <= t[0] && t[0] <= 'Z') || strings.HasPrefix(t, "goog") {
		return bad("topic ID must start with a letter and not with goog")
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; !alnumAny(c) && !strings.ContainsRune("-_.~+%", rune(c)) {
			return bad("topic ID may contain only letters, digits and -_.~+%")
		}
	}
	return nil
}

func (j *Job) validateShard() error {
	s := j.Shard
	if err := validateJobID("shard.parent_job_id", s.ParentJobID, MaxRootJobIDLen); err != nil {
		return err
	}
	if s.Count < 1 || s.Count > MaxShards {
		return fieldErr(CodeInvalidField, "shard.count", "must be 1 to %d, got %d", MaxShards, s.Count)
	}
	if s.Index < 0 || s.Index >= s.Count {
		return fieldErr(CodeInvalidField, "shard.index", "must be 0 to count-1 (%d), got %d", s.Count-1, s.Index)
	}
	if want := ShardJobID(s.ParentJobID, s.Index); j.JobID != want {
		return fieldErr(CodeInvalidField, "job_id", "a shard's job_id must be %s", quoteShort(want))
	}
	if j.Source.Kind() == SourceList {
		if s.StartOffset != "" || s.EndOffset != "" {
			return fieldErr(CodeInvalidField, "shard.start_offset", "key ranges are for prefix sources; a list shard carries its objects")
		}
		return nil
	}
	for _, f := range []struct{ name, v string }{{"shard.start_offset", s.StartOffset}, {"shard.end_offset", s.EndOffset}} {
		if f.v != "" {
			if err := ValidateObjectName(f.name, f.v); err != nil {
				return err
			}
		}
	}
	if s.StartOffset != "" && s.EndOffset != "" && s.StartOffset >= s.EndOffset {
		return fieldErr(CodeInvalidField, "shard.end_offset", "must sort after start_offset")
	}
	return nil
}
