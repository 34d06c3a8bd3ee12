package links

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/internal/pubsubemu"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/schema"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/sign/engine"
	signiam "github.com/linkissuer/linkissuer/sign/iam"
)

// BenchmarkIssueLinkAudit issues links in parallel, keyless, through the
// signing engine over our IAM emulator with a quota of 1,000 signBlob
// calls/s (burst 50, RSA-1024), the engine's ceiling set to the quota: the rate a
// real keyless worker reaches. Side by side in one run, auditing:
//   - off;
//   - log: records as JSON log entries (to io.Discard);
//   - fail-closed: each link waits for its record's publish to the
//     Pub/Sub emulator (audit.PublishSettings: 2 ms or 100 records);
//   - fail-closed-unbatched: the same with the settings the worker used
//     before (ByteThreshold 0: one Publish request per record);
//   - fail-open: records queued (bounded), the link released at once.
//
// Report links/s and the ratio to off, and cpu-us/link: the process's CPU
// time (user and system, every thread) from the first link to the last
// record written, per link. The emulators of Google's services run
// elsewhere (signBlob in this process, but the same in every mode), so a
// mode's cpu-us/link minus off's is what auditing costs the worker:
// fingerprint, record, encoding and the Pub/Sub client.
//
//	go test -run '^$' -bench IssueLinkAudit -benchtime 3000x ./links
//
// With -audit-pubsub-host the Pub/Sub sinks publish to an emulator already
// running there instead of the one the tests start as a child (which
// shares the test's CPUs): run it and the benchmark on different cores,
// in alternating rounds (-count), as BENCHMARKS.md shows:
//
//	taskset -c 1 java -jar cloud-pubsub-emulator-*-all.jar --host=127.0.0.1 --port=8786 &
//	go test -c -o links.test ./links
//	taskset -c 0 ./links.test -test.run '^$' -test.bench 'IssueLinkAudit/^(off|log|fail-open|fail-closed)$' \
//	  -test.benchtime 5000x -test.count 5 -audit-pubsub-host 127.0.0.1:8786
func BenchmarkIssueLinkAudit(b *testing.B) {
	if emulatorErr != nil && *auditPubSubHost == "" {
		b.Skip(emulatorErr)
	}
	ctx := context.Background()
	// RSA-1024, as in loadtest/keyless: the emulator stands in for Google's
	// servers, whose RSA-2048 signing (1.3 ms of CPU, 1.3 cores at the
	// quota) is not the worker's to pay; on 2 cores it would make every
	// row CPU-bound instead of quota-bound.
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		b.Fatal(err)
	}
	emu, err := iam.New(&iam.Options{Key: key, Quota: 1000, Burst: 50})
	if err != nil {
		b.Fatal(err)
	}
	defer emu.Close()
	srv := httptest.NewServer(emu)
	defer srv.Close()
	is, err := signiam.NewSigner(ctx, signiam.Options{Email: emu.Email(), Endpoint: srv.URL + "/"})
	if err != nil {
		b.Fatal(err)
	}
	eng, err := engine.New(is, &engine.Options{Ceiling: 1000})
	if err != nil {
		b.Fatal(err)
	}
	urls, err := sign.New(eng, nil)
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
	signer := audit.Signer{Identity: emu.Email(), Kind: sign.KindRSA}
	recorder := func(b *testing.B, sink audit.Sink, failClosed bool) *audit.Recorder {
		rec, err := audit.New(sink, audit.Options{Signer: signer, FailClosed: failClosed})
		if err != nil {
			b.Fatal(err)
		}
		return rec
	}
	topic := func(b *testing.B, name string, settings pubsub.PublishSettings) audit.Sink {
		pub, err := benchTopic(ctx, client, fmt.Sprintf("bench-audit-%s-%d-%d", name, b.N, time.Now().UnixNano()), settings)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pub.Stop)
		return audit.PubSubSink{Publisher: pub}
	}
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel))
	for _, tc := range []struct {
		name  string
		audit func(b *testing.B) *audit.Recorder
	}{
		{"off", func(*testing.B) *audit.Recorder { return nil }},
		{"log", func(b *testing.B) *audit.Recorder { return recorder(b, audit.LogSink{Logger: logger}, true) }},
		{"fail-closed", func(b *testing.B) *audit.Recorder {
			return recorder(b, topic(b, "closed", audit.PublishSettings(2*time.Millisecond)), true)
		}},
		{"fail-closed-unbatched", func(b *testing.B) *audit.Recorder {
			return recorder(b, topic(b, "unbatched", pubsub.PublishSettings{DelayThreshold: 2 * time.Millisecond, CountThreshold: 100}), true)
		}},
		{"fail-open", func(b *testing.B) *audit.Recorder {
			return recorder(b, topic(b, "open", audit.PublishSettings(2*time.Millisecond)), false)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := &Issuer{Signer: urls, Policy: p}
			rec := tc.audit(b)
			if rec != nil {
				h.Audit = rec
			}
			var n atomic.Int64 // distinct objects: identical requests would be signed once (the engine shares them)
			b.SetParallelism(benchParallelism)
			b.ResetTimer()
			start := time.Now()
			cpu0 := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, err := h.Issue(ctx, policy.Request{Bucket: "bench", Object: fmt.Sprintf("o-%d.txt", n.Add(1))}, schema.LinkObject{Generation: 1, Size: 1}, schema.LinkSource{MessageID: "m"})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "links/s")
			if rec != nil {
				if err := rec.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(rec.Failures()), "failures")
			}
			if cpu := processCPU(); cpu > 0 {
				b.ReportMetric(float64((cpu-cpu0).Microseconds())/float64(b.N), "cpu-us/link")
			}
		})
	}
}

// auditPubSubHost is a Pub/Sub emulator (host:port) for the benchmark's
// sinks, run apart from the benchmark's CPUs; empty means the tests' own.
var auditPubSubHost = flag.String("audit-pubsub-host", "", "BenchmarkIssueLinkAudit: publish audit records to the Pub/Sub emulator at host:port (started apart, e.g. on another core) instead of the tests' child emulator")

func newBenchClient(ctx context.Context) (*pubsub.Client, error) {
	if *auditPubSubHost == "" {
		return pubsub.NewClient(ctx, testProject)
	}
	return pubsub.NewClient(ctx, testProject, option.WithEndpoint(*auditPubSubHost), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
}

// benchTopic creates topic with a subscription (so the emulator keeps the
// records, as the BigQuery subscription would) and returns a publisher
// for it with settings.
func benchTopic(ctx context.Context, c *pubsub.Client, id string, settings pubsub.PublishSettings) (*pubsub.Publisher, error) {
	if err := pubsubemu.EnsureTopic(ctx, c, id); err != nil {
		return nil, err
	}
	if err := pubsubemu.EnsureSubscription(ctx, c, pubsubemu.Subscription{ID: id + "-sub", Topic: id}); err != nil {
		return nil, err
	}
	pub := c.Publisher(id)
	pub.PublishSettings = settings
	return pub, nil
}

// benchParallelism is goroutines per GOMAXPROCS: a worker has up to
// MaxOutstanding (1000) messages in flight, so links wait for their audit
// publish side by side.
const benchParallelism = 256
