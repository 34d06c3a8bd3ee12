package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/schema"
)

// PublishSettings are the settings of an audit topic's publisher: records
// are batched for up to delay or 100 records, with the client's defaults
// for everything else. Setting only DelayThreshold and CountThreshold on a
// zero pubsub.PublishSettings is a trap: its ByteThreshold of 0 ends every
// batch at its first message, so each record costs a Publish request of
// its own.
func PublishSettings(delay time.Duration) pubsub.PublishSettings {
	s := pubsub.DefaultPublishSettings
	if delay > 0 {
		s.DelayThreshold = delay
	}
	s.CountThreshold = 100
	return s
}

// PubSubSink publishes records to a topic. The publisher batches (see
// PublishSettings), and Write waits for the record's own publish result,
// so a nil error means the topic has it.
type PubSubSink struct{ Publisher *pubsub.Publisher }

// Write implements Sink.
func (s PubSubSink) Write(ctx context.Context, r *schema.AuditRecord) error {
	return s.Start(ctx, r)(ctx)
}

// Start implements Starter: the record joins the publisher's current
// batch, and wait waits for that batch's result.
func (s PubSubSink) Start(ctx context.Context, r *schema.AuditRecord) func(context.Context) error {
	data, err := r.Data()
	if err != nil {
		return func(context.Context) error { return err }
	}
	res := s.Publisher.Publish(ctx, &pubsub.Message{Data: data, Attributes: r.Attributes()})
	return func(ctx context.Context) error {
		if _, err := res.Get(ctx); err != nil {
			return fmt.Errorf("audit: publish: %w", err)
		}
		return nil
	}
}

// LogSink writes records as structured log entries (zap, Cloud Logging
// field names): one "link issued" entry at info with the record under
// "audit". Cloud Logging takes them from stdout/stderr; a log sink or a
// log-based query turns them into the same table. zap reports no per-entry
// error, so Write fails only when the record cannot be encoded.
type LogSink struct{ Logger *zap.Logger }

// Write implements Sink.
func (s LogSink) Write(_ context.Context, r *schema.AuditRecord) error {
	s.Logger.Info("link issued", zap.String("schema", schema.AuditV1), zap.Any("audit", r))
	return nil
}

// Start implements Starter: the entry is written at once.
func (s LogSink) Start(ctx context.Context, r *schema.AuditRecord) func(context.Context) error {
	err := s.Write(ctx, r)
	return func(context.Context) error { return err }
}

// Sinks writes to every sink and fails with the first error.
type Sinks []Sink

// Write implements Sink.
func (s Sinks) Write(ctx context.Context, r *schema.AuditRecord) error {
	return s.Start(ctx, r)(ctx)
}

// Start implements Starter: every sink starts at once.
func (s Sinks) Start(ctx context.Context, r *schema.AuditRecord) func(context.Context) error {
	waits := make([]func(context.Context) error, len(s))
	for i, k := range s {
		waits[i] = startOn(ctx, k, r)
	}
	return func(ctx context.Context) error {
		var errs []error
		for _, w := range waits {
			errs = append(errs, w(ctx))
		}
		return errors.Join(errs...)
	}
}
