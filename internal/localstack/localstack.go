// Package localstack runs linkissuer's local stand-ins for the cloud, in one
// process, for `linkissuer demo`, `linkissuer dev` and tests:
//
//   - Pub/Sub: pstest, the in-process fake from the Go client library, served
//     on a real gRPC listener (default), or Google's Pub/Sub emulator started
//     through internal/pubsubemu (RealPubSub), which enforces dead-letter
//     policies and exactly-once delivery the way the service does;
//   - Cloud Storage: fake-gcs-server, whose notification configs publish
//     OBJECT_FINALIZE events to that Pub/Sub, as bucket notifications do;
//   - IAM Credentials: emulator/iam, so that links are signed keyless through
//     signBlob as on Cloud Run, and verified against its public-key endpoints.
//
// Start creates the topology a worker needs (see Topology): topics, the
// worker subscription with its dead-letter topic, watch subscriptions, the
// bucket and its notification config. Creation is idempotent, so Start works
// against an emulator that already has them.
//
// Process environment: fake-gcs-server's notifications and the Google client
// libraries find Pub/Sub and Cloud Storage only through PUBSUB_EMULATOR_HOST
// and STORAGE_EMULATOR_HOST, so Start sets both in this process and Close
// restores them. Hence at most one Stack runs in a process at a time.
//
// Nothing in worker, jobs or sign imports this package: production code does
// not know it is running against stand-ins.
package localstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/pstest"
	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"

	iamemu "github.com/linkissuer/linkissuer/emulator/iam"
	"github.com/linkissuer/linkissuer/internal/pubsubemu"
)

// Defaults for Options.
const (
	DefaultProject = "linkissuer-local"
	DefaultBucket  = "local-media"
	DefaultAddr    = "127.0.0.1:0"
)

// Environment variables Start sets in this process (and the values to
// export for other processes).
const (
	EnvPubSub  = "PUBSUB_EMULATOR_HOST"
	EnvStorage = "STORAGE_EMULATOR_HOST"
)

// Options configure a Stack. A nil *Options means the defaults: project
// DefaultProject, bucket DefaultBucket, pstest, every service on a free
// loopback port, an IAM emulator without latency or faults.
type Options struct {
	Project string
	Bucket  string
	// RealPubSub uses Google's Pub/Sub emulator instead of pstest; Start
	// fails with pubsubemu.ErrNotInstalled when it is missing.
	RealPubSub bool
	// PubSubAddr, StorageAddr and IAMAddr are host:port to listen on
	// (default DefaultAddr, port 0 meaning any free port). PubSubAddr is
	// ignored with RealPubSub: the emulator picks its own port.
	PubSubAddr, StorageAddr, IAMAddr string
	// IAM configures the IAM Credentials emulator (latency, faults, key).
	IAM *iamemu.Options
	// Log receives the emulators' own logs; nil discards them.
	Log io.Writer
}

// Validate reports malformed options. It does not modify o.
func (o *Options) Validate() error {
	if o == nil {
		return nil
	}
	if o.Project != "" && strings.ContainsAny(o.Project, "/ ") {
		return fmt.Errorf("localstack: project %q must not contain '/' or spaces", o.Project)
	}
	if o.Bucket != "" && strings.ContainsAny(o.Bucket, "/ ") {
		return fmt.Errorf("localstack: bucket %q must not contain '/' or spaces", o.Bucket)
	}
	for _, a := range []struct{ name, addr string }{{"pubsub", o.PubSubAddr}, {"storage", o.StorageAddr}, {"iam", o.IAMAddr}} {
		if a.addr == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(a.addr); err != nil {
			return fmt.Errorf("localstack: %s address %q: %w", a.name, a.addr, err)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return fmt.Errorf("localstack: %s address %q: bad port", a.name, a.addr)
		}
	}
	return o.IAM.Validate()
}

// Topology names the topics and subscriptions Start creates (IDs, not full
// names), and how they connect:
//
//	bucket --OBJECT_FINALIZE--> Notifications --WorkerSubscription--> worker
//	worker --> Results (linkissuer.link.v1)    --ResultsSubscription
//	worker --> Errors  (linkissuer.deadletter.v1, permanent failures) --ErrorsSubscription
//	WorkerSubscription --after 5 failed deliveries--> DeadLetter --DeadLetterSubscription
//	Jobs (linkissuer.job.v1) --JobsSubscription--> worker
type Topology struct {
	Notifications          string
	Results                string
	Errors                 string
	DeadLetter             string
	Jobs                   string
	WorkerSubscription     string
	JobsSubscription       string
	ResultsSubscription    string
	ErrorsSubscription     string
	DeadLetterSubscription string
}

