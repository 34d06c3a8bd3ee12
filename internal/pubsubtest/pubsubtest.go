// Package pubsubtest is the emulator stack of the integration tests that
// run pull workers (links, jobs): one test's topics and subscriptions on
// Google's Pub/Sub emulator, with IDs unique to the test so that parallel
// tests never share one; workers that pull from them, each with its own
// client as separate replicas have; and receiving what they publish. The
// emulator itself runs once per package (pubsubemu.RunTests). NewPstest
// builds the same stack on pstest, the in-process fake, for a test that
// needs a server honouring ack deadlines (see NewPstest).
package pubsubtest

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/pstest"
	"go.uber.org/zap"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/linkissuer/linkissuer/internal/pubsubemu"
	"github.com/linkissuer/linkissuer/worker"
)

// Stack is one test's topics on the emulator.
type Stack struct {
	T       *testing.T
	Project string
	// Client is the test's own client, closed when the test ends.
	Client *pubsub.Client
	// IDs maps each logical topic name to its topic ID.
	IDs map[string]string
	// dial makes a client to the stack's server.
	dial func(ctx context.Context, cfg *pubsub.ClientConfig) (*pubsub.Client, error)
}

var idUnsafe = regexp.MustCompile(`[^a-zA-Z0-9-]+`)

// New creates a topic for each name, with an ID made of the test's name,
// the logical name and the time. It skips or fails t (pubsubemu.Need) when
// the emulator is unavailable.
func New(t *testing.T, project string, unavailable error, topics ...string) *Stack {
	t.Helper()
	pubsubemu.Need(t, unavailable)
	return newStack(t, project, func(ctx context.Context, cfg *pubsub.ClientConfig) (*pubsub.Client, error) {
		return pubsub.NewClientWithConfig(ctx, project, cfg) // the emulator, through $PUBSUB_EMULATOR_HOST
	}, topics)
}

