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

	"github.com/linkissuer/linkissuer/gcsstore"
	"github.com/linkissuer/linkissuer/jobs"
	"github.com/linkissuer/linkissuer/links"
	"github.com/linkissuer/linkissuer/logging"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/preflight"
	"github.com/linkissuer/linkissuer/s3store"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/tracing"
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
	if err := parseFlags(fs, env, args); err != nil {
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
	return runWithDeadline(ctx, f.grace, svc.log, func() int {
		defer svc.close()
		return svc.runWorker(ctx, f, subscription, pull)
	})
}

// runWorker is the worker from start-up checks to shutdown.
func (svc *service) runWorker(ctx context.Context, f serviceFlags, subscription string, pull worker.PullOptions) int {
	ln, err := svc.start(ctx, f, subscription)
	if err != nil {
		return ExitFailure
	}
	// run ends when ctx does or when receiving fails for good; either way
	// the HTTP server stops with it.
	run, stop := context.WithCancel(ctx)
	defer stop()
	httpDone := svc.serveHTTP(run, ln, worker.NewOpsMux(svc.ready.Check, svc.registry))
	svc.ready.Set(nil)
	svc.log.Info("worker started", zap.String("subscription", subscription), zap.String("signer", svc.cred.signer.Credential().Identity))
	pull.Health = svc.ready
	err = worker.Pull(run, svc.client.Subscriber(subscription), svc.router, pull, svc.log)
	svc.ready.Set(errors.New("shutting down"))
	stop()
	svc.log.Info("worker stopping: flushing publishes")
	svc.publisher.Stop()
	<-httpDone
	if err != nil {
		svc.log.Error("worker failed: "+err.Error(), zap.Error(err))
		return ExitFailure
	}
	svc.log.Info("worker stopped")
	return ExitOK
}

// start binds the listen address and runs the preflight checks (see
// package preflight): every failure is logged with its fix, and start
// returns an error if any failed. subscription is empty for serve.
func (svc *service) start(ctx context.Context, f serviceFlags, subscription string) (net.Listener, error) {
	ln, lerr := net.Listen("tcp", f.addr)
	if lerr != nil {
		lerr = preflight.Fixf(lerr, "free the address or choose another with --addr (or $PORT)")
	}
	checks := []preflight.Check{preflight.Static("listen on "+f.addr+" (--addr)", lerr)}
	ps := preflight.PubSub{Client: svc.client, Project: f.project}
	if subscription != "" {
		checks = append(checks, preflight.Subscription(ps, subscription, ""))
	}
	for _, t := range []struct{ flag, name string }{
		{"--results-topic", f.resultsTopic}, {"--errors-topic", f.errorsTopic}, {"--jobs-topic", f.jobsTopic},
	} {
		if t.name != "" {
			checks = append(checks, preflight.Topic(ps, t.flag, t.name, ""))
		}
	}
	checks = append(checks, preflight.Signs(svc.cred.signer, nil))
	if f.jobs {
		checks = append(checks, preflight.StorageClient(svc.storageErr))
	}
	results := preflight.Run(ctx, f.preflightTimeout, checks...)
	for _, r := range results {
		switch r.Status {
		case preflight.OK:
			svc.log.Debug("preflight ok", zap.String("check", r.Name))
		case preflight.Fail:
			svc.log.Error("preflight failed: "+r.Name+": "+r.Err.Error(), zap.String("check", r.Name), zap.String("fix", r.Fix))
		}
	}
	if err := preflight.Err(results); err != nil {
		if ln != nil {
			ln.Close()
		}
		return nil, err
	}
	return ln, nil
}

