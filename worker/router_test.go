package worker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/linkissuer/linkissuer/failure"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// fakePublisher records outputs and fails when told to.
type fakePublisher struct {
	fail func(Output) error
	got  []Output
}

func (p *fakePublisher) Publish(_ context.Context, outs ...Output) error {
	for _, o := range outs {
		if p.fail != nil {
			if err := p.fail(o); err != nil {
				return err
			}
		}
	}
	p.got = append(p.got, outs...)
	return nil
}

func TestRouterDecisions(t *testing.T) {
	result := Output{Topic: TopicResults, Data: []byte("link")}
	failTopic := func(topic string) func(Output) error {
		return func(o Output) error {
			if o.Topic == topic {
				return errors.New("pubsub unavailable")
			}
			return nil
		}
	}
	tests := []struct {
		name        string
		handler     Handler
		fail        func(Output) error
		wantAck     bool
		wantOutcome Outcome
		wantReason  string
		wantTopics  []string
	}{
		{"issued", func(context.Context, *Message) ([]Output, error) { return []Output{result}, nil }, nil, true, OutcomeIssued, "", []string{TopicResults}},
		{"ignored", func(context.Context, *Message) ([]Output, error) {
			return nil, failure.Ignore("overwritten_generation")
		}, nil, true, OutcomeIgnored, "overwritten_generation", nil},
		{"invalid input is dead-lettered", func(context.Context, *Message) ([]Output, error) {
			return nil, fmt.Errorf("parse: %w", &schema.FieldError{Field: "attributes.objectId", Reason: "missing", Code: schema.CodeMissingAttribute})
		}, nil, true, OutcomeDeadLetter, "missing_attribute", []string{TopicErrors}},
		{"policy refusal is dead-lettered", func(context.Context, *Message) ([]Output, error) {
			return nil, &policy.Refusal{Code: policy.CodeBucketNotAllowed, Reason: "no"}
		}, nil, true, OutcomeDeadLetter, "policy_refused", []string{TopicErrors}},
		{"sign input error is dead-lettered", func(context.Context, *Message) ([]Output, error) {
			return nil, fmt.Errorf("sign: %w", &sign.InputError{Field: "object", Reason: "bad"})
		}, nil, true, OutcomeDeadLetter, "sign_refused", nil},
		{"retryable signer error is nacked", func(context.Context, *Message) ([]Output, error) {
			return nil, &sign.RetryableError{Err: errors.New("429")}
		}, nil, false, OutcomeRetry, "signer_unavailable", nil},
		{"storage outage is nacked as a storage outage", func(context.Context, *Message) ([]Output, error) {
			return nil, fmt.Errorf("list: %w", failure.Transient(failure.Storage, errors.New("503")))
		}, nil, false, OutcomeRetry, "storage_unavailable", nil},
		{"unknown error is nacked", func(context.Context, *Message) ([]Output, error) { return nil, errors.New("boom") }, nil, false, OutcomeRetry, "transient", nil},
		{"panic is nacked, not a crash", func(context.Context, *Message) ([]Output, error) { panic("bad input crashed a parser") }, nil, false, OutcomeRetry, "transient", nil},
		{"result publish failure is nacked", func(context.Context, *Message) ([]Output, error) { return []Output{result}, nil }, failTopic(TopicResults), false, OutcomeRetry, "publish_failed", nil},
		{"dead-letter publish failure is nacked", func(context.Context, *Message) ([]Output, error) {
			return nil, failure.Permanent(failure.CodeInvalidJSON, errors.New("x"))
		}, failTopic(TopicErrors), false, OutcomeRetry, "dead_letter_publish_failed", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub := &fakePublisher{fail: tc.fail}
			r, err := NewRouter(tc.handler, pub, RouterOptions{DeadLetter: DeadLetters("test", nil)})
			if err != nil {
				t.Fatal(err)
			}
			d := r.Process(context.Background(), &Message{ID: "m1", Data: []byte("{}"), Attributes: map[string]string{"a": "b"}})
			if d.Ack != tc.wantAck || d.Outcome != tc.wantOutcome || d.Reason != tc.wantReason {
				t.Fatalf("decision %+v, want ack=%v outcome=%s reason=%s", d, tc.wantAck, tc.wantOutcome, tc.wantReason)
			}
			if tc.wantTopics != nil {
				if len(pub.got) != len(tc.wantTopics) || pub.got[0].Topic != tc.wantTopics[0] {
					t.Fatalf("published %+v, want topics %v", pub.got, tc.wantTopics)
				}
			}
			if tc.wantOutcome == OutcomeDeadLetter && tc.fail == nil {
				dl := pub.got[0]
				if dl.Attributes[schema.AttrReasonCode] != tc.wantReason || dl.Attributes[schema.AttrOriginalMessageID] != "m1" {
					t.Errorf("dead letter attributes %v", dl.Attributes)
				}
			}
		})
	}
}

