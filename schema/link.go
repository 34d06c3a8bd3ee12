package schema

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/linkissuer/linkissuer/sign"
)

// LinkV1 is the schema attribute value of an issued-link message.
const LinkV1 = "linkissuer.link.v1"

// Limits on link attributes.
const (
	// MaxPlainDedupeKey is the longest dedupe key written in plain form; a
	// longer one is replaced by its SHA-256 (see DedupeKey).
	MaxPlainDedupeKey = 256
	// MaxObjectAttribute is the longest object name copied into the object
	// attribute; longer names are only in the data.
	MaxObjectAttribute = 256

	// MaxLinkMetaKey is the longest key of a link's metadata or
	// event_attributes (Pub/Sub's attribute key limit).
	MaxLinkMetaKey = 256
	// MaxLinkMetaValue is the longest value of a link's metadata or
	// event_attributes.
	MaxLinkMetaValue = 1 << 10
	// MaxLinkMetaBytes bounds the keys and values of a link's metadata and
	// event_attributes together (GCS's own bound on custom metadata).
	MaxLinkMetaBytes = 8 << 10
)

// Link is a linkissuer.link.v1 message: one signed URL for one object
// generation. The URL is in the data only, never in attributes: it is long
// (often over Pub/Sub's 1024-byte attribute limit) and it is a credential.
type Link struct {
	Bucket string `json:"bucket"`
	Object string `json:"object"`
	// Generation is the object generation the link is for; 0 when unknown
	// (a job listing live objects by name only).
	Generation int64 `json:"generation"`
	// Method is the method as requested: GET, HEAD, PUT, POST, DELETE or
	// RESUMABLE.
	Method string `json:"method"`
	// HTTPMethod is the method the client sends (POST for RESUMABLE).
	HTTPMethod string `json:"http_method"`
	URL        string `json:"url"`
	// Headers the client must send with the request, signed in (host
	// excepted); absent when none.
	Headers   map[string]string `json:"headers,omitempty"`
	ExpiresAt time.Time         `json:"expires_at"`
	// IssuedAt is the signing time (X-Goog-Date / X-Amz-Date), to the second.
	IssuedAt time.Time `json:"issued_at"`
	// Size and ContentType describe the object when known (size -1: unknown).
	Size        int64      `json:"size"`
	ContentType string     `json:"content_type,omitempty"`
	Source      LinkSource `json:"source"`
	// Metadata is the object's custom metadata (the storage#object's
	// metadata) that the worker's allow-list copies on; absent when none.
	Metadata map[string]string `json:"metadata,omitempty"`
	// EventAttributes are the event message's attributes (for a GCS
	// notification, the notification config's custom attributes) that the
	// worker's allow-list copies on; absent when none.
	EventAttributes map[string]string `json:"event_attributes,omitempty"`
	// Durable is the durable link minted for the object when the worker is
	// configured to (worker --durable-links): a stable URL that outlives
	// URL, redirecting each click to a fresh signed URL until its own
	// expiry. Absent otherwise. A credential like URL: in the data only.
	Durable *DurableLink `json:"durable,omitempty"`
}

