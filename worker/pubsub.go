package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/linkissuer/linkissuer/internal/wait"
)

// TopicPublisher publishes Outputs to Pub/Sub topics named by logical name
// ("results", "errors", ...) and waits for the server's confirmation.
type TopicPublisher struct {
	topics  map[string]*pubsub.Publisher
	metrics *Metrics
	health  HealthObserver
}

// HealthObserver takes each outcome of a component ("publisher",
// "signer", "receive"); *Readiness is one.
type HealthObserver interface {
	Observe(component string, err error)
}

// ReportTo sends every publish outcome to h as component "publisher".
func (p *TopicPublisher) ReportTo(h HealthObserver) { p.health = h }

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
		if p.health != nil {
			p.health.Observe("publisher", err)
		}
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
	// Health, if set, takes each receive outcome as component "receive".
	Health HealthObserver
}

// ReceiveError is a receive failure that retrying cannot fix: the
// subscription is missing or was deleted, the account may not pull, the
// request is malformed. Pull returns it; the process should exit.
type ReceiveError struct {
	Subscription string
	Err          error
}

func (e *ReceiveError) Error() string {
	return fmt.Sprintf("receive from %s: %v", e.Subscription, e.Err)
}

func (e *ReceiveError) Unwrap() error { return e.Err }

// fatalReceive reports receive errors that retrying cannot fix.
func fatalReceive(err error) bool {
	switch status.Code(err) {
	case codes.NotFound, codes.PermissionDenied, codes.Unauthenticated, codes.InvalidArgument, codes.FailedPrecondition, codes.Unimplemented:
		return true
	}
	return false
}

// Receive retry backoff: transient failures (Unavailable, connection
// resets, ...) are retried after min doubling up to max; a receive that ran
// longer than max resets it.
const (
	receiveBackoffMin = 500 * time.Millisecond
	receiveBackoffMax = 30 * time.Second
)

// Pull receives from sub and hands each message to the router until ctx
// ends. Then it stops pulling, lets in-flight messages finish for up to
// o.Grace (they are nacked if cut short), and returns nil.
//
// A receive failure that retrying cannot fix (NotFound, PermissionDenied,
// ...: see ReceiveError) ends Pull at once with a *ReceiveError. Other
// failures (Unavailable, connection resets) are logged and retried with a
// bounded backoff for as long as ctx lives.
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
	handle := func(rctx context.Context, pm *pubsub.Message) {
		if o.Health != nil {
			o.Health.Observe("receive", nil) // a message is news that receiving works
		}
		hctx, cancel := work, context.CancelFunc(func() {})
		if o.HandlerTimeout > 0 {
			hctx, cancel = context.WithTimeout(work, o.HandlerTimeout)
		}
		defer cancel()
		// The handler runs under work, not the receive context; it keeps
		// only the receive span (with tracing on), so that signing and
		// publishing join the message's trace.
		hctx = trace.ContextWithSpan(hctx, trace.SpanFromContext(rctx))
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
	}
	backoff := receiveBackoffMin
	for {
		started := time.Now()
		err := sub.Receive(ctx, handle)
		if ctx.Err() != nil || err == nil || errors.Is(err, context.Canceled) {
			return nil
		}
		if o.Health != nil {
			o.Health.Observe("receive", err)
		}
		if fatalReceive(err) {
			return &ReceiveError{Subscription: sub.String(), Err: err}
		}
		if time.Since(started) > receiveBackoffMax {
			backoff = receiveBackoffMin
		}
		log.Warn("receive failed; retrying", zap.String("subscription", sub.String()), zap.Duration("backoff", backoff), zap.Error(err))
		if wait.Sleep(ctx, backoff) != nil {
			return nil // stopped: SIGTERM during the backoff
		}
		backoff = min(2*backoff, receiveBackoffMax)
	}
}
