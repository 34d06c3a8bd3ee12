package schema

import (
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// CloudEventStorageV1 names the Eventarc Cloud Storage CloudEvent format
// (google.cloud.storage.object.v1.*, data a storage#object). Like
// GCSNotificationV1 it names our JSON Schema file; producers do not send it.
const CloudEventStorageV1 = "google.cloud.storage.object.v1"

// CloudEvent types for Cloud Storage, as Eventarc sends them.
const (
	CloudEventFinalized       = "google.cloud.storage.object.v1.finalized"
	CloudEventArchived        = "google.cloud.storage.object.v1.archived"
	CloudEventDeleted         = "google.cloud.storage.object.v1.deleted"
	CloudEventMetadataUpdated = "google.cloud.storage.object.v1.metadataUpdated"
)

// CloudEventsContentType is the media type of structured-mode CloudEvents.
const CloudEventsContentType = "application/cloudevents+json"

// ceSourcePrefix starts the source of every Cloud Storage CloudEvent; the
// bucket name follows.
const ceSourcePrefix = "//storage.googleapis.com/projects/_/buckets/"

var ceTypes = map[string]EventType{
	CloudEventFinalized:       ObjectFinalize,
	CloudEventArchived:        ObjectArchive,
	CloudEventDeleted:         ObjectDelete,
	CloudEventMetadataUpdated: ObjectMetadataUpdate,
}

// ceContext holds the CloudEvent context attributes we read.
type ceContext struct {
	SpecVersion     string
	ID              string
	Source          string
	Type            string
	Subject         string
	Time            string
	DataContentType string
}

// CloudEventHTTP reads a CloudEvent received over HTTP into the form of the
// CloudEvents Pub/Sub binding: context attributes named with the ce- prefix,
// and the event data. ParseCloudEventAttributes validates the result, so an
// event is checked the same way whichever transport brought it; this is the
// only reader of the HTTP binding.
//
// Binary mode (ce-* headers, percent-decoded as the HTTP binding encodes
// them; Content-Type becomes ce-datacontenttype) and structured mode
// (Content-Type application/cloudevents+json, the whole event in the body;
// string attributes copied, other extension values kept as JSON text; data
// or data_base64) are accepted. A request without specversion or id is not a
// CloudEvent. Errors are *FieldError values; a structured body is scanned
// like every JSON input (linear, depth-bounded, stops when ctx ends).
func CloudEventHTTP(ctx context.Context, header http.Header, body []byte) (attrs map[string]string, data []byte, err error) {
	if len(body) > MaxMessageBytes {
		return nil, nil, fieldErr(CodeTooLarge, "data", "%d bytes, the limit is %d", len(body), MaxMessageBytes)
	}
	ct := header.Get("Content-Type")
	if mt, _, _ := mime.ParseMediaType(ct); mt == CloudEventsContentType {
		attrs, data, err = structuredCloudEvent(ctx, body)
	} else {
		attrs, data = binaryCloudEvent(header, body)
	}
	if err != nil {
		return nil, nil, err
	}
	for _, k := range []string{"ce-specversion", "ce-id"} {
		if attrs[k] == "" {
			return nil, nil, fieldErr(CodeMissingAttribute, k, "missing: not a CloudEvent")
		}
	}
	return attrs, data, nil
}

func binaryCloudEvent(header http.Header, body []byte) (map[string]string, []byte) {
	attrs := map[string]string{}
	for k, vs := range header {
		k = strings.ToLower(k)
		if !strings.HasPrefix(k, "ce-") || len(vs) == 0 {
			continue
		}
		// The HTTP binding percent-encodes what a header cannot carry
		// (non-ASCII, '%', '"', space).
		v, err := url.PathUnescape(vs[0])
		if err != nil {
			v = vs[0]
		}
		attrs[k] = v
	}
	if ct := header.Get("Content-Type"); ct != "" {
		attrs["ce-datacontenttype"] = ct
	}
	return attrs, body
}

func structuredCloudEvent(ctx context.Context, body []byte) (map[string]string, []byte, error) {
	var fields map[string]json.RawMessage
	if err := decodeStrict(ctx, body, &fields, "", false, nil); err != nil {
		return nil, nil, err
	}
	attrs := make(map[string]string, len(fields))
	for k, raw := range fields {
		if k == "data" || k == "data_base64" {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			s = string(raw) // an integer or boolean extension
		}
		attrs["ce-"+strings.ToLower(k)] = s
	}
	raw, hasData := fields["data"]
	b64, hasB64 := fields["data_base64"]
	switch {
	case hasData && hasB64:
		return nil, nil, fieldErr(CodeInvalidField, "data", "both data and data_base64 are set")
	case hasB64:
		var data []byte
		if err := json.Unmarshal(b64, &data); err != nil {
			return nil, nil, &FieldError{Field: "data_base64", Reason: "not valid base64", Code: CodeInvalidField, Err: err}
		}
		return attrs, data, nil
	case hasData:
		var s string
		if ct := attrs["ce-datacontenttype"]; ct != "" && !strings.Contains(ct, "json") && json.Unmarshal(raw, &s) == nil {
			return attrs, []byte(s), nil // text data travels as a JSON string
		}
		return attrs, raw, nil
	}
	return attrs, nil, nil
}

// ParseCloudEventAttributes validates a Cloud Storage CloudEvent in the
// CloudEvents Pub/Sub binding (context attributes with the ce- prefix, data
// the storage#object), as it arrives on Pub/Sub or as CloudEventHTTP reads it
// from HTTP, and returns it normalized.
//
// Checked: specversion is 1.0; id, source, type, subject and time are present;
// type is one of the four google.cloud.storage.object.v1 types; source is
// //storage.googleapis.com/projects/_/buckets/BUCKET with a valid bucket;
// subject is objects/NAME with a valid name; time is RFC 3339;
// datacontenttype, when given, is application/json; the data is a
// storage#object for the same bucket and name, with a generation.
func ParseCloudEventAttributes(ctx context.Context, attrs map[string]string, data []byte) (*ObjectEvent, error) {
	if len(data) > MaxMessageBytes {
		return nil, fieldErr(CodeTooLarge, "data", "%d bytes, the limit is %d", len(data), MaxMessageBytes)
	}
	c := ceContext{
		SpecVersion:     attrs["ce-specversion"],
		ID:              attrs["ce-id"],
		Source:          attrs["ce-source"],
		Type:            attrs["ce-type"],
		Subject:         attrs["ce-subject"],
		Time:            attrs["ce-time"],
		DataContentType: attrs["ce-datacontenttype"],
	}
	return parseCE(ctx, c, "ce-", data)
}

// parseCE validates the context attributes, named with prefix ("ce-" in
// binary mode and on Pub/Sub, "" in structured mode), then the data.
func parseCE(ctx context.Context, c ceContext, prefix string, data []byte) (*ObjectEvent, error) {
	for _, a := range []struct{ name, v string }{
		{"specversion", c.SpecVersion}, {"id", c.ID}, {"source", c.Source},
		{"type", c.Type}, {"subject", c.Subject}, {"time", c.Time},
	} {
		if a.v == "" {
			return nil, fieldErr(CodeMissingAttribute, prefix+a.name, "missing")
		}
	}
	if c.SpecVersion != "1.0" {
		return nil, fieldErr(CodeInvalidField, prefix+"specversion", "expected 1.0, got %s", quoteShort(c.SpecVersion))
	}
	typ, ok := ceTypes[c.Type]
	if !ok {
		return nil, fieldErr(CodeUnknownEventType, prefix+"type", "unknown CloudEvent type %s", quoteShort(c.Type))
	}
	bucket, ok := strings.CutPrefix(c.Source, ceSourcePrefix)
	if !ok || bucket == "" {
		return nil, fieldErr(CodeInvalidField, prefix+"source", "expected %sBUCKET, got %s", ceSourcePrefix, quoteShort(c.Source))
	}
	if err := ValidateBucketName(gcs, prefix+"source", bucket); err != nil {
		return nil, err
	}
	name, ok := strings.CutPrefix(c.Subject, "objects/")
	if !ok {
		return nil, fieldErr(CodeInvalidField, prefix+"subject", "expected objects/NAME, got %s", quoteShort(c.Subject))
	}
	if err := ValidateObjectName(prefix+"subject", name); err != nil {
		return nil, err
	}
	if c.DataContentType != "" {
		if mt, _, _ := mime.ParseMediaType(c.DataContentType); mt != "application/json" {
			return nil, fieldErr(CodeInvalidField, prefix+"datacontenttype", "expected application/json, got %s", quoteShort(c.DataContentType))
		}
	}
	t, err := parseTime(prefix+"time", c.Time)
	if err != nil {
		return nil, err
	}
	ev := &ObjectEvent{
		Origin:    OriginCloudEvent,
		ID:        c.ID,
		Type:      typ,
		Bucket:    bucket,
		Object:    name,
		Size:      -1,
		EventTime: t,
	}
	if err := ev.readPayload(ctx, data); err != nil {
		return nil, err
	}
	return ev, nil
}
