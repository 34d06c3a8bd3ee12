package worker

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/failure"
)

// DeadLetterFunc builds the error-topic message for a permanently failed
// delivery: the original payload and attributes, the reason code and the
// error.
type DeadLetterFunc func(m *Message, code failure.Code, err error) (Output, error)

// Router runs the handler on each delivery, publishes its outputs, and is
// the single place that decides ack or nack.
type Router struct {
	handler    Handler
	pub        Publisher
	deadLetter DeadLetterFunc
	log        *zap.Logger
	metrics    *Metrics
	now        func() time.Time
	// publishTimeout bounds a publish once the delivery's context has
	// ended; publishWait bounds it while the context lives.
	publishTimeout, publishWait time.Duration
}

// RouterOptions configure a Router.
type RouterOptions struct {
	// DeadLetter builds error-topic messages; required.
	DeadLetter DeadLetterFunc
	// Logger receives one line per non-issued outcome; nil means no logs.
	Logger *zap.Logger
	// Metrics, if set, counts outcomes and latency.
	Metrics *Metrics
	// Now is the clock for latency measurements; nil means time.Now.
	Now func() time.Time
	// PublishTimeout bounds how long publishing a finished handler's
	// outputs continues after the delivery's context has ended (default
	// DefaultPublishTimeout). The publish outlives the cancellation of the
	// delivery's context: a link already signed when shutdown cuts the
	// handlers short is confirmed and acked rather than nacked, signed
	// again and published twice.
	PublishTimeout time.Duration
	// PublishWait bounds the wait for Pub/Sub's confirmation while the
	// delivery's context lives (default DefaultPublishWait). While the
	// receive loop holds a message it extends the message's lease, so a
	// publish slowed by a Pub/Sub outage is awaited, not abandoned: a
	// publish that completed after an abandoning bound was nacked,
	// redelivered, signed again and published twice. Keep it below the
	// subscription's lease extension limit (PullOptions.MaxExtension).
	PublishWait time.Duration
}

// Defaults for RouterOptions.
const (
	// DefaultPublishTimeout is short enough to fit a shutdown's grace
	// period after the handlers are cut.
	DefaultPublishTimeout = 2 * time.Second
	// DefaultPublishWait is the Pub/Sub client's own default publish
	// timeout: a publish that is still unconfirmed then has failed.
	DefaultPublishWait = 60 * time.Second
)

// NewRouter returns a Router for h that publishes with pub.
func NewRouter(h Handler, pub Publisher, o RouterOptions) (*Router, error) {
	if h == nil || pub == nil || o.DeadLetter == nil {
		return nil, errors.New("worker: router needs a handler, a publisher and a dead-letter builder")
	}
	r := &Router{handler: h, pub: pub, deadLetter: o.DeadLetter, log: o.Logger, metrics: o.Metrics, now: o.Now,
		publishTimeout: o.PublishTimeout, publishWait: o.PublishWait}
	if r.publishTimeout <= 0 {
		r.publishTimeout = DefaultPublishTimeout
	}
	if r.publishWait <= 0 {
		r.publishWait = DefaultPublishWait
	}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

// Decision is the Router's verdict on one delivery.
type Decision struct {
	// Ack is true when the message is done with (issued, ignored or
	// dead-lettered); false asks for redelivery.
	Ack     bool
	Outcome Outcome
	// Class is the handler's error (or, when publishing failed, the
	// publisher's) as failure.Classify sees it.
	Class failure.Class
	// Reason is Class.Reason(): a stable code for ignored, dead-lettered and
	// retried messages, and the metric label.
	Reason string
	// Err is the handler's or publisher's error, if any.
	Err error
}

// decide is the Decision for a classified error.
func decide(c failure.Class, err error) Decision {
	o := outcomeOf(c)
	return Decision{Ack: o != OutcomeRetry, Outcome: o, Class: c, Reason: c.Reason(), Err: err}
}

// Process handles one delivery under ctx and decides its fate. It never
// panics on input.
func (r *Router) Process(ctx context.Context, m *Message) Decision {
	start := r.now()
	r.metrics.inFlight(1)
	defer r.metrics.inFlight(-1)

	outs, err := r.handle(ctx, m)
	d := decide(failure.Classify(err), err)
	switch d.Outcome {
	case OutcomeIssued:
		if len(outs) > 0 {
			if perr := r.publish(ctx, outs...); perr != nil {
				d = decide(failure.Classify(failure.Transient(failure.Publisher, perr)), perr)
			}
		}
	case OutcomeDeadLetter:
		out, derr := r.deadLetter(m, d.Class.Code, err)
		if derr == nil {
			derr = r.publish(ctx, out)
		}
		if derr != nil {
			d = decide(failure.Classify(failure.Transient(failure.DeadLetter, derr)), derr)
		}
	}
	r.metrics.observe(d, r.now().Sub(start))
	r.logDecision(m, d)
	return d
}

// publish sends outs and waits for the confirmation: while ctx lives, up
// to publishWait; once ctx has ended, for publishTimeout more (see
// RouterOptions). Only a publish that failed, or outlasted those bounds, is
// an error (and a nack).
func (r *Router) publish(ctx context.Context, outs ...Output) error {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.publishWait)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(r.publishTimeout, cancel)
		context.AfterFunc(pctx, func() { t.Stop() })
	})
	defer stop()
	return r.pub.Publish(pctx, outs...)
}

// handle runs the handler, turning a panic into a transient error.
func (r *Router) handle(ctx context.Context, m *Message) (outs []Output, err error) {
	defer func() {
		if v := recover(); v != nil {
			outs, err = nil, &panicError{value: v}
		}
	}()
	return r.handler(ctx, m)
}

func (r *Router) logDecision(m *Message, d Decision) {
	if d.Outcome == OutcomeIssued {
		return
	}
	fields := []zap.Field{
		zap.String("message_id", m.ID),
		zap.String("outcome", string(d.Outcome)),
		zap.String("reason", d.Reason),
		zap.Int("delivery_attempt", m.DeliveryAttempt),
	}
	if d.Err != nil {
		fields = append(fields, zap.String("error", d.Err.Error()))
	}
	switch d.Outcome {
	case OutcomeRetry:
		r.log.Warn("message will be redelivered", fields...)
	case OutcomeDeadLetter:
		r.log.Warn("message dead-lettered", fields...)
	default:
		r.log.Debug("message ignored", fields...)
	}
}
