package worker

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/linkissuer/linkissuer/internal/pubsubemu"
)

// The tests of NamedTopics run against Google's Pub/Sub emulator, started
// once for the package when a test needs it.

const testProject = "linkissuer-test"

var emulatorErr error

func TestMain(m *testing.M) { os.Exit(pubsubemu.RunTests(m, &emulatorErr)) }

// recorder is a Publisher that keeps what it is given.
type recorder struct {
	mu   sync.Mutex
	outs []Output
}

func (r *recorder) Publish(_ context.Context, outs ...Output) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outs = append(r.outs, outs...)
	return nil
}

// TestNamedTopics: full names go to Pub/Sub, logical names to the next
// publisher, and idle topic publishers are stopped beyond MaxNamedTopics.
func TestNamedTopics(t *testing.T) {
	pubsubemu.Need(t, emulatorErr)
	ctx := context.Background()
	client, err := pubsub.NewClient(ctx, testProject)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	base := fmt.Sprintf("named-%d", time.Now().UnixNano())
	next := &recorder{}
	p := NewNamedTopics(client, next, pubsub.PublishSettings{})
	defer p.Stop()
	var ids []string
	for i := range MaxNamedTopics + 3 {
		id := fmt.Sprintf("%s-named-%d", base, i)
		if err := pubsubemu.EnsureTopic(ctx, client, id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := pubsubemu.EnsureSubscription(ctx, client, pubsubemu.Subscription{ID: ids[0] + "-sub", Topic: ids[0]}); err != nil {
		t.Fatal(err)
	}
	first := pubsubemu.TopicName(testProject, ids[0])
	err = p.Publish(ctx,
		Output{Topic: first, Data: []byte("to pubsub"), Attributes: map[string]string{"k": "v"}},
		Output{Topic: TopicResults, Data: []byte("to next")},
	)
	if err != nil {
		t.Fatal(err)
	}
	if len(next.outs) != 1 || string(next.outs[0].Data) != "to next" {
		t.Errorf("next got %v", next.outs)
	}
	for _, id := range ids[1:] {
		if err := p.Publish(ctx, Output{Topic: pubsubemu.TopicName(testProject, id), Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	p.mu.Lock()
	n, kept := len(p.topics), p.topics[first] != nil
	p.mu.Unlock()
	if n > MaxNamedTopics || kept {
		t.Errorf("%d topic publishers kept (the first one: %v), want at most %d without the least recently used", n, kept, MaxNamedTopics)
	}
	// The evicted topic is published to again through a new publisher.
	if err := p.Publish(ctx, Output{Topic: first, Data: []byte("again")}); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var (
		mu  sync.Mutex
		got []string
	)
	err = client.Subscriber(ids[0]+"-sub").Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		mu.Lock()
		defer mu.Unlock()
		got = append(got, string(m.Data))
		if len(got) == 2 {
			cancel()
		}
	})
	if err != nil && rctx.Err() == nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Errorf("the first topic received %q, want both messages", got)
	}
	if err := p.Publish(ctx, Output{Topic: pubsubemu.TopicName(testProject, "missing-topic"), Data: []byte("x")}); err == nil {
		t.Error("publishing to a missing topic succeeded")
	}
}
