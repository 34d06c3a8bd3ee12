package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"go.uber.org/zap"
)

// TopicPublisher publishes Outputs to Pub/Sub topics named by logical name
// ("results", "errors", ...) and waits for the server's confirmation.
type TopicPublisher struct {
	topics  map[string]*pubsub.Publisher
	metrics *Metrics
}

// NewTopicPublisher maps logical names to topic IDs or full names. Settings
// apply to every topic; a zero value keeps the library defaults.
func NewTopicPublisher(client *pubsub.Client, topics map[string]string, settings pubsub.PublishSettings, m *Metrics) *TopicPublisher {
	p := &TopicPublisher{topics: map[string]*pubsub.Publisher{}, metrics: m}
	for logical, name := range topics {
		if name == "" {
			continue
		}
		pub := client.Publisher(name)
		pub.PublishSettings = settings
		p.topics[logical] = pub
	}
	return p
}

// Publish implements Publisher: it queues every output, then waits for each
// confirmation. It fails if any output fails.
func (p *TopicPublisher) Publish(ctx context.Context, outs ...Output) error {
	results := make([]*pubsub.PublishResult, len(outs))
	for i, o := range outs {
		pub, ok := p.topics[o.Topic]
		if !ok {
			return fmt.Errorf("worker: no topic configured for %q", o.Topic)
		}
		results[i] = pub.Publish(ctx, &pubsub.Message{Data: o.Data, Attributes: o.Attributes, OrderingKey: o.OrderingKey})
	}
	var errs []error
	for i, r := range results {
		_, err := r.Get(ctx)
		p.metrics.Published(outs[i].Topic, err)
		if err != nil {
			errs = append(errs, fmt.Errorf("publish to %s: %w", outs[i].Topic, err))
		}
	}
	return errors.Join(errs...)
}

// Stop flushes and stops every topic publisher.
func (p *TopicPublisher) Stop() {
	for _, pub := range p.topics {
		pub.Stop()
	}
}

// PullOptions tune a pull subscription's receive loop.
type PullOptions struct {
	// MaxOutstanding bounds messages held at once (flow control).
	MaxOutstanding int
	// MaxOutstandingBytes bounds their total size.
	MaxOutstandingBytes int
	// Streams is the number of StreamingPull streams.
	Streams int
	// MaxExtension bounds automatic ack-deadline extension per message.
	MaxExtension time.Duration
	// LeaseStep is the most one lease extension adds (10s..600s; default
	// 20s). It bounds how long a message held by a replica that died, or
	// that shut down before handing it to a handler, waits before Pub/Sub
	// redelivers it. The library's default for exactly-once subscriptions
	// is 60s per step.
	LeaseStep time.Duration
	// HandlerTimeout bounds one message's processing (0: no bound).
	HandlerTimeout time.Duration
	// Grace is how long in-flight messages may finish after shutdown starts.
	Grace time.Duration
}

// Pull receives from sub and hands each message to the router until ctx
// ends. Then it stops pulling, lets in-flight messages finish for up to
// o.Grace (they are nacked if cut short), and returns.
func Pull(ctx context.Context, sub *pubsub.Subscriber, r *Router, o PullOptions, log *zap.Logger) error {
	if log == nil {
		log = zap.NewNop()
	}
	sub.ReceiveSettings.MaxOutstandingMessages = o.MaxOutstanding
	sub.ReceiveSettings.MaxOutstandingBytes = o.MaxOutstandingBytes
	sub.ReceiveSettings.NumGoroutines = o.Streams
	sub.ReceiveSettings.MaxExtension = o.MaxExtension
	step := o.LeaseStep
	if step == 0 {
		step = 20 * time.Second
	}
	sub.ReceiveSettings.MinDurationPerAckExtension = 10 * time.Second
	sub.ReceiveSettings.MaxDurationPerAckExtension = step
	// Graceful shutdown without the library's own timer: Receive waits for
	// every callback and then stops its iterators synchronously, which flushes
	// the last acks and nacks before it returns. (With a timed shutdown the
	// library stops its iterators on a goroutine nobody waits for, so closing
	// the client right after Receive returns can drop those final nacks, and
	// the messages wait out their lease instead of coming straight back.) The
	// grace period is enforced below, through the handlers' context.
	sub.ReceiveSettings.ShutdownOptions = &pubsub.ShutdownOptions{
		Behavior: pubsub.ShutdownBehaviorWaitForProcessing,
		Timeout:  -1,
	}

	// Handlers run under work, which outlives ctx so that a SIGTERM lets
	// in-flight messages finish instead of failing them. It ends at three
	// quarters of the grace period: what is still running then fails and
	// is nacked, so the next replica gets it at once. confirm bounds the
	// wait for Pub/Sub to confirm those acks and nacks: the whole grace
	// period after ctx ends.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	confirm, cancelConfirm := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelConfirm()
	stopper := context.AfterFunc(ctx, func() {
		time.AfterFunc(o.Grace*3/4, cancelWork)
		time.AfterFunc(o.Grace, cancelConfirm)
	})
	defer stopper()

	var acks sync.WaitGroup
	defer acks.Wait() // bounded: confirm ends Grace after ctx
	err := sub.Receive(ctx, func(_ context.Context, pm *pubsub.Message) {
		hctx, cancel := work, context.CancelFunc(func() {})
		if o.HandlerTimeout > 0 {
			hctx, cancel = context.WithTimeout(work, o.HandlerTimeout)
		}
		defer cancel()
		m := &Message{
			ID:           pm.ID,
			Data:         pm.Data,
			Attributes:   pm.Attributes,
			PublishTime:  pm.PublishTime,
			Subscription: sub.String(),
		}
		if pm.DeliveryAttempt != nil {
			m.DeliveryAttempt = *pm.DeliveryAttempt
		}
		d := r.Process(hctx, m)
		var res *pubsub.AckResult
		if d.Ack {
			res = pm.AckWithResult()
		} else {
			res = pm.NackWithResult()
		}
		// With exactly-once delivery the result says whether the ack stuck;
		// a failed ack means a redelivery, which dedupe_key absorbs. Waiting
		// here would hold the callback, so the wait is logged on the side.
		acks.Add(1)
		go func() {
			defer acks.Done()
			if status, err := res.Get(confirm); err != nil || status != pubsub.AcknowledgeStatusSuccess {
				log.Warn("ack or nack not confirmed; the message may be redelivered",
					zap.String("message_id", m.ID), zap.Bool("ack", d.Ack), zap.Int("status", int(status)), zap.Error(err))
			}
		}()
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("receive from %s: %w", sub.String(), err)
	}
	return nil
}
