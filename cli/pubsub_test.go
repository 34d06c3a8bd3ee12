package cli

import (
	"context"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/linkissuer/linkissuer/internal/pubsubemu"
)

// emulatorTopic starts Google's Pub/Sub emulator for this test (skipping
// it when there is none), points the process at it, creates topic with
// the subscription topic+"-sub" in project, and returns a client.
func emulatorTopic(t *testing.T, project, topic string) *pubsub.Client {
	t.Helper()
	ctx := context.Background()
	emu, err := pubsubemu.Start(ctx, nil)
	if err != nil {
		t.Skipf("Pub/Sub emulator unavailable: %v", err)
	}
	t.Cleanup(emu.Stop)
	t.Setenv("PUBSUB_EMULATOR_HOST", emu.Host)
	client, err := pubsub.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	ensureTopic(t, client, topic)
	return client
}

// ensureTopic creates topic and its subscription topic+"-sub".
func ensureTopic(t *testing.T, client *pubsub.Client, topic string) {
	t.Helper()
	ctx := context.Background()
	if err := pubsubemu.EnsureTopic(ctx, client, topic); err != nil {
		t.Fatal(err)
	}
	if err := pubsubemu.EnsureSubscription(ctx, client, pubsubemu.Subscription{ID: topic + "-sub", Topic: topic}); err != nil {
		t.Fatal(err)
	}
}

// receive acks and returns the messages of subscription sub until n
// arrived or timeout passed. One Receive runs for the whole wait, so no
// message is left leased to a cancelled stream.
func receive(t *testing.T, client *pubsub.Client, sub string, n int, timeout time.Duration) []*pubsub.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var (
		mu  sync.Mutex
		got []*pubsub.Message
	)
	err := client.Subscriber(sub).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m)
		if len(got) >= n {
			cancel()
		}
	})
	if err != nil && ctx.Err() == nil {
		t.Fatalf("receive %s: %v", sub, err)
	}
	mu.Lock()
	defer mu.Unlock()
	return got
}
