package worker

// This file turns HTTP requests (Pub/Sub push envelopes, unwrapped push
// deliveries, CloudEvents) into Messages. It is pure: no I/O, no router.

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/linkissuer/linkissuer/schema"
)

// envelopeError is a body that is not a push envelope or a CloudEvent.
type envelopeError struct {
	status int
	reason string
}

func (e *envelopeError) Error() string { return e.reason }

func badEnvelope(format string, args ...any) error {
	return &envelopeError{status: http.StatusBadRequest, reason: fmt.Sprintf(format, args...)}
}

// pushEnvelope is the body of a wrapped Pub/Sub push request. Pub/Sub
// writes messageId and publishTime in both camel and snake case.
type pushEnvelope struct {
	Message *struct {
		Data             []byte            `json:"data"` // standard base64
		Attributes       map[string]string `json:"attributes"`
		MessageID        string            `json:"messageId"`
		MessageIDSnake   string            `json:"message_id"`
		PublishTime      string            `json:"publishTime"`
		PublishTimeSnake string            `json:"publish_time"`
	} `json:"message"`
	Subscription    string `json:"subscription"`
	DeliveryAttempt int    `json:"deliveryAttempt"`
}

// Pub/Sub metadata headers of an unwrapped push (payload unwrapping with
// write_metadata); the attributes arrive as headers of their own names.
const (
	hdrPushMessageID    = "X-Goog-Pubsub-Message-Id"
	hdrPushPublishTime  = "X-Goog-Pubsub-Publish-Time"
	hdrPushSubscription = "X-Goog-Pubsub-Subscription-Name"
)

// pushMessage converts a Pub/Sub push request into a Message. A request
// with an X-Goog-Pubsub-Message-Id header is an unwrapped delivery: the body
// is the data. Anything else must be the JSON envelope. Unwrapping without
// write_metadata is not supported: it drops the attributes every format we
// consume routes on.
func pushMessage(h http.Header, body []byte) (*Message, error) {
	if id := h.Get(hdrPushMessageID); id != "" {
		return unwrappedMessage(id, h, body)
	}
	var env pushEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, badEnvelope("not a Pub/Sub push envelope (unwrapped subscriptions need write_metadata): %v", err)
	}
	pm := env.Message
	if pm == nil {
		return nil, badEnvelope("not a Pub/Sub push envelope: no message")
	}
	m := &Message{
		ID:              cmp.Or(pm.MessageID, pm.MessageIDSnake),
		Data:            pm.Data,
		Attributes:      pm.Attributes,
		DeliveryAttempt: env.DeliveryAttempt,
		Subscription:    env.Subscription,
	}
	if m.ID == "" {
		return nil, badEnvelope("push envelope: message has no messageId")
	}
	var err error
	if m.PublishTime, err = parseOptionalTime(cmp.Or(pm.PublishTime, pm.PublishTimeSnake)); err != nil {
		return nil, badEnvelope("push envelope: publishTime: %v", err)
	}
	return m, nil
}

func unwrappedMessage(id string, h http.Header, body []byte) (*Message, error) {
	m := &Message{ID: id, Data: body, Attributes: map[string]string{}, Subscription: h.Get(hdrPushSubscription)}
	var err error
	if m.PublishTime, err = parseOptionalTime(h.Get(hdrPushPublishTime)); err != nil {
		return nil, badEnvelope("%s: %v", hdrPushPublishTime, err)
	}
	for k, vs := range h {
		k = strings.ToLower(k)
		if len(vs) == 0 || transportHeader(k) {
			continue
		}
		if name, ok := camelAttrs[k]; ok {
			k = name
		}
		m.Attributes[k] = vs[0]
	}
	return m, nil
}

// camelAttrs restores the case of attribute names that HTTP loses: GCS
// notification attributes are camel case, and schema matches them exactly.
var camelAttrs = func() map[string]string {
	m := map[string]string{}
	for _, a := range []string{
		schema.AttrEventType, schema.AttrPayloadFormat, schema.AttrBucketID, schema.AttrObjectID,
		schema.AttrObjectGeneration, schema.AttrEventTime, schema.AttrNotificationConfig,
		schema.AttrOverwroteGeneration, schema.AttrOverwrittenByGeneration,
	} {
		m[strings.ToLower(a)] = a
	}
	return m
}()

