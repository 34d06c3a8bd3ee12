package worker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/sign"
)

// TestMetricsLabelOutagesByComponent checks that linkissuer_messages_total
// counts a storage outage as storage_unavailable and a signer outage as
// signer_unavailable, each under its own label.
func TestMetricsLabelOutagesByComponent(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	errs := []error{
		fmt.Errorf("jobs: list gs://b/: %w", failure.Transient(failure.Storage, errors.New("googleapi: 503"))),
		fmt.Errorf("jobs: read plan: %w", failure.Transient(failure.Storage, errors.New("s3: SlowDown"))),
		&sign.RetryableError{Err: errors.New("signBlob: 429")},
	}
	i := 0
	r, err := NewRouter(func(context.Context, *Message) ([]Output, error) {
		defer func() { i++ }()
		return nil, errs[i]
	}, &fakePublisher{}, RouterOptions{DeadLetter: DeadLetters("test", nil), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	for range errs {
		if d := r.Process(t.Context(), &Message{ID: "m"}); d.Ack {
			t.Fatalf("an outage was acked: %+v", d)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{} // outcome/reason -> count
	for _, mf := range families {
		if mf.GetName() != "linkissuer_messages_total" {
			continue
		}
		for _, c := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range c.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[labels["outcome"]+"/"+labels["reason"]] += c.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"retry/storage_unavailable": 2, "retry/signer_unavailable": 1}
	if !maps.Equal(got, want) {
		t.Errorf("linkissuer_messages_total = %v, want %v", got, want)
	}
}
