package schema

import (
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"time"

	"github.com/linkissuer/linkissuer/sign"
)

// GCSNotificationV1 names the GCS Pub/Sub notification format (attributes
// plus a JSON_API_V1 or NONE payload). GCS does not send it in any
// attribute; it names our JSON Schema files and log fields only.
const GCSNotificationV1 = "gcs.notification.v1"

// Attributes GCS sets on every notification (the first six) or on some.
const (
	AttrEventType               = "eventType"
	AttrPayloadFormat           = "payloadFormat"
	AttrBucketID                = "bucketId"
	AttrObjectID                = "objectId"
	AttrObjectGeneration        = "objectGeneration"
	AttrEventTime               = "eventTime"
	AttrNotificationConfig      = "notificationConfig"
	AttrOverwroteGeneration     = "overwroteGeneration"
	AttrOverwrittenByGeneration = "overwrittenByGeneration"
)

// EventType is a GCS notification event type. CloudEvents are normalized to
// the same values.
type EventType string

// The four GCS event types.
const (
	ObjectFinalize       EventType = "OBJECT_FINALIZE"
	ObjectMetadataUpdate EventType = "OBJECT_METADATA_UPDATE"
	ObjectDelete         EventType = "OBJECT_DELETE"
	ObjectArchive        EventType = "OBJECT_ARCHIVE"
)

func (t EventType) known() bool {
	switch t {
	case ObjectFinalize, ObjectMetadataUpdate, ObjectDelete, ObjectArchive:
		return true
	}
	return false
}

// PayloadFormat is a notification configuration's payload format.
type PayloadFormat string

// The two payload formats GCS supports.
const (
	PayloadJSONAPIV1 PayloadFormat = "JSON_API_V1"
	PayloadNone      PayloadFormat = "NONE"
)

// Int64String is an int64 carried as a decimal JSON string, as the GCS JSON
// API does ("generation": "1700000000000000"). Decoding also accepts a bare
// JSON integer, which some CloudEvent producers send; it is kept as text and
// parsed (with a field name in the error) during validation.
type Int64String string

// UnmarshalJSON accepts a JSON string, a JSON number or null.
func (s *Int64String) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0:
		return nil
	case string(b) == "null":
		return nil
	case b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = Int64String(v)
		return nil
	case b[0] == '-' || ('0' <= b[0] && b[0] <= '9'):
		*s = Int64String(b)
		return nil
	case b[0] == '{':
		return typeErr("object")
	case b[0] == '[':
		return typeErr("array")
	}
	return typeErr("boolean")
}

// StorageObject is the storage#object resource of the GCS JSON API, as sent
// in a JSON_API_V1 notification payload and in the data of a storage
// CloudEvent. Unknown fields are ignored: GCS adds fields over time.
type StorageObject struct {
	Kind                    string            `json:"kind,omitempty"`
	ID                      string            `json:"id,omitempty"`
	SelfLink                string            `json:"selfLink,omitempty"`
	MediaLink               string            `json:"mediaLink,omitempty"`
	Name                    string            `json:"name"`
	Bucket                  string            `json:"bucket"`
	Generation              Int64String       `json:"generation"`
	Metageneration          Int64String       `json:"metageneration,omitempty"`
	ContentType             string            `json:"contentType,omitempty"`
	ContentEncoding         string            `json:"contentEncoding,omitempty"`
	ContentDisposition      string            `json:"contentDisposition,omitempty"`
	ContentLanguage         string            `json:"contentLanguage,omitempty"`
	CacheControl            string            `json:"cacheControl,omitempty"`
	StorageClass            string            `json:"storageClass,omitempty"`
	Size                    Int64String       `json:"size,omitempty"`
	MD5Hash                 string            `json:"md5Hash,omitempty"`
	CRC32C                  string            `json:"crc32c,omitempty"`
	ETag                    string            `json:"etag,omitempty"`
	TimeCreated             string            `json:"timeCreated,omitempty"`
	Updated                 string            `json:"updated,omitempty"`
	TimeDeleted             string            `json:"timeDeleted,omitempty"`
	TimeStorageClassUpdated string            `json:"timeStorageClassUpdated,omitempty"`
	Metadata                map[string]string `json:"metadata,omitempty"`
}

// Origin says how an ObjectEvent arrived.
type Origin string

// Origins of an ObjectEvent.
const (
	OriginGCSNotification Origin = "gcs_notification"
	OriginCloudEvent      Origin = "cloudevent"
)

