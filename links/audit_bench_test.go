package links

import (
	"context"
	"fmt"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/internal/pubsubemu"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
)

// BenchmarkIssueLinkAudit issues links in parallel (HMAC signing, so the
// signer is not the bottleneck) with auditing off, and on with fail-closed
// records published to the Pub/Sub emulator; compare the two in one run.
//
//	go test -run '^$' -bench IssueLinkAudit -benchtime 3000x ./links
func BenchmarkIssueLinkAudit(b *testing.B) {
	if emulatorErr != nil {
		b.Skip(emulatorErr)
	}
	ctx := context.Background()
	hmac, err := sign.NewHMACSigner("GOOG1EXAMPLEACCESSID", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0")
	if err != nil {
		b.Fatal(err)
	}
	urls, err := sign.New(hmac, nil)
	if err != nil {
		b.Fatal(err)
	}
	p, err := policy.New(policy.Config{Allow: []string{"bench"}})
	if err != nil {
		b.Fatal(err)
	}
	client, err := newBenchClient(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	topic := fmt.Sprintf("bench-audit-%d", b.N)
	pub, err := benchTopic(ctx, client, topic)
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Stop()
	rec, err := audit.New(audit.PubSubSink{Publisher: pub}, audit.Options{Signer: audit.Signer{Identity: "GOOG1EXAMPLEACCESSID", Kind: sign.KindHMAC}, FailClosed: true})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		audit Auditor
	}{{"off", nil}, {"on", rec}} {
		b.Run(tc.name, func(b *testing.B) {
			h := &Issuer{Signer: urls, Policy: p, Audit: tc.audit}
			b.SetParallelism(benchParallelism)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, err := h.Issue(ctx, policy.Request{Bucket: "bench", Object: "o.txt"}, schema.LinkObject{Generation: 1, Size: 1}, schema.LinkSource{MessageID: "m"})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func newBenchClient(ctx context.Context) (*pubsub.Client, error) {
	return pubsub.NewClient(ctx, testProject)
}

// benchTopic creates topic with a subscription (so the emulator keeps the
// records, as the BigQuery subscription would) and returns a batching
// publisher for it.
func benchTopic(ctx context.Context, c *pubsub.Client, id string) (*pubsub.Publisher, error) {
	if err := pubsubemu.EnsureTopic(ctx, c, id); err != nil {
		return nil, err
	}
	if err := pubsubemu.EnsureSubscription(ctx, c, pubsubemu.Subscription{ID: id + "-sub", Topic: id}); err != nil {
		return nil, err
	}
	pub := c.Publisher(id)
	pub.PublishSettings = pubsub.PublishSettings{DelayThreshold: 2 * time.Millisecond, CountThreshold: 100}
	return pub, nil
}

// benchParallelism is goroutines per GOMAXPROCS: a worker has up to
// MaxOutstanding (1000) messages in flight, so links wait for their audit
// publish side by side.
const benchParallelism = 256