// NewPstest is New on a pstest server of the test's own, stopped when the
// test ends. Google's emulator does not hand out again, for minutes, a
// message leased to a stream that closed before its nack or ack was
// confirmed, even once its ack deadline has passed; pstest redelivers it
// when the deadline passes, as Pub/Sub does. A test whose outcome rests on
// that redelivery runs here.
func NewPstest(t *testing.T, project string, topics ...string) *Stack {
	t.Helper()
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	return newStack(t, project, func(ctx context.Context, cfg *pubsub.ClientConfig) (*pubsub.Client, error) {
		return pubsub.NewClientWithConfig(ctx, project, cfg, option.WithEndpoint(srv.Addr), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}, topics)
}

func newStack(t *testing.T, project string, dial func(context.Context, *pubsub.ClientConfig) (*pubsub.Client, error), topics []string) *Stack {
	t.Helper()
	client, err := dial(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	s := &Stack{T: t, Project: project, Client: client, IDs: map[string]string{}, dial: dial}
	base := strings.ToLower(idUnsafe.ReplaceAllString(t.Name(), "-"))
	if len(base) > 40 {
		base = base[:40]
	}
	for _, name := range topics {
		s.IDs[name] = fmt.Sprintf("%s-%s-%d", base, name, time.Now().UnixNano())
		if err := pubsubemu.EnsureTopic(context.Background(), client, s.IDs[name]); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TopicName is the full name of the logical topic name.
func (s *Stack) TopicName(name string) string { return pubsubemu.TopicName(s.Project, s.IDs[name]) }

// Sub is the ID of the subscription that Subscribe gives the logical topic
// name unless told otherwise: its topic ID + "-sub".
func (s *Stack) Sub(name string) string { return s.IDs[name] + "-sub" }

// Subscribe creates sub, failing the test on an error.
func (s *Stack) Subscribe(sub pubsubemu.Subscription) {
	s.T.Helper()
	if err := pubsubemu.EnsureSubscription(context.Background(), s.Client, sub); err != nil {
		s.T.Fatal(err)
	}
}

// Publish sends msgs to topic (an ID) and waits for the server's
// confirmation of each; it returns their message IDs.
func (s *Stack) Publish(topic string, msgs ...*pubsub.Message) []string {
	s.T.Helper()
	pub := s.Client.Publisher(topic)
	defer pub.Stop()
	var results []*pubsub.PublishResult
	for _, m := range msgs {
		results = append(results, pub.Publish(context.Background(), m))
	}
	ids := make([]string, len(results))
	for i, r := range results {
		id, err := r.Get(context.Background())
		if err != nil {
			s.T.Fatal(err)
		}
		ids[i] = id
	}
	return ids
}

// Receive receives from the subscription sub (an ID), acking each message
// and handing it to each, one call at a time, until each calls stop or
// timeout passes. One Receive runs for the whole wait: a Receive cancelled
// early would strand the messages the client had pulled but not yet
// dispatched until their lease ran out.
func (s *Stack) Receive(sub string, timeout time.Duration, each func(m *pubsub.Message, stop func())) {
	s.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var mu sync.Mutex
	err := s.Client.Subscriber(sub).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		mu.Lock()
		defer mu.Unlock()
		each(m, cancel)
	})
	if err != nil && ctx.Err() == nil {
		s.T.Fatalf("receive from %s: %v", sub, err)
	}
}

// Collect receives from sub until want messages arrived or timeout passed,
// and returns them.
func (s *Stack) Collect(sub string, want int, timeout time.Duration) []*pubsub.Message {
	s.T.Helper()
	var got []*pubsub.Message
	s.Receive(sub, timeout, func(m *pubsub.Message, stop func()) {
		if got = append(got, m); len(got) >= want {
			stop()
		}
	})
	return got
}

// Worker is a pull worker run by a test: a router over Handler that
// publishes to the stack's topics, and Pull.
type Worker struct {
	// Subscription is the ID of the subscription it pulls from.
	Subscription string
	// Topics maps the router's logical topics (worker.TopicResults,
	// worker.TopicErrors, worker.TopicJobs) to topic IDs.
	Topics map[string]string
	// Handler builds the handler; pub is what the router publishes to
	// (full topic names directly, logical ones through Topics), which jobs
	// runners also publish to.
	Handler func(pub *worker.NamedTopics) worker.Handler
	Pull    worker.PullOptions
	// Logger receives the router's and Pull's logs; nil discards them.
	Logger *zap.Logger
	// Trace turns on the client's OpenTelemetry tracing.
	Trace bool
}

// StartWorker runs w with its own client, as a separate replica has. The
// returned stop cancels it (SIGTERM; with Pull.Grace 0, a crash) and waits
// for it to return; the test's cleanup calls it too.
func (s *Stack) StartWorker(w Worker) (stop func()) {
	s.T.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	client, err := s.dial(ctx, &pubsub.ClientConfig{EnableOpenTelemetryTracing: w.Trace})
	if err != nil {
		cancel()
		s.T.Fatal(err)
	}
	settings := pubsub.PublishSettings{DelayThreshold: 2 * time.Millisecond, CountThreshold: 100} // linkissuer worker's defaults
	topics := worker.NewTopicPublisher(client, w.Topics, settings, nil)
	pub := worker.NewNamedTopics(client, topics, settings)
	router, err := worker.NewRouter(w.Handler(pub), pub, worker.RouterOptions{DeadLetter: worker.DeadLetters("test-worker", nil), Logger: w.Logger})
	if err != nil {
		cancel()
		s.T.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- worker.Pull(ctx, client.Subscriber(w.Subscription), router, w.Pull, w.Logger) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				s.T.Errorf("worker: %v", err)
			}
			pub.Stop()
			topics.Stop()
			client.Close()
		})
	}
	s.T.Cleanup(stop)
	return stop
}
