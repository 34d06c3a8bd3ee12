package schema

import (
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
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
	SpecVersion string `json:"specversion"`
	ID          string `json:"id"`
	Source      string `json:"source"`
	Type        string `json:"type"`
	Subject     string `json:"subject"`
	Time        string `json:"time"`
}

// ceEnvelope is a structured-mode CloudEvent. Extension attributes (such as
// Eventarc's "bucket") are ignored.
type ceEnvelope struct {
	ceContext
	DataContentType string          `json:"datacontenttype,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
	DataBase64      string          `json:"data_base64,omitempty"`
}

// ParseCloudEvent validates a Cloud Storage CloudEvent received over HTTP and
// returns it normalized. Binary mode (ce-* headers, body the storage#object
// JSON) and structured mode (Content-Type application/cloudevents+json, the
// whole event in the body) are both accepted.
//
// Checked: specversion is 1.0; id, source, type, subject and time are present;
// type is one of the four google.cloud.storage.object.v1 types; source is
// //storage.googleapis.com/projects/_/buckets/BUCKET with a valid bucket;
// subject is objects/NAME with a valid name; time is RFC 3339; the data is a
// storage#object for the same bucket and name, with a generation.
func ParseCloudEvent(header http.Header, body []byte) (*ObjectEvent, error) {
	if len(body) > MaxMessageBytes {
		return nil, fieldErr(CodeTooLarge, "data", "%d bytes, the limit is %d", len(body), MaxMessageBytes)
	}
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if mt == CloudEventsContentType {
		return parseStructured(body)
	}
	c := ceContext{
		SpecVersion: header.Get("Ce-Specversion"),
		ID:          header.Get("Ce-Id"),
		Source:      header.Get("Ce-Source"),
		Type:        header.Get("Ce-Type"),
		Subject:     header.Get("Ce-Subject"),
		Time:        header.Get("Ce-Time"),
	}
	if mt != "" && mt != "application/json" {
		return nil, fieldErr(CodeInvalidField, "content-type", "expected application/json or %s, got %s", CloudEventsContentType, quoteShort(mt))
	}
	return parseCE(c, "ce-", body)
}

// ParseCloudEventAttributes is ParseCloudEvent for a CloudEvent carried in a
// Pub/Sub message (the CloudEvents Pub/Sub binding): context attributes are
// message attributes with the ce- prefix and the data is the storage#object.
func ParseCloudEventAttributes(attrs map[string]string, data []byte) (*ObjectEvent, error) {
	if len(data) > MaxMessageBytes {
		return nil, fieldErr(CodeTooLarge, "data", "%d bytes, the limit is %d", len(data), MaxMessageBytes)
	}
	c := ceContext{
		SpecVersion: attrs["ce-specversion"],
		ID:          attrs["ce-id"],
		Source:      attrs["ce-source"],
		Type:        attrs["ce-type"],
		Subject:     attrs["ce-subject"],
		Time:        attrs["ce-time"],
	}
	return parseCE(c, "ce-", data)
}

func parseStructured(body []byte) (*ObjectEvent, error) {
	var env ceEnvelope
	if err := decodeStrict(body, &env, "", false, nil); err != nil {
		return nil, err
	}
	if env.DataContentType != "" {
		if mt, _, _ := mime.ParseMediaType(env.DataContentType); mt != "application/json" {
			return nil, fieldErr(CodeInvalidField, "datacontenttype", "expected application/json, got %s", quoteShort(env.DataContentType))
		}
	}
	data := []byte(env.Data)
	switch {
	case env.DataBase64 != "" && len(env.Data) != 0:
		return nil, fieldErr(CodeInvalidField, "data", "both data and data_base64 are set")
	case env.DataBase64 != "":
		var err error
		if data, err = base64.StdEncoding.DecodeString(env.DataBase64); err != nil {
			return nil, &FieldError{Field: "data_base64", Reason: "not valid base64", Code: CodeInvalidField, Err: err}
		}
	}
	return parseCE(env.ceContext, "", data)
}

// parseCE validates the context attributes, named with prefix ("ce-" in
// binary mode and on Pub/Sub, "" in structured mode), then the data.
func parseCE(c ceContext, prefix string, data []byte) (*ObjectEvent, error) {
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
	obj, err := decodeStorageObject(data, "data")
	if err != nil {
		return nil, err
	}
	if err := ev.applyPayload(obj, "data"); err != nil {
		return nil, err
	}
	return ev, nil
}
