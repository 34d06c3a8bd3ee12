package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/jobs"
	"github.com/linkissuer/linkissuer/logging"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/s3store"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/worker"
)

const workerUsage = `Usage: linkissuer worker --subscription SUB --results-topic T --errors-topic T --allow RULES [flags]

Pulls GCS notifications (and job messages) from a Pub/Sub subscription, issues a
signed link for each finalized object that policy allows, publishes it as
linkissuer.link.v1 to the results topic, and acks only after the publish is
confirmed. Bad or disallowed messages go to the errors topic with a reason.
Serves /healthz, /readyz and /metrics on --addr. SIGTERM stops pulling and lets
in-flight messages finish within --grace.

Bulk export jobs (linkissuer.job.v1, see "linkissuer submit") run here too:
manifests are written with STORAGE_EMULATOR_HOST or the ambient credentials;
with --jobs-topic, jobs above $LINKISSUER_JOBS_SPLIT_ABOVE objects (20000) are
split into shards of $LINKISSUER_JOBS_SHARD_SIZE (10000) that any replica runs.
A shard must finish within --handler-timeout; raise it for large shards.

Job settings from the environment only: $LINKISSUER_JOBS_STATE (gs://BUCKET/PREFIX
holding topic-output jobs' markers), $LINKISSUER_JOBS_CONCURRENCY (objects in
flight per job), $LINKISSUER_JOBS_MANIFEST_ALLOW (rules for where manifests may
be written; default --allow). One S3-compatible store serves jobs whose source
is s3, and their s3:// manifests: $LINKISSUER_S3_REGION (unset: no S3 store),
$LINKISSUER_S3_ENDPOINT (empty: AWS), $LINKISSUER_S3_STYLE (path or virtual),
$LINKISSUER_S3_ACCESS_ID with $LINKISSUER_S3_SECRET_FILE or $LINKISSUER_S3_SECRET.`

// Worker implements `linkissuer worker` (pull mode).
func Worker(ctx context.Context, env Env, args []string) int {
	var f serviceFlags
	var subscription string
	var pull worker.PullOptions
	fs := newFlagSet(env, "worker", workerUsage)
	f.register(fs, env)
	fs.StringVar(&subscription, "subscription", envString(env, "LINKISSUER_SUBSCRIPTION", ""), "subscription to pull from [$LINKISSUER_SUBSCRIPTION]")
	fs.IntVar(&pull.MaxOutstanding, "max-outstanding", envInt(env, "LINKISSUER_MAX_OUTSTANDING", 1000), "flow control: messages held at once [$LINKISSUER_MAX_OUTSTANDING]")
	fs.IntVar(&pull.MaxOutstandingBytes, "max-outstanding-bytes", envInt(env, "LINKISSUER_MAX_OUTSTANDING_BYTES", 64<<20), "flow control: bytes held at once [$LINKISSUER_MAX_OUTSTANDING_BYTES]")
	fs.IntVar(&pull.Streams, "streams", envInt(env, "LINKISSUER_STREAMS", 2), "StreamingPull streams [$LINKISSUER_STREAMS]")
	fs.DurationVar(&pull.MaxExtension, "max-extension", envDuration(env, "LINKISSUER_MAX_EXTENSION", 10*time.Minute), "longest a message's ack deadline is extended [$LINKISSUER_MAX_EXTENSION]")
	fs.DurationVar(&pull.HandlerTimeout, "handler-timeout", envDuration(env, "LINKISSUER_HANDLER_TIMEOUT", time.Minute), "bound on one message's processing [$LINKISSUER_HANDLER_TIMEOUT]")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if subscription == "" {
		fmt.Fprintln(env.Stderr, "linkissuer worker: --subscription is required")
		return ExitUsage
	}
	pull.Grace = f.grace
	svc, err := f.build(ctx, env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer worker: %v\n", err)
		return ExitUsage
	}
	defer svc.close()

	httpDone := svc.serveHTTP(ctx, f.addr, worker.NewOpsMux(svc.ready.Check, svc.registry))
	svc.ready.Set(nil)
	svc.log.Info("worker started", zap.String("subscription", subscription), zap.String("signer", svc.cred.signer.Credential().Identity))
	err = worker.Pull(ctx, svc.client.Subscriber(subscription), svc.router, pull, svc.log)
	svc.ready.Set(errors.New("shutting down"))
	svc.log.Info("worker stopping: flushing publishes")
	svc.publisher.Stop()
	<-httpDone
	if err != nil {
		svc.log.Error("worker failed", zap.Error(err))
		return ExitFailure
	}
	svc.log.Info("worker stopped")
	return ExitOK
}

