package schema

import (
	"bytes"
	"errors"
	"maps"
	"time"
	"unicode/utf8"
)

// DeadLetterV1 is the schema attribute value of an error-topic message.
const DeadLetterV1 = "linkissuer.deadletter.v1"

// Limits on a dead letter, so that it always fits in a Pub/Sub message even
// when the original nearly filled one: the payload, base64-encoded, grows by
// a third.
const (
	// MaxDeadLetterPayload is how much of the original data is kept; the rest
	// is cut and OriginalTruncated set.
	MaxDeadLetterPayload = 6 << 20
	// MaxReasonLen bounds the human-readable reason, in bytes.
	MaxReasonLen = 4096
)

// DeadLetter is a linkissuer.deadletter.v1 message: a message the worker
// could not and will never process, with enough to replay or diagnose it.
// The worker publishes it, then acks the original.
type DeadLetter struct {
	OriginalMessageID string `json:"original_message_id"`
	// OriginalAttributes are copied as received, signatures redacted.
	OriginalAttributes map[string]string `json:"original_attributes"`
	// OriginalData is the original payload (base64 in JSON), with every
	// URL signature redacted (RedactSignatures), cut at MaxDeadLetterPayload
	// bytes.
	OriginalData []byte `json:"original_data"`
	// OriginalSize is the length of the original payload in bytes, as
	// received.
	OriginalSize      int  `json:"original_size"`
	OriginalTruncated bool `json:"original_truncated,omitempty"`
	// Reason is human-readable text; ReasonCode is the stable code; Field,
	// when known, names the offending field.
	Reason     string     `json:"reason"`
	ReasonCode ReasonCode `json:"reason_code"`
	Field      string     `json:"field,omitempty"`
	// Subscription the original was received on, when known.
	Subscription string    `json:"subscription,omitempty"`
	FailedAt     time.Time `json:"failed_at"`
	WorkerID     string    `json:"worker_id"`
}

// Original is the message being dead-lettered, as received.
type Original struct {
	MessageID    string
	Attributes   map[string]string
	Data         []byte
	Subscription string
}

// NewDeadLetter builds the dead letter for msg refused with err. The reason
// code comes from err (CodeOf) unless code is non-empty, which lets the worker
// set codes this package does not produce (policy_refused, sign_refused); if
// neither gives one, it is internal. The reason is err's text, cut to
// MaxReasonLen bytes.
func NewDeadLetter(msg Original, err error, code ReasonCode, workerID string, now time.Time) *DeadLetter {
	d := &DeadLetter{
		OriginalMessageID:  msg.MessageID,
		OriginalAttributes: redactAttributes(maps.Clone(msg.Attributes)),
		OriginalData:       RedactSignatures(msg.Data),
		OriginalSize:       len(msg.Data),
		Subscription:       msg.Subscription,
		ReasonCode:         code,
		FailedAt:           now.UTC(),
		WorkerID:           workerID,
	}
	if d.OriginalAttributes == nil {
		d.OriginalAttributes = map[string]string{}
	}
	if d.OriginalData == nil {
		d.OriginalData = []byte{} // "" in JSON, not null
	}
	if len(d.OriginalData) > MaxDeadLetterPayload {
		d.OriginalData, d.OriginalTruncated = d.OriginalData[:MaxDeadLetterPayload], true
	}
	if d.ReasonCode == "" {
		d.ReasonCode = CodeOf(err)
	}
	if d.ReasonCode == "" {
		d.ReasonCode = CodeInternal
	}
	if fe := asFieldError(err); fe != nil {
		d.Field = fe.Field
	}
	if err != nil {
		d.Reason = truncateUTF8(string(RedactSignatures([]byte(err.Error()))), MaxReasonLen)
	} else {
		d.Reason = string(d.ReasonCode)
	}
	return d
}

// Validate checks d without modifying it.
func (d *DeadLetter) Validate() error {
	switch {
	case d.OriginalMessageID == "":
		return fieldErr(CodeMissingField, "original_message_id", "missing")
	case d.OriginalAttributes == nil:
		return fieldErr(CodeMissingField, "original_attributes", "missing (use {} for none)")
	case d.Reason == "":
		return fieldErr(CodeMissingField, "reason", "missing")
	case len(d.Reason) > MaxReasonLen:
		return fieldErr(CodeInvalidField, "reason", "longer than %d bytes", MaxReasonLen)
	case d.ReasonCode == "":
		return fieldErr(CodeMissingField, "reason_code", "missing")
	case len(d.OriginalData) > MaxDeadLetterPayload:
		return fieldErr(CodeInvalidField, "original_data", "longer than %d bytes", MaxDeadLetterPayload)
	case d.OriginalSize < len(d.OriginalData):
		return fieldErr(CodeInvalidField, "original_size", "smaller than original_data")
	case d.FailedAt.IsZero():
		return fieldErr(CodeMissingField, "failed_at", "missing")
	case d.WorkerID == "":
		return fieldErr(CodeMissingField, "worker_id", "missing")
	}
	return checkText("reason_code", string(d.ReasonCode), 64)
}