// runWithDeadline runs work, which must stop once ctx ends, and returns its
// exit code. If work has not returned grace after ctx ended (a client that
// hangs, a call that ignores its context), it gives up on it: the process
// is about to exit, which ends whatever work still runs.
func runWithDeadline(ctx context.Context, grace time.Duration, log *zap.Logger, work func() int) int {
	done := make(chan int, 1)
	go func() { done <- work() }()
	select {
	case code := <-done:
		return code
	case <-ctx.Done():
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case code := <-done:
		return code
	case <-t.C:
		log.Error("shutdown did not finish within --grace; exiting anyway", zap.Duration("grace", grace))
		_ = log.Sync()
		return ExitFailure
	}
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
	named *worker.NamedTopics
	// storage is the jobs handler's client; nil without one, and then
	// storageErr says why (nil when --jobs=false).
	storage    *storage.Client
	storageErr error
	router     *worker.Router
	links      *links.Issuer
	cred       *credentials
	grace      time.Duration
	// stopAudit flushes the audit publisher.
	stopAudit func()
	// stopTracing flushes and stops tracing (a no-op without --trace).
	stopTracing func(context.Context) error
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
	ready := worker.NewReadiness()
	var signer sign.Signer = cred.signer
	if cred.engine != nil {
		signer = observedSigner{Signer: signer, health: ready}
	}
	urls, err := sign.New(signer, opts)
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
	stopTracing := func(context.Context) error { return nil }
	if f.trace {
		exp, err := tracing.CloudTrace(f.project)
		if err != nil {
			return nil, err
		}
		stopTracing = tracing.Start(exp)
		signer = tracing.Signer(signer)
		if urls, err = sign.New(signer, opts); err != nil {
			return nil, err
		}
	}
	client, err := pubsub.NewClientWithConfig(ctx, f.project, &pubsub.ClientConfig{EnableOpenTelemetryTracing: f.trace})
	if err != nil {
		return nil, fmt.Errorf("pubsub client: %w", err)
	}
	pub := worker.NewTopicPublisher(client, map[string]string{
		worker.TopicResults: f.resultsTopic,
		worker.TopicErrors:  f.errorsTopic,
		worker.TopicJobs:    f.jobsTopic,
	}, pubsub.PublishSettings{DelayThreshold: f.publishDelay, CountThreshold: 100}, metrics)
	pub.ReportTo(ready)
	// Jobs name their notify and output topics in full; NamedTopics
	// publishes those and passes logical names on to pub.
	named := worker.NewNamedTopics(client, pub, pubsub.PublishSettings{DelayThreshold: f.publishDelay, CountThreshold: 100})
	linkSigner, err := f.linkCache.wrap(urls)
	if err != nil {
		client.Close()
		return nil, err
	}
	pass, err := f.linkMeta.passThrough()
	if err != nil {
		client.Close()
		return nil, err
	}
	issuer := &links.Issuer{Signer: linkSigner, Policy: pol, Pass: pass}
	rec, stopAudit, err := f.audit.recorder(client, cred, f.cred.keyFile, log, f.publishDelay)
	if err != nil {
		client.Close()
		return nil, err
	}
	var jobsAudit jobs.Auditor
	if rec != nil {
		issuer.Audit, jobsAudit = rec, rec
		reg.MustRegister(rec.Collectors()...)
	}
	var gcs *storage.Client
	var storageErr error
	if f.jobs {
		gcs, storageErr = storageClient(ctx, env)
	}
	if gcs != nil {
		runner, err := f.jobsRunner(env, gcs, urls, pol, named, cred, jobsAudit, log)
		if err != nil {
			gcs.Close()
			stopAudit()
			client.Close()
			return nil, err
		}
		issuer.Jobs = runner.Handle
	}
	router, err := worker.NewRouter(issuer.Handle, named, worker.RouterOptions{
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
	return &service{stopAudit: stopAudit, log: log, registry: reg, metrics: metrics, ready: ready, client: client,
		publisher: pub, named: named, storage: gcs, storageErr: storageErr, router: router, links: issuer, cred: cred, grace: f.grace, stopTracing: stopTracing}, nil
}

// jobsRunner builds the bulk export job handler. Knobs come from the
// environment: LINKISSUER_JOBS_SPLIT_ABOVE and LINKISSUER_JOBS_SHARD_SIZE
// (jobs are split only when --jobs-topic is set), LINKISSUER_JOBS_STATE
// (gs://BUCKET/PREFIX for topic-output jobs' state and error rows),
// LINKISSUER_JOBS_MANIFEST_ALLOW (rules for manifest locations; default
// --allow), LINKISSUER_JOBS_TOPICS (projects, or full topic names, that
// jobs may name as notify_topic or output.topic; default --project) and
// LINKISSUER_JOBS_CONCURRENCY (objects in flight per job).
func (f *serviceFlags) jobsRunner(env Env, gcs *storage.Client, urls *sign.URLSigner, pol *policy.Policy, pub worker.Publisher, cred *credentials, aud jobs.Auditor, log *zap.Logger) (*jobs.Runner, error) {
	store := gcsstore.New(gcs)
	knobs, err := jobKnobsFromEnv(env)
	if err != nil {
		return nil, err
	}
	gcsBackend := jobs.Backend{Source: store, Signer: urls, Store: store}
	o := jobs.Options{
		Backends: jobs.GCSOnly(gcsBackend), Policy: pol, Publisher: pub,
		StateURI:    env.Getenv("LINKISSUER_JOBS_STATE"),
		Concurrency: knobs.concurrency,
		Audit:       aud,
		Logger:      log,
	}
	topics := []string{f.project}
	if v := env.Getenv("LINKISSUER_JOBS_TOPICS"); v != "" {
		topics = splitList(v)
	}
	if o.Topics, err = jobs.NewTopicAllow(topics); err != nil {
		return nil, fmt.Errorf("LINKISSUER_JOBS_TOPICS: %w", err)
	}
	if tc, ok := pub.(jobs.TopicChecker); ok {
		o.TopicChecker = tc
	}
	if o.Concurrency == 0 && cred.engine != nil {
		o.Concurrency = 2 * cred.engine.Options().MaxInFlight
	}
	if f.jobsTopic != "" {
		o.Split = &jobs.SplitOptions{Above: knobs.splitAbove, ShardSize: knobs.shardSize}
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
		o.Backends = backends.Func(gcsBackend)
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

// jobKnobs are the job settings that come from the environment only.
type jobKnobs struct{ concurrency, splitAbove, shardSize int }

// jobKnobsFromEnv reads them; a value that does not parse is an *EnvError.
func jobKnobsFromEnv(env Env) (jobKnobs, error) {
	var k jobKnobs
	var errs []error
	for _, v := range []struct {
		key string
		dst *int
	}{
		{"LINKISSUER_JOBS_CONCURRENCY", &k.concurrency},
		{"LINKISSUER_JOBS_SPLIT_ABOVE", &k.splitAbove},
		{"LINKISSUER_JOBS_SHARD_SIZE", &k.shardSize},
	} {
		n, err := envLookup(env, v.key, 0, parseEnvInt)
		*v.dst = n
		errs = append(errs, err)
	}
	return k, errors.Join(errs...)
}

func (s *service) close() {
	s.named.Stop()
	s.stopAudit()
	if s.storage != nil {
		s.storage.Close()
	}
	s.client.Close()
	s.cred.close()
	tctx, cancel := context.WithTimeout(context.Background(), s.grace)
	defer cancel()
	if err := s.stopTracing(tctx); err != nil {
		s.log.Warn("flushing traces", zap.Error(err))
	}
	_ = s.log.Sync()
}

// serveHTTP serves h on ln until ctx ends, then shuts the server down
// within the grace period. The returned channel closes when it has stopped.
func (s *service) serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) <-chan struct{} {
	done := make(chan struct{})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
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

// observedSigner reports each remote signature's outcome to /readyz as
// component "signer".
type observedSigner struct {
	sign.Signer
	health worker.HealthObserver
}

func (o observedSigner) Sign(ctx context.Context, scope sign.Scope, stringToSign []byte) ([]byte, error) {
	sig, err := o.Signer.Sign(ctx, scope, stringToSign)
	o.health.Observe("signer", err)
	return sig, err
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
