package schema

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrInvalid is the sentinel every validation error matches with errors.Is:
// the message can never be processed as sent, so the worker dead-letters it
// (with the *FieldError's Code as reason_code) and acks it.
var ErrInvalid = errors.New("invalid message")

// ReasonCode is a stable, machine-readable reason for refusing or ignoring a
// message. It is the reason_code of linkissuer.deadletter.v1 and a metric
// label, so the values never change meaning; new ones may be added.
type ReasonCode string

// Reason codes. Those marked (worker) are never produced by this package; they
// are listed so that every code that can reach the error topic is defined in
// one place.
const (
	// CodeInvalidJSON: the payload is not well-formed JSON (or is empty where
	// JSON is required).
	CodeInvalidJSON ReasonCode = "invalid_json"
	// CodeInvalidField: a field or attribute has the wrong JSON type or an
	// unusable value; FieldError.Field names it.
	CodeInvalidField ReasonCode = "invalid_field"
	// CodeMissingAttribute: a required Pub/Sub attribute, CloudEvent
	// attribute or HTTP header is absent.
	CodeMissingAttribute ReasonCode = "missing_attribute"
	// CodeMissingField: a required JSON field is absent or empty.
	CodeMissingField ReasonCode = "missing_field"
	// CodeUnknownSchema: the schema attribute names a format this worker does
	// not consume.
	CodeUnknownSchema ReasonCode = "unknown_schema"
	// CodeUnknownEventType: a GCS eventType or CloudEvent type we do not know.
	CodeUnknownEventType ReasonCode = "unknown_event_type"
	// CodeUnknownPayloadFormat: a GCS payloadFormat other than JSON_API_V1 or
	// NONE.
	CodeUnknownPayloadFormat ReasonCode = "unknown_payload_format"
	// CodeInvalidObjectName: an object name that is empty, longer than 1024
	// bytes, not UTF-8, contains CR/LF, or (strict check) other control
	// characters.
	CodeInvalidObjectName ReasonCode = "invalid_object_name"
	// CodeDotSegment (policy): an object name with a "." or ".." path
	// segment, literal or percent-encoded ("public/../private/secret",
	// "public/%2e%2e/private"). GCS stores such names, but a prefix rule
	// such as public/** would grant what a client or proxy normalizing the
	// path reads as another object; the policy refuses them unless told
	// otherwise.
	CodeDotSegment ReasonCode = "dot_segment"
	// CodeInvalidBucketName: a bucket name GCS or S3 would not accept.
	CodeInvalidBucketName ReasonCode = "invalid_bucket_name"
	// CodeAttributeMismatch: the attributes and the payload disagree about the
	// bucket, object or generation.
	CodeAttributeMismatch ReasonCode = "attribute_mismatch"
	// CodeInvalidMethod: a method other than GET, HEAD, PUT, POST, DELETE,
	// RESUMABLE.
	CodeInvalidMethod ReasonCode = "invalid_method"
	// CodeExpiryOutOfRange: a lifetime outside 1s..7d (or outside the
	// worker's policy maximum).
	CodeExpiryOutOfRange ReasonCode = "expiry_out_of_range"
	// CodeTooLarge: the message is larger than MaxMessageBytes.
	CodeTooLarge ReasonCode = "too_large"
	// CodePolicyRefused (worker): the message is valid but outside policy
	// (bucket, prefix, method, content type).
	CodePolicyRefused ReasonCode = "policy_refused"
	// CodeSignRefused (worker): the signer rejected the request as input
	// (a *sign.InputError not caught earlier).
	CodeSignRefused ReasonCode = "sign_refused"
	// CodeInternal (worker): a permanent failure with no better code.
	CodeInternal ReasonCode = "internal"
)

// FieldError is a validation failure that names the offending field. It
// matches ErrInvalid with errors.Is and is retrieved with errors.As.
//
// Field uses a prefix to say where the field lives: "attributes.objectId"
// for a Pub/Sub attribute, "ce-type" for a CloudEvent attribute or header,
// "data.generation" for a field of a GCS payload, and the bare JSON path
// ("source.bucket", "expires_in") for our own JSON formats.
type FieldError struct {
	Field  string
	Reason string
	// Code is the stable reason code; never empty for errors from this
	// package.
	Code ReasonCode
	// Err is the underlying cause, if any (for example a *sign.InputError).
	Err error
}

