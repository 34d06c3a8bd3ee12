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

	"github.com/linkissuer/linkissuer/failure"
)

// ErrInvalid is the sentinel every validation error matches with errors.Is:
// the message can never be processed as sent, so the worker dead-letters it
// (with the *FieldError's Code as reason_code) and acks it. On its own it is
// a permanent failure with code invalid_field.
var ErrInvalid error = failure.Permanent(failure.CodeInvalidField, errors.New("invalid message"))

// ReasonCode is a stable, machine-readable reason for refusing or ignoring a
// message: a failure.Code, where every code is defined.
type ReasonCode = failure.Code

// Reason codes, as schema's parsers name them. The values live in package
// failure (see failure.Code for their meaning); these names keep the
// parsers short.
const (
	CodeInvalidJSON          = failure.CodeInvalidJSON
	CodeInvalidField         = failure.CodeInvalidField
	CodeMissingAttribute     = failure.CodeMissingAttribute
	CodeMissingField         = failure.CodeMissingField
	CodeUnknownSchema        = failure.CodeUnknownSchema
	CodeUnknownEventType     = failure.CodeUnknownEventType
	CodeUnknownPayloadFormat = failure.CodeUnknownPayloadFormat
	CodeInvalidObjectName    = failure.CodeInvalidObjectName
	CodeDotSegment           = failure.CodeDotSegment
	CodeInvalidBucketName    = failure.CodeInvalidBucketName
	CodeAttributeMismatch    = failure.CodeAttributeMismatch
	CodeInvalidMethod        = failure.CodeInvalidMethod
	CodeExpiryOutOfRange     = failure.CodeExpiryOutOfRange
	CodeTooLarge             = failure.CodeTooLarge
	CodeMetadataTooLarge     = failure.CodeMetadataTooLarge
	CodePolicyRefused        = failure.CodePolicyRefused
	CodeSignRefused          = failure.CodeSignRefused
	CodeInternal             = failure.CodeInternal
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

// Failure implements failure.Classifier: a permanent failure with Code.
func (e *FieldError) Failure() failure.Class {
	return failure.Class{Kind: failure.KindPermanent, Code: e.Code}
}

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
