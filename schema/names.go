package schema

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/linkissuer/linkissuer/sign"
)

// Pub/Sub limits on attributes. A message with more, or longer, attributes is
// refused by Pub/Sub at publish time, so our outputs stay under them by
// construction.
const (
	MaxAttributes        = 100
	MaxAttributeKeyLen   = 256
	MaxAttributeValueLen = 1024
)

// MaxMessageBytes bounds the data of any message this package parses: Pub/Sub's
// own 10 MB limit. Larger inputs (possible over HTTP push) are refused with
// too_large before any decoding.
const MaxMessageBytes = 10 << 20

// ValidateObjectName checks an object name with sign.ValidateObject (valid
// UTF-8, 1 to 1024 bytes, no CR or LF, not "." or "..") and reports a failure
// as a *FieldError for field with code invalid_object_name.
func ValidateObjectName(field, name string) error {
	if err := sign.ValidateObject(name); err != nil {
		return &FieldError{Field: field, Reason: inputReason(err), Code: CodeInvalidObjectName, Err: err}
	}
	return nil
}

// ValidateObjectNameStrict is ValidateObjectName plus a refusal of every other
// control character (U+0000-U+001F, U+007F-U+009F). GCS stores such names, so
// parsing accepts them; the worker's policy applies this check before signing
// because such names break logs, CSV consumers and terminals.
func ValidateObjectNameStrict(field, name string) error {
	if err := ValidateObjectName(field, name); err != nil {
		return err
	}
	for i, r := range name {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return fieldErr(CodeInvalidObjectName, field, "name contains control character U+%04X at byte %d", r, i)
		}
	}
	return nil
}

// HasDotSegment reports whether a "/"-separated segment of name is "." or
// "..", also when its dots are percent-encoded (%2e, %2E), as a URL path
// normalizer would read it. It is linear in len(name).
func HasDotSegment(name string) bool {
	for len(name) > 0 {
		seg, rest, _ := strings.Cut(name, "/")
		if isDotSegment(seg) {
			return true
		}
		name = rest
	}
	return false
}

func isDotSegment(seg string) bool {
	dots := 0
	for i := 0; i < len(seg); dots++ {
		switch {
		case seg[i] == '.':
			i++
		case len(seg)-i >= 3 && seg[i] == '%' && seg[i+1] == '2' && (seg[i+2] == 'e' || seg[i+2] == 'E'):
			i += 3
		default:
			return false
		}
	}
	return dots == 1 || dots == 2
}

// ValidateBucketName checks a bucket name with sign.ValidateBucket for the
// given dialect and reports a failure as a *FieldError with code
// invalid_bucket_name.
func ValidateBucketName(d sign.Dialect, field, name string) error {
	if err := sign.ValidateBucket(d, name); err != nil {
		return &FieldError{Field: field, Reason: inputReason(err), Code: CodeInvalidBucketName, Err: err}
	}
	return nil
}

func inputReason(err error) string {
	var ie *sign.InputError
	if errors.As(err, &ie) {
		return ie.Reason
	}
	return err.Error()
}

// ValidateAttributes checks a Pub/Sub attribute map against Pub/Sub's limits:
// at most 100 attributes, non-empty keys up to 256 bytes not starting with
// "goog", values up to 1024 bytes, all valid UTF-8.
func ValidateAttributes(attrs map[string]string) error {
	if len(attrs) > MaxAttributes {
		return fieldErr(CodeInvalidField, "attributes", "%d attributes, Pub/Sub allows %d", len(attrs), MaxAttributes)
	}
	for k, v := range attrs {
		switch {
		case k == "" || len(k) > MaxAttributeKeyLen:
			return fieldErr(CodeInvalidField, "attributes", "key %.40q must be 1 to %d bytes", k, MaxAttributeKeyLen)
		case strings.HasPrefix(strings.ToLower(k), "goog"):
			return fieldErr(CodeInvalidField, "attributes."+k, "keys starting with goog are reserved")
		case len(v) > MaxAttributeValueLen:
			return fieldErr(CodeInvalidField, "attributes."+k, "value is %d bytes, Pub/Sub allows %d", len(v), MaxAttributeValueLen)
		case !utf8.ValidString(k) || !utf8.ValidString(v):
			return fieldErr(CodeInvalidField, "attributes."+k, "not valid UTF-8")
		}
	}
	return nil
}

// checkText refuses values that would break a header, a log line or a CSV
// cell: invalid UTF-8, control characters, more than max bytes.
func checkText(field, v string, max int) error {
	if len(v) > max {
		return fieldErr(CodeInvalidField, field, "longer than %d bytes", max)
	}
	if !utf8.ValidString(v) {
		return fieldErr(CodeInvalidField, field, "not valid UTF-8")
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fieldErr(CodeInvalidField, field, "contains control character U+%04X", r)
		}
	}
	return nil
}

func quoteShort(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("%q...", s[:64])
	}
	return fmt.Sprintf("%q", s)
}
