package links

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/tracing"
)

// With tracing on, a notification produces one connected trace on the
// Pub/Sub emulator: the Pub/Sub client's receive span, linkissuer's sign
// span under it, and the publish of the link under that.
func TestNotificationTraceConnectsReceiveSignPublish(t *testing.T) {
	s := newStack(t)
	exp := tracetest.NewInMemoryExporter()
	prev := otel.GetTracerProvider()
	shutdown := tracing.Start(keepSpans{exp}, sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	h := s.handler()
	var err error
	if h.Signer, err = sign.New(tracing.Signer(s.key), &sign.Options{Endpoint: sign.Endpoint{EmulatorHost: s.gcs.URL()}}); err != nil {
		t.Fatal(err)
	}
	w := s.worker(h.Handle, 5*time.Second)
	w.Pull.MaxOutstanding, w.Trace = 10, true
	stop := s.StartWorker(w)
	s.upload([]string{"traced.txt"})
	if msgs := s.collect("results", 1, 60*time.Second); len(msgs) != 1 {
		t.Fatalf("got %d links, want 1", len(msgs))
	}
	stop()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	spans := exp.GetSpans()
	byName := func(pred func(string) bool) []tracetest.SpanStub {
		var out []tracetest.SpanStub
		for _, sp := range spans {
			if pred(sp.Name) {
				out = append(out, sp)
			}
		}
		return out
	}
	signs := byName(func(n string) bool { return n == "sign" })
	if len(signs) != 1 {
		t.Fatalf("%d sign spans, want 1; spans: %v", len(signs), spanNames(spans))
	}
	trace := signs[0].SpanContext.TraceID()
	receive := byName(func(n string) bool { return n == s.IDs["notifications"]+"-worker subscribe" })
	publish := byName(func(n string) bool { return n == s.IDs["results"]+" create" })
	if len(receive) == 0 || len(publish) == 0 {
		t.Fatalf("missing receive (%d) or publish (%d) spans; spans: %v", len(receive), len(publish), spanNames(spans))
	}
	if receive[0].SpanContext.TraceID() != trace || publish[0].SpanContext.TraceID() != trace {
		t.Errorf("receive, sign and publish are not one trace: %s, %s, %s",
			receive[0].SpanContext.TraceID(), trace, publish[0].SpanContext.TraceID())
	}
	// sign descends from the receive span, and the publish from sign's
	// parent (the message's process span): receive -> sign, receive -> publish.
	ancestors := func(sp tracetest.SpanStub) map[string]bool {
		byID := map[string]tracetest.SpanStub{}
		for _, x := range spans {
			byID[x.SpanContext.SpanID().String()] = x
		}
		out := map[string]bool{}
		for sp.Parent.IsValid() {
			id := sp.Parent.SpanID().String()
			out[id] = true
			next, ok := byID[id]
			if !ok {
				break
			}
			sp = next
		}
		return out
	}
	if !ancestors(signs[0])[receive[0].SpanContext.SpanID().String()] {
		t.Errorf("sign does not descend from the receive span")
	}
	if !ancestors(publish[0])[signs[0].Parent.SpanID().String()] {
		t.Errorf("the link's publish does not descend from the span that holds sign")
	}
}

// keepSpans keeps the spans past Shutdown, which flushes the batcher into
// it (the in-memory exporter forgets them on Shutdown).
type keepSpans struct{ *tracetest.InMemoryExporter }

func (keepSpans) Shutdown(context.Context) error { return nil }

func spanNames(spans tracetest.SpanStubs) string {
	var names []string
	for _, sp := range spans {
		names = append(names, sp.Name)
	}
	return strings.Join(names, ", ")
}
