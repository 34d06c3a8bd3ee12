package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/linkissuer/linkissuer/durable"
	"github.com/linkissuer/linkissuer/links"
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

// Serve implements `linkissuer serve` (push mode).
func Serve(ctx context.Context, env Env, args []string) int {
	var f serviceFlags
	var emails, audiences, serviceURL string
	var maxBody, maxBytesInFlight int
	var insecure, syncLinks bool
	var handlerTimeout time.Duration
	var d durableFlags
	fs := newFlagSet(env, "serve", serveUsage)
	f.register(fs, env)
	d.register(fs, env)
	fs.StringVar(&emails, "push-emails", envString(env, "LINKISSUER_PUSH_EMAILS", ""), "comma-separated service accounts whose push/Eventarc tokens are accepted [$LINKISSUER_PUSH_EMAILS]")
	fs.StringVar(&audiences, "audiences", envString(env, "LINKISSUER_AUDIENCES", ""), "comma-separated accepted token audiences (the push endpoint URL) [$LINKISSUER_AUDIENCES]")
	fs.StringVar(&serviceURL, "service-url", envString(env, "LINKISSUER_SERVICE_URL", ""), "this service's URL (https://NAME-HASH.REGION.run.app); the URL and its /pubsub/push and /events are accepted token audiences [$LINKISSUER_SERVICE_URL]")
	fs.IntVar(&maxBody, "max-body-bytes", envInt(env, "LINKISSUER_MAX_BODY_BYTES", worker.DefaultMaxBodyBytes), "largest push or event body; larger get 413 [$LINKISSUER_MAX_BODY_BYTES]")
	fs.IntVar(&maxBytesInFlight, "max-bytes-in-flight", envInt(env, "LINKISSUER_MAX_BYTES_IN_FLIGHT", worker.DefaultMaxBytesInFlight), "bytes of bodies held at once; more get 429 with Retry-After (fit the instance's memory) [$LINKISSUER_MAX_BYTES_IN_FLIGHT]")
	fs.BoolVar(&insecure, "insecure-skip-auth", false, "accept requests without a token (local use against emulators only)")
	fs.BoolVar(&syncLinks, "sync-links", envBool(env, "LINKISSUER_SYNC_LINKS", false), "serve POST /v1/links [$LINKISSUER_SYNC_LINKS=true]")
	fs.DurationVar(&handlerTimeout, "handler-timeout", envDuration(env, "LINKISSUER_HANDLER_TIMEOUT", 30*time.Second), "bound on one delivery's processing (keep under the ack deadline) [$LINKISSUER_HANDLER_TIMEOUT]")
	if err := parseFlags(fs, env, args); err != nil {
		return ExitUsage
	}
	if err := d.check(); err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer serve: %v\n", err)
		return ExitUsage
	}
	if err := checkPushEmails(splitList(emails), insecure); err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer serve: %v\n", err)
		return ExitUsage
	}
	auds, err := pushAudiences(audiences, serviceURL, insecure)
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer serve: %v\n", err)
		return ExitUsage
	}
	svc, err := f.build(ctx, env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer serve: %v\n", err)
		return ExitUsage
	}
	return runWithDeadline(ctx, f.grace, svc.log, func() int {
		defer svc.close()
		return svc.runServe(ctx, env, f, pushConfig{
			emails: emails, audiences: auds, insecure: insecure, syncLinks: syncLinks, handlerTimeout: handlerTimeout,
			maxBody: int64(maxBody), maxBytesInFlight: int64(maxBytesInFlight), durable: d,
		})
	})
}

// pushConfig is serve's own command line.
type pushConfig struct {
	emails                    string
	audiences                 []string // accepted token audiences, from --audiences or --service-url
	insecure, syncLinks       bool
	handlerTimeout            time.Duration
	maxBody, maxBytesInFlight int64
	durable                   durableFlags
}

// runServe is serve from start-up checks to shutdown.
func (svc *service) runServe(ctx context.Context, env Env, f serviceFlags, c pushConfig) int {
	opts := &worker.PushOptions{
		Audiences:        c.audiences,
		MaxBodyBytes:     c.maxBody,
		MaxBytesInFlight: c.maxBytesInFlight,
		AllowedEmails:    splitList(c.emails),
		InsecureSkipAuth: c.insecure,
		HandlerTimeout:   c.handlerTimeout,
		Logger:           svc.log,
		Project:          f.project,
		Metrics:          worker.NewHTTPMetrics(svc.registry),
	}
	if c.syncLinks {
		issuer := &links.Sync{Links: svc.links}
		if svc.storage != nil {
			issuer.Objects = links.GCSObjects{Client: svc.storage}
		}
		opts.Links = issuer
	}
	push, err := worker.NewPushServer(svc.router, opts)
	if err != nil {
		fmt.Fprintf(env.Stderr, "linkissuer serve: %v\n", err)
		return ExitUsage
	}
	ln, err := svc.start(ctx, f, "")
	if err != nil {
		return ExitFailure
	}
	ready := svc.ready.Check
	var links *durable.Server
	if d := &c.durable; d.enabled {
		if links, err = d.server(ctx, env, svc, push); err != nil {
			fmt.Fprintf(env.Stderr, "linkissuer serve: %v\n", err)
			return ExitUsage
		}
		ready = d.ready(ready)
	}
	mux := worker.NewOpsMux(ready, svc.registry)
	for _, route := range []string{"/pubsub/push", "/events", "/v1/links"} {
		mux.Handle(route, push)
	}
	if links != nil {
		mux.Handle(durable.PathMint, links)
		mux.Handle(durable.PathClick, links)
	}
	done := svc.serveHTTP(ctx, ln, mux)
	svc.ready.Set(nil)
	<-ctx.Done()
	svc.ready.Set(errors.New("shutting down"))
	<-done // in-flight requests finish within the grace period
	svc.publisher.Stop()
	svc.log.Info("serve stopped")
	return ExitOK
}

// checkPushEmails says, in flag names, what worker.PushOptions.Validate
// would refuse about the accepted token emails.
func checkPushEmails(emails []string, insecure bool) error {
	if len(emails) == 0 && !insecure {
		return errors.New("--push-emails is empty: name the service accounts of the push subscription and of the Eventarc trigger ($LINKISSUER_PUSH_EMAILS), or give --insecure-skip-auth for local use against emulators")
	}
	for _, e := range emails {
		if !strings.Contains(e, "@") {
			return fmt.Errorf("--push-emails: %q is not an email", e)
		}
	}
	return nil
}
