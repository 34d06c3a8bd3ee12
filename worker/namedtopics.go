package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// MaxNamedTopics bounds the topic publishers a NamedTopics keeps; the least
// recently used idle one is stopped to make room.
const MaxNamedTopics = 64

// NamedTopics is a Publisher for Outputs addressed by full topic
// name (projects/PROJECT/topics/TOPIC), as jobs address their notify_topic
// and output topic; Outputs with a logical name ("results", "errors",
// "jobs") go to Next, normally a *TopicPublisher. Publish returns
// once Pub/Sub has confirmed every Output, or with the first error.
type NamedTopics struct {
	client   *pubsub.Client
	next     Publisher
	settings pubsub.PublishSettings

	mu     sync.Mutex
	topics map[string]*namedTopic
	tick   uint64
}

type namedTopic struct {
	pub  *pubsub.Publisher
	refs int
	used uint64
}

// NewNamedTopics publishes full-name Outputs with client and passes the
// rest to next. settings apply to every topic (zero: library defaults).
func NewNamedTopics(client *pubsub.Client, next Publisher, settings pubsub.PublishSettings) *NamedTopics {
	return &NamedTopics{client: client, next: next, settings: settings, topics: map[string]*namedTopic{}}
}

// IsTopicName reports whether topic is a full topic name rather than a
// logical one.
func IsTopicName(topic string) bool { return strings.HasPrefix(topic, "projects/") }

// Publish implements Publisher.
func (p *NamedTopics) Publish(ctx context.Context, outs ...Output) error {
	var (
		rest    []Output
		results []*pubsub.PublishResult
		held    []*namedTopic
		names   []string
	)
	defer func() {
		p.mu.Lock()
		for _, t := range held {
			t.refs--
		}
		p.mu.Unlock()
	}()
	for _, o := range outs {
		if !IsTopicName(o.Topic) {
			rest = append(rest, o)
			continue
		}
		t := p.acquire(o.Topic)
		held = append(held, t)
		names = append(names, o.Topic)
		results = append(results, t.pub.Publish(ctx, &pubsub.Message{Data: o.Data, Attributes: o.Attributes, OrderingKey: o.OrderingKey}))
	}
	var errs []error
	if len(rest) > 0 {
		if p.next == nil {
			errs = append(errs, fmt.Errorf("worker: no publisher for logical topic %q", rest[0].Topic))
		} else if err := p.next.Publish(ctx, rest...); err != nil {
			errs = append(errs, err)
		}
	}
	for i, r := range results {
		if _, err := r.Get(ctx); err != nil {
			errs = append(errs, fmt.Errorf("publish to %s: %w", names[i], err))
		}
	}
	return errors.Join(errs...)
}

// acquire returns the publisher for topic, referenced until Publish ends.
func (p *NamedTopics) acquire(topic string) *namedTopic {
	p.mu.Lock()
	p.tick++
	t, ok := p.topics[topic]
	if !ok {
		pub := p.client.Publisher(topic)
		pub.PublishSettings = p.settings
		t = &namedTopic{pub: pub}
		p.topics[topic] = t
	}
	t.refs++
	t.used = p.tick
	victim := p.evictLocked()
	p.mu.Unlock()
	if victim != nil {
		victim.Stop() // flushes; nobody else holds it
	}
	return t
}

// evictLocked removes the least recently used idle publisher when there
// are too many, and returns it to be stopped.
func (p *NamedTopics) evictLocked() *pubsub.Publisher {
	if len(p.topics) <= MaxNamedTopics {
		return nil
	}
	var (
		oldest string
		lru    *namedTopic
	)
	for name, t := range p.topics {
		if t.refs == 0 && (lru == nil || t.used < lru.used) {
			oldest, lru = name, t
		}
	}
	if lru == nil {
		return nil // all busy: over the bound until they are released
	}
	delete(p.topics, oldest)
	return lru.pub
}

// Stop flushes and stops every topic publisher it started (not Next).
func (p *NamedTopics) Stop() {
	p.mu.Lock()
	topics := p.topics
	p.topics = map[string]*namedTopic{}
	p.mu.Unlock()
	for _, t := range topics {
		t.pub.Stop()
	}
}

// TopicExists reports whether topic exists, with topics.get (it is a
// jobs.TopicChecker). A worker that may
// publish to a topic but not read it (roles/pubsub.publisher alone) gets
// PermissionDenied: that answers nothing, and is reported as existing.
func (p *NamedTopics) TopicExists(ctx context.Context, topic string) (bool, error) {
	_, err := p.client.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: topic})
	switch status.Code(err) {
	case codes.OK, codes.PermissionDenied:
		return true, nil
	case codes.NotFound:
		return false, nil
	}
	return false, fmt.Errorf("look up topic %s: %w", topic, err)
}
