package links

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"github.com/linkissuer/linkissuer/worker"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/linkissuer/linkissuer/internal/pubsubemu"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/sign"
)

// The integration tests in this package run against Google's real Pub/Sub
// emulator (started once for the package) and fake-gcs-server in process,
// which publishes real OBJECT_FINALIZE notifications to the emulator.

const testProject = "linkissuer-test"

var emulatorErr error

func TestMain(m *testing.M) { os.Exit(pubsubemu.RunTests(m, &emulatorErr)) }

// stack is one test's set of topics, subscriptions, storage and signer.
type stack struct {
	t       *testing.T
	client  *pubsub.Client
	gcs     *fakestorage.Server
	key     *sign.KeySigner
	signer  *sign.URLSigner
	ids     map[string]string // logical name -> unique topic/subscription ID
	bucket  string
	workers sync.WaitGroup
}

var idUnsafe = regexp.MustCompile(`[^a-zA-Z0-9-]+`)

func newStack(t *testing.T) *stack {
	t.Helper()
	pubsubemu.Need(t, emulatorErr)
	ctx := context.Background()
	client, err := pubsub.NewClient(ctx, testProject)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	base := strings.ToLower(idUnsafe.ReplaceAllString(t.Name(), "-"))
	if len(base) > 40 {
		base = base[:40]
	}
	s := &stack{t: t, client: client, ids: map[string]string{}, bucket: "example-media"}
	for _, name := range []string{"notifications", "results", "errors", "dlq"} {
		s.ids[name] = fmt.Sprintf("%s-%s-%d", base, name, time.Now().UnixNano())
		if err := pubsubemu.EnsureTopic(ctx, client, s.ids[name]); err != nil {
			t.Fatal(err)
		}
	}
	subs := []pubsubemu.Subscription{
		{ID: s.ids["notifications"] + "-worker", Topic: s.ids["notifications"], ExactlyOnce: true, DeadLetterTopic: s.ids["dlq"], AckDeadline: 10 * time.Second, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second},
		{ID: s.ids["results"] + "-sub", Topic: s.ids["results"], AckDeadline: 10 * time.Second},
		{ID: s.ids["errors"] + "-sub", Topic: s.ids["errors"]},
		{ID: s.ids["dlq"] + "-sub", Topic: s.ids["dlq"]},
	}
	for _, sub := range subs {
		if err := pubsubemu.EnsureSubscription(ctx, client, sub); err != nil {
			t.Fatal(err)
		}
	}

	s.gcs, err = fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", PublicHost: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.gcs.Stop)
	s.gcs.CreateBucket(s.bucket)

	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if s.key, err = sign.NewKeySigner("linkissuer@test-project.iam.gserviceaccount.com", rk); err != nil {
		t.Fatal(err)
	}
	if s.signer, err = sign.New(s.key, &sign.Options{Endpoint: sign.Endpoint{EmulatorHost: s.gcs.URL()}}); err != nil {
		t.Fatal(err)
	}
	return s
}

// handler returns a Issuer allowing only the stack's bucket.
func (s *stack) handler() *Issuer {
	p, err := policy.New(policy.Config{Allow: []string{s.bucket}})
	if err != nil {
		s.t.Fatal(err)
	}
	return &Issuer{Signer: s.signer, Policy: p}
}

// startWorker runs a pull worker until the returned stop is called (which
// is what SIGTERM does in main) and waits for it to return.
func (s *stack) startWorker(h worker.Handler, grace time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	// Each worker has its own client, as separate replicas do.
	client, err := pubsub.NewClient(ctx, testProject)
	if err != nil {
		s.t.Fatal(err)
	}
	pub := worker.NewTopicPublisher(client, map[string]string{
		worker.TopicResults: s.ids["results"],
		worker.TopicErrors:  s.ids["errors"],
	}, pubsub.PublishSettings{DelayThreshold: 2 * time.Millisecond, CountThreshold: 100}, nil)
	var r *worker.Router
	r, err = worker.NewRouter(h, pub, worker.RouterOptions{DeadLetter: worker.DeadLetters("test-worker", nil), Logger: testLogger(s.t)})
	if err != nil {
		s.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- worker.Pull(ctx, client.Subscriber(s.ids["notifications"]+"-worker"), r, worker.PullOptions{
			MaxOutstanding: 1000, Streams: 1, HandlerTimeout: 30 * time.Second, Grace: grace,
		}, testLogger(s.t))
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				s.t.Errorf("worker: %v", err)
			}
			pub.Stop()
			client.Close()
		})
	}
	s.t.Cleanup(stop)
	return stop
}

// collect receives from the subscription on topic until want messages
// arrived or the timeout passed, acking each, and returns them. One Receive
// runs for the whole wait: a Receive cancelled early would strand messages
// the client had pulled but not dispatched until their lease ran out.
func (s *stack) collect(topic string, want int, timeout time.Duration) []*pubsub.Message {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var mu sync.Mutex
	var got []*pubsub.Message
	sub := s.client.Subscriber(s.ids[topic] + "-sub")
	err := sub.Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m)
		if len(got) >= want {
			cancel()
		}
	})
	if err != nil && ctx.Err() == nil {
		s.t.Fatalf("receive %s: %v", topic, err)
	}
	mu.Lock()
	defer mu.Unlock()
	return got
}

// collectUntil receives from topic's subscription until done says the
// messages so far are enough, or the timeout passes.
func (s *stack) collectUntil(topic string, timeout time.Duration, done func(*pubsub.Message) bool) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var mu sync.Mutex
	err := s.client.Subscriber(s.ids[topic]+"-sub").Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		mu.Lock()
		defer mu.Unlock()
		if done(m) {
			cancel()
		}
	})
	if err != nil && ctx.Err() == nil {
		s.t.Fatalf("receive %s: %v", topic, err)
	}
}

// collectQuiet is collect for a topic that should stay empty: it waits the
// whole window.
func (s *stack) collectQuiet(topic string, window time.Duration) []*pubsub.Message {
	return s.collect(topic, 1<<30, window)
}

// publish sends raw messages to the notifications topic and waits for the
// server's confirmation.
func (s *stack) publish(msgs ...*pubsub.Message) {
	s.t.Helper()
	pub := s.client.Publisher(s.ids["notifications"])
	defer pub.Stop()
	var results []*pubsub.PublishResult
	for _, m := range msgs {
		results = append(results, pub.Publish(context.Background(), m))
	}
	for _, r := range results {
		if _, err := r.Get(context.Background()); err != nil {
			s.t.Fatal(err)
		}
	}
}

// testLogger sends the worker's logs to the test log when -v is given.
func testLogger(t *testing.T) *zap.Logger {
	if !testing.Verbose() {
		return zap.NewNop()
	}
	return zaptest.NewLogger(t)
}
