// Package tracing turns on OpenTelemetry tracing for the worker: from the
// notification's receipt, through signing, to the published link. The
// Pub/Sub client carries the trace across topics in message attributes
// (googclient_traceparent) when its ClientConfig.EnableOpenTelemetryTracing
// is set; Signer adds a span around each signature (the signBlob call for
// keyless signing).
//
// Tracing is off unless the composition root calls Start: without it every
// span is a no-op from OpenTelemetry's global provider.
package tracing

import (
	"context"
	"fmt"

	cloudtrace "github.com/GoogleCloudPlatform/opentelemetry-operations-go/exporter/trace"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/linkissuer/linkissuer/sign"
)

// Name is the instrumentation scope of linkissuer's own spans.
const Name = "github.com/linkissuer/linkissuer"

// CloudTrace returns an exporter to Cloud Trace in project (the runtime
// account needs roles/cloudtrace.agent).
func CloudTrace(project string) (sdktrace.SpanExporter, error) {
	exp, err := cloudtrace.New(cloudtrace.WithProjectID(project))
	if err != nil {
		return nil, fmt.Errorf("tracing: Cloud Trace exporter: %w", err)
	}
	return exp, nil
}

// Start makes a provider that batches spans to exp the global one (the
// Pub/Sub client reads the global provider), with W3C trace context
// propagation. The returned shutdown flushes and stops it.
func Start(exp sdktrace.SpanExporter, opts ...sdktrace.TracerProviderOption) (shutdown func(context.Context) error) {
	tp := sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp)}, opts...)...)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return tp.Shutdown
}

// Signer wraps s so that each signature is a span, "sign" (a child of the
// message's span), that records the signer and any error.
func Signer(s sign.Signer) sign.Signer { return tracedSigner{Signer: s} }

type tracedSigner struct{ sign.Signer }

func (t tracedSigner) Sign(ctx context.Context, scope sign.Scope, stringToSign []byte) ([]byte, error) {
	c := t.Credential()
	ctx, span := otel.Tracer(Name).Start(ctx, "sign", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("linkissuer.signer", c.Identity),
		attribute.Bool("linkissuer.keyless", c.Keyless),
	))
	defer span.End()
	sig, err := t.Signer.Sign(ctx, scope, stringToSign)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "signing failed")
	}
	return sig, err
}