// Error renders "invalid message: FIELD: REASON (CODE)".
func (e *FieldError) Error() string {
	return fmt.Sprintf("invalid message: %s: %s (%s)", e.Field, e.Reason, e.Code)
}

// Is reports whether target is ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the underlying cause.
func (e *FieldError) Unwrap() error { return e.Err }

// CodeOf returns the reason code carried by err: the Code of the first
// *FieldError in its chain, CodeInvalidField for other ErrInvalid errors, and
// "" when err is nil or not a validation error.
func CodeOf(err error) ReasonCode {
	var fe *FieldError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &fe):
		return fe.Code
	case errors.Is(err, ErrInvalid):
		return CodeInvalidField
	}
	return ""
}

func fieldErr(code ReasonCode, field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...), Code: code}
}

// DecodeJSON decodes one JSON object of untrusted input into v with the
// checks every parser in this package makes: nesting at most MaxJSONDepth, no string that encoding/json would silently
// change (invalid UTF-8, lone surrogate escapes), no trailing data, unknown
// fields refused when strict. The work is linear in len(data) and stops
// with ctx's error when ctx ends. Other failures are *FieldError values
// (ErrInvalid). It is for transport envelopes and request bodies outside
// this package (the push envelope, the sync API body), whose callers bound
// len(data) themselves: a push envelope carries a full Pub/Sub message in
// base64, more than MaxMessageBytes. nameFields are the
// dotted paths that hold object names: bad text there is reported as
// invalid_object_name.
func DecodeJSON(ctx context.Context, data []byte, v any, strict bool, nameFields ...string) error {
	return decodeStrict(ctx, data, v, "", strict, nameFields)
}

// decodeStrict decodes one JSON object from data into v, rejecting unknown
// fields when strict is set, and turns every failure into a *FieldError whose
// Field is prefixed with prefix ("data" for GCS payloads, "" for our own
// formats). names lists the dotted JSON paths that hold object names, so that
// invalid text there is reported as invalid_object_name.
//
// A one-pass scan (scanJSON) runs first: it refuses strings encoding/json
// would silently change (invalid UTF-8, lone surrogate escapes), nesting
// deeper than MaxJSONDepth, and stops when ctx ends. The decode that follows
// is linear and runs on at most MaxMessageBytes of scanned input.
func decodeStrict(ctx context.Context, data []byte, v any, prefix string, strict bool, names []string) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return fieldErr(CodeInvalidJSON, orData(prefix), "empty payload, expected a JSON object")
	}
	if err := scanJSON(ctx, data, prefix, names); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if trimmed[0] != '{' {
		if !json.Valid(trimmed) {
			return fieldErr(CodeInvalidJSON, orData(prefix), "malformed JSON")
		}
		return fieldErr(CodeInvalidField, orData(prefix), "expected a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return jsonErr(prefix, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fieldErr(CodeInvalidJSON, orData(prefix), "trailing data after the JSON object")
	}
	return nil
}

func jsonErr(prefix string, err error) *FieldError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &FieldError{Field: orData(prefix), Reason: fmt.Sprintf("malformed JSON at byte %d: %v", syn.Offset, syn), Code: CodeInvalidJSON, Err: err}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &FieldError{Field: orData(prefix), Reason: "truncated JSON", Code: CodeInvalidJSON, Err: err}
	case errors.As(err, &typ):
		want := "a different type"
		if typ.Type != nil {
			want = jsonKind(typ.Type.Kind().String())
		}
		field := join(prefix, typ.Field)
		if field == "" {
			field = "data"
		}
		return &FieldError{Field: field, Reason: fmt.Sprintf("expected %s, got JSON %s", want, typ.Value), Code: CodeInvalidField, Err: err}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, uerr := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if uerr != nil {
			name = "?"
		}
		return &FieldError{Field: join(prefix, name), Reason: "unknown field", Code: CodeInvalidField, Err: err}
	}
	return &FieldError{Field: orData(prefix), Reason: err.Error(), Code: CodeInvalidJSON, Err: err}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	}
	return "a " + goKind
}

func orData(prefix string) string {
	if prefix == "" {
		return "data"
	}
	return prefix
}

func join(prefix, field string) string {
	switch {
	case field == "":
		return prefix
	case prefix == "":
		return field
	}
	return prefix + "." + field
}
