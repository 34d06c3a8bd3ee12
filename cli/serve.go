package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/linkissuer/linkissuer/app"
	"github.com/linkissuer/linkissuer/config"
	"github.com/linkissuer/linkissuer/durable"
	"github.com/linkissuer/linkissuer/worker"
)

const serveUsage = `Usage: linkissuer serve --results-topic T --errors-topic T --allow RULES --push-emails SA[,SA] [flags]

Push mode for Cloud Run: POST /pubsub/push takes Pub/Sub push deliveries,
POST /events takes Eventarc CloudEvents, POST /v1/links (--sync-links) issues
links synchronously, one or a batch of up to 1000; POST /v1/durable-links and
GET /l/TOKEN (--durable-links) mint and follow durable links. Requests must carry a
Google-signed OIDC token from one of --push-emails for one of --audiences or
the --service-url endpoints (the audience is never taken from the request's
Host; Cloud Run does not put the service URL in the environment, so set one
of them). Bodies are bounded per request (--max-body-bytes, 413) and in sum
(--max-bytes-in-flight, 429 with Retry-After). The status code tells Pub/Sub
whether to redeliver. Also serves /healthz, /readyz and /metrics.`

// Serve implements `linkissuer serve` (push mode): parse, validate,
// build, run.
func Serve(ctx context.Context, env Env, args []string) int {
	var c config.Serve
	var audit auditFlags
	var d durableFlags
	var meta linkMetaFlags
	fs := newFlagSet(env, "serve", serveUsage)
	c.Register(fs, env.Getenv)
	audit.register(fs, env)
	meta.register(fs, env)
	d.register(fs, env)
	if err := parseFlags(fs, env, args); err != nil {
		return ExitUsage
	}
	if err := d.check(); err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer serve: %v\n", err)
		return ExitUsage
	}
	if err := c.Validate(); err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer serve: %v\n", strings.ReplaceAll(err.Error(), "\n", "\nlinkissuer serve: "))
		return ExitUsage
	}
	auds, err := pushAudiences(c.Audiences, c.ServiceURL, c.InsecureSkipAuth)
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer serve: %v\n", err)
		return ExitUsage
	}
	pass, err := meta.passThrough()
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer serve: %v\n", err)
		return ExitUsage
	}
	svc, err := app.NewService(ctx, &c.Service, app.Options{LogOutput: env.Stderr, Audit: audit.recorderFunc(c.Cred.KeyFile), Pass: pass})
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer serve: %v\n", err)
		return ExitUsage
	}
	return runWithDeadline(ctx, c.Grace, svc.Log, func() int {
		defer svc.Close()
		return runServe(ctx, env, svc, &c, auds, &d)
	})
}

// runServe is serve from start-up checks to shutdown.
func runServe(ctx context.Context, env Env, svc *app.Service, c *config.Serve, audiences []string, d *durableFlags) int {
	opts := &worker.PushOptions{
		Audiences:        audiences,
		MaxBodyBytes:     int64(c.MaxBodyBytes),
		MaxBytesInFlight: int64(c.MaxBytesInFlight),
		AllowedEmails:    splitList(c.PushEmails),
		InsecureSkipAuth: c.InsecureSkipAuth,
		HandlerTimeout:   c.Push.HandlerTimeout,
		Logger:           svc.Log,
		Project:          c.Project,
		Metrics:          worker.NewHTTPMetrics(svc.Registry),
	}
	if c.SyncLinks {
		opts.Links = svc.SyncLinks()
	}
	push, err := worker.NewPushServer(svc.Router, opts)
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer serve: %v\n", err)
		return ExitUsage
	}
	ln, err := start(ctx, svc, &c.Service, "")
	if err != nil {
		return ExitFailure
	}
	ready := svc.Ready.Check
	var durableLinks *durable.Server
	if d.enabled {
		if durableLinks, err = d.server(ctx, env, svc, push); err != nil {
			fmt.Fprintf(env.Stderr, "linkissuer serve: %v\n", err)
			return ExitUsage
		}
		ready = d.ready(ready)
	}
	mux := worker.NewOpsMux(ready, svc.Registry)
	for _, route := range []string{"/pubsub/push", "/events", "/v1/links"} {
		mux.Handle(route, push)
	}
	if durableLinks != nil {
		mux.Handle(durable.PathMint, durableLinks)
		mux.Handle(durable.PathClick, durableLinks)
	}
	done := serveHTTP(ctx, svc.Log, c.Grace, ln, mux)
	svc.Ready.Set(nil)
	<-ctx.Done()
	svc.Ready.Set(errors.New("shutting down"))
	<-done // in-flight requests finish within the grace period
	svc.Publisher.Stop()
	svc.Log.Info("serve stopped")
	return ExitOK
}
