package links

import (
	"crypto/rand"
	"crypto/rsa"
	"os"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/linkissuer/linkissuer/internal/pubsubemu"
	"github.com/linkissuer/linkissuer/internal/pubsubtest"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/worker"
)

// The integration tests in this package run against Google's real Pub/Sub
// emulator (started once for the package) and fake-gcs-server in process,
// which publishes real OBJECT_FINALIZE notifications to the emulator.

const testProject = "linkissuer-test"

var emulatorErr error

func TestMain(m *testing.M) { os.Exit(pubsubemu.RunTests(m, &emulatorErr)) }

// stack is one test's topics (notifications, results, errors, dlq) and
// subscriptions, storage and signer. The worker pulls notifications from
// "ID-worker", with exactly-once delivery and a dead-letter topic; each
// other topic has "ID-sub".
type stack struct {
	*pubsubtest.Stack
	t      *testing.T
	gcs    *fakestorage.Server
	key    *sign.KeySigner
	signer *sign.URLSigner
	bucket string
}

var stackTopics = []string{"notifications", "results", "errors", "dlq"}

func newStack(t *testing.T) *stack {
	t.Helper()
	return newStackOn(t, pubsubtest.New(t, testProject, emulatorErr, stackTopics...))
}

// newStackOn builds the stack on ps, whose topics are stackTopics.
func newStackOn(t *testing.T, ps *pubsubtest.Stack) *stack {
	t.Helper()
	s := &stack{Stack: ps, t: t, bucket: "example-media"}
	for _, sub := range []pubsubemu.Subscription{
		{ID: s.IDs["notifications"] + "-worker", Topic: s.IDs["notifications"], ExactlyOnce: true, DeadLetterTopic: s.IDs["dlq"], AckDeadline: 10 * time.Second, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second},
		{ID: s.Sub("results"), Topic: s.IDs["results"], AckDeadline: 10 * time.Second},
		{ID: s.Sub("errors"), Topic: s.IDs["errors"]},
		{ID: s.Sub("dlq"), Topic: s.IDs["dlq"]},
	} {
		s.Subscribe(sub)
	}

	var err error
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

// startWorker runs a pull worker on the notifications until the returned
// stop is called (which is what SIGTERM does in main) and waits for it to
// return.
func (s *stack) startWorker(h worker.Handler, grace time.Duration) (stop func()) {
	return s.StartWorker(s.worker(h, grace))
}

// worker is the pull worker startWorker runs.
func (s *stack) worker(h worker.Handler, grace time.Duration) pubsubtest.Worker {
	return pubsubtest.Worker{
		Subscription: s.IDs["notifications"] + "-worker",
		Topics:       map[string]string{worker.TopicResults: s.IDs["results"], worker.TopicErrors: s.IDs["errors"]},
		Handler:      func(*worker.NamedTopics) worker.Handler { return h },
		Pull:         worker.PullOptions{MaxOutstanding: 1000, Streams: 1, HandlerTimeout: 30 * time.Second, Grace: grace},
		Logger:       testLogger(s.t),
	}
}

// collect receives from topic's subscription until want messages arrived
// or the timeout passed, and returns them.
func (s *stack) collect(topic string, want int, timeout time.Duration) []*pubsub.Message {
	s.t.Helper()
	return s.Collect(s.Sub(topic), want, timeout)
}

// collectUntil receives from topic's subscription until done says the
// messages so far are enough, or the timeout passes.
func (s *stack) collectUntil(topic string, timeout time.Duration, done func(*pubsub.Message) bool) {
	s.t.Helper()
	s.Receive(s.Sub(topic), timeout, func(m *pubsub.Message, stop func()) {
		if done(m) {
			stop()
		}
	})
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
	s.Publish(s.IDs["notifications"], msgs...)
}

// testLogger sends the worker's logs to the test log when -v is given.
func testLogger(t *testing.T) *zap.Logger {
	if !testing.Verbose() {
		return zap.NewNop()
	}
	return zaptest.NewLogger(t)
}