// transportHeader reports whether a lower-case header name belongs to HTTP,
// Google's front end or Pub/Sub's metadata rather than to the message.
func transportHeader(k string) bool {
	switch k {
	case "authorization", "accept", "accept-encoding", "accept-charset", "connection", "content-length",
		"content-type", "cookie", "expect", "forwarded", "from", "host", "keep-alive", "proxy-authorization",
		"te", "trailer", "transfer-encoding", "upgrade", "user-agent", "via", "traceparent", "tracestate":
		return true
	}
	for _, p := range []string{"x-goog-", "x-google-", "x-forwarded-", "x-cloud-", "x-appengine-", "x-serverless-", "x-envoy-"} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// eventMessage converts a CloudEvent over HTTP into a Message whose
// attributes are the context attributes named with the ce- prefix (as the
// CloudEvents Pub/Sub binding names them; see
// schema.ParseCloudEventAttributes) and whose data is the event data.
// Structured mode (Content-Type application/cloudevents+json) and binary
// mode (ce-* headers) are accepted; a body that is neither (no specversion
// or id) is a bad envelope. Everything else is left to the schema.
func eventMessage(h http.Header, body []byte) (*Message, error) {
	mt, _, _ := strings.Cut(h.Get("Content-Type"), ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	var m *Message
	switch {
	case mt == "application/cloudevents-batch+json":
		return nil, &envelopeError{status: http.StatusUnsupportedMediaType, reason: "batched CloudEvents are not supported"}
	case mt == schema.CloudEventsContentType:
		var err error
		if m, err = structuredEvent(body); err != nil {
			return nil, err
		}
	default:
		m = &Message{Data: body, Attributes: map[string]string{}}
		for k, vs := range h {
			k = strings.ToLower(k)
			if strings.HasPrefix(k, "ce-") && len(vs) > 0 {
				// The HTTP binding percent-encodes what a header cannot
				// carry (non-ASCII, '%', '"', space).
				v, err := url.PathUnescape(vs[0])
				if err != nil {
					v = vs[0]
				}
				m.Attributes[k] = v
			}
		}
	}
	if m.Attributes["ce-specversion"] == "" || m.Attributes["ce-id"] == "" {
		return nil, badEnvelope("not a CloudEvent: specversion and id are required")
	}
	m.ID = m.Attributes["ce-id"]
	m.Subscription = m.Attributes["ce-source"]
	m.PublishTime, _ = time.Parse(time.RFC3339Nano, m.Attributes["ce-time"]) // best effort; the schema validates ce-time
	return m, nil
}

// structuredEvent reads a structured-mode CloudEvent. String attributes
// are copied as they are, others (integer or boolean extensions) as JSON.
func structuredEvent(body []byte) (*Message, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, badEnvelope("not a structured CloudEvent: %v", err)
	}
	m := &Message{Attributes: map[string]string{}}
	for k, raw := range fields {
		if k == "data" || k == "data_base64" {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			s = string(raw)
		}
		m.Attributes["ce-"+strings.ToLower(k)] = s
	}
	data, hasData := fields["data"]
	b64, hasB64 := fields["data_base64"]
	switch {
	case hasData && hasB64:
		return nil, badEnvelope("structured CloudEvent has both data and data_base64")
	case hasB64:
		if err := json.Unmarshal(b64, &m.Data); err != nil {
			return nil, badEnvelope("structured CloudEvent data_base64: %v", err)
		}
	case hasData:
		m.Data = data
		var s string
		if ct := m.Attributes["ce-datacontenttype"]; ct != "" && !strings.Contains(ct, "json") && json.Unmarshal(data, &s) == nil {
			m.Data = []byte(s) // text data travels as a JSON string
		}
	}
	return m, nil
}

func parseOptionalTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}
