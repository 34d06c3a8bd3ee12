package audit

import (
	"context"
	"fmt"

	"cloud.google.com/go/pubsub/v2"
	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/schema"
)

// PubSubSink publishes records to a topic. The publisher batches (its
// PublishSettings: a few milliseconds or 100 records per request), and
// Write waits for the record's own publish result, so a nil error means the
// topic has it.
type PubSubSink struct{ Publisher *pubsub.Publisher }

// Write implements Sink.
func (s PubSubSink) Write(ctx context.Context, r *schema.AuditRecord) error {
	data, err := r.Data()
	if err != nil {
		return err
	}
	if _, err := s.Publisher.Publish(ctx, &pubsub.Message{Data: data, Attributes: r.Attributes()}).Get(ctx); err != nil {
		return fmt.Errorf("audit: publish: %w", err)
	}
	return nil
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

// Sinks writes to every sink in turn and fails with the first error.
type Sinks []Sink

// Write implements Sink.
func (s Sinks) Write(ctx context.Context, r *schema.AuditRecord) error {
	for _, k := range s {
		if err := k.Write(ctx, r); err != nil {
			return err
		}
	}
	return nil
}
