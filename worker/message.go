package worker

import (
	"context"
	"time"
)

// Message is one received delivery, independent of the transport.
type Message struct {
	ID         string
	Data       []byte
	Attributes map[string]string
	// DeliveryAttempt counts deliveries when the subscription has a
	// dead-letter policy; 0 when unknown.
	DeliveryAttempt int
	PublishTime     time.Time
	// Subscription names where the message came from, for logs.
	Subscription string
}

// Output is a message a handler wants published before its input is acked.
type Output struct {
	// Topic is a logical name resolved by the Publisher ("results",
	// "errors", "jobs") or a full topic name.
	Topic       string
	Data        []byte
	Attributes  map[string]string
	OrderingKey string
}

// Handler processes one message and returns what to publish. It must not
// ack, nack or publish by itself.
type Handler func(ctx context.Context, m *Message) ([]Output, error)

// Publisher publishes outputs and returns once Pub/Sub has confirmed every
// one of them, or with the first error.
type Publisher interface {
	Publish(ctx context.Context, outs ...Output) error
}