// service is what `worker` and `serve` run: built from serviceFlags.
type service struct {
	log       *zap.Logger
	registry  *prometheus.Registry
	metrics   *worker.Metrics
	ready     *worker.Readiness
	client    *pubsub.Client
	publisher *worker.TopicPublisher
	// named publishes jobs' outputs to full topic names, then publisher's.
	named *jobs.NamedTopics
	// storage is the jobs handler's client; nil without one.
	storage *storage.Client
	router  *worker.Router
	links   *worker.LinkHandler
	cred    *credentials
	grace   time.Duration
	// stopAudit flushes the audit publisher.
	stopAudit func()
}

func (f *serviceFlags) build(ctx context.Context, env Env) (*service, error) {
	log, err := logging.New(env.Stderr, f.logLevel)
	if err != nil {
		return nil, err
	}
	if f.project == "" {
		return nil, errors.New("--project (or $GOOGLE_CLOUD_PROJECT) is required")
	}
	if f.resultsTopic == "" || f.errorsTopic == "" {
		return nil, errors.New("--results-topic and --errors-topic are required")
	}
	pol, err := f.policy()
	if err != nil {
		return nil, err
	}
	opts, err := f.signOptions(env)
	if err != nil {
		return nil, err
	}
	cred, err := loadCredentials(ctx, env, &f.cred)
	if err != nil {
		return nil, err
	}
	urls, err := sign.New(cred.signer, opts)
	if err != nil {
		return nil, err
	}
	if pol.MaxExpiry() > urls.MaxExpiry() {
		err := fmt.Errorf("--max-expiry %s exceeds what the signer allows (%s)", pol.MaxExpiry(), urls.MaxExpiry())
		if urls.MaxExpiry() == sign.KeylessExpiry {
			err = fmt.Errorf("%w; --allow-long-keyless lifts the keyless cap", err)
		}
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := worker.NewMetrics(reg)
	if cred.engine != nil {
		reg.MustRegister(worker.NewSignerCollector(cred.engine.Stats))
	}
	client, err := pubsub.NewClient(ctx, f.project)
	if err != nil {
		return nil, fmt.Errorf("pubsub client: %w", err)
	}
	pub := worker.NewTopicPublisher(client, map[string]string{
		worker.TopicResults: f.resultsTopic,
		worker.TopicErrors:  f.errorsTopic,
		worker.TopicJobs:    f.jobsTopic,
	}, pubsub.PublishSettings{DelayThreshold: f.publishDelay, CountThreshold: 100}, metrics)
	// Jobs name their notify and output topics in full; NamedTopics
	// publishes those and passes logical names on to pub.
	named := jobs.NewNamedTopics(client, pub, pubsub.PublishSettings{DelayThreshold: f.publishDelay, CountThreshold: 100})
	linkSigner, err := f.linkCache.wrap(urls)
	if err != nil {
		client.Close()
		return nil, err
	}
	links := &worker.LinkHandler{Signer: linkSigner, Policy: pol}
	rec, stopAudit, err := f.audit.recorder(client, cred, f.cred.keyFile, log, pubsub.PublishSettings{DelayThreshold: f.publishDelay, CountThreshold: 100})
	if err != nil {
		client.Close()
		return nil, err
	}
	if rec != nil {
		links.Audit = rec
	}
	gcs, err := storageClient(ctx, env)
	if err != nil {
		log.Warn("no Cloud Storage client: job messages will be dead-lettered", zap.Error(err))
	} else {
		runner, err := f.jobsRunner(env, gcs, urls, pol, named, cred, log)
		if err != nil {
			gcs.Close()
			stopAudit()
			client.Close()
			return nil, err
		}
		links.Jobs = runner.Handle
	}
	router, err := worker.NewRouter(links.Handle, named, worker.RouterOptions{
		DeadLetter: worker.DeadLetters(workerID(), nil),
		Logger:     log,
		Metrics:    metrics,
	})
	if err != nil {
		if gcs != nil {
			gcs.Close()
		}
		stopAudit()
		client.Close()
		return nil, err
	}
	return &service{stopAudit: stopAudit, log: log, registry: reg, metrics: metrics, ready: worker.NewReadiness(), client: client,
		publisher: pub, named: named, storage: gcs, router: router, links: links, cred: cred, grace: f.grace}, nil
}

// jobsRunner builds the bulk export job handler. Knobs come from the
// environment: LINKISSUER_JOBS_SPLIT_ABOVE and LINKISSUER_JOBS_SHARD_SIZE
// (jobs are split only when --jobs-topic is set), LINKISSUER_JOBS_STATE
// (gs://BUCKET/PREFIX for topic-output jobs' state and error rows),
// LINKISSUER_JOBS_MANIFEST_ALLOW (rules for manifest locations; default
// --allow) and LINKISSUER_JOBS_CONCURRENCY (objects in flight per job).
func (f *serviceFlags) jobsRunner(env Env, gcs *storage.Client, urls *sign.URLSigner, pol *policy.Policy, pub worker.Publisher, cred *credentials, log *zap.Logger) (*jobs.Runner, error) {
	store := jobs.NewGCS(gcs)
	o := jobs.Options{
		Source: store, Signer: urls, Store: store, Policy: pol, Publisher: pub,
		StateURI:    env.Getenv("LINKISSUER_JOBS_STATE"),
		Concurrency: envInt(env, "LINKISSUER_JOBS_CONCURRENCY", 0),
		Logger:      log,
	}
	if o.Concurrency == 0 && cred.engine != nil {
		o.Concurrency = 2 * cred.engine.Options().MaxInFlight
	}
	if f.jobsTopic != "" {
		o.Split = &jobs.SplitOptions{
			Above:     envInt(env, "LINKISSUER_JOBS_SPLIT_ABOVE", 0),
			ShardSize: envInt(env, "LINKISSUER_JOBS_SHARD_SIZE", 0),
		}
	}
	// An S3-compatible source, if configured ($LINKISSUER_S3_REGION and the
	// rest; see s3store.ConfigFromEnv), serves jobs whose source names it;
	// every other source is GCS. Jobs naming an unconfigured store are
	// dead-lettered, so a message cannot aim the worker's key elsewhere.
	s3cfg, err := s3store.ConfigFromEnv(env.Getenv)
	if err != nil {
		return nil, fmt.Errorf("S3 store: %w", err)
	}
	if s3cfg != nil {
		backends, err := s3store.NewBackends([]s3store.Config{*s3cfg}, nil)
		if err != nil {
			return nil, fmt.Errorf("S3 store: %w", err)
		}
		o.Backends = backends.Func(jobs.Backend{Source: store, Signer: urls})
		o.ManifestSigner = urls
	}
	if rules := env.Getenv("LINKISSUER_JOBS_MANIFEST_ALLOW"); rules != "" {
		mp, err := policy.New(policy.Config{Allow: splitList(rules), MaxExpiry: pol.MaxExpiry(), DefaultExpiry: min(15*time.Minute, pol.MaxExpiry())})
		if err != nil {
			return nil, fmt.Errorf("LINKISSUER_JOBS_MANIFEST_ALLOW: %w", err)
		}
		o.ManifestPolicy = mp
	}
	return jobs.New(o)
}

func (s *service) close() {
	s.named.Stop()
	s.stopAudit()
	if s.storage != nil {
		s.storage.Close()
	}
	s.client.Close()
	s.cred.close()
	_ = s.log.Sync()
}

// serveHTTP serves h on addr until ctx ends, then shuts the server down
// within the grace period. The returned channel closes when it has stopped.
func (s *service) serveHTTP(ctx context.Context, addr string, h http.Handler) <-chan struct{} {
	done := make(chan struct{})
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.log.Error("cannot listen; health and metrics are off", zap.String("addr", addr), zap.Error(err))
		close(done)
		return done
	}
	s.log.Info("serving health and metrics", zap.String("addr", ln.Addr().String()))
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server", zap.Error(err))
		}
	}()
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.grace)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return done
}

// workerID names this replica in dead letters: the Cloud Run revision and
// instance, the pod name, or the host name.
func workerID() string {
	for _, k := range []string{"K_REVISION", "HOSTNAME"} {
		if v := os.Getenv(k); v != "" {
			return strings.TrimSpace(v)
		}
	}
	h, _ := os.Hostname()
	return h
}
