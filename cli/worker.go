package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/linkissuer/linkissuer/app"
	"github.com/linkissuer/linkissuer/config"
	"github.com/linkissuer/linkissuer/preflight"
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
with --jobs-topic, jobs above --jobs-split-above objects (20000) are split into
shards of --jobs-shard-size (10000) that any replica runs. A shard must finish
within --handler-timeout; raise it for large shards. One S3-compatible store
(--s3-region and the other --s3-* flags) serves jobs whose source is s3, and
their s3:// manifests.

With --durable-links (and --durable-keys, --public-url), each event's link also
carries a durable link to its object, https://HOST/l/TOKEN, living --durable-ttl
(at most --durable-max-ttl); serve --durable-links at that host follows it.`

// Worker implements `linkissuer worker` (pull mode): parse, validate,
// build, run.
func Worker(ctx context.Context, env Env, args []string) int {
	var c config.Worker
	var audit auditFlags
	var meta linkMetaFlags
	var d durableFlags
	fs := newFlagSet(env, "worker", workerUsage)
	c.Register(fs, env.Getenv)
	audit.register(fs, env)
	meta.register(fs, env)
	d.registerWorker(fs, env)
	if err := parseFlags(fs, env, args); err != nil {
		return ExitUsage
	}
	if err := d.check(); err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer worker: %v\n", err)
		return ExitUsage
	}
	if err := c.Validate(); err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer worker: %v\n", strings.ReplaceAll(err.Error(), "\n", "\nlinkissuer worker: "))
		return ExitUsage
	}
	pass, err := meta.passThrough()
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer worker: %v\n", err)
		return ExitUsage
	}
	svc, err := app.NewService(ctx, &c.Service, app.Options{LogOutput: env.Stderr, Audit: audit.recorderFunc(c.Cred.KeyFile), Pass: pass})
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer worker: %v\n", err)
		return ExitUsage
	}
	if d.enabled {
		m, err := d.minter(ctx, svc)
		if err != nil {
			svc.Close()
			fmt.Fprintf(env.Stderr, "linkissuer worker: %v\n", err)
			return ExitUsage
		}
		svc.Links.Durable = m
	}
	pull := app.PullOptions(&c)
	return runWithDeadline(ctx, c.Grace, svc.Log, func() int {
		defer svc.Close()
		return runWorker(ctx, svc, &c.Service, c.Subscription, pull)
	})
}

// runWorker is the worker from start-up checks to shutdown.
func runWorker(ctx context.Context, svc *app.Service, c *config.Service, subscription string, pull worker.PullOptions) int {
	ln, err := start(ctx, svc, c, subscription)
	if err != nil {
		return ExitFailure
	}
	// run ends when ctx does or when receiving fails for good; either way
	// the HTTP server stops with it.
	run, stop := context.WithCancel(ctx)
	defer stop()
	httpDone := serveHTTP(run, svc.Log, c.Grace, ln, worker.NewOpsMux(svc.Ready.Check, svc.Registry))
	svc.Ready.Set(nil)
	svc.Log.Info("worker started", zap.String("subscription", subscription), zap.String("signer", svc.Signer.Credential().Identity))
	pull.Health = svc.Ready
	err = worker.Pull(run, svc.Client.Subscriber(subscription), svc.Router, pull, svc.Log)
	svc.Ready.Set(errors.New("shutting down"))
	stop()
	svc.Log.Info("worker stopping: flushing publishes")
	svc.Publisher.Stop()
	<-httpDone
	if err != nil {
		svc.Log.Error("worker failed: "+err.Error(), zap.Error(err))
		return ExitFailure
	}
	svc.Log.Info("worker stopped")
	return ExitOK
}

// start binds the listen address and runs the preflight checks (see
// package preflight): every failure is logged with its fix, and start
// returns an error if any failed. subscription is empty for serve.
func start(ctx context.Context, svc *app.Service, c *config.Service, subscription string) (net.Listener, error) {
	ln, lerr := net.Listen("tcp", c.Addr)
	if lerr != nil {
		lerr = preflight.Fixf(lerr, "free the address or choose another with --addr (or $PORT)")
	}
	checks := []preflight.Check{preflight.Static("listen on "+c.Addr+" (--addr)", lerr)}
	ps := preflight.PubSub{Client: svc.Client, Project: c.Project}
	if subscription != "" {
		checks = append(checks, preflight.Subscription(ps, subscription, ""))
	}
	for _, t := range []struct{ flag, name string }{
		{"--results-topic", c.ResultsTopic}, {"--errors-topic", c.ErrorsTopic}, {"--jobs-topic", c.Jobs.Topic},
	} {
		if t.name != "" {
			checks = append(checks, preflight.Topic(ps, t.flag, t.name, ""))
		}
	}
	checks = append(checks, preflight.Signs(svc.Signer, nil))
	if c.Jobs.Enabled {
		checks = append(checks, preflight.StorageClient(svc.StorageErr))
	}
	results := preflight.Run(ctx, c.PreflightTimeout, checks...)
	for _, r := range results {
		switch r.Status {
		case preflight.OK:
			svc.Log.Debug("preflight ok", zap.String("check", r.Name))
		case preflight.Fail:
			svc.Log.Error("preflight failed: "+r.Name+": "+r.Err.Error(), zap.String("check", r.Name), zap.String("fix", r.Fix))
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

// serveHTTP serves h on ln until ctx ends, then shuts the server down
// within the grace period. The returned channel closes when it has stopped.
func serveHTTP(ctx context.Context, log *zap.Logger, grace time.Duration, ln net.Listener, h http.Handler) <-chan struct{} {
	done := make(chan struct{})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Info("serving health and metrics", zap.String("addr", ln.Addr().String()))
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", zap.Error(err))
		}
	}()
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return done
}
