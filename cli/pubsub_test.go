package cli

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/linkissuer/linkissuer/internal/pubsubemu"
)

// emulatorTopic starts Google's Pub/Sub emulator for this test (skipping
// it when there is none, unless $LINKISSUER_REQUIRE_PUBSUB_EMULATOR is set:
// pubsubemu.Need), points the process at it, creates topic with
// the subscription topic+"-sub" in project, and returns a client.
func emulatorTopic(t *testing.T, project, topic string) *pubsub.Client {
	t.Helper()
	ctx := context.Background()
	emu, err := pubsubemu.Start(ctx, nil)
	pubsubemu.Need(t, err)
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
// arrived or timeout passed. It pulls synchronously, so no message is left
// leased to a stream nobody reads.
func receive(t *testing.T, client *pubsub.Client, sub string, n int, timeout time.Duration) []*pubsubpb.PubsubMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	admin, name := client.SubscriptionAdminClient, pubsubemu.SubscriptionName(client.Project(), sub)
	var got []*pubsubpb.PubsubMessage
	for len(got) < n && ctx.Err() == nil {
		resp, err := admin.Pull(ctx, &pubsubpb.PullRequest{Subscription: name, MaxMessages: int32(n - len(got))})
		if err != nil {
			if ctx.Err() == nil {
				t.Fatalf("pull %s: %v", sub, err)
			}
			break
		}
		ack := &pubsubpb.AcknowledgeRequest{Subscription: name}
		for _, m := range resp.ReceivedMessages {
			got = append(got, m.Message)
			ack.AckIds = append(ack.AckIds, m.AckId)
		}
		if len(ack.AckIds) > 0 {
			if err := admin.Acknowledge(ctx, ack); err != nil {
				t.Fatalf("acknowledge %s: %v", sub, err)
			}
		}
	}
	return got
}