// ObjectEvent is a storage event normalized from a GCS notification or a
// storage CloudEvent.
type ObjectEvent struct {
	Origin Origin
	// ID is the CloudEvent id; empty for GCS notifications, whose identity is
	// the Pub/Sub message ID the worker holds.
	ID         string
	Type       EventType
	Bucket     string
	Object     string
	Generation int64
	// Metageneration is 0 when unknown.
	Metageneration int64
	// Size is the object size in bytes, -1 when unknown (payloadFormat NONE).
	Size        int64
	ContentType string
	EventTime   time.Time
	// NotificationConfig is the notification's resource name, when sent.
	NotificationConfig string
	// OverwroteGeneration is set on the OBJECT_FINALIZE of a new generation
	// that replaced a live one; 0 otherwise.
	OverwroteGeneration int64
	// OverwrittenByGeneration is set on the OBJECT_DELETE or OBJECT_ARCHIVE of
	// a generation that was replaced by an upload; 0 otherwise.
	OverwrittenByGeneration int64
	// Payload is the decoded storage#object; nil for payloadFormat NONE.
	Payload *StorageObject
}

// IgnoreReason says why an event is dropped without a link. The values are
// stable metric labels.
type IgnoreReason string

// Reasons to ignore an event.
const (
	IgnoreOverwritten    IgnoreReason = "overwritten_generation"
	IgnoreMetadataUpdate IgnoreReason = "metadata_update"
	IgnoreDeleted        IgnoreReason = "object_deleted"
	IgnoreArchived       IgnoreReason = "object_archived"
)

// Ignore reports whether no link should be issued for e, and why. Only
// OBJECT_FINALIZE produces links: a delete or archive caused by an overwrite
// (OverwrittenByGeneration set) is the old half of an upload whose finalize
// arrives separately, and the other non-finalize events describe objects that
// are gone or unchanged.
func (e *ObjectEvent) Ignore() (IgnoreReason, bool) {
	switch {
	case e.Type == ObjectFinalize:
		return "", false
	case e.OverwrittenByGeneration != 0:
		return IgnoreOverwritten, true
	case e.Type == ObjectMetadataUpdate:
		return IgnoreMetadataUpdate, true
	case e.Type == ObjectArchive:
		return IgnoreArchived, true
	}
	return IgnoreDeleted, true
}

// ParseGCSNotification validates a GCS Pub/Sub notification (its attributes
// and data) and returns it normalized. Errors are *FieldError values naming
// the attribute ("attributes.objectId") or payload field ("data.generation").
//
// Checked: the six always-present attributes exist; eventType and
// payloadFormat are known; bucketId is a valid bucket name; objectId passes
// sign.ValidateObject; generations are positive integers; eventTime is RFC
// 3339. With JSON_API_V1 the data must be a storage#object whose bucket, name
// and generation match the attributes; with NONE it must be empty.
func ParseGCSNotification(ctx context.Context, attrs map[string]string, data []byte) (*ObjectEvent, error) {
	if len(data) > MaxMessageBytes {
		return nil, fieldErr(CodeTooLarge, "data", "%d bytes, the limit is %d", len(data), MaxMessageBytes)
	}
	for _, k := range []string{AttrEventType, AttrPayloadFormat, AttrBucketID, AttrObjectID, AttrObjectGeneration, AttrEventTime} {
		if attrs[k] == "" {
			return nil, fieldErr(CodeMissingAttribute, "attributes."+k, "missing")
		}
	}
	ev := &ObjectEvent{
		Origin:             OriginGCSNotification,
		Type:               EventType(attrs[AttrEventType]),
		Bucket:             attrs[AttrBucketID],
		Object:             attrs[AttrObjectID],
		Size:               -1,
		NotificationConfig: attrs[AttrNotificationConfig],
	}
	if !ev.Type.known() {
		return nil, fieldErr(CodeUnknownEventType, "attributes."+AttrEventType, "unknown event type %s", quoteShort(string(ev.Type)))
	}
	format := PayloadFormat(attrs[AttrPayloadFormat])
	if format != PayloadJSONAPIV1 && format != PayloadNone {
		return nil, fieldErr(CodeUnknownPayloadFormat, "attributes."+AttrPayloadFormat, "unknown payload format %s", quoteShort(string(format)))
	}
	if err := ValidateBucketName(gcs, "attributes."+AttrBucketID, ev.Bucket); err != nil {
		return nil, err
	}
	if err := ValidateObjectName("attributes."+AttrObjectID, ev.Object); err != nil {
		return nil, err
	}
	var err error
	if ev.Generation, err = parseGeneration("attributes."+AttrObjectGeneration, attrs[AttrObjectGeneration]); err != nil {
		return nil, err
	}
	if ev.EventTime, err = parseTime("attributes."+AttrEventTime, attrs[AttrEventTime]); err != nil {
		return nil, err
	}
	if v, ok := attrs[AttrOverwroteGeneration]; ok {
		if ev.OverwroteGeneration, err = parseGeneration("attributes."+AttrOverwroteGeneration, v); err != nil {
			return nil, err
		}
	}
	if v, ok := attrs[AttrOverwrittenByGeneration]; ok {
		if ev.OverwrittenByGeneration, err = parseGeneration("attributes."+AttrOverwrittenByGeneration, v); err != nil {
			return nil, err
		}
	}
	if format == PayloadNone {
		if len(data) != 0 {
			return nil, fieldErr(CodeInvalidField, "data", "payloadFormat NONE must carry no data, got %d bytes", len(data))
		}
		return ev, nil
	}
	if err := ev.readPayload(ctx, data); err != nil {
		return nil, err
	}
	return ev, nil
}