// DurableLink is a durable link as POST /v1/durable-links answers it and
// as a link.v1 message carries it: https://HOST/l/TOKEN, the token's id
// (what audit records and revocations name) and the durable link's own
// expiry.
type DurableLink struct {
	URL       string    `json:"url"`
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// LinkSource says what asked for the link: a storage event (message_id and
// event_type) or a job (job_id, and message_id of the job message).
type LinkSource struct {
	MessageID string `json:"message_id,omitempty"`
	EventType string `json:"event_type,omitempty"`
	JobID     string `json:"job_id,omitempty"`
}

// LinkObject describes the object a link is for, beyond what sign.Request
// carries.
type LinkObject struct {
	Generation  int64
	Size        int64
	ContentType string
	// Pin signs generation=Generation into the URL, so that the link serves
	// that generation only, not whatever is live when it is used.
	Pin bool
	// Query holds response parameters the requester asked for (a durable
	// link's), signed in after the policy's; a name the policy sets keeps
	// the policy's value.
	Query []sign.Param
	// Metadata and EventAttributes are copied into the link as they are;
	// they must be within ValidateLinkMeta's bounds.
	Metadata, EventAttributes map[string]string
}

// NewLink builds a Link from the request that was signed and its result. The
// issue time is req.Time truncated to the second, as in X-Goog-Date, and the
// expiry is truncated likewise (the URL expires X-Goog-Expires seconds after
// X-Goog-Date). It
// refuses inconsistent input (no URL, an expiry not after the issue time, a
// source with neither message_id nor job_id).
func NewLink(req sign.Request, signed *sign.SignedURL, obj LinkObject, src LinkSource) (*Link, error) {
	if signed == nil || signed.URL == "" {
		return nil, fieldErr(CodeMissingField, "url", "no signed URL")
	}
	l := &Link{
		Bucket:      req.Bucket,
		Object:      req.Object,
		Generation:  obj.Generation,
		Method:      strings.ToUpper(req.Method),
		HTTPMethod:  signed.Method,
		URL:         signed.URL,
		ExpiresAt:   signed.Expires.UTC().Truncate(time.Second),
		IssuedAt:    req.Time.UTC().Truncate(time.Second),
		Size:        obj.Size,
		ContentType: obj.ContentType,
		Source:      src,
	}
	if len(obj.Metadata) > 0 {
		l.Metadata = obj.Metadata
	}
	if len(obj.EventAttributes) > 0 {
		l.EventAttributes = obj.EventAttributes
	}
	if l.HTTPMethod == "" {
		l.HTTPMethod = req.Method
	}
	if len(signed.Headers) > 0 {
		l.Headers = make(map[string]string, len(signed.Headers))
		for _, h := range signed.Headers {
			l.Headers[strings.ToLower(h.Name)] = h.Value
		}
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return l, nil
}

// Validate checks l without modifying it.
func (l *Link) Validate() error {
	if err := ValidateBucketName(gcs, "bucket", l.Bucket); err != nil {
		if sign.ValidateBucket(sign.AWS4, l.Bucket) != nil {
			return err
		}
	}
	if err := ValidateObjectName("object", l.Object); err != nil {
		return err
	}
	if err := ValidateMethod("method", l.Method); err != nil {
		return err
	}
	switch {
	case l.Generation < 0:
		return fieldErr(CodeInvalidField, "generation", "negative")
	case l.URL == "":
		return fieldErr(CodeMissingField, "url", "missing")
	case l.IssuedAt.IsZero():
		return fieldErr(CodeMissingField, "issued_at", "missing")
	case !l.ExpiresAt.After(l.IssuedAt):
		return fieldErr(CodeExpiryOutOfRange, "expires_at", "%s is not after issued_at %s", l.ExpiresAt.Format(time.RFC3339), l.IssuedAt.Format(time.RFC3339))
	case l.Source.MessageID == "" && l.Source.JobID == "":
		return fieldErr(CodeMissingField, "source", "needs message_id or job_id")
	}
	if d := l.Durable; d != nil {
		switch {
		case !strings.HasPrefix(d.URL, "https://") && !strings.HasPrefix(d.URL, "http://"):
			return fieldErr(CodeInvalidField, "durable.url", "not an http(s) URL")
		case d.ID == "":
			return fieldErr(CodeMissingField, "durable.id", "missing")
		case !d.ExpiresAt.After(l.IssuedAt):
			return fieldErr(CodeExpiryOutOfRange, "durable.expires_at", "%s is not after issued_at %s", d.ExpiresAt.Format(time.RFC3339), l.IssuedAt.Format(time.RFC3339))
		}
	}
	return ValidateLinkMeta(l.Metadata, l.EventAttributes)
}

// ValidateLinkMeta checks a link's metadata and event_attributes against
// their bounds: every key 1..MaxLinkMetaKey bytes, every value at most
// MaxLinkMetaValue bytes, and all keys and values of both maps at most
// MaxLinkMetaBytes together. An empty key is CodeInvalidField; anything
// over a bound is CodeMetadataTooLarge. It takes time linear in the
// bytes it checks and stops at the first failure.
func ValidateLinkMeta(metadata, attributes map[string]string) error {
	total := 0
	for _, f := range []struct {
		name string
		m    map[string]string
	}{{"metadata", metadata}, {"event_attributes", attributes}} {
		for k, v := range f.m {
			switch {
			case k == "":
				return fieldErr(CodeInvalidField, f.name, "empty key")
			case len(k) > MaxLinkMetaKey:
				return fieldErr(CodeMetadataTooLarge, f.name, "key of %d bytes; at most %d", len(k), MaxLinkMetaKey)
			case len(v) > MaxLinkMetaValue:
				return fieldErr(CodeMetadataTooLarge, f.name, "value of %q has %d bytes; at most %d", k, len(v), MaxLinkMetaValue)
			}
			if total += len(k) + len(v); total > MaxLinkMetaBytes {
				return fieldErr(CodeMetadataTooLarge, f.name, "over %d bytes of keys and values in all", MaxLinkMetaBytes)
			}
		}
	}
	return nil
}

// Data is l's message data: compact JSON, without HTML escaping (so & in
// URLs stays &).
func (l *Link) Data() ([]byte, error) { return marshal(l) }

// DedupeKey identifies what a link grants, so that consumers can drop
// duplicates from redelivery: "BUCKET/OBJECT#GENERATION:METHOD", e.g.
// "media/cat.jpg#1700000000000000:GET". When that is longer than
// MaxPlainDedupeKey bytes, the key is "sha256:" followed by the lower-case hex
// SHA-256 of the plain form (71 bytes). Both forms are stable: the same
// inputs always give the same key.
func DedupeKey(bucket, object string, generation int64, method string) string {
	plain := bucket + "/" + object + "#" + strconv.FormatInt(generation, 10) + ":" + method
	if len(plain) <= MaxPlainDedupeKey {
		return plain
	}
	sum := sha256.Sum256([]byte(plain))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// DedupeKey is DedupeKey for l.
func (l *Link) DedupeKey() string {
	return DedupeKey(l.Bucket, l.Object, l.Generation, l.Method)
}

// Attributes are l's Pub/Sub attributes: schema, dedupe_key, bucket,
// generation, method, job_id (for job links) and object when its name is at
// most MaxObjectAttribute bytes. All are within Pub/Sub's limits by
// construction; the URL is never among them.
func (l *Link) Attributes() map[string]string {
	a := map[string]string{
		AttrSchema:     LinkV1,
		AttrDedupeKey:  l.DedupeKey(),
		AttrBucket:     l.Bucket,
		AttrGeneration: strconv.FormatInt(l.Generation, 10),
		AttrMethod:     l.Method,
	}
	if len(l.Object) <= MaxObjectAttribute {
		a[AttrObject] = l.Object
	}
	if l.Source.JobID != "" {
		a[AttrJobID] = l.Source.JobID
	}
	return a
}

// marshal encodes v as compact JSON without HTML escaping: the wire form of
// every output message.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("schema: encode %T: %w", v, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