// Data is d's message data, compact JSON (original_data in base64).
func (d *DeadLetter) Data() ([]byte, error) { return marshal(d) }

// Attributes are d's Pub/Sub attributes: schema, reason_code and
// original_message_id.
func (d *DeadLetter) Attributes() map[string]string {
	return map[string]string{
		AttrSchema:            DeadLetterV1,
		AttrReasonCode:        string(d.ReasonCode),
		AttrOriginalMessageID: d.OriginalMessageID,
	}
}

func asFieldError(err error) *FieldError {
	var fe *FieldError
	if err != nil && errors.As(err, &fe) {
		return fe
	}
	return nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// signatureParams are the query parameters (and POST policy form fields)
// that carry a V4 signature, in lower case.
var signatureParams = []string{"x-goog-signature", "x-amz-signature"}

// Redacted replaces a signature in a dead letter.
const Redacted = "REDACTED"

// RedactSignatures returns b with the value of every X-Goog-Signature and
// X-Amz-Signature it holds, in any letter case, replaced by REDACTED:
// query parameters (name=value, also name%3Dvalue and name\u003dvalue) and
// JSON fields ("name": "value"). A signed URL is a bearer credential, and a
// dead letter is read by people and tools that must not be able to use it.
// Values shorter than REDACTED (V4 signatures are 64 hex digits or more)
// are left, so the result is never longer than b. It returns b itself when
// there is nothing to redact; it is linear in len(b).
func RedactSignatures(b []byte) []byte {
	var out []byte
	last := 0
	for i := 0; i < len(b); i++ {
		if b[i] != 'x' && b[i] != 'X' {
			continue
		}
		n := signatureNameAt(b, i)
		if n == 0 {
			continue
		}
		start := valueStart(b, i+n)
		if start < 0 {
			continue
		}
		end := start
		for end < len(b) && isSignatureByte(b[end]) {
			end++
		}
		if end-start < len(Redacted) {
			continue // too short to be a signature; keeps the output no longer than b
		}
		out = append(append(out, b[last:start]...), Redacted...)
		last, i = end, end-1
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

// signatureNameAt returns the length of the signature parameter name at
// b[i:], or 0.
func signatureNameAt(b []byte, i int) int {
	for _, name := range signatureParams {
		if len(b)-i >= len(name) && bytes.EqualFold(b[i:i+len(name)], []byte(name)) {
			return len(name)
		}
	}
	return 0
}

// valueStart returns where the value after a signature name at b[j:]
// begins, or -1 when no separator follows.
func valueStart(b []byte, j int) int {
	rest := b[j:]
	for _, sep := range []string{"=", "%3d", `\u003d`} {
		if len(rest) >= len(sep) && bytes.EqualFold(rest[:len(sep)], []byte(sep)) {
			return j + len(sep)
		}
	}
	// A JSON field: "name" : "value".
	k := j
	if k < len(b) && b[k] == '"' {
		k++
		for k < len(b) && (b[k] == ' ' || b[k] == '\t' || b[k] == '\n' || b[k] == '\r') {
			k++
		}
		if k < len(b) && b[k] == ':' {
			k++
			for k < len(b) && (b[k] == ' ' || b[k] == '\t' || b[k] == '\n' || b[k] == '\r') {
				k++
			}
			if k < len(b) && b[k] == '"' {
				return k + 1
			}
		}
	}
	return -1
}

// isSignatureByte reports whether c can be part of a signature: hex for V4,
// and the base64 alphabet for anything older.
func isSignatureByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '_' || c == '-'
}

// redactAttributes returns attrs with signatures redacted from the values.
func redactAttributes(attrs map[string]string) map[string]string {
	for k, v := range attrs {
		if r := RedactSignatures([]byte(v)); len(r) != len(v) || string(r) != v {
			attrs[k] = string(r)
		}
	}
	return attrs
}