// readPayload decodes the storage#object payload of a notification (the
// message data, or a CloudEvent's data) and cross-checks it against what ev
// already holds from attributes.
func (ev *ObjectEvent) readPayload(ctx context.Context, data []byte) error {
	obj, err := decodeStorageObject(ctx, data, "data")
	if err != nil {
		return err
	}
	return ev.applyPayload(obj, "data")
}

// decodeStorageObject decodes and checks a storage#object payload on its own;
// cross-checks against attributes are applyPayload's.
func decodeStorageObject(ctx context.Context, data []byte, prefix string) (*StorageObject, error) {
	var obj StorageObject
	if err := decodeStrict(ctx, data, &obj, prefix, false, []string{"name"}); err != nil {
		return nil, err
	}
	if obj.Kind != "" && obj.Kind != "storage#object" {
		return nil, fieldErr(CodeInvalidField, prefix+".kind", "expected storage#object, got %s", quoteShort(obj.Kind))
	}
	if obj.Bucket == "" {
		return nil, fieldErr(CodeMissingField, prefix+".bucket", "missing")
	}
	if obj.Name == "" {
		return nil, fieldErr(CodeMissingField, prefix+".name", "missing")
	}
	if err := ValidateObjectName(prefix+".name", obj.Name); err != nil {
		return nil, err
	}
	if obj.Generation == "" {
		return nil, fieldErr(CodeMissingField, prefix+".generation", "missing")
	}
	return &obj, nil
}

// applyPayload checks obj against what ev already holds from attributes and
// copies the payload-only fields.
func (ev *ObjectEvent) applyPayload(obj *StorageObject, prefix string) error {
	gen, err := parseGeneration(prefix+".generation", string(obj.Generation))
	if err != nil {
		return err
	}
	switch {
	case obj.Bucket != ev.Bucket:
		return fieldErr(CodeAttributeMismatch, prefix+".bucket", "payload bucket %s differs from %s", quoteShort(obj.Bucket), quoteShort(ev.Bucket))
	case obj.Name != ev.Object:
		return fieldErr(CodeAttributeMismatch, prefix+".name", "payload name %s differs from %s", quoteShort(obj.Name), quoteShort(ev.Object))
	case ev.Generation != 0 && gen != ev.Generation:
		return fieldErr(CodeAttributeMismatch, prefix+".generation", "payload generation %d differs from %d", gen, ev.Generation)
	}
	ev.Generation = gen
	if obj.Metageneration != "" {
		if ev.Metageneration, err = parseGeneration(prefix+".metageneration", string(obj.Metageneration)); err != nil {
			return err
		}
	}
	if obj.Size != "" {
		n, err := strconv.ParseInt(string(obj.Size), 10, 64)
		if err != nil || n < 0 {
			return fieldErr(CodeInvalidField, prefix+".size", "expected a non-negative integer, got %s", quoteShort(string(obj.Size)))
		}
		ev.Size = n
	}
	ev.ContentType = obj.ContentType
	ev.Payload = obj
	return nil
}

func parseGeneration(field, v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fieldErr(CodeInvalidField, field, "expected a positive integer, got %s", quoteShort(v))
	}
	return n, nil
}

func parseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fieldErr(CodeInvalidField, field, "expected an RFC 3339 timestamp, got %s", quoteShort(v))
	}
	return t.UTC(), nil
}

// typeErr is what Int64String's decoder returns: encoding/json fills in the
// field path only for a *json.UnmarshalTypeError.
func typeErr(value string) error {
	return &json.UnmarshalTypeError{Value: value, Type: reflect.TypeFor[string]()}
}

// gcs is the dialect whose bucket rules apply to storage events.
const gcs = sign.GOOG4
