package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/audit"
	"github.com/linkissuer/linkissuer/config"
	"github.com/linkissuer/linkissuer/gcsstore"
	"github.com/linkissuer/linkissuer/jobs"
	"github.com/linkissuer/linkissuer/links"
	"github.com/linkissuer/linkissuer/logging"
	"github.com/linkissuer/linkissuer/policy"
	"github.com/linkissuer/linkissuer/s3store"
	"github.com/linkissuer/linkissuer/sign"
	"github.com/linkissuer/linkissuer/tracing"
	"github.com/linkissuer/linkissuer/worker"
)

// Service is what `worker` and `serve` run: clients, signer, policy,
// publishers, link handler, router and jobs runner, built from one
// config.Service.
type Service struct {
	Log       *zap.Logger
	Registry  *prometheus.Registry
	Metrics   *worker.Metrics
	Ready     *worker.Readiness
	Client    *pubsub.Client
	Publisher *worker.TopicPublisher
	// Named publishes jobs' outputs to full topic names, then Publisher's.
	Named *worker.NamedTopics
	// Storage is the jobs handler's client; nil without one, and then
	// StorageErr says why (nil when jobs are off).
	Storage    *storage.Client
	StorageErr error
	Router     *worker.Router
	Links      *links.Issuer
	Signer     *Signer
	Policy     *policy.Policy
	// URLs signs the links (before the link cache).
	URLs *sign.URLSigner

	cfg     *config.Service
	closers []func()
}

// AuditFunc builds the audit recorder of a service, or returns nil when
// auditing is off; records are batched for up to delay. stop flushes it.
type AuditFunc func(client *pubsub.Client, signer sign.Signer, log *zap.Logger, delay time.Duration) (rec *audit.Recorder, stop func(), err error)

// Options are what a service takes besides its configuration.
type Options struct {
	// LogOutput receives the structured log (default os.Stderr).
	LogOutput io.Writer
	// Audit, if set, builds the audit recorder.
	Audit AuditFunc
	// Pass, if set, is what event links carry on from object metadata
	// and message attributes.
	Pass *links.PassThrough
	// WrapHandler, if set, wraps the router's handler (the link issuer);
	// WrapPublisher, if set, wraps the publisher the router publishes its
	// outputs to. The load tests time what passes through them; the
	// commands leave them nil.
	WrapHandler   func(worker.Handler) worker.Handler
	WrapPublisher func(worker.Publisher) worker.Publisher
}

