package failure

// Code is the stable, machine-readable reason of a permanent failure: the
// reason_code of linkissuer.deadletter.v1 and of manifest error rows, a
// metric label, and the code of the sync API's 4xx answers. The values never
// change meaning; new ones may be added here, and only here.
type Code string

// Reason codes of malformed or unusable input (schema's parsers produce
// them).
const (
	// CodeInvalidJSON: the payload is not well-formed JSON (or is empty where
	// JSON is required).
	CodeInvalidJSON Code = "invalid_json"
	// CodeInvalidField: a field or attribute has the wrong JSON type or an
	// unusable value; schema.FieldError.Field names it.
	CodeInvalidField Code = "invalid_field"
	// CodeMissingAttribute: a required Pub/Sub attribute, CloudEvent
	// attribute or HTTP header is absent.
	CodeMissingAttribute Code = "missing_attribute"
	// CodeMissingField: a required JSON field is absent or empty.
	CodeMissingField Code = "missing_field"
	// CodeUnknownSchema: the schema attribute names a format this worker does
	// not consume.
	CodeUnknownSchema Code = "unknown_schema"
	// CodeUnknownEventType: a GCS eventType or CloudEvent type we do not know.
	CodeUnknownEventType Code = "unknown_event_type"
	// CodeUnknownPayloadFormat: a GCS payloadFormat other than JSON_API_V1 or
	// NONE.
	CodeUnknownPayloadFormat Code = "unknown_payload_format"
	// CodeInvalidObjectName: an object name that is empty, longer than 1024
	// bytes, not UTF-8, contains CR/LF, or (strict check) other control
	// characters.
	CodeInvalidObjectName Code = "invalid_object_name"
	// CodeDotSegment: an object name with a "." or ".." path segment, literal
	// or percent-encoded ("public/../private/secret"). GCS stores such names,
	// but a prefix rule such as public/** would grant what a client or proxy
	// normalizing the path reads as another object; the policy refuses them
	// unless told otherwise.
	CodeDotSegment Code = "dot_segment"
	// CodeInvalidBucketName: a bucket name GCS or S3 would not accept.
	CodeInvalidBucketName Code = "invalid_bucket_name"
	// CodeAttributeMismatch: the attributes and the payload disagree about the
	// bucket, object or generation.
	CodeAttributeMismatch Code = "attribute_mismatch"
	// CodeInvalidMethod: a method other than GET, HEAD, PUT, POST, DELETE,
	// RESUMABLE.
	CodeInvalidMethod Code = "invalid_method"
	// CodeExpiryOutOfRange: a lifetime outside 1s..7d (or outside the
	// worker's policy maximum).
	CodeExpiryOutOfRange Code = "expiry_out_of_range"
	// CodeTooLarge: the message is larger than schema.MaxMessageBytes.
	CodeTooLarge Code = "too_large"
	// CodeMetadataTooLarge: object metadata or notification attributes
	// that the allow-list copies into a link exceed schema's bounds
	// (MaxLinkMetaValue per value, MaxLinkMetaBytes in all).
	CodeMetadataTooLarge Code = "metadata_too_large"
)

// Reason codes of valid input that is not signed.
const (
	// CodePolicyRefused: the message is valid but outside policy (bucket,
	// prefix, method, content type); Class.Detail names the rule.
	CodePolicyRefused Code = "policy_refused"
	// CodeSignRefused: the signer rejected the request as input (a
	// sign.InputError not caught earlier).
	CodeSignRefused Code = "sign_refused"
	// CodeObjectNotFound: an object a job lists explicitly does not exist.
	CodeObjectNotFound Code = "object_not_found"
	// CodeSignFailed: signing one object of a job failed with an error
	// nothing classified (error rows only).
	CodeSignFailed Code = "sign_failed"
	// CodeInternal: a permanent failure with no better code.
	CodeInternal Code = "internal"
)
