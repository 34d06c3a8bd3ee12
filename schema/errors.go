package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

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
	CodeInvalidBucketName    = failure.CodeInvalidBucketName
	CodeAttributeMismatch    = failure.CodeAttributeMismatch
	CodeInvalidMethod        = failure.CodeInvalidMethod
	CodeExpiryOutOfRange     = failure.CodeExpiryOutOfRange
	CodeTooLarge             = failure.CodeTooLarge
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

// decodeStrict decodes one JSON object from data into v, rejecting unknown
// fields when strict is set, and turns every failure into a *FieldError whose
// Field is prefixed with prefix ("data" for GCS payloads, "" for our own
// formats). nameField says which JSON paths hold object names, so that
// invalid UTF-8 there is reported as invalid_object_name.
func decodeStrict(data []byte, v any, prefix string, strict bool, nameField func(path string) bool) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return fieldErr(CodeInvalidJSON, orData(prefix), "empty payload, expected a JSON object")
	}
	if !utf8.Valid(data) {
		if nameField == nil {
			nameField = func(string) bool { return false }
		}
		path, isName := invalidUTF8Path(data, nameField)
		code := CodeInvalidJSON
		if isName {
			code = CodeInvalidObjectName
		}
		field := join(prefix, path)
		if field == "" {
			field = "data"
		}
		return fieldErr(code, field, "not valid UTF-8")
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

// invalidUTF8Path walks data token by token and returns the dotted JSON path
// (array indices omitted, as encoding/json does) of a string holding invalid
// UTF-8: the first such path for which isName is true if there is one (an
// object name is the likeliest culprit and gets the more useful code),
// otherwise the first such path, or "" if it cannot tell. encoding/json
// silently replaces invalid bytes with U+FFFD, which would turn a non-UTF-8
// object name into a different, valid one; we refuse instead, and say where.
func invalidUTF8Path(data []byte, isName func(string) bool) (path string, name bool) {
	first, found := "", false
	walkUTF8(data, func(p string) bool {
		if isName(p) {
			path, name = p, true
			return false
		}
		if !found {
			first, found = p, true
		}
		return true
	})
	if name {
		return path, true
	}
	return first, false
}

// walkUTF8 calls yield with the path of every string (key or value) holding
// invalid UTF-8, in document order, until yield returns false.
func walkUTF8(data []byte, yield func(string) bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object    bool
		expectKey bool
		key       string
	}
	var stack []frame
	path := func(last string) string {
		var parts []string
		for _, f := range stack {
			if f.object && f.key != "" {
				parts = append(parts, f.key)
			}
		}
		if last != "" {
			parts = append(parts, last)
		}
		return strings.Join(parts, ".")
	}
	prev := int64(0)
	for {
		tok, err := dec.Token()
		if err != nil {
			return
		}
		off := dec.InputOffset()
		raw := data[prev:off]
		prev = off
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if top != nil && top.object {
					top.expectKey = true
				}
				stack = append(stack, frame{object: d == '{', expectKey: d == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if top != nil && top.object && top.expectKey {
			s, _ := tok.(string)
			if !utf8.Valid(raw) && !yield(path(s)) {
				return
			}
			top.key, top.expectKey = s, false
			continue
		}
		if !utf8.Valid(raw) && !yield(path("")) {
			return
		}
		if top != nil && top.object {
			top.expectKey = true
		}
	}
}