// NewService builds a service from c, which should have passed Validate.
// On error nothing is left open.
func NewService(ctx context.Context, c *config.Service, o Options) (_ *Service, err error) {
	out := o.LogOutput
	if out == nil {
		out = os.Stderr
	}
	log, err := logging.New(out, c.LogLevel)
	if err != nil {
		return nil, err
	}
	if c.Project == "" {
		return nil, errors.New("--project (or $GOOGLE_CLOUD_PROJECT) is required")
	}
	if c.ResultsTopic == "" || c.ErrorsTopic == "" {
		return nil, errors.New("--results-topic and --errors-topic are required")
	}
	s := &Service{Log: log, cfg: c}
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()
	if s.Policy, err = Policy(&c.Policy); err != nil {
		return nil, err
	}
	opts, err := SignOptions(&c.URL)
	if err != nil {
		return nil, err
	}
	if s.Signer, err = NewSigner(ctx, &c.Cred, log); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Signer.Close)
	s.Ready = worker.NewReadiness()
	var signer sign.Signer = s.Signer
	if s.Signer.Engine != nil {
		signer = observedSigner{Signer: signer, health: s.Ready}
	}
	if s.URLs, err = sign.New(signer, opts); err != nil {
		return nil, err
	}
	if s.Policy.MaxExpiry() > s.URLs.MaxExpiry() {
		err := fmt.Errorf("--max-expiry %s exceeds what the signer allows (%s)", s.Policy.MaxExpiry(), s.URLs.MaxExpiry())
		if s.URLs.MaxExpiry() == sign.KeylessExpiry {
			err = fmt.Errorf("%w; --allow-long-keyless lifts the keyless cap", err)
		}
		return nil, err
	}
	s.Registry = prometheus.NewRegistry()
	s.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.Metrics = worker.NewMetrics(s.Registry)
	if s.Signer.Engine != nil {
		s.Registry.MustRegister(worker.NewSignerCollector(s.Signer.Engine.Stats))
	}
	if c.Trace {
		exp, err := tracing.CloudTrace(c.Project)
		if err != nil {
			return nil, err
		}
		stop := tracing.Start(exp)
		s.closers = append(s.closers, func() {
			tctx, cancel := context.WithTimeout(context.Background(), c.Grace)
			defer cancel()
			if err := stop(tctx); err != nil {
				log.Warn("flushing traces", zap.Error(err))
			}
		})
		signer = tracing.Signer(signer)
		if s.URLs, err = sign.New(signer, opts); err != nil {
			return nil, err
		}
	}
	if s.Client, err = pubsub.NewClientWithConfig(ctx, c.Project, &pubsub.ClientConfig{EnableOpenTelemetryTracing: c.Trace}); err != nil {
		return nil, fmt.Errorf("pubsub client: %w", err)
	}
	s.closers = append(s.closers, func() { s.Client.Close() })
	settings := pubsub.PublishSettings{DelayThreshold: c.PublishDelay, CountThreshold: 100}
	s.Publisher = worker.NewTopicPublisher(s.Client, map[string]string{
		worker.TopicResults: c.ResultsTopic,
		worker.TopicErrors:  c.ErrorsTopic,
		worker.TopicJobs:    c.Jobs.Topic,
	}, settings, s.Metrics)
	s.Publisher.ReportTo(s.Ready)
	// Jobs name their notify and output topics in full; NamedTopics
	// publishes those and passes logical names on to Publisher.
	s.Named = worker.NewNamedTopics(s.Client, s.Publisher, settings)
	s.closers = append(s.closers, s.Named.Stop)
	linkSigner, err := LinkSigner(&c.LinkCache, s.URLs)
	if err != nil {
		return nil, err
	}
	s.Links = &links.Issuer{Signer: linkSigner, Policy: s.Policy, Pass: o.Pass}
	var jobsAudit jobs.Auditor
	if o.Audit != nil {
		rec, stop, err := o.Audit(s.Client, s.Signer, log, c.PublishDelay)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, stop)
		if rec != nil {
			s.Links.Audit, jobsAudit = rec, rec
			s.Registry.MustRegister(rec.Collectors()...)
		}
	}
	if c.Jobs.Enabled {
		s.Storage, s.StorageErr = StorageClient(ctx, c.URL.EmulatorHost)
	}
	if s.Storage != nil {
		s.closers = append(s.closers, func() { s.Storage.Close() })
		runner, err := JobsRunner(c, s.Storage, s.URLs, s.Policy, s.Named, s.Signer, jobsAudit, log)
		if err != nil {
			return nil, err
		}
		s.Links.Jobs = runner.Handle
	}
	var handle worker.Handler = s.Links.Handle
	if o.WrapHandler != nil {
		handle = o.WrapHandler(handle)
	}
	var pub worker.Publisher = s.Named
	if o.WrapPublisher != nil {
		pub = o.WrapPublisher(pub)
	}
	s.Router, err = worker.NewRouter(handle, pub, worker.RouterOptions{
		DeadLetter: worker.DeadLetters(instance(c.Instance), nil),
		Logger:     log,
		Metrics:    s.Metrics,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// SyncLinks is the issuer behind POST /v1/links (serve --sync-links):
// the service's links, with object lookups through its storage client
// when it has one.
func (s *Service) SyncLinks() *links.Sync {
	issuer := &links.Sync{Links: s.Links}
	if s.Storage != nil {
		issuer.Objects = links.GCSObjects{Client: s.Storage}
	}
	return issuer
}

// instance names this replica in dead letters: the configured name, else
// the host name.
func instance(name string) string {
	if name != "" {
		return name
	}
	h, _ := os.Hostname()
	return h
}

// Close releases what NewService built, last first, and flushes the log.
// The result publisher is stopped by the caller, once the router is done
// with it.
func (s *Service) Close() {
	s.closeAll()
	_ = s.Log.Sync()
}

func (s *Service) closeAll() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// JobsRunner builds the bulk export job handler of a service: jobs are
// split only when c.Jobs.Topic is set; an S3-compatible store, if
// configured, serves jobs whose source names it; every other source is
// GCS. Jobs naming an unconfigured store are dead-lettered, so a message
// cannot aim the worker's key elsewhere.
func JobsRunner(c *config.Service, gcs *storage.Client, urls *sign.URLSigner, pol *policy.Policy, pub worker.Publisher, signer *Signer, aud jobs.Auditor, log *zap.Logger) (*jobs.Runner, error) {
	store := gcsstore.New(gcs)
	gcsBackend := jobs.Backend{Source: store, Signer: urls, Store: store}
	o := jobs.Options{
		Backends: jobs.GCSOnly(gcsBackend), Policy: pol, Publisher: pub,
		StateURI:    c.Jobs.State,
		Concurrency: c.Jobs.Concurrency,
		Audit:       aud,
		Logger:      log,
	}
	topics := []string{c.Project}
	if c.Jobs.Topics != "" {
		topics = config.Split(c.Jobs.Topics)
	}
	var err error
	if o.Topics, err = jobs.NewTopicAllow(topics); err != nil {
		return nil, fmt.Errorf("--jobs-topics / LINKISSUER_JOBS_TOPICS: %w", err)
	}
	if tc, ok := pub.(jobs.TopicChecker); ok {
		o.TopicChecker = tc
	}
	if o.Concurrency == 0 && signer != nil && signer.Engine != nil {
		o.Concurrency = 2 * signer.Engine.Options().MaxInFlight
	}
	if c.Jobs.Topic != "" {
		o.Split = &jobs.SplitOptions{Above: c.Jobs.SplitAbove, ShardSize: c.Jobs.ShardSize}
	}
	s3cfg, err := S3Config(&c.S3)
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
	if c.Jobs.ManifestAllow != "" {
		if o.ManifestPolicy, err = manifestPolicy(c.Jobs.ManifestAllow, pol); err != nil {
			return nil, fmt.Errorf("--jobs-manifest-allow / LINKISSUER_JOBS_MANIFEST_ALLOW: %w", err)
		}
	}
	return jobs.New(o)
}

// S3Config is the S3-compatible store c configures, its secret read, or
// nil when c names none (no region).
func S3Config(c *config.S3) (*s3store.Config, error) {
	if c.Region == "" {
		return nil, nil
	}
	key, err := s3store.ReadKey(c.AccessID, c.SecretFile, c.Secret)
	if err != nil {
		return nil, err
	}
	sc := &s3store.Config{Endpoint: c.Endpoint, Region: c.Region, Style: c.Style, Key: key}
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return sc, nil
}
