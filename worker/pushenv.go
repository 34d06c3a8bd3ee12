package worker

// This file turns HTTP requests (Pub/Sub push envelopes, unwrapped push
// deliveries, CloudEvents) into Messages. It is pure: no I/O, no router.

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
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
//
// The envelope is decoded with schema.DecodeJSON: linear, depth-bounded,
// refusing text encoding/json would change, and stopping when ctx ends.
func pushMessage(ctx context.Context, h http.Header, body []byte) (*Message, error) {
	if id := h.Get(hdrPushMessageID); id != "" {
		return unwrappedMessage(id, h, body)
	}
	var env pushEnvelope
	if err := schema.DecodeJSON(ctx, body, &env, false); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
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

// eventMessage converts a CloudEvent over HTTP into a Message with
// schema.CloudEventHTTP, the one reader of the HTTP binding: its attributes
// are the context attributes named with the ce- prefix (as the CloudEvents
// Pub/Sub binding names them) and its data is the event data, so the router
// parses it like a CloudEvent from Pub/Sub. A body that is not a CloudEvent
// is a bad envelope (400); batches are not supported (415); a body over
// Pub/Sub's message limit is refused with 413.
func eventMessage(ctx context.Context, h http.Header, body []byte) (*Message, error) {
	mt, _, _ := strings.Cut(h.Get("Content-Type"), ";")
	if strings.EqualFold(strings.TrimSpace(mt), "application/cloudevents-batch+json") {
		return nil, &envelopeError{status: http.StatusUnsupportedMediaType, reason: "batched CloudEvents are not supported"}
	}
	attrs, data, err := schema.CloudEventHTTP(ctx, h, body)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, err
	case schema.CodeOf(err) == schema.CodeTooLarge:
		return nil, &envelopeError{status: http.StatusRequestEntityTooLarge, reason: err.Error()}
	case err != nil:
		return nil, badEnvelope("not a CloudEvent: %v", err)
	}
	m := &Message{ID: attrs["ce-id"], Data: data, Attributes: attrs, Subscription: attrs["ce-source"]}
	m.PublishTime, _ = time.Parse(time.RFC3339Nano, attrs["ce-time"]) // best effort; the schema validates ce-time
	return m, nil
}

func parseOptionalTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}