// DefaultTopology returns the topology Start creates.
func DefaultTopology() Topology {
	return Topology{
		Notifications:          "gcs-notifications",
		Results:                "linkissuer-links",
		Errors:                 "linkissuer-errors",
		DeadLetter:             "linkissuer-dead-letters",
		Jobs:                   "linkissuer-jobs",
		WorkerSubscription:     "linkissuer-worker",
		JobsSubscription:       "linkissuer-jobs-worker",
		ResultsSubscription:    "linkissuer-links-watch",
		ErrorsSubscription:     "linkissuer-errors-watch",
		DeadLetterSubscription: "linkissuer-dead-letters-watch",
	}
}

// Stack is a running local stack. Its fields are read-only.
type Stack struct {
	Project  string
	Bucket   string
	Topology Topology
	// PubSubHost is host:port, the value of PUBSUB_EMULATOR_HOST.
	PubSubHost string
	// PubSubKind says which Pub/Sub runs: "pstest (in process)" or
	// "Pub/Sub emulator (pid N)".
	PubSubKind string
	// StorageHost is http://host:port, the value of STORAGE_EMULATOR_HOST
	// and the endpoint signed URLs point at.
	StorageHost string
	// IAM is the IAM Credentials emulator: IAM.Endpoint() for
	// --iam-endpoint, IAM.Email() for --service-account.
	IAM *iamemu.Server
	// Storage is the fake-gcs-server.
	Storage *fakestorage.Server
	// PubSub is a client of the stack's Pub/Sub, for its owner's use; Close
	// closes it.
	PubSub *pubsub.Client

	pstest    *pstest.Server
	emu       *pubsubemu.Emulator
	restore   func()
	closeOnce sync.Once
	closeErr  error
}