// ctxPublisher reports whether the context it publishes under is live.
type ctxPublisher struct{ live []bool }

func (p *ctxPublisher) Publish(ctx context.Context, _ ...Output) error {
	p.live = append(p.live, ctx.Err() == nil)
	return ctx.Err()
}

// A handler that finished its link as shutdown cancelled the delivery's
// context still gets its output published and the message acked: the
// publish runs under its own bound, not the cancelled context.
func TestRouterPublishesAfterCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h := func(context.Context, *Message) ([]Output, error) {
		cancel() // shutdown arrives while the handler returns its link
		return []Output{{Topic: TopicResults, Data: []byte("link")}}, nil
	}
	pub := &ctxPublisher{}
	r, err := NewRouter(h, pub, RouterOptions{DeadLetter: DeadLetters("test", nil)})
	if err != nil {
		t.Fatal(err)
	}
	d := r.Process(ctx, &Message{ID: "1"})
	if !d.Ack || d.Outcome != OutcomeIssued || len(pub.live) != 1 || !pub.live[0] {
		t.Errorf("decision %+v, publish contexts live %v; want issued and acked under a live context", d, pub.live)
	}
}

// slowPublisher confirms a publish only when release is closed, or fails
// when its context ends first.
type slowPublisher struct{ release chan struct{} }

func (p *slowPublisher) Publish(ctx context.Context, _ ...Output) error {
	select {
	case <-p.release:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("publish: %w", ctx.Err())
	}
}

// TestRouterAwaitsSlowPublish: a publish confirmed after PublishTimeout,
// while the delivery is still held (its context live, as during a Pub/Sub
// outage that the client rides out), is acked: nacking it would have the
// message redelivered and signed again although its link was published.
// Once the delivery's context has ended (shutdown), the publish is given
// PublishTimeout more, and then nacked, so that shutdown stays bounded.
func TestRouterAwaitsSlowPublish(t *testing.T) {
	h := func(context.Context, *Message) ([]Output, error) {
		return []Output{{Topic: TopicResults, Data: []byte("link")}}, nil
	}
	t.Run("held delivery", func(t *testing.T) {
		pub := &slowPublisher{release: make(chan struct{})}
		r, err := NewRouter(h, pub, RouterOptions{DeadLetter: DeadLetters("test", nil), PublishTimeout: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		// Confirmed well after PublishTimeout.
		time.AfterFunc(100*time.Millisecond, func() { close(pub.release) })
		if d := r.Process(context.Background(), &Message{ID: "1"}); !d.Ack || d.Outcome != OutcomeIssued {
			t.Errorf("decision %+v, want issued and acked", d)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		pub := &slowPublisher{release: make(chan struct{})}
		defer close(pub.release)
		r, err := NewRouter(h, pub, RouterOptions{DeadLetter: DeadLetters("test", nil), PublishTimeout: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		if d := r.Process(ctx, &Message{ID: "2"}); d.Ack || d.Reason != "publish_failed" {
			t.Errorf("decision %+v, want a nack (publish_failed) once shutdown's bound has passed", d)
		}
	})
}
