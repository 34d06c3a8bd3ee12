package pubsubemu

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TopicName returns projects/PROJECT/topics/ID.
func TopicName(project, id string) string { return "projects/" + project + "/topics/" + id }

// SubscriptionName returns projects/PROJECT/subscriptions/ID.
func SubscriptionName(project, id string) string {
	return "projects/" + project + "/subscriptions/" + id
}

// EnsureTopic creates topic id unless it exists.
func EnsureTopic(ctx context.Context, c *pubsub.Client, id string) error {
	_, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: TopicName(c.Project(), id)})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create topic %s: %w", id, err)
	}
	return nil
}

// Subscription describes a subscription to create.
type Subscription struct {
	ID    string
	Topic string // topic ID
	// AckDeadline defaults to 60s.
	AckDeadline time.Duration
	// ExactlyOnce enables exactly-once delivery.
	ExactlyOnce bool
	// DeadLetterTopic, if set, receives messages after MaxDeliveryAttempts
	// (default 5).
	DeadLetterTopic     string
	MaxDeliveryAttempts int32
	// MinBackoff and MaxBackoff set the retry policy when non-zero.
	MinBackoff, MaxBackoff time.Duration
}

// EnsureSubscription creates s unless it exists.
func EnsureSubscription(ctx context.Context, c *pubsub.Client, s Subscription) error {
	if s.AckDeadline == 0 {
		s.AckDeadline = 60 * time.Second
	}
	req := &pubsubpb.Subscription{
		Name:                      SubscriptionName(c.Project(), s.ID),
		Topic:                     TopicName(c.Project(), s.Topic),
		AckDeadlineSeconds:        int32(s.AckDeadline / time.Second),
		EnableExactlyOnceDelivery: s.ExactlyOnce,
	}
	if s.DeadLetterTopic != "" {
		if s.MaxDeliveryAttempts == 0 {
			s.MaxDeliveryAttempts = 5
		}
		req.DeadLetterPolicy = &pubsubpb.DeadLetterPolicy{
			DeadLetterTopic:     TopicName(c.Project(), s.DeadLetterTopic),
			MaxDeliveryAttempts: s.MaxDeliveryAttempts,
		}
	}
	if s.MinBackoff > 0 || s.MaxBackoff > 0 {
		req.RetryPolicy = &pubsubpb.RetryPolicy{
			MinimumBackoff: durationpb.New(s.MinBackoff),
			MaximumBackoff: durationpb.New(s.MaxBackoff),
		}
	}
	_, err := c.SubscriptionAdminClient.CreateSubscription(ctx, req)
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create subscription %s: %w", s.ID, err)
	}
	return nil
}
