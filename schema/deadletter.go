package schema

import (
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
	// OriginalAttributes are copied as received.
	OriginalAttributes map[string]string `json:"original_attributes"`
	// OriginalData is the original payload (base64 in JSON), cut at
	// MaxDeadLetterPayload bytes.
	OriginalData []byte `json:"original_data"`
	// OriginalSize is the length of the original payload in bytes.
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
		OriginalAttributes: maps.Clone(msg.Attributes),
		OriginalData:       msg.Data,
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
		d.Reason = truncateUTF8(err.Error(), MaxReasonLen)
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