// Start starts every service and creates the topology. ctx bounds the
// start-up only; the stack runs until Close. On error, whatever was started
// is stopped again.
func Start(ctx context.Context, opts *Options) (_ *Stack, err error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := withDefaults(opts)
	s := &Stack{Project: o.Project, Bucket: o.Bucket, Topology: DefaultTopology(), restore: func() {}}
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = s.Close(cctx)
		}
	}()

	if o.RealPubSub {
		if s.emu, err = pubsubemu.Start(context.WithoutCancel(ctx), o.Log); err != nil {
			return nil, err
		}
		s.PubSubHost = s.emu.Host
		s.PubSubKind = fmt.Sprintf("Pub/Sub emulator (pid %d)", s.emu.PID())
	} else {
		if s.pstest, err = startPstest(o.PubSubAddr); err != nil {
			return nil, err
		}
		s.PubSubHost = s.pstest.Addr
		s.PubSubKind = "pstest (in process)"
	}

	if s.IAM, err = iamemu.Start(o.IAMAddr, o.IAM); err != nil {
		return nil, fmt.Errorf("localstack: IAM emulator: %w", err)
	}

	host, port, _ := net.SplitHostPort(o.StorageAddr) // validated
	p, _ := strconv.ParseUint(port, 10, 16)
	s.Storage, err = fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http", Host: host, Port: uint16(p),
		// Path-style object URLs (http://127.0.0.1:PORT/BUCKET/OBJECT) are
		// served only when the request's host is the public host.
		PublicHost: host,
		Writer:     o.Log,
	})
	if err != nil {
		return nil, fmt.Errorf("localstack: fake-gcs-server: %w", err)
	}
	s.StorageHost = s.Storage.URL()

	// From here on the client libraries of this process (and
	// fake-gcs-server's notification publisher) talk to the stack.
	s.restore = setenv(map[string]string{EnvPubSub: s.PubSubHost, EnvStorage: s.StorageHost})

	// The client outlives Start's ctx: it is the stack's until Close.
	if s.PubSub, err = pubsub.NewClient(context.WithoutCancel(ctx), s.Project); err != nil {
		return nil, fmt.Errorf("localstack: pubsub client: %w", err)
	}
	if err := s.createTopology(ctx, o.RealPubSub); err != nil {
		return nil, err
	}
	if err := s.createBucket(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func withDefaults(opts *Options) Options {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Project == "" {
		o.Project = DefaultProject
	}
	if o.Bucket == "" {
		o.Bucket = DefaultBucket
	}
	for _, a := range []*string{&o.PubSubAddr, &o.StorageAddr, &o.IAMAddr} {
		if *a == "" {
			*a = DefaultAddr
		}
	}
	return o
}

// startPstest serves pstest on addr; pstest panics when it cannot listen.
func startPstest(addr string) (srv *pstest.Server, err error) {
	defer func() {
		if v := recover(); v != nil {
			srv, err = nil, fmt.Errorf("localstack: pstest on %s: %v", addr, v)
		}
	}()
	return pstest.NewServerWithAddress(addr), nil
}

// createTopology creates the topics and subscriptions; those that exist are
// kept.
func (s *Stack) createTopology(ctx context.Context, real bool) error {
	t := s.Topology
	for _, id := range []string{t.Notifications, t.Results, t.Errors, t.DeadLetter, t.Jobs} {
		if err := pubsubemu.EnsureTopic(ctx, s.PubSub, id); err != nil {
			return fmt.Errorf("localstack: %w", err)
		}
	}
	worker := func(id, topic string) pubsubemu.Subscription {
		return pubsubemu.Subscription{
			ID: id, Topic: topic, AckDeadline: 30 * time.Second,
			// pstest's exactly-once support is partial; the real emulator's
			// matches the service, which is how production should run.
			ExactlyOnce:     real,
			DeadLetterTopic: t.DeadLetter, MaxDeliveryAttempts: 5,
			MinBackoff: time.Second, MaxBackoff: 10 * time.Second,
		}
	}
	subs := []pubsubemu.Subscription{
		worker(t.WorkerSubscription, t.Notifications),
		worker(t.JobsSubscription, t.Jobs),
		{ID: t.ResultsSubscription, Topic: t.Results},
		{ID: t.ErrorsSubscription, Topic: t.Errors},
		{ID: t.DeadLetterSubscription, Topic: t.DeadLetter},
	}
	for _, sub := range subs {
		if err := pubsubemu.EnsureSubscription(ctx, s.PubSub, sub); err != nil {
			return fmt.Errorf("localstack: %w", err)
		}
	}
	return nil
}

// createBucket creates the bucket and a notification config that publishes
// OBJECT_FINALIZE events (JSON_API_V1 payloads) to the notifications topic.
func (s *Stack) createBucket(ctx context.Context) error {
	s.Storage.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: s.Bucket})
	b := s.Storage.Client().Bucket(s.Bucket)
	existing, err := b.Notifications(ctx)
	if err != nil {
		return fmt.Errorf("localstack: list notifications: %w", err)
	}
	for _, n := range existing {
		if n.TopicProjectID == s.Project && n.TopicID == s.Topology.Notifications {
			return nil
		}
	}
	_, err = b.AddNotification(ctx, &storage.Notification{
		TopicProjectID: s.Project,
		TopicID:        s.Topology.Notifications,
		PayloadFormat:  storage.JSONPayload,
		EventTypes:     []string{storage.ObjectFinalizeEvent},
	})
	if err != nil {
		return fmt.Errorf("localstack: add notification: %w", err)
	}
	return nil
}

// Env returns the variables that point Google client libraries (and
// linkissuer) in other processes at the stack, as NAME=value.
func (s *Stack) Env() []string {
	return []string{EnvPubSub + "=" + s.PubSubHost, EnvStorage + "=" + s.StorageHost}
}

// TopicName returns the full name of topic id in the stack's project.
func (s *Stack) TopicName(id string) string { return pubsubemu.TopicName(s.Project, id) }

// Close stops everything Start started, in reverse order, and restores
// the process environment. ctx bounds the IAM emulator's shutdown. It is
// idempotent.
func (s *Stack) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.Storage != nil {
			s.Storage.Stop()
		}
		if s.PubSub != nil {
			if err := s.PubSub.Close(); err != nil {
				errs = append(errs, fmt.Errorf("pubsub client: %w", err))
			}
		}
		if s.pstest != nil {
			if err := s.pstest.Close(); err != nil {
				errs = append(errs, fmt.Errorf("pstest: %w", err))
			}
		}
		if s.emu != nil {
			s.emu.Stop()
		}
		if s.IAM != nil {
			if err := s.IAM.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("IAM emulator: %w", err))
			}
		}
		s.restore()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// setenv sets vars in the process environment and returns what restores
// the previous values.
func setenv(vars map[string]string) (restore func()) {
	type prev struct {
		value string
		set   bool
	}
	saved := map[string]prev{}
	for k, v := range vars {
		old, ok := os.LookupEnv(k)
		saved[k] = prev{old, ok}
		os.Setenv(k, v)
	}
	return func() {
		for k, p := range saved {
			if p.set {
				os.Setenv(k, p.value)
			} else {
				os.Unsetenv(k)
			}
		}
	}
}
